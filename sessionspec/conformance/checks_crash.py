"""B31 crash-safe: SIGKILL a process in the middle of a save storm, many times, and judge
what each kill left (SPEC.md §4.1, §4.6, §8.3).

A fork server (``child_crash.py``) starts one storm process after another on one path; each
continues the deterministic sequence from the state the previous kill left, flushing every
few mutations and saying so. The kit kills each after a delay drawn from the run's seed:
every other kill as soon as a temp file of a save appears beside the file: the storm is
stopped (SIGSTOP) and killed if the temp file is still there once every thread stands still,
so these kills land mid-save whatever the disk's speed. After each kill the path must hold
no file (only while no save ever reached its rename) or a writer-valid file holding exactly
the sequence's state after some mutation no earlier than the last one a returned flush()
covered; each killed process may leave at most one temp file, and a backend claiming shared
must have removed the earlier ones by its next save (B30). After the last kill an instance
of this process saves once more (the dead temp files of a shared backend must then be gone),
and, two hours later by the clock, another opens (the others' must then be gone, B16).

Causes that are other behaviours' are preconditions, so one bug is one FAIL: memory that is
not the sequence's state (the methods: B02, B06, B07; the load: B09), a flush() that returned
before the file held its state (B21), a complete file that is not writer-valid (B10) or holds
content memory never had (B09), a partial file from a backend that never wrote a temp file
(B19: no atomic replace at all).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sessionspec.conformance.child import session_as_json
from sessionspec.conformance.child_crash import (
    FileVerdict,
    expected_state,
    judge_file,
    moment_of,
)
from sessionspec.conformance.clock import FakeClock, epoch_ms
from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.loading import child_environment
from sessionspec.conformance.oracle import format_timestamp
from sessionspec.conformance.registry import CheckNotRun, check
from sessionspec.spec import ConversationTurn, Level, SessionStorage

CHILD = "sessionspec.conformance.child_crash"
#: Kills per run, by profile name (not a Profile field: the kill count is this check's own).
KILLS = {"smoke": 3, "ci": 10, "thorough": 100}
#: A storm flushes every this many mutations.
FLUSH_EVERY = 3
#: Kill delays are drawn from [0, MAX_DELAY] seconds after the storm is ready.
MAX_DELAY = 0.1
#: How long a mid-save kill waits for a temp file to appear before killing anyway.
TEMP_WAIT = 0.5
#: A hang guard on the server and storm processes, far above need.
GUARD = 60.0
#: What a behaviour a storm found broken is attributed to (one root cause, one FAIL).
DIVERGED = {
    "ensure": "B07", "cid": "B06", "append": "B02", "replace": "B02", "load": "B09", "read": "B09",
}  # fmt: skip
#: Temp files are left behind by kills; this much later by the clock they are stale (B16).
LATER = timedelta(hours=2)
#: How many fields the storm's lines have (the last may hold spaces); the server's: any.
_FIELDS = {"ack": 6, "diverged": 5, "error": 4}


@dataclass(frozen=True)
class Finding:
    """A broken rule: ``behaviour``'s own (``precondition`` False), or another's that keeps
    this check from judging B31 (True)."""

    behaviour: str
    message: str
    precondition: bool = False


@dataclass
class StormFigures:
    """What a kill storm saw, for the check's notes and the benchmark."""

    kills: int = 0
    #: Kills after which a new temp file was there (a save under way), in all and among the
    #: kills at a random moment (the others wait for a temp file to appear).
    mid_save: int = 0
    random_kills: int = 0
    random_mid_save: int = 0
    missing: int = 0
    invalid: int = 0
    lost: int = 0
    not_a_state: int = 0
    acknowledged: int = 0
    temps_after_kills: int = 0
    temps_after_save: int = -1
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)


class StormStopped(Exception):
    """Raised by a ``report`` callback to end the storm at its first finding."""


def temp_names(path: Path) -> set[str]:
    """The temp files beside ``path``: ``<name>.<middle>.tmp``, middle not empty (B16, B31)."""
    pattern = re.compile(rf"\A{re.escape(path.name)}\..+\.tmp\Z")
    try:
        return {name for name in os.listdir(path.parent) if pattern.match(name)}
    except FileNotFoundError:
        return set()


class KillStorm:
    """Drives B31's fork server: starts storms, kills them, judges what each kill left.

    ``report(finding)`` is called for every broken rule; it may raise to stop the storm (the
    check does), or record it and let the storm go on (the benchmark does).
    """

    def __init__(
        self,
        target: str,
        path: Path,
        moment: datetime,
        *,
        shared: bool,
        seed: int,
        report: Callable[[Finding], None],
    ) -> None:
        self.target = target
        self.path = path
        self.moment = moment
        self.stamp = format_timestamp(moment)
        self.shared = shared
        self.rng = random.Random(seed)
        self.report = report
        self.figures = StormFigures()
        #: The state the file holds (-1: none yet) and the last acknowledged mutation.
        self.held = -1
        self.acked = -1
        self.temps_seen = False
        self._server: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._live: int | None = None
        # The storm of the current kill: ready to be killed, ended by a finding, its acks.
        self._ready = False
        self._stopped_early = False
        self._acks_now = 0

    # -- the fork server ------------------------------------------------------------------

    def __enter__(self) -> KillStorm:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", CHILD, "serve", self.target, str(self.path),
            str(epoch_ms(self.moment)), str(FLUSH_EVERY),
        ]  # fmt: skip
        self._server = subprocess.Popen(
            command,
            env=child_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        reader = threading.Thread(target=self._read, args=(self._server,), daemon=True)
        reader.start()
        self._expect("serving")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            _signal_group(self._live, signal.SIGKILL)
        if self._server is not None:
            with contextlib.suppress(OSError, ValueError):
                self._server.kill()
            with contextlib.suppress(Exception):
                self._server.communicate(timeout=GUARD)

    def _read(self, server: subprocess.Popen[str]) -> None:
        assert server.stdout is not None
        for line in server.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _send(self, line: str) -> None:
        assert self._server is not None and self._server.stdin is not None
        self._server.stdin.write(line + "\n")
        self._server.stdin.flush()

    def _next(self, timeout: float) -> list[str] | None:
        """The next line's words, or None when none came within ``timeout``."""
        try:
            line = self._lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        if line is None:
            stderr = self._server.stderr.read() if self._server and self._server.stderr else ""
            raise RuntimeError(f"the storm server ended:\n{stderr[-2000:]}")
        return _fields(line)

    def _expect(self, word: str, pid: str | None = None) -> list[str]:
        """Wait for the line ``word [pid]``, handling storm lines that come first."""
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            words = self._next(deadline - time.monotonic())
            if words is None:
                break
            if words[0] == word and (pid is None or words[1].strip() == pid):
                return words
            self._storm_line(words)
        raise RuntimeError(f"the storm server did not say {word!r} within {GUARD:g} s")

    # -- one kill -------------------------------------------------------------------------

    def run(self, kills: int) -> StormFigures:
        """``kills`` storms, each killed; the judgement of each; the figures (B31)."""
        started = time.monotonic()
        try:
            for number in range(1, kills + 1):
                self.kill_one(number)
        except StormStopped:
            pass
        finally:
            self.figures.seconds = time.monotonic() - started
        return self.figures

    def kill_one(self, number: int) -> None:
        """Start a storm, kill it (kill ``number``), judge what it left (B31)."""
        before = temp_names(self.path)
        acked_before = self.acked
        self._acks_now = 0
        self._ready = self._stopped_early = False
        self._send(f"storm {self.held + 1}")
        pid = self._expect("started")[1].strip()
        self._live = int(pid)
        # A storm may be ready before the server says it started it: wait either way.
        deadline = time.monotonic() + GUARD
        while not (self._ready or self._stopped_early):
            words = self._next(deadline - time.monotonic())
            if words is None:
                raise RuntimeError(f"storm {pid} did not open the backend within {GUARD:g} s")
            self._storm_line(words)
        if not self._stopped_early:
            self._wait_and_kill(number, int(pid), before)
        _signal_group(int(pid), signal.SIGKILL)
        self._send(f"reap {pid}")
        self._expect("reaped", pid)
        self._live = None
        self.figures.kills += 1
        if self._stopped_early:
            return
        self._judge_kill(number, before, acked_before)

    def _wait_and_kill(self, number: int, pid: int, known: set[str]) -> None:
        """Wait the drawn delay (reading what the storm says); then, on every other kill,
        until a new temp file shows a save under way: the storm is stopped (SIGSTOP) and, if
        the temp file is still there once every thread stands still, left stopped for the
        caller's SIGKILL, which then lands mid-save for certain, however fast the disk.
        ``known``: the temp files there before this storm started."""
        delay = self.rng.uniform(0, MAX_DELAY)
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0 and not self._stopped_early:
            words = self._next(left)
            if words is not None:
                self._storm_line(words)
        if number % 2 == 0:
            return
        # New: not there before this storm (it reuses its one temp name for every save).
        deadline = time.monotonic() + TEMP_WAIT
        while time.monotonic() < deadline and not self._stopped_early:
            if temp_names(self.path) - known:
                if _stopped(pid) and temp_names(self.path) - known:
                    return
                _signal_group(pid, signal.SIGCONT)  # the save was over: try the next one
            with contextlib.suppress(queue.Empty):
                line = self._lines.get_nowait()
                if line is not None:
                    self._storm_line(_fields(line))

    def _storm_line(self, words: list[str]) -> None:
        kind = words[0]
        if kind == "ready":
            self._ready = True
        elif kind == "ack":
            self._acknowledged(int(words[2]), int(words[3]), words[4], json.loads(words[5]))
        elif kind == "diverged":
            self._stopped_early = True
            behaviour = DIVERGED.get(words[3], "B09")
            self._found(
                behaviour,
                f"the storm's memory after mutation {words[2]} ({words[3]}) is not the"
                f" sequence's state: {json.loads(words[4])}",
                precondition=True,
            )
        elif kind == "error":
            self._stopped_early = True
            self._raised(words[2], json.loads(words[3]))

    def _raised(self, stage: str, error: str) -> None:
        """A call of the storm raised ``error``: charged to what the call is for."""
        kills = self.figures.kills
        if stage == "flush" and kills:
            # The disk is fine; what earlier kills left may be what stops the save.
            self._found("B31", f"after {kills} kills, flush() of a new instance raised {error}")
        elif stage == "flush":
            self._found("B22", f"flush() raised {error} with nothing wrong with the disk",
                        precondition=True)  # fmt: skip
        else:
            what = "opening or loading the file" if stage in ("open", "load") else stage
            state = f"the state after mutation {self.held}" if self.held >= 0 else "no file"
            self._found(
                DIVERGED.get(stage, "B09"),
                f"{what} raised {error} (the path held {state}, judged whole)",
                precondition=True,
            )

    def _acknowledged(self, index: int, held: int, word: str, description: str) -> None:
        """flush() returned for ``index``; the file then held ``held``."""
        self.figures.acknowledged += 1
        self._acks_now += 1
        self.acked = max(self.acked, index)
        if word == "ok" and held >= index:
            return
        self._stopped_early = True
        if word == "ok":
            self._found(
                "B21",
                f"flush() returned for mutation {index} while the file held the state after"
                f" mutation {held}",
                precondition=True,
            )
        elif description.startswith("missing"):
            self._found("B21", f"flush() returned for mutation {index} with no file at the path",
                        precondition=True)  # fmt: skip
        elif description.startswith(("unparseable", "invalid")):
            self._found("B10", f"right after flush() the file is {description}", precondition=True)
        else:
            self._found("B09", f"right after flush() for mutation {index} the file {description}",
                        precondition=True)  # fmt: skip

    def _found(self, behaviour: str, message: str, *, precondition: bool = False) -> None:
        finding = Finding(behaviour, message, precondition)
        self.figures.findings.append(finding)
        self.report(finding)

    def _judge_kill(self, number: int, before: set[str], acked_before: int) -> None:
        """What kill ``number`` left: the file, then the temp files."""
        after = temp_names(self.path)
        new = after - before
        self.temps_seen = self.temps_seen or bool(after)
        if new:
            self.figures.mid_save += 1
        if number % 2 == 0:
            self.figures.random_kills += 1
            self.figures.random_mid_save += bool(new)
        self.figures.temps_after_kills = len(after)
        verdict = judge_file(self.path, self.stamp)
        self._judge_file(number, verdict)
        if len(new) > 1:
            self._found(
                "B31",
                f"kill {number} left {len(new)} new temp files, at most one per killed"
                f" instance: {sorted(new)[:5]}",
            )
        stayed = before & after
        if self.shared and stayed and self._acks_now:
            self._found(
                "B31",
                f"after kill {number}: temp files of killed writers {sorted(stayed)[:3]} stayed"
                " through a save that flush() acknowledged (a backend claiming shared removes"
                " them at its next save, B30)",
            )

    def _judge_file(self, number: int, verdict: FileVerdict) -> None:
        after = f"after kill {number}"
        if verdict.problem == "missing":
            if self.held >= 0 or self.acked >= 0:
                self.figures.missing += 1
                self.figures.lost += self.acked >= 0
                what = (
                    f"flush() had returned for mutation {self.acked}"
                    if self.acked >= 0
                    else f"the file held mutation {self.held} before"
                )
                self._found("B31", f"{after} there is no file at the path, and {what}")
            self.held = self.acked = -1  # the next storm starts the sequence afresh
            return
        if verdict.problem == "unparseable":
            self.figures.invalid += 1
            self.figures.lost += self.acked >= 0
            if not self.temps_seen:
                # Never a temp file: the backend writes the file in place (B19's rule).
                self._found(
                    "B19",
                    f"{after} the file did not parse ({verdict.detail}), and no temp file was"
                    " ever seen beside it: the saves do not write a temp file and rename it",
                    precondition=True,
                )
            else:
                self._found("B31", f"{after} the file did not parse: {verdict.detail}")
            # The next storm starts the sequence afresh (what is acknowledged is counted lost
            # once, here, not again at every later kill).
            self.held = self.acked = -1
            return
        if verdict.problem == "invalid":
            self.figures.invalid += 1
            self._found("B10", f"{after} the file is not writer-valid: {verdict.detail}",
                        precondition=True)  # fmt: skip
            return
        if not verdict.exact:
            self.figures.not_a_state += 1
            self._found(
                "B09",
                f"{after} the file is a complete, valid file that {verdict.describe()}",
                precondition=True,
            )
            return
        if verdict.index < self.acked:
            self.figures.lost += 1
            self._found(
                "B31",
                f"{after} the file holds the state after mutation {verdict.index}, but flush()"
                f" had returned for mutation {self.acked}: an acknowledged state was lost",
            )
            self.acked = verdict.index  # counted once; the storm goes on from the file
        self.held = verdict.index

    # -- after the kills ------------------------------------------------------------------

    def settle(self, open_store: Callable[[FakeClock], SessionStorage], kills: int) -> None:
        """B31 after the kills: a new instance of this process loads what the kills left,
        saves once (the dead writers' temp files of a shared backend must go), then, later
        by the clock, another opens (the others', now stale, must go: B16)."""
        clock = FakeClock(self.moment)
        try:
            storage = open_store(clock)
            loaded = {s.id: session_as_json(s) for s in storage.list_sessions()}
        except Exception as exc:
            loaded = {"raised": {"error": f"{type(exc).__name__}: {exc}"}}
        if loaded != expected_state(self.held, self.stamp):
            self._found(
                "B09",
                f"after the kills a new instance did not load the file's state (mutation"
                f" {self.held}): {str(loaded)[:200]}",
                precondition=True,
            )
            return
        storage.ensure_session("settled")
        storage.add_turn("settled", ConversationTurn("after the kills", "r", self.moment))
        try:
            storage.flush()
            storage.close()
        except OSError as exc:
            self._found("B31", f"after {kills} kills, a new instance could not save: {exc!r}")
            return
        left = temp_names(self.path)
        self.figures.temps_after_save = len(left)
        if self.shared and left:
            self._found(
                "B31",
                f"after {kills} kills and a save, {len(left)} temp files of killed writers"
                f" stayed: {sorted(left)[:3]} (a backend claiming shared removes them at its"
                " next save, B30)",
            )
        elif len(left) > kills:
            self._found(
                "B31",
                f"{len(left)} temp files after {kills} kills and a save: at most one per"
                f" killed instance ({sorted(left)[:3]})",
            )
        if left and not self.shared:
            clock.advance(LATER)
            open_store(clock).close()
            stale = temp_names(self.path)
            if stale:
                self._found(
                    "B16",
                    f"temp files of killed writers {sorted(stale)[:3]} stayed through an open"
                    f" {LATER} after they were written",
                    precondition=True,
                )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the storm's process group (the storm leads it; a stdio adapter it started is
    in it), or the storm alone if the group is gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _group_tasks(pgid: int) -> list[Path]:
    """Every thread of every process in the process group ``pgid`` (Linux's /proc)."""
    tasks = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                tasks += list((proc / "task").iterdir())
    return tasks


def _stopped(pid: int) -> bool:
    """Send SIGSTOP to the storm's group and wait until every thread in it is stopped (read
    from Linux's /proc; elsewhere a pause). False if they did not all stop within a second."""
    _signal_group(pid, signal.SIGSTOP)
    if not Path("/proc/self/task").is_dir():
        time.sleep(0.01)
        return True
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            tasks = _group_tasks(pid) or list(Path(f"/proc/{pid}/task").iterdir())
            states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks]
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread ended while being listed
        if all(state in "tTZX" for state in states):
            return True
        time.sleep(0.0002)
    return False


def _fields(line: str) -> list[str]:
    # The last field of a line is JSON that may hold spaces: split only before it.
    kind = line.split(" ", 1)[0]
    return line.rstrip("\n").split(" ", _FIELDS.get(kind, 0) - 1)


def kill_seed(ctx: CheckContext) -> int:
    """The seed of B31's kill delays: the run's, else fixed for derandomized profiles."""
    if ctx.run.seed is not None:
        return ctx.run.seed
    if ctx.run.profile.derandomize:
        return 31
    return random.SystemRandom().randrange(2**32)


@check("B31")
def sigkill_mid_save_storm(ctx: CheckContext) -> None:
    """SIGKILLed in a save storm, again and again: a whole file with every acknowledged
    state each time, at most one temp file per kill, and those removed as B30/B16 say."""
    if ctx.run.target is None:
        raise CheckNotRun(
            "the factory has no importable name (module:attr), so no other process can open"
            " the backend to be killed; give the kit a TARGET to judge B31"
        )
    kills = KILLS.get(ctx.run.profile.name, KILLS["smoke"])
    seed = kill_seed(ctx)
    # Real time, to the millisecond: the temp files the kills leave are young by the clock.
    moment = moment_of(epoch_ms(datetime.now(UTC)))
    ctx.clock.set(moment)

    def stop(finding: Finding) -> None:
        if finding.precondition:
            ctx.require(finding.behaviour, False, finding.message)
        ctx.expect(False, finding.message)

    shared = ctx.claims(Level.SHARED)
    with KillStorm(ctx.run.target, ctx.path, moment, shared=shared, seed=seed,
                   report=stop) as storm:  # fmt: skip
        figures = storm.run(kills)
        storm.settle(lambda clock: ctx.open(clock=clock, raw=True), kills)
    ctx.notes.append(
        f"{figures.kills} kills (seed {seed}), {figures.mid_save} mid-save,"
        f" {figures.acknowledged} flushes acknowledged, the last state held: mutation"
        f" {storm.held}"
    )
