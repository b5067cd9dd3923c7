"""Write docs/reliability.md: every reliability figure of the reference, measured now.

    .venv/bin/python benchmarks/reliability.py [--small] [--output docs/reliability.md]

Runs the full-size version of each experiment (``--small``: the quick sizes, for trying it
out) and writes their sections, with the machine and the command, into one Markdown file:

- benchmarks/kill_storm.py: SIGKILLs during a save storm (B31);
- benchmarks/eio_injection.py: EIO injected by strace into a save's syscalls (B22);
- benchmarks/hostile_corpus.py: hostile and mutated files at the path (B12-B15);
- benchmarks/exits_and_paths.py: SIGTERM with and without the opt-in (B33), hostile paths (B32);
- benchmarks/shared_workload.py: 8 processes on one file (B25-B30).

Not a test: a timing or a count here is a measurement of one machine at one moment.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks.* and tests.* modules

from benchmarks import (  # noqa: E402
    eio_injection,
    exits_and_paths,
    hostile_corpus,
    kill_storm,
    shared_workload,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="quick sizes, to try it out")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    small = args.small
    start = time.monotonic()
    sections = [
        kill_storm.section(100 if small else 1000),
        eio_injection.section(3 if small else 25),
        hostile_corpus.section(not small),
        exits_and_paths.section(10 if small else 40),
        shared_workload.section(8, 3 if small else 20),
    ]
    strace = shutil.which("strace")
    strace_version = (
        subprocess.run([strace, "-V"], capture_output=True, text=True).stdout.splitlines()[0]
        if strace
        else "strace: not installed"
    )
    header = [
        "# Reliability of the reference backend",
        "",
        "Written by `benchmarks/reliability.py`; do not edit by hand. Each section says the",
        "script and command that measured it; the figures are of one run on one machine.",
        "",
        f"- command: `python benchmarks/reliability.py{' --small' if small else ''}`",
        f"- machine: {exits_and_paths.machine()}; {strace_version}",
        f"- {time.monotonic() - start:.0f} s in all",
        "",
    ]
    args.output.write_text("\n".join(header) + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
