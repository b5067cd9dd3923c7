"""Backends that fail on hostile files on purpose, so the runner's verdicts can be seen to
work: each is opened in a child by ``hostile_run`` (``module:attr`` factories) and must be
reported as the failure it is (tests/test_hostile_corpus.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sessionspec.reference import FileSessionStorage
from sessionspec.reference import file as reference_file
from sessionspec.reference.sessionfile import InvalidFileError, decode


class RaisesOnOpen(FileSessionStorage):
    """Any file makes the constructor raise something other than OSError: a crash."""

    def __init__(self, path: Any, **kwargs: Any) -> None:
        raise ValueError("cannot read this file")


class HangsOnFlush(FileSessionStorage):
    """flush() never returns: a hang."""

    def flush(self) -> None:
        time.sleep(3600)


class DropsCorruptFiles(FileSessionStorage):
    """Deletes a file it cannot decode instead of moving it aside: the bytes are lost."""

    def __init__(self, path: Any, **kwargs: Any) -> None:
        try:
            decode(Path(path).read_bytes())
        except InvalidFileError:
            os.unlink(path)
        super().__init__(path, **kwargs)


class KeepsNoBackup(FileSessionStorage):
    """A lossy load keeps no backup (B15): the skipped records are lost at the first save."""

    def __init__(self, path: Any, **kwargs: Any) -> None:
        # Only in the child that opens this backend: its lossy loads write no backup.
        reference_file._write_backup = lambda path, data, epoch_ms: path
        super().__init__(path, **kwargs)
