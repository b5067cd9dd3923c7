"""Seeded faults in the file format and loading: writer output, first run, unreadable files,
move-aside, versions, invalid records, stale temp files (B10-B16)."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sessionspec.reference import file as ref_file
from sessionspec.reference import sessionfile
from sessionspec.reference.sessionfile import (
    CorruptFileError,
    Decoded,
    SessionEncoder,
    UnsupportedVersionError,
)
from sessionspec.spec import SessionData, format_timestamp

from ._base import HookedFileStorage
from ._registry import fault

logger = logging.getLogger("tests.faults")

# -- B10 schema-valid-output -----------------------------------------------------------------


class _RewritingEncoder(SessionEncoder):
    """Post-processes the reference's output text; each subclass rewrites one detail."""

    def rewrite(self, text: str) -> str:
        return text

    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        return self.rewrite(super().encode(sessions).decode("utf-8")).encode("utf-8")


_STAMP = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z"')


class _MicrosecondsEncoder(_RewritingEncoder):
    def rewrite(self, text: str) -> str:
        # As datetime.strftime("%Y-%m-%dT%H:%M:%S.%fZ") writes them: six fraction digits.
        return _STAMP.sub(lambda m: f'"{m[1]}.{m[2]}000Z"', text)


@fault("B10", "timestamps-with-microseconds", "timestamps written with %f: six fraction digits")
class TimestampsWithMicroseconds(HookedFileStorage):
    encoder_class = _MicrosecondsEncoder


class _OffsetEncoder(_RewritingEncoder):
    def rewrite(self, text: str) -> str:
        # As isoformat(timespec="milliseconds") writes them: "+00:00" instead of "Z".
        return _STAMP.sub(lambda m: f'"{m[1]}.{m[2]}+00:00"', text)


@fault("B10", "timestamps-with-offset", "timestamps written by isoformat(): +00:00 instead of Z")
class TimestampsWithOffset(HookedFileStorage):
    encoder_class = _OffsetEncoder


class _NullCidEncoder(SessionEncoder):
    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        document = {
            "version": 1,
            "sessions": [
                {
                    "id": s.id,
                    "createdAt": format_timestamp(s.created_at),
                    "lastAccessedAt": format_timestamp(s.last_accessed_at),
                    "turns": [
                        {
                            "prompt": t.prompt,
                            "response": t.response,
                            "timestamp": format_timestamp(t.timestamp),
                        }
                        for t in s.turns
                    ],
                    "codexConversationId": s.codex_conversation_id,  # the bug: null when None
                }
                for s in sessions
            ],
        }
        return json.dumps(document, indent=2).encode("utf-8")


@fault("B10", "null-conversation-id", "codexConversationId written as null instead of left out")
class NullConversationId(HookedFileStorage):
    encoder_class = _NullCidEncoder


class _BomEncoder(SessionEncoder):
    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        return super().encode(sessions).decode("utf-8").encode("utf-8-sig")  # the bug


@fault("B10", "bom-written", "the file is written with the utf-8-sig codec: it starts with a BOM")
class BomWritten(HookedFileStorage):
    encoder_class = _BomEncoder


class _SurrogatePassEncoder(SessionEncoder):
    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        items = list(sessions)
        text = sessionfile._document([b"\x00" for _ in items]).decode()
        parts = [sessionfile._session_text(s) for s in items]
        for part in parts:
            text = text.replace("\x00", part, 1)
        return text.encode("utf-8", "surrogatepass")  # the bug: raw surrogates, not UTF-8


@fault("B10", "raw-surrogates", "lone surrogates written raw (surrogatepass): not valid UTF-8")
class RawSurrogates(HookedFileStorage):
    encoder_class = _SurrogatePassEncoder


class _SavedAtEncoder(_RewritingEncoder):
    def rewrite(self, text: str) -> str:
        return text.replace('"version": 1,', '"version": 1,\n  "savedBy": "sessionspec",', 1)


@fault("B10", "extra-envelope-member", "the writer adds a 'savedBy' member to the envelope")
class ExtraEnvelopeMember(HookedFileStorage):
    encoder_class = _SavedAtEncoder


# -- B11 first-run ---------------------------------------------------------------------------


@fault("B11", "mkdir-at-open", "the constructor creates the sessions directory at open")
class MkdirAtOpen(HookedFileStorage):
    def _load(self, now: datetime) -> tuple[bytes, Decoded] | None:
        ref_file._make_private_dirs(self.path.parent)  # the bug: a trace before any mutation
        return super()._load(now)


@fault(
    "B11",
    "makedirs-intermediate-mode",
    "os.makedirs(mode=0o700): parents get the umask mode",
    also={
        "B19": "os.makedirs fsyncs no parent of the directories it creates, so the new"
        " directory's entry is not durable"
    },
)
class MakedirsIntermediateMode(HookedFileStorage):
    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        # The bug: makedirs applies mode to the leaf only; parents get 0o777 & ~umask.
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
        super()._save_file(path, temp_path, data)


@fault("B11", "flush-writes-untouched-store", "flush() saves even when nothing was mutated")
class FlushWritesUntouchedStore(HookedFileStorage):
    def flush(self) -> None:
        if self._table.revision == 0 and not self.path.exists():
            self._save_snapshot(self._table.snapshot())  # the bug: "make sure the file exists"
            return
        super().flush()


# -- B12 filesystem-errors-raise -------------------------------------------------------------


@fault(
    "B12",
    "unreadable-is-empty",
    "any error reading the file gives an empty store",
    also={
        "B32": "the OSError a FIFO, socket or device at the path raises (B32) is read as an"
        " empty store too"
    },
)
class UnreadableIsEmpty(HookedFileStorage):
    def _read(self) -> bytes:
        try:
            return super()._read()
        except FileNotFoundError:
            raise
        except OSError as exc:  # the bug: the user's history is "missing" now
            logger.warning("cannot read %s (%s); starting empty", self.path, exc)
            raise FileNotFoundError(errno.ENOENT, "unreadable", str(self.path)) from exc


@fault(
    "B12",
    "read-error-moves-aside",
    "a read error other than EACCES is taken as corruption",
    also={
        "B32": "the OSError a FIFO, socket or device at the path raises (B32) moves it aside"
        " too, where nothing may be moved"
    },
)
class ReadErrorMovesAside(HookedFileStorage):
    def _read(self) -> bytes:
        try:
            return super()._read()
        except (FileNotFoundError, PermissionError):
            raise
        except OSError as exc:  # the bug (as upstream): "cannot read it, so it is corrupt"
            raise _Unreadable(exc) from exc

    def _load(self, now: datetime) -> tuple[bytes, Decoded] | None:
        try:
            return super()._load(now)
        except _Unreadable as exc:
            backup = self.path.with_name(f"{self.path.name}.{ref_file._epoch_ms(now)}.bak")
            os.rename(self.path, backup)
            ref_file.logger.warning("%s: %s; moved it aside to %s", self.path, exc, backup)
            return None


class _Unreadable(Exception):
    pass


# -- B13 corrupt-file-backup -----------------------------------------------------------------


@fault(
    "B13",
    "backup-overwrites-same-ms",
    "move-aside renames over an earlier backup (same ms)",
    also={
        "B32": "its chmod of the renamed file narrows the mode of another name of the same"
        " inode (a hard link or symlink target at the path)"
    },
)
class BackupOverwritesSameMs(HookedFileStorage):
    def _move_aside(self, path: Path, epoch_ms: int) -> Path:
        backup = path.with_name(f"{path.name}.{epoch_ms}.bak")
        os.replace(path, backup)  # the bug: a plain rename overwrites
        os.chmod(backup, 0o600)
        return backup


@fault("B13", "backup-named-by-wall-clock", "the backup's epoch-ms comes from time.time()")
class BackupNamedByWallClock(HookedFileStorage):
    def _move_aside(self, path: Path, epoch_ms: int) -> Path:
        return super()._move_aside(path, int(time.time() * 1000))  # the bug: not the clock


@fault("B13", "bom-accepted", "the reader decodes with utf-8-sig: a BOM file loads")
class BomAccepted(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        return super()._decode(data.removeprefix(b"\xef\xbb\xbf"))  # the bug


@fault("B13", "trailing-data-accepted", "the reader uses raw_decode: trailing data is ignored")
class TrailingDataAccepted(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        try:
            text = data.decode("utf-8")
            _, end = json.JSONDecoder().raw_decode(text)
        except ValueError:
            return super()._decode(data)
        return super()._decode(text[:end].encode("utf-8"))  # the bug: the rest is dropped


@fault("B13", "move-aside-not-warned", "moving a corrupt file aside is logged at INFO only")
class MoveAsideNotWarned(HookedFileStorage):
    def _load(self, now: datetime) -> tuple[bytes, Decoded] | None:
        try:
            data = self._read()
        except FileNotFoundError:
            self._remove_stale_temps(now)
            return None
        self._remove_stale_temps(now)
        try:
            decoded = self._decode(data)
        except sessionfile.InvalidFileError as exc:
            backup = self._move_aside(self.path, ref_file._epoch_ms(now))
            logger.info("%s: %s; moved it aside to %s", self.path, exc, backup)  # the bug
            return None
        for skip in decoded.skipped:
            ref_file.logger.warning("%s: skipped %s: %s", self.path, skip.location, skip.reason)
        return data, decoded


# -- B14 future-version ----------------------------------------------------------------------


@fault("B14", "low-versions-accepted", "only versions above 1 are set aside (as upstream)")
class LowVersionsAccepted(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        try:
            return super()._decode(data)
        except UnsupportedVersionError:
            document = json.loads(data, parse_float=Decimal)
            version = document.get("version")
            if isinstance(version, int | Decimal) and not isinstance(version, bool) and version > 1:
                raise
            # The bug: anything else is read as version 1.
            return super()._decode(json.dumps({**document, "version": 1}, default=str).encode())


@fault("B14", "true-is-version-1", "version true passes isinstance(version, int) and == 1")
class TrueIsVersion1(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        try:
            return super()._decode(data)
        except UnsupportedVersionError:
            document = json.loads(data)
            if document.get("version") is True:  # the bug: True == 1 in Python
                return super()._decode(json.dumps({**document, "version": 1}).encode())
            raise


@fault("B14", "future-version-left-in-place", "a newer version's file is ignored, not moved aside")
class FutureVersionLeftInPlace(HookedFileStorage):
    def _move_aside(self, path: Path, epoch_ms: int) -> Path:
        try:
            self._decode(path.read_bytes())
        except UnsupportedVersionError:
            return path  # the bug: "we cannot read it, start empty" -- and overwrite it later
        except sessionfile.InvalidFileError:
            pass
        return super()._move_aside(path, epoch_ms)


# -- B15 invalid-records ---------------------------------------------------------------------


@fault("B15", "one-bad-turn-drops-file", "one invalid turn makes the whole file corrupt")
class OneBadTurnDropsFile(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        decoded = super()._decode(data)
        for skip in decoded.skipped:
            if ".turns[" in skip.location:  # the bug: a turn error aborts the load
                raise CorruptFileError(f"{skip.location}: {skip.reason}")
        return decoded


@fault("B15", "skip-warning-without-location", "skip warnings give the reason, not the location")
class SkipWarningWithoutLocation(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        decoded = super()._decode(data)
        for skip in decoded.skipped:
            logger.warning("%s: skipped a record: %s", self.path, skip.reason)  # the bug
        return replace(decoded, skipped=())


@fault("B15", "unknown-members-not-lossy", "only skipped records count as lossy: extras are lost")
class UnknownMembersNotLossy(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        decoded = super()._decode(data)
        return replace(decoded, lossy=bool(decoded.skipped))  # the bug


@fault("B15", "backup-copied-at-first-save", "the lossy backup copies the path at the first save")
class BackupCopiedAtFirstSave(HookedFileStorage):
    _pending_backup: Path | None = None

    def _write_backup(self, path: Path, data: bytes, epoch_ms: int) -> Path:
        backup = path.with_name(f"{path.name}.{epoch_ms}.bak")
        self._pending_backup = backup
        return backup  # made later, lazily

    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        pending = self._pending_backup
        if pending is not None:
            # The bug: whatever the path holds now (created private, as B20 requires).
            fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, path.read_bytes())
            finally:
                os.close(fd)
            self._pending_backup = None
        super()._save_file(path, temp_path, data)


@fault("B15", "duplicate-id-last-wins", "a repeated session id replaces the earlier record")
class DuplicateIdLastWins(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        decoded = super()._decode(data)
        document = json.loads(data)
        records = document.get("sessions", [])
        last: dict[str, SessionData] = {}
        for session in decoded.sessions:
            last[session.id] = session
        for index, record in enumerate(records):
            duplicate = f"sessions[{index}]"
            if any(s.location == duplicate and "repeats" in s.reason for s in decoded.skipped):
                # The bug: the later duplicate wins (dict assignment), silently.
                reread = (
                    super()
                    ._decode(json.dumps({"version": 1, "sessions": [record]}).encode())
                    .sessions
                )
                if reread:
                    last[reread[0].id] = reread[0]
        skipped = tuple(s for s in decoded.skipped if "repeats" not in s.reason)
        return replace(decoded, sessions=tuple(last.values()), skipped=skipped)


@fault("B15", "nothing-loaded-moved-aside", "a file from which no session loads is moved aside")
class NothingLoadedMovedAside(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        decoded = super()._decode(data)
        if decoded.skipped and not decoded.sessions:
            for skip in decoded.skipped:
                ref_file.logger.warning("%s: skipped %s: %s", self.path, skip.location, skip.reason)
            # The bug: "nothing in it loads, so it is corrupt" (as upstream ends up doing): the
            # file leaves the path although its envelope is valid. The bytes are safe in the
            # backup, but a v1 file that should stay in place until the first save is gone.
            raise CorruptFileError("no session in the file is valid")
        return decoded


# -- B16 stale-temp-cleanup ------------------------------------------------------------------


@fault("B16", "removes-fresh-temps", "every <name>.*.tmp is removed at open, whatever its age")
class RemovesFreshTemps(HookedFileStorage):
    def _remove_stale_temps(self, now: datetime) -> None:
        for temp in self.path.parent.glob(self.path.name + ".*.tmp"):
            temp.unlink(missing_ok=True)  # the bug: another writer's live temp file too


@fault("B16", "stale-by-wall-clock", "temp file age is measured against time.time(), not the clock")
class StaleByWallClock(HookedFileStorage):
    def _remove_stale_temps(self, now: datetime) -> None:
        cutoff = time.time() - 3600  # the bug: the backend's clock is its only time
        for temp in self.path.parent.glob(self.path.name + ".*.tmp"):
            if temp.stat().st_mtime < cutoff:
                temp.unlink(missing_ok=True)


@fault("B16", "removes-any-stale-tmp", "every stale *.tmp of the directory is removed")
class RemovesAnyStaleTmp(HookedFileStorage):
    def _remove_stale_temps(self, now: datetime) -> None:
        cutoff = now.timestamp() - 3600
        if not self.path.parent.is_dir():
            return
        for temp in self.path.parent.glob("*.tmp"):  # the bug: other files' temps too
            if temp.stat().st_mtime < cutoff:
                temp.unlink(missing_ok=True)
