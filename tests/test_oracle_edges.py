"""Edges of the kit's model and oracle that the machine runs and the vectors do not pin.

The mutation run over the kit's model and oracle (``bash tests/mutation/run.sh kit``,
docs/mutation-testing.md) kept mutants alive that only change what the kit *names* when it
finds a bug: the behaviour an operation leaves on a session (``origin``), the sets that explain
an absence (``deleted``, ``evicted``, ``ever_created``) and the access clock. The machine
blames a failure with them (``StorageMachine.attribute``), so a wrong one reports a real bug
under the wrong behaviour. These tests pin them, with the few oracle edges the run found.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sessionspec import spec
from sessionspec.conformance.model import StoreModel
from sessionspec.conformance.oracle import MAX_SESSIONS, SESSION_TTL, read_timestamp
from sessionspec.spec import ConversationTurn, SessionData

NOW = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
LATER = NOW + timedelta(seconds=5)
TURN = ConversationTurn("p", "r", NOW)


def _origins(model: StoreModel) -> dict[str, str]:
    return {session_id: s.origin for session_id, s in model.sessions.items()}


def test_each_operation_leaves_its_behaviour_on_the_session() -> None:
    """What the machine blames for a wrong observation of a session (B01-B07, B09)."""
    model = StoreModel()
    model.create("a", NOW)
    model.ensure("b", NOW)
    assert _origins(model) == {"a": "B01", "b": "B07"}
    assert model.update("a", LATER, turns=[TURN])
    assert model.add_turn("b", TURN, LATER)
    assert _origins(model) == {"a": "B02", "b": "B02"}
    assert model.reset("a", LATER)
    model.ensure("b", LATER)
    assert _origins(model) == {"a": "B03", "b": "B07"}
    assert model.update("a", LATER, set_conversation_id=True, conversation_id="c", origin="B06")
    assert _origins(model)["a"] == "B06"
    data = SessionData("f", NOW, NOW)
    model.load([data])
    assert _origins(model) == {"f": "B09"}
    model.load([data], origin="B15")
    assert _origins(model) == {"f": "B15"}


def test_every_touch_and_every_new_session_takes_a_later_access_number() -> None:
    """Access numbers order ties in list order (B04); only their order matters."""
    model = StoreModel()
    model.create("a", NOW)
    model.ensure("b", NOW)
    access = {i: s.access for i, s in model.sessions.items()}
    assert 0 < access["a"] < access["b"] == model.access_clock
    model.add_turn("a", TURN, NOW)
    assert model.sessions["a"].access == model.access_clock > access["b"]
    before = model.access_clock
    model.reset("b", NOW)
    assert model.sessions["b"].access == model.access_clock > before
    before = model.access_clock
    model.load([SessionData("x", NOW, NOW), SessionData("y", NOW, NOW)])
    # Earlier in the file means accessed later, so x, first, has the later number (§1.3).
    assert before < model.sessions["y"].access < model.sessions["x"].access == model.access_clock


def test_deleted_and_evicted_explain_an_absence_until_the_id_comes_back() -> None:
    """B05 and B18 are blamed through these sets; a returning id is neither."""
    model = StoreModel()
    model.create("gone", NOW)
    assert model.delete("gone", NOW) is True
    assert model.deleted == {"gone"}
    assert model.delete("gone", NOW) is False
    assert model.ensure("gone", NOW) == (True, [])
    assert model.deleted == set()
    for index in range(MAX_SESSIONS - 1):
        model.create(f"s{index:03d}", LATER)
    created, evicted = model.ensure("new", LATER)
    assert (created, evicted) == (True, ["gone"])
    assert model.evicted == {"gone"}
    assert model.create("gone", LATER + timedelta(seconds=1)) == ["s000"]
    assert model.evicted == {"s000"}
    assert "gone" in model.ever_created and "new" not in model.ever_created


def test_load_forgets_what_explained_absences_before_but_not_the_ids() -> None:
    model = StoreModel()
    model.create("a", NOW)
    model.create("b", NOW)
    model.delete("a", NOW)
    model.load([SessionData("c", NOW, NOW)], evicted=["d"])
    assert (model.deleted, model.evicted) == (set(), {"d"})
    assert model.ever_created == {"a", "b"}
    assert set(model.sessions) == {"c"}


def test_update_changes_only_the_fields_given_and_copies_the_turns() -> None:
    model = StoreModel()
    model.create("a", NOW)
    turns = [TURN]
    assert model.update("a", LATER, turns=turns)
    turns.append(TURN)
    assert model.sessions["a"].turns == [TURN]
    assert model.update("a", LATER, set_conversation_id=True, conversation_id="c")
    assert model.update("a", LATER)  # nothing given: a touch only
    snapshot = model.get("a", LATER)
    assert snapshot is not None
    assert (snapshot.turns, snapshot.codex_conversation_id) == ((TURN,), "c")
    assert model.update("a", LATER, set_conversation_id=True, conversation_id=None)
    snapshot = model.get("a", LATER)
    assert snapshot is not None and snapshot.codex_conversation_id is None
    assert snapshot.turns == (TURN,)
    assert model.update("nobody", LATER, turns=[]) is False


def test_purge_returns_what_it_dropped() -> None:
    model = StoreModel()
    model.create("old", NOW)
    model.create("new", NOW + SESSION_TTL)
    after = NOW + SESSION_TTL + timedelta(milliseconds=1)
    assert model.is_expired("old", after) and not model.is_expired("new", after)
    assert not model.is_expired("nobody", after) and not model.is_expired(7, after)
    assert model.has_pending_expired(after)
    assert model.purge(after) == ["old"]
    assert not model.has_pending_expired(after)
    assert model.purge(after) == []


@pytest.mark.parametrize(
    "text",
    [
        "202601-01T00:00:00Z",
        "2026-0101T00:00:00Z",
        "2026-01-0100:00:00Z",
        "2026-01-01T0000:00Z",
        "2026-01-01T00:0000Z",
        "2026-01-01T00:00:00+0100",
    ],
)
def test_a_missing_separator_is_not_a_timestamp(text: str) -> None:
    """SPEC.md §1.2: every separator of the grammar is required; the oracle and the spec's
    helper agree (B15 skips such a record)."""
    assert read_timestamp(text) is None
    with pytest.raises(ValueError):
        spec.parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "lossy"),
    [("2026-01-01T00:00:00.123000Z", False), ("2026-01-01T00:00:00.1230001Z", True)],
)
def test_only_non_zero_digits_below_the_millisecond_are_lossy(text: str, lossy: bool) -> None:
    read = read_timestamp(text)
    assert read is not None and read.sub_millisecond is lossy


def test_ensure_reports_whether_it_created() -> None:
    """B07: ensure on a live session touches it and creates nothing (the machine blames B05
    only for an ensure that re-creates a deleted id)."""
    model = StoreModel()
    assert model.ensure("a", NOW) == (True, [])
    assert model.ensure("a", LATER) == (False, [])
