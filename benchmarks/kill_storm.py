"""SIGKILL a save storm a thousand times: what the kills leave (B31; not a test, prints figures).

    .venv/bin/python benchmarks/kill_storm.py [--kills 1000] [--factory module:attr] [--seed 0]

The kit's B31 check (``sessionspec/conformance/checks_crash.py``) at full size: a fork server
(``sessionspec/conformance/child_crash.py``) starts one storm process after another on one
path, each continuing a deterministic sequence of mutations (3 sessions, 20 000-character
prompts, flush() every 3 mutations) from the state the previous kill left; each is SIGKILLed
after a random delay (every other one once a temp file of a save has appeared). After each
kill the script judges the file exactly as the check does, without stopping at the first
problem, and counts; after the last, a new instance loads, saves once, and the temp files
left are counted. Default factory: the reference ``FileSessionStorage``.

``section(kills)`` returns the figures as a Markdown section (for docs/reliability.md);
run as a script, it prints that section.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sessionspec.conformance.checks_crash import Finding, KillStorm, StormFigures
from sessionspec.conformance.child_crash import moment_of
from sessionspec.conformance.clock import epoch_ms
from sessionspec.conformance.loading import load_target
from sessionspec.spec import Level, declared_levels

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "sessionspec.reference:FileSessionStorage"


def storm(kills: int, factory: str = REFERENCE, seed: int = 0) -> tuple[StormFigures, float]:
    """Run ``kills`` kills of a storm of ``factory`` on a fresh path; the figures (every
    finding kept, B31) and the wall time in seconds, the final open and save included."""
    sys.path.insert(0, str(ROOT))  # benchmarks.* factories
    make = load_target(factory)
    shared = Level.SHARED in (declared_levels(make) or ())
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kill-storm-") as workdir:
        path = Path(workdir) / "store" / "sessions.json"
        moment = moment_of(epoch_ms(datetime.now(UTC)))
        found: list[Finding] = []
        with KillStorm(factory, path, moment, shared=shared, seed=seed,
                       report=found.append) as kill_storm:  # fmt: skip
            figures = kill_storm.run(kills)
            kill_storm.settle(lambda clock: make(path, clock=clock), kills)
    return figures, time.monotonic() - started


def _machine() -> str:
    uname = platform.uname()
    return (
        f"{uname.system} {uname.release} {uname.machine}, nproc {os.cpu_count()},"
        f" Python {platform.python_version()}"
    )


def section(kills: int, factory: str = REFERENCE, seed: int = 0) -> str:
    """The figures of one kill storm of ``kills`` kills as a Markdown section (B31)."""
    figures, seconds = storm(kills, factory, seed)
    command = ["python", "benchmarks/kill_storm.py", "--kills", str(kills)]
    if factory != REFERENCE:
        command += ["--factory", factory]
    if seed:
        command += ["--seed", str(seed)]
    problems = [f"  - {item.behaviour}: {item.message[:300]}" for item in figures.findings[:10]]
    lines = [
        f"## Kill storm: {figures.kills} SIGKILLs of a save storm ({factory.rsplit(':', 1)[1]})",
        "",
        "A process saving in a loop (3 sessions, 20 000-character prompts, flush() every 3",
        "mutations) is SIGKILLed, again and again, on one path; each new process continues",
        "from what the last kill left. Every other kill waits for a temp file of a save to",
        "appear (then stops the process and kills it if the temp is still there), the others",
        "land at a random moment. After each kill the file is judged: whole (parses, writer",
        "profile), exactly the state after some mutation of the sequence, no earlier than the",
        "last one a returned flush() covered (B31).",
        "",
        f"- command: `{shlex.join(command)}`",
        f"- machine: {_machine()}",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')};"
        f" wall time {seconds:.1f} s ({seconds / max(figures.kills, 1) * 1000:.0f} ms a kill)",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| kills | {figures.kills} |",
        f"| kills that landed mid-save (a temp file of the killed process was there) |"
        f" {figures.mid_save} of {figures.kills} ({figures.random_mid_save} of the"
        f" {figures.random_kills} at a random moment) |",
        f"| flushes acknowledged before a kill | {figures.acknowledged} |",
        f"| files invalid after a kill (unparseable or not writer-valid) | {figures.invalid} |",
        f"| files missing after a kill, once a save had reached its rename | {figures.missing} |",
        f"| acknowledged states lost | {figures.lost} |",
        f"| files not equal to the state of any mutation | {figures.not_a_state} |",
        f"| temp files present after the last kill | {figures.temps_after_kills} |",
        f"| temp files left after the next open and save | {figures.temps_after_save} |",
        f"| rules broken (any behaviour) | {len(figures.findings)} |",
        "",
    ]
    if problems:
        lines += ["First problems found:", "", *problems, ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--factory", default=REFERENCE, help="module:attr")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    args = parser.parse_args()
    print(section(args.kills, args.factory, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
