"""FileSessionStorage: the durable and file-v1 behaviours (B05-B06 durable parts, B09-B16,
B19-B22) and the reference's own details: threads, logging, the factory, default path,
child processes, umask, and wire compatibility with codex-mcp-server in real Node.js.

Real files and real processes; faults are injected root-safely by turning the parent
directory into a regular file (ENOTDIR).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import run_node
from reference_helpers import (
    NASTY_TEXTS,
    START,
    ManualClock,
    backups,
    temp_files,
    turn,
    writer_threads,
)

from sessionspec import spec
from sessionspec.reference import (
    DEFAULT_PATH,
    FileSessionStorage,
    InMemorySessionStorage,
    create_session_storage,
)

LOGGER = "sessionspec.reference.file"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "sessions.json"


@pytest.fixture
def opened() -> Iterator[list[FileSessionStorage]]:
    """Instances to close at teardown even when a test fails half-way."""
    instances: list[FileSessionStorage] = []
    yield instances
    for storage in instances:
        with contextlib.suppress(OSError):
            storage.close()


@pytest.fixture
def open_store(path: Path, clock: ManualClock, opened: list[FileSessionStorage]) -> Any:
    def open_storage(at: Path = path) -> FileSessionStorage:
        opened.append(FileSessionStorage(at, clock=clock))
        return opened[-1]

    return open_storage


def fill(storage: spec.SessionStorage, clock: ManualClock, count: int = 3) -> list[str]:
    """Sessions with nasty texts, distinct access times and a mix of conversation ids."""
    ids = []
    for i in range(count):
        sid = storage.create_session()
        for j, text in enumerate(NASTY_TEXTS):
            storage.add_turn(sid, turn(text, NASTY_TEXTS[-1 - j], at=clock.now))
        if i % 3:
            storage.set_codex_conversation_id(sid, ["", "conv"][i % 2])
        clock.advance(timedelta(milliseconds=1))
        ids.append(sid)
    return ids


def break_directory(directory: Path) -> Path:
    """Replace ``directory`` by a regular file, so every save in it fails with ENOTDIR."""
    moved = directory.with_name(directory.name + ".moved")
    directory.rename(moved)
    directory.write_bytes(b"not a directory")
    return moved


def repair_directory(directory: Path, moved: Path) -> None:
    directory.unlink()
    moved.rename(directory)


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]


# -- durable parts of core behaviours ---------------------------------------------------------


def test_B05_a_deleted_session_stays_gone_after_reopen(open_store: Any) -> None:
    storage = open_store()
    keep, gone = storage.create_session(), storage.create_session()
    assert storage.delete_session(gone)
    storage.close()
    assert [s.id for s in open_store().list_sessions()] == [keep]


def test_B06_an_empty_conversation_id_survives_reopen(open_store: Any, path: Path) -> None:
    storage = open_store()
    sid = storage.create_session()
    storage.set_codex_conversation_id(sid, "")
    storage.close()
    assert json.loads(path.read_bytes())["sessions"][0]["codexConversationId"] == ""
    assert open_store().get_codex_conversation_id(sid) == ""


def test_B08_a_rejected_id_writes_nothing(open_store: Any, path: Path) -> None:
    storage = open_store()
    with pytest.raises(spec.ValidationError):
        storage.ensure_session("../escape")
    storage.close()
    assert not path.parent.exists()


# -- B09-B16 ------------------------------------------------------------------------------------


def test_B09_close_and_reopen_restores_the_same_state(open_store: Any, clock: ManualClock) -> None:
    storage = open_store()
    ids = fill(storage, clock, 5)
    storage.add_turn(ids[0], spec.ConversationTurn("p", "r", START + timedelta(microseconds=999)))
    storage.ensure_session(ids[2])  # a tie-free but non-creation list order
    before = storage.list_sessions()
    storage.close()
    after = open_store().list_sessions()
    assert after == before
    assert all(s.created_at.tzinfo is not None for s in after)
    assert after[1].turns[-1].timestamp == START  # sub-millisecond digits truncated


def test_B09_ties_in_last_access_keep_their_order_across_reopen(open_store: Any) -> None:
    storage = open_store()
    ids = [storage.create_session() for _ in range(5)]  # the clock stands still: all tie
    storage.add_turn(ids[2], turn("x"))
    before = [s.id for s in storage.list_sessions()]
    assert before == [ids[2], ids[4], ids[3], ids[1], ids[0]]
    storage.close()
    assert [s.id for s in open_store().list_sessions()] == before


def test_B10_every_file_written_is_writer_valid(
    open_store: Any, path: Path, clock: ManualClock
) -> None:
    storage = open_store()
    ids = fill(storage, clock, 4)
    for step in range(3):
        storage.flush()
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        document = json.loads(data.decode("utf-8"))
        assert [e.message for e in spec.writer_validator().iter_errors(document)] == []
        file_ids = [s["id"] for s in document["sessions"]]
        assert len(file_ids) == len(set(file_ids))
        assert file_ids == [s.id for s in storage.list_sessions()]
        storage.reset_session(ids[step])


def test_B11_a_missing_file_is_an_empty_store_and_nothing_is_created(
    open_store: Any, path: Path
) -> None:
    storage = open_store()
    assert storage.list_sessions() == []
    storage.get_session("x")
    storage.flush()
    storage.close()
    assert not path.parent.exists()


def test_B11_the_first_save_creates_private_directories(open_store: Any, tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "sessions.json"
    storage = open_store(deep)
    storage.create_session()
    storage.flush()
    for directory in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_B12_a_directory_at_the_path_raises_and_touches_nothing(
    path: Path, clock: ManualClock
) -> None:
    path.mkdir(parents=True)
    stale = path.with_name(path.name + ".old.tmp")
    stale.write_bytes(b"")
    os.utime(stale, (0, 0))
    before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(OSError):
        FileSessionStorage(path, clock=clock)
    assert sorted(p.name for p in path.parent.iterdir()) == before


def test_B12_a_path_component_that_is_not_a_directory_raises(
    tmp_path: Path, clock: ManualClock
) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        FileSessionStorage(tmp_path / "file" / "sessions.json", clock=clock)
    assert (tmp_path / "file").read_bytes() == b"x"


def test_B13_corrupt_file_is_moved_aside_byte_identical(
    open_store: Any, path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir()
    corrupt = b'{"version": 1, "sessions": [\xff'
    path.write_bytes(corrupt)
    path.chmod(0o644)
    epoch_ms = int(clock.now.timestamp() * 1000)
    taken = [path.with_name(f"sessions.json.{epoch_ms}.bak")]
    taken.append(path.with_name(f"sessions.json.{epoch_ms}.1.bak"))
    for name in taken:
        name.write_bytes(b"someone else's")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    storage = open_store()
    backup = path.with_name(f"sessions.json.{epoch_ms}.2.bak")
    assert backup.read_bytes() == corrupt
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert all(name.read_bytes() == b"someone else's" for name in taken)
    assert not path.exists() and storage.list_sessions() == []
    assert any(str(backup) in r.getMessage() for r in caplog.records)
    storage.create_session()
    storage.flush()
    assert backup.read_bytes() == corrupt


def test_B14_a_future_version_is_set_aside_and_never_overwritten(
    open_store: Any, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir()
    future = b'{"version": 2, "sessions": [], "whatever": "v2 holds"}'
    path.write_bytes(future)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    storage = open_store()
    assert storage.list_sessions() == []
    (backup,) = backups(path)
    assert backup.read_bytes() == future
    assert any(str(backup) in r.getMessage() for r in caplog.records)
    storage.create_session()
    storage.close()
    assert backup.read_bytes() == future
    assert json.loads(path.read_bytes())["version"] == 1


def test_B15_invalid_records_are_skipped_and_the_original_bytes_kept(
    open_store: Any, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir()
    good = {
        "id": "good",
        "createdAt": "2026-01-01T11:00:00Z",
        "lastAccessedAt": "2026-01-01T11:00:00Z",
        "turns": [
            {"prompt": "p", "response": "r", "timestamp": "2026-01-01T11:00:00Z"},
            {"prompt": 1},
        ],
    }
    original = json.dumps({"version": 1, "sessions": [good, {"id": "bad"}, 7]}).encode()
    path.write_bytes(original)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    storage = open_store()
    session = storage.get_session("good")
    assert session is not None and len(session.turns) == 1
    assert [s.id for s in storage.list_sessions()] == ["good"]
    messages = [r.getMessage() for r in caplog.records]
    for location in ("sessions[0].turns[1]:", "sessions[1]:", "sessions[2]:"):
        assert any(location in m for m in messages), location
    (backup,) = backups(path)
    assert backup.read_bytes() == original
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    garbage = b"changed by someone after the load"
    path.write_bytes(garbage)  # the backup holds what was read
    storage.add_turn("good", turn("x"))
    storage.close()
    assert backup.read_bytes() == original
    # The save reads the file again (B25-B30: it merges what is on disk) and keeps the
    # garbage as it keeps any unparseable file (B13): every byte stays recoverable.
    assert sorted(b.read_bytes() for b in backups(path)) == sorted([original, garbage])


def test_B15_a_lossless_load_makes_no_backup(open_store: Any, path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(
        b'{"sessions": [{"turns": [], "id": "a", "codexConversationId": null,'
        b' "createdAt": "2026-01-01t12:00:00+01:00", "lastAccessedAt": "2026-01-01T11:00:00z"}],'
        b' "version": 1.0}'
    )
    storage = open_store()
    assert [s.id for s in storage.list_sessions()] == ["a"]
    assert backups(path) == []


def epoch_ns(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def test_B16_only_stale_temp_files_are_removed(
    open_store: Any, path: Path, clock: ManualClock
) -> None:
    path.parent.mkdir()
    cutoff = epoch_ns(clock.now - spec.STALE_TEMP_AGE)  # the clock is at a whole millisecond
    hour = 3600 * 10**9
    mtimes = {
        "sessions.json.123-abc.tmp": cutoff - hour,  # stale: removed
        "sessions.json.1.2.3.tmp": cutoff - hour,  # dots in the middle match too: removed
        "sessions.json.x.tmp": cutoff - 1,  # a nanosecond past the hour: removed
        "sessions.json.789-ghi.tmp": cutoff,  # exactly an hour: not earlier, kept
        "sessions.json.456-def.tmp": cutoff + hour // 2,  # younger: another live writer
        "sessions.json..tmp": cutoff - hour,  # the middle is empty: no match, kept
        "sessions.json.tmp": cutoff - hour,  # does not match <name>.<middle>.tmp
        "sessions.json.1-x.tmp.bak": cutoff - hour,
        "other.json.1-x.tmp": cutoff - hour,  # another file's
        "sessions.json.5.bak": cutoff - hour,
    }
    for name, mtime in mtimes.items():
        (path.parent / name).write_bytes(b"x")
        os.utime(path.parent / name, ns=(mtime, mtime))
    assert os.stat(path.parent / "sessions.json.x.tmp").st_mtime_ns == cutoff - 1
    storage = open_store()
    left = sorted(p.name for p in path.parent.iterdir())
    removed = {"sessions.json.123-abc.tmp", "sessions.json.1.2.3.tmp", "sessions.json.x.tmp"}
    assert left == sorted(set(mtimes) - removed)
    storage.create_session()
    storage.flush()
    own = {p.name for p in temp_files(path)} - set(mtimes)
    assert own == set()  # no temp file of this instance remains after a save


def test_B16_only_regular_files_of_this_user_are_removed(
    open_store: Any, path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = path.parent
    directory.mkdir()
    monkeypatch.chdir(directory)  # a socket's path must be short: bind it by a relative name
    outside = directory.parent / "elsewhere.tmp"
    outside.write_bytes(b"someone's")
    (directory / "sessions.json.mine.tmp").write_bytes(b"x")  # the one to remove
    (directory / "sessions.json.theirs.tmp").write_bytes(b"x")
    os.chown(directory / "sessions.json.theirs.tmp", 12345, 12345)
    os.mkfifo(directory / "sessions.json.fifo.tmp")
    (directory / "sessions.json.dir.tmp").mkdir()
    os.symlink(outside, directory / "sessions.json.link.tmp")
    os.symlink(directory / "gone", directory / "sessions.json.dangling.tmp")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sessions.json.sock.tmp")
    old = epoch_ns(clock.now - 2 * spec.STALE_TEMP_AGE)
    for entry in [*directory.iterdir(), outside]:
        os.utime(entry, ns=(old, old), follow_symlinks=False)
    kept = {p.name: os.lstat(p) for p in directory.iterdir()}
    del kept["sessions.json.mine.tmp"]
    open_store()
    assert sorted(p.name for p in directory.iterdir()) == sorted(kept)
    for name, before in kept.items():
        after = os.lstat(directory / name)
        assert (after.st_ino, after.st_mode, after.st_uid) == (
            before.st_ino,
            before.st_mode,
            before.st_uid,
        ), name
    assert outside.read_bytes() == b"someone's"


def test_B16_now_is_the_constructors_one_reading_of_the_clock_truncated_to_ms(
    path: Path, opened: list[FileSessionStorage]
) -> None:
    """Expiry and the cap at load, stale temps and the backup name share one now."""
    readings: list[datetime] = []

    def clock() -> datetime:  # a sub-millisecond first reading, then two hours later each
        readings.append(START + timedelta(microseconds=999, hours=2 * len(readings)))
        return readings[-1]

    path.parent.mkdir()
    records = [
        {
            "id": f"s{i}",
            "createdAt": "2026-01-01T12:00:00.000Z",
            "lastAccessedAt": "2026-01-01T12:00:00.000Z",
            "turns": [],
        }
        for i in range(100)
    ]
    records.append({"id": "oldest", "createdAt": "2025-12-31T12:00:00.000Z",
                    "lastAccessedAt": "2025-12-31T12:00:00.000Z", "turns": []})  # fmt: skip
    path.write_text(json.dumps({"version": 1, "sessions": records}))
    cutoff = epoch_ns(START - spec.STALE_TEMP_AGE)
    for name, mtime in {"sessions.json.a.tmp": cutoff - 1, "sessions.json.b.tmp": cutoff}.items():
        (path.parent / name).write_bytes(b"x")
        os.utime(path.parent / name, ns=(mtime, mtime))
    (path.parent / "sessions.json.c.tmp").write_bytes(b"x")  # stale only for an untruncated now
    os.utime(path.parent / "sessions.json.c.tmp", ns=(cutoff + 500_000, cutoff + 500_000))
    opened.append(FileSessionStorage(path, clock=clock))
    assert len(readings) == 1
    # "oldest" is exactly 24 h old at that now: live, so 101 live sessions, one over the cap.
    assert opened[0]._table.evicted_at_load == ("oldest",)
    epoch_ms = epoch_ns(START) // 10**6
    assert backups(path) == [path.with_name(f"sessions.json.{epoch_ms}.bak")]
    assert sorted(p.name for p in temp_files(path)) == [
        "sessions.json.b.tmp",
        "sessions.json.c.tmp",
    ]


@pytest.mark.parametrize("operation", ["create", "ensure"])
def test_B18_the_new_session_survives_the_cap_when_loaded_sessions_are_ahead_of_the_clock(
    open_store: Any, path: Path, clock: ManualClock, operation: str
) -> None:
    path.parent.mkdir()
    ahead = clock.now + timedelta(days=1)  # written by a machine whose clock is a day ahead
    records = [
        {
            "id": f"ahead-{i}",
            "createdAt": spec.format_timestamp(clock.now),
            "lastAccessedAt": spec.format_timestamp(ahead - timedelta(seconds=i)),
            "turns": [],
        }
        for i in range(spec.MAX_SESSIONS)
    ]
    path.write_text(json.dumps({"version": 1, "sessions": records}))
    storage = open_store()
    assert backups(path) == []  # a lossless load: the cap was not exceeded yet
    if operation == "create":
        new = storage.create_session()
    else:
        new = "brought-by-client"
        storage.ensure_session(new)
    live = [s.id for s in storage.list_sessions()]
    others = [f"ahead-{i}" for i in range(spec.MAX_SESSIONS - 1)]
    assert live == [*others, new]  # the last of the others in list order went; new is last
    storage.close()
    assert [s.id for s in open_store().list_sessions()] == live


# -- B19-B22 ------------------------------------------------------------------------------------


def test_B19_readers_only_ever_see_a_complete_file(
    open_store: Any, path: Path, clock: ManualClock
) -> None:
    storage = open_store()
    ids = fill(storage, clock, 3)
    storage.flush()
    seen: list[bytes] = []
    done = threading.Event()

    def read_while_writing() -> None:
        while not done.is_set():
            seen.append(path.read_bytes())

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        for i in range(100):
            storage.add_turn(ids[i % 3], turn("x" * 10_000))
            storage.flush()
    finally:
        done.set()
        reader.join()
    assert seen
    for data in seen:
        json.loads(data)  # never half a file
    assert list(temp_files(path)) == []


def test_B19_each_instance_has_its_own_temp_name(open_store: Any, path: Path) -> None:
    first, second = open_store(), open_store()
    assert first._temp_path != second._temp_path
    assert first._temp_path.name.startswith("sessions.json.")
    assert first._temp_path.name.endswith(".tmp")


def test_B20_files_and_directories_are_private_whatever_the_umask(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "new" / "sessions.json"
    old = os.umask(0)
    try:
        with FileSessionStorage(path, clock=clock) as storage:
            storage.create_session()
            storage.flush()
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            path.chmod(0o666)  # someone widened it: the next save narrows it again
            storage.create_session()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_B21_flush_after_a_burst_puts_exactly_the_final_state_on_disk(
    open_store: Any, clock: ManualClock
) -> None:
    storage = open_store()
    ids = [storage.create_session() for _ in range(20)]
    for i in range(2000):
        sid = ids[i % 20]
        storage.add_turn(sid, turn(f"turn {i}"))
        if i % 7 == 0:
            storage.set_codex_conversation_id(sid, f"conv {i}")
        if i % 500 == 499:
            storage.delete_session(ids[(i // 500)])
    storage.flush()
    expected = storage.list_sessions()
    assert [s.id for s in open_store().list_sessions()] == [s.id for s in expected]
    assert open_store().list_sessions() == expected


def test_B21_close_flushes(open_store: Any, clock: ManualClock) -> None:
    storage = open_store()
    ids = fill(storage, clock, 2)
    expected = storage.list_sessions()
    storage.close()
    assert open_store().list_sessions() == expected
    assert ids


def test_B22_a_failed_write_raises_from_flush_and_loses_nothing(
    open_store: Any, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER)
    storage = open_store()
    first = storage.create_session()
    storage.flush()
    moved = break_directory(path.parent)
    storage.add_turn(first, turn("during the fault"))
    with pytest.raises(NotADirectoryError):
        storage.flush()
    second = storage.create_session()
    with pytest.raises(OSError):
        storage.flush()
    assert len(errors(caplog)) == 1  # once, not again until a save succeeds
    session = storage.get_session(first)
    assert session is not None and len(session.turns) == 1  # memory was not rolled back
    failures = storage._failures
    with pytest.raises(OSError):
        storage.flush()
    assert storage._failures == failures + 1  # flush tried exactly once more: no loop
    repair_directory(path.parent, moved)
    storage.flush()
    expected = storage.list_sessions()
    assert {s.id for s in expected} == {first, second}
    assert open_store().list_sessions() == expected
    moved = break_directory(path.parent)  # after a success, a new failure is logged again
    storage.reset_session(first)
    with pytest.raises(OSError):
        storage.flush()
    assert len(errors(caplog)) == 2
    repair_directory(path.parent, moved)


def test_B22_close_that_cannot_flush_raises_and_stays_open_until_a_retry_succeeds(
    open_store: Any, path: Path
) -> None:
    before = set(writer_threads())
    storage = open_store()
    first = storage.create_session()
    storage.flush()
    moved = break_directory(path.parent)
    storage.add_turn(first, turn("unsaved"))
    second = storage.create_session()
    with pytest.raises(NotADirectoryError):
        storage.close()
    assert set(writer_threads()) - before  # still open: the writer stays for a retry
    with pytest.raises(NotADirectoryError):
        storage.close()  # not closed yet: it tries again
    session = storage.get_session(first)
    assert session is not None and len(session.turns) == 1  # memory keeps every change
    expected = storage.list_sessions()
    repair_directory(path.parent, moved)
    storage.close()  # the retry writes the full state, and only now counts as closed
    assert set(writer_threads()) == before
    assert {s.id for s in expected} == {first, second}
    assert open_store().list_sessions() == expected
    moved = break_directory(path.parent)
    storage.close()  # closed: does nothing, so it cannot fail
    repair_directory(path.parent, moved)


def test_B22_after_a_failed_close_a_flush_retries_too(open_store: Any, path: Path) -> None:
    storage = open_store()
    storage.create_session()
    storage.flush()
    moved = break_directory(path.parent)
    sid = storage.create_session()
    with pytest.raises(OSError):
        storage.close()
    repair_directory(path.parent, moved)
    storage.flush()
    assert open_store().get_session(sid) == storage.get_session(sid)
    storage.close()


# -- B13-B15 when the file cannot be preserved --------------------------------------------------


@pytest.fixture
def exhaust_links(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Give a file every hard link its file system allows, so os.link fails with EMLINK."""
    spare = tmp_path / "links"

    def exhaust(file: Path) -> None:
        limit = os.pathconf(file, "PC_LINK_MAX")
        if limit > 100_000:
            pytest.skip(f"the file system allows {limit} hard links: too many to make")
        spare.mkdir()
        for n in range(limit - os.stat(file).st_nlink):
            os.link(file, spare / str(n))
        try:
            os.link(file, spare / "one more")
        except OSError as exc:
            assert exc.errno == errno.EMLINK
        else:
            pytest.skip("the file system does not enforce its hard link limit")

    yield exhaust
    shutil.rmtree(spare, ignore_errors=True)


def test_B13_without_hard_links_the_file_is_copied_aside(
    open_store: Any, path: Path, clock: ManualClock, exhaust_links: Callable[[Path], None]
) -> None:
    path.parent.mkdir()
    corrupt = b"{not json" * 1000
    path.write_bytes(corrupt)
    path.chmod(0o644)
    exhaust_links(path)  # a real os.link failure (EMLINK): it must copy instead
    storage = open_store()
    (backup,) = backups(path)
    assert backup.name == f"sessions.json.{epoch_ns(clock.now) // 10**6}.bak"
    assert backup.read_bytes() == corrupt and backup.stat().st_nlink == 1  # a copy
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert not path.exists() and storage.list_sessions() == []


@pytest.mark.parametrize("code", [errno.EPERM, errno.EXDEV, errno.ENOTSUP], ids=errno.errorcode.get)
def test_B13_each_no_hard_link_error_falls_back_to_a_copy(
    open_store: Any, path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Seam level: file systems that cannot link answer with one of several errors."""

    def cannot_link(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    path.parent.mkdir()
    path.write_bytes(b"\xff corrupt")
    monkeypatch.setattr(os, "link", cannot_link)
    open_store()
    (backup,) = backups(path)
    assert backup.read_bytes() == b"\xff corrupt" and not path.exists()


def test_B13_a_link_error_that_is_not_about_links_raises_and_keeps_the_file(
    path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    path.parent.mkdir()
    path.write_bytes(b"\xff corrupt")
    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(OSError):
        FileSessionStorage(path, clock=clock)
    assert path.read_bytes() == b"\xff corrupt" and backups(path) == []


LIMITED_CHILD = """
import json, resource, sys
from sessionspec import spec
from sessionspec.reference import FileSessionStorage
now = spec.parse_timestamp(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
try:
    FileSessionStorage(sys.argv[1], clock=lambda: now)
except OSError as exc:
    print(json.dumps(exc.errno))
else:
    print(json.dumps(None))
"""


def open_with_file_size_limit(path: Path, clock: ManualClock, limit: int) -> int | None:
    """Open in a child process that may write at most ``limit`` bytes into any file (EFBIG).

    A real fault that also stops root. Returns the errno of the constructor's OSError.
    """
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_CHILD, str(path), spec.format_timestamp(clock.now),
         str(limit)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    result: int | None = json.loads(done.stdout)
    return result


def test_B15_a_backup_that_cannot_be_written_raises_and_changes_nothing(
    path: Path, clock: ManualClock
) -> None:
    path.parent.mkdir()
    lossy = json.dumps({"version": 1, "sessions": [{"id": "bad"}], "pad": "x" * 1000}).encode()
    path.write_bytes(lossy)
    assert open_with_file_size_limit(path, clock, 100) == errno.EFBIG
    assert path.read_bytes() == lossy
    assert sorted(p.name for p in path.parent.iterdir()) == ["sessions.json"]  # no partial copy


def test_B13_a_file_that_can_be_neither_linked_nor_copied_aside_stays_at_the_path(
    path: Path, clock: ManualClock, exhaust_links: Callable[[Path], None]
) -> None:
    path.parent.mkdir()
    corrupt = b"{not json" * 1000
    path.write_bytes(corrupt)
    exhaust_links(path)
    assert open_with_file_size_limit(path, clock, 100) == errno.EFBIG
    assert path.read_bytes() == corrupt
    assert sorted(p.name for p in path.parent.iterdir()) == ["sessions.json"]


# -- the reference's own details -----------------------------------------------------------------


def test_close_stops_the_writer_thread_and_is_idempotent(open_store: Any) -> None:
    before = set(writer_threads())
    storage = open_store()
    storage.create_session()
    assert set(writer_threads()) - before  # started by the first mutation
    storage.close()
    storage.close()
    assert set(writer_threads()) == before


def test_opening_without_mutating_starts_no_thread(open_store: Any) -> None:
    before = set(writer_threads())
    storage = open_store()
    storage.list_sessions()
    assert set(writer_threads()) == before


def test_mutations_never_raise_when_saving_fails(open_store: Any, path: Path) -> None:
    storage = open_store()
    path.parent.mkdir()
    moved = break_directory(path.parent)
    sid = storage.create_session()  # the save fails in the writer thread, not here
    storage.add_turn(sid, turn("x"))
    storage.ensure_session("other")
    with pytest.raises(OSError):
        storage.flush()
    repair_directory(path.parent, moved)


def test_the_factory_honours_upstreams_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CODEX_MCP_SESSION_FILE", raising=False)
    monkeypatch.setenv("CODEX_MCP_MEMORY_ONLY", "true")
    assert isinstance(create_session_storage(), InMemorySessionStorage)
    monkeypatch.setenv("CODEX_MCP_MEMORY_ONLY", "1")  # upstream compares with 'true' only
    with create_session_storage() as storage:
        assert isinstance(storage, FileSessionStorage)
        assert storage.path == tmp_path / ".codex-mcp" / "sessions.json"
    monkeypatch.delenv("CODEX_MCP_MEMORY_ONLY")
    monkeypatch.setenv("CODEX_MCP_SESSION_FILE", "~/elsewhere/s.json")
    with create_session_storage() as storage:
        assert isinstance(storage, FileSessionStorage)
        assert storage.path == tmp_path / "elsewhere" / "s.json"
    monkeypatch.setenv("CODEX_MCP_SESSION_FILE", "")  # empty: the default, like upstream
    with create_session_storage() as storage:
        assert isinstance(storage, FileSessionStorage)
        assert storage.path == tmp_path / ".codex-mcp" / "sessions.json"


def test_the_default_path_is_expanded_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    storage = FileSessionStorage()
    monkeypatch.setenv("HOME", str(tmp_path / "later"))
    assert storage.path == tmp_path / ".codex-mcp" / "sessions.json"
    assert Path("~/.codex-mcp/sessions.json") == DEFAULT_PATH
    storage.create_session()
    storage.close()
    assert (tmp_path / ".codex-mcp" / "sessions.json").is_file()


CHILD = """
import json, sys
from sessionspec.reference import FileSessionStorage
from sessionspec import spec
now = spec.parse_timestamp(sys.argv[2])
with FileSessionStorage(sys.argv[1], clock=lambda: now) as storage:
    print(json.dumps([
        [s.id, s.created_at.isoformat(), s.last_accessed_at.isoformat(), s.codex_conversation_id,
         [[t.prompt, t.response, t.timestamp.isoformat()] for t in s.turns]]
        for s in storage.list_sessions()
    ]))
"""


def test_a_fresh_child_process_reads_back_exactly_what_was_written(
    open_store: Any, path: Path, clock: ManualClock
) -> None:
    storage = open_store()
    fill(storage, clock, 4)
    expected = [
        [
            s.id,
            s.created_at.isoformat(),
            s.last_accessed_at.isoformat(),
            s.codex_conversation_id,
            [[t.prompt, t.response, t.timestamp.isoformat()] for t in s.turns],
        ]
        for s in storage.list_sessions()
    ]
    storage.close()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), spec.format_timestamp(clock.now)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert json.loads(done.stdout.decode("utf-8")) == expected


# -- wire compatibility with codex-mcp-server, in real Node.js -----------------------------------


def test_a_file_written_by_upstream_loads_completely(
    upstream_file: tuple[Path, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    path, facts = upstream_file
    document = json.loads(path.read_bytes())
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with FileSessionStorage(path) as storage:
        sessions = storage.list_sessions()
    assert [s.id for s in sessions] == facts["ids"]
    assert [len(s.turns) for s in sessions] == facts["turns"]
    for session, record in zip(sessions, document["sessions"], strict=True):
        assert session.codex_conversation_id == record.get("codexConversationId")
        assert [(t.prompt, t.response) for t in session.turns] == [
            (t["prompt"], t["response"]) for t in record["turns"]
        ]
        assert spec.format_timestamp(session.last_accessed_at) == record["lastAccessedAt"]
    texts = {t.prompt for s in sessions for t in s.turns}
    assert {"lone surrogates \ud800 and \udfff", "control \x00\x01\x1f\x7f chars"} <= texts
    assert "unicode: héllo wörld — 你好 — 🚀🎉" in texts and "x" * 10000 in texts
    assert backups(path) == [] and caplog.records == []


def test_node_reads_what_the_reference_wrote(
    open_store: Any, path: Path, clock: ManualClock
) -> None:
    storage = open_store()
    fill(storage, clock, 4)
    storage.close()
    written = json.loads(path.read_bytes())
    read = run_node("reference_reader.mjs", str(path))
    assert read["badTimestamps"] == []
    assert read["version"] == 1
    assert read["sessions"] == written["sessions"]  # texts, ids and timestamps exactly
    texts = {t["prompt"] for s in read["sessions"] for t in s["turns"]}
    assert set(NASTY_TEXTS) <= texts


FORGETFUL_CHILD = """
import sys
from sessionspec.reference import FileSessionStorage
storage = FileSessionStorage(sys.argv[1])
storage.ensure_session("forgotten")
storage.set_codex_conversation_id("forgotten", "saved at exit")
# no close(): the process just ends
"""


def test_a_process_that_forgets_close_still_saves_at_exit(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORGETFUL_CHILD, str(path)], capture_output=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == b""
    with FileSessionStorage(path) as storage:
        assert storage.get_codex_conversation_id("forgotten") == "saved at exit"


FAILING_AT_EXIT_CHILD = """
import os, sys
from sessionspec.reference import FileSessionStorage
storage = FileSessionStorage(sys.argv[1])
storage.ensure_session("first")
storage.flush()
os.rename(os.path.dirname(sys.argv[1]), sys.argv[2])
open(os.path.dirname(sys.argv[1]), "w").close()  # the parent is now a file: ENOTDIR
storage.ensure_session("unsaved")
try:
    storage.close()
except OSError:
    print("close raised")
# the process ends with the store still open: the exit hook tries once more
"""


def test_a_close_that_fails_at_exit_is_logged_without_a_traceback(path: Path) -> None:
    path.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", FAILING_AT_EXIT_CHILD, str(path), str(path.parent) + ".moved"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "close raised\n"
    assert "Traceback" not in done.stderr
    assert f"could not save {path} at exit" in done.stderr


TRACED_CHILD = """
import sys
from sessionspec.reference import FileSessionStorage
with FileSessionStorage(sys.argv[1]) as storage:
    storage.ensure_session("traced")
"""


def test_B19_a_save_is_temp_write_fsync_rename_fsync_dir_in_that_order(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is needed to watch the system calls of a real save")
    path = tmp_path / "store" / "sessions.json"
    trace = tmp_path / "trace"
    calls = "openat,open,fchmod,write,writev,fsync,rename,renameat,renameat2,mkdir,chmod"
    subprocess.run(
        [strace, "-f", "-qq", "-e", f"trace={calls}", "-o", str(trace),
         sys.executable, "-c", TRACED_CHILD, str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    events = []
    temp_fd = dir_fd = None
    for line in trace.read_text().splitlines():
        call = line.split(maxsplit=1)[1] if " " in line else line
        if call.startswith("openat(") and ".tmp" in call and str(path.parent) in call:
            assert "O_CREAT|O_EXCL" in call and "O_NOFOLLOW" in call and "0600" in call
            temp_fd = call.rsplit("= ", 1)[1]
            events.append("create temp")
        elif temp_fd and call.startswith(f"fchmod({temp_fd}, 0600)"):
            events.append("fchmod 0600")
        elif (
            temp_fd
            and call.startswith((f"write({temp_fd},", f"writev({temp_fd},"))
            and events[-1] != "write"
        ):  # a save writes its pieces with writev(2)
            events.append("write")
        elif temp_fd and call.startswith(f"fsync({temp_fd})") and events[-1] == "write":
            events.append("fsync temp")
        elif call.startswith("rename") and f'"{path}"' in call:
            events.append("rename")
        elif (
            events
            and events[-1] == "rename"
            and call.startswith(f'openat(AT_FDCWD, "{path.parent}"')
        ):
            dir_fd = call.rsplit("= ", 1)[1]
            events.append("open dir")
        elif dir_fd and call.startswith(f"fsync({dir_fd})") and events[-1] == "open dir":
            events.append("fsync dir")
    save = ["create temp", "fchmod 0600", "write", "fsync temp", "rename", "open dir", "fsync dir"]
    assert events == save


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for something the writer thread does; a bound on the wait, not on its speed."""
    for _ in range(3000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the writer thread never got there")


def test_B22_a_background_failure_is_logged_once_and_not_retried_in_a_loop(
    open_store: Any, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER)
    storage = open_store()
    sid = storage.create_session()
    storage.flush()
    moved = break_directory(path.parent)
    storage.add_turn(sid, turn("no flush: the writer thread fails on its own"))
    wait_until(lambda: len(errors(caplog)) == 1)
    (record,) = errors(caplog)
    assert str(path) in record.getMessage() and record.threadName.startswith("sessionspec")
    for i in range(20):
        storage.add_turn(sid, turn(f"more {i}"))
    with pytest.raises(NotADirectoryError):
        storage.flush()
    assert len(errors(caplog)) == 1
    assert storage._failures <= 22  # one attempt per wake-up at most: no retry loop
    repair_directory(path.parent, moved)
    storage.flush()
    expected = storage.get_session(sid)
    assert expected is not None and len(expected.turns) == 21
    assert open_store().get_session(sid) == expected


def test_two_instances_on_one_file_never_corrupt_it_and_both_saves_are_kept(
    open_store: Any, path: Path
) -> None:
    first, second = open_store(), open_store()
    for i in range(30):
        writer = (first, second)[i % 2]
        writer.ensure_session(f"from-{i % 2}")
        writer.add_turn(f"from-{i % 2}", turn(f"turn {i}"))
        writer.flush()
        json.loads(path.read_bytes())  # complete after every save
    assert list(temp_files(path)) == []
    # Each save merges what the other saved (§8): both sessions, every turn, in order.
    stored = open_store().list_sessions()
    assert [s.id for s in stored] == ["from-1", "from-0"]
    assert [t.prompt for t in stored[1].turns] == [f"turn {i}" for i in range(0, 30, 2)]
    assert [t.prompt for t in stored[0].turns] == [f"turn {i}" for i in range(1, 30, 2)]
