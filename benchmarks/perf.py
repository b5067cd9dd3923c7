"""Performance figures of a session store, through its public API only (not a test).

    PYTHONPATH=. python benchmarks/perf.py [--quick] [--out FILE] [--factory module:attr]
                                           [--dir DIR] [--readme] [--no-node] [--no-kit]
                                           [--kit-repeats N]

The store is made by ``factory(path, clock=clock)`` (default: the reference
``sessionspec.reference:FileSessionStorage``) and used only through the methods of
``sessionspec.spec.SessionStorage``, so the script keeps working while the internals change.
Every clock is injected (aware UTC datetimes starting 2026-01-01), so no session expires
during a run. A "turn" is a 200-character prompt and a 200-character response. Each figure
is measured several times; the tables give the median and the spread (min-max) over those
repeats. ``--quick`` runs every measurement at small sizes with few repeats (under a
minute): it checks the script, its figures are not for comparison.

a. Latency (``latency``). Stores of 10 and 100 sessions x 10, 100 and 1,000 turns, and one
   session of 100,000 turns, built with ``update_session(turns=...)`` then ``flush()``. Each
   repeat times, with ``time.perf_counter_ns`` per call, ``--calls`` rounds of
   ``add_turn``, ``ensure_session`` (an existing id: a touch), ``get_session`` and
   ``list_sessions`` on the sessions in turn, back to back with no flush between them, so
   the mutations keep the writer thread saving while the calls run (the saves counted
   during the repeat are reported). Per repeat: p50, p99 and p99.9 (nearest rank) of each
   operation in microseconds. To keep the store at its nominal size, every session's turns
   are set back (untimed ``update_session``) once each session has gained
   ``max(1, turns // 10)`` turns, and at the start of each repeat (then one untimed flush).
b. Burst (``burst``). A fresh store on a new path; timed as a whole: 100
   ``create_session``, 10,000 ``add_turn`` spread round-robin over the 100 sessions (each
   ``ConversationTurn(prompt, response, now)`` built in the loop, the clock advancing 1 ms
   per turn), then ``flush()``. Also: the saves (``os.replace`` calls onto the sessions
   file, counted by wrapping ``os.replace``) and the file size after the flush. All repeats
   run in one fresh child process (the hidden ``_burst`` sub-command), as Node's do in
   theirs: not in a process whose heap the other sections filled.
c. Flush (``flush``). Stores of about 1, 10 and 50 MB (100 sessions, distinct millisecond
   turn timestamps, written by the store itself): the time from one ``add_turn`` to the
   return of the ``flush()`` after it, next to the floor measured in the same run,
   alternating with it, on the same bytes (the file just written): ``os.open`` of a temp
   file (O_WRONLY|O_CREAT|O_EXCL, 0600), ``os.write``, ``os.fsync``, ``os.replace`` onto a
   sibling file in the same directory and ``fsync`` of the directory. Ratio = flush/floor
   (of the medians).
d. Load (``load``). The constructor ``factory(path, clock=...)`` on the same 1, 10 and 50 MB
   files (the clock is set one hour after the files' timestamps: the default clock would
   expire them); ``close()`` afterwards is not timed. In a fresh child process per file (the
   hidden ``_load`` sub-command), as Node's loads.
e. Memory (``memory``). In child processes (this script's hidden ``_memory`` sub-command),
   on the largest file (50 MB): a load (the constructor) and a save (``add_turn`` then
   ``flush()`` on a store loaded beforehand, untimed and unmeasured). Two methods, each in
   its own child, both started just before the measured step: ``tracemalloc`` peak (Python
   heap allocations of all threads, as requested: a buffer allocated but never touched
   counts in full) and resident memory growth (pages touched): on Linux VmHWM after
   resetting it through ``/proc/self/clear_refs`` minus VmRSS before; elsewhere
   ``getrusage(RUSAGE_SELF).ru_maxrss`` after minus before (which only shows what exceeds
   the earlier peak of the process, imports included). In MB (10^6 bytes) and as a
   multiple of the file size; each entry names its method.
f. Kit (``kit``). Wall time of ``python -m sessionspec verify TARGET --profile ci -q``
   (``--quick``: the smoke profile, one run) in a child process, with its exit status.
g. Node (``node``). benchmarks/node/upstream_model.mjs models codex-mcp-server's proposed
   FileSessionStorage (whole-store ``JSON.stringify(file, null, 2)`` per save, writeFile then
   rename, no fsync; see that file). It runs the same burst, the load of the same files and
   a flush after one change at 10 MB. Side by side: in each of ``node_rounds`` rounds a Node
   process runs the burst and the loads ``node_repeats`` times, then fresh Python processes
   run the same (``_burst``, ``_load``), so both sides see the same minutes of a machine
   whose speed drifts; the table puts the medians of all rounds next to each other with the
   ratio Node/Python (our flush is section c's, same file). Skipped with a message when
   ``node`` is missing.

The JSON result (``--out``, default benchmarks/results/perf.json, perf-quick.json with
``--quick``) records the machine (uname, CPU model, cores, Python and Node versions,
filesystem of the work directory), the date, the command and the git commit.
``--readme`` then writes benchmarks/README.md and benchmarks/results/flush-vs-size.png from
it (benchmarks/render.py, which also renders any saved result).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sessionspec.spec import ConversationTurn, SessionStorage

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODE_SCRIPT = HERE / "node" / "upstream_model.mjs"
DEFAULT_FACTORY = "sessionspec.reference:FileSessionStorage"
START = datetime(2026, 1, 1, tzinfo=UTC)
#: The clock of loads and latency stores: after every timestamp of the files, within the TTL.
LATER = START + timedelta(hours=1)
TEXT = 200
PROMPT, RESPONSE = "p" * TEXT, "r" * TEXT
OPS = ("add_turn", "ensure_session", "get_session", "list_sessions")
MB = 1_000_000

Factory = Callable[..., SessionStorage]


@dataclass(frozen=True)
class Config:
    """Sizes and repeats of one run (full or ``--quick``)."""

    latency_stores: tuple[tuple[int, int], ...]  # (sessions, turns per session)
    latency_calls: int  # calls per operation per repeat
    latency_repeats: int
    burst_sessions: int
    burst_turns: int
    burst_repeats: int
    sizes_mb: tuple[float, ...]  # flush, load and Node files; memory uses the largest
    flush_repeats: int
    load_repeats: int
    kit_profile: str
    kit_repeats: int
    node_rounds: int  # g: rounds, each one Node process then Python ones, same workloads
    node_repeats: int  # g: runs of each workload per process per round


FULL = Config(
    latency_stores=((10, 10), (10, 100), (10, 1000), (100, 10), (100, 100), (100, 1000),
                    (1, 100_000)),
    latency_calls=5000, latency_repeats=3,
    burst_sessions=100, burst_turns=10_000, burst_repeats=7,
    sizes_mb=(1, 10, 50), flush_repeats=7, load_repeats=5,
    kit_profile="ci", kit_repeats=3, node_rounds=5, node_repeats=5,
)  # fmt: skip
QUICK = Config(
    latency_stores=((10, 10), (100, 10), (10, 100), (1, 2000)),
    latency_calls=300, latency_repeats=2,
    burst_sessions=100, burst_turns=2000, burst_repeats=2,
    sizes_mb=(0.25, 0.5, 1), flush_repeats=3, load_repeats=2,
    kit_profile="smoke", kit_repeats=1, node_rounds=2, node_repeats=2,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Helpers


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    """A clock that always says ``moment``."""
    return lambda: moment


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of the repeats."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of a sorted list."""
    rank = max(1, -(-int(fraction * 10_000) * len(ordered) // 10_000))  # ceil without floats
    return ordered[min(rank, len(ordered)) - 1]


@contextmanager
def counting_saves(path: Path) -> Iterator[list[int]]:
    """Count ``os.replace`` calls onto ``path`` (any thread) while the block runs."""
    counter = [0]
    real_replace = os.replace
    target = os.fspath(path)

    def counting_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if os.fspath(dst) == target:
            counter[0] += 1
        real_replace(src, dst, **kwargs)

    os.replace = counting_replace
    try:
        yield counter
    finally:
        os.replace = real_replace


def turn_at(moment: datetime) -> ConversationTurn:
    return ConversationTurn(PROMPT, RESPONSE, moment)


def fill(storage: SessionStorage, sessions: int, turns: int) -> list[str]:
    """Create ``sessions`` sessions of ``turns`` turns each (distinct millisecond timestamps),
    with ``update_session(turns=...)``, then flush; return the ids."""
    ids = []
    for s in range(sessions):
        sid = storage.create_session()
        base = START + timedelta(milliseconds=s * turns)
        storage.update_session(
            sid, turns=[turn_at(base + timedelta(milliseconds=j)) for j in range(turns)]
        )
        ids.append(sid)
    storage.flush()
    return ids


def build_file(factory: Factory, path: Path, sessions: int, turns: int) -> int:
    """Write a sessions file with the store itself; return its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with factory(path, clock=fixed_clock(START)) as storage:
        fill(storage, sessions, turns)
    return path.stat().st_size


def turns_for_sizes(factory: Factory, work: Path, sizes_mb: tuple[float, ...]) -> list[int]:
    """Turns per session (100 sessions) for files of about each size, from two small files."""
    small = build_file(factory, work / "calibrate-10" / "sessions.json", 100, 10)
    large = build_file(factory, work / "calibrate-20" / "sessions.json", 100, 20)
    per_turn = (large - small) / 1000
    fixed = small - 1000 * per_turn
    return [max(1, round((size * MB - fixed) / per_turn / 100)) for size in sizes_mb]


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def floor_save(target: Path, data: bytes) -> None:
    """The floor: an atomic durable save of ``data`` with plain os calls, no serialisation."""
    temp = target.with_name(target.name + ".floor-tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, target)
    fsync_dir(target.parent)


def child_env() -> dict[str, str]:
    """The environment of child processes: this checkout first on PYTHONPATH."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def command_output(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def filesystem_of(path: Path) -> str:
    """Mount point and type of the filesystem holding ``path`` (from /proc/mounts)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    best = ("", "unknown")
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return f"{best[1]} on {best[0]}"


def machine(work: Path, node: str | None) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = command_output(["git", "rev-parse", "HEAD"])
    dirty = command_output(["git", "status", "--porcelain", "--", "sessionspec"])
    tracked = command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    import sessionspec

    return {
        "uname": " ".join(platform.uname()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "node": command_output([node, "--version"]) if node else None,
        "git_commit": commit,
        "sessionspec_modified": bool(dirty),  # uncommitted changes under sessionspec/
        "checkout_modified": bool(tracked),  # any uncommitted change to a tracked file
        "sessionspec_from": str(Path(sessionspec.__file__).parent),
        "work_filesystem": filesystem_of(work),
    }


# ---------------------------------------------------------------------------------------------
# a. Latency


def latency_repeat(
    storage: SessionStorage, ids: list[str], initial: dict[str, Any], calls: int, cap: int
) -> dict[str, list[int]]:
    """One repeat: ``calls`` rounds of the four operations; nanoseconds per call."""
    for sid, turns in initial.items():
        storage.update_session(sid, turns=turns)
    storage.flush()
    samples: dict[str, list[int]] = {op: [] for op in OPS}
    adds, ensures, gets, lists = (samples[op] for op in OPS)
    turn = turn_at(LATER)
    clock = time.perf_counter_ns
    reset_every = len(ids) * cap
    for i in range(calls):
        sid = ids[i % len(ids)]
        t0 = clock()
        storage.add_turn(sid, turn)
        t1 = clock()
        storage.ensure_session(sid)
        t2 = clock()
        storage.get_session(sid)
        t3 = clock()
        storage.list_sessions()
        t4 = clock()
        adds.append(t1 - t0)
        ensures.append(t2 - t1)
        gets.append(t3 - t2)
        lists.append(t4 - t3)
        if (i + 1) % reset_every == 0:
            for reset_id, turns in initial.items():
                storage.update_session(reset_id, turns=turns)
    return samples


def measure_latency(factory: Factory, work: Path, config: Config) -> list[dict[str, Any]]:
    results = []
    for sessions, turns in config.latency_stores:
        path = work / f"latency-{sessions}x{turns}" / "sessions.json"
        path.parent.mkdir(parents=True)
        with factory(path, clock=fixed_clock(LATER)) as storage:
            ids = fill(storage, sessions, turns)
            size = path.stat().st_size
            initial = {}
            for sid in ids:
                snapshot = storage.get_session(sid)
                assert snapshot is not None, "a session of the store is missing"
                initial[sid] = snapshot.turns
            per_op: dict[str, dict[str, list[float]]] = {
                op: {"p50": [], "p99": [], "p99.9": []} for op in OPS
            }
            saves = []
            for _ in range(config.latency_repeats):
                with counting_saves(path) as counter:
                    samples = latency_repeat(
                        storage, ids, initial, config.latency_calls, max(1, turns // 10)
                    )
                    saves.append(counter[0])
                for op, values in samples.items():
                    ordered = sorted(values)
                    for name, fraction in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)):
                        per_op[op][name].append(percentile(ordered, fraction) / 1000)
        results.append(
            {
                "sessions": sessions,
                "turns": turns,
                "file_bytes": size,
                "calls_per_op": config.latency_calls,
                "repeats": config.latency_repeats,
                "saves_during_repeat": saves,
                "us": {
                    op: {name: spread(values) for name, values in stats.items()}
                    for op, stats in per_op.items()
                },
            }
        )
        print(f"  latency {sessions} x {turns}: done", file=sys.stderr)
    return results


# ---------------------------------------------------------------------------------------------
# b. Burst


def burst_once(factory: Factory, path: Path, sessions: int, turns: int) -> tuple[float, int]:
    """One burst on a fresh path; (milliseconds, saves)."""
    path.parent.mkdir(parents=True)
    now = [START]
    with counting_saves(path) as counter, factory(path, clock=lambda: now[0]) as storage:
        began = time.perf_counter()
        ids = [storage.create_session() for _ in range(sessions)]
        for i in range(turns):
            now[0] = START + timedelta(milliseconds=i)
            storage.add_turn(ids[i % sessions], ConversationTurn(PROMPT, RESPONSE, now[0]))
        storage.flush()
        elapsed = time.perf_counter() - began
        saves = counter[0]
    return elapsed * 1000, saves


def burst_child(factory_target: str, work: Path, sessions: int, turns: int, repeats: int) -> Any:
    """The hidden sub-command ``_burst``: the bursts in this fresh process (as Node's run in
    theirs, not in a process that has run the other sections); [(ms, saves, bytes), ...]."""
    from sessionspec.conformance.loading import load_target

    factory: Factory = load_target(factory_target)
    runs = []
    for n in range(repeats):
        path = work / f"burst-{n}" / "sessions.json"
        ms, saves = burst_once(factory, path, sessions, turns)
        runs.append((ms, saves, path.stat().st_size))
    return runs


def run_child(*arguments: str) -> Any:
    """Run this script's hidden sub-command in a fresh process; its JSON output."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, env=child_env(), cwd=ROOT
    )
    return json.loads(done.stdout)


def measure_burst(factory_target: str, work: Path, config: Config) -> dict[str, Any]:
    runs = run_child(
        "_burst", factory_target, str(work), str(config.burst_sessions),
        str(config.burst_turns), str(config.burst_repeats),
    )  # fmt: skip
    times = [ms for ms, _, _ in runs]
    median = statistics.median(times)
    middle = min(runs, key=lambda run: abs(run[0] - median))
    return {
        "sessions": config.burst_sessions,
        "turns": config.burst_turns,
        "repeats": config.burst_repeats,
        "ms": spread(times),
        "saves": [saves for _, saves, _ in runs],
        "saves_median_run": middle[1],
        "file_bytes": middle[2],
    }


# ---------------------------------------------------------------------------------------------
# c. Flush vs floor, d. load


def measure_flush(
    factory: Factory, files: list[Path], work: Path, repeats: int
) -> list[dict[str, Any]]:
    results = []
    for source in files:
        path = work / f"flush-{source.parent.name}" / "sessions.json"
        path.parent.mkdir(parents=True)
        shutil.copyfile(source, path)
        floor_target = path.with_name("floor.json")
        data = path.read_bytes()
        floor_target.write_bytes(data)  # so that every floor save replaces a file too
        flushes, floors = [], []
        with factory(path, clock=fixed_clock(LATER)) as storage:
            sid = storage.list_sessions()[0].id
            turn = turn_at(LATER)
            for _ in range(repeats):
                began = time.perf_counter()
                storage.add_turn(sid, turn)
                storage.flush()
                flushes.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                floor_save(floor_target, data)
                floors.append((time.perf_counter() - began) * 1000)
        flush_ms, floor_ms = spread(flushes), spread(floors)
        results.append(
            {
                "file_bytes": len(data),
                "repeats": repeats,
                "flush_ms": flush_ms,
                "floor_ms": floor_ms,
                "ratio": flush_ms["median"] / floor_ms["median"],
            }
        )
    return results


def load_child(factory_target: str, path: Path, repeats: int) -> tuple[list[float], int]:
    """The hidden sub-command ``_load``: the loads in this fresh process (as Node's run in
    theirs); (milliseconds of each, sessions loaded)."""
    from sessionspec.conformance.loading import load_target

    factory: Factory = load_target(factory_target)
    times = []
    sessions = 0
    for _ in range(repeats):
        gc.collect()
        began = time.perf_counter()
        storage = factory(path, clock=fixed_clock(LATER))
        times.append((time.perf_counter() - began) * 1000)
        sessions = len(storage.list_sessions())
        storage.close()
        del storage
    return times, sessions


def measure_load(factory_target: str, files: list[Path], repeats: int) -> list[dict[str, Any]]:
    results = []
    for path in files:
        times, sessions = run_child("_load", factory_target, str(path), str(repeats))
        results.append(
            {
                "file_bytes": path.stat().st_size,
                "sessions": sessions,
                "repeats": repeats,
                "ms": spread(times),
            }
        )
    return results


# ---------------------------------------------------------------------------------------------
# e. Memory (child processes)


def proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_probe() -> Callable[[], tuple[str, int]]:
    """Start a resident-memory measurement; the returned callable gives (method, peak growth
    in bytes). Linux: reset VmHWM to VmRSS (``/proc/self/clear_refs``), then VmHWM after
    minus VmRSS before. Elsewhere: ``getrusage(RUSAGE_SELF).ru_maxrss`` after minus before,
    which shows only what exceeds the process's earlier peak (imports included)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = proc_status_kb("VmRSS")
    except OSError:
        before = None
    if before is not None:
        rss_before = before

        def hwm() -> tuple[str, int]:
            after = proc_status_kb("VmHWM")
            assert after is not None
            return "VmHWM (reset) - VmRSS", (after - rss_before) * 1024

        return hwm
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def maxrss() -> tuple[str, int]:
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return "ru_maxrss after - before", (after - maxrss_before) * 1024

    return maxrss


def memory_child(factory_target: str, what: str, method: str, path: Path) -> dict[str, Any]:
    """The hidden sub-command: one memory measurement in this (fresh) process; bytes."""
    from sessionspec.conformance.loading import load_target

    factory: Factory = load_target(factory_target)
    storage = None
    if what == "save":
        storage = factory(path, clock=fixed_clock(LATER))
        sid = storage.list_sessions()[0].id
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
    else:
        probe = rss_probe()
    if storage is None:
        storage = factory(path, clock=fixed_clock(LATER))
    else:
        storage.add_turn(sid, turn_at(LATER))
        storage.flush()
    if method == "tracemalloc":
        name, peak = "tracemalloc peak", tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        name, peak = probe()
    storage.close()
    return {"method": name, "peak_bytes": peak}


def measure_memory(factory_target: str, path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    results: dict[str, Any] = {"file_bytes": size}
    for what in ("load", "save"):
        for method in ("tracemalloc", "rss"):
            command = [sys.executable, str(Path(__file__).resolve()), "_memory", what, method,
                       str(path), "--factory", factory_target]  # fmt: skip
            done = subprocess.run(
                command, capture_output=True, text=True, check=False, env=child_env(), cwd=ROOT
            )
            if done.returncode != 0:
                entry: dict[str, Any] = {"peak_bytes": None, "error": done.stderr.strip()[-500:]}
            else:
                entry = json.loads(done.stdout)
            peak = entry.get("peak_bytes")
            entry["peak_mb"] = None if peak is None else peak / MB
            entry["multiple_of_file"] = None if peak is None else peak / size
            results[f"{what}_{method}"] = entry
    return results


# ---------------------------------------------------------------------------------------------
# f. The kit


def measure_kit(factory_target: str, work: Path, profile: str, repeats: int) -> dict[str, Any]:
    walls, codes = [], []
    command: list[str] = []
    for n in range(repeats):
        out = work / f"kit-{n}"
        out.mkdir()
        command = [sys.executable, "-m", "sessionspec", "verify", factory_target,
                   "--profile", profile, "-q", "--json", str(out / "report.json"),
                   "--replay-dir", str(out / "replays")]  # fmt: skip
        began = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env=child_env(), cwd=ROOT
        )
        walls.append(time.perf_counter() - began)
        codes.append(done.returncode)
    shown = shlex.join(["python", *command[1:8]]) + " --json DIR/report.json --replay-dir DIR"
    return {
        "profile": profile,
        "repeats": repeats,
        "command": shown,
        "s": spread(walls),
        "exit_codes": codes,
    }


# ---------------------------------------------------------------------------------------------
# g. Node


def measure_node(
    node: str,
    factory_target: str,
    work: Path,
    config: Config,
    files: list[Path],
    flush_file: Path,
) -> dict[str, Any]:
    """Node and Python in alternating rounds on the same workloads (see g. above)."""
    node_work = work / "node"
    node_work.mkdir()
    rounds: list[dict[str, Any]] = []
    python_burst: list[float] = []
    python_load: list[list[float]] = [[] for _ in files]
    for number in range(config.node_rounds):
        # Without --expose-gc: a full collection forced before each run made V8's burst
        # slower (75-86 ms against 48-56 ms, measured here), a bias against Node.
        command = [node, str(NODE_SCRIPT), "--work", str(node_work / f"round-{number}"),
                   "--repeat", str(config.node_repeats),
                   "--burst-sessions", str(config.burst_sessions),
                   "--burst-turns", str(config.burst_turns),
                   "--load", *map(str, files)]  # fmt: skip
        if number == 0:
            command += ["--flush", str(flush_file)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return {"skipped": f"node failed (exit {done.returncode}): {done.stderr[-500:]}"}
        rounds.append(json.loads(done.stdout))
        python_work = work / f"node-python-{number}"
        python_burst += [ms for ms, _, _ in run_child(
            "_burst", factory_target, str(python_work), str(config.burst_sessions),
            str(config.burst_turns), str(config.node_repeats),
        )]  # fmt: skip
        for times, path in zip(python_load, files, strict=True):
            times += run_child("_load", factory_target, str(path), str(config.node_repeats))[0]
    first = rounds[0]
    node_burst = [ms for one in rounds for ms in one["burst"]["ms"]["runs"]]
    return {
        "node": first["node"],
        "rounds": config.node_rounds,
        "repeat": config.node_repeats,
        "burst": {**first["burst"], "ms": spread(node_burst)},
        "load": [
            {**load, "ms": spread([ms for one in rounds for ms in one["load"][i]["ms"]["runs"]])}
            for i, load in enumerate(first["load"])
        ],
        "flush": first["flush"],
        "python": {
            "burst_ms": spread(python_burst),
            "load_ms": [spread(times) for times in python_load],
        },
    }


def compare_node(node: dict[str, Any], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of Node figures next to ours (from the same rounds; the flush from section c),
    with the ratio Node/Python of the medians."""
    rows = []

    def add(what: str, node_ms: float, python_ms: float) -> None:
        rows.append(
            {"what": what, "node_ms": node_ms, "python_ms": python_ms, "ratio": node_ms / python_ms}
        )

    burst = node["burst"]
    add(
        f"burst ({burst['sessions']} creates + {burst['turns']} add_turn + flush)",
        burst["ms"]["median"],
        node["python"]["burst_ms"]["median"],
    )
    for node_load, python_ms in zip(node["load"], node["python"]["load_ms"], strict=True):
        add(
            f"load {node_load['file_bytes'] / MB:.1f} MB",
            node_load["ms"]["median"],
            python_ms["median"],
        )
    flush = node["flush"]
    py_flush = min(ours["flush"], key=lambda row: abs(row["file_bytes"] - flush["file_bytes"]))
    add(
        f"flush after one change {flush['file_bytes'] / MB:.1f} MB",
        flush["ms"]["median"],
        py_flush["flush_ms"]["median"],
    )
    return rows


# ---------------------------------------------------------------------------------------------
# Main


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sessionspec.conformance.loading import load_target

    config = QUICK if args.quick else FULL
    if args.kit_repeats:
        config = replace(config, kit_repeats=args.kit_repeats)
    factory: Factory = load_target(args.factory)
    node = None if args.no_node else shutil.which("node")
    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "factory": args.factory,
        "config": asdict(config),
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sessionspec-perf-", dir=args.dir) as temp:
        work = Path(temp)
        result["machine"] = machine(work, node)
        print("a. latency", file=sys.stderr)
        result["latency"] = measure_latency(factory, work, config)
        print("b. burst", file=sys.stderr)
        result["burst"] = measure_burst(args.factory, work, config)
        print("files", file=sys.stderr)
        counts = turns_for_sizes(factory, work, config.sizes_mb)
        files = []
        for size, turns in zip(config.sizes_mb, counts, strict=True):
            path = work / f"size-{size:g}MB" / "sessions.json"
            build_file(factory, path, 100, turns)
            files.append(path)
        print("c. flush", file=sys.stderr)
        result["flush"] = measure_flush(factory, files, work, config.flush_repeats)
        print("d. load", file=sys.stderr)
        result["load"] = measure_load(args.factory, files, config.load_repeats)
        print("e. memory", file=sys.stderr)
        result["memory"] = measure_memory(args.factory, files[-1])
        if args.no_kit:
            result["kit"] = {"skipped": "--no-kit"}
        else:
            print("f. kit", file=sys.stderr)
            result["kit"] = measure_kit(args.factory, work, config.kit_profile, config.kit_repeats)
        if node is None:
            reason = "--no-node" if args.no_node else "node is not installed (not on PATH)"
            result["node"] = {"skipped": reason}
        else:
            print("g. node", file=sys.stderr)
            flush_file = files[len(files) // 2]
            result["node"] = measure_node(node, args.factory, work, config, files, flush_file)
            if "skipped" not in result["node"]:
                result["node"]["comparison"] = compare_node(result["node"], result)
    result["duration_s"] = time.perf_counter() - began
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_burst"]:  # hidden sub-command: the bursts in a fresh process (section b)
        target, work, sessions, turns, repeats = argv[1:6]
        print(json.dumps(burst_child(target, Path(work), int(sessions), int(turns), int(repeats))))
        return 0
    if argv[:1] == ["_load"]:  # hidden sub-command: the loads in a fresh process (section d)
        target, path, repeats = argv[1:4]
        print(json.dumps(load_child(target, Path(path), int(repeats))))
        return 0
    if argv[:1] == ["_memory"]:  # hidden sub-command: one memory measurement (section e)
        child = argparse.ArgumentParser(prog="perf.py _memory")
        child.add_argument("what", choices=("load", "save"))
        child.add_argument("method", choices=("tracemalloc", "rss"))
        child.add_argument("path", type=Path)
        child.add_argument("--factory", default=DEFAULT_FACTORY)
        ns = child.parse_args(argv[1:])
        print(json.dumps(memory_child(ns.factory, ns.what, ns.method, ns.path)))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (< 1 min)")
    parser.add_argument("--out", type=Path, help="JSON result (default benchmarks/results/...)")
    parser.add_argument("--factory", default=DEFAULT_FACTORY, help="factory(path, *, clock)")
    parser.add_argument("--dir", help="where to put the files (default: a temp directory)")
    parser.add_argument("--readme", action="store_true", help="write README.md and the plot")
    parser.add_argument("--no-node", action="store_true", help="skip the Node comparison")
    parser.add_argument("--no-kit", action="store_true", help="skip the kit's run time")
    parser.add_argument("--kit-repeats", type=int, help="runs of the kit (default 3; quick 1)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # factories under benchmarks/ or tests/ as module:attr
    import render

    result = run(args)
    out: Path = args.out or HERE / "results" / ("perf-quick.json" if args.quick else "perf.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(render.text(result))
    print(f"\nwritten {out}")
    if args.readme:
        for written in render.write_all(result, HERE / "README.md", HERE / "results"):
            print(f"written {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
