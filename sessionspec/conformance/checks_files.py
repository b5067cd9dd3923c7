"""Targeted checks on real files for what the state machine cannot see (B10-B16, B20)."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.context import CheckContext, capture_logs, umask
from sessionspec.conformance.fsutil import (
    BOM,
    backup_path,
    backups,
    document,
    mode,
    record,
    snapshot_tree,
    turn,
    warning_names,
    write_bytes,
)
from sessionspec.conformance.oracle import STALE_TEMP_AGE
from sessionspec.conformance.registry import check
from sessionspec.spec import ConversationTurn, writer_validator

NASTY_TEXT = ["", "\x00", "\ud800", "a\udfffb", "\u2028\u2029", '"\\/', "\U0001f600", "\ufeff"]


def _validate_written(ctx: CheckContext, path: Path) -> None:
    raw = path.read_bytes()
    ctx.expect(not raw.startswith(BOM), "the file starts with a byte-order mark", actual=raw[:8])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        ctx.expect(False, f"the file is not valid UTF-8: {exc}", actual=raw[:200])
        return
    try:
        data = json.loads(text)
    except ValueError as exc:
        ctx.expect(False, f"the file is not JSON: {exc}", actual=text[:200])
        return
    errors = list(writer_validator().iter_errors(data))
    ctx.expect(
        not errors,
        "the file does not validate against sessionspec/spec/sessions-writer.schema.json",
        expected="writer-valid file",
        actual=[f"{list(e.path)}: {e.message[:120]}" for e in errors[:3]],
    )
    ids = [s["id"] for s in data["sessions"]]
    ctx.expect(len(ids) == len(set(ids)), "two sessions share an id", actual=ids)


# -- B10 ---------------------------------------------------------------------------------
@check("B10")
def writer_valid_with_hostile_text(ctx: CheckContext) -> None:
    """Text with lone surrogates, NUL, separators and quotes still gives a writer-valid file."""
    storage = ctx.open()
    from datetime import timezone

    offset = timezone(timedelta(hours=-7, minutes=-30))
    ids = []
    for index, text in enumerate(NASTY_TEXT):
        session_id = storage.create_session()
        ids.append(session_id)
        moment = ctx.clock().astimezone(offset) + timedelta(microseconds=index * 1337)
        storage.add_turn(session_id, ConversationTurn(text, text[::-1], moment))
        storage.set_codex_conversation_id(session_id, text)
    storage.ensure_session("B10-" + "x" * 250)
    storage.update_session(ids[0], codex_conversation_id=None)
    storage.flush()
    _validate_written(ctx, ctx.path)


@check("B10")
def writer_valid_after_deletes_and_expiry(ctx: CheckContext) -> None:
    """The file stays writer-valid and without duplicates through deletes, resets and expiry."""
    storage = ctx.open()
    first = [storage.create_session() for _ in range(5)]
    storage.delete_session(first[0])
    storage.reset_session(first[1])
    ctx.clock.advance(timedelta(hours=24, milliseconds=1))
    storage.ensure_session(first[2])  # expired: a fresh session with the same id
    storage.create_session()
    storage.flush()
    _validate_written(ctx, ctx.path)


# -- B11 ---------------------------------------------------------------------------------
@check("B11")
def missing_file_is_empty_and_untouched(ctx: CheckContext) -> None:
    """Opening, reading, flushing and closing a missing store creates nothing at all."""
    before = snapshot_tree(ctx.dir)
    storage = ctx.open()
    ctx.expect_equal(storage.list_sessions(), [], "a missing file must give an empty store")
    ctx.expect(storage.get_session("absent") is None, "get_session on an empty store")
    storage.get_codex_conversation_id("absent")
    storage.add_turn("absent", ConversationTurn("p", "r", ctx.clock()))
    storage.delete_session("absent")
    storage.flush()
    storage.close()
    after = snapshot_tree(ctx.dir)
    ctx.expect_equal(
        sorted(after), sorted(before), "nothing may be created before the first mutation"
    )


def _first_save_dirs(ctx: CheckContext, mask: int) -> None:
    path = ctx.dir / "a" / "b" / "c" / "sessions.json"
    with umask(mask):
        storage = ctx.open(path)
        session_id = storage.create_session()
        storage.flush()
    ctx.expect(path.is_file(), "the first save must create the file and its directories")
    for directory in (ctx.dir / "a", ctx.dir / "a" / "b", ctx.dir / "a" / "b" / "c"):
        ctx.expect_equal(
            oct(mode(directory)), oct(0o700), f"created directory {directory.name!r} mode"
        )
    ctx.require_valid_file(path)
    reopened = ctx.open(path)
    ctx.expect(
        reopened.get_session(session_id) is not None,
        "the first save must hold the session",
    )


@check("B11", name="first_save_creates_dirs_0700_umask_077")
def first_save_dirs_077(ctx: CheckContext) -> None:
    """Missing parents are created 0o700 under umask 0o077."""
    _first_save_dirs(ctx, 0o077)


@check("B11", name="first_save_creates_dirs_0700_umask_000")
def first_save_dirs_000(ctx: CheckContext) -> None:
    """Missing parents are created 0o700 under umask 0o000."""
    _first_save_dirs(ctx, 0o000)


@check("B11", name="first_save_creates_dirs_0700_umask_222")
def first_save_dirs_222(ctx: CheckContext) -> None:
    """Missing parents are created 0o700 under umask 0o222 (which would drop write bits)."""
    _first_save_dirs(ctx, 0o222)


# -- B12 ---------------------------------------------------------------------------------
def _must_raise_and_touch_nothing(ctx: CheckContext, path: Path, what: str) -> None:
    before = snapshot_tree(ctx.dir)
    try:
        storage = ctx.open(path)
    except OSError:
        pass
    except Exception as exc:
        ctx.expect(False, f"{what}: the constructor must raise OSError", actual=repr(exc))
    else:
        storage.flush()
        ctx.expect(False, f"{what}: the constructor must raise OSError", actual="no exception")
    ctx.expect_equal(snapshot_tree(ctx.dir), before, f"{what}: nothing may be moved or created")


@check("B12")
def path_is_a_directory(ctx: CheckContext) -> None:
    """The sessions path is a directory: OSError, and the tree is unchanged."""
    ctx.path.mkdir(parents=True)
    (ctx.path / "inside.txt").write_bytes(b"keep me")
    _must_raise_and_touch_nothing(ctx, ctx.path, "the path is a directory")


@check("B12")
def parent_is_a_file(ctx: CheckContext) -> None:
    """A path component is a regular file (ENOTDIR): OSError, and the tree is unchanged."""
    write_bytes(ctx.dir / "store", b"not a directory")
    _must_raise_and_touch_nothing(ctx, ctx.dir / "store" / "sessions.json", "ENOTDIR")


@check("B12")
def unreadable_file(ctx: CheckContext) -> None:
    """Permission denied: OSError, nothing touched (only observable when not root)."""
    write_bytes(ctx.path, document([]), 0o000)
    if os.geteuid() == 0:
        # Root reads anything; exercise the directory case instead so the check still bites.
        os.chmod(ctx.path, 0o600)
        ctx.path.unlink()
        ctx.path.mkdir()
    _must_raise_and_touch_nothing(ctx, ctx.path, "an unreadable file")


# -- B13 / B14 ---------------------------------------------------------------------------
def _move_aside(ctx: CheckContext, content: bytes, taken: int) -> None:
    """Write ``content``, pre-create ``taken`` backup names, open, and check the move aside."""
    write_bytes(ctx.path, content, 0o644)
    sentinels = {}
    for counter in range(taken):
        name = backup_path(ctx.path, ctx.clock(), counter)
        sentinels[name] = f"someone else's backup {counter}".encode()
        write_bytes(name, sentinels[name], 0o600)
    expected = backup_path(ctx.path, ctx.clock(), taken)
    with capture_logs() as logs:
        storage = ctx.open()
        listed = storage.list_sessions()
    ctx.expect(not ctx.path.exists(), "the unreadable content must leave the path")
    ctx.expect(
        any(p.read_bytes() == content for p in backups(ctx.path)),
        "the content must be kept, byte-identical, in a backup",
        actual=[p.name for p in backups(ctx.path)],
    )
    ctx.expect_equal(listed, [], "the store must start empty")

    def how(condition: object, message: str, **shown: object) -> None:
        # How a file is moved aside (name, counter, warning) is B13's rule; B14 moves aside
        # "as in B13": for B14 it is a precondition, so one naming bug is one FAIL.
        if ctx.behaviour_id == "B13":
            ctx.expect(condition, message, **shown)
        else:
            ctx.require("B13", condition, message)

    how(
        expected.is_file() and expected.read_bytes() == content,
        "the backup must be named <name>.<epoch-ms>.bak (clock's now), with the smallest free"
        " counter when taken, byte-identical",
        expected=expected.name,
        actual=[p.name for p in backups(ctx.path)],
    )
    for name, sentinel in sentinels.items():
        how(name.read_bytes() == sentinel, f"an existing backup was overwritten: {name}")
    warnings = logs.messages(logging.WARNING)
    how(
        warning_names(warnings, expected.name),
        "a WARNING must name the backup path",
        expected=expected.name,
        actual=warnings,
    )
    # The file is set aside for good: saving writes a new file and leaves the backup alone.
    storage.create_session()
    storage.flush()
    ctx.expect(
        not expected.is_file() or expected.read_bytes() == content,
        "the backup changed after a save",
    )
    ctx.expect(ctx.path.is_file(), "the next save must write a new file at the path")


_CORRUPT: dict[str, tuple[bytes, int]] = {
    "not_json": (b"{this is not json", 0),
    "empty_file": (b"", 1),
    "bom": (BOM + document([]), 1),
    "not_utf8": (b'{"version": 1, "sessions": [], "x": "\xff\xfe"}', 1),
    "trailing_data": (document([]) + b"\n{}", 1),
    "top_level_array": (b"[]", 2),
    "nan_constant": (b'{"version": 1, "sessions": [], "x": NaN}', 1),
    "sessions_missing": (b'{"version": 1}', 1),
    "sessions_not_array": (b'{"version": 1, "sessions": {}}', 1),
}

for _name, (_content, _taken) in _CORRUPT.items():

    def _corrupt_check(ctx: CheckContext, content: bytes = _content, taken: int = _taken) -> None:
        _move_aside(ctx, content, taken)

    _corrupt_check.__doc__ = f"Corrupt file ({_name}) moved aside byte-identical."
    check("B13", name=f"moved_aside_{_name}")(_corrupt_check)


_VERSIONS: dict[str, bytes] = {
    "2": b"2",
    "0": b"0",
    "minus_1": b"-1",
    "1_5": b"1.5",
    "string_1": b'"1"',
    "null": b"null",
    "true": b"true",
    "huge": b"1e400",
    "1_000001": b"1.000001",
    "5000_digits": b"1" + b"0" * 4999,
}

for _name, _raw in _VERSIONS.items():

    def _version_check(ctx: CheckContext, raw: bytes = _raw) -> None:
        _move_aside(ctx, b'{"version": ' + raw + b', "sessions": [], "future": {"x": 1}}', 1)

    _version_check.__doc__ = f"version {_raw.decode()} is set aside, never overwritten."
    check("B14", name=f"version_{_name}_moved_aside")(_version_check)


@check("B14")
def version_absent_moved_aside(ctx: CheckContext) -> None:
    """A file without a version member is set aside."""
    _move_aside(ctx, b'{"sessions": []}', 0)


@check("B14")
def version_1_0_is_version_1(ctx: CheckContext) -> None:
    """``1.0`` is 1 as a double: the file loads and stays in place."""
    now = ctx.clock()
    content = b'{"version": 1.0, "sessions": [' + json.dumps(record("v1", now)).encode() + b"]}"
    write_bytes(ctx.path, content)
    storage = ctx.open()
    ctx.expect_equal([s.id for s in storage.list_sessions()], ["v1"], "version 1.0 must load")
    ctx.expect(ctx.path.is_file() and not backups(ctx.path), "version 1.0 must not be set aside")


@check("B14")
def version_rounding_to_1_is_version_1(ctx: CheckContext) -> None:
    """``1.0000000000000000001`` and ``10e-1`` are 1 as JSON.parse reads them (a double):
    the file loads, stays in place and is not lossy."""
    now = ctx.clock()
    for raw in (b"1.0000000000000000001", b"10e-1"):
        sid = "v" + raw.decode().replace(".", "").replace("-", "")
        content = b'{"version": ' + raw + b', "sessions": [' + json.dumps(record(sid, now)).encode()
        write_bytes(ctx.path, content + b"]}")
        storage = ctx.open()
        ctx.expect_equal([s.id for s in storage.list_sessions()], [sid], f"version {raw!r} loads")
        storage.create_session()
        storage.close()
        ctx.expect(not backups(ctx.path), f"version {raw!r} must be neither set aside nor lossy")


# -- B15 ---------------------------------------------------------------------------------
def _mixed_file(ctx: CheckContext) -> tuple[bytes, list[str], list[str]]:
    """A file with one invalid record of every kind; returns bytes, loaded ids, locations."""
    now = ctx.clock()
    t = [now - timedelta(minutes=m) for m in range(10)]
    good_turns: list[Any] = [
        turn("p0", "r0", t[3]),
        {"prompt": "p1", "response": "r1", "timestamp": "yesterday"},
        turn("p2", "r2", t[2]),
        "not a turn",
        {"prompt": 5, "response": "r", "timestamp": "2031-01-01T00:00:00.000Z"},
    ]
    sessions = [
        record("keep-a", t[1], turns=good_turns, conversation_id="c"),  # 0
        "not an object",  # 1
        record("bad id!", t[1]),  # 2
        record("keep-a", t[0]),  # 3 duplicate: the first one wins
        {**record("bad-created", t[1]), "createdAt": "2031-02-30T00:00:00Z"},  # 4
        {**record("bad-turns", t[1]), "turns": {}},  # 5
        {**record("bad-cid", t[1]), "codexConversationId": 7},  # 6
        {k: v for k, v in record("no-accessed", t[1]).items() if k != "lastAccessedAt"},  # 7
        record("keep-b", t[4]),  # 8
    ]
    locations = [f"sessions[{i}]" for i in (1, 2, 3, 4, 5, 6, 7)]
    locations += ["sessions[0].turns[1]", "sessions[0].turns[3]", "sessions[0].turns[4]"]
    return document(sessions), ["keep-a", "keep-b"], locations


@check("B15")
def invalid_records_skipped_one_by_one(ctx: CheckContext) -> None:
    """Each invalid session or turn is skipped alone, with a WARNING naming its location."""
    content, ids, locations = _mixed_file(ctx)
    write_bytes(ctx.path, content)
    with capture_logs() as logs:
        storage = ctx.open()
    listed = storage.list_sessions()
    ctx.expect_equal([s.id for s in listed], ids, "every valid record must load, in list order")
    ctx.expect_equal(
        [t.prompt for t in listed[0].turns] if listed else None,
        ["p0", "p2"],
        "valid turns of a session must load, invalid ones alone skipped",
    )
    warnings = logs.messages(logging.WARNING)
    missing = [where for where in locations if not warning_names(warnings, where)]
    ctx.expect(
        not missing,
        "every skip must log a WARNING naming its location",
        expected=locations,
        actual=warnings,
    )


@check("B15")
def lossy_load_keeps_original_before_save(ctx: CheckContext) -> None:
    """After a lossy load, the original bytes are in a backup when the file is replaced."""
    content, _, _ = _mixed_file(ctx)
    write_bytes(ctx.path, content)
    storage = ctx.open()
    storage.create_session()
    storage.flush()
    kept = [p for p in backups(ctx.path) if p.read_bytes() == content]
    ctx.expect(
        kept,
        "the original bytes must be kept in <name>.<epoch-ms>[.<n>].bak before the first save",
        actual=[p.name for p in backups(ctx.path)],
    )
    ctx.expect(ctx.path.read_bytes() != content, "the save must have replaced the file")


@check("B15")
def lossy_without_skips_keeps_original(ctx: CheckContext) -> None:
    """Unknown members and sub-millisecond digits make a load lossy too."""
    now = ctx.clock()
    item = record("extra", now)
    item["futureMember"] = {"kept": "somewhere"}
    item["createdAt"] = "2031-03-14T15:00:00.123456Z"
    content = document([item], producer="a newer program")
    write_bytes(ctx.path, content)
    storage = ctx.open()
    ctx.expect_equal([s.id for s in storage.list_sessions()], ["extra"], "the record must load")
    storage.add_turn("extra", ConversationTurn("p", "r", now))
    storage.flush()
    ctx.expect(
        any(p.read_bytes() == content for p in backups(ctx.path)),
        "a lossy load (unknown members, sub-millisecond digits) must keep the original bytes",
        actual=[p.name for p in backups(ctx.path)],
    )


@check("B15")
def backup_holds_the_bytes_read(ctx: CheckContext) -> None:
    """The backup holds exactly the bytes that were read, not what the path holds later."""
    content, _, _ = _mixed_file(ctx)
    write_bytes(ctx.path, content)
    storage = ctx.open()
    later = document([record("someone-else", ctx.clock())])
    ctx.path.write_bytes(later)  # another program rewrites the file before our first save
    storage.create_session()
    storage.flush()
    ctx.expect(
        any(p.read_bytes() == content for p in backups(ctx.path)),
        "the backup must hold the original bytes that were read",
        actual=[p.name for p in backups(ctx.path)],
    )


# -- B16 ---------------------------------------------------------------------------------
@check("B16")
def only_stale_temps_removed(ctx: CheckContext) -> None:
    """Temps older than 1 h (by the clock) go; younger temps and other names stay."""
    now = ctx.clock().timestamp()
    stale_age = STALE_TEMP_AGE.total_seconds()
    directory = ctx.path.parent
    write_bytes(ctx.path, document([]), 0o600)
    stale = [directory / "sessions.json.123.abc.tmp", directory / "sessions.json.x.tmp"]
    young = [directory / "sessions.json.456.def.tmp"]
    others = [
        directory / "sessions.json.tmp.keep",
        directory / "other.json.1.tmp",
        directory / "xsessions.json.1.tmp",
        directory / "sessions.json.bak",
        directory / "sessions.json.1.bak.tmpx",
    ]
    for path in stale + young + others:
        write_bytes(path, b"partial", 0o600)
    for path in stale + others:
        os.utime(path, (now - stale_age - 60, now - stale_age - 60))
    for path in young:
        os.utime(path, (now - stale_age + 60, now - stale_age + 60))
    storage = ctx.open()
    storage.flush()
    for path in stale:
        ctx.expect(not path.exists(), f"stale temp file {path.name} must be removed at open")
    for path in young + others:
        ctx.expect(
            path.exists() and path.read_bytes() == b"partial",
            f"{path.name} must not be touched",
        )
    storage.create_session()
    storage.flush()
    left = sorted(p.name for p in directory.glob("sessions.json.*.tmp"))
    ctx.expect_equal(
        left, [p.name for p in young], "no temp file of this instance may remain after a save"
    )


# -- B20 (file modes) --------------------------------------------------------------------
@check("B20")
def file_0600_under_umask_000(ctx: CheckContext) -> None:
    """The file is 0o600 after every save, even under umask 000 and after a chmod by others."""
    with umask(0):
        storage = ctx.open()
        session_id = storage.create_session()
        storage.flush()
        ctx.expect_equal(oct(mode(ctx.path)), oct(0o600), "file mode after the first save")
        os.chmod(ctx.path, 0o644)
        storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
        storage.flush()
        ctx.expect_equal(oct(mode(ctx.path)), oct(0o600), "file mode after a later save")
        for directory in (ctx.path.parent,):
            ctx.expect_equal(oct(mode(directory)), oct(0o700), "created directory mode")


def _expect_private(ctx: CheckContext, found: list[Path]) -> None:
    for path in found:
        ctx.expect(
            mode(path) & 0o177 == 0,
            f"backup {path.name} is wider than 0o600",
            actual=oct(mode(path)),
        )


@check("B20")
def backups_not_wider_than_0600(ctx: CheckContext) -> None:
    """Backups (move-aside and lossy) are not wider than 0o600, whatever the source's mode."""
    with umask(0):
        write_bytes(ctx.path, b"{corrupt", 0o644)
        storage = ctx.open()
        storage.close()
        lossy = document([{**record("a", ctx.clock()), "unknown": 1}])
        write_bytes(ctx.path, lossy, 0o644)
        ctx.clock.advance(timedelta(seconds=1))
        storage = ctx.open()
        storage.create_session()
        storage.flush()
    found = backups(ctx.path)
    ctx.require("B15", len(found) >= 2, f"expected a move-aside and a lossy backup, found {found}")
    _expect_private(ctx, found)


# -- checks added by the mutation run over the reference (issue 5) -----------------------


@check("B15")
def lossy_backup_named_in_warning_and_never_overwrites(ctx: CheckContext) -> None:
    """The lossy-load backup takes the next free name and a WARNING names it."""
    content = document([{**record("a", ctx.clock()), "unknownMember": 1}])
    write_bytes(ctx.path, content, 0o600)
    taken = backup_path(ctx.path, ctx.clock())
    write_bytes(taken, b"an earlier backup", 0o600)
    with capture_logs() as logs:
        storage = ctx.open()
        storage.create_session()
        storage.flush()
    expected = backup_path(ctx.path, ctx.clock(), 1)
    ctx.expect(taken.read_bytes() == b"an earlier backup", "an existing backup was overwritten")
    ctx.expect(
        expected.is_file() and expected.read_bytes() == content,
        "the lossy backup must take the smallest free <name>.<epoch-ms>.<n>.bak",
        expected=expected.name,
        actual=[p.name for p in backups(ctx.path)],
    )
    warnings = logs.messages(logging.WARNING)
    ctx.expect(
        warning_names(warnings, expected.name),
        "a WARNING must name the backup path",
        expected=expected.name,
        actual=warnings,
    )


@check("B16")
def temp_exactly_one_hour_old_stays(ctx: CheckContext) -> None:
    """A temp file exactly one hour old is not stale yet ("more than one hour")."""
    from datetime import UTC, datetime

    ctx.clock.set(datetime(2031, 3, 14, 15, 0, 0, tzinfo=UTC))  # whole seconds: exact mtimes
    edge_ns = int(ctx.clock().timestamp() - STALE_TEMP_AGE.total_seconds()) * 10**9
    write_bytes(ctx.path, document([]), 0o600)
    edge = ctx.path.with_name("sessions.json.edge.tmp")
    older = ctx.path.with_name("sessions.json.older.tmp")
    for path, ns in ((edge, edge_ns), (older, edge_ns - 10**9)):
        write_bytes(path, b"partial", 0o600)
        os.utime(path, ns=(ns, ns))
    storage = ctx.open()
    storage.flush()
    ctx.expect(edge.exists(), "a temp file exactly one hour old must not be removed")
    ctx.expect(not older.exists(), "a temp file one hour and one second old must be removed")


@check("B20")
def backups_created_0600(ctx: CheckContext) -> None:
    """Every backup is private from the moment it exists, however the backend makes it: under
    umask 000, where a file created with the default mode would be 0o666, no backup file is
    created wider than 0o600 (``os.open`` with its mode, or ``open()``, ``Path.write_bytes``,
    ``shutil.copy``... with their 0o666), and none on disk is wider (``os.stat``) after a lossy
    load's first save and after a move-aside; a moved-aside file without owner bits is
    narrowed too (B20)."""
    from sessionspec.conformance.checks_process import os_spy

    lossy = document([{**record("a", ctx.clock()), "unknown": 1}])
    write_bytes(ctx.path, lossy, 0o600)
    with umask(0), os_spy() as events:
        storage = ctx.open()
        storage.create_session()
        storage.flush()
        storage.close()
        ctx.clock.advance(timedelta(seconds=1))
        write_bytes(ctx.path, b"{corrupt", 0o600)
        ctx.open().close()
    # A hard link (a move-aside by link) creates no new file: it is the file that was at the
    # path, with its mode, and is checked on disk below. Only new files have a creation mode.
    created = [
        e
        for e in events
        if e.kind == "open"
        and "O_CREAT" in e.flags
        and os.path.basename(e.path).startswith(ctx.path.name + ".")
        and e.path.endswith(".bak")
    ]
    for event in created:
        ctx.expect(
            event.mode is not None and event.mode & 0o177 == 0,
            f"backup {os.path.basename(event.path)} created with a mode wider than 0o600"
            " (world-readable under umask 000 until it is narrowed)",
            actual=oct(event.mode) if event.mode is not None else None,
        )
    found = backups(ctx.path)
    ctx.require("B15", len(found) >= 2, f"expected a lossy backup and a move-aside, found {found}")
    _expect_private(ctx, found)
    if os.geteuid() == 0:  # only root can read a file without owner bits
        ctx.clock.advance(timedelta(seconds=1))
        write_bytes(ctx.path, b"{corrupt", 0o066)
        ctx.open().close()
        _expect_private(ctx, backups(ctx.path))


@check("B10")
def writer_valid_when_every_session_is_gone(ctx: CheckContext) -> None:
    """Deleting every session saves a writer-valid empty store."""
    storage = ctx.open()
    session_id = storage.create_session()
    storage.flush()
    storage.delete_session(session_id)
    storage.flush()
    _validate_written(ctx, ctx.path)
