"""CSV source: every value against pandas, every quirk, every bad-input path."""

import gzip
import io
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfstream.sources.csv import NA_VALUES
from tfstream.sources.csv import csv as ts_csv
from tfstream.sources.report import DataError
from tfstream.sources.schema import SchemaDriftError, SchemaError
from tfstream.testing import dataset_columns

QUIRKY = (
    "\ufeffid,price,name,note\r\n"
    '1,1.5,plain,"has, comma"\r\n'
    '2,,"quoted ""q""","two\r\nlines"\r\n'
    "3,NA,NA,\r\n"
    '4,-2.25e3,"",x\r\n'
    "5,nan,N/A,y\r\n"
)


def write(path, text, mode="w"):
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
            f.write(text)
    else:
        with open(path, mode, encoding="utf-8", newline="") as f:
            f.write(text)
    return str(path)


def _rows(src):
    """Every column of one ``iter_chunks`` pass (no tf.data)."""
    chunks = list(src.iter_chunks())
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]} if chunks else {}


# Raised inside tf.data, a DataError reaches the caller as an InvalidArgumentError that
# carries its message; iter_chunks() raises it as it is.
DATA_ERRORS = (DataError, tf.errors.InvalidArgumentError)


def collect(src, batch_size=3, **kwargs):
    """All rows of one pass of src.dataset(), as numpy columns."""
    return dataset_columns(src, batch_size, **kwargs)


def assert_matches_pandas(cols, frame, schema):
    for name, column in schema.items():
        got = cols[name]
        want = frame[name]
        if column.dtype == "string":
            want = want.fillna("").astype(str).to_numpy()
            got = np.array([v.decode("utf-8") for v in got], dtype=object)
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want.to_numpy(dtype=column.dtype), err_msg=name)


def test_quirks_match_pandas(tmp_path):
    path = write(tmp_path / "q.csv", QUIRKY)
    src = ts_csv(path)
    assert {k: c.dtype for k, c in src.schema.items()} == {
        "id": "int64",
        "price": "float32",
        "name": "string",
        "note": "string",
    }
    frame = pd.read_csv(path, na_values=list(NA_VALUES), keep_default_na=True)
    assert_matches_pandas(collect(src), frame, src.schema)
    assert src.report().rows_read == 5
    assert src.report().rows_ok == 5


@pytest.mark.parametrize("block_bytes", [1024, 4096, 1 << 20])
def test_block_boundaries_inside_quoted_records(tmp_path, block_bytes):
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(
        {
            "a": rng.standard_normal(n).astype(np.float32),
            "s": [f'v{i},"{i}"\n' * (i % 3) for i in range(n)],
            "k": rng.integers(0, 1000, n),
        }
    )
    path = str(tmp_path / "b.csv")
    frame.to_csv(path, index=False)
    src = ts_csv(path, block_bytes=block_bytes, schema={"s": "string"})
    cols = collect(src, batch_size=7)
    want = pd.read_csv(path, keep_default_na=False, dtype={"s": str})
    np.testing.assert_array_equal(cols["a"], want["a"].to_numpy(np.float32))
    np.testing.assert_array_equal(cols["k"], want["k"].to_numpy())
    assert [v.decode() for v in cols["s"]] == list(want["s"])


def test_record_longer_than_block(tmp_path):
    long = "x" * 5000
    path = write(tmp_path / "l.csv", f'a,b\n1,"{long}"\n2,"{long},\n{long}"\n3,z\n')
    cols = collect(ts_csv(path, block_bytes=1024))
    np.testing.assert_array_equal(cols["a"], [1, 2, 3])
    assert cols["b"][1].decode() == f"{long},\n{long}"


def test_gzip_glob_directory_list_and_delimiter(tmp_path):
    (tmp_path / "d").mkdir()
    a = write(tmp_path / "d" / "a.csv.gz", "x;y\n1;u\n2;v\n")
    b = write(tmp_path / "d" / "b.csv", "x;y\n3;w\n")
    write(tmp_path / "d" / "_SUCCESS", "")
    for paths in [str(tmp_path / "d"), str(tmp_path / "d" / "*.csv*"), [a, b]]:
        cols = collect(ts_csv(paths, delimiter=";"))
        np.testing.assert_array_equal(cols["x"], [1, 2, 3])
        assert list(cols["y"]) == [b"u", b"v", b"w"]


def test_columns_label_and_schema_override(tmp_path):
    path = write(tmp_path / "c.csv", "a,b,c,y\n1,2,3,0\n4,5,6,1\n")
    src = ts_csv(path, columns=["c", "a"], label="y", schema={"a": "float64"})
    assert list(src.schema) == ["a", "c", "y"]
    assert src.schema["a"].dtype == "float64"
    features, label = next(iter(src.dataset(10)))
    assert set(features) == {"a", "c"}
    assert features["a"].dtype == tf.float64
    np.testing.assert_array_equal(label.numpy(), [0, 1])
    np.testing.assert_array_equal(features["c"].numpy(), [3, 6])


def test_inference_draws_from_several_files(tmp_path):
    write(tmp_path / "0.csv", "a,b\n1,x\n")
    write(tmp_path / "1.csv", "a,b\n2.5,\n")
    src = ts_csv(str(tmp_path))
    assert src.schema["a"].dtype == "float32"  # int in one file, float in the other
    np.testing.assert_array_equal(collect(src)["a"], np.array([1, 2.5], np.float32))


def test_column_names_that_look_like_polars_patterns_are_inferred_as_themselves(tmp_path):
    """``*`` and ``^a$`` are names, not "every column" and a regular expression."""
    path = write(tmp_path / "p.csv", "a,*,^a$,present0\n1,x,1.5,2\n3,y,2.5,4\n")
    src = ts_csv(path)
    assert {n: c.dtype for n, c in src.schema.items()} == {
        "a": "int64",
        "*": "string",
        "^a$": "float32",
        "present0": "int64",
    }
    cols = collect(src)
    assert list(cols["*"]) == [b"x", b"y"]
    np.testing.assert_array_equal(cols["^a$"], np.array([1.5, 2.5], np.float32))


def test_missing_strings_configurable(tmp_path):
    path = write(tmp_path / "m.csv", "a,s\n1,\n2,NA\n3,ok\n")
    cols = collect(ts_csv(path, missing_string="<missing>"))
    assert list(cols["s"]) == [b"<missing>", b"<missing>", b"ok"]


@pytest.mark.parametrize(
    "text, schema, line, error",
    [
        ("a,b\n1,2\n3\n5,6\n", None, 3, "expected 2 fields, found 1"),
        ("a,b\n1,2\n3,4,5\n5,6\n", None, 3, "expected 2 fields, found 3"),
        ('a,b\n1,"x\ny"\nzz,4\n5,6\n', {"a": "int64", "b": "string"}, 4, "could not parse"),
        ("a,b\n1,2\n,4\n5,6\n", None, 3, "missing value in int64 column 'a'"),
    ],
)
def test_bad_row_raise_names_file_line_and_text(tmp_path, text, schema, line, error):
    path = write(tmp_path / "bad.csv", text)
    src = ts_csv(path, schema=schema)
    with pytest.raises(DATA_ERRORS) as info:
        collect(src)
    message = str(info.value)
    with pytest.raises(DataError, match=f"line {line}"):
        list(src.iter_chunks())
    assert f"{path}, line {line}" in message
    assert error in message


def test_skip_counts_every_bad_row_and_keeps_every_good_one(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["a,b"]
    good = []
    bad_lines = []
    for i in range(5000):
        if rng.random() < 0.01:
            lines.append(rng.choice([f"{i}", f"{i},x,1", f"oops,{i}"]))
            bad_lines.append(len(lines))
        else:
            lines.append(f"{i},{i * 0.5}")
            good.append(i)
    path = write(tmp_path / "s.csv", "\n".join(lines) + "\n")
    src = ts_csv(path, on_error="skip", block_bytes=4096, schema={"a": "int64", "b": "float64"})
    cols = collect(src, batch_size=128)
    np.testing.assert_array_equal(cols["a"], good)
    np.testing.assert_array_equal(cols["b"], np.array(good) * 0.5)
    report = src.report()
    assert report.rows_rejected == len(bad_lines)
    assert report.rows_ok == len(good)
    assert report.rows_read == report.rows_ok + report.rows_rejected
    assert [r.line for r in report.rejected] == bad_lines[: len(report.rejected)]


@pytest.mark.parametrize(
    "bad, error",
    [
        ("7", "expected 2 fields, found 1"),  # too few fields: polars' scan fills a null
        ("7,8,9", "expected 2 fields, found 3"),  # too many: polars' scan raises
        ("oops,8", "could not parse"),
        (",8", "missing value in int64 column 'a'"),
        ("7,NA", None),  # an NA token: not an error, read again with the NA list
    ],
)
def test_a_file_that_goes_bad_after_its_first_batches(tmp_path, bad, error):
    """A bad record far into a file, after many good blocks: no row twice, none lost, the
    same rows in a second pass. (polars' streaming scan, ``scan_csv().collect_batches()``,
    fails this: it emits rows of later parts of the file before it raises for an earlier
    part, so rows between go missing; checked on polars 2.1.)"""
    n, at = 10_000, 5_000  # the bad record is line at + 2 (after the header and at rows)
    lines = ["a,b"] + [f"{i},{i * 0.5}" for i in range(n)]
    lines.insert(at + 1, bad)
    path = write(tmp_path / "late.csv", "\n".join(lines) + "\n")
    src = ts_csv(path, on_error="skip", block_bytes=4096, schema={"a": "int64", "b": "float64"})
    want_a = list(range(n)) if error else [*range(at), 7, *range(at, n)]
    want_b = [i * 0.5 for i in range(n)]
    if not error:
        want_b = [*want_b[:at], np.nan, *want_b[at:]]
    for _ in range(2):
        cols = _rows(src)
        np.testing.assert_array_equal(cols["a"], want_a)
        np.testing.assert_array_equal(cols["b"], want_b)
    report = src.report()
    assert report.rows_ok == 2 * len(want_a)
    if error:
        assert [(r.line, r.text) for r in report.rejected] == [(at + 2, bad)] * 2
        assert error in report.rejected[0].error
    else:
        assert report.rows_rejected == 0


def test_progress_while_reading_adds_up_to_the_file_size(tmp_path):
    n = 20_000
    frame = pd.DataFrame({"a": np.arange(n), "b": np.arange(n) * 0.25})
    path = str(tmp_path / "clean.csv")
    frame.to_csv(path, index=False)
    src = ts_csv(path, block_bytes=16 * 1024)
    steps = []
    chunks = list(src.iter_chunks(on_bytes=steps.append))
    np.testing.assert_array_equal(np.concatenate([c["a"] for c in chunks]), frame["a"])
    np.testing.assert_array_equal(np.concatenate([c["b"] for c in chunks]), frame["b"])
    assert max(len(c["a"]) for c in chunks) < 2_000  # chunk rows follow block_bytes
    assert len(steps) > 10 and min(steps) > 0  # progress while reading, not only at the end
    assert sum(steps) == os.path.getsize(path) == src.total_bytes()


def test_quarantine_writes_raw_lines(tmp_path):
    path = write(tmp_path / "q.csv", "a,b\n1,2\n3\n4,5\n6,7,8\n")
    qpath = tmp_path / "rejects.jsonl"
    src = ts_csv(path, on_error="quarantine", quarantine_path=qpath)
    np.testing.assert_array_equal(collect(src)["a"], [1, 4])
    records = [json.loads(line) for line in qpath.read_text().splitlines()]
    assert [(r["file"], r["line"], r["text"]) for r in records] == [
        (path, 3, "3"),
        (path, 5, "6,7,8"),
    ]
    assert src.report().quarantine_path == str(qpath)


def test_blank_lines_are_not_rows(tmp_path):
    path = write(tmp_path / "b.csv", "a,b\n1,2\n\n3,4\r\n\r\n")
    src = ts_csv(path)
    np.testing.assert_array_equal(collect(src)["a"], [1, 3])
    assert src.report().rows_read == 2


def test_missing_path_and_empty_glob(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        ts_csv(str(tmp_path / "nope.csv"))
    with pytest.raises(FileNotFoundError, match=r"\*.csv"):
        ts_csv(str(tmp_path / "*.csv"))


def test_empty_file_errors_header_only_file_is_zero_rows(tmp_path):
    empty = write(tmp_path / "e.csv", "")
    with pytest.raises(DataError, match="e.csv"):
        ts_csv(empty)
    header_only = write(tmp_path / "h.csv", "a,b\n")
    src = ts_csv(header_only)
    assert collect(src) == {}
    assert src.report().rows_read == 0


def test_schema_drift_names_both_files(tmp_path):
    a = write(tmp_path / "a.csv", "x,y\n1,2\n")
    b = write(tmp_path / "b.csv", "x,z\n1,2\n")
    with pytest.raises(SchemaDriftError) as info:
        ts_csv([a, b])
    assert a in str(info.value) and b in str(info.value)
    c = write(tmp_path / "c.csv", "x,y\n1,hello\n")
    with pytest.raises(SchemaDriftError) as info:
        ts_csv([a, c])
    assert a in str(info.value) and c in str(info.value)


def test_schema_drift_in_unsampled_file_is_caught_when_read(tmp_path):
    paths = [write(tmp_path / f"{i:02d}.csv", "x,y\n1,2\n") for i in range(20)]
    src = ts_csv(paths)
    write(paths[3], "x,q\n1,2\n")  # changed after construction
    with pytest.raises(SchemaDriftError, match="03.csv"):
        list(src.iter_chunks())
    with pytest.raises(tf.errors.InvalidArgumentError, match="03.csv"):
        collect(src)


def test_bad_arguments(tmp_path):
    path = write(tmp_path / "a.csv", "x,y\n1,2\n")
    with pytest.raises(ValueError, match="on_error"):
        ts_csv(path, on_error="ignore")
    with pytest.raises(ValueError, match="label"):
        ts_csv(path, label="nope")
    with pytest.raises(SchemaError, match="nope"):
        ts_csv(path, columns=["nope"])
    with pytest.raises(SchemaError, match="dtype"):
        ts_csv(path, schema={"x": "int8"})
    with pytest.raises(ValueError, match="batch_size"):
        ts_csv(path).dataset(0)


def make_numbers(tmp_path, n=1000, files=3):
    paths = []
    for f in range(files):
        ids = np.arange(f * n, (f + 1) * n)
        path = str(tmp_path / f"n{f}.csv")
        pd.DataFrame({"id": ids, "v": ids * 2.0}).to_csv(path, index=False)
        paths.append(path)
    return paths


def test_shuffle_is_seeded_permutation_and_varies_by_epoch(tmp_path):
    paths = make_numbers(tmp_path)
    src = ts_csv(paths, block_bytes=2048)
    kw = dict(shuffle=True, seed=7, shuffle_buffer=500)
    first = collect(src, 64, **kw)["id"]
    again = collect(src, 64, **kw)["id"]
    np.testing.assert_array_equal(first, again)
    assert sorted(first) == list(range(3000))
    assert not np.array_equal(first, np.arange(3000))
    two = np.concatenate([b["id"].numpy() for b in src.dataset(1000, epochs=2, **kw)])
    np.testing.assert_array_equal(two[:3000], first)
    assert sorted(two[3000:]) == list(range(3000))
    assert not np.array_equal(two[3000:], first)


def test_epochs_end_with_their_own_short_batch(tmp_path):
    paths = make_numbers(tmp_path, n=10, files=1)
    sizes = [len(b["id"]) for b in ts_csv(paths).dataset(4, epochs=2)]
    assert sizes == [4, 4, 2, 4, 4, 2]
    sizes = [len(b["id"]) for b in ts_csv(paths).dataset(4, epochs=2, drop_remainder=True)]
    assert sizes == [4, 4, 4, 4]


@pytest.mark.parametrize("files", [1, 4])
def test_input_context_shards_are_disjoint_and_complete(tmp_path, files):
    paths = make_numbers(tmp_path, n=1000 // files, files=files)
    seen = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
        seen.append(collect(ts_csv(paths, block_bytes=1024), 32, input_context=ctx)["id"])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(np.concatenate(seen)) == list(range(1000))
    assert abs(len(seen[0]) - len(seen[1])) <= (0 if files == 1 else 250)


def test_report_counts_every_pass(tmp_path):
    paths = make_numbers(tmp_path, n=100, files=1)
    src = ts_csv(paths)
    collect(src)
    collect(src)
    assert src.report().rows_read == 200


def test_large_file_streams_in_bounded_chunks(tmp_path):
    path = str(tmp_path / "big.csv")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((50_000, 4)), columns=list("abcd"))
    frame.to_csv(path, index=False)
    src = ts_csv(path, block_bytes=64 * 1024)
    sizes = [len(c["a"]) for c in src.iter_chunks()]
    assert sum(sizes) == 50_000
    assert max(sizes) < 5_000
    want = pd.read_csv(path).to_numpy(np.float32)
    got = np.stack([np.concatenate([c[k] for c in src.iter_chunks()]) for k in "abcd"], 1)
    np.testing.assert_array_equal(got, want)


def test_fields_with_delimiter_in_quotes_and_missing_last_column(tmp_path):
    # The last column has missing values, so the field-count check runs (quote-aware).
    text = 'a,b,c\n1,"x,y",\n2,"p,q,r",3\n4,z\n'
    path = write(tmp_path / "f.csv", text)
    src = ts_csv(path, on_error="skip", schema={"c": "float32"})
    cols = collect(src)
    np.testing.assert_array_equal(cols["a"], [1, 2])
    np.testing.assert_array_equal(cols["c"], np.array([np.nan, 3], np.float32))
    assert src.report().rows_rejected == 1
    assert src.report().rejected[0].line == 4


def test_invalid_utf8_is_a_bad_row(tmp_path):
    path = str(tmp_path / "u.csv")
    with open(path, "wb") as f:
        f.write(b"a,s\n1,ok\n2,\xff\xfe\n3,fine\n")
    src = ts_csv(path, on_error="skip")
    assert list(collect(src)["a"]) == [1, 3]
    assert "UTF-8" in src.report().rejected[0].error


def test_pandas_reference_on_random_mixed_file(tmp_path):
    rng = np.random.default_rng(3)
    n = 20_000
    frame = pd.DataFrame(
        {
            "label": rng.integers(0, 2, n),
            "f": rng.standard_normal(n).astype(np.float32),
            "g": np.where(rng.random(n) < 0.1, np.nan, rng.standard_normal(n)),
            "cat": rng.choice(["red", "green", "blue, dark", 'say "hi"', None], n),
        }
    )
    path = str(tmp_path / "mixed.csv.gz")
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    write(path, buf.getvalue())
    src = ts_csv(path, label="label", block_bytes=16 * 1024)
    cols = collect(src, 1024)
    want = pd.read_csv(path)
    np.testing.assert_array_equal(cols["__label__"], want["label"].to_numpy())
    assert_matches_pandas(cols, want, {k: c for k, c in src.schema.items() if k != "label"})
    assert os.path.exists(path)


@pytest.mark.parametrize("name", ["bad.csv.gz", "bad.csv"])
def test_line_numbers_of_bad_rows_in_many_blocks_read_the_file_once(tmp_path, monkeypatch, name):
    # One bad row in each of many blocks: a .gz used to be decompressed again from its start
    # for each (quadratic); its lines are now counted as the blocks stream by.
    lines = ["x,y"]
    bad = []
    for i in range(3000):
        if i % 100 == 7:
            lines.append(f"{i},0.5,extra")
            bad.append(len(lines))
        else:
            lines.append(f"{i},{i * 0.5}")
    path = write(tmp_path / name, "\n".join(lines) + "\n")
    quarantine = tmp_path / "bad.jsonl"
    src = ts_csv(path, on_error="quarantine", quarantine_path=quarantine, block_bytes=1024)
    opened = []
    real_open = src._open
    monkeypatch.setattr(src, "_open", lambda p: opened.append(p) or real_open(p))
    cols = collect(src)
    assert len(cols["x"]) == 3000 - len(bad)
    rows = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [r["line"] for r in rows] == bad
    assert all(r["text"].endswith(",extra") for r in rows)
    if name.endswith(".gz"):  # once for its header, once for its rows (it was 31)
        assert len(opened) == 2, f"the .gz file was opened {len(opened)} times"


def test_column_selection_still_rejects_long_and_short_rows(tmp_path):
    # A short and a long row in one block must not cancel out in the field count.
    path = write(tmp_path / "p.csv", "a,b,c,s\n1,2,3,x\n1,2,3\n1,2,3,y,9\n4,5,6,z\n")
    src = ts_csv(path, columns=["a", "s"], on_error="skip")
    cols = collect(src)
    np.testing.assert_array_equal(cols["a"], [1, 4])
    assert [r.line for r in src.report().rejected] == [3, 4]


@pytest.mark.parametrize("files", [1, 2, 4])
def test_unseeded_shuffle_with_input_context_still_shards_disjointly(tmp_path, files):
    paths = make_numbers(tmp_path, n=400 // files, files=files)
    seen = []
    for i in range(4 if files == 2 else 2):
        ctx = tf.distribute.InputContext(
            num_input_pipelines=4 if files == 2 else 2, input_pipeline_id=i
        )
        src = ts_csv(paths)
        seen.append(collect(src, 32, shuffle=True, input_context=ctx)["id"])
    assert sum(len(s) for s in seen) == 400
    assert sorted(np.concatenate(seen)) == list(range(400))


def test_iter_chunks_shuffle_without_seed(tmp_path):
    paths = make_numbers(tmp_path, n=100, files=2)
    ids = np.concatenate([c["id"] for c in ts_csv(paths).iter_chunks(shuffle=True)])
    assert sorted(ids) == list(range(200))


# -- found in review: each of these failed before its fix ----------------------------------------


def test_a_rejected_record_with_a_field_over_128_kib_is_counted(tmp_path):
    big = "y" * 200_000
    path = write(tmp_path / "big.csv", f'a,b,c\n1,"{big}",2\n2,"{big}"\n3,x,4\n')
    src = ts_csv(path, schema={"a": "int64", "b": "string", "c": "float32"}, on_error="skip")
    assert list(_rows(src)["a"]) == [1, 3]
    report = src.report()
    assert (report.rows_read, report.rows_rejected) == (3, 1)
    assert "expected 3 fields, found 2" in report.rejected[0].error


def test_blank_lines_of_a_one_column_file_are_not_rows(tmp_path):
    path = write(tmp_path / "one.csv", "x\n1.5\n\n2.5\n\r\n3.5\n\n")
    src = ts_csv(path)
    np.testing.assert_array_equal(_rows(src)["x"], [1.5, 2.5, 3.5])
    assert src.report().rows_read == 3
    np.testing.assert_array_equal(pd.read_csv(path)["x"], [1.5, 2.5, 3.5])


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n   \n3,4\n \t\r\n5,6\n",  # spaces, tabs, CRLF
        "a,b\n   \n1,2\n3,4\n5,6\n  ",  # first and last line, no final newline
        "a\n1\n  \n3\n\t\n5\n",  # one column
        "s,n\nx,1\n  \ny,3\n \nz,5\n",  # strings
        "s\nx\n   \ny\n\t\nz\n",  # one string column
        's\n"a\n   \nb"\n  \ny\nz\n',  # one column, spaces inside a quoted field are kept
    ],
)
def test_whitespace_only_lines_are_blank_lines_as_in_pandas(tmp_path, text):
    path = write(tmp_path / "w.csv", text)
    want = pd.read_csv(path)
    src = ts_csv(path)  # on_error="raise": no such line may be a bad row
    got = _rows(src)
    assert src.report().rows_read == len(want) == 3
    for name in want.columns:
        assert src.schema[name].dtype == ("string" if name == "s" else "int64"), name
        if name == "s":
            assert [str(v) for v in got[name]] == want[name].tolist()
        else:
            np.testing.assert_array_equal(got[name], want[name].to_numpy())


def test_a_tab_line_is_a_row_of_empty_fields_when_tab_is_the_delimiter(tmp_path):
    path = write(tmp_path / "t.tsv", "a\tb\n1\t2\n\t\n3\t4\n")
    src = ts_csv(path, delimiter="\t", schema={"a": "float32", "b": "float32"})
    got = _rows(src)
    want = pd.read_csv(path, sep="\t")
    np.testing.assert_array_equal(got["a"], want["a"].to_numpy(np.float32))
    assert len(want) == 3 and np.isnan(got["b"][1])


def test_a_truncated_gzip_file_names_the_file(tmp_path):
    text = "a,b\n" + "".join(f"{i},{i / 2}\n" for i in range(200_000))
    full = write(tmp_path / "full.csv.gz", text)
    data = open(full, "rb").read()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) * 3 // 4])
    schema = {"a": "int64", "b": "float32"}
    with pytest.raises(DataError, match=r"cut\.csv\.gz: the compressed file is damaged"):
        list(ts_csv(str(cut), schema=schema).iter_chunks())
    src = ts_csv([str(cut), full], schema=schema, on_error="skip", block_bytes=1 << 16)
    rows = _rows(src)["a"]
    report = src.report()
    assert report.lost_files == (str(cut),)
    assert report.rows_ok == len(rows) and len(rows) > 200_000  # the good rows of cut, then full
    np.testing.assert_array_equal(rows[-200_000:], np.arange(200_000))


def test_a_quote_that_is_never_closed_is_described(tmp_path):
    lines = [f"{i},{i}.5" for i in range(1000)]
    lines[5] = '5,"oops'
    path = write(tmp_path / "open.csv", "a,b\n" + "\n".join(lines) + "\n")
    src = ts_csv(path, schema={"a": "int64", "b": "string"}, on_error="skip", block_bytes=4096)
    assert list(_rows(src)["a"]) == [0, 1, 2, 3, 4]
    (row,) = src.report().rejected
    assert row.line == 7
    assert "a quote is never closed" in row.error and "995 lines" in row.error


def test_a_sample_polars_cannot_parse_names_the_file(tmp_path):
    path = write(
        tmp_path / "inch.csv", "a,b,c\n" + "".join(f'{i},{i}" screen,0\n' for i in range(50))
    )
    with pytest.raises(DataError, match=r"inch\.csv: the first rows cannot be parsed"):
        ts_csv(path)
