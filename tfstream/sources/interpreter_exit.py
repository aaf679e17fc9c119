"""``until_exit``: lets Python exit while tf.data threads still read a source.

``tf.data.Dataset.from_generator`` runs the generator in tf.data's own threads, through a
``py_func`` that takes the GIL. When a script ends with an iterator it has not finished (``x =
next(iter(ds))``, ``model.fit(steps_per_epoch=...)``, ``take(n)``, an exception out of a
training loop), the interpreter's finalization destroys that iterator, and the destructor waits
for the prefetch thread. If that thread is reading a chunk at that moment, it wants the GIL back
after the interpreter has begun to finalize, which it never gets again: the process hangs
forever (with ``ts.csv(...).dataset(64)``, 4 unfinished iterators at the end of a script hung
4 runs out of 4; so do plain ``from_generator`` datasets, now and then).

The cure: an ``atexit`` hook (it runs before finalization, while threads can still take the
GIL) ends every pass that goes through :func:`until_exit`: from then on a pass ends at its next
read instead of reading on. The hook waits for the reads under way to finish, and then until no
thread has asked for a read for ``_QUIET_SECONDS`` (a prefetch thread asks again as soon as it
is handed a chunk, and stops once its pass has ended or its buffer is full), up to
``_WAIT_SECONDS`` in all. So no tf.data thread is inside Python when finalization begins.

Ending quietly (not raising) is deliberate: at that point nothing can consume the rest of the
pass (the main thread is exiting, other threads were joined or are daemons about to die), and
an exception would only print a traceback per dataset through TensorFlow's logging.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["until_exit"]

T = TypeVar("T")

_WAIT_SECONDS = 10.0
_QUIET_SECONDS = 0.25
_END = object()


class _State:
    def __init__(self):
        self.changed = threading.Condition()
        self.reading = 0  # reads under way
        self.asked = -float("inf")  # time.monotonic() of the last read asked for
        self.exiting = False


_STATE = _State()


def until_exit(items: Iterable[T]) -> Iterator[T]:
    """Yields ``items``, each produced while the interpreter's exit waits for it; once the
    interpreter has begun to exit, ends instead of reading on."""
    iterator = iter(items)
    try:
        while True:
            with _STATE.changed:
                _STATE.asked = time.monotonic()
                _STATE.changed.notify_all()
                if _STATE.exiting:
                    return
                _STATE.reading += 1
            try:
                item = next(iterator, _END)
            finally:
                with _STATE.changed:
                    _STATE.reading -= 1
                    _STATE.changed.notify_all()
            if item is _END:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


@atexit.register
def _stop_reading(timeout: float = _WAIT_SECONDS, quiet: float = _QUIET_SECONDS) -> bool:
    """Refuses new reads, then waits until none is under way and none was asked for in the last
    ``quiet`` seconds; True when that happened within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with _STATE.changed:
        _STATE.exiting = True
        while True:
            now = time.monotonic()
            if _STATE.reading == 0 and now - _STATE.asked >= quiet:
                return True
            if now >= deadline:
                return False
            if _STATE.reading:
                _STATE.changed.wait(deadline - now)
            else:
                _STATE.changed.wait(min(deadline, _STATE.asked + quiet) - now)
