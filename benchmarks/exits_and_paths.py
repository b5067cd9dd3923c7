"""Signals at the end of a process (B33) and hostile paths (B32): figures, not a test.

    .venv/bin/python benchmarks/exits_and_paths.py [--trials 40]

**SIGTERM right after a mutation.** A child process opens the reference ``FileSessionStorage``
on a fresh path, creates a session, adds a turn, prints ``mutated`` and waits; the moment the
parent reads that line it sends SIGTERM. Trials with ``flush_on_signals()`` called first (the
opt-in, SPEC.md §4.9) and without it; the figure is in how many the turn is on disk after.

**Hostile paths.** For each thing at the path (a FIFO, a socket, a symlink to ``/dev/zero``, a
file one byte over the 256 MiB bound (sparse), a directory, a dangling symlink, a symlink to
and a hard link to someone else's corrupt 0o644 file), a child process (address space capped
at 1 GiB, killed after 30 s) runs the constructor and, when it returns, a save; the table says
what it raised, how long the constructor took, and whether anything but the path changed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sessionspec.reference import FileSessionStorage
from sessionspec.reference.file import MAX_FILE_BYTES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from reference_helpers import SIGTERM_CHILD


def sigterm_trial(directory: Path, opt_in: bool) -> bool:
    """One trial: is the turn made just before SIGTERM on disk afterwards?"""
    path = directory / "sessions.json"
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_CHILD, str(path), "opt-in" if opt_in else "no"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "mutated":
        raise RuntimeError("the child did not start")
    child.send_signal(signal.SIGTERM)
    child.wait(60)
    try:
        with FileSessionStorage(path) as storage:
            return any(t.prompt == "last words" for s in storage.list_sessions() for t in s.turns)
    except OSError:
        return False


_OPEN = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from sessionspec.reference import FileSessionStorage
start = time.perf_counter()
try:
    storage = FileSessionStorage(sys.argv[1])
except OSError as exc:
    outcome = f"{type(exc).__name__} ({exc.strerror})"
    seconds = time.perf_counter() - start
else:
    seconds = time.perf_counter() - start
    sessions = len(storage.list_sessions())
    storage.create_session()
    storage.close()
    outcome = f"opened ({sessions} sessions), saved"
print(json.dumps([outcome, seconds]))
"""

VICTIM = b'{"version": 1, "sessions": [ not json'


def _victim(directory: Path) -> Path:
    victim = directory / "elsewhere" / "victim.json"
    victim.parent.mkdir()
    victim.write_bytes(VICTIM)
    os.chmod(victim, 0o644)
    os.utime(victim, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return victim


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # left bound: the socket file stays while the script runs
    _SOCKETS.append(server)


def _over_the_bound(path: Path) -> None:
    with open(path, "wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere" / "sessions.json")


def _symlink_to_victim(path: Path) -> None:
    path.symlink_to(_victim(path.parent))


def _hard_link_to_victim(path: Path) -> None:
    os.link(_victim(path.parent), path)


_SOCKETS: list[socket.socket] = []
CASES: dict[str, Callable[[Path], None]] = {
    "FIFO": _fifo,
    "socket": _socket,
    "symlink to /dev/zero": lambda path: path.symlink_to("/dev/zero"),
    "1 byte over the bound (sparse)": _over_the_bound,
    "directory": lambda path: path.mkdir(),
    "dangling symlink": _dangling,
    "symlink to a corrupt 0o644 file": _symlink_to_victim,
    "hard link to a corrupt 0o644 file": _hard_link_to_victim,
}


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry but the path itself and backups of it: mode, size, mtime."""
    out = {}
    for current, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            full = Path(current) / name
            if name.startswith("sessions.json"):
                continue
            info = full.lstat()
            out[str(full.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return out


def hostile_case(directory: Path, name: str) -> tuple[str, float, bool]:
    """(outcome, seconds in the constructor, whether anything besides the path changed)."""
    path = directory / "sessions.json"
    CASES[name](path)
    before = _tree(directory)
    victim = directory / "elsewhere" / "victim.json"
    victim_bytes = victim.read_bytes() if victim.exists() else None
    done = subprocess.run(
        [sys.executable, "-c", _OPEN, str(path)], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        return f"child failed: {done.stderr.strip().splitlines()[-1]}", float("nan"), True
    outcome, seconds = json.loads(done.stdout)
    touched = _tree(directory) != before or (
        victim_bytes is not None and victim.read_bytes() != victim_bytes
    )
    return outcome, seconds, touched


def section(trials: int = 40) -> str:
    """docs/reliability.md's section on signals and hostile paths."""
    start = time.monotonic()
    counts = {}
    for opt_in in (True, False):
        saved = 0
        for _ in range(trials):
            with tempfile.TemporaryDirectory() as directory:
                saved += sigterm_trial(Path(directory), opt_in)
        counts[opt_in] = saved
    rows = []
    for name in CASES:
        with tempfile.TemporaryDirectory() as directory:
            outcome, seconds, touched = hostile_case(Path(directory), name)
        rows.append(
            f"| {name} | {outcome} | {seconds * 1000:.1f} ms | {'yes' if touched else 'no'} |"
        )
    for server in _SOCKETS:
        server.close()
    elapsed = time.monotonic() - start
    return "\n".join(
        [
            "## Signals and hostile paths (B32, B33)",
            "",
            f"- command: `python benchmarks/exits_and_paths.py --trials {trials}`; {elapsed:.0f} s",
            "",
            "SIGTERM the moment a child process has made a mutation (SPEC.md §4.9):",
            "",
            "| `flush_on_signals()` | trials | the mutation on disk afterwards |",
            "| --- | --- | --- |",
            f"| called (the opt-in) | {trials} | {counts[True]} of {trials} |",
            f"| not called (the default) | {trials} | {counts[False]} of {trials} |",
            "",
            "What the reference's constructor does with each thing at the path (in a child",
            "process capped at 1 GiB of address space): what it raised, or that it opened and",
            "saved; how long the constructor took; whether anything other than the path and",
            "its backups changed (the file a link points to included):",
            "",
            "| at the path | outcome | constructor | anything else changed |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def machine() -> str:
    """One line: the system, CPUs and Python."""
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print(section(args.trials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
