"""The sidecar lock of the shared level (SPEC.md §8.3, B30): ``<name>.lock`` beside the file.

Every save of a ``shared`` instance holds an exclusive ``flock`` on it from reading the file to
the rename. The lock file is created 0o600, opened without following symlinks, and never
deleted: deleting it on release would let two processes each lock a different inode at once.

Why ``fcntl.flock`` and not the ``filelock`` package: filelock 4 probes the directory with
files of its own, falls back to a "soft" lock that creates and deletes a marker file on file
systems without flock, and opens and closes the lock file on every acquire; the rule here is
one persistent file that nothing deletes, which is the dozen lines below. flock locks belong
to an open file description, so two instances in one process exclude each other too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import time
from pathlib import Path
from types import TracebackType

#: How long a save waits for another process's save before it fails (B30).
LOCK_TIMEOUT_SECONDS = 10.0
_OPEN_FLAGS = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class LockTimeoutError(TimeoutError):
    """Another process held the sidecar lock for longer than the timeout (B30)."""


class SidecarLock:
    """An exclusive lock on ``<path>.lock``, held with ``with lock:`` (B30).

    Reentrant neither across threads nor within one: the instance's own lock serialises its
    threads, ``flock`` serialises instances and processes.
    """

    def __init__(self, path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.path = path.with_name(path.name + ".lock")
        self.timeout = timeout
        self._threads = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> SidecarLock:
        """Wait (polling, at most ``timeout`` seconds) for the lock; raise LockTimeoutError."""
        if not self._threads.acquire(timeout=self.timeout):
            raise LockTimeoutError(errno.ETIMEDOUT, "another thread holds the lock", str(self.path))
        try:
            self._acquire()
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the lock; the file stays."""
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        """Close the lock file's descriptor (never deletes the file)."""
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def after_fork(self) -> None:
        """In a child made by fork(): forget the parent's descriptor and lock (B33).

        The inherited descriptor shares the parent's open file description, so a flock on it
        would "succeed" while the parent holds the lock: the child opens its own.
        """
        self._threads = threading.Lock()
        if self._fd is not None:
            os.close(self._fd)  # the parent's stays open: its lock is not released
            self._fd = None

    def _acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        pause = 0.0005
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        errno.ETIMEDOUT,
                        f"another process held the lock for over {self.timeout:g} s",
                        str(self.path),
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
                continue
            if self._is_current(fd):
                return
            # Someone replaced or removed the lock file after we opened it: a lock on the old
            # inode excludes nobody. Open the path again.
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._fd = None

    def _open(self) -> int:
        while self._fd is None:
            try:
                fd = os.open(self.path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
                os.fchmod(fd, 0o600)  # ours: exact whatever the umask (B20)
            except FileExistsError:
                try:  # someone's: never chmod it (it may be a hard link to another file)
                    fd = os.open(self.path, _OPEN_FLAGS)
                except FileNotFoundError:
                    continue  # removed in between: create it
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(errno.EINVAL, "the lock file is not a regular file", str(self.path))
            self._fd = fd
        return self._fd

    def _is_current(self, fd: int) -> bool:
        try:
            on_path = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return os.path.samestat(on_path, os.fstat(fd))
