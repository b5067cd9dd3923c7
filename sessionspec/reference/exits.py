"""How a process that ends keeps its sessions (SPEC.md §4.9, B33): exit, fork and signals.

A normal exit runs ``atexit`` hooks, and each file instance registers one when its writer
starts. Three ways out skip them, and each is handled here:

- **fork**: the child has the parent's instances but not their writer threads, and locks
  another thread held at the fork stay held. After a fork every instance gets fresh locks, no
  writer until its first mutation, its own temp name and its own sidecar lock descriptor: the
  child's instance works and saves, merging with the parent's by the shared level's rules;
- **multiprocessing workers** end with ``os._exit``, which skips ``atexit``: in a child process
  of ``multiprocessing`` an instance also closes at multiprocessing's own exit hook;
- **signals**: SIGTERM and SIGHUP end a process without running ``atexit``. A library must not
  take over signal handlers, so flushing on them is opt-in: :func:`flush_on_signals`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Protocol

logger = logging.getLogger(__name__)

#: How long a signal handler waits for the saves before the signal takes its course.
SIGNAL_FLUSH_SECONDS = 15.0
DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Closable(Protocol):
    """What this module needs of a file instance."""

    def close(self) -> None: ...

    def _after_fork(self) -> None: ...

    def _close_at_exit(self) -> None: ...


_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def track(storage: Closable) -> None:
    """Register an open instance for the fork hook and the signal handlers (B33)."""
    _LIVE.add(storage)


def forget(storage: Closable) -> None:
    """A closed instance needs neither."""
    _LIVE.discard(storage)


def arm_exit(storage: Closable) -> None:
    """Close ``storage`` at this process's exit, however it ends normally (B33).

    ``atexit`` covers a normal interpreter exit; a ``multiprocessing`` child ends with
    ``os._exit`` after running multiprocessing's own finalizers, so register there too.
    """
    import atexit

    atexit.register(storage._close_at_exit)
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.parent_process() is not None:
        from multiprocessing import util

        util.Finalize(storage, storage._close_at_exit, exitpriority=10)


def disarm_exit(storage: Closable) -> None:
    """Undo :func:`arm_exit` for a closed instance (its multiprocessing hook does nothing)."""
    import atexit

    atexit.unregister(storage._close_at_exit)


def _after_fork_in_child() -> None:
    for storage in list(_LIVE):
        storage._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def close_all(timeout: float = SIGNAL_FLUSH_SECONDS) -> list[str]:
    """Close every open file instance of this process; the errors, as text (B33).

    The closes run on a thread of their own, waited for at most ``timeout`` seconds: a signal
    handler runs on the main thread between two of its statements, possibly while it holds a
    lock a save needs, and must not wait for itself forever.
    """
    errors: list[str] = []

    def run() -> None:
        for storage in list(_LIVE):
            try:
                storage.close()
            except Exception as exc:
                errors.append(f"{getattr(storage, 'path', storage)}: {exc}")

    closer = threading.Thread(target=run, name="sessionspec-close-all", daemon=True)
    closer.start()
    closer.join(timeout)
    if closer.is_alive():
        errors.append(f"the saves did not finish within {timeout:g} s")
    return errors


_Handler = Callable[[int, FrameType | None], Any] | int | None


def flush_on_signals(
    signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
) -> Callable[[], None]:
    """Opt in: on each of ``signals``, save and close every open file instance, then let the
    signal do what it did before (B33). Returns a function that restores the old handlers.

    A default disposition still ends the process by the signal (the exit status says so); a
    Python handler installed before is called after the saves; an ignored signal stays
    ignored. Call it from the main thread, as ``signal.signal`` requires.
    """
    previous: dict[int, _Handler] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        for error in close_all():
            logger.error("at signal %d, could not save %s", signum, error)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before != signal.SIG_IGN:  # the default, or one set outside Python
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for number in signals:
        previous[int(number)] = signal.signal(number, handler)

    def restore() -> None:
        for number, before in previous.items():
            signal.signal(number, signal.SIG_DFL if before is None else before)

    return restore
