"""The reference's shared level (SPEC.md §8): the merge as pure functions, then instances on
one path in one process, the sidecar lock, and writers that do not take it.

The kit judges the same behaviours from the outside (checks_shared.py); these tests pin the
reference's own pieces and the cases the kit cannot set up (a lock held past the timeout, a
symlinked lock file, a file replaced by a writer that does not lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import START, ManualClock, temp_files, turn

from sessionspec import spec
from sessionspec.reference import FileSessionStorage
from sessionspec.reference.lock import LockTimeoutError
from sessionspec.reference.merge import merge_session, merge_stores, merge_turns

MS = timedelta(milliseconds=1)


def session(
    session_id: str = "x", *prompts: str, at: int = 0, conv: str | None = None, created: int = 0
) -> spec.SessionData:
    """A session whose turns are stamped 0, 1, 2... ms after START in prompt order."""
    return spec.SessionData(
        session_id,
        START + created * MS,
        START + at * MS,
        tuple(turn(p, at=START + i * MS) for i, p in enumerate(prompts)),
        conv,
    )


def prompts(found: spec.SessionData | None) -> list[str] | None:
    return None if found is None else [t.prompt for t in found.turns]


# -- the merge, per session (SPEC.md §8.2) ----------------------------------------------------


def test_an_unchanged_side_takes_the_other_side_whole() -> None:
    base = session("x", "a")
    changed = session("x", "a", "b", at=5, conv="c")
    assert merge_session(base, base, changed) is changed
    assert merge_session(base, changed, base) is changed
    assert merge_session(base, base, None) is None  # deleted there, untouched here
    assert merge_session(base, None, base) is None  # deleted here (B26)
    assert merge_session(None, None, None) is None


def test_a_change_after_the_base_beats_a_delete() -> None:
    base = session("x", "a")
    changed = session("x", "a", "typed", at=5)
    assert merge_session(base, None, changed) is changed
    assert merge_session(base, changed, None) is changed


def test_both_appended_merge_by_timestamp_and_ties_keep_the_disk_turn_first() -> None:
    base = (turn("base", at=START),)
    local = (*base, turn("l10", at=START + 10 * MS), turn("l30", at=START + 30 * MS))
    disk = (*base, turn("d20", at=START + 20 * MS), turn("d30", at=START + 30 * MS))
    merged = merge_turns(base, local, disk, later_is_local=True)
    assert [t.prompt for t in merged] == ["base", "l10", "d20", "d30", "l30"]


def test_one_side_replaced_takes_the_other_sides_added_turns() -> None:
    base = (turn("b0"), turn("b1"))
    appended = (*base, turn("new", at=START + 9 * MS))
    assert [t.prompt for t in merge_turns(base, (), appended, True)] == ["new"]
    assert [t.prompt for t in merge_turns(base, appended, (), True)] == ["new"]
    replaced = (turn("mine", at=START + 5 * MS),)
    assert [t.prompt for t in merge_turns(base, replaced, appended, True)] == ["mine", "new"]


def test_both_replaced_the_later_touch_wins_whole() -> None:
    base = (turn("b0"),)
    local, disk = (turn("l"),), (turn("d"),)
    assert merge_turns(base, local, disk, later_is_local=True) == local
    assert merge_turns(base, local, disk, later_is_local=False) == disk


def test_fields_merge_later_touch_earlier_creation_and_the_changed_conversation_id() -> None:
    base = session("x", "a", at=1, conv="old")
    local = session("x", "a", at=3, conv="old")  # touched only
    disk = session("x", "a", "b", at=2, conv="new")
    merged = merge_session(base, local, disk)
    assert merged is not None
    assert (merged.last_accessed_at, merged.codex_conversation_id) == (START + 3 * MS, "new")
    both = merge_session(None, session("y", "l", at=4, created=4), session("y", "d", created=2))
    assert both is not None and both.created_at == START + 2 * MS
    assert prompts(both) == ["d", "l"]  # one timestamp: the receiving (disk) list first


turns_strategy = st.lists(st.sampled_from("abc"), max_size=4)


@given(base=turns_strategy, local_extra=turns_strategy, disk_extra=turns_strategy)
def test_appends_on_both_sides_keep_every_turn_exactly_once(
    base: list[str], local_extra: list[str], disk_extra: list[str]
) -> None:
    """Whatever both sides append to a common base, the merge holds the base and both runs."""
    stamp = iter(range(100))
    base_turns = tuple(turn(p, at=START + next(stamp) * MS) for p in base)
    local = (*base_turns, *(turn("l" + p, at=START + next(stamp) * MS) for p in local_extra))
    disk = (*base_turns, *(turn("d" + p, at=START + next(stamp) * MS) for p in disk_extra))
    merged = merge_turns(base_turns, local, disk, later_is_local=True)
    assert sorted(merged, key=repr) == sorted((*local, *disk[len(base_turns) :]), key=repr)
    stamps = [t.timestamp for t in merged]
    assert stamps == sorted(stamps)


def test_merge_stores_covers_every_id_once() -> None:
    base = {"kept": session("kept"), "gone": session("gone")}
    local = {"kept": session("kept"), "mine": session("mine")}  # deleted "gone"
    disk = {"kept": session("kept", "x", at=1), "gone": session("gone"), "theirs": session("t")}
    assert sorted(merge_stores(base, local, disk)) == ["kept", "mine", "theirs"]


# -- instances on one path --------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "sessions.json"


@pytest.fixture
def open_store(path: Path, clock: ManualClock) -> Iterator[Any]:
    opened: list[FileSessionStorage] = []

    def open_storage(**options: Any) -> FileSessionStorage:
        opened.append(FileSessionStorage(path, clock=clock, **options))
        return opened[-1]

    yield open_storage
    for storage in opened:
        with contextlib.suppress(OSError):
            storage.close()


def test_two_instances_one_deletes_the_other_saves_the_session_stays_deleted(
    open_store: Any, clock: ManualClock
) -> None:
    """Issue 13's must-show, in one process: B26."""
    seed = open_store()
    doomed, kept = seed.create_session(), seed.create_session()
    seed.close()
    one, two = open_store(), open_store()
    assert one.delete_session(doomed)
    one.flush()
    clock.advance(MS)
    two.add_turn(kept, turn("two"))  # two saves; it never touched the deleted session
    two.flush()
    fresh = open_store()
    assert fresh.get_session(doomed) is None and prompts(fresh.get_session(kept)) == ["two"]
    assert two.get_session(doomed) is None  # and two takes the delete in


def test_concurrent_turns_on_one_session_keep_both_sides(
    open_store: Any, clock: ManualClock
) -> None:
    seed = open_store()
    sid = seed.create_session()
    seed.close()
    one, two = open_store(), open_store()
    for i in range(10):
        clock.advance(MS)
        (one, two)[i % 2].add_turn(sid, turn(f"t{i}", at=clock.now))
    one.flush()
    two.flush()
    assert prompts(open_store().get_session(sid)) == [f"t{i}" for i in range(10)]


def test_a_single_instance_decodes_only_what_others_wrote(
    open_store: Any, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest decides (§8.2): own saves, and the same bytes written again, are not decoded;
    another instance's different bytes are, once."""
    from sessionspec.reference import file as reference_file

    storage = open_store()
    sid = storage.create_session()
    storage.flush()
    decoded: list[int] = []
    original = reference_file.decode

    def counting(data: bytes) -> Any:
        decoded.append(len(data))
        return original(data)

    monkeypatch.setattr(reference_file, "decode", counting)
    for i in range(5):
        storage.add_turn(sid, turn(f"t{i}"))
        storage.flush()
        storage.list_sessions()
    path.write_bytes(path.read_bytes())  # same bytes, a new inode and mtime: nothing new
    storage.list_sessions()
    assert decoded == []
    other = open_store()
    other.ensure_session("from-other")
    other.flush()
    decoded.clear()  # the other instance's own load
    assert [s.id for s in storage.list_sessions()].count("from-other") == 1
    assert len(decoded) == 1


def test_a_failure_after_the_rename_does_not_merge_the_save_twice(
    open_store: Any, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory fsync fails once after the rename: flush() raises (B22), and the retry
    does not take its own file for someone else's (turns twice)."""
    from sessionspec.reference import file as reference_file

    storage = open_store()
    sid = storage.create_session()
    storage.add_turn(sid, turn("t1"))
    storage.flush()
    real = reference_file._fsync_directory
    failures = [OSError(5, "injected EIO")]

    def fsync_directory(directory: Path) -> None:
        if failures:
            raise failures.pop()
        real(directory)

    monkeypatch.setattr(reference_file, "_fsync_directory", fsync_directory)
    storage.add_turn(sid, turn("t2"))
    with pytest.raises(OSError, match="injected EIO"):
        storage.flush()
    storage.add_turn(sid, turn("t3"))
    storage.flush()
    assert prompts(open_store().get_session(sid)) == ["t1", "t2", "t3"]


def test_a_file_replaced_by_a_writer_without_the_lock_is_taken_in(
    open_store: Any, path: Path, clock: ManualClock
) -> None:
    """§8.5: an upstream-style save (write a temp, rename it over) is merged like any other."""
    storage = open_store()
    mine = storage.create_session()
    storage.flush()
    document = json.loads(path.read_bytes())
    theirs = dict(document["sessions"][0], id="upstream-made")
    document["sessions"].append(theirs)
    temp = path.with_name(path.name + ".0d1e2f.tmp")
    temp.write_text(json.dumps(document), encoding="utf-8")
    os.replace(temp, path)
    assert {s.id for s in storage.list_sessions()} == {mine, "upstream-made"}
    clock.advance(MS)
    storage.add_turn(mine, turn("after"))
    storage.close()
    assert {s.id for s in open_store().list_sessions()} == {mine, "upstream-made"}


# -- the lock (B30) ---------------------------------------------------------------------------


def test_a_lock_held_past_the_timeout_fails_the_flush_and_loses_nothing(
    open_store: Any, path: Path
) -> None:
    storage = open_store(lock_timeout=0.2)
    sid = storage.create_session()
    storage.flush()
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        storage.add_turn(sid, turn("waits"))
        with pytest.raises(LockTimeoutError, match=r"sessions\.json\.lock"):
            storage.flush()
        assert isinstance(LockTimeoutError(), OSError)  # flush() raises OSError (B22)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    storage.flush()  # the next flush() after the holder let go writes everything
    assert prompts(open_store().get_session(sid)) == ["waits"]


def test_the_lock_file_is_not_followed_through_a_symlink_and_never_deleted(
    open_store: Any, path: Path, tmp_path: Path
) -> None:
    path.parent.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    victim.chmod(0o644)
    lock = path.with_name(path.name + ".lock")
    lock.symlink_to(victim)
    storage = open_store()
    storage.create_session()
    with pytest.raises(OSError):  # O_NOFOLLOW: ELOOP
        storage.flush()
    assert victim.read_bytes() == b"do not touch" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    lock.unlink()
    storage.flush()
    assert stat.S_IMODE(os.lstat(lock).st_mode) == 0o600
    storage.close()
    assert lock.exists()


def test_dead_shared_temps_go_under_the_lock_and_others_keep_b16(
    open_store: Any, path: Path
) -> None:
    path.parent.mkdir()
    dead = path.with_name(path.name + ".shared-1-dead.tmp")
    dead.write_bytes(b"partial")
    upstream = path.with_name(path.name + ".0d1e2f-live.tmp")
    upstream.write_bytes(b"partial")
    storage = open_store()
    assert dead.exists()  # not at open: only under the lock
    storage.create_session()
    storage.flush()
    assert not dead.exists() and upstream.exists()
    storage.close()
    assert sorted(temp_files(path)) == [upstream]


def test_taking_in_a_corrupt_file_writes_nothing_and_reads_go_on(
    open_store: Any, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """B29 + B23: a read that finds garbage logs and keeps memory; the next save sets it aside
    (B13) and merges nothing from it."""
    storage = open_store()
    sid = storage.create_session()
    storage.flush()
    garbage = b"{ not json"
    path.write_bytes(garbage)
    before = sorted(p.name for p in path.parent.iterdir())
    caplog.set_level(logging.WARNING, logger="sessionspec.reference.file")
    assert storage.get_session(sid) is not None  # from memory
    assert any("not taking it in" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing moved or written
    storage.add_turn(sid, turn("after"))
    storage.flush()
    # The garbage counts as an empty file (B13); the session changed here since: kept.
    assert prompts(open_store().get_session(sid)) == ["after"]
    assert any(b.read_bytes() == garbage for b in path.parent.glob("sessions.json.*.bak"))


def test_a_read_does_not_wait_for_another_process_holding_the_lock(
    open_store: Any, path: Path
) -> None:
    storage = open_store(lock_timeout=5)
    other = open_store()
    other.ensure_session("theirs")
    other.flush()
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Taken in while the lock is still held: a read that waited for it would give up
        # after lock_timeout and answer from memory, which does not hold "theirs".
        assert storage.get_session("theirs") is not None
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# -- how the kit sees the lock (B30's trace check) --------------------------------------------


def test_the_kit_reads_flock_and_lock_closes_from_strace_lines() -> None:
    from sessionspec.conformance.checks_process import parse_strace

    text = "\n".join(
        [
            "4242  flock(5</s/sessions.json.lock>, LOCK_EX|LOCK_NB) = 0",
            '4242  renameat2(AT_FDCWD, "/s/sessions.json.shared-1.tmp", AT_FDCWD,'
            ' "/s/sessions.json", RENAME_NOREPLACE) = 0',
            "4242  flock(5</s/sessions.json.lock>, LOCK_UN) = 0",
            "4243  close(7</s/sessions.json.lock>) = 0",
            "4243  close(8</s/other.txt>) = 0",
            "4243  flock(7</s/sessions.json.lock>, LOCK_EX|LOCK_NB) = -1 EAGAIN",
        ]
    )
    events = [(e.kind, e.path, sorted(e.flags), e.target, e.thread) for e in parse_strace(text)]
    assert events == [
        ("flock", "/s/sessions.json.lock", ["LOCK_EX", "LOCK_NB"], "5", 4242),
        ("rename", "/s/sessions.json.shared-1.tmp", [], "/s/sessions.json", 4242),
        ("flock", "/s/sessions.json.lock", ["LOCK_UN"], "5", 4242),
        ("close", "/s/sessions.json.lock", [], "7", 4243),
    ]
