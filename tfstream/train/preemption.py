"""Preemption: SIGTERM/SIGINT during training save a checkpoint, then stop with exit code 75.

Schedulers (Kubernetes, Slurm, spot/preemptible VMs) send SIGTERM and give a grace period
before SIGKILL; Ctrl-C sends SIGINT. While a :class:`SignalCatcher` is installed those signals
only record that they arrived; the training loop checks at each window boundary, saves, and
raises :class:`Preempted`. A second identical signal while the first is still pending puts the
previous handler back and delivers the signal to it (a second Ctrl-C interrupts at once).
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["PREEMPTED_EXIT_CODE", "Preempted", "SignalCatcher", "catch_signals", "signal_number"]

#: Exit code of a process stopped by SIGTERM/SIGINT after saving its checkpoint (``EX_TEMPFAIL``
#: of ``sysexits.h``: "temporary failure, try again"): run the same command again to resume.
PREEMPTED_EXIT_CODE = 75


class Preempted(SystemExit):
    """Raised by ``Trainer.fit`` (and by ``model.fit`` with ``ts.keras.ResumableBackup``) when
    SIGTERM or SIGINT arrived, once the checkpoint of the last finished window is saved.

    It is a ``SystemExit``: left uncaught, the interpreter exits cleanly (``finally`` blocks
    and ``atexit`` handlers run) with status :data:`PREEMPTED_EXIT_CODE`.

    Attributes:
        signal: the signal number received.
        path: the checkpoint saved.
    """

    def __init__(self, signum: int, path: str):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.signal = signum
        self.path = path

    def __str__(self) -> str:
        return (
            f"{signal.Signals(self.signal).name} received: saved {self.path}; run again to "
            f"resume (exit code {PREEMPTED_EXIT_CODE})"
        )


class SignalCatcher:
    """Records ``signals`` instead of acting on them, between :meth:`install` and
    :meth:`uninstall` (which puts the previous handlers back).

    Installing is a no-op outside the main thread (Python runs signal handlers there only).

    Args:
        signals: signal numbers.
        active: optional ``frame -> bool``, asked when a signal arrives with the frame it
            interrupted: False means the training this catcher serves is over (it raised
            before it could uninstall the catcher), and the signal goes to the previous
            handler at once, as if the catcher were not there.

    Attributes:
        received: the last signal number received, or None.
    """

    def __init__(self, signals, *, active=None):
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict = {}
        self._active = active

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def install(self) -> None:
        if self.installed or not self.signals:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous = {s: signal.signal(s, self._handle) for s in self.signals}

    def uninstall(self) -> None:
        previous, self._previous = self._previous, {}
        for s, old in previous.items():
            signal.signal(s, old)

    def _handle(self, signum, frame) -> None:
        orphaned = self._active is not None and not self._active(frame)
        if self.received == signum or orphaned:  # asked twice: the previous handler decides
            old = self._previous.get(signum, signal.SIG_DFL)
            self.uninstall()
            if callable(old):
                old(signum, frame)
            else:
                signal.raise_signal(signum)
            return
        self.received = signum


@contextlib.contextmanager
def catch_signals(signals):
    """Within the block, the ``signals`` only set ``.received`` (the last signal number) on
    the :class:`SignalCatcher` yielded; the previous handlers are restored after."""
    catcher = SignalCatcher(signals)
    catcher.install()
    try:
        yield catcher
    finally:
        catcher.uninstall()


def signal_number(value) -> int:
    """A signal name (``"SIGTERM"``) or number, as a number."""
    if isinstance(value, str):
        try:
            return int(signal.Signals[value])
        except KeyError:
            raise ValueError(
                f"`signals` must name signals such as 'SIGTERM'. Received: {value!r}"
            ) from None
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"`signals` must be signal names or numbers. Received: {value!r}")
