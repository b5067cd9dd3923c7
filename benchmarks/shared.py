"""Many processes on one store, through each backend: throughput and what is lost (not a test).

    PYTHONPATH=. python benchmarks/shared.py [--procs 1 4 8] [--repeats 3]
                                             [--backend file sqlite redis] [--out FILE]

The shared level's workload (SPEC.md §8; the kit's ``shared-burst`` in miniature, larger):
``P`` processes start together (a go file) on one path, each through its own instance:
``ensure_session`` of one session all share, ``OWN`` ``create_session``, ``TURNS``
``add_turn`` on each of them, one ``delete_session`` of its first, ``SHARED`` ``add_turn``
on the shared session, then ``close()``. The instances are opened before the go file, so the
time is the operations and the closing saves, from the go file to the last process done;
throughput is all processes' operations over that time. Then a fresh instance reads:
**lost** = sessions a process created and did not delete that it does not list, or with
fewer than ``TURNS`` turns, plus shared turns missing; **resurrected** = deleted sessions it
lists. Every clock is the real one (the workload takes seconds, far within the TTL).

Backends (TARGETs of ``factory(path, *, clock)``): ``file`` the reference
``FileSessionStorage`` (write-behind, one JSON file, a read-merge-write per save under a
sidecar lock), ``sqlite`` ``examples/backends/sqlite_storage.py`` (one transaction per
mutation, WAL, synchronous=FULL), ``redis`` ``examples/backends/redis_storage.py`` on a
``redis-server`` this script starts on 127.0.0.1 (a free port, its own data directory,
``appendonly yes``, ``appendfsync always``); skipped with a message when ``redis-server``
or the backend is missing.

Prints a table (median and spread over ``--repeats``) and writes the JSON result
(default benchmarks/results/shared.json) with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BACKENDS = {
    "file": "sessionspec.reference:FileSessionStorage",
    "sqlite": f"{ROOT}/examples/backends/sqlite_storage.py:SqliteSessionStorage",
    "redis": f"{ROOT}/examples/backends/redis_storage.py:RedisSessionStorage",
}
SHARED_ID = "shared-by-all"
#: Per process: own sessions, turns on each, turns on the shared session. 8 x 10 own + the
#: shared one stay under the cap of 100 (B18), so what the reader misses is lost, not evicted.
OWN, TURNS, SHARED = 10, 10, 20
OPS_PER_PROCESS = 1 + OWN + OWN * TURNS + 1 + SHARED


def worker(target: str, path: Path, index: int, go: Path) -> dict[str, Any]:
    """The hidden sub-command ``_worker``: one process's part of the workload."""
    from sessionspec.conformance.loading import load_target
    from sessionspec.spec import ConversationTurn

    storage = load_target(target)(path)
    while not go.exists():
        time.sleep(0.001)
    began = time.time()
    storage.ensure_session(SHARED_ID)
    own = [storage.create_session() for _ in range(OWN)]
    for session_id in own:
        for turn in range(TURNS):
            now = datetime.now(UTC)
            storage.add_turn(session_id, ConversationTurn(f"{index}-{turn}", "r", now))
    storage.delete_session(own[0])
    for turn in range(SHARED):
        now = datetime.now(UTC)
        storage.add_turn(SHARED_ID, ConversationTurn(f"shared-{index}-{turn}", "r", now))
    storage.close()
    return {"began": began, "ended": time.time(), "created": own, "deleted": [own[0]]}


def child_env(extra: dict[str, str]) -> dict[str, str]:
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(paths)}


def one_run(target: str, work: Path, processes: int, env: dict[str, str]) -> dict[str, Any]:
    """``processes`` workers at once on a fresh path, then a fresh reader."""
    from sessionspec.conformance.loading import load_target

    path = work / "store" / "sessions.json"
    path.parent.mkdir(parents=True)
    go = work / "go"
    command = [sys.executable, __file__, "_worker", target, str(path)]
    children = [
        subprocess.Popen(
            [*command, str(index), str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(env),
            cwd=ROOT,
        )
        for index in range(processes)
    ]
    time.sleep(0.5 + 0.1 * processes)  # every worker imported and opened its instance
    go_time = time.time()
    go.touch()
    reports = []
    for child in children:
        out, _ = child.communicate(timeout=300)
        if child.returncode != 0:
            raise RuntimeError(f"a worker failed (exit {child.returncode})")
        reports.append(json.loads(out))
    seconds = max(r["ended"] for r in reports) - min(go_time, *(r["began"] for r in reports))
    os.environ.update(env)  # the reader reaches the same server
    with load_target(target)(path) as reader:
        listed = {s.id: s for s in reader.list_sessions()}
    created = {i for r in reports for i in r["created"]}
    deleted = {i for r in reports for i in r["deleted"]}
    kept = created - deleted
    lost = sorted(i for i in kept if i not in listed or len(listed[i].turns) < TURNS)
    shared = listed.get(SHARED_ID)
    shared_turns = len(shared.turns) if shared is not None else 0
    return {
        "seconds": seconds,
        "ops": processes * OPS_PER_PROCESS,
        "ops_per_s": processes * OPS_PER_PROCESS / seconds,
        "lost_sessions": len(lost),
        "lost_shared_turns": processes * SHARED - shared_turns,
        "resurrected": len(deleted & listed.keys()),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def redis_server(work: Path) -> Iterator[str]:
    """A redis-server of this run's own on 127.0.0.1: its URL."""
    port = free_port()
    data = work / "redis"
    data.mkdir()
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
         "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(
    name: str, work: Path, procs: list[int], repeats: int, env: dict[str, str]
) -> dict[str, Any]:
    rows = []
    for processes in procs:
        runs = [
            one_run(BACKENDS[name], work / f"{name}-{processes}-{n}", processes, env)
            for n in range(repeats)
        ]
        rows.append(
            {
                "processes": processes,
                "ops_per_s": spread([r["ops_per_s"] for r in runs]),
                "seconds": spread([r["seconds"] for r in runs]),
                "lost_sessions": sum(r["lost_sessions"] for r in runs),
                "lost_shared_turns": sum(r["lost_shared_turns"] for r in runs),
                "resurrected": sum(r["resurrected"] for r in runs),
            }
        )
        print(f"  {name} x {processes}: done", file=sys.stderr)
    return {"target": BACKENDS[name], "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| backend | processes | ops/s, median (min-max) | lost sessions | lost shared turns"
        " | resurrected |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, backend in result["backends"].items():
        if "skipped" in backend:
            lines.append(f"| {name} | skipped: {backend['skipped']} | | | | |")
            continue
        for row in backend["rows"]:
            ops = row["ops_per_s"]
            lines.append(
                f"| {name} | {row['processes']} | {ops['median']:,.0f}"
                f" ({ops['min']:,.0f}-{ops['max']:,.0f}) | {row['lost_sessions']}"
                f" | {row['lost_shared_turns']} | {row['resurrected']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        target, path, index, go = argv[1:5]
        print(json.dumps(worker(target, Path(path), int(index), Path(go))))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", nargs="+", choices=sorted(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "shared.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from perf import machine

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "workload": {"own": OWN, "turns": TURNS, "shared": SHARED, "ops": OPS_PER_PROCESS},
        "repeats": args.repeats,
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="sessionspec-shared-") as temp:
        work = Path(temp)
        result["machine"] = machine(work, None)
        for name in args.backend:
            backend_file = BACKENDS[name].rsplit(":", 1)[0]
            if name != "file" and not Path(backend_file).exists():
                result["backends"][name] = {"skipped": f"{backend_file} is missing"}
            elif name == "redis" and shutil.which("redis-server") is None:
                result["backends"][name] = {"skipped": "redis-server is not installed"}
            elif name == "redis":
                with redis_server(work) as url:
                    env = {"SESSIONSPEC_REDIS_URL": url}
                    result["backends"][name] = measure(name, work, args.procs, args.repeats, env)
            else:
                result["backends"][name] = measure(name, work, args.procs, args.repeats, {})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    print(f"{result['date']}; {m['cpu']}, {m['cores']} cores; Python {m['python']}")
    print(f"command: {result['command']}; git {m['git_commit']}")
    print(f"workload per process: {OPS_PER_PROCESS} operations ({OWN} sessions x {TURNS} turns,")
    print(f"one delete, {SHARED} turns on one shared session); {args.repeats} repeats\n")
    print(table(result))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
