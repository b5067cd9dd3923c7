"""A small, obviously correct model of a store, written from SPEC.md alone.

It is the oracle of the state machine. It keeps an explicit access counter instead of relying
on dict order, and recomputes list order from scratch on every read: slow, but plain. Its
constants, id rule and timestamp arithmetic come from the kit's own ``oracle`` module, never
from the spec helpers that backends (the reference among them) use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sessionspec.conformance import oracle
from sessionspec.conformance.oracle import MAX_SESSIONS, is_valid_session_id, to_millis
from sessionspec.spec import ConversationTurn, SessionData


@dataclass
class ModelSession:
    """One session as the model holds it; ``access`` orders ties in list order (B04)."""

    id: str
    created_at: datetime
    last_accessed_at: datetime
    access: int
    turns: list[ConversationTurn] = field(default_factory=list)
    conversation_id: str | None = None
    #: The behaviour of the operation that last shaped this session (for attribution).
    origin: str = "B07"

    def snapshot(self) -> SessionData:
        """The immutable snapshot a read must return (B24)."""
        return SessionData(
            id=self.id,
            created_at=self.created_at,
            last_accessed_at=self.last_accessed_at,
            turns=tuple(self.turns),
            codex_conversation_id=self.conversation_id,
        )


class StoreModel:
    """The state of one store as SPEC.md defines it (B01-B08, B17, B18, B23, B24). ``now`` is
    always passed in."""

    def __init__(self) -> None:
        self.sessions: dict[str, ModelSession] = {}
        self.deleted: set[str] = set()
        self.evicted: set[str] = set()
        self.ever_created: set[str] = set()
        self._access = 0

    @property
    def access_clock(self) -> int:
        """The access number of the latest touch: every touch after this gets a larger one
        (access order, B04)."""
        return self._access

    # -- queries -------------------------------------------------------------------------
    @staticmethod
    def expired(session: ModelSession, now: datetime) -> bool:
        """now - last access > 24 h, now truncated to milliseconds (SPEC.md §1.3, B17)."""
        return oracle.is_expired(session.last_accessed_at, now)

    def live(self, session_id: object, now: datetime) -> ModelSession | None:
        """The live session with that id; None for an id outside the grammar, an unknown
        or an expired one, which every method but ensure_session treats alike (B08, B17)."""
        if not is_valid_session_id(session_id):
            return None
        assert isinstance(session_id, str)
        session = self.sessions.get(session_id)
        if session is None or self.expired(session, now):
            return None
        return session

    def is_expired(self, session_id: object, now: datetime) -> bool:
        """Known to the store but expired (and possibly not yet purged, B17)."""
        session = self.sessions.get(session_id) if isinstance(session_id, str) else None
        return session is not None and self.expired(session, now)

    def ordered(self, now: datetime) -> list[ModelSession]:
        """Live sessions in list order: last access descending, then latest access first
        (B04, B17)."""
        cutoff = to_millis(now) - oracle.SESSION_TTL  # one conversion, not one per session
        alive = [s for s in self.sessions.values() if s.last_accessed_at >= cutoff]
        return sorted(alive, key=lambda s: (s.last_accessed_at, s.access), reverse=True)

    def has_pending_expired(self, now: datetime) -> bool:
        """Some session is expired but not yet purged: the next purge changes the store (B17)."""
        return any(self.expired(s, now) for s in self.sessions.values())

    def get(self, session_id: object, now: datetime) -> SessionData | None:
        """What get_session must return: a pure read, no touch, no purge (B23, B24, B17)."""
        session = self.live(session_id, now)
        return session.snapshot() if session else None

    def snapshot(self, now: datetime) -> list[SessionData]:
        """The live sessions in list order, without purging (B04, B23)."""
        return [s.snapshot() for s in self.ordered(now)]

    # -- effects -------------------------------------------------------------------------
    def _touch(self, session: ModelSession, now: datetime, origin: str) -> None:
        self._access += 1
        session.access = self._access
        session.last_accessed_at = to_millis(now)
        session.origin = origin

    def purge(self, now: datetime) -> list[str]:
        """Drop the expired sessions and return their ids (B17)."""
        gone = [s.id for s in self.sessions.values() if self.expired(s, now)]
        for session_id in gone:
            del self.sessions[session_id]
        return gone

    def _enforce_cap(self, now: datetime, keep: str) -> list[str]:
        """Evict the others last in list order; ``keep`` (just created or ensured) stays even
        when loaded sessions carry last-access times later than now (B18)."""
        others = [s for s in self.ordered(now) if s.id != keep]
        evicted = [s.id for s in others[MAX_SESSIONS - 1 :]]
        for session_id in evicted:
            del self.sessions[session_id]
        self.evicted.update(evicted)
        return evicted

    def _new(self, session_id: str, now: datetime, origin: str) -> None:
        self._access += 1
        moment = to_millis(now)
        self.sessions[session_id] = ModelSession(
            session_id, moment, moment, self._access, origin=origin
        )
        self.deleted.discard(session_id)
        self.evicted.discard(session_id)

    def create(self, session_id: str, now: datetime) -> list[str]:
        """Record a backend-chosen id: purge, create, enforce the cap; returns the ids
        evicted by the cap (B01, B17, B18)."""
        self.purge(now)
        self.ever_created.add(session_id)
        self._new(session_id, now, "B01")
        return self._enforce_cap(now, session_id)

    def ensure(self, session_id: str, now: datetime) -> tuple[bool, list[str]]:
        """Purge, then create the session or touch the live one, then enforce the cap;
        returns (created, evicted) (B07, B17, B18)."""
        self.purge(now)
        session = self.sessions.get(session_id)
        if session is None:
            self._new(session_id, now, "B07")
            created = True
        else:
            self._touch(session, now, "B07")
            created = False
        return created, self._enforce_cap(now, session_id)

    def update(
        self,
        session_id: object,
        now: datetime,
        *,
        turns: Sequence[ConversationTurn] | None = None,
        set_conversation_id: bool = False,
        conversation_id: str | None = None,
        origin: str = "B02",
    ) -> bool:
        """update_session / set_codex_conversation_id: replace the fields given and touch;
        False (nothing changes) for an unknown or expired id (B02, B06, B17)."""
        session = self.live(session_id, now)
        if session is None:
            return False
        if turns is not None:
            session.turns = list(turns)
        if set_conversation_id:
            session.conversation_id = conversation_id
        self._touch(session, now, origin)
        return True

    def add_turn(self, session_id: object, turn: ConversationTurn, now: datetime) -> bool:
        """Append the turn and touch; False for an unknown or expired id (B02, B17)."""
        session = self.live(session_id, now)
        if session is None:
            return False
        session.turns.append(turn)
        self._touch(session, now, "B02")
        return True

    def reset(self, session_id: object, now: datetime) -> bool:
        """Clear turns and conversation id, keep identity, touch; False for an unknown or
        expired id (B03, B17)."""
        session = self.live(session_id, now)
        if session is None:
            return False
        session.turns = []
        session.conversation_id = None
        self._touch(session, now, "B03")
        return True

    def delete(self, session_id: object, now: datetime) -> bool:
        """Remove a live session; False for an unknown or expired id (B05, B17)."""
        session = self.live(session_id, now)
        if session is None:
            return False
        del self.sessions[session.id]
        self.deleted.add(session.id)
        return True

    def list(self, now: datetime) -> list[SessionData]:
        """What list_sessions must return: purge, then every live session in list order
        (B04, B17, B23)."""
        self.purge(now)
        return self.snapshot(now)

    def load(
        self,
        sessions: Iterable[SessionData],
        expired: Iterable[SessionData] = (),
        *,
        origin: str = "B09",
        evicted: Iterable[str] = (),
    ) -> None:
        """Adopt what a fresh instance holds after opening a file (SPEC.md §3.2, B04, B17).

        ``sessions`` are the live ones in list order: earlier means accessed later, which is
        how file position orders ties after a reopen (§1.3). ``expired`` are loaded but
        invisible until purged (B17); the first of a repeated id wins even when expired
        (B15), so they are kept here too. ``oracle_reader.expected_load`` gives both.
        The file replaces the store, so what was deleted or evicted before no longer
        explains an absence; ``ever_created`` stays, as ids must never repeat (B01).
        """
        live = list(sessions)
        self.sessions.clear()
        self.deleted.clear()
        self.evicted.clear()
        self.evicted.update(evicted)  # over the cap at load (B18): absent for that reason
        for data in [*expired, *reversed(live)]:
            self._access += 1
            self.sessions[data.id] = ModelSession(
                data.id,
                data.created_at,
                data.last_accessed_at,
                self._access,
                list(data.turns),
                data.codex_conversation_id,
                origin=origin,
            )
