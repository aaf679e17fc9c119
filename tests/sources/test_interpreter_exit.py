"""A script that ends while tf.data threads still read a source exits (it used to hang)."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

from tfstream.sources import interpreter_exit
from tfstream.sources.interpreter_exit import InterpreterExit, until_exit

# Four iterators, each with its prefetch thread still parsing blocks when the script ends:
# without the atexit hook, finalization destroyed them while those threads waited for the GIL,
# and the process never exited (3 runs out of 3).
_SCRIPT = textwrap.dedent(
    """
    import sys
    import tfstream as ts

    unfinished = []
    for _ in range(4):
        source = ts.csv(sys.argv[1], label="label", block_bytes=1 << 16)
        it = iter(source.dataset(64))
        features, label = next(it)
        assert label.shape == (64,)
        unfinished.append(it)
    # Endless epochs of a small file: ending each pass quietly at exit only started the next.
    forever = iter(ts.csv(sys.argv[2], label="label").dataset(64, epochs=None))
    for _ in range(5):
        next(forever)
    print("end of script", flush=True)
    """
)


@pytest.mark.slow
def test_script_with_unfinished_iterators_exits(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((20_000, 28)), columns=[f"f{i}" for i in range(28)])
    frame.insert(0, "label", rng.integers(0, 2, len(frame)))
    path, small = tmp_path / "data.csv", tmp_path / "small.csv"
    frame.to_csv(path, index=False)
    frame.head(100).to_csv(small, index=False)
    child = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(path), str(small)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        ended = time.perf_counter()
        _, stderr = child.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail("the script did not exit within 90 s of its end")
    exit_seconds = time.perf_counter() - ended
    assert line.strip() == "end of script", stderr[-3000:]
    assert child.returncode == 0, stderr[-3000:]
    # The hook waits for reads under way and a quiet 0.25 s, not its 10 s limit (the endless
    # epoch loop used to keep it waiting, then hang).
    assert exit_seconds < 8, f"exit took {exit_seconds:.1f} s"


def _reading_in_a_thread(wait) -> threading.Thread:
    """A thread inside a read through ``until_exit`` that lasts until ``wait()`` returns."""
    started = threading.Event()

    def slow():
        started.set()
        wait()
        yield 1

    items = until_exit(slow())
    reader = threading.Thread(target=lambda: next(items))
    reader.start()
    assert started.wait(5)
    return reader


def test_a_forked_child_has_no_reads_under_way():
    release = threading.Event()
    reader = _reading_in_a_thread(lambda: release.wait(5))
    assert interpreter_exit._STATE.reading == 1
    pid = os.fork()
    if pid == 0:  # the child: the parent's reading thread is not here
        os._exit(0 if interpreter_exit._STATE.reading == 0 else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    reader.join(5)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.fixture
def state():
    yield interpreter_exit._STATE
    interpreter_exit._STATE.exiting = False  # this process goes on


def test_exit_waits_for_the_read_under_way_then_refuses_reads(state):
    started, release = threading.Event(), threading.Event()

    def slow():
        yield 1
        started.set()
        release.wait(5)
        yield 2
        yield 3

    items = until_exit(slow())
    assert next(items) == 1
    got = []
    reader = threading.Thread(target=lambda: got.append(next(items)))
    reader.start()
    assert started.wait(5)
    stopper_result = []
    stopper = threading.Thread(
        target=lambda: stopper_result.append(interpreter_exit._stop_reading(5.0, 0.05))
    )
    stopper.start()
    time.sleep(0.2)
    assert stopper.is_alive(), "the hook returned while a read was under way"
    release.set()
    reader.join(5)
    stopper.join(5)
    assert got == [2] and stopper_result == [True]
    with pytest.raises(InterpreterExit, match="exiting"):  # not a silently short pass
        next(items)


def test_exit_gives_up_after_its_timeout(state):
    reader = _reading_in_a_thread(lambda: time.sleep(1.0))
    begin = time.perf_counter()
    assert interpreter_exit._stop_reading(0.2, 0.05) is False
    assert time.perf_counter() - begin < 0.9
    reader.join(5)


def test_until_exit_closes_what_it_reads():
    closed = []

    def items():
        try:
            yield from range(10)
        finally:
            closed.append(True)

    wrapped = until_exit(items())
    assert next(wrapped) == 0
    wrapped.close()
    assert closed == [True]
    assert list(until_exit(iter([1, 2]))) == [1, 2]
