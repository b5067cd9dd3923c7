"""Injected I/O errors on a save: what the file and the next flush() look like (not a test;
prints figures).

    .venv/bin/python benchmarks/eio_injection.py [--trials 25] [--factory module:attr]

For each site of a save (the write of the temp file, its fsync, the rename over the file, the
directory's fsync after it), ``--trials`` runs of the B22 checks' scenario
(sessionspec/conformance/child_injected.py) on the factory (default: the reference
``FileSessionStorage``), each with EIO injected by strace at that site of the second save, as
the kit's checks do (sessionspec/conformance/checks_injected.py: same calibration, same
child, same judgement). Counted per site: flush() raised OSError; the file was byte-identical
to before the save (for the directory fsync: held the complete new version); temp files left
behind; the next flush() wrote the full state (for the directory fsync: and saved again).

Needs strace and ptrace (root, or ptrace allowed). ``section(trials)`` returns the figures as
a Markdown section for docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sessionspec.conformance.checks_injected import SITES, Outcome, run_sites
from sessionspec.conformance.clock import FakeClock, epoch_ms
from sessionspec.conformance.loading import load_target

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "sessionspec.reference:FileSessionStorage"
DEFAULT_TRIALS = 25


def _machine() -> str:
    strace = shutil.which("strace")
    version = "none"
    if strace:
        done = subprocess.run([strace, "-V"], capture_output=True, text=True, check=False)
        version = done.stdout.splitlines()[0] if done.stdout else "unknown"
    uname = platform.uname()
    return (
        f"{uname.system} {uname.release} {uname.machine}, nproc {os.cpu_count()},"
        f" Python {platform.python_version()}, {version}"
    )


def _cell(outcomes: list[Outcome], count: int) -> str:
    return f"{count} of {len(outcomes)}"


def measure(factory_name: str, trials: int) -> tuple[list[str], float]:
    """The table's rows for ``factory_name`` (B22 at each site), and the seconds it took."""
    sys.path.insert(0, str(ROOT))  # so that benchmarks.* factories import here and in the child
    factory = load_target(factory_name)
    clock = FakeClock()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eio-injection-") as work:
        _, results = run_sites(
            factory_name,
            epoch_ms(clock()),
            Path(work),
            lambda path: factory(path, clock=clock),
            runs_per_site=trials,
        )
    seconds = time.monotonic() - started
    rows = []
    for site in SITES:
        result = results[site.key]
        if isinstance(result, Exception):
            rows.append(f"| {site.what} | not run: {result} | | | | |")
            continue
        kept = "complete new version" if site.after_rename else "byte-identical"
        rows.append(
            f"| {site.what} | {len(result)}"
            f" | {_cell(result, sum(o.raised for o in result))}"
            f" | {_cell(result, sum(o.file_kept for o in result))} {kept}"
            f" | {sum(len(o.temps) for o in result)}"
            f" | {_cell(result, sum(o.recovered for o in result))} |"
        )
    return rows, seconds


def section(trials: int = DEFAULT_TRIALS, factory_name: str = REFERENCE) -> str:
    """The figures (B22, injected EIO) as a Markdown section for docs/reliability.md."""
    rows, seconds = measure(factory_name, trials)
    command = "python benchmarks/eio_injection.py --trials " + str(trials)
    if factory_name != REFERENCE:
        command += " --factory " + shlex.quote(factory_name)
    return "\n".join(
        [
            "## Injected I/O errors on a save",
            "",
            f"`{factory_name}`, {trials} runs per site. In each run a store saves a first",
            "state, then a second, into which strace injects EIO at one call (which one, the",
            "calls of a calibration run tell: `-e inject=SYSCALL:error=EIO:when=K`, K counted",
            "per thread), then flush() is called again without a fault. Written by",
            "`benchmarks/eio_injection.py`, with the B22 checks' child, calibration and",
            "judgement (`sessionspec/conformance/checks_injected.py`).",
            "",
            f"- command: `{command}`",
            f"- machine: {_machine()}",
            f"- {seconds:.1f} s in all",
            "",
            "| EIO when | runs | flush() raised OSError | file as B22 says"
            " | temp files left | next flush() wrote the full state (and, after a failed"
            " directory fsync, saved again) |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def main() -> None:
    """Print :func:`section` (B22) for the command line's factory and trials."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    parser.add_argument("--factory", default=REFERENCE, help="module:attr (default: reference)")
    args = parser.parse_args()
    print(section(args.trials, args.factory))


if __name__ == "__main__":
    main()
