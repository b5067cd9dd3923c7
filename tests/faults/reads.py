"""Seeded faults in reads: a read that changes the store (B23), and results or arguments
shared with the caller (B24). Each is a bug upstream's code has, or one a port of it would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sessionspec.reference.table import SessionTable
from sessionspec.spec import UNSET, ConversationTurn, SessionData, Unset

from ._base import HookedFileStorage, HookedMemoryStorage
from ._registry import fault

# -- B23 pure-reads --------------------------------------------------------------------------


@fault("B23", "get-session-touches", "get_session touches the session it returns (upstream's)")
class GetSessionTouches(HookedFileStorage):
    def get_session(self, session_id: str) -> SessionData | None:
        revision = self._table.update(session_id)  # the bug: a read that touches and saves
        if revision is not None:
            self._changed(revision)
        return super().get_session(session_id)


@fault("B23", "get-cid-touches", "get_codex_conversation_id marks the session as used (a touch)")
class GetCidTouches(HookedMemoryStorage):
    def get_codex_conversation_id(self, session_id: str) -> str | None:
        self._table.update(session_id)  # the bug: a read that touches
        return super().get_codex_conversation_id(session_id)


# -- B24 snapshot-isolation ------------------------------------------------------------------


class _KeepsCallersListTable(SessionTable):
    """Stores the very list given as ``turns=`` and reads it back on every get."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.borrowed: dict[str, list[ConversationTurn]] = {}

    def update(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> int | None:
        revision = super().update(
            session_id, turns=turns, codex_conversation_id=codex_conversation_id
        )
        if revision is not None and isinstance(turns, list):
            self.borrowed[session_id] = turns  # the bug: no copy of the caller's list
        elif revision is not None and not isinstance(turns, Unset):
            self.borrowed.pop(session_id, None)
        return revision

    def add_turn(self, session_id: str, turn: ConversationTurn) -> int | None:
        revision = super().add_turn(session_id, turn)
        if revision is not None and session_id in self.borrowed:
            self.borrowed[session_id].append(turn)
        return revision

    def get(self, session_id: str) -> SessionData | None:
        found = super().get(session_id)
        return None if found is None else self._borrowed(found)

    def live_sessions(self) -> list[SessionData]:
        return [self._borrowed(s) for s in super().live_sessions()]

    def _borrowed(self, session: SessionData) -> SessionData:
        turns = self.borrowed.get(session.id)
        return session if turns is None else replace(session, turns=tuple(turns))

    def _purge(self, now: datetime) -> None:
        super()._purge(now)
        for session_id in [i for i in self.borrowed if i not in self._sessions]:
            del self.borrowed[session_id]

    def _remove(self, session_id: str) -> None:
        super()._remove(session_id)
        self.borrowed.pop(session_id, None)


@fault("B24", "keeps-callers-turns-list", "update_session keeps the caller's list, not a copy")
class KeepsCallersTurnsList(HookedMemoryStorage):
    table_class = _KeepsCallersListTable

    def reset_session(self, session_id: str) -> None:
        self.update_session(session_id, turns=[], codex_conversation_id=None)


@fault("B24", "mutable-snapshot-turns", "get_session hands out its cached turns list to callers")
class MutableSnapshotTurns(HookedMemoryStorage):
    def get_session(self, session_id: str) -> SessionData | None:
        found = super().get_session(session_id)
        if found is None:
            return None
        views: dict[str, tuple[SessionData, list[ConversationTurn]]] = self.__dict__.setdefault(
            "_views", {}
        )
        cached = views.get(session_id)
        if cached is None or cached[0] is not found:
            cached = (found, list(found.turns))
            views[session_id] = cached
        # The bug: one cached list per session handed to every caller (upstream returns its
        # live arrays), so one caller's edit shows in every later read.
        return replace(found, turns=cached[1])  # type: ignore[arg-type]
