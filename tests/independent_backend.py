"""A second, independent backend written from SPEC.md alone (not from sessionspec.reference).

It exists to prove the conformance kit is not tied to the reference: it saves synchronously
after every mutation (allowed: write-behind is a SHOULD), keeps a plain dict plus an access
counter, and passes every behaviour (updated to spec 1.1: B16 exact, B18 under clock skew; to
spec 1.3: B32's non-blocking, regular-files-only read and a copied backup for a shared inode;
B19's fsync of a new directory's parent).
``IndependentMemoryStorage`` is its core-only sibling.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sessionspec.spec import (
    MAX_SESSIONS,
    SESSION_TTL,
    STALE_TEMP_AGE,
    UNSET,
    Clock,
    ConversationTurn,
    SessionData,
    Unset,
    check_session_id,
    format_timestamp,
    has_sub_millisecond_digits,
    is_valid_session_id,
    parse_timestamp,
    to_millis,
    utc_now,
)

log = logging.getLogger("independent_backend")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SESSION_KEYS = {"id", "createdAt", "lastAccessedAt", "turns", "codexConversationId"}
_TURN_KEYS = {"prompt", "response", "timestamp"}


@dataclass
class _Session:
    id: str
    created: datetime
    accessed: datetime
    order: int
    turns: list[ConversationTurn] = field(default_factory=list)
    cid: str | None = None

    def data(self) -> SessionData:
        return SessionData(self.id, self.created, self.accessed, tuple(self.turns), self.cid)


class IndependentMemoryStorage:
    """Core level only: everything in a dict."""

    sessionspec_levels = ("core",)

    def __init__(self, path: Path, *, clock: Clock = utc_now) -> None:
        self._path = Path(path)
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._counter = 0

    # -- helpers ---------------------------------------------------------------------------
    def _now(self) -> datetime:
        return to_millis(self._clock())

    def _live(self, session_id: object) -> _Session | None:
        if not is_valid_session_id(session_id):
            return None
        session = self._sessions.get(session_id)  # type: ignore[arg-type]
        if session is None or self._now() - session.accessed > SESSION_TTL:
            return None
        return session

    def _tick(self) -> int:
        self._counter += 1
        return self._counter

    def _touch(self, session: _Session) -> None:
        session.accessed = self._now()
        session.order = self._tick()

    def _purge(self) -> None:
        now = self._now()
        for key in [k for k, s in self._sessions.items() if now - s.accessed > SESSION_TTL]:
            del self._sessions[key]

    def _ordered(self) -> list[_Session]:
        self._purge()
        return self._ordered_all()

    def _ordered_all(self) -> list[_Session]:
        return sorted(self._sessions.values(), key=lambda s: (s.accessed, s.order), reverse=True)

    def _add(self, session_id: str) -> None:
        now = self._now()
        self._sessions[session_id] = _Session(session_id, now, now, self._tick())
        # The new session survives the cap even behind sessions ahead of the clock (B18).
        others = [s for s in self._ordered() if s.id != session_id]
        for old in others[MAX_SESSIONS - 1 :]:
            del self._sessions[old.id]

    def _changed(self) -> None:
        """Hook for persistence."""

    # -- the interface ---------------------------------------------------------------------
    def create_session(self) -> str:
        self._purge()
        session_id = str(__import__("uuid").uuid4())
        while session_id in self._sessions:
            session_id = str(__import__("uuid").uuid4())
        self._add(session_id)
        self._changed()
        return session_id

    def ensure_session(self, session_id: str) -> None:
        check_session_id(session_id)
        self._purge()
        session = self._live(session_id)
        if session is None:
            self._add(session_id)
        else:
            self._touch(session)
        self._changed()

    def get_session(self, session_id: str) -> SessionData | None:
        session = self._live(session_id)
        return session.data() if session else None

    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        session = self._live(session_id)
        if session is None:
            return
        if not isinstance(turns, Unset):
            session.turns = list(turns)
        if not isinstance(codex_conversation_id, Unset):
            session.cid = codex_conversation_id
        self._touch(session)
        self._changed()

    def delete_session(self, session_id: str) -> bool:
        session = self._live(session_id)
        if session is None:
            return False
        del self._sessions[session.id]
        self._changed()
        return True

    def list_sessions(self) -> list[SessionData]:
        return [s.data() for s in self._ordered()]

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        session = self._live(session_id)
        if session is None:
            return
        session.turns.append(turn)
        self._touch(session)
        self._changed()

    def reset_session(self, session_id: str) -> None:
        self.update_session(session_id, turns=[], codex_conversation_id=None)

    def set_codex_conversation_id(self, session_id: str, conversation_id: str) -> None:
        self.update_session(session_id, codex_conversation_id=conversation_id)

    def get_codex_conversation_id(self, session_id: str) -> str | None:
        session = self._live(session_id)
        return session.cid if session else None

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class IndependentFileStorage(IndependentMemoryStorage):
    """core + durable + file-v1: a JSON file rewritten atomically after every mutation."""

    sessionspec_levels = ("core", "durable", "file-v1")

    def __init__(self, path: Path, *, clock: Clock = utc_now) -> None:
        super().__init__(path, clock=clock)
        self._token = self._make_token()
        self._dirty = False
        self._error_logged = False
        self._unsaved_original: bytes | None = None
        self._closed = False
        self._remove_stale_temps()
        self._load()

    def _make_token(self) -> str:
        """The ``<unique>`` of this instance's temp name ``<name>.<unique>.tmp``."""
        return f"{os.getpid()}.{secrets.token_hex(8)}"

    # -- reading ---------------------------------------------------------------------------
    def _remove_stale_temps(self) -> None:
        directory, prefix = self._path.parent, self._path.name + "."
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        limit = self._now() - STALE_TEMP_AGE  # now truncated to ms, like every "now"
        for name in names:
            # <name>.<unique>.tmp with a non-empty <unique>
            if not (
                name.startswith(prefix) and name.endswith(".tmp") and len(name) > len(prefix) + 4
            ):
                continue
            candidate = directory / name
            with contextlib.suppress(OSError):
                info = candidate.lstat()
                if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                    continue  # symlinks, directories, FIFOs and other users' files stay
                limit_ns = (limit - _EPOCH) // timedelta(microseconds=1) * 1000
                if info.st_mtime_ns < limit_ns:
                    candidate.unlink()

    def _backup_name(self, attempt: int) -> Path:
        ms = (self._now() - _EPOCH) // timedelta(milliseconds=1)
        suffix = f"{ms}.bak" if attempt == 0 else f"{ms}.{attempt}.bak"
        return self._path.with_name(f"{self._path.name}.{suffix}")

    def _move_aside(self, why: str, raw: bytes) -> None:
        info = os.lstat(self._path)
        # A link would share the inode: chmod-ing it would change the other name's file (B32).
        linkable = stat.S_ISREG(info.st_mode) and info.st_nlink == 1
        for attempt in range(10_000):
            backup = self._backup_name(attempt)
            try:
                if linkable:
                    os.link(self._path, backup)  # never overwrites, unlike rename
                    os.chmod(backup, 0o600)
                else:
                    self._write_new(backup, raw)
            except FileExistsError:
                continue
            os.unlink(self._path)
            self._fsync_dir()
            log.warning("%s: %s; moved it aside to %s", self._path, why, backup)
            return
        raise OSError(f"no free backup name for {self._path}")

    def _read(self) -> bytes | None:
        """The file's bytes, or None when it is missing (any other error raises)."""
        try:  # O_NONBLOCK: a FIFO must not wait for a writer (B32)
            fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        with open(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{self._path} is not a regular file")
            return file.read()

    def _load(self) -> None:
        raw = self._read()
        if raw is None:
            return
        try:
            if raw.startswith(b"\xef\xbb\xbf"):
                raise ValueError("byte-order mark")
            repeated: list[bool] = []
            document = json.loads(
                raw.decode("utf-8"),
                parse_constant=_reject_constant,
                object_pairs_hook=lambda pairs: _last_wins(pairs, repeated),
            )
        except ValueError as exc:
            self._move_aside(f"cannot parse ({exc})", raw)
            return
        if not isinstance(document, dict):
            self._move_aside("top level is not an object", raw)
            return
        version = document.get("version")
        if type(version) not in (int, float) or version != 1:
            self._move_aside(f"unknown version {version!r}", raw)
            return
        records = document.get("sessions")
        if not isinstance(records, list):
            self._move_aside("'sessions' is not an array", raw)
            return
        lossy = bool(repeated) or bool(set(document) - {"version", "sessions"})
        for index, record in enumerate(records):
            lossy |= self._load_record(index, record, len(records))
        # The cap applies to what loads, too: keep the first 100 in list order.
        now = self._now()
        live = [s for s in self._ordered_all() if now - s.accessed <= SESSION_TTL]
        for extra in live[MAX_SESSIONS:]:
            del self._sessions[extra.id]
            lossy = True
        if lossy:
            self._unsaved_original = raw

    def _load_record(self, index: int, record: Any, total: int) -> bool:
        """Load one session; returns True when something of it was not carried into memory."""
        where = f"sessions[{index}]"
        try:
            if not isinstance(record, dict):
                raise ValueError("not an object")
            session_id = record.get("id")
            if not is_valid_session_id(session_id) or session_id in self._sessions:
                raise ValueError("invalid or duplicate id")
            created = parse_timestamp(record.get("createdAt"))
            accessed = parse_timestamp(record.get("lastAccessedAt"))
            turns = record.get("turns")
            if not isinstance(turns, list):
                raise ValueError("turns is not an array")
            cid = record.get("codexConversationId")
            if cid is not None and not isinstance(cid, str):
                raise ValueError("codexConversationId is neither a string nor null")
        except ValueError as exc:
            log.warning("%s: skipped %s: %s", self._path, where, exc)
            return True
        lossy = bool(set(record) - _SESSION_KEYS) or any(
            has_sub_millisecond_digits(record[k]) for k in ("createdAt", "lastAccessedAt")
        )
        loaded = []
        for position, turn in enumerate(turns):
            try:
                if not isinstance(turn, dict):
                    raise ValueError("not an object")
                stamp = parse_timestamp(turn.get("timestamp"))
                prompt, response = turn.get("prompt"), turn.get("response")
                if not isinstance(prompt, str) or not isinstance(response, str):
                    raise ValueError("prompt or response is not a string")
            except ValueError as exc:
                log.warning("%s: skipped %s.turns[%d]: %s", self._path, where, position, exc)
                lossy = True
                continue
            lossy |= bool(set(turn) - _TURN_KEYS) or has_sub_millisecond_digits(turn["timestamp"])
            loaded.append(ConversationTurn(prompt, response, stamp))
        # Earlier in the file = accessed later.
        self._sessions[session_id] = _Session(
            session_id, created, accessed, total - index, loaded, cid
        )
        self._counter = max(self._counter, total + 1)
        return lossy

    # -- writing ---------------------------------------------------------------------------
    def _changed(self) -> None:
        self._dirty = True
        try:
            self._save()
        except OSError as exc:
            self._report_failure(exc)

    def _report_failure(self, exc: OSError) -> None:
        """Log a failed save at ERROR, once until a save succeeds."""
        if not self._error_logged:
            log.error("%s: saving failed: %s", self._path, exc)
            self._error_logged = True

    def _document(self) -> bytes:
        return self._encode(self._envelope())

    def _envelope(self) -> dict[str, Any]:
        sessions = []
        for s in self._ordered():
            item: dict[str, Any] = {
                "id": s.id,
                "createdAt": format_timestamp(s.created),
                "lastAccessedAt": format_timestamp(s.accessed),
                "turns": [
                    {
                        "prompt": t.prompt,
                        "response": t.response,
                        "timestamp": format_timestamp(t.timestamp),
                    }
                    for t in s.turns
                ],
            }
            if s.cid is not None:
                item["codexConversationId"] = s.cid
            sessions.append(item)
        return {"version": 1, "sessions": sessions}

    def _encode(self, envelope: dict[str, Any]) -> bytes:
        # ensure_ascii escapes lone surrogates as \uXXXX, so the bytes are valid UTF-8.
        return json.dumps(envelope, indent=2).encode("ascii")

    def _make_parents(self) -> None:
        missing = []
        directory = self._path.parent
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for directory in reversed(missing):
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # the umask may have narrowed or (0o222) broken it
            _fsync(directory.parent)  # the new entry, as durable as the file (B19, 1.3)

    def _fsync_dir(self) -> None:
        _fsync(self._path.parent)

    def _write_new(self, path: Path, content: bytes) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _save(self) -> None:
        self._write(self._document())
        self._dirty = False

    def _write(self, content: bytes) -> None:
        """Save ``content``: the lossy-load backup if one is owed, then the atomic replace."""
        self._make_parents()
        if self._unsaved_original is not None:
            for attempt in range(10_000):
                try:
                    self._write_new(self._backup_name(attempt), self._unsaved_original)
                except FileExistsError:
                    continue
                log.warning("%s: kept the original in %s", self._path, self._backup_name(attempt))
                break
            self._unsaved_original = None
        temp = self._path.with_name(f"{self._path.name}.{self._token}.tmp")
        try:
            self._write_new(temp, content)
            self._install(temp)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        self._fsync_dir()
        self._error_logged = False

    def _install(self, temp: Path) -> None:
        """Rename the complete, fsynced temp file over the sessions file."""
        os.replace(temp, self._path)

    def flush(self) -> None:
        if self._dirty:
            self._save()

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True


def _fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_wins(pairs: list[tuple[str, Any]], repeated: list[bool]) -> dict[str, Any]:
    """Read an object as JSON.parse does (the last repeated member wins), noting repeats."""
    if len({key for key, _ in pairs}) != len(pairs):
        repeated.append(True)
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
