"""Seeded faults of the shared level (B25-B30): a merge that gets one rule wrong, reads that
never look at the file, a lock that is deleted on release. Each is the reference
``FileSessionStorage`` (which claims ``shared``) with one piece replaced, the way such a bug
would be written."""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from sessionspec.reference import FileSessionStorage
from sessionspec.reference import file as ref_file
from sessionspec.reference.lock import SidecarLock
from sessionspec.reference.merge import Store, merge_session, merge_stores
from sessionspec.spec import SessionData, to_millis

from ._registry import fault

# -- B25 shared-keeps-others ------------------------------------------------------------------


@fault(
    "B25",
    "save-reverts-untouched-sessions",
    "a save writes its own copy of the sessions it did not change: another instance's changes"
    " to a session this one only loaded are undone",
    also={
        "B27": "the many-processes check's shared session is untouched by some saves (a process"
        " saving its own sessions), which then revert the turns others appended to it",
        "B26": "a reverted session looks changed on disk to the process that then deletes it,"
        " and a delete against a change keeps the change (SPEC.md 8.2): the session comes back"
        " (seen in CI on some timings)",
    },
)
class SaveRevertsUntouchedSessions(FileSessionStorage):
    @staticmethod
    def _merge(base: Store, local: Store, disk: Store) -> dict[str, SessionData]:
        merged = merge_stores(base, local, disk)
        for session_id, mine in local.items():
            if session_id in disk and mine == base.get(session_id):
                merged[session_id] = mine  # the bug: my unchanged copy over their change
        return merged


# -- B26 shared-deletes-stick -----------------------------------------------------------------


@fault(
    "B26",
    "merge-resurrects-deleted",
    "the merge keeps every session on disk that this instance does not hold, so a stale copy"
    " brings back what this instance deleted (absence read as 'never seen')",
)
class MergeResurrectsDeleted(FileSessionStorage):
    @staticmethod
    def _merge(base: Store, local: Store, disk: Store) -> dict[str, SessionData]:
        merged = merge_stores(base, local, disk)
        for session_id, theirs in disk.items():
            merged.setdefault(session_id, theirs)  # the bug: a two-way union
        return merged


# -- B27 shared-merges-turns ------------------------------------------------------------------


def _local_turns_win(
    base: SessionData | None, local: SessionData | None, disk: SessionData | None
) -> SessionData | None:
    merged = merge_session(base, local, disk)
    both_changed = merged is not local and merged is not disk
    if merged is not None and local is not None and both_changed:
        return replace(merged, turns=local.turns)  # the bug: only our turns survive
    return merged


@fault(
    "B27",
    "merge-drops-their-appended-turns",
    "when both sides appended to one session, the merge keeps this instance's turns only",
    also={"B28": "a session ensured on both sides merges its turns as two appended runs"},
)
class MergeDropsTheirAppendedTurns(FileSessionStorage):
    @staticmethod
    def _merge(base: Store, local: Store, disk: Store) -> dict[str, SessionData]:
        merged: dict[str, SessionData] = {}
        for session_id in local.keys() | disk.keys():
            result = _local_turns_win(
                base.get(session_id), local.get(session_id), disk.get(session_id)
            )
            if result is not None:
                merged[session_id] = result
        return merged


# -- B28 shared-merges-fields -----------------------------------------------------------------


@fault(
    "B28",
    "conversation-id-earlier-touch-wins",
    "when both sides set the conversation id, the merge keeps the one touched earlier",
)
class ConversationIdEarlierTouchWins(FileSessionStorage):
    @staticmethod
    def _merge(base: Store, local: Store, disk: Store) -> dict[str, SessionData]:
        merged = merge_stores(base, local, disk)
        for session_id, result in merged.items():
            was, mine, theirs = base.get(session_id), local.get(session_id), disk.get(session_id)
            if was is None or mine is None or theirs is None:
                continue
            old = was.codex_conversation_id
            if old != mine.codex_conversation_id != theirs.codex_conversation_id != old:
                earlier = mine if mine.last_accessed_at < theirs.last_accessed_at else theirs
                merged[session_id] = replace(
                    result, codex_conversation_id=earlier.codex_conversation_id
                )
        return merged


# -- B29 shared-sees-others -------------------------------------------------------------------


@fault(
    "B29",
    "reads-not-refreshed",
    "reads and unknown ids never look at the file: only saves merge what others saved",
)
class ReadsNotRefreshed(FileSessionStorage):
    def _refresh(self) -> None:
        return None  # the bug: memory is trusted until the next save


# -- B30 shared-file-lock ---------------------------------------------------------------------


class _DeletedOnRelease(SidecarLock):
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # the bug: "clean up" the lock file while still holding it
        super().__exit__(exc_type, exc, tb)


@fault(
    "B30",
    "lock-file-deleted-on-release",
    "the sidecar lock file is deleted on release, so two processes can lock two inodes at once",
    also={
        "B25": "with the lock broken, two saves racing in the many-processes check can each"
        " merge without the other's changes",
        "B27": "the same race loses turns of the shared session",
        "B26": "the same race brings back a session another process deleted (seen in CI)",
    },
)
class LockFileDeletedOnRelease(FileSessionStorage):
    def __init__(self, path: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(path, **options)
        self._sidecar = _DeletedOnRelease(Path(self.path), self._sidecar.timeout)


@fault(
    "B30",
    "lock-released-before-rename",
    "a save reads, merges and writes its temp file under the lock, then renames it after"
    " releasing the lock: another save can read the old file in between and undo this one",
    also={
        "B25": "the race loses a save's changes when two processes save at once",
        "B27": "the same race loses turns of the shared session",
        "B26": "a rename after another save's merge brings back the session that save deleted"
        " (seen in CI)",
    },
)
class LockReleasedBeforeRename(FileSessionStorage):
    def _save(self, snapshot: Any) -> None:
        ref_file._make_private_dirs(self.path.parent)
        with self._sidecar:
            now = to_millis(self._clock())
            theirs = self._read_if_changed(now)
            stored = snapshot.sessions if theirs is None else self._merged(snapshot, theirs, now)
            self._remove_dead_temps()
            data = self._encoder.encode(stored)
            fd = os.open(self._temp_path, ref_file._NEW_FILE, 0o600)
            try:
                try:
                    os.fchmod(fd, 0o600)
                    ref_file._write_all(fd, data)
                    os.fsync(fd)
                    written = ref_file._file_id(os.fstat(fd))
                finally:
                    os.close(fd)
            except BaseException:
                self._remove_temp()  # as the reference does (B22): not this fault's bug
                raise
        try:
            os.replace(self._temp_path, self.path)  # the bug: the lock is already released
        except BaseException:
            self._remove_temp()
            raise
        self._disk_stat, self._disk_content = written, ref_file._content_of(data)
        self._table.synced(snapshot, stored)
        ref_file._fsync_directory(self.path.parent)

    def _remove_temp(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._temp_path)
