"""Faults of B32 (hostile paths) and B33 (exits): what the reference did before spec 1.3."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from sessionspec.reference import file as ref_file

from ._base import HookedFileStorage
from ._registry import fault

# -- B32 hostile-paths ------------------------------------------------------------------------


@fault(
    "B32",
    "open-blocks-on-fifo",
    "the file is opened and read whatever it is: a FIFO at the path blocks the constructor"
    " until a writer comes, and a device is read as if it were the file",
)
class OpenBlocksOnFifo(HookedFileStorage):
    def _read(self) -> bytes:
        with open(self.path, "rb") as file:  # the bug: a blocking open, no type check
            return file.read()


@fault(
    "B32",
    "backup-narrows-a-shared-inode",
    "moving aside hard-links the file to the backup and narrows the backup's mode: when the"
    " path is a second name of another file, that file's mode changes too",
)
class BackupNarrowsASharedInode(HookedFileStorage):
    def _move_aside(self, path: Path, epoch_ms: int) -> Path:
        for backup in ref_file._backup_names(path, epoch_ms):
            try:
                os.link(path, backup, follow_symlinks=False)
            except FileExistsError:
                continue
            info = os.lstat(backup)
            if stat.S_ISREG(info.st_mode):
                os.chmod(backup, stat.S_IMODE(info.st_mode) & 0o600)  # the bug: a shared inode
            os.unlink(path)
            return backup
        raise AssertionError("unreachable")


@fault(
    "B32",
    "save-writes-through-symlink",
    "a save resolves symlinks and replaces the file the path points to, not the path",
)
class SaveWritesThroughSymlink(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        ref_file._save_atomically(path.resolve(), temp_path, data)  # the bug: resolve()


# -- B33 exit-saves ---------------------------------------------------------------------------


@fault(
    "B33",
    "debounced-save-lost-at-exit",
    "saves are debounced by 0.3 s on a daemon timer and nothing saves at exit: a process that"
    " ends within 0.3 s of its last mutation loses it (upstream's unref'd timer, in Python)",
)
class DebouncedSaveLostAtExit(HookedFileStorage):
    def _changed(self, revision: int) -> None:
        with self._wake:
            self._wanted = max(self._wanted, revision)
            if getattr(self, "_timer", None) is None:
                self._timer = threading.Timer(0.3, self._debounced)
                self._timer.daemon = True
                self._timer.start()

    def _debounced(self) -> None:
        with self._wake:
            self._timer = None
            self._start_writer()
            self._wake.notify_all()

    def _start_writer(self) -> None:
        if self._writer is None and not self._stopping:
            self._writer = threading.Thread(target=self._write_behind, daemon=True)
            self._writer.start()  # the bug: no exit hook for a daemon writer


@fault(
    "B33",
    "fork-keeps-a-dead-writer",
    "nothing is reset after fork(): the child's instance believes its writer thread runs, so"
    " its add_turn is accepted and its flush() waits forever",
)
class ForkKeepsADeadWriter(HookedFileStorage):
    def _after_fork(self) -> None:
        pass  # the bug


# -- B19 atomic-replace: the directory's entry ----------------------------------------------


@fault(
    "B19",
    "new-directory-not-fsynced",
    "the first save creates the directory with os.makedirs and never fsyncs its parent: a"
    " crash can lose the new directory and the file in it",
)
class NewDirectoryNotFsynced(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        missing = []
        directory = path.parent
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            os.mkdir(new, 0o700)
            os.chmod(new, 0o700)  # the bug: its parent is not fsynced
        ref_file._save_atomically(path, temp_path, data)
