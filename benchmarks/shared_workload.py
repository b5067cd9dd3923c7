"""Many processes on one store: what survives, and how fast (not a test; prints figures).

    .venv/bin/python benchmarks/shared_workload.py [--processes 8] [--repeat 20]
                                                   [--factory module:attr]
    .venv/bin/python benchmarks/shared_workload.py --throughput [--processes 1 4 8]
                                                   [--repeat 3] [--backend file sqlite redis]

Issue 13's workload. N processes start together (a barrier), each on its own instance of the
factory (default: the reference ``FileSessionStorage``) on one path, and each:

- creates 10 sessions and adds 25 turns to each, then deletes 2 of them;
- appends 20 turns to one session they all share (``ensure_session("shared")``);
- interleaves the two (own turn, shared turn, ...), then ``flush()`` and ``close()``.

Then a fresh instance opens the path and the script counts, per repetition: own sessions lost,
turns lost or duplicated in the surviving ones, deleted sessions resurrected, and the shared
session's turns (N x 20 expected, each once, in timestamp order). ``--factory
benchmarks.last_save_wins:LastSaveWinsStorage`` runs the same against the reference with its
merge switched off, the behaviour before the ``shared`` level (SPEC.md §8). Without
``--factory`` it runs both and prints their table; benchmarks/reliability.py puts it into
docs/reliability.md.

``--throughput`` runs the workload through each backend at each number of processes and adds
the operations per second: every process's operations (creates, ensures, turns, deletes,
flush and close not counted) over the time from the barrier to the last ``close()``
returned. Backends: ``file`` the reference, ``sqlite`` examples/backends/sqlite_storage.py,
``redis`` examples/backends/redis_storage.py on the server at ``SESSIONSPEC_REDIS_URL``, or
on a ``redis-server`` the script starts (tests/redis_server.py: 127.0.0.1, a free port, its
own data directory, ``appendfsync always``).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionspec.conformance.loading import load_target
from sessionspec.spec import ConversationTurn

OWN, TURNS, DELETED, SHARED_TURNS = 10, 25, 2, 20
SHARED = "shared"
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "sessionspec.reference:FileSessionStorage"
LAST_SAVE_WINS = "benchmarks.last_save_wins:LastSaveWinsStorage"
BACKENDS = {
    "file": REFERENCE,
    "sqlite": f"{ROOT}/examples/backends/sqlite_storage.py:SqliteSessionStorage",
    "redis": f"{ROOT}/examples/backends/redis_storage.py:RedisSessionStorage",
}
#: A worker's operations: creates, the first ensure, own turns, an ensure and a turn per
#: shared turn, deletes.
OPERATIONS = OWN + 1 + OWN * TURNS + 2 * SHARED_TURNS + DELETED


def _worker(factory_name: str, path: str, index: int, barrier: Any, results: Any) -> None:
    sys.path.insert(0, str(ROOT))  # so that benchmarks.* factories import in the child
    storage = load_target(factory_name)(Path(path))
    barrier.wait()
    began = time.time()
    own = [storage.create_session() for _ in range(OWN)]
    storage.ensure_session(SHARED)
    shared_done = 0
    for turn in range(TURNS):
        for session_id in own:
            stamp = datetime.now(UTC)
            storage.add_turn(session_id, ConversationTurn(f"p{index}-{turn}", "r", stamp))
        if shared_done < SHARED_TURNS:
            storage.ensure_session(SHARED)  # may have been lost by another process's save
            stamp = datetime.now(UTC)
            storage.add_turn(SHARED, ConversationTurn(f"s{index}-{shared_done}", "r", stamp))
            shared_done += 1
    for session_id in own[:DELETED]:
        storage.delete_session(session_id)
    storage.flush()
    storage.close()
    ended = time.time()
    prompts = [f"p{index}-{turn}" for turn in range(TURNS)]
    shared = [f"s{index}-{k}" for k in range(SHARED_TURNS)]
    results.put(({sid: prompts for sid in own[DELETED:]}, own[:DELETED], shared, began, ended))


@dataclass
class Outcome:
    sessions_lost: int
    turns_lost: int
    turns_duplicated: int
    resurrected: int
    shared_missing: int
    shared_duplicated: int
    shared_in_order: bool
    seconds: float  # from the first process past the barrier to the last close() returned
    operations: int


def _missing_and_extra(expected: list[str], actual: list[str]) -> tuple[int, int]:
    want, have = Counter(expected), Counter(actual)
    return sum((want - have).values()), sum((have - want).values())


def run_once(factory_name: str, processes: int) -> Outcome:
    context = mp.get_context("spawn")  # a fresh interpreter per process, as separate servers
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "sessions.json"
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [
            context.Process(target=_worker, args=(factory_name, str(path), i, barrier, results))
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        kept: dict[str, list[str]] = {}
        deleted: list[str] = []
        shared_made: list[str] = []
        times: list[tuple[float, float]] = []
        for _ in workers:
            alive, gone, shared, began, ended = results.get(timeout=300)
            kept.update(alive)
            deleted += gone
            shared_made += shared
            times.append((began, ended))
        for worker in workers:
            worker.join()
        reader = load_target(factory_name)(path)
        try:
            found = {session.id: session for session in reader.list_sessions()}
        finally:
            reader.close()
    lost = duplicated = 0
    for session_id, prompts in kept.items():
        if session_id in found:
            missing, extra = _missing_and_extra(
                prompts, [t.prompt for t in found[session_id].turns]
            )
            lost, duplicated = lost + missing, duplicated + extra
    shared_session = found.get(SHARED)
    shared_turns = list(shared_session.turns) if shared_session else []
    shared_missing, shared_extra = _missing_and_extra(shared_made, [t.prompt for t in shared_turns])
    stamps = [turn.timestamp for turn in shared_turns]
    return Outcome(
        sum(session_id not in found for session_id in kept),
        lost,
        duplicated,
        sum(session_id in found for session_id in deleted),
        shared_missing,
        shared_extra,
        stamps == sorted(stamps),
        max(end for _, end in times) - min(start for start, _ in times),
        processes * OPERATIONS,
    )


def measure(factory_name: str, processes: int, repeat: int) -> list[Outcome]:
    own = processes * (OWN - DELETED)
    print(
        f"{factory_name}: {processes} processes x ({OWN} sessions x {TURNS} turns,"
        f" {DELETED} deleted, {SHARED_TURNS} turns on one shared session), {repeat} runs"
    )
    outcomes = []
    for run in range(1, repeat + 1):
        outcome = run_once(factory_name, processes)
        outcomes.append(outcome)
        print(
            f"run {run}: own sessions lost {outcome.sessions_lost}/{own},"
            f" turns lost {outcome.turns_lost} and duplicated {outcome.turns_duplicated}"
            f" in surviving ones, resurrected {outcome.resurrected}/{processes * DELETED},"
            f" shared turns missing {outcome.shared_missing}/{processes * SHARED_TURNS}"
            f" and duplicated {outcome.shared_duplicated}"
            f" (in timestamp order: {outcome.shared_in_order})",
            flush=True,
        )
    return outcomes


def _row(label: str, outcomes: list[Outcome], processes: int) -> str:
    runs = len(outcomes)
    own = processes * (OWN - DELETED) * runs
    return (
        f"| {label} | {runs} | {sum(o.sessions_lost for o in outcomes)} of {own}"
        f" | {sum(o.turns_lost for o in outcomes)} / {sum(o.turns_duplicated for o in outcomes)}"
        f" | {sum(o.resurrected for o in outcomes)} of {processes * DELETED * runs}"
        f" | {sum(o.shared_missing for o in outcomes)} of {processes * SHARED_TURNS * runs}"
        f" / {sum(o.shared_duplicated for o in outcomes)}"
        f" | {sum(o.shared_in_order for o in outcomes)} of {runs} |"
    )


def section(processes: int = 8, repeat: int = 20, factories: list[str] | None = None) -> str:
    """The figures as docs/reliability.md states them (benchmarks/reliability.py): the
    workload, the command, a table; the last save wins and the reference by default."""
    start = time.monotonic()
    results = {
        name.rsplit(":", 1)[1]: measure(name, processes, repeat)
        for name in factories or [LAST_SAVE_WINS, REFERENCE]
    }
    seconds = time.monotonic() - start
    lines = [
        "## Many processes on one sessions file (B25-B30)",
        "",
        "Issue 13's workload, by `benchmarks/shared_workload.py`: "
        f"{processes} processes start together (spawned interpreters, a barrier), each on its own",
        f"instance on one path, and each creates {OWN} sessions with {TURNS} turns, deletes",
        f"{DELETED} of them, and appends {SHARED_TURNS} turns to one session all of them share",
        "(`ensure_session`), interleaved, then `flush()` and `close()`. A fresh instance then",
        "reads the file. Turns are stamped with the real time when they are made.",
        "",
        f"- command: `python benchmarks/shared_workload.py --processes {processes}"
        f" --repeat {repeat}`; {seconds:.0f} s",
        "",
        "| backend | runs | own sessions lost | their turns lost / duplicated"
        " | deleted sessions back | shared turns missing / duplicated"
        " | runs with shared turns in timestamp order |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(_row(label, outcomes, processes) for label, outcomes in results.items()),
        "",
        "`LastSaveWinsStorage` (benchmarks/last_save_wins.py) is the reference with its merge",
        "switched off: each save writes its own memory whole, as before SPEC.md 1.2. The",
        "reference (`FileSessionStorage`) claims the `shared` level (SPEC.md §8).",
        "",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def redis_url() -> Iterator[None]:
    """SESSIONSPEC_REDIS_URL set for the workers: as given, or a redis-server of our own."""
    if os.environ.get("SESSIONSPEC_REDIS_URL"):
        yield
        return
    from tests.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as data:
        server = RedisServer.launch(Path(data))
        os.environ["SESSIONSPEC_REDIS_URL"] = server.url
        try:
            yield
        finally:
            del os.environ["SESSIONSPEC_REDIS_URL"]
            server.stop()


def throughput(backends: list[str], process_counts: list[int], repeat: int) -> str:
    """The workload through each backend at each number of processes: a Markdown table."""
    lines = [
        f"Each process: {OPERATIONS} operations ({OWN} sessions x {TURNS} turns, {DELETED}"
        f" deleted, {SHARED_TURNS} turns on one shared session, each after an ensure_session),"
        f" then flush() and close(); {repeat} runs each; ops/s = all operations / (first"
        " process past the barrier to the last close() returned), median (min-max).",
        "",
        "| backend | processes | ops/s | own sessions lost | their turns lost / duplicated"
        " | deleted sessions back | shared turns missing / duplicated |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in backends:
        with redis_url() if name == "redis" else contextlib.nullcontext():
            for processes in process_counts:
                outcomes = [run_once(BACKENDS[name], processes) for _ in range(repeat)]
                rates = [o.operations / o.seconds for o in outcomes]
                lines.append(
                    f"| {name} | {processes} | {statistics.median(rates):,.0f}"
                    f" ({min(rates):,.0f}-{max(rates):,.0f})"
                    f" | {sum(o.sessions_lost for o in outcomes)}"
                    f" | {sum(o.turns_lost for o in outcomes)}"
                    f" / {sum(o.turns_duplicated for o in outcomes)}"
                    f" | {sum(o.resurrected for o in outcomes)}"
                    f" | {sum(o.shared_missing for o in outcomes)}"
                    f" / {sum(o.shared_duplicated for o in outcomes)} |"
                )
                print(f"  {name} x {processes}: done", file=sys.stderr, flush=True)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--factory", action="append", help="module:attr (repeatable)")
    parser.add_argument("--throughput", action="store_true", help="ops/s through each backend")
    parser.add_argument("--backend", nargs="+", choices=sorted(BACKENDS), default=list(BACKENDS))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # benchmarks.* factories, tests.redis_server
    if args.throughput:
        print(throughput(args.backend, args.processes or [1, 4, 8], args.repeat or 3))
    else:
        [processes] = args.processes or [8]
        print(section(processes, args.repeat or 20, args.factory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
