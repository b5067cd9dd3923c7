"""Benchmark of the kit as a CI gate (not a test; prints figures).

    .venv/bin/python benchmarks/bench_kit.py [--repeat N] [--profile ci]

Runs ``sessionspec verify`` as a CI job would (a child process, ``--json``) on:

1. the reference ``FileSessionStorage`` (must PASS; issue 11 asks for under 20 s with ``ci``);
2. a write-through backend that saves and fsyncs on every mutation (tests/must_accept.py's
   ``WriteThroughStorage``, a freedom the spec allows: must PASS);
3. the same backend with one bug, ``add_turn`` that does not touch (must FAIL B02 alone).

For each: wall time (median and range over the repeats), the verdict, the state machine's
seconds, and for a FAIL the length of the program in its replay script. Also checks that
the repeats gave the same JSON report apart from timings (the ``ci`` profile is
deterministic).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path.insert(0, str(TESTS))

from faulty_backends import AddTurnDoesNotTouch  # noqa: E402
from must_accept import WriteThroughStorage  # noqa: E402


class WriteThroughNoTouch(AddTurnDoesNotTouch, WriteThroughStorage):
    """B02's bug (tests/faulty_backends.py) on the write-through backend."""


TARGETS = {
    "reference FileSessionStorage": "sessionspec.reference:FileSessionStorage",
    "write-through, fsync per mutation": "bench_kit:WriteThroughStorage",
    "write-through, add_turn does not touch": "bench_kit:WriteThroughNoTouch",
}
TIMINGS = {"duration_s", "machine_duration_s", "started_at", "replay_path"}


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def run(target: str, profile: str, work: Path) -> tuple[float, int, dict[str, Any]]:
    report = work / "report.json"
    # Always from the same directory: a replay script names it (to import the TARGET there).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(TESTS)])}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "verify", target, "--profile", profile,
         "--json", str(report), "--replay-dir", str(work / "replays")],
        cwd=HERE, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return time.monotonic() - start, done.returncode, json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="ci")
    args = parser.parse_args()
    print(f"sessionspec verify --profile {args.profile}, {args.repeat} runs each,"
          f" {os.cpu_count()} cores")  # fmt: skip
    for label, target in TARGETS.items():
        walls, reports = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as work:
                wall, code, report = run(target, args.profile, Path(work))
            walls.append(wall)
            reports.append(report)
        last = reports[-1]
        failing = [r["id"] for r in last["results"] if r["status"] == "FAIL"]
        steps = [
            len([line for line in c["program"].splitlines() if not line.startswith("#")])
            for r in last["results"] for c in r["checks"] if c.get("program")
        ]  # fmt: skip
        same = all(_without_timings(r) == _without_timings(last) for r in reports)
        print(
            f"{label}: exit {code}, FAIL {failing or '-'},"
            f" wall median {statistics.median(walls):.1f} s"
            f" (min {min(walls):.1f}, max {max(walls):.1f}),"
            f" machine {last['machine_duration_s']:.1f} s,"
            f" program steps {steps or '-'}, reports identical apart from timings: {same}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
