"""The in-memory session table shared by every reference backend.

``SessionTable`` holds the rules of SPEC.md §1.3 and §2.1 that do not depend on where sessions
are kept: TTL expiry, the LRU cap, touching and access order, the session-ID rule and
immutable snapshots. ``add_turn`` costs the same whatever the session's history: a new turn
goes to the session's private append-only **tail**, folded into an immutable snapshot only when
one is read (``_folded``). It also counts revisions and keeps the **base**, the state it last
synchronised with a file (loaded or saved), so a file backend knows what to save and can merge
with other instances' saves (SPEC.md §8, ``reference.merge``). ``TableStorage`` maps
``spec.SessionStorage`` onto a table; backends subclass it and react to changes in
``_changed``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from sessionspec.reference.fastload import unchecked_session
from sessionspec.reference.merge import merge_stores, same_session
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
class Snapshot:
    """The live sessions in list order, as of ``revision``, with what a merge needs: the base
    they changed (``base``, id to session) and each session's access rank (``access``: a
    higher rank is a later access; ``mark`` is higher than every rank taken so far)."""

    revision: int
    sessions: tuple[SessionData, ...]
    base: Mapping[str, SessionData] = field(default_factory=dict)
    access: Mapping[str, int] = field(default_factory=dict)
    mark: int = 0


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
        # Turns added since each session's snapshot in _sessions was made; a session's state
        # is its snapshot plus its tail. Appending here copies nothing (B02: O(1) add_turn).
        self._tails: dict[str, list[ConversationTurn]] = {}
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
        # What this instance last synchronised with (the file as loaded, or its last save or
        # refresh): the base of the next merge. Entries are shared, immutable: cheap.
        self._base: dict[str, SessionData] = dict(self._sessions)

    def after_fork(self) -> None:
        """In a child made by fork(): a lock another thread held at the fork stays held (B33)."""
        self._lock = threading.Lock()

    @property
    def ttl(self) -> timedelta:
        """How long an untouched session lives (B17)."""
        return self._ttl

    @property
    def max_sessions(self) -> int:
        """The cap on live sessions (B18)."""
        return self._max_sessions

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
            self._fold_all()
            return self._in_list_order(self._sessions.values())

    def snapshot(self) -> Snapshot:
        """The live sessions to save. Cheap under the lock: entries are immutable."""
        with self._lock:
            now = self._now()
            self._fold_all()
            revision, sessions, access = self._revision, dict(self._sessions), dict(self._access)
            base, mark = self._base, self._next_access
        live = [s for s in sessions.values() if not self._expired(s, now)]
        live.sort(key=lambda s: (s.last_accessed_at, access[s.id]), reverse=True)
        return Snapshot(revision, tuple(live), base, access, mark)

    def synced(self, saved_from: Snapshot, stored: Sequence[SessionData]) -> None:
        """``stored`` (list order) is now the file, written from ``saved_from``: it becomes the
        base, and memory takes in what it holds from others, keeping what this instance did
        since the snapshot (the same merge, SPEC.md §8.2)."""
        if stored is saved_from.sessions:
            # Nothing of others' was merged in: memory already holds all of it (the merge would
            # give memory back, the same order; it costs the changed sessions' histories).
            with self._lock:
                self._base = {s.id: s for s in stored}
            return
        before = {s.id: s for s in saved_from.sessions}
        with self._lock:
            self._absorb(before, stored, lambda i: self._access[i] >= saved_from.mark)

    def refresh(self, stored: Sequence[SessionData]) -> None:
        """``stored`` (list order) is what another instance saved: merge it into memory
        against the base, which it then becomes (B29)."""
        with self._lock:
            base = self._base
            self._absorb(
                base, stored, lambda i: not same_session(self._sessions.get(i), base.get(i))
            )

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
            # A touch, as add_turn's: the turns and any tail stay where they are (no copy).
            self._sessions[session_id] = _touched(current, now)
            return self._touch(session_id)

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
        checked = _checked_turn(turn)
        with self._lock:
            now = self._now()
            current = self._stored(session_id)
            if current is None or self._expired(current, now):
                return None
            # Not _live(): it would fold the tail, copying the history this call must not copy.
            # Keys are the store's own id (current.id), never the caller's object (B24).
            self._sessions[current.id] = _touched(current, now)
            tail = self._tails.get(current.id)
            if tail is None:
                self._tails[current.id] = [checked]
            else:
                tail.append(checked)
            return self._touch(current.id)

    def delete(self, session_id: str) -> int | None:
        with self._lock:
            if self._live(session_id, self._now()) is None:
                return None
            self._remove(session_id)
            return self._revision

    # -- internals, called with the lock held -----------------------------------------------

    def _now(self) -> datetime:
        return to_millis(self._clock())

    def _expired(self, session: SessionData, now: datetime) -> bool:
        return now - session.last_accessed_at > self._ttl  # exactly the TTL is live (B17)

    def _stored(self, session_id: str) -> SessionData | None:
        """The session stored under ``session_id`` (its tail not folded in), or None for an
        unknown or invalid id (B08)."""
        # Every key is a valid id (the readers and ensure() check them), so a plain str needs
        # no grammar check to be looked up: the check costs a sixth of add_turn. Anything
        # else is checked first, which also keeps unhashable ids out of the dict.
        if type(session_id) is str or is_valid_session_id(session_id):
            return self._sessions.get(session_id)
        return None

    def _live(self, session_id: str, now: datetime) -> SessionData | None:
        """The live session, its tail folded in, or None for an unknown or expired id."""
        session = self._stored(session_id)
        if session is None or self._expired(session, now):
            return None
        return self._folded(session_id)

    def _folded(self, session_id: str) -> SessionData | None:
        """The session with its tail folded into its snapshot (which is then cached in
        ``_sessions``), or None. Costs the history once after each run of ``add_turn``: reads
        pay for snapshots, mutations do not."""
        session = self._sessions.get(session_id)
        tail = self._tails.pop(session_id, None)
        if tail is not None and session is not None:
            session = SessionData(
                session.id,
                session.created_at,
                session.last_accessed_at,
                session.turns + tuple(tail),  # one copy; (*a, *b) makes a list first
                session.codex_conversation_id,
            )
            self._sessions[session_id] = session
        return session

    def _fold_all(self) -> None:
        for session_id in list(self._tails):
            self._folded(session_id)

    def _in_list_order(self, sessions: Iterable[SessionData]) -> list[SessionData]:
        return sorted(
            sessions, key=lambda s: (s.last_accessed_at, self._access[s.id]), reverse=True
        )

    def _purge(self, now: datetime) -> None:
        # Not a change of this instance: every instance sees the same expiry.
        for session_id in [i for i, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[session_id], self._access[session_id]
            self._tails.pop(session_id, None)

    def _absorb(
        self,
        base: Mapping[str, SessionData],
        stored: Sequence[SessionData],
        is_ours: Callable[[str], bool],
    ) -> None:
        """Memory := merge(base, memory, stored); the base := stored. Access order: the
        stored file's order, then the sessions ``is_ours`` says this instance touched since,
        above them in their own order (B04: file order breaks ties, then our later accesses)."""
        self._fold_all()
        theirs = {s.id: s for s in stored}
        ours = sorted((i for i in self._sessions if is_ours(i)), key=self._access.__getitem__)
        self._sessions = merge_stores(base, self._sessions, theirs)
        rank = self._next_access
        access: dict[str, int] = {}
        for session in reversed(stored):
            if session.id in self._sessions:
                access[session.id] = rank
                rank += 1
        for session_id in ours:
            if session_id in self._sessions:
                access[session_id] = rank
                rank += 1
        for session_id in self._sessions.keys() - access.keys():  # cannot happen; keep total
            access[session_id] = rank
            rank += 1
        self._access, self._next_access = access, rank
        self._base = theirs
        over_cap = self._in_list_order(self._sessions.values())[self._max_sessions :]
        for session in over_cap:  # B18 holds in memory too; the next save drops them
            del self._sessions[session.id], self._access[session.id]

    def _put(self, session: SessionData) -> int:
        """Store a changed session, whole (made from ``_live`` or ``_folded``: any tail is
        dropped), and make it the most recently accessed (a touch)."""
        self._sessions[session.id] = session
        self._tails.pop(session.id, None)
        return self._touch(session.id)

    def _touch(self, session_id: str) -> int:
        """Make the session the most recently accessed; count a change."""
        self._access[session_id] = self._next_access
        self._next_access += 1
        self._revision += 1
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
        self._tails.pop(session_id, None)
        self._revision += 1


def _checked_turns(turns: Iterable[object]) -> tuple[ConversationTurn, ...]:
    """The turns as a tuple the store owns: nothing of the caller's stays mutable in it (B24)."""
    return tuple(map(_checked_turn, turns))


def _checked_turn(turn: object) -> ConversationTurn:
    """The turn itself when it is a plain, immutable ConversationTurn, else a plain copy (B24)."""
    if type(turn) is ConversationTurn and type(turn.prompt) is type(turn.response) is str:
        return turn
    if not isinstance(turn, ConversationTurn):
        raise ValidationError(f"turns must be spec.ConversationTurn, got {type(turn).__name__}")
    # A subclass may carry attributes of its own: keep a plain copy, same values.
    return ConversationTurn(_own(turn.prompt), _own(turn.response), turn.timestamp)


def _touched(session: SessionData, now: datetime) -> SessionData:
    """``session`` accessed at ``now``, made on every mutation without the dataclass's checks
    (``dataclasses.replace`` costs several times more)."""
    return unchecked_session(
        session.id, session.created_at, now, session.turns, session.codex_conversation_id
    )


def _own(text: str) -> str:
    """``text`` as a plain str, the same characters: a str subclass may carry mutable state."""
    return str.__str__(text)


class TableStorage:
    """``spec.SessionStorage`` on a ``SessionTable``; subclasses persist in ``_changed``."""

    def __init__(self, table: SessionTable) -> None:
        self._table = table

    def _changed(self, revision: int) -> None:
        """Called after every mutation that changed something, with the new revision."""

    def _refresh(self) -> None:
        """Called before every read, and before an id is taken as unknown: a backend shared
        with other instances takes in what they saved since (B29). Here: nothing."""

    def _known(self, mutate: Callable[[], int | None]) -> int | None:
        """Run a mutation of one id; if it found the id unknown, refresh and try once more,
        so a session another instance created is never treated as unknown (B29)."""
        revision = mutate()
        if revision is None:
            self._refresh()
            revision = mutate()
        return revision

    def create_session(self) -> str:
        """Purge, create a new empty UUID4 session stamped now, enforce the cap (B01, B17, B18)."""
        session_id, revision = self._table.create()
        self._changed(revision)
        return session_id

    def ensure_session(self, session_id: str) -> None:
        """Validate the id (B08); purge; create or touch; enforce the cap (B07, B17, B18, B29)."""
        self._refresh()
        self._changed(self._table.ensure(session_id))

    def get_session(self, session_id: str) -> SessionData | None:
        """The live session's immutable snapshot or None; a pure read (B23, B24, B17, B29)."""
        self._refresh()
        return self._table.get(session_id)

    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        """Replace only the fields given, copying the turns, and touch (B02, B06, B24, B29)."""
        revision = self._known(
            lambda: self._table.update(
                session_id, turns=turns, codex_conversation_id=codex_conversation_id
            )
        )
        if revision is not None:
            self._changed(revision)

    def delete_session(self, session_id: str) -> bool:
        """Remove a live session for good: True; unknown, expired or gone: False (B05, B29)."""
        revision = self._known(lambda: self._table.delete(session_id))
        if revision is not None:
            self._changed(revision)
        return revision is not None

    def list_sessions(self) -> list[SessionData]:
        """Purge, then a new list of the live sessions in list order, no touch (B04, B23, B24,
        B29)."""
        self._refresh()
        return self._table.live_sessions()

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        """Append the turn and touch; unknown or expired id: nothing (B02, B17, B29)."""
        revision = self._table.add_turn(session_id, turn)  # _known's, inline: the hot path
        if revision is None:
            self._refresh()
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
        """The live session's conversation id or None; a pure read (B06, B23, B29)."""
        self._refresh()
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
