"""B32: a path that is not a regular file, and files the path merely links to.

A path is user input. What sits there may be a FIFO (an open for reading waits for a writer
forever), a socket, a device (``/dev/null`` reads empty, ``/dev/zero`` never ends), or a link
to someone else's file. The checks here put each at the path and hold the backend to B32:
an OSError, promptly, nothing read or moved; links are never written through, and a file the
path shares its inode with keeps its content, mode and mtime. A directory at the path is B12's
check. ``/dev/null`` stands in for devices: it shows a backend that reads a device at all,
without the kit's own memory at stake (``/dev/zero`` is in the reference's tests and in
benchmarks/reliability.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.fsutil import backups, document, record, snapshot_tree, write_bytes
from sessionspec.conformance.registry import check
from sessionspec.spec import ConversationTurn

#: How long the kit waits for a constructor facing a FIFO. The rule says a second; the kit
#: allows more, so that a loaded machine does not fail a backend that does not block at all.
BLOCKED_AFTER_SECONDS = 5.0
VICTIM_MTIME_NS = 1_600_000_000_123_456_789


def _open_in_thread(ctx: CheckContext, path: Path) -> tuple[bool, object]:
    """Run the constructor on a thread: (returned, the instance or the exception)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(ctx.open(path))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="B32-constructor", daemon=True)
    thread.start()
    thread.join(BLOCKED_AFTER_SECONDS)
    if thread.is_alive():
        _unblock(path)
        thread.join(BLOCKED_AFTER_SECONDS)
        return False, outcome[0] if outcome else None
    return True, outcome[0]


def _unblock(path: Path) -> None:
    """Give a constructor blocked on the FIFO its other end, then close it (EOF)."""
    for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
        with contextlib.suppress(OSError):
            os.close(os.open(path, flags))


def _must_refuse(ctx: CheckContext, path: Path, what: str) -> None:
    """The constructor raises OSError, promptly, and nothing under the directory changes."""
    before = snapshot_tree(ctx.dir)
    returned, result = _open_in_thread(ctx, path)
    ctx.expect(
        returned,
        f"{what}: the constructor blocked (no return within {BLOCKED_AFTER_SECONDS:g} s); it"
        " must open without waiting and raise OSError",
    )
    if not isinstance(result, OSError):
        shown = repr(result) if isinstance(result, BaseException) else "no exception"
        ctx.expect(False, f"{what}: the constructor must raise OSError", actual=shown)
    ctx.expect_equal(snapshot_tree(ctx.dir), before, f"{what}: nothing may be moved or created")


@check("B32")
def fifo_at_the_path(ctx: CheckContext) -> None:
    """A FIFO at the path: OSError at once (an open that waits for a writer hangs forever)."""
    ctx.path.parent.mkdir(parents=True)
    os.mkfifo(ctx.path, 0o600)
    _must_refuse(ctx, ctx.path, "a FIFO at the path")


@check("B32")
def socket_at_the_path(ctx: CheckContext) -> None:
    """A Unix socket at the path: OSError, the socket left in place."""
    ctx.path.parent.mkdir(parents=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(ctx.path))
        _must_refuse(ctx, ctx.path, "a socket at the path")
    finally:
        server.close()


@check("B32")
def device_behind_a_symlink(ctx: CheckContext) -> None:
    """A symlink to a character device (/dev/null): OSError, the link left in place."""
    ctx.path.parent.mkdir(parents=True)
    os.symlink("/dev/null", ctx.path)
    _must_refuse(ctx, ctx.path, "a symlink to /dev/null at the path")


def _victim(ctx: CheckContext, content: bytes) -> tuple[Path, tuple[bytes, int, int]]:
    """Someone else's file, 0o644 with an old mtime, and what must stay of it."""
    victim = ctx.dir / "elsewhere" / "victim.json"
    write_bytes(victim, content, 0o644)
    os.utime(victim, ns=(VICTIM_MTIME_NS, VICTIM_MTIME_NS))
    return victim, _state(victim)


def _state(path: Path) -> tuple[bytes, int, int]:
    info = path.stat()
    return path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_mtime_ns


def _expect_untouched(ctx: CheckContext, victim: Path, was: tuple[bytes, int, int]) -> None:
    now = _state(victim)
    for index, what in enumerate(("content", "mode", "mtime")):
        ctx.expect_equal(now[index], was[index], f"the {what} of the file the path links to")


def _one_session(ctx: CheckContext) -> tuple[bytes, str]:
    session_id = str(uuid.uuid4())
    return document([record(session_id, ctx.clock())]), session_id


def _mutate_and_flush(ctx: CheckContext, storage: Any) -> str:
    session_id: str = storage.create_session()
    storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
    storage.flush()
    return session_id


def _expect_regular_file_with(ctx: CheckContext, session_ids: list[str]) -> None:
    info = ctx.path.lstat()
    ctx.expect(
        stat.S_ISREG(info.st_mode),
        "after a save the path must be a regular file (the save replaces a link, never writes"
        " through it)",
        actual=stat.filemode(info.st_mode),
    )
    # What the file holds, and that a new instance reads it back, are B10's and B09's.
    ctx.require_valid_file()
    listed = ctx.open().list_sessions()
    ctx.expect_equal(
        sorted(s.id for s in listed),
        sorted(session_ids),
        "the sessions a new instance reads from the path",
    )


@check("B32")
def dangling_symlink_is_a_missing_file(ctx: CheckContext) -> None:
    """A symlink to nothing is a missing file (B11); the save replaces the link, and the
    place it pointed to stays empty."""
    ctx.path.parent.mkdir(parents=True)
    nowhere = ctx.dir / "nowhere" / "sessions.json"
    os.symlink(nowhere, ctx.path)
    storage = ctx.open()
    ctx.expect_equal(list(storage.list_sessions()), [], "the sessions of a dangling symlink")
    session_id = _mutate_and_flush(ctx, storage)
    ctx.expect(
        not os.path.lexists(nowhere),
        "the save must not create the symlink's target",
        actual=nowhere,
    )
    _expect_regular_file_with(ctx, [session_id])


@check("B32")
def symlink_to_a_file_is_read_not_written_through(ctx: CheckContext) -> None:
    """A symlink to a valid file: its sessions load; a save replaces the link and leaves that
    file's content, mode and mtime as they were."""
    content, loaded_id = _one_session(ctx)
    victim, was = _victim(ctx, content)
    ctx.path.parent.mkdir(parents=True)
    os.symlink(victim, ctx.path)
    storage = ctx.open()
    ctx.expect_equal(
        [s.id for s in storage.list_sessions()], [loaded_id], "the sessions behind the symlink"
    )
    session_id = _mutate_and_flush(ctx, storage)
    _expect_untouched(ctx, victim, was)
    _expect_regular_file_with(ctx, [loaded_id, session_id])


@check("B32")
def hard_link_to_a_file_is_not_written_through(ctx: CheckContext) -> None:
    """The path is a second name of a valid file: a save replaces the path's name only."""
    content, loaded_id = _one_session(ctx)
    victim, was = _victim(ctx, content)
    ctx.path.parent.mkdir(parents=True)
    os.link(victim, ctx.path)
    storage = ctx.open()
    session_id = _mutate_and_flush(ctx, storage)
    _expect_untouched(ctx, victim, was)
    _expect_regular_file_with(ctx, [loaded_id, session_id])


@check("B32")
def moving_aside_a_hard_link_keeps_the_other_file(ctx: CheckContext) -> None:
    """The path is a second name of a corrupt 0o644 file: moving it aside keeps the bytes in
    a backup, and the other file keeps its content, mode and mtime (a backup made by linking
    and narrowing the mode would change that file). The backup's own mode is B20's."""
    content = b'{"version": 1, "sessions": [ truncated'
    victim, was = _victim(ctx, content)
    ctx.path.parent.mkdir(parents=True)
    os.link(victim, ctx.path)
    storage = ctx.open()
    ctx.expect_equal(list(storage.list_sessions()), [], "the sessions of a corrupt file")
    _expect_untouched(ctx, victim, was)
    kept = [p for p in backups(ctx.path) if p.read_bytes() == content]
    ctx.expect(kept, "the corrupt bytes must be kept in a backup", actual=backups(ctx.path))


@check("B32")
def moving_aside_through_a_symlink_keeps_the_target(ctx: CheckContext) -> None:
    """A symlink to a corrupt file: the store starts empty and the file it points to keeps
    its content, mode and mtime (nothing is written, renamed or chmodded through the link)."""
    content = b"\x00\x01 not json"
    victim, was = _victim(ctx, content)
    ctx.path.parent.mkdir(parents=True)
    os.symlink(victim, ctx.path)
    storage = ctx.open()
    ctx.expect_equal(list(storage.list_sessions()), [], "the sessions of a corrupt file")
    _expect_untouched(ctx, victim, was)
    session_id = _mutate_and_flush(ctx, storage)
    _expect_untouched(ctx, victim, was)
    _expect_regular_file_with(ctx, [session_id])
