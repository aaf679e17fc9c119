"""``read_ahead``: order, errors at the right item, early stops that close the producer."""

import threading
import time

import pytest

from tfstream.sources.readahead import read_ahead


def test_yields_every_item_in_order_from_another_thread():
    threads = set()

    def items():
        for i in range(100):
            threads.add(threading.current_thread().name)
            yield i

    assert list(read_ahead(items(), depth=3)) == list(range(100))
    assert threads == {"tfstream-read-ahead"}


def test_produces_while_the_caller_works():
    """Two steps of 0.1 s, one producing and one consuming: ~0.1 s per item, not 0.2 s."""

    def slow_items():
        for i in range(6):
            time.sleep(0.1)
            yield i

    start = time.perf_counter()
    for _ in read_ahead(slow_items()):
        time.sleep(0.1)
    assert time.perf_counter() - start < 6 * 0.2 - 0.25


def test_an_error_is_raised_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad record at line 7")

    got = []
    with pytest.raises(ValueError, match="line 7"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_closes_the_producer_and_joins_it():
    produced, closed = [], threading.Event()

    def items():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    before = set(threading.enumerate())
    ahead = read_ahead(items(), depth=2)
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()
    assert closed.is_set()  # closed and joined before close() returned
    assert len(produced) <= 3 + 2 + 1  # the depth, plus the item in production
    assert set(threading.enumerate()) <= before


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        list(read_ahead([1], depth=0))


def test_an_iterable_whose_iter_fails_raises_instead_of_hanging():
    class Broken:
        def __iter__(self):
            raise OSError("cannot open")

    with pytest.raises(OSError, match="cannot open"):
        next(read_ahead(Broken()))
