"""Targeted checks of B16's exact rule (SPEC.md §4.6): which entries are temp files, which of
them a backend may remove, and the clock it judges their age by."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.fsutil import document, write_bytes
from sessionspec.conformance.oracle import STALE_TEMP_AGE
from sessionspec.conformance.registry import check

_OLD = 10 * 3600  # seconds: far older than the hour, so only the kind of entry decides


def _age(path: Path, seconds_ago: float, now: float) -> None:
    os.utime(path, (now - seconds_ago, now - seconds_ago), follow_symlinks=False)


@check("B16")
def only_own_regular_files_are_temp_debris(ctx: CheckContext) -> None:
    """Stale-looking symlinks, directories, FIFOs, <name>..tmp and other users' files stay."""
    now = ctx.clock().timestamp()
    directory = ctx.path.parent
    write_bytes(ctx.path, document([]), 0o600)
    victim = directory / "victim.txt"
    write_bytes(victim, b"not a temp file", 0o644)
    stale = directory / "sessions.json.debris.tmp"
    write_bytes(stale, b"partial", 0o600)
    kept: dict[Path, str] = {}
    empty_middle = directory / "sessions.json..tmp"
    write_bytes(empty_middle, b"partial", 0o600)
    kept[empty_middle] = "a name with an empty middle part"
    live_link = directory / "sessions.json.link.tmp"
    live_link.symlink_to(victim)
    kept[live_link] = "a symlink to another file"
    dangling = directory / "sessions.json.dangling.tmp"
    dangling.symlink_to(directory / "nowhere")
    kept[dangling] = "a dangling symlink"
    folder = directory / "sessions.json.dir.tmp"
    folder.mkdir()
    kept[folder] = "a directory"
    fifo = directory / "sessions.json.fifo.tmp"
    os.mkfifo(fifo, 0o600)
    kept[fifo] = "a FIFO"
    if os.geteuid() == 0:  # only root can give a file to another user
        foreign = directory / "sessions.json.foreign.tmp"
        write_bytes(foreign, b"partial", 0o600)
        os.chown(foreign, 12345, 12345)
        kept[foreign] = "another user's file"
    else:
        ctx.notes.append("not root: the other user's file case was not set up")
    for path in [stale, victim, *kept]:
        _age(path, _OLD, now)
    before = {path: os.lstat(path) for path in [victim, *kept]}
    storage = ctx.open()
    storage.flush()
    ctx.expect(not stale.exists(), "a stale regular temp file of this user must be removed")
    for path, what in kept.items():
        ctx.expect(os.path.lexists(path), f"{what} named like a stale temp must not be removed")
    for path, info in before.items():
        if os.path.lexists(path):
            after = os.lstat(path)
            ctx.expect(
                (after.st_ino, after.st_mode, after.st_mtime_ns)
                == (info.st_ino, info.st_mode, info.st_mtime_ns),
                f"{path.name} must not be touched",
            )
    ctx.expect(victim.read_bytes() == b"not a temp file", "a symlink's target must be untouched")


@check("B16")
def age_is_judged_by_now_truncated_to_ms(ctx: CheckContext) -> None:
    """Stale means mtime strictly before (clock truncated to ms) - 1 h, at full precision."""
    ctx.clock.set(datetime(2031, 3, 14, 15, 0, 0, 123456, tzinfo=UTC))
    cutoff = datetime(2031, 3, 14, 15, 0, 0, 123000, tzinfo=UTC) - STALE_TEMP_AGE
    cutoff_ns = int(cutoff.timestamp()) * 10**9 + cutoff.microsecond * 1000
    write_bytes(ctx.path, document([]), 0o600)
    cases = {
        # name: (mtime in ns, must be removed)
        "at-cutoff": (cutoff_ns, False),
        "one-us-before": (cutoff_ns - 1000, True),
        # Later than the truncated cutoff, earlier than an untruncated one.
        "sub-ms-after": (cutoff_ns + 400_000, False),
        "one-ms-after": (cutoff_ns + 1_000_000, False),
    }
    paths = {}
    for name, (ns, _) in cases.items():
        paths[name] = ctx.path.with_name(f"sessions.json.{name}.tmp")
        write_bytes(paths[name], b"partial", 0o600)
        os.utime(paths[name], ns=(ns, ns))
        if os.stat(paths[name]).st_mtime_ns != ns:
            ctx.notes.append("the file system rounds mtimes: sub-millisecond cases not judged")
            return
    storage = ctx.open()
    storage.flush()
    for name, (_, removed) in cases.items():
        ctx.expect(
            paths[name].exists() != removed,
            f"temp {name}: stale only when strictly before now (ms) - 1 h",
            expected="removed" if removed else "kept",
            actual="kept" if paths[name].exists() else "removed",
        )
