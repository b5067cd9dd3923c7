"""The in-memory reference backend: a ``SessionTable`` and nothing else (level core)."""

from __future__ import annotations

from datetime import timedelta
from os import PathLike

from sessionspec.reference.table import SessionTable, TableStorage
from sessionspec.spec import MAX_SESSIONS, SESSION_TTL, Clock, Level, utc_now


class InMemorySessionStorage(TableStorage):
    """Sessions kept in this process only; lost on ``close()``.

    ``path`` is accepted and ignored so the class itself is a kit factory
    (``factory(path, *, clock)``).
    """

    sessionspec_levels = frozenset({Level.CORE})

    def __init__(
        self,
        path: str | PathLike[str] | None = None,
        *,
        clock: Clock = utc_now,
        max_sessions: int = MAX_SESSIONS,
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        super().__init__(SessionTable(clock=clock, max_sessions=max_sessions, ttl=ttl))
