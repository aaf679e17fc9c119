"""``read_ahead``: produce the next chunks in a background thread while the caller works on
this one.

Parsing (polars, pyarrow) and most numpy work release the GIL, so on a machine with two cores
a pass that parses and then computes on each chunk (statistics, conversion) takes about the
longer of the two instead of their sum.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")

_END = object()
_POLL_SECONDS = 0.1


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yields ``items`` in order, produced by a background thread up to ``depth`` items ahead.

    An exception raised while producing is raised here, at the item where it happened. When
    the caller stops early, the producer finishes the item it is working on, closes ``items``
    and is joined when this generator is closed: at once for ``close()``, ``break`` out of a
    ``for`` over it, or an exception thrown into it; an exception in the caller's own loop body
    closes it only when the generator is garbage-collected, so close it in a ``finally`` (or
    ``contextlib.closing``) to have files closed and counts final at once. Memory: up to
    ``depth + 1`` items more than a plain loop (``depth`` queued, one being produced).
    """
    if depth < 1:
        raise ValueError(f"`depth` must be a positive integer. Received: depth={depth!r}")
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = None
        try:
            iterator = iter(items)
            for item in iterator:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer's thread
            put((_END, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="tfstream-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
