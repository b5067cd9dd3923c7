"""Seeded faults in what a save does when the disk fails mid-way (B22): what the kit's injected
EIO checks (sessionspec/conformance/checks_injected.py) must catch. None of them shows while
the disk works: only an error injected at the right call of a save does.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sessionspec.reference import file as ref_file
from sessionspec.reference.table import Snapshot

from ._base import HookedFileStorage
from ._registry import fault

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def _fsync_best_effort(fd: int) -> None:
    # The bug: "some file systems cannot fsync", so every error is ignored, EIO too.
    with contextlib.suppress(OSError):
        os.fsync(fd)


@fault(
    "B22",
    "fsync-error-swallowed",
    "a failed fsync (of the temp file or of the directory) is ignored: flush() returns",
)
class FsyncErrorSwallowed(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        ref_file._make_private_dirs(path.parent)
        fd = os.open(temp_path, _CREATE, 0o600)
        try:
            try:
                os.fchmod(fd, 0o600)
                ref_file._write_all(fd, data)
                _fsync_best_effort(fd)
            finally:
                os.close(fd)
            os.replace(temp_path, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise
        directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _fsync_best_effort(directory)
        finally:
            os.close(directory)


@fault(
    "B22",
    "temp-kept-after-failed-write",
    "only a failed rename removes the temp file: a failed write or fsync leaves it behind",
)
class TempKeptAfterFailedWrite(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        ref_file._make_private_dirs(path.parent)
        fd = os.open(temp_path, _CREATE, 0o600)
        try:
            os.fchmod(fd, 0o600)
            ref_file._write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)  # the bug: the temp file stays when writing it failed
        try:
            os.replace(temp_path, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise
        ref_file._fsync_directory(path.parent)


@fault(
    "B22",
    "directory-fsync-failure-counts-as-saved",
    "after the directory's fsync fails, the next flush() returns without saving again",
)
class DirectoryFsyncFailureCountsAsSaved(HookedFileStorage):
    #: The revision whose rename succeeded but whose directory fsync failed.
    _renamed: int | None = None
    _renaming: bool = False

    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        self._renaming = False
        ref_file._save_atomically(path, temp_path, data, lambda _written: self._rename_done())

    def _rename_done(self) -> None:
        self._renaming = True

    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        if error is not None and self._renaming:
            self._renamed = snapshot.revision
        super()._record_result(snapshot, error)

    def flush(self) -> None:
        with self._wake:
            renamed = self._renamed is not None and self._renamed >= self._table.revision
        if renamed:
            # The bug: "the file already holds this state", so nothing is left to save; but
            # the rename is not durable until a directory fsync succeeds.
            return
        super().flush()
