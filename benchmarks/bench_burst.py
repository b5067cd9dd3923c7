"""The burst of issue 16 on one backend (not a test; prints figures).

    .venv/bin/python benchmarks/bench_burst.py [--factory module:attr] [--repeat 9]

One run: a fresh store on a new path, 100 ``create_session`` then 10,000 ``add_turn`` (200-byte
prompt and response, spread over the 100 sessions) then ``flush()``, timed as a whole with
``time.perf_counter``. Prints the median and the spread over ``--repeat`` runs, and how many
times the sessions file was replaced (saves) in the median run.

To compare with the reference before the shared level (SPEC.md §8), run the same script with
an older checkout first on the path, for example
``git worktree add /tmp/before d121a64 && PYTHONPATH=/tmp/before python benchmarks/bench_burst.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.loading import load_target
from sessionspec.spec import ConversationTurn

SESSIONS, TURNS, TEXT = 100, 10_000, 200
START = datetime(2026, 1, 1, tzinfo=UTC)


def burst(factory: Any, path: Path) -> tuple[float, int]:
    """One burst; returns (seconds, saves)."""
    saves = 0
    real_replace = os.replace

    def counting_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        nonlocal saves
        if os.fspath(dst) == os.fspath(path):
            saves += 1
        real_replace(src, dst, **kwargs)

    os.replace = counting_replace
    now = [START]
    try:
        storage = factory(path, clock=lambda: now[0])
        prompt, response = "p" * TEXT, "r" * TEXT
        began = time.perf_counter()
        ids = [storage.create_session() for _ in range(SESSIONS)]
        for i in range(TURNS):
            now[0] = START + timedelta(milliseconds=i)
            storage.add_turn(ids[i % SESSIONS], ConversationTurn(prompt, response, now[0]))
        storage.flush()
        elapsed = time.perf_counter() - began
        storage.close()
    finally:
        os.replace = real_replace
    return elapsed, saves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factory", default="sessionspec.reference:FileSessionStorage")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks.* factories
    factory = load_target(args.factory)
    import sessionspec

    runs = []
    with tempfile.TemporaryDirectory() as work:
        for n in range(args.repeat):
            runs.append(burst(factory, Path(work) / f"run{n}" / "sessions.json"))
    times = sorted(seconds for seconds, _ in runs)
    median = statistics.median(times)
    saves = min(runs, key=lambda run: abs(run[0] - median))[1]
    print(
        f"{args.factory} (sessionspec from {Path(sessionspec.__file__).parent}):"
        f" burst of {SESSIONS} creates + {TURNS} add_turn + flush, {args.repeat} runs:"
        f" median {median * 1000:.0f} ms, min {times[0] * 1000:.0f} ms,"
        f" max {times[-1] * 1000:.0f} ms; {saves} saves in the median run"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
