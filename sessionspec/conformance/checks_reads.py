"""Targeted checks of reads: they change nothing (B23) and share nothing (B24).

A read that touches shows only in what later reads and saves see, and a shared object only
when someone edits it, so each check here sets up exactly that observation.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.registry import check
from sessionspec.spec import ConversationTurn, Level, SessionData, SessionStorage

MS = timedelta(milliseconds=1)


def _view(storage: SessionStorage) -> list[tuple[str, Any]]:
    """What list_sessions shows: ids in order with their last access."""
    return [(s.id, s.last_accessed_at) for s in storage.list_sessions()]


def _two_sessions(storage: SessionStorage) -> tuple[str, str]:
    """``older`` then ``newer``, created at one instant: list order is [newer, older]."""
    older, newer = storage.create_session(), storage.create_session()
    return older, newer


# -- B23 pure-reads --------------------------------------------------------------------------


@check("B23")
def get_session_does_not_touch(ctx: CheckContext) -> None:
    """get_session changes neither last access nor list order, at the same or a later time."""
    storage = ctx.open()
    older, _ = _two_sessions(storage)
    before = _view(storage)
    storage.get_session(older)  # same instant: a touch would only reorder
    ctx.expect_equal(_view(storage), before, "get_session reordered the list (a touch)")
    ctx.clock.advance(5 * MS)
    for _ in range(3):
        storage.get_session(older)
    ctx.expect_equal(_view(storage), before, "get_session moved last access (a touch)")


@check("B23")
def get_codex_conversation_id_does_not_touch(ctx: CheckContext) -> None:
    """get_codex_conversation_id changes neither last access nor list order."""
    storage = ctx.open()
    older, _ = _two_sessions(storage)
    before = _view(storage)
    storage.get_codex_conversation_id(older)
    ctx.expect_equal(_view(storage), before, "get_codex_conversation_id reordered the list")
    ctx.clock.advance(5 * MS)
    storage.get_codex_conversation_id(older)
    ctx.expect_equal(_view(storage), before, "get_codex_conversation_id moved last access")


@check("B23")
def list_sessions_does_not_touch(ctx: CheckContext) -> None:
    """list_sessions leaves every session's last access as it was (read back with
    list_sessions itself: a get_session that touches is its own check's finding)."""
    storage = ctx.open()
    _two_sessions(storage)
    before = {s.id: s.last_accessed_at for s in storage.list_sessions()}
    ctx.clock.advance(5 * MS)
    storage.list_sessions()
    ctx.clock.advance(5 * MS)
    after = {s.id: s.last_accessed_at for s in storage.list_sessions()}
    ctx.expect_equal(after, before, "list_sessions moved a session's last access")


@check("B23")
def reads_do_not_change_the_cap_victim(ctx: CheckContext) -> None:
    """Reading the least recently accessed session does not save it from eviction."""
    storage = ctx.open()
    oldest = storage.create_session()
    ctx.clock.advance(MS)
    for _ in range(99):
        storage.create_session()
    ctx.clock.advance(MS)
    storage.get_session(oldest)
    storage.get_codex_conversation_id(oldest)
    storage.create_session()
    ctx.require(
        "B18",
        len(storage.list_sessions()) == 100,
        "a create past the cap must leave exactly 100 sessions",
    )
    ctx.expect(
        storage.get_session(oldest) is None,
        "after reads of the least recently accessed session, a create past the cap must still"
        " evict it",
    )


@check("B23", requires=Level.DURABLE)
def reads_are_not_saved(ctx: CheckContext) -> None:
    """After reads, a flush and a reopen show the state as if nothing had been read."""
    storage = ctx.open()
    older, _ = _two_sessions(storage)
    storage.flush()
    before = _view(storage)
    ctx.clock.advance(5 * MS)
    storage.get_session(older)
    storage.get_codex_conversation_id(older)
    storage.list_sessions()
    reopened = ctx.reopen(storage)
    ctx.expect_same_store(_view(reopened), before, "reads were saved: reopen shows them as touches")


@check("B23", requires=Level.FILE_V1)
def reads_write_nothing_new(ctx: CheckContext) -> None:
    """Reads leave what the file stores as it was (a flush may rewrite it, unchanged)."""
    storage = ctx.open()
    older, _ = _two_sessions(storage)
    storage.flush()
    before = json.loads(ctx.path.read_bytes())
    ctx.clock.advance(5 * MS)
    storage.get_session(older)
    storage.get_codex_conversation_id(older)
    storage.flush()
    ctx.expect_equal(json.loads(ctx.path.read_bytes()), before, "reads changed the file")


# -- B24 snapshot-isolation ------------------------------------------------------------------


@check("B24")
def reads_return_frozen_snapshots(ctx: CheckContext) -> None:
    """get_session and list_sessions give SessionData with a tuple of ConversationTurn."""
    storage = ctx.open(raw=True)
    session_id = storage.create_session()
    storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
    for label, data in (
        ("get_session", storage.get_session(session_id)),
        ("list_sessions", storage.list_sessions()[0]),
    ):
        ctx.expect(isinstance(data, SessionData), f"{label} must return SessionData", actual=data)
        turns = getattr(data, "turns", None)
        ctx.expect(
            type(turns) is tuple,
            f"{label}: turns must be a tuple, so no caller can change them",
            expected="tuple",
            actual=type(turns).__name__,
        )
        ctx.expect(
            all(isinstance(t, ConversationTurn) for t in turns or ()),
            f"{label}: every turn must be a ConversationTurn",
        )
        ctx.expect(
            dataclasses.is_dataclass(data) and type(data).__dataclass_params__.frozen,  # type: ignore[attr-defined]
            f"{label} must return a frozen snapshot",
        )


@check("B24")
def edits_of_a_result_do_not_reach_the_store(ctx: CheckContext) -> None:
    """Whatever a caller does to a returned list or turns, the next read is unchanged."""
    storage = ctx.open(raw=True)
    session_id = storage.create_session()
    storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
    listed = storage.list_sessions()
    listed.clear()
    ctx.expect_equal(
        [s.id for s in storage.list_sessions()],
        [session_id],
        "clearing the list list_sessions returned emptied the store's",
    )
    data = storage.get_session(session_id)
    turns: Any = getattr(data, "turns", ())
    if isinstance(turns, list):  # reported above as a mutable snapshot; show the harm too
        turns.append(ConversationTurn("injected", "", ctx.clock()))
    after = storage.get_session(session_id)
    ctx.expect_equal(
        len(getattr(after, "turns", ())),
        1,
        "an edit of a returned snapshot changed what the next read returns",
    )


@check("B24")
def caller_list_is_copied(ctx: CheckContext) -> None:
    """The list given as update_session(turns=...) is the caller's: later edits stay there."""
    storage = ctx.open()
    session_id = storage.create_session()
    first = ConversationTurn("one", "1", ctx.clock())
    given = [first]
    storage.update_session(session_id, turns=given)
    given.append(ConversationTurn("two", "2", ctx.clock()))
    given[0] = ConversationTurn("changed", "", ctx.clock())
    storage.add_turn(session_id, ConversationTurn("three", "3", ctx.clock()))
    given.clear()
    data = storage.get_session(session_id)
    # Which turns the store holds is this rule; their order is add_turn's (B02).
    ctx.expect_equal(
        sorted(t.prompt for t in getattr(data, "turns", ())),
        ["one", "three"],
        "the store follows edits of the list the caller passed as turns=",
    )
