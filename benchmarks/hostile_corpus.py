"""The hostile-file corpus at full size against the reference file backend (not a test).

    .venv/bin/python benchmarks/hostile_corpus.py [--small] [--jobs 2] [--seed N]

Writes the corpus of ``tests/hostile_corpus.py`` (full: 500 generated files and the
hand-picked ones, among them a 100 MB string; ``--small``: the CI corpus), opens each file in
a child process as ``tests/hostile_run.py`` does (2 GiB of address space, 30 s of wall time at
full size), and prints a Markdown section: the outcome table by kind, the largest file, wall
time, peak child RSS, the machine and the command. ``section(full)`` returns the same section
for a script that composes docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hostile_corpus as corpus  # tests/ is not a package: on the path above
import hostile_run as run

DEFAULT_COMMAND = "python benchmarks/hostile_corpus.py"


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


def section(
    full: bool, *, jobs: int = 2, seed: int = corpus.SEED, command: str | None = None
) -> str:
    """Run the corpus (full or small) and return the Markdown section, starting with ``## ``."""
    size: corpus.Size = "full" if full else "small"
    if command is None:
        command = DEFAULT_COMMAND + ("" if full else " --small")
    with tempfile.TemporaryDirectory(prefix="hostile-corpus-") as tmp:
        root = Path(tmp)
        (root / "corpus").mkdir()
        (root / "work").mkdir()
        began = time.perf_counter()
        files = corpus.write_corpus(root / "corpus", size, seed_value=seed)
        generated_in = run.elapsed(began)
        began = time.perf_counter()
        results = run.run_corpus(files, root / "work", timeout=run.TIMEOUT[size], jobs=jobs)
        ran_in = run.elapsed(began)
        bad = [run.describe(r) for r in results if r.bad]
    # Each child's own VmHWM: getrusage(RUSAGE_CHILDREN).ru_maxrss would report this
    # process's size instead, which a child inherits at fork as its starting peak.
    heaviest = max(results, key=lambda r: r.maxrss_kib or 0)
    peak_kib = heaviest.maxrss_kib or 0
    biggest = run.largest(files)
    hand = [f for f in files if not f.generated]
    tally = run.counts(results)
    uname = platform.uname()
    lines = [
        f"## Hostile files ({size} corpus)",
        "",
        f"Each file is put at `sessions.json` in a fresh directory and opened by "
        f"`FileSessionStorage` in a child process (address space {_mib(run.ADDRESS_SPACE)}, "
        f"wall timeout {run.TIMEOUT[size]:g} s, {jobs} at a time), which creates a session, adds "
        f"a turn, flushes and closes; the clock reads {corpus.NOW.isoformat()}. *Recoverable*: "
        f"a file left in the directory has the original sha256, or the load was clean and the "
        f"saved file holds every session. *As specified*: the outcome SPEC.md §3.2 gives the "
        f"file (hand-picked: written next to it; generated: the kit's own reader).",
        "",
        f"- **Corpus:** {len(files)} files ({len(hand)} hand-picked, "
        f"{len(files) - len(hand)} generated with seed {seed}), "
        f"{_mib(sum(f.size for f in files))} in all; largest `{biggest.name}` "
        f"({_mib(biggest.size)}).",
        f"- **Result:** {tally[corpus.CRASH]} crashes, {tally[corpus.HANG]} hangs, "
        f"{tally['unrecoverable']} unrecoverable, {tally['not writer-valid']} saved files not "
        f"writer-valid, {tally['not as specified']} outcomes not as specified.",
        f"- **Wall time:** {ran_in:.1f} s to run ({generated_in:.1f} s to generate).",
        f"- **Peak child RSS:** {_mib(peak_kib * 1024)} (`{heaviest.file.name}`).",
        f"- **Machine:** {uname.system} {uname.release} {uname.machine}, "
        f"{len(os.sched_getaffinity(0))} CPUs (nproc), Python {platform.python_version()}.",
        f"- **Command:** `{command}`",
        "",
        run.table(results),
        "",
    ]
    if bad:
        lines += ["Files that went wrong:", "", *(f"- {line}" for line in bad), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the CI corpus (~130 files)")
    parser.add_argument("--jobs", type=int, default=2, help="children at a time (default 2)")
    parser.add_argument("--seed", type=int, default=corpus.SEED, help="generation seed")
    args = parser.parse_args()
    command = shlex.join(sys.orig_argv)
    print(section(not args.small, jobs=args.jobs, seed=args.seed, command=command))


if __name__ == "__main__":
    main()
