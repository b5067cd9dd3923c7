"""Injected I/O errors (EIO) on a save, one site at a time, with strace (B22, SPEC.md §4.1,
§4.5).

A real child process (:mod:`sessionspec.conformance.child_injected`) runs the target backend
through three saves; the second must fail. strace makes it fail: ``-e inject=SYSCALL:error=
EIO:when=K`` fails the K-th call of SYSCALL of each thread (strace 6.1 counts per thread and
per syscall: a new thread starts at 0). K comes from a calibration run of the same
deterministic scenario, traced with ``-y`` (descriptors shown with their paths): the ordinal,
in its thread, of the target call of the second save. The sites:

- ``write``: the first write to the temp file;
- ``fsync``: the temp file's (last) fsync before the rename;
- ``rename``: the rename of the temp file over the file;
- ``directory fsync``: the directory's fsync after that rename.

Each check then expects what B22 says of a failed save: flush() raised OSError, memory kept the
change, no temp file is left, the file is byte-identical to before the save (the complete new
version after a failed directory fsync), and the next flush() writes the full state (after a
failed directory fsync: saves again, with a directory fsync of its own). The injection log
shows which call was failed: a run whose injection missed its target is not judged.

strace attaches to a process forked from one that imported the backend already (``-p``), so a
run costs milliseconds, not a Python start: the five runs of the ``smoke`` profile (one
calibration, one per site) cost about 0.5 s of CPU in all, 0.55 s of wall time when idle.

Over stdio (TARGET ``stdio:CMD``, PROTOCOL.md §6) the forked run drives an adapter of its own,
started under strace (``SESSIONSPEC_STDIO_WRAP``): strace traces the adapter and its threads
and children only, never the kit's process that writes the requests. The marks are then
requests the adapter reads (``read`` is traced too, ``-s`` long enough to show them). The
adapter's writes of its responses count like any other: a backend that writes the temp file
with ``write`` from another thread than the one that writes the responses cannot be targeted
(the site is not run, with the reason). An adapter start costs what it costs (the reference's
Python adapter ~0.3 s, under strace): about 1-2 s of wall time for the five runs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sessionspec.conformance.child import session_as_json
from sessionspec.conformance.child_injected import MARKER, MARKER_ID
from sessionspec.conformance.clock import epoch_ms
from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.loading import child_environment
from sessionspec.conformance.registry import (
    CheckNotRun,
    PreconditionFailed,
    check,
)
from sessionspec.conformance.stdio import is_stdio_target

#: The child of these checks, run as ``python -m CHILD TARGET EPOCH_MS``.
CHILD = "sessionspec.conformance.child_injected"
WRITES = ("write", "pwrite64", "writev", "pwritev", "pwritev2")
SYNCS = ("fsync", "fdatasync")
RENAMES = ("rename", "renameat", "renameat2")
STRACE_CALLS = ",".join(("openat", *WRITES, *SYNCS, *RENAMES))
#: Over stdio the adapter's reads of its requests are traced too: the marks are requests.
READS = ("read",)
STRACE_CALLS_OVER_STDIO = ",".join((STRACE_CALLS, *READS))
#: strace's -s over stdio: enough of a read to show the marker request's session id.
STRACE_STRING = 256
#: Runs per site, by profile: one judges a deterministic backend; more, a flaky one.
RUNS_PER_SITE = {"smoke": 1, "ci": 1, "thorough": 3}
#: Traced runs side by side: each mostly waits for the disk (fsync).
PARALLEL_RUNS = 4
#: A bound on one traced run (it takes milliseconds), for a backend that hangs.
RUN_TIMEOUT = 30.0
HUNG = "the run did not end within"


@dataclass(frozen=True)
class Site:
    """Where a save fails: ``key`` names it in reports, ``what`` in messages."""

    key: str
    what: str
    after_rename: bool = False


WRITE = Site("write", "writing the temp file")
FSYNC = Site("fsync", "fsyncing the temp file")
RENAME = Site("rename", "renaming the temp file over the file")
DIRECTORY_FSYNC = Site("directory-fsync", "fsyncing the directory after the rename", True)
SITES = (WRITE, FSYNC, RENAME, DIRECTORY_FSYNC)


# -- strace logs ----------------------------------------------------------------------------
@dataclass
class Call:
    """One system call of a ``strace -f -y`` log, in the order the calls started."""

    pid: int
    name: str
    args: str
    result: str = ""

    @property
    def fd_path(self) -> str:
        """The path ``-y`` shows for the first argument, a descriptor ("" if none)."""
        match = re.match(r"\d+<([^>]*)>", self.args)
        return match[1] if match else ""

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return bool(self.result) and not self.result.startswith("-1")

    @property
    def injected(self) -> bool:
        """Whether strace failed this call (B22's injection)."""
        return "(INJECTED)" in self.result

    def renamed(self) -> tuple[str, str] | None:
        """(source, destination) of a rename, made absolute with ``-y``'s directory paths."""
        if self.name not in RENAMES:
            return None
        match = re.match(
            r'(?:(?:AT_FDCWD|\d+)<(?P<d1>[^>]*)>, )?"(?P<src>[^"]*)", '
            r'(?:(?:AT_FDCWD|\d+)<(?P<d2>[^>]*)>, )?"(?P<dst>[^"]*)"',
            self.args,
        )
        if not match:
            return None
        cwd = os.getcwd()  # the child's: it runs in this process's directory
        src = os.path.join(match["d1"] or cwd, match["src"])
        return src, os.path.join(match["d2"] or match["d1"] or cwd, match["dst"])


_LINE = re.compile(r"\A(?P<pid>\d+)\s+(?P<name>\w+)\((?P<rest>.*)\Z")
_RESUMED = re.compile(r"\A(?P<pid>\d+)\s+<\.\.\. (?P<name>\w+) resumed>(?P<rest>.*)\Z")
_RESULT = re.compile(r"\A(?P<args>.*)\)\s+= (?P<result>.*)\Z")


def parse_calls(text: str) -> list[Call]:
    """The calls of a ``strace -f -y`` log, unfinished ones joined with their resumption
    (B22: what the calibration counts and the injected run shows)."""
    calls: list[Call] = []
    pending: dict[int, Call] = {}
    for line in text.splitlines():
        if match := _RESUMED.match(line):
            call = pending.pop(int(match["pid"]), None)
            ended = _RESULT.match(match["rest"])
            if call is not None and ended:
                call.args += ended["args"]
                call.result = ended["result"]
        elif match := _LINE.match(line):
            call = Call(int(match["pid"]), match["name"], "")
            rest = match["rest"]
            if rest.endswith("<unfinished ...>"):
                call.args = rest.removesuffix("<unfinished ...>").rstrip()
                pending[call.pid] = call
            elif ended := _RESULT.match(rest):
                call.args, call.result = ended["args"], ended["result"]
            calls.append(call)
    return calls


_REQUEST_MARK = re.compile(re.escape(MARKER_ID) + r"(?P<name>[\w-]+)")


def _marks(calls: list[Call]) -> dict[str, int]:
    """Index in ``calls`` of each marker the child left: an openat of ``MARKER/<name>`` in the
    child, or, over stdio, the adapter's read of the request that names it."""
    found = {}
    for index, call in enumerate(calls):
        if call.name == "openat" and f'"{MARKER}/' in call.args:
            name = call.args.split(f'"{MARKER}/', 1)[1].split('"', 1)[0]
            found[name] = index
        elif call.name in READS and call.ok and (match := _REQUEST_MARK.search(call.args)):
            found.setdefault(match["name"], index)
    return found


# -- calibration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The K-th call named ``syscall`` of its thread: what ``when=K`` fails."""

    syscall: str
    ordinal: int


@dataclass
class Calibration:
    """The scenario without a fault: its report, and the call to fail for each site (or why
    there is none: ``missing``, the rule it needs; ``ambiguous``, a thread strace cannot
    target)."""

    report: dict[str, Any]
    targets: dict[str, Target] = field(default_factory=dict)
    missing: dict[str, PreconditionFailed] = field(default_factory=dict)
    ambiguous: dict[str, str] = field(default_factory=dict)


def temp_pattern(path: Path) -> re.Pattern[str]:
    """``<name>.<unique>.tmp`` beside ``path`` (B19)."""
    return re.compile(re.escape(path.name) + r"\..+\.tmp\Z")


def find_sites(
    calls: list[Call], path: Path
) -> tuple[dict[str, int], dict[str, PreconditionFailed]]:
    """Index in ``calls`` of each site's call in the second save, and, for a site without
    one, the rule it needs: B19 (what a save does), or B21 when the call came only after
    flush() returned."""
    marks = _marks(calls)
    if "save-2" not in marks or "save-3" not in marks:
        raise RuntimeError(f"the child's markers are missing from the strace log: {marks}")
    window = range(marks["save-2"], marks["save-3"])
    later = range(marks["save-3"], len(calls))

    def renames(indexes: range) -> list[int]:
        return [i for i in indexes if calls[i].ok and is_site(calls[i], RENAME, path)]

    if not (over := renames(window)):
        if renames(later):
            late = PreconditionFailed("B21", "flush() returned before the save's rename")
        else:
            late = PreconditionFailed(
                "B19", "the save did not rename a temp file <name>.<unique>.tmp over the file"
            )
        return {}, {site.key: late for site in SITES}
    rename = over[0]
    renamed = calls[rename].renamed()
    source = renamed[0] if renamed else ""
    name = os.path.basename(source)
    found = {"rename": rename}
    missing: dict[str, PreconditionFailed] = {}
    on_temp = [i for i in window if i < rename and calls[i].fd_path == source]
    if writes := [i for i in on_temp if calls[i].name in WRITES]:
        found["write"] = writes[0]
    else:
        missing["write"] = PreconditionFailed("B19", f"nothing was written to {name}")
    if syncs := [i for i in on_temp if calls[i].name in SYNCS]:
        found["fsync"] = syncs[-1]
    else:
        missing["fsync"] = PreconditionFailed("B19", f"{name} was not fsynced before the rename")
    if after := [i for i in window if i > rename and is_site(calls[i], DIRECTORY_FSYNC, path)]:
        found["directory-fsync"] = after[0]
    elif any(is_site(calls[i], DIRECTORY_FSYNC, path) for i in later):
        missing["directory-fsync"] = PreconditionFailed(
            "B21", "flush() returned before the directory's fsync after the rename"
        )
    else:
        missing["directory-fsync"] = PreconditionFailed(
            "B19", "the directory was not fsynced after the rename"
        )
    return found, missing


def is_site(call: Call, site: Site, path: Path) -> bool:
    """Whether ``call`` is one ``site`` names (B22): a write or fsync of a temp file beside
    ``path`` (B19's name), a rename of one over it, an fsync of its directory."""
    temp = temp_pattern(path)
    if site in (WRITE, FSYNC):
        syscalls = WRITES if site is WRITE else SYNCS
        return call.name in syscalls and bool(temp.match(os.path.basename(call.fd_path)))
    if site is RENAME:
        names = call.renamed()
        return bool(names and names[1] == str(path) and temp.match(os.path.basename(names[0])))
    return call.name in SYNCS and call.fd_path.rstrip("/") == str(path.parent)


def resaved_after(calls: list[Call], failed: int, path: Path) -> bool:
    """Whether, after the failed call at ``failed``, a whole save succeeded (B22): a write and
    an fsync of a temp file, then its rename over ``path``, in that order. A swallowed error
    shows no such save: its save just went on. (The directory's fsync after it is B19's.)"""
    steps = iter(calls[failed + 1 :])  # one iterator: each step is looked for after the last
    return all(
        any(call.ok and is_site(call, site, path) for call in steps)
        for site in (WRITE, FSYNC, RENAME)
    )


def calibrate(report: dict[str, Any], log: str, path: Path) -> Calibration:
    """Which call of which thread to fail for each site (B22), from the calibration run's
    log."""
    calls = parse_calls(log)
    found, missing = find_sites(calls, path)
    result = Calibration(report, missing=missing)
    per_thread: Counter[tuple[int, str]] = Counter((c.pid, c.name) for c in calls)
    for key, index in found.items():
        call = calls[index]
        ordinal = sum(1 for c in calls[: index + 1] if c.pid == call.pid and c.name == call.name)
        # when=K fails the K-th call of every thread: another thread that makes as many would
        # be failed too.
        others = [pid for (pid, name), n in per_thread.items()
                  if name == call.name and pid != call.pid and n >= ordinal]  # fmt: skip
        if others:
            result.ambiguous[key] = (
                f"the {key} call is {call.name} number {ordinal} of its thread, and another"
                f" thread makes as many {call.name} calls: strace's when={ordinal} would fail"
                " both"
            )
        else:
            result.targets[key] = Target(call.name, ordinal)
    return result


# -- running the child --------------------------------------------------------------------
@dataclass
class Run:
    """One traced run of the scenario: the child's report and the strace log."""

    report: dict[str, Any] | None
    log: str
    problem: str = ""


def strace_refused(stderr: str) -> bool:
    """Whether strace said it may not trace (B22's checks then cannot inject)."""
    return "ptrace" in stderr.lower() or "operation not permitted" in stderr.lower()


class Server:
    """The serving child (:mod:`sessionspec.conformance.child_injected`): forks one traced
    run per :meth:`start`."""

    def __init__(self, strace: str, target: str, epoch: int, workdir: Path) -> None:
        self.strace = strace
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self._stderr = (workdir / "child.stderr").open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", CHILD, target, str(epoch)],
            env=child_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True,
        )  # fmt: skip
        self._count = 0
        #: Over stdio a run starts its adapter under strace: only the adapter is traced.
        self.over_stdio = is_stdio_target(target)

    def start(self, path: Path, inject: Target | None) -> Callable[[], Run]:
        """Fork a run on ``path`` under strace (failing ``inject``, B22); returns its
        waiter."""
        self._count += 1
        base = self.workdir / f"run-{self._count}"
        go, out, log = (Path(f"{base}.{suffix}") for suffix in ("go", "json", "strace"))
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the serving child has no pipes")
        wrap = ""
        if self.over_stdio:
            command = [self.strace, "-f", "-y", "-s", str(STRACE_STRING), "-o", str(log),
                       "-e", f"trace={STRACE_CALLS_OVER_STDIO}"]  # fmt: skip
            if inject is not None:
                command += ["-e", f"inject={inject.syscall}:error=EIO:when={inject.ordinal}"]
            wrap = "\t" + json.dumps([*command, "--"])
        stdin.write(f"{path}\t{go}\t{out}{wrap}\n")
        stdin.flush()
        # Bounded: a target whose import hangs must not hang the kit.
        # A selector, not select(): in a long test run descriptors pass 1024, which select()
        # cannot watch.
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            ready = selector.select(RUN_TIMEOUT)
        line = stdout.readline() if ready else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"the serving child did not start a run: {self.stderr()}")
        pid = int(line)
        if self.over_stdio:
            go.touch()  # the run's adapter starts under strace: nothing to attach to
            deadline = time.monotonic() + RUN_TIMEOUT
            return lambda: self._finish_over_stdio(pid, out, log, deadline)
        command = [self.strace, "-f", "-y", "-o", str(log), "-e", f"trace={STRACE_CALLS}"]
        if inject is not None:
            command += ["-e", f"inject={inject.syscall}:error=EIO:when={inject.ordinal}"]
        tracer = subprocess.Popen(
            [*command, "-p", str(pid)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        attached, said = _attached(tracer.stderr)
        # The run starts only once strace stops its thread: every call of it is counted.
        go.touch()
        if not attached:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)  # it is ours (forked for this run); it must not hang
        deadline = time.monotonic() + RUN_TIMEOUT  # from the start: runs overlap
        return lambda: self._finish(tracer, pid, out, log, attached, said, deadline)

    def _finish(
        self,
        tracer: subprocess.Popen[str],
        pid: int,
        out: Path,
        log: Path,
        attached: bool,
        said: str,
        deadline: float,
    ) -> Run:
        try:
            _, errors = tracer.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.communicate()
            with contextlib.suppress(OSError):
                os.kill(pid, 9)  # the run we forked, hung: the serving child then reaps it
            return Run(None, "", f"{HUNG} {RUN_TIMEOUT} s: a flush() or close() hangs")
        text = log.read_text(errors="replace") if log.exists() else ""
        if not attached:
            return Run(None, text, f"strace could not attach: {(said + errors).strip()[-500:]}")
        if not out.exists():
            return Run(None, text, f"the run wrote no report: {self.stderr()[-2000:]}")
        report: dict[str, Any] = json.loads(out.read_text())
        return Run(report, text)

    def _finish_over_stdio(self, pid: int, out: Path, log: Path, deadline: float) -> Run:
        """Wait for a run over stdio: its ``.done`` file comes once its adapter (and the
        strace it runs under) ended and its report is written."""
        done = Path(f"{out}.done")
        while not done.exists():
            if time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.killpg(pid, 9)  # the run's group: the run, its strace, its adapter
                return Run(None, "", f"{HUNG} {RUN_TIMEOUT} s: a flush() or close() hangs")
            time.sleep(0.002)
        why = done.read_text(errors="replace")
        text = log.read_text(errors="replace") if log.exists() else ""
        if "hung: the adapter did not answer" in why:
            return Run(None, text, f"{HUNG} the step timeout: {why[:500]}")
        if not out.exists():
            return Run(None, text, f"the run wrote no report: {why[-2000:]}")
        report: dict[str, Any] = json.loads(out.read_text())
        return Run(report, text)

    def stderr(self) -> str:
        """What the serving child and its runs wrote to stderr (B22 diagnostics)."""
        self._stderr.seek(0)
        return self._stderr.read()

    def close(self) -> None:
        """End the serving child once its runs ended (B22)."""
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._stderr.close()


def _attached(stream: IO[str] | None) -> tuple[bool, str]:
    """Whether strace said "Process N attached" before it ended, and what it said."""
    seen = []
    while stream is not None and (line := stream.readline()):
        seen.append(line)
        if "attached" in line:
            return True, "".join(seen)
    return False, "".join(seen)


@contextlib.contextmanager
def server(target: str, epoch: int, workdir: Path) -> Iterator[Server]:
    """A serving child for ``target`` (B22); CheckNotRun when strace is missing."""
    strace = shutil.which("strace")
    if strace is None:
        raise CheckNotRun("strace is not installed: errors cannot be injected into a save")
    serving = Server(strace, target, epoch, workdir)
    try:
        yield serving
    finally:
        serving.close()


# -- comparing files ------------------------------------------------------------------------
def decoded(data: str | None) -> bytes | None:
    """The bytes of a file as the child reports them (B22), or None for no file."""
    return None if data is None else base64.b64decode(data)


def describe(data: bytes | None) -> str:
    """A file's bytes, shortened, for a B22 failure message."""
    if data is None:
        return "no file"
    return f"{len(data)} bytes: {data[:120]!r}{'...' if len(data) > 120 else ''}"


def state_of(open_store: Callable[[Path], Any], data: bytes, scratch: Path) -> Any:
    """What a fresh instance reads from ``data`` (in a file of its own under ``scratch``):
    how B22's checks compare files that differ in bytes."""
    path = Path(tempfile.mkdtemp(dir=scratch)) / "store" / "sessions.json"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(data)
    store = open_store(path)
    try:
        # Through a JSON round trip, so lone surrogates compare like the child's output.
        return json.loads(json.dumps([session_as_json(s) for s in store.list_sessions()]))
    finally:
        store.close()


def same_state(
    open_store: Callable[[Path], Any], found: bytes | None, wanted: bytes | None, scratch: Path
) -> bool:
    """Whether ``found`` holds what ``wanted`` (the same backend's save without a fault)
    does (B22): the same bytes, or, for a backend whose files differ from save to save, the same
    sessions once read back."""
    if found == wanted:
        return True
    if found is None or wanted is None:
        return False
    try:
        return bool(state_of(open_store, found, scratch) == state_of(open_store, wanted, scratch))
    except Exception:  # a file the backend cannot read back is not the state
        return False


# -- judging one run ------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a run shows for one site; ``problems`` is empty when B22 held."""

    site: Site
    raised: bool = False
    #: flush() returned after a whole new save (a backend that saves inside the mutation).
    resaved: bool = False
    file_kept: bool = False  # byte-identical before the rename, the new version after it
    temps: list[str] = field(default_factory=list)
    recovered: bool = False
    problems: list[str] = field(default_factory=list)


def judge(
    site: Site,
    run: Run,
    calibration: Calibration,
    path: Path,
    open_store: Callable[[Path], Any],
    scratch: Path,
) -> Outcome:
    """What B22 says of the run in which ``site`` failed once with EIO."""
    report = run.report
    if report is None and run.problem.startswith(HUNG):
        return Outcome(site, problems=[f"{site.what} failed with EIO: {run.problem}"])
    if report is None:
        raise RuntimeError(f"{site.what}: {run.problem}")
    calls = parse_calls(run.log)
    marks = _marks(calls)
    window = calls[marks.get("save-2", 0) : marks.get("save-3", 0)]
    hit = [c for c in calls if c.injected]
    if len(hit) != 1 or not any(c is hit[0] for c in window) or not is_site(hit[0], site, path):
        shown = [f"{c.name}({c.args[:80]})" for c in hit] or "no call"
        raise CheckNotRun(
            f"{site.what}: the injection missed (it failed {shown}): this backend's calls"
            " differ from one run of the scenario to the next"
        )
    outcome = Outcome(site)
    failed = report["failed"]
    outcome.raised = bool(failed and failed["oserror"])
    before, after = decoded(report["before"]), decoded(report["after"])
    outcome.resaved = failed is None and resaved_after(calls, calls.index(hit[0]), path)
    if not outcome.resaved and not outcome.raised:
        what = "returned normally" if failed is None else f"raised {failed['type']}"
        outcome.problems.append(
            f"{site.what} failed with EIO and flush() {what}: it must raise OSError (or save"
            " again, whole, before it returns)"
        )
    if outcome.resaved or site.after_rename:
        # Either a backend that saves inside the mutation (write-through, SPEC.md §4.7) met
        # the error there and its flush() saved again, whole: nothing lost, nothing hidden;
        # or the error came after the rename, which cannot be undone safely. Either way the
        # file must hold the complete new state.
        new = decoded(calibration.report["after"])
        outcome.file_kept = same_state(open_store, after, new, scratch)
        if not outcome.file_kept:
            why = (
                "and flush() saved again and returned: the file must then hold the new state"
                if outcome.resaved
                else ": the rename cannot be undone safely, so the file must hold the complete"
                " new version"
            )
            outcome.problems.append(
                f"{site.what} failed {why}; found {describe(after)}, expected {describe(new)}"
            )
    else:
        outcome.file_kept = after == before
        if not outcome.file_kept:
            outcome.problems.append(
                f"{site.what} failed: the file must be byte-identical to before the save;"
                f" found {describe(after)}, was {describe(before)}"
            )
    outcome.temps = [name for name in report["entries"] if temp_pattern(path).match(name)]
    if outcome.temps:
        outcome.problems.append(
            f"{site.what} failed: the save must leave no temp file of its own behind; found"
            f" {outcome.temps}"
        )
    if report["memory_after"] != calibration.report["memory_after"]:
        outcome.problems.append(
            f"{site.what} failed: memory must keep every change; it holds"
            f" {report['memory_after']!r:.300}, not {calibration.report['memory_after']!r:.300}"
        )
    retried = report["retried"]
    final, full = decoded(report["final"]), decoded(calibration.report["final"])
    outcome.recovered = retried is None and same_state(open_store, final, full, scratch)
    if retried is not None:
        outcome.problems.append(
            f"{site.what} failed once; the next flush() must succeed, it raised"
            f" {retried['type']}: {retried['message']}"
        )
    elif not outcome.recovered:
        outcome.problems.append(
            f"{site.what} failed once; the next flush() must write the full state: the file"
            f" holds {describe(final)}, expected {describe(full)}"
        )
    if site.after_rename and not outcome.resaved:  # a resave fsynced the directory already
        synced = any(
            c.ok and c.name in SYNCS and c.fd_path.rstrip("/") == str(path.parent)
            for c in calls[marks.get("save-3", len(calls)) : marks.get("saved", len(calls))]
        )
        if not synced:
            outcome.recovered = False
            outcome.problems.append(
                f"{site.what} failed; the next flush() must save again to make the rename"
                " durable, but it fsynced no directory (it counted the state as saved)"
            )
    return outcome


#: Per site, the outcomes of its runs, or why it could not be judged.
SiteResults = dict[str, list[Outcome] | Exception]


# -- the checks -----------------------------------------------------------------------------
def run_sites(
    target: str,
    epoch: int,
    workdir: Path,
    open_store: Callable[[Path], Any],
    runs_per_site: int = 1,
    sites: tuple[Site, ...] = SITES,
    parallel: int = PARALLEL_RUNS,
) -> tuple[Calibration, SiteResults]:
    """Calibrate, then inject each site ``runs_per_site`` times (``parallel`` runs at a time)
    and judge each run by B22: per site, the outcomes, or why the site could not be judged.
    The checks and benchmarks/eio_injection.py both run this."""
    # Resolved: strace shows descriptors by their real paths, renames as the backend named them.
    workdir = Path(os.path.realpath(workdir))
    with server(target, epoch, workdir) as serving:
        path = workdir / "calibration" / "store" / "sessions.json"
        run = serving.start(path, None)()
        if run.report is None:
            if strace_refused(run.problem):
                raise CheckNotRun(f"ptrace is refused here: {run.problem}")
            raise RuntimeError(f"the calibration run failed: {run.problem}")
        raised = [run.report[k] for k in ("first", "failed", "retried") if run.report[k]]
        if raised:
            # Without a fault every flush() must succeed (B21): no failure to judge then.
            raise PreconditionFailed("B21", f"flush() raised without any fault: {raised[0]}")
        try:
            calibration = calibrate(run.report, run.log, path)
        except RuntimeError as exc:  # the marks are missing
            if not serving.over_stdio:
                raise
            raise CheckNotRun(
                f"{exc}: over stdio they are requests, which the adapter must read with read"
                " (PROTOCOL.md §6)"
            ) from exc
        results: SiteResults = {}
        jobs: list[tuple[Site, Path]] = []
        for site in sites:
            if site.key in calibration.missing:
                results[site.key] = calibration.missing[site.key]
            elif site.key in calibration.ambiguous:
                results[site.key] = CheckNotRun(calibration.ambiguous[site.key])
            else:
                results[site.key] = []
                jobs += [
                    (site, workdir / f"{site.key}-{index}" / "store" / "sessions.json")
                    for index in range(runs_per_site)
                ]

        def settle(site: Site, run_path: Path, finish: Callable[[], Run]) -> None:
            outcomes = results[site.key]
            try:
                done = finish()  # first, always: no run outlives the server
                if isinstance(outcomes, list):
                    outcomes.append(judge(site, done, calibration, run_path, open_store, workdir))
            except Exception as exc:  # reported under this site's check
                results[site.key] = exc

        pending: deque[tuple[Site, Path, Callable[[], Run]]] = deque()
        for site, run_path in jobs:
            if len(pending) >= parallel:
                settle(*pending.popleft())
            pending.append((site, run_path, serving.start(run_path, calibration.targets[site.key])))
        while pending:
            settle(*pending.popleft())
        return calibration, results


def _site_results(ctx: CheckContext) -> SiteResults:
    """Every site's outcomes, computed once per run (one calibration, side by side runs)."""
    cached: SiteResults | Exception | None = ctx.run.cache.get("injected")
    if cached is None:
        if ctx.run.target is None:
            cached = CheckNotRun(
                "the factory is not importable by name, so no child process can run it:"
                " errors cannot be injected into its saves"
            )
        else:
            workdir = ctx.run.workdir / "injected"

            def open_store(path: Path) -> Any:
                return ctx.run.factory(path, clock=ctx.clock)

            runs = RUNS_PER_SITE.get(ctx.run.profile.name, 1)
            try:
                _, cached = run_sites(
                    ctx.run.target, epoch_ms(ctx.clock()), workdir, open_store, runs
                )
            except Exception as exc:  # CheckNotRun included: every site says it
                cached = exc
        ctx.run.cache["injected"] = cached
    if isinstance(cached, Exception):
        raise cached
    return cached


def _judge_site(ctx: CheckContext, site: Site) -> None:
    result = _site_results(ctx).get(site.key)
    if isinstance(result, Exception):
        if isinstance(result, CheckNotRun):
            ctx.notes.append(str(result))
        raise result
    if result is None:
        raise CheckNotRun(f"{site.what}: not run")
    for outcome in result:
        ctx.expect(not outcome.problems, outcome.problems[0] if outcome.problems else "",
                   actual=outcome.problems)  # fmt: skip
    ctx.notes.append(f"EIO injected with strace at {site.what}, {len(result)} run(s)")


@check("B22")
def eio_writing_the_temp_file(ctx: CheckContext) -> None:
    """B22: EIO writing the temp file: flush() raises, file as it was, no temp, then saves.

    The file must stay byte-identical; the next flush() must write the full state."""
    _judge_site(ctx, WRITE)


@check("B22")
def eio_fsyncing_the_temp_file(ctx: CheckContext) -> None:
    """B22: EIO fsyncing the temp file: flush() raises, file as it was, no temp, then saves.

    The file must stay byte-identical; the next flush() must write the full state."""
    _judge_site(ctx, FSYNC)


@check("B22")
def eio_renaming_over_the_file(ctx: CheckContext) -> None:
    """B22: EIO renaming over the file: flush() raises, file as it was, no temp, then saves.

    The file must stay byte-identical; the next flush() must write the full state."""
    _judge_site(ctx, RENAME)


@check("B22")
def eio_fsyncing_the_directory(ctx: CheckContext) -> None:
    """B22: EIO fsyncing the directory: flush() raises, new version kept, no temp, saves again.

    The rename cannot be undone safely: the file must hold the complete new version, and the
    next flush() must save again (with a directory fsync) to make it durable."""
    _judge_site(ctx, DIRECTORY_FSYNC)
