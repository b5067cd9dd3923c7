"""Benchmark of the reference FileSessionStorage (not a test; prints figures).

    .venv/bin/python benchmarks/bench_reference.py [--dir DIR] [--calls N] [--repeat N]

1. Median ``add_turn`` latency on a small store and on a store of 100 sessions x 100 turns:
   the caller's cost must not grow with the store, because saving happens on the writer
   thread. "idle" times each call with the writer idle (flush between calls, untimed);
   "burst" times calls back to back while the writer saves concurrently (GIL contention
   included).
2. ``flush()`` time after one mutation, for files of about 1 MB and 10 MB, next to the floor:
   writing the same bytes to a temp file, fsync, rename and directory fsync with plain ``os``
   calls (no serialisation).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sessionspec import spec
from sessionspec.reference import FileSessionStorage, InMemorySessionStorage
from sessionspec.reference.sessionfile import encode
from sessionspec.spec import ConversationTurn

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def filled_store(
    storage: spec.SessionStorage, sessions: int, turns: int, text_size: int
) -> spec.SessionStorage:
    text = "x" * text_size
    for _ in range(sessions):
        sid = storage.create_session()
        storage.update_session(sid, turns=[ConversationTurn(text, text, NOW) for _ in range(turns)])
    storage.flush()
    return storage


def add_turn_latencies(
    storage: spec.SessionStorage, calls: int, *, idle: bool
) -> tuple[list[float], list[float]]:
    """Microseconds per add_turn, and per get_session timed just before it.

    idle: flush (untimed) before each call, so the writer is idle and the caller comes back
    to cold caches, as a server does between requests; the get_session before it shows what
    any first call then costs. Otherwise calls run back to back while the writer saves.
    Sessions are reset (untimed) every 50 turns each, so a session's own history, which
    add_turn copies (turns are an immutable tuple), stays the same for both stores.
    """
    ids = [s.id for s in storage.list_sessions()]
    initial = {s.id: s.turns for s in storage.list_sessions()}
    turn = ConversationTurn("prompt " * 10, "response " * 10, NOW)
    adds, gets = [], []
    for i in range(calls):
        if i and i % (50 * len(ids)) == 0:
            for sid, turns in initial.items():
                storage.update_session(sid, turns=turns)
        sid = ids[i % len(ids)]
        if idle:
            storage.flush()
            start = time.perf_counter_ns()
            storage.get_session(sid)
            gets.append((time.perf_counter_ns() - start) / 1000)
        start = time.perf_counter_ns()
        storage.add_turn(sid, turn)
        adds.append((time.perf_counter_ns() - start) / 1000)
    storage.flush()
    return adds, gets


def show(samples: list[float]) -> str:
    return f"{statistics.median(samples):7.1f} ({statistics.quantiles(samples, n=10)[-1]:6.1f})"


def median_of(repeat: int, action: Callable[[], None]) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def plain_os_save(path: Path, data: bytes) -> None:
    """The floor: what any atomic durable save of these bytes costs."""
    temp = path.with_name(path.name + ".floor.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="where to put the files (default: a temp directory)")
    parser.add_argument("--calls", type=int, default=5000, help="add_turn calls per store")
    parser.add_argument("--idle-calls", type=int, default=200, help="same, idle writer")
    parser.add_argument("--repeat", type=int, default=7, help="flush timings per size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        root = Path(work)
        print(f"files in {root} ({os.uname().sysname}, {os.cpu_count()} CPUs)")
        print("\nadd_turn latency in microseconds: median (p90)")
        head = ("in-memory", "file, burst", "file, idle", "(get before)")
        print(f"{'store':<32}" + "".join(f"{h:>16}" for h in head))
        stores = {
            "small: 1 session x 0 turns": (1, 0, 0),
            "large: 100 sessions x 100 turns": (100, 100, 100),
        }
        for label, (sessions, turns, size) in stores.items():
            row = []
            for backend, idle, calls in (
                ("memory", False, args.calls),
                ("file", False, args.calls),
                ("file", True, args.idle_calls),
            ):
                path = root / f"latency-{sessions}-{backend}-{idle}" / "sessions.json"
                storage = (
                    FileSessionStorage(path, clock=clock)
                    if backend == "file"
                    else InMemorySessionStorage(clock=clock)
                )
                with filled_store(storage, sessions, turns, size):
                    if backend == "file":
                        size_kb = path.stat().st_size / 1000
                    adds, gets = add_turn_latencies(storage, calls, idle=idle)
                row.append(show(adds))
            row.append(show(gets))
            print(f"{label:<32}" + "".join(f"{r:>16}" for r in row) + f"  file {size_kb:,.1f} kB")

        print("\nflush() after one add_turn vs plain os write+fsync+rename, median ms")
        print(f"{'file':<12}{'flush()':>10}{'full encode':>14}{'os floor':>10}{'ratio':>8}")
        for target_mb, turns, text_size in ((1, 50, 38), (10, 100, 440)):
            path = root / f"flush-{target_mb}" / "sessions.json"
            with FileSessionStorage(path, clock=clock) as storage:
                filled_store(storage, 100, turns, text_size)
                sid = storage.list_sessions()[0].id
                turn = ConversationTurn("p", "r", NOW)

                def mutate_and_flush(
                    s: FileSessionStorage = storage,
                    i: str = sid,
                    t: ConversationTurn = turn,
                ) -> None:
                    s.add_turn(i, t)
                    s.flush()

                flush_ms = median_of(args.repeat, mutate_and_flush)
                sessions = storage.list_sessions()
                encode_ms = median_of(args.repeat, lambda ss=sessions: bool(encode(ss)) and None)
                data = path.read_bytes()
                floor_ms = median_of(args.repeat, lambda d=data, p=path: plain_os_save(p, d))
            mb = len(data) / 1e6
            print(
                f"{mb:>6.2f} MB  {flush_ms:>10.1f}{encode_ms:>14.1f}{floor_ms:>10.1f}"
                f"{flush_ms / floor_ms:>8.1f}x"
            )


if __name__ == "__main__":
    main()
