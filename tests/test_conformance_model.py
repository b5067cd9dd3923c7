"""The kit's model is the oracle of the state machine: pin its reading of SPEC.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sessionspec.conformance.file_strategies import VECTORS_NOW, vectors
from sessionspec.conformance.model import StoreModel
from sessionspec.conformance.oracle import MAX_SESSIONS, SESSION_TTL
from sessionspec.conformance.oracle_reader import expected_load
from sessionspec.conformance.strategies import keep_surrogates_lone
from sessionspec.spec import ConversationTurn, SessionData

NOW = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_ties_are_listed_latest_access_first() -> None:
    model = StoreModel()
    for name in ("a", "b", "c"):
        model.create(name, NOW)
    model.ensure("a", NOW)
    assert [s.id for s in model.list(NOW)] == ["a", "c", "b"]


def test_expiry_boundary_is_exactly_24_hours_on_millisecond_now() -> None:
    model = StoreModel()
    model.create("a", NOW)
    # NOW carries sub-millisecond digits; "now" enters the store truncated (SPEC.md §1.2).
    assert model.get("a", NOW + SESSION_TTL) is not None
    assert model.get("a", NOW + SESSION_TTL + timedelta(microseconds=999 - 456)) is not None
    assert model.get("a", NOW + SESSION_TTL + timedelta(milliseconds=1)) is None


def test_cap_evicts_least_recently_accessed_and_keeps_the_new_one() -> None:
    model = StoreModel()
    for index in range(MAX_SESSIONS):
        model.create(f"s{index}", NOW)
    evicted = model.create("new", NOW)
    assert evicted == ["s0"]
    assert next(s.id for s in model.list(NOW)) == "new"


def test_mutations_on_expired_sessions_do_nothing() -> None:
    model = StoreModel()
    model.create("a", NOW)
    later = NOW + SESSION_TTL + timedelta(milliseconds=1)
    assert model.reset("a", later) is False
    assert model.delete("a", later) is False
    created, _ = model.ensure("a", later)
    assert created is True


def test_ids_outside_the_grammar_are_unknown_to_the_model() -> None:
    model = StoreModel()
    model.create("a", NOW)
    assert model.live("a\n", NOW) is None
    assert model.get("", NOW) is None
    assert model.delete("a" * 257, NOW) is False


def test_adjacent_surrogates_are_kept_lone() -> None:
    assert keep_surrogates_lone("\ud800\udfff") == "\ud800 \udfff"
    assert keep_surrogates_lone("\udfff\ud800") == "\udfff\ud800"


def test_load_adopts_a_foreign_file_in_list_order() -> None:
    """After load, list order, tie order (file position) and what a touch does are what a
    reopened backend shows (SPEC.md §1.3, B04)."""
    vector = next(v for v in vectors() if v.name == "order-ties-interleaved")
    loaded = expected_load(vector.raw, vector.now)
    model = StoreModel()
    model.create("old", vector.now)
    model.delete("old", vector.now)
    model.load(loaded.sessions, loaded.expired)
    assert [s.id for s in model.list(vector.now)] == ["z", "y1", "y2", "x1", "x2", "x3"]
    assert model.deleted == set()
    model.ensure("y2", vector.now)  # a touch at now makes it first
    assert [s.id for s in model.list(vector.now)][:2] == ["y2", "z"]


def test_load_keeps_expired_sessions_until_purged() -> None:
    moment = VECTORS_NOW - SESSION_TTL - timedelta(milliseconds=1)
    expired = SessionData("gone", moment, moment, (ConversationTurn("p", "r", moment),))
    model = StoreModel()
    model.load([], [expired])
    assert model.is_expired("gone", VECTORS_NOW)
    assert model.has_pending_expired(VECTORS_NOW)
    assert model.list(VECTORS_NOW) == []
    assert not model.has_pending_expired(VECTORS_NOW)
