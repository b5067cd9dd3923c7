"""Many processes on one sessions file: what survives (not a test; prints figures).

    .venv/bin/python benchmarks/shared_file_workload.py [--processes 8] [--repeat 20]
                                                        [--factory module:attr]

Issue 13's workload. N processes start together (a barrier), each on its own instance of the
factory (default: the reference ``FileSessionStorage``) on one path, and each:

- creates 10 sessions and adds 25 turns to each, then deletes 2 of them;
- appends 20 turns to one session they all share (``ensure_session("shared")``);
- interleaves the two (own turn, shared turn, ...), then ``flush()`` and ``close()``.

Then a fresh instance opens the path and the script counts, per repetition: own sessions lost
(or missing turns), deleted sessions resurrected, and the shared session's turns (N x 20
expected, in timestamp order). Run it before and after the ``shared`` level to see the
difference; docs/design/shared-level.md has the figures of the reference before it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionspec.conformance.loading import load_target
from sessionspec.spec import ConversationTurn

OWN, TURNS, DELETED, SHARED_TURNS = 10, 25, 2, 20
SHARED = "shared"


def _worker(factory_name: str, path: str, index: int, barrier: Any, results: Any) -> None:
    storage = load_target(factory_name)(Path(path))
    barrier.wait()
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
    results.put((own[DELETED:], own[:DELETED]))


@dataclass
class Outcome:
    sessions_lost: int
    turns_lost: int
    resurrected: int
    shared_turns: int
    shared_in_order: bool


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
        kept: list[str] = []
        deleted: list[str] = []
        for _ in workers:
            alive, gone = results.get(timeout=300)
            kept += alive
            deleted += gone
        for worker in workers:
            worker.join()
        reader = load_target(factory_name)(path)
        try:
            found = {session.id: session for session in reader.list_sessions()}
        finally:
            reader.close()
    sessions_lost = sum(session_id not in found for session_id in kept)
    turns_lost = sum(TURNS - len(found[i].turns) for i in kept if i in found)
    shared = found.get(SHARED)
    stamps = [turn.timestamp for turn in shared.turns] if shared else []
    return Outcome(
        sessions_lost,
        turns_lost,
        sum(session_id in found for session_id in deleted),
        len(stamps),
        stamps == sorted(stamps),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--factory", default="sessionspec.reference:FileSessionStorage")
    args = parser.parse_args()
    own = args.processes * (OWN - DELETED)
    print(
        f"{args.factory}: {args.processes} processes x ({OWN} sessions x {TURNS} turns,"
        f" {DELETED} deleted, {SHARED_TURNS} turns on one shared session), {args.repeat} runs"
    )
    for run in range(1, args.repeat + 1):
        outcome = run_once(args.factory, args.processes)
        print(
            f"run {run}: own sessions lost {outcome.sessions_lost}/{own},"
            f" turns lost in surviving ones {outcome.turns_lost},"
            f" resurrected {outcome.resurrected}/{args.processes * DELETED},"
            f" shared turns {outcome.shared_turns}/{args.processes * SHARED_TURNS}"
            f" (in timestamp order: {outcome.shared_in_order})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
