"""Core behaviours (B01-B08, B17, B18) of both reference backends, and the shared table.

Every test runs against ``InMemorySessionStorage`` and ``FileSessionStorage``; file-only
behaviours are in test_reference_file.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from reference_helpers import START, ManualClock, turn

from sessionspec import spec
from sessionspec.reference import FileSessionStorage, InMemorySessionStorage
from sessionspec.reference.table import SessionTable, TableStorage

UUID4 = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
Make = Callable[[], spec.SessionStorage]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=[InMemorySessionStorage, FileSessionStorage], ids=["memory", "file"])
def make(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Make]:
    factory: spec.StorageFactory = request.param
    opened: list[spec.SessionStorage] = []

    def open_storage() -> spec.SessionStorage:
        opened.append(factory(tmp_path / "sessions.json", clock=clock))
        return opened[-1]

    yield open_storage
    for storage in opened:
        storage.close()


@pytest.fixture
def storage(make: Make) -> spec.SessionStorage:
    return make()


def test_both_classes_are_kit_factories_with_their_levels() -> None:
    assert spec.declared_levels(InMemorySessionStorage) == {spec.Level.CORE}
    assert spec.declared_levels(FileSessionStorage) == set(spec.Level)


def test_storage_implements_the_protocol(storage: spec.SessionStorage) -> None:
    assert isinstance(storage, spec.SessionStorage)


def test_B01_create_session_returns_fresh_uuid4_of_an_empty_session(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    ids = [storage.create_session() for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(UUID4.match(i) and spec.is_valid_session_id(i) for i in ids)
    assert storage.get_session(ids[0]) == spec.SessionData(ids[0], clock.now, clock.now)


def test_B02_add_turn_appends_in_order_keeps_its_timestamp_and_touches(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    sid = storage.create_session()
    clock.advance(timedelta(minutes=1))
    offset = datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=UTC).astimezone()  # local zone
    storage.add_turn(sid, turn("first", at=offset))
    storage.add_turn(sid, turn("second"))
    session = storage.get_session(sid)
    assert session is not None
    assert [t.prompt for t in session.turns] == ["first", "second"]
    assert session.turns[0].timestamp == datetime(2025, 6, 1, 14, 0, 0, 123000, tzinfo=UTC)
    assert session.last_accessed_at == clock.now and session.created_at == START


def test_B02_update_session_replaces_turns_and_touches(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    sid = storage.create_session()
    storage.add_turn(sid, turn("old"))
    storage.set_codex_conversation_id(sid, "conv")
    clock.advance(timedelta(seconds=5))
    storage.update_session(sid, turns=[turn("a"), turn("b")])
    session = storage.get_session(sid)
    assert session is not None
    assert [t.prompt for t in session.turns] == ["a", "b"]
    assert session.codex_conversation_id == "conv"  # not given: unchanged
    assert session.last_accessed_at == clock.now


def test_B02_mutations_on_unknown_ids_do_nothing(storage: spec.SessionStorage) -> None:
    storage.add_turn("nobody", turn("x"))
    storage.update_session("nobody", turns=[turn("x")])
    storage.reset_session("nobody")
    storage.set_codex_conversation_id("nobody", "c")
    assert storage.list_sessions() == []
    assert storage.get_session("nobody") is None


def test_B03_reset_clears_turns_and_conversation_id_keeps_identity(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    sid = storage.create_session()
    storage.add_turn(sid, turn("x"))
    storage.set_codex_conversation_id(sid, "conv")
    clock.advance(timedelta(seconds=1))
    storage.reset_session(sid)
    assert storage.get_session(sid) == spec.SessionData(sid, START, clock.now)


def test_B04_list_orders_by_last_access_then_access_order(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    a, b, c = (storage.create_session() for _ in range(3))  # equal timestamps
    assert [s.id for s in storage.list_sessions()] == [c, b, a]
    storage.add_turn(a, turn("touch"))  # same timestamp, later access
    assert [s.id for s in storage.list_sessions()] == [a, c, b]
    clock.advance(timedelta(milliseconds=1))
    storage.ensure_session(b)
    assert [s.id for s in storage.list_sessions()] == [b, a, c]
    storage.get_session(c)  # reads do not touch
    storage.get_codex_conversation_id(c)
    assert [s.id for s in storage.list_sessions()] == [b, a, c]


def test_B05_delete_reports_existence_and_ensure_recreates_empty(
    storage: spec.SessionStorage,
) -> None:
    sid = storage.create_session()
    storage.add_turn(sid, turn("x"))
    assert storage.delete_session(sid) is True
    assert storage.delete_session(sid) is False
    assert storage.delete_session("never-was") is False
    assert storage.get_session(sid) is None
    storage.ensure_session(sid)
    session = storage.get_session(sid)
    assert session is not None and session.turns == ()


def test_B06_conversation_id_round_trips_and_reading_is_pure(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    sid = storage.create_session()
    clock.advance(timedelta(seconds=1))
    storage.set_codex_conversation_id(sid, "")
    assert storage.get_codex_conversation_id(sid) == ""
    touched = storage.get_session(sid)
    assert touched is not None and touched.last_accessed_at == clock.now
    clock.advance(timedelta(seconds=1))
    assert storage.get_codex_conversation_id(sid) == ""
    assert storage.get_session(sid) == touched  # the read did not touch
    storage.update_session(sid, codex_conversation_id="conv_1")
    assert storage.get_codex_conversation_id(sid) == "conv_1"
    storage.update_session(sid, codex_conversation_id=None)
    assert storage.get_codex_conversation_id(sid) is None
    assert storage.get_codex_conversation_id("unknown") is None


def test_B07_ensure_creates_or_touches_keeping_history(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    storage.ensure_session("client-id_1")
    assert storage.get_session("client-id_1") == spec.SessionData("client-id_1", START, START)
    storage.add_turn("client-id_1", turn("x"))
    storage.set_codex_conversation_id("client-id_1", "conv")
    clock.advance(timedelta(hours=1))
    storage.ensure_session("client-id_1")
    session = storage.get_session("client-id_1")
    assert session is not None
    assert (session.created_at, session.last_accessed_at) == (START, clock.now)
    assert len(session.turns) == 1 and session.codex_conversation_id == "conv"


BAD_IDS: list[object] = ["", "a" * 257, "a\n", "a b", "a/b", "a.b", "é", "a\x00", 5, None, ["a"]]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_B08_ensure_rejects_ids_outside_the_grammar(
    storage: spec.SessionStorage, bad: object
) -> None:
    with pytest.raises(spec.ValidationError, match="1 to 256 characters"):
        storage.ensure_session(bad)  # type: ignore[arg-type]
    assert storage.list_sessions() == []


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_B08_other_methods_treat_bad_ids_as_unknown(
    storage: spec.SessionStorage, bad: object
) -> None:
    sid: str = bad  # type: ignore[assignment]
    assert storage.get_session(sid) is None
    assert storage.get_codex_conversation_id(sid) is None
    assert storage.delete_session(sid) is False
    storage.add_turn(sid, turn("x"))
    storage.reset_session(sid)
    storage.set_codex_conversation_id(sid, "c")
    storage.update_session(sid, turns=[])
    assert storage.list_sessions() == []


def test_B08_longest_valid_id_is_accepted(storage: spec.SessionStorage) -> None:
    storage.ensure_session("a" * 256)
    assert storage.get_session("a" * 256) is not None


def test_B17_expiry_is_strictly_after_the_ttl(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    sid = storage.create_session()
    storage.add_turn(sid, turn("x"))
    clock.advance(spec.SESSION_TTL)
    assert storage.get_session(sid) is not None  # exactly 24 h: live
    clock.advance(timedelta(milliseconds=1))
    assert storage.get_session(sid) is None
    assert storage.get_codex_conversation_id(sid) is None
    storage.add_turn(sid, turn("revive?"))
    storage.set_codex_conversation_id(sid, "c")
    storage.reset_session(sid)
    assert storage.get_session(sid) is None  # no mutation revived it
    assert storage.delete_session(sid) is False
    assert storage.list_sessions() == []
    storage.ensure_session(sid)
    assert storage.get_session(sid) == spec.SessionData(sid, clock.now, clock.now)


def test_B18_cap_evicts_the_least_recently_accessed(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    ids = []
    for _ in range(spec.MAX_SESSIONS):
        ids.append(storage.create_session())
        clock.advance(timedelta(seconds=1))
    storage.add_turn(ids[0], turn("keep me"))  # ids[1] is now the least recently accessed
    newest = storage.create_session()
    live = [s.id for s in storage.list_sessions()]
    assert len(live) == spec.MAX_SESSIONS
    assert newest in live and ids[0] in live and ids[1] not in live
    storage.ensure_session("brought-by-client")
    live = [s.id for s in storage.list_sessions()]
    assert len(live) == spec.MAX_SESSIONS and "brought-by-client" in live and ids[2] not in live


def test_B18_the_session_just_created_survives_even_when_last_in_list_order(
    storage: spec.SessionStorage, clock: ManualClock
) -> None:
    clock.advance(timedelta(hours=1))
    ids = [storage.create_session() for _ in range(spec.MAX_SESSIONS)]
    clock.advance(timedelta(minutes=-30))  # a clock that went back: the new one sorts last
    newest = storage.create_session()
    live = [s.id for s in storage.list_sessions()]
    assert live[-1] == newest and len(live) == spec.MAX_SESSIONS
    assert ids[0] not in live  # the oldest access among the others went instead


def stored_state(storage: spec.SessionStorage, path: Path) -> tuple[object, ...]:
    """What a read must not change: sessions and their order, the revision, the file."""
    assert isinstance(storage, TableStorage)
    table = storage._table
    try:
        info = path.stat()
        on_disk: tuple[object, ...] = (path.read_bytes(), info.st_mtime_ns, info.st_ino)
    except FileNotFoundError:
        on_disk = ()
    return (table.snapshot(), on_disk)  # with the base and access order


def test_B23_reads_neither_touch_nor_reorder_nor_write(
    storage: spec.SessionStorage, clock: ManualClock, tmp_path: Path
) -> None:
    a, b, c = (storage.create_session() for _ in range(3))
    storage.set_codex_conversation_id(a, "conv")
    clock.advance(timedelta(minutes=1))
    storage.add_turn(b, turn("x"))
    fresh = storage.create_session()  # ties with b, accessed later
    storage.flush()
    clock.advance(spec.SESSION_TTL - timedelta(seconds=30))  # a and c expired, not purged
    before = stored_state(storage, tmp_path / "sessions.json")
    for _ in range(3):
        for sid in (a, b, c, fresh, "unknown", "bad id"):
            storage.get_session(sid)
            storage.get_codex_conversation_id(sid)
    storage.flush()
    assert stored_state(storage, tmp_path / "sessions.json") == before
    listed = storage.list_sessions()  # purges a and c, touches nothing
    assert [s.id for s in listed] == [fresh, b]
    assert {s.last_accessed_at for s in listed} == {START + timedelta(minutes=1)}
    assert storage.list_sessions() == listed
    assert storage.get_session(a) is None and storage.get_codex_conversation_id(a) is None


def test_B23_get_session_does_not_purge(storage: spec.SessionStorage, clock: ManualClock) -> None:
    sid = storage.create_session()
    clock.advance(spec.SESSION_TTL + timedelta(milliseconds=1))
    assert storage.get_session(sid) is None
    assert storage.get_codex_conversation_id(sid) is None
    assert isinstance(storage, TableStorage)
    assert sid in storage._table._sessions  # still there until a purging method runs
    storage.list_sessions()
    assert sid not in storage._table._sessions


def test_B24_the_store_keeps_none_of_the_callers_objects(storage: spec.SessionStorage) -> None:
    sid = storage.create_session()
    turns = [turn("a")]
    storage.update_session(sid, turns=turns)
    turns.append(turn("b"))  # the caller's list is not the store's
    turns[0] = turn("changed")
    session = storage.get_session(sid)
    assert session is not None and session.turns == (turn("a"),)
    turns.clear()
    assert storage.get_session(sid) == session

    class NotedTurn(spec.ConversationTurn):  # a subclass may carry mutable attributes
        pass

    class NotedText(str):
        pass

    noted = NotedTurn(NotedText("p"), NotedText("r"), START)
    conversation = NotedText("conv")
    storage.add_turn(sid, noted)
    storage.set_codex_conversation_id(sid, conversation)
    session = storage.get_session(sid)
    assert session is not None
    kept = session.turns[-1]
    assert type(kept) is spec.ConversationTurn and kept is not noted
    assert (kept.prompt, kept.response, kept.timestamp) == ("p", "r", START)
    assert type(kept.prompt) is type(kept.response) is str
    assert type(session.codex_conversation_id) is str and session.codex_conversation_id == "conv"
    storage.ensure_session(NotedText("client-id"))
    assert all(type(s.id) is str for s in storage.list_sessions())


def test_B24_reads_return_immutable_snapshots_and_new_lists(
    storage: spec.SessionStorage,
) -> None:
    sid = storage.create_session()
    storage.add_turn(sid, turn("a"))
    session = storage.get_session(sid)
    assert session is not None and isinstance(session.turns, tuple)
    with pytest.raises(AttributeError):
        session.turns = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        session.turns[0].prompt = "changed"  # type: ignore[misc]
    first = storage.list_sessions()
    second = storage.list_sessions()
    assert first == second and first is not second
    first.clear()
    second.append(session)
    assert storage.list_sessions() == [session]


def test_non_turn_arguments_are_rejected_before_anything_changes(
    storage: spec.SessionStorage,
) -> None:
    sid = storage.create_session()
    with pytest.raises(spec.ValidationError):
        storage.update_session(sid, turns=[turn("a"), "b"])  # type: ignore[list-item]
    with pytest.raises(spec.ValidationError):
        storage.add_turn(sid, ("p", "r", START))  # type: ignore[arg-type]
    session = storage.get_session(sid)
    assert session is not None and session.turns == ()


def test_storage_is_safe_to_use_from_several_threads(storage: spec.SessionStorage) -> None:
    sid = storage.create_session()

    def add_many(name: str) -> None:
        for i in range(200):
            storage.add_turn(sid, turn(f"{name}-{i}"))

    threads = [threading.Thread(target=add_many, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session = storage.get_session(sid)
    assert session is not None and len(session.turns) == 800
    storage.flush()


def test_table_mutators_report_no_change_for_unknown_ids() -> None:
    table = SessionTable(clock=ManualClock())
    assert table.add_turn("x", turn("x")) is None
    assert table.update("x", turns=[]) is None
    assert table.delete("x") is None
    assert table.revision == 0


def test_add_turn_copies_no_history_and_reads_share_one_snapshot() -> None:
    """B02, B07, issue 16: ``add_turn`` appends to the session's private tail, leaving the
    snapshot of its history in place (no copy, whatever its length), and ``ensure_session``
    touches without a copy too; the first read folds the tail in and later reads return that
    same immutable snapshot until the next change."""
    clock = ManualClock()
    table = SessionTable(clock=clock)
    sid, _ = table.create()
    history = tuple(turn(f"old {i}") for i in range(1000))
    table.update(sid, turns=history)
    stored = table._sessions[sid].turns
    added = [turn(f"new {i}") for i in range(3)]
    for new in added:
        clock.advance(timedelta(milliseconds=1))
        assert table.add_turn(sid, new) is not None
        assert table._sessions[sid].turns is stored  # the history was not copied
        assert table._sessions[sid].last_accessed_at == clock()  # but the touch is there
    clock.advance(timedelta(milliseconds=1))
    table.ensure(sid)  # a touch too: no copy either
    assert table._sessions[sid].turns is stored
    assert table._sessions[sid].last_accessed_at == clock()
    read = table.get(sid)
    assert read is not None and read.turns == (*history, *added)
    assert table.get(sid) is read  # one snapshot, cached until the next change
    clock.advance(timedelta(milliseconds=1))
    table.add_turn(sid, turn("later"))
    assert read.turns == (*history, *added)  # the earlier snapshot did not change
    later = table.get(sid)
    assert later is not None and later.turns == (*history, *added, turn("later"))
