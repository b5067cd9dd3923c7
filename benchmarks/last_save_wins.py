"""The reference with its merge switched off: every save writes its own memory whole and no
read takes in the file, so the last save wins (what SPEC.md §9 allows a backend that does not
claim ``shared``). Used by benchmarks/shared_workload.py as the baseline; not a backend
to copy."""

from __future__ import annotations

from datetime import datetime

from sessionspec.reference import FileSessionStorage
from sessionspec.spec import Level, SessionData


class LastSaveWinsStorage(FileSessionStorage):
    """``FileSessionStorage`` that never reads the file after its constructor."""

    sessionspec_levels = frozenset({Level.CORE, Level.DURABLE, Level.FILE_V1})

    def _read_if_changed(self, now: datetime) -> list[SessionData] | None:
        return None  # as if the file were always what this instance last wrote

    def _refresh(self) -> None:
        return None
