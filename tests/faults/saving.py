"""Seeded faults in saving: atomic replace, permissions, write-behind and flush, write
failures (B19-B22)."""

from __future__ import annotations

import contextlib
import os
import stat
from datetime import timedelta
from pathlib import Path

from sessionspec.reference import file as ref_file
from sessionspec.reference.table import Snapshot
from sessionspec.spec import to_millis

from ._base import HookedFileStorage
from ._registry import fault

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def _save_with(
    path: Path,
    temp_path: Path,
    data: bytes,
    *,
    flags: int = _CREATE,
    mode: int = 0o600,
    chmod: int | None = 0o600,
    fsync_file: bool = True,
    fsync_dir: bool = True,
) -> None:
    """``reference.file._save_atomically`` with its steps as parameters."""
    ref_file._make_private_dirs(path.parent)
    fd = os.open(temp_path, flags, mode)
    try:
        try:
            if chmod is not None:
                os.fchmod(fd, chmod)
            ref_file._write_all(fd, data)
            if fsync_file:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    if fsync_dir:
        ref_file._fsync_directory(path.parent)


# -- B19 atomic-replace ----------------------------------------------------------------------


@fault("B19", "save-fsyncs-nothing", "a save renames the temp file without any fsync")
class SaveFsyncsNothing(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        _save_with(path, temp_path, data, fsync_file=False, fsync_dir=False)


@fault("B19", "no-directory-fsync", "the directory is not fsynced after the rename")
class NoDirectoryFsync(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        _save_with(path, temp_path, data, fsync_dir=False)


@fault("B19", "temp-name-per-pid", "the temp name is <name>.<pid>.tmp: shared by instances")
class TempNamePerPid(HookedFileStorage):
    def _temp_name(self) -> Path:
        return self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")


# B20's rule ("Temp files MUST be created exclusively (O_CREAT|O_EXCL)"), next to B19's.
@fault("B20", "temp-without-excl", "the temp file is opened O_CREAT|O_TRUNC, not O_EXCL")
class TempWithoutExcl(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        _save_with(path, temp_path, data, flags=flags)


@fault(
    "B19",
    "write-in-place",
    "the file is truncated and rewritten in place, no temp file",
    also={
        "B32": "writing in place writes through a symlink or hard link at the path into"
        " another file, and opening a dangling symlink for writing follows it"
    },
)
class WriteInPlace(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        ref_file._make_private_dirs(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            ref_file._write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        ref_file._fsync_directory(path.parent)


# -- B20 permissions -------------------------------------------------------------------------


@fault("B20", "temp-0644-then-chmod", "the temp file is created 0o644 and chmodded 0o600 after")
class Temp0644ThenChmod(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        _save_with(path, temp_path, data, mode=0o644, chmod=0o600)


@fault("B20", "temp-mode-from-umask", "the temp file is created 0o666 and left to the umask")
class TempModeFromUmask(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        _save_with(path, temp_path, data, mode=0o666, chmod=None)


@fault("B20", "keeps-existing-mode", "a save copies the existing file's mode onto the new file")
class KeepsExistingMode(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        try:
            keep = stat.S_IMODE(os.stat(path).st_mode)  # "preserve the user's permissions"
        except FileNotFoundError:
            keep = 0o600
        _save_with(path, temp_path, data, chmod=keep)


@fault("B20", "backup-keeps-source-mode", "a moved-aside file keeps its mode (0o644 stays 0o644)")
class BackupKeepsSourceMode(HookedFileStorage):
    def _move_aside(self, path: Path, epoch_ms: int) -> Path:
        for backup in ref_file._backup_names(path, epoch_ms):
            try:
                os.link(path, backup, follow_symlinks=False)
            except FileExistsError:
                continue
            os.unlink(path)  # the bug: no chmod of the link
            ref_file._fsync_directory(path.parent)
            return backup
        raise AssertionError("unreachable")


@fault(
    "B20", "backup-chmodded-after-writing", "a backup is made with open(name, 'xb'), 0o600 after"
)
class BackupChmoddedAfterWriting(HookedFileStorage):
    def _write_backup(self, path: Path, data: bytes, epoch_ms: int) -> Path:
        for backup in ref_file._backup_names(path, epoch_ms):
            try:
                # Exclusive, so it never overwrites (B13, B15 hold); but open() creates the file
                # 0o666 minus the umask: world-readable under umask 000 while the bytes go in.
                file = open(backup, "xb")  # noqa: SIM115 - closed below, after the fsync
            except FileExistsError:
                continue
            try:
                with file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.chmod(backup, 0o600)  # the bug: private only once the bytes are in
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(backup)
                raise
            ref_file._fsync_directory(path.parent)
            return backup
        raise AssertionError("unreachable: there is always a free backup name")


# -- B21 no-lost-updates ---------------------------------------------------------------------


class _Debounced(HookedFileStorage):
    """A writer that waits a moment before saving, to coalesce bursts (not a bug in itself).

    A ``flush()`` that waits, or ``close()``, cuts the wait short, as a real debouncing writer
    would: only the writer's own saves wait, so checks that flush or close do not pay the
    debounce on every save. (The snapshot is taken before the wait either way.)
    """

    debounce_s = 0.2
    _flushing = 0  # flush() calls waiting now; guarded by _wake

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        with self._wake:
            self._wake.wait_for(
                lambda: self._flushing > 0 or self._stopping, timeout=self.debounce_s
            )
        super()._save_snapshot(snapshot)

    def flush(self) -> None:
        with self._wake:
            self._flushing += 1
            self._wake.notify_all()
        try:
            super().flush()
        finally:
            with self._wake:
                self._flushing -= 1


@fault(
    "B21",
    "flush-does-not-wait",
    "flush() returns before the data is written",
    also=dict.fromkeys(
        ["B10", "B11", "B13", "B14", "B15", "B17", "B19", "B20", "B22", "B23", "B32", "B33"],
        "every check of the file right after flush() (schema, modes, backups, expired"
        " sessions gone, whole files, what a fault left, links not written through, a forked"
        " child's save) reads the file before the save",
    ),
)
class FlushDoesNotWait(_Debounced):
    def flush(self) -> None:
        with self._wake:
            self._wanted = max(self._wanted, self._table.revision)
            self._start_writer()
            self._wake.notify_all()  # the bug: no wait for the save


@fault(
    "B21",
    "close-drops-pending",
    "close() stops the writer without saving what is pending",
    also={
        "B09": "a reopen after close() shows the state before the last changes (B09's round"
        " trip is close() then a new instance)",
        "B22": "close() during a write fault does not try to save, so it does not raise",
        "B33": "the exit hook closes the instance, so a process that exits without close()"
        " drops what is pending the same way",
    },
)
class CloseDropsPending(_Debounced):
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._wake:
            self._stopping = True  # the bug: no flush first
            self._wanted = self._attempted
            self._wake.notify_all()
        if self._writer is not None:
            self._writer.join()


# -- B22 flush-failure -----------------------------------------------------------------------


@fault("B22", "flush-swallows-error", "flush() logs a failed save and returns normally")
class FlushSwallowsError(HookedFileStorage):
    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:  # the bug: the caller believes the data is safe
            ref_file.logger.error("flush failed: %s", exc)


@fault("B22", "failed-save-retried-in-loop", "the writer retries a failed save every 20 ms")
class FailedSaveRetriedInLoop(HookedFileStorage):
    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        super()._record_result(snapshot, error)
        if error is not None:
            self._wake.wait(0.02)
            self._retry = True  # the bug: a busy retry loop while the disk is broken


@fault("B22", "failed-save-retried-every-second", "the writer retries a failed save once a second")
class FailedSaveRetriedEverySecond(HookedFileStorage):
    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        super()._record_result(snapshot, error)
        if error is not None and not self._stopping:
            self._wake.wait(1.0)  # "give the disk a second", woken early by a mutation
            self._retry = True  # the bug: a retry loop, one attempt a second while it fails


@fault(
    "B22",
    "failed-save-retried-on-clock-backoff",
    "a failed save is retried each time the backend's clock has moved on by 30 s",
)
class FailedSaveRetriedOnClockBackoff(HookedFileStorage):
    backoff = timedelta(seconds=30)

    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        super()._record_result(snapshot, error)
        if error is None:
            return
        # The bug: a retry loop paced by the clock, the backend's only time (SPEC.md §1.3). It
        # waits for the clock, a new mutation, a flush() or close(), then tries again.
        due = to_millis(self._clock()) + self.backoff
        while not (
            self._stopping
            or self._retry
            or self._wanted > self._attempted
            or to_millis(self._clock()) >= due
        ):
            self._wake.wait(0.02)
        self._retry = True


@fault("B22", "error-logged-every-attempt", "every failed save logs an ERROR, not only the first")
class ErrorLoggedEveryAttempt(HookedFileStorage):
    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        self._error_logged = False  # the bug: the once-flag is never kept
        super()._record_result(snapshot, error)


@fault("B22", "rollback-on-failure", "a failed flush rolls memory back to the last saved state")
class RollbackOnFailure(HookedFileStorage):
    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        if error is None:
            self._last_good = snapshot.sessions
        super()._record_result(snapshot, error)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            # The bug: "back to a consistent state" throws every unsaved change away.
            good = getattr(self, "_last_good", ())
            self._table = self.table_class(good, clock=self._clock)
            raise


@fault("B22", "stale-failure-raised", "after a failure, flush() raises the old error, no new try")
class StaleFailureRaised(HookedFileStorage):
    def flush(self) -> None:
        with self._wake:
            if self._last_failure is not None and self._saved < self._table.revision:
                raise self._last_failure[1]  # the bug: the disk may be fine again by now
        super().flush()


@fault(
    "B22",
    "background-failure-forgets-dirty",
    "a failed background save counts as done: a flush() once the fault clears writes nothing",
)
class BackgroundFailureForgetsDirty(_Debounced):
    debounce_s = 1.0  # the writer coalesces a second of mutations: not a bug in itself

    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        background = not self._flushing
        super()._record_result(snapshot, error)
        if error is not None and background:
            # The bug: the failure is logged, so the state is taken as handled and nothing is
            # dirty any more. A flush() during the fault still raises (see below); once the
            # fault clears, no flush() writes the state that failed, until a new mutation.
            self._saved = max(self._saved, snapshot.revision)

    def flush(self) -> None:
        with self._wake:
            clean = self._saved >= self._table.revision
        if clean:
            if self._table.revision:
                # Nothing pending: make earlier saves durable by fsyncing the directory (which
                # fails while the directory is not one, so flush() raises during the fault).
                fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return
        super().flush()


@fault(
    "B22", "close-forgets-on-failure", "close() marks itself closed first: a retry drops the state"
)
class CloseForgetsOnFailure(HookedFileStorage):
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # the bug (the reference before spec 1.1): closed before flushing
        try:
            self.flush()
        finally:
            with self._wake:
                self._stopping = True
                self._wake.notify_all()
            if self._writer is not None:
                self._writer.join()
