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
GIL; registered at the first pass, so that it runs before the hooks registered until then)
stops every pass that goes through :func:`until_exit`: from then on a read raises
:class:`InterpreterExit` at once instead of starting. The hook waits for the reads under way to
finish, and then until no thread has asked for a read for ``_QUIET_SECONDS`` (a prefetch thread
asks again as soon as it is handed a chunk, and stops once it holds the error or its buffer is
full), up to ``_WAIT_SECONDS`` in all. So no tf.data thread is inside Python when finalization
begins.

Raising, not ending the pass quietly: an error also stops the epoch loop of
``dataset(epochs=None)`` (quiet ends only made it start the next epoch, endlessly), and a
consumer still running then (a daemon thread, an ``atexit`` hook registered before ours) gets
an error instead of a short epoch that looks complete. TensorFlow logs the error of a pass
that a prefetch thread was reading (one warning at exit).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["InterpreterExit", "until_exit"]

T = TypeVar("T")

_WAIT_SECONDS = 10.0
_QUIET_SECONDS = 0.25
_END = object()


class InterpreterExit(RuntimeError):
    """A pass over a source was stopped because the Python interpreter is exiting."""


class _State:
    def __init__(self):
        self.changed = threading.Condition()
        self.reading = 0  # reads under way
        self.asked = -float("inf")  # time.monotonic() of the last read asked for
        self.exiting = False
        self.registered = False


_STATE = _State()


def _reset_in_child() -> None:
    """A forked child starts with no reads of its own under way (the parent's threads are not
    in it) and a fresh lock (another thread may have held it at the fork)."""
    global _STATE
    registered = _STATE.registered
    _STATE = _State()
    _STATE.registered = registered  # atexit handlers are inherited


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def until_exit(items: Iterable[T]) -> Iterator[T]:
    """Yields ``items``, each produced while the interpreter's exit waits for it; once the
    interpreter has begun to exit, raises :class:`InterpreterExit` instead of reading on."""
    _register()
    iterator = iter(items)
    try:
        while True:
            state = _STATE
            with state.changed:
                state.asked = time.monotonic()
                state.changed.notify_all()
                if state.exiting:
                    raise InterpreterExit(
                        "The Python interpreter is exiting: this pass over a tfstream source "
                        "was stopped before its end."
                    )
                state.reading += 1
            try:
                item = next(iterator, _END)
            finally:
                with state.changed:
                    state.reading -= 1
                    state.changed.notify_all()
            if item is _END:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _register() -> None:
    with _STATE.changed:
        if _STATE.registered:
            return
        _STATE.registered = True
    atexit.register(_stop_reading)


def _stop_reading(timeout: float = _WAIT_SECONDS, quiet: float = _QUIET_SECONDS) -> bool:
    """Refuses new reads, then waits until none is under way and none was asked for in the last
    ``quiet`` seconds; True when that happened within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    state = _STATE
    with state.changed:
        state.exiting = True
        while True:
            now = time.monotonic()
            if state.reading == 0 and now - state.asked >= quiet:
                return True
            if now >= deadline:
                return False
            if state.reading:
                state.changed.wait(deadline - now)
            else:
                state.changed.wait(min(deadline, state.asked + quiet) - now)
