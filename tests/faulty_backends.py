"""Deliberately broken variants of the independent backend, one fault each.

Each class names the behaviour its fault breaks; tests/test_conformance_faults.py checks the
kit fails exactly that behaviour.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Any

from independent_backend import IndependentFileStorage, _Session

from sessionspec.spec import SESSION_TTL, ConversationTurn, ValidationError


class AddTurnDoesNotTouch(IndependentFileStorage):
    """B02: add_turn appends but leaves last_accessed_at and the access order alone."""

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        session = self._live(session_id)
        if session is not None:
            session.turns.append(turn)
            self._changed()


class TiesInCreationOrder(IndependentFileStorage):
    """B04: ties in last_accessed_at are listed in creation order, as upstream did."""

    def _ordered_all(self) -> list[_Session]:
        return sorted(self._sessions.values(), key=lambda s: s.accessed, reverse=True)


class DollarAcceptsTrailingNewline(IndependentFileStorage):
    """B08: validates ids with ``re.match('^...$')``, which accepts a trailing newline."""

    def ensure_session(self, session_id: str) -> None:
        if not isinstance(session_id, str) or not re.match(r"^[A-Za-z0-9_-]{1,256}$", session_id):
            raise ValidationError("session ID must be 1 to 256 characters of [A-Za-z0-9_-]")
        self._purge()
        session = self._sessions.get(session_id)
        if session is None:
            self._add(session_id)
        else:
            self._touch(session)
        self._changed()


class ExpiresAtExactly24Hours(IndependentFileStorage):
    """B17: treats a session idle for exactly 24 h as expired (>= instead of >)."""

    def _live(self, session_id: object) -> _Session | None:
        session = super()._live(session_id)
        if session is not None and self._now() - session.accessed >= SESSION_TTL:
            return None
        return session


class BackupOverwrites(IndependentFileStorage):
    """B13: moves a corrupt file aside with a plain rename, overwriting an existing backup."""

    def _move_aside(self, why: str) -> None:
        os.replace(self._path, self._backup_name(0))


class NoDirectoryFsync(IndependentFileStorage):
    """B19: never fsyncs the directory after the rename."""

    def _fsync_dir(self) -> None:
        pass


class SwallowsFlushErrors(IndependentFileStorage):
    """B22: flush() hides write failures."""

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            super().flush()


def undeclared_factory(path: Any, *, clock: Any) -> IndependentFileStorage:
    """A factory without sessionspec_levels: the kit must refuse to guess its levels."""
    return IndependentFileStorage(path, clock=clock)


# -- backends the kit must not judge, or must judge in bounded time -------------------------


class FlushHangsOnceUsed(IndependentFileStorage):
    """flush() never returns once a session was created (the preflight, which creates
    nothing, passes): the kit must stop with a FAIL naming the call, in bounded time."""

    def create_session(self) -> str:
        self._hang = True
        return super().create_session()

    def flush(self) -> None:
        if getattr(self, "_hang", False):
            threading.Event().wait()
        super().flush()


def wrong_signature(path: Any) -> IndependentFileStorage:
    """A factory without the ``clock`` keyword: a preflight error, not conformance FAILs."""
    return IndependentFileStorage(path, clock=lambda: None)  # pragma: no cover


wrong_signature.sessionspec_levels = ("file-v1",)  # type: ignore[attr-defined]


class InitRaises(IndependentFileStorage):
    """__init__ raises: a preflight error."""

    def __init__(self, path: Any, *, clock: Any) -> None:
        raise RuntimeError("cannot connect to the session store")


def path_cannot_open(path: Any, *, clock: Any) -> IndependentFileStorage:
    """Opens a path under a regular file, whatever the kit asks: ENOTDIR at once."""
    return IndependentFileStorage("/etc/hostname/sessions.json", clock=clock)


path_cannot_open.sessionspec_levels = ("file-v1",)  # type: ignore[attr-defined]
