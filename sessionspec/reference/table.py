"""The in-memory session table shared by every reference backend.

``SessionTable`` holds the rules of SPEC.md §1.3 and §2.1 that do not depend on where sessions
are kept: TTL expiry, the LRU cap, touching and access order, the session-ID rule and
immutable snapshots. It also counts revisions and remembers which ids this instance changed
or deleted since the last sync, so a file backend knows what to save and a future
read-merge-write knows what to merge. ``TableStorage`` maps ``spec.SessionStorage`` onto a
table; backends subclass it and react to changes in ``_changed``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from sessionspec.spec import (
    MAX_SESSIONS,
    SESSION_TTL,
    UNSET,
    Clock,
    ConversationTurn,
    SessionData,
    Unset,
    ValidationError,
    check_session_id,
    is_valid_session_id,
    to_millis,
    utc_now,
)


@dataclass(frozen=True, slots=True)
class Changes:
    """Ids this instance created or changed, and ids it deleted, since the last sync."""

    changed: frozenset[str]
    deleted: frozenset[str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live sessions in list order, as of ``revision``."""

    revision: int
    sessions: tuple[SessionData, ...]


class SessionTable:
    """Sessions in memory with expiry, the cap and access order. Thread-safe.

    Mutators return the new revision when they changed something and None when they did
    nothing (unknown or expired id), so callers save only real changes.
    """

    def __init__(
        self,
        sessions: Iterable[SessionData] = (),
        *,
        clock: Clock = utc_now,
        max_sessions: int = MAX_SESSIONS,
        ttl: timedelta = SESSION_TTL,
        now: datetime | None = None,
    ) -> None:
        """``sessions`` in file order: earlier means accessed later among equal timestamps.

        ``now`` is the loading operation's one reading of the clock (SPEC.md §1.3); without
        it the table reads ``clock`` itself.
        """
        loaded = list(sessions)
        self._clock = clock
        self._max_sessions = max_sessions
        self._ttl = ttl
        self._lock = threading.Lock()
        self._sessions = {s.id: s for s in loaded}
        # Access order: a higher number is a later access; it breaks timestamp ties (B04).
        self._access = {s.id: len(loaded) - i for i, s in enumerate(loaded)}
        self._next_access = len(loaded) + 1
        # The cap holds at load too (SPEC.md §3.2): like expiry, every instance computes the
        # same from the file and its clock, so this is not a change of this instance.
        now = self._now() if now is None else to_millis(now)
        live = [s for s in loaded if not self._expired(s, now)]
        over_cap = self._in_list_order(live)[max_sessions:]
        for session in over_cap:
            del self._sessions[session.id], self._access[session.id]
        #: Live sessions of the file left out over the cap: the load is lossy (B15, B18).
        self.evicted_at_load = tuple(s.id for s in over_cap)
        self._revision = 0
        # id -> revision of this instance's latest change or deletion, until synced.
        self._changed: dict[str, int] = {}
        self._deleted: dict[str, int] = {}

    @property
    def revision(self) -> int:
        """Counts the changes made through this table; 0 means "as loaded"."""
        return self._revision

    # -- reads ------------------------------------------------------------------------------

    def get(self, session_id: str) -> SessionData | None:
        with self._lock:
            return self._live(session_id, self._now())

    def live_sessions(self) -> list[SessionData]:
        with self._lock:
            self._purge(self._now())
            return self._in_list_order(self._sessions.values())

    def snapshot(self) -> Snapshot:
        """The live sessions to save. Cheap under the lock: entries are immutable."""
        with self._lock:
            now = self._now()
            revision, sessions, access = self._revision, dict(self._sessions), dict(self._access)
        live = [s for s in sessions.values() if not self._expired(s, now)]
        live.sort(key=lambda s: (s.last_accessed_at, access[s.id]), reverse=True)
        return Snapshot(revision, tuple(live))

    # -- mutations --------------------------------------------------------------------------

    def create(self) -> tuple[str, int]:
        with self._lock:
            now = self._now()
            self._purge(now)
            session_id = str(uuid.uuid4())
            while session_id in self._sessions:  # ids never repeat within a store (B01)
                session_id = str(uuid.uuid4())
            return session_id, self._insert(SessionData(session_id, now, now))

    def ensure(self, session_id: str) -> int:
        session_id = _own(check_session_id(session_id))  # the only method that raises (B08)
        with self._lock:
            now = self._now()
            self._purge(now)
            current = self._sessions.get(session_id)
            if current is None:
                return self._insert(SessionData(session_id, now, now))
            return self._put(replace(current, last_accessed_at=now))

    def update(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> int | None:
        new_turns = None if isinstance(turns, Unset) else _checked_turns(turns)
        if not isinstance(codex_conversation_id, Unset | str | None):
            raise ValidationError("codex_conversation_id must be a str or None")
        if isinstance(codex_conversation_id, str):
            codex_conversation_id = _own(codex_conversation_id)
        with self._lock:
            now = self._now()
            current = self._live(session_id, now)
            if current is None:
                return None
            updated = replace(current, last_accessed_at=now)
            if new_turns is not None:
                updated = replace(updated, turns=new_turns)
            if not isinstance(codex_conversation_id, Unset):
                updated = replace(updated, codex_conversation_id=codex_conversation_id)
            return self._put(updated)

    def add_turn(self, session_id: str, turn: ConversationTurn) -> int | None:
        (checked,) = _checked_turns([turn])
        with self._lock:
            now = self._now()
            current = self._live(session_id, now)
            if current is None:
                return None
            return self._put(
                replace(current, last_accessed_at=now, turns=(*current.turns, checked))
            )

    def delete(self, session_id: str) -> int | None:
        with self._lock:
            if self._live(session_id, self._now()) is None:
                return None
            self._remove(session_id)
            return self._revision

    # -- change tracking --------------------------------------------------------------------

    def changes(self) -> Changes:
        """What this instance changed since the last ``mark_synced``."""
        with self._lock:
            return Changes(frozenset(self._changed), frozenset(self._deleted))

    def mark_synced(self, revision: int) -> None:
        """Forget the changes up to ``revision``: they are stored (for example saved)."""
        with self._lock:
            for pending in (self._changed, self._deleted):
                for session_id in [i for i, rev in pending.items() if rev <= revision]:
                    del pending[session_id]

    # -- internals, called with the lock held -----------------------------------------------

    def _now(self) -> datetime:
        return to_millis(self._clock())

    def _expired(self, session: SessionData, now: datetime) -> bool:
        return now - session.last_accessed_at > self._ttl  # exactly the TTL is live (B17)

    def _live(self, session_id: str, now: datetime) -> SessionData | None:
        if not is_valid_session_id(session_id):  # also keeps unhashable ids out of the dict
            return None
        session = self._sessions.get(session_id)
        return None if session is None or self._expired(session, now) else session

    def _in_list_order(self, sessions: Iterable[SessionData]) -> list[SessionData]:
        return sorted(
            sessions, key=lambda s: (s.last_accessed_at, self._access[s.id]), reverse=True
        )

    def _purge(self, now: datetime) -> None:
        # Not a change of this instance: every instance sees the same expiry.
        for session_id in [i for i, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[session_id], self._access[session_id]

    def _put(self, session: SessionData) -> int:
        """Store a changed session and make it the most recently accessed (a touch)."""
        self._sessions[session.id] = session
        self._access[session.id] = self._next_access
        self._next_access += 1
        self._revision += 1
        self._changed[session.id] = self._revision
        self._deleted.pop(session.id, None)
        return self._revision

    def _insert(self, session: SessionData) -> int:
        """Add a new session, then evict the least recently accessed others over the cap."""
        self._put(session)
        if len(self._sessions) > self._max_sessions:
            ordered = self._in_list_order(self._sessions.values())
            victims = [s.id for s in ordered if s.id != session.id]
            for session_id in victims[self._max_sessions - 1 :]:
                self._remove(session_id)
        return self._revision

    def _remove(self, session_id: str) -> None:
        del self._sessions[session_id], self._access[session_id]
        self._revision += 1
        self._deleted[session_id] = self._revision
        self._changed.pop(session_id, None)


def _checked_turns(turns: Iterable[object]) -> tuple[ConversationTurn, ...]:
    """The turns as a tuple the store owns: nothing of the caller's stays mutable in it (B24)."""
    checked = []
    for turn in turns:
        if not isinstance(turn, ConversationTurn):
            raise ValidationError(f"turns must be spec.ConversationTurn, got {type(turn).__name__}")
        if not (type(turn) is ConversationTurn and type(turn.prompt) is type(turn.response) is str):
            # A subclass may carry attributes of its own: keep a plain copy, same values.
            turn = ConversationTurn(_own(turn.prompt), _own(turn.response), turn.timestamp)
        checked.append(turn)
    return tuple(checked)


def _own(text: str) -> str:
    """``text`` as a plain str, the same characters: a str subclass may carry mutable state."""
    return str.__str__(text)


class TableStorage:
    """``spec.SessionStorage`` on a ``SessionTable``; subclasses persist in ``_changed``."""

    def __init__(self, table: SessionTable) -> None:
        self._table = table

    def _changed(self, revision: int) -> None:
        """Called after every mutation that changed something, with the new revision."""

    def create_session(self) -> str:
        """Purge, create a new empty UUID4 session stamped now, enforce the cap (B01, B17, B18)."""
        session_id, revision = self._table.create()
        self._changed(revision)
        return session_id

    def ensure_session(self, session_id: str) -> None:
        """Validate the id (B08); purge; create or touch; enforce the cap (B07, B17, B18)."""
        self._changed(self._table.ensure(session_id))

    def get_session(self, session_id: str) -> SessionData | None:
        """The live session's immutable snapshot or None; a pure read (B23, B24, B17)."""
        return self._table.get(session_id)

    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        """Replace only the fields given, copying the turns, and touch (B02, B06, B24)."""
        revision = self._table.update(
            session_id, turns=turns, codex_conversation_id=codex_conversation_id
        )
        if revision is not None:
            self._changed(revision)

    def delete_session(self, session_id: str) -> bool:
        """Remove a live session for good: True; unknown, expired or gone: False (B05)."""
        revision = self._table.delete(session_id)
        if revision is not None:
            self._changed(revision)
        return revision is not None

    def list_sessions(self) -> list[SessionData]:
        """Purge, then a new list of the live sessions in list order, no touch (B04, B23, B24)."""
        return self._table.live_sessions()

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        """Append the turn and touch; unknown or expired id: nothing (B02, B17)."""
        revision = self._table.add_turn(session_id, turn)
        if revision is not None:
            self._changed(revision)

    def reset_session(self, session_id: str) -> None:
        """Clear turns and conversation id, keep id and created_at, touch (B03)."""
        self.update_session(session_id, turns=(), codex_conversation_id=None)

    def set_codex_conversation_id(self, session_id: str, conversation_id: str) -> None:
        """Set the conversation id and touch; unknown or expired id: nothing (B06)."""
        if not isinstance(conversation_id, str):
            raise ValidationError("conversation_id must be a str")
        self.update_session(session_id, codex_conversation_id=conversation_id)

    def get_codex_conversation_id(self, session_id: str) -> str | None:
        """The live session's conversation id or None; a pure read (B06, B23)."""
        session = self._table.get(session_id)
        return None if session is None else session.codex_conversation_id

    def flush(self) -> None:
        """Nothing to do for a table kept only in memory."""

    def close(self) -> None:
        """Flush (B21); a table kept only in memory has nothing else to release."""
        self.flush()

    def __enter__(self) -> Self:
        """The storage itself; ``with storage:`` closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Call ``close()``."""
        self.close()
