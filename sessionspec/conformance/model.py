"""A small, obviously correct model of a store, written from SPEC.md alone.

It is the oracle of the state machine. It keeps an explicit access counter instead of relying
on dict order, and recomputes list order from scratch on every read: slow, but plain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sessionspec.spec import (
    MAX_SESSIONS,
    SESSION_TTL,
    ConversationTurn,
    SessionData,
    is_valid_session_id,
    to_millis,
)


@dataclass
class ModelSession:
    id: str
    created_at: datetime
    last_accessed_at: datetime
    access: int
    turns: list[ConversationTurn] = field(default_factory=list)
    conversation_id: str | None = None
    #: The behaviour of the operation that last shaped this session (for attribution).
    origin: str = "B07"

    def snapshot(self) -> SessionData:
        return SessionData(
            id=self.id,
            created_at=self.created_at,
            last_accessed_at=self.last_accessed_at,
            turns=tuple(self.turns),
            codex_conversation_id=self.conversation_id,
        )


class StoreModel:
    """The state of one store as SPEC.md defines it. ``now`` is always passed in."""

    def __init__(self) -> None:
        self.sessions: dict[str, ModelSession] = {}
        self.deleted: set[str] = set()
        self.evicted: set[str] = set()
        self.ever_created: set[str] = set()
        self._access = 0

    @property
    def access_clock(self) -> int:
        """The access number of the latest touch: every touch after this gets a larger one."""
        return self._access

    # -- queries -------------------------------------------------------------------------
    @staticmethod
    def expired(session: ModelSession, now: datetime) -> bool:
        return to_millis(now) - session.last_accessed_at > SESSION_TTL

    def live(self, session_id: object, now: datetime) -> ModelSession | None:
        if not is_valid_session_id(session_id):
            return None
        assert isinstance(session_id, str)
        session = self.sessions.get(session_id)
        if session is None or self.expired(session, now):
            return None
        return session

    def is_expired(self, session_id: object, now: datetime) -> bool:
        """Known to the store but expired (and possibly not yet purged)."""
        session = self.sessions.get(session_id) if isinstance(session_id, str) else None
        return session is not None and self.expired(session, now)

    def ordered(self, now: datetime) -> list[ModelSession]:
        """Live sessions in list order: last access descending, then latest access first."""
        alive = [s for s in self.sessions.values() if not self.expired(s, now)]
        return sorted(alive, key=lambda s: (s.last_accessed_at, s.access), reverse=True)

    def has_pending_expired(self, now: datetime) -> bool:
        return any(self.expired(s, now) for s in self.sessions.values())

    def get(self, session_id: object, now: datetime) -> SessionData | None:
        session = self.live(session_id, now)
        return session.snapshot() if session else None

    def snapshot(self, now: datetime) -> list[SessionData]:
        return [s.snapshot() for s in self.ordered(now)]

    # -- effects -------------------------------------------------------------------------
    def _touch(self, session: ModelSession, now: datetime, origin: str) -> None:
        self._access += 1
        session.access = self._access
        session.last_accessed_at = to_millis(now)
        session.origin = origin

    def purge(self, now: datetime) -> list[str]:
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
        """Record a backend-chosen id; returns the ids evicted by the cap."""
        self.purge(now)
        self.ever_created.add(session_id)
        self._new(session_id, now, "B01")
        return self._enforce_cap(now, session_id)

    def ensure(self, session_id: str, now: datetime) -> tuple[bool, list[str]]:
        """Returns (created, evicted)."""
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
        session = self.live(session_id, now)
        if session is None:
            return False
        session.turns.append(turn)
        self._touch(session, now, "B02")
        return True

    def reset(self, session_id: object, now: datetime) -> bool:
        session = self.live(session_id, now)
        if session is None:
            return False
        session.turns = []
        session.conversation_id = None
        self._touch(session, now, "B03")
        return True

    def delete(self, session_id: object, now: datetime) -> bool:
        session = self.live(session_id, now)
        if session is None:
            return False
        del self.sessions[session.id]
        self.deleted.add(session.id)
        return True

    def list(self, now: datetime) -> list[SessionData]:
        self.purge(now)
        return self.snapshot(now)

    def resync(self, observed: Iterable[SessionData]) -> None:
        """Adopt what the backend shows (used after a masked violation, so one known bug does
        not cascade into reports against other behaviours)."""
        observed = list(observed)
        self.sessions.clear()
        for position, data in enumerate(reversed(observed)):
            self.sessions[data.id] = ModelSession(
                data.id,
                data.created_at,
                data.last_accessed_at,
                self._access + position + 1,
                list(data.turns),
                data.codex_conversation_id,
            )
        self._access += len(observed) + 1
