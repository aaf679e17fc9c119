import os
import signal
import subprocess
import sys

import pytest

from tfstream.sources.atomic import replacing, upload, write_bytes


def _names(directory):
    return sorted(os.listdir(directory))


def test_replacing_writes_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "er" / "out.json"
    with replacing(path) as temporary:
        assert os.path.dirname(temporary) == str(path.parent)
        with open(temporary, "w") as f:
            f.write("whole")
        assert not path.exists()  # nothing under the final name before the block ends
    assert path.read_text() == "whole"
    assert _names(path.parent) == ["out.json"]


def test_an_error_in_the_block_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="half way"), replacing(path) as temporary:
        with open(temporary, "w") as f:
            f.write("ne")
        raise RuntimeError("half way")
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["out.json"]


def test_the_suffix_ends_the_temporary_name(tmp_path):
    with replacing(tmp_path / "plot.png", suffix=".png") as temporary:
        assert temporary.endswith(".png") and os.path.basename(temporary).startswith(".plot.png")
        open(temporary, "wb").close()
    assert _names(tmp_path) == ["plot.png"]


def test_a_process_killed_while_writing_leaves_the_old_file(tmp_path):
    path = tmp_path / "stats.json"
    path.write_text("old")
    script = (
        "import sys, time\n"
        "from tfstream.sources.atomic import replacing\n"
        "with replacing(sys.argv[1]) as temporary, open(temporary, 'w') as f:\n"
        "    f.write('half of the new'); f.flush()\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert path.read_text() == "old"
    leftovers = [n for n in _names(tmp_path) if n != "stats.json"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".stats.json.tmp-")


def test_write_bytes_local_path_and_url(tmp_path, memory_root):
    fs, root = memory_root
    write_bytes(str(tmp_path / "a.bin"), b"local")
    assert (tmp_path / "a.bin").read_bytes() == b"local"
    write_bytes(f"file://{tmp_path}/b.bin", b"file url")
    assert (tmp_path / "b.bin").read_bytes() == b"file url"
    write_bytes(f"memory://{root}/sub/c.bin", b"remote")
    assert fs.cat_file(f"{root}/sub/c.bin") == b"remote"
    assert fs.ls(f"{root}/sub", detail=False) == [f"{root}/sub/c.bin"]


def test_a_failed_upload_removes_its_temporary_key(memory_root, monkeypatch):
    fs, root = memory_root
    fs.pipe_file(f"{root}/out.json", b"old")

    def refuse(*args, **kwargs):
        assert len(fs.ls(root, detail=False)) == 2  # the temporary key is there
        raise OSError("the store refused the copy")

    monkeypatch.setattr(fs, "mv", refuse)
    with pytest.raises(OSError, match="refused the copy"):
        upload(fs, f"{root}/out.json", data=b"new")
    assert fs.ls(root, detail=False) == [f"{root}/out.json"]
    assert fs.cat_file(f"{root}/out.json") == b"old"


def test_upload_takes_data_or_a_local_file(memory_root, tmp_path):
    fs, root = memory_root
    local = tmp_path / "shard"
    local.write_bytes(b"shard bytes")
    upload(fs, f"{root}/shard", local=str(local))
    assert fs.cat_file(f"{root}/shard") == b"shard bytes"
    with pytest.raises(TypeError, match="one of"):
        upload(fs, f"{root}/x", data=b"a", local=str(local))
    with pytest.raises(TypeError, match="one of"):
        upload(fs, f"{root}/x")


def test_the_path_is_used_as_given_through_a_symlink(tmp_path):
    """``link/../x`` is where open() finds it: the kernel resolves ``..`` through the link."""
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    os.symlink(tmp_path / "real" / "sub", tmp_path / "other" / "link")
    path = os.path.join(tmp_path, "other", "link", "..", "stats.json")
    write_bytes(path, b"here")
    with open(path, "rb") as f:
        assert f.read() == b"here"
    assert (tmp_path / "real" / "stats.json").read_bytes() == b"here"


def test_a_directory_path_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="names a directory"):
        write_bytes(f"{tmp_path}/out/", b"x")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["s" * 245 + ".json", "統計" * 40 + ".json"])
def test_a_long_file_name_still_fits(tmp_path, name):
    assert len(name.encode()) <= 255  # the file system's limit; the temporary name adds ~20
    write_bytes(str(tmp_path / name), b"long")
    assert (tmp_path / name).read_bytes() == b"long"
    assert _names(tmp_path) == [name]


def test_a_relative_path_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_bytes("plain.json", b"cwd")
    assert (tmp_path / "plain.json").read_bytes() == b"cwd"
