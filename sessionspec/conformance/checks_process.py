"""Checks with real processes: syscall order (strace), concurrent readers, fresh readers and
write-failure injection (B19, B20, B21, B22)."""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.child import session_as_json
from sessionspec.conformance.clock import epoch_ms
from sessionspec.conformance.context import CheckContext, LogCapture, capture_logs
from sessionspec.conformance.loading import child_environment
from sessionspec.conformance.registry import PreconditionFailed, check
from sessionspec.spec import ConversationTurn, SessionData, SessionStorage

#: What ``open()`` (and ``io.open``, ``Path.open``, ``shutil.copy``...) creates a file with
#: when no ``opener`` says otherwise; the umask is applied on top.
DEFAULT_CREATE_MODE = 0o666

TEMP_NAME = re.compile(r"\Asessions\.json\..+\.tmp\Z")

#: The kit's child-process entry point, run as ``python -m CHILD``.
CHILD = "sessionspec.conformance.child"


# -- syscall traces ----------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One observed file-system call, from strace or from the in-process spy."""

    kind: str  # open | write | fsync | rename | flock | close (of a lock file) | mkdir
    path: str = ""
    flags: frozenset[str] = frozenset()  # open flags; flock operations (LOCK_EX, LOCK_UN...)
    mode: int | None = None
    target: str = ""  # rename destination; the descriptor of a flock or close
    thread: int | None = None  # the process or thread that made the call, when known


_STRACE_CALLS = (
    "open,openat,creat,write,pwrite64,writev,fsync,fdatasync,rename,renameat,renameat2,flock,close,"
    "mkdir,mkdirat"
)
_PID = re.compile(r"\A(?:\[pid\s+)?(?P<pid>\d+)\]?\s")
_FLOCK = re.compile(r"flock\((?P<fd>\d+)<(?P<fdpath>[^>]*)>, (?P<ops>[A-Z_|]+)\) = 0")
_CLOSE_LOCK = re.compile(r"close\((?P<fd>\d+)<(?P<fdpath>[^>]*\.lock)>\) = 0")
_FD = r"\d+<(?P<fdpath>[^>]*)>"
_OPEN = re.compile(
    r"open(?:at)?\((?:[^,]+, )?\"[^\"]*\", (?P<flags>[A-Z_|0-9]+)(?:, (?P<mode>0[0-7]*))?\)"
    r" = \d+<(?P<result>[^>]*)>"
)
_WRITE = re.compile(r"(?:write|pwrite64|writev)\(" + _FD)
_FSYNC = re.compile(r"f(?:data)?sync\(" + _FD)
_MKDIR = re.compile(r"mkdir(?:at)?\((?:[^,]+, )?\"(?P<path>[^\"]*)\", [0-7]+\) = 0")
_RENAME = re.compile(
    r"rename(?:at2?)?\((?:[^,]+, )?\"(?P<src>[^\"]*)\", (?:[^,]+, )?\"(?P<dst>[^\"]*)\""
    r"(?:, [^)]*)?\) = 0"
)


_UNFINISHED = " <unfinished ...>"
_RESUMED = re.compile(r"<\.\.\. \w+ resumed>\s?")
_PADDED_RESULT = re.compile(r"\)\s+= ")


def joined_lines(text: str) -> list[str]:
    """The lines of a ``strace -f`` log, each call whole: a call another process interrupted
    (``<unfinished ...>``) is joined with its ``<... NAME resumed>`` line, in the place
    where it started (two processes: a stdio adapter and the kit's child, PROTOCOL.md)."""
    lines: list[str] = []
    pending: dict[str, int] = {}
    for line in text.splitlines():
        match = _PID.match(line)
        pid = match["pid"] if match else ""
        if line.endswith(_UNFINISHED):
            pending[pid] = len(lines)
            lines.append(line.removesuffix(_UNFINISHED))
        elif (resumed := _RESUMED.search(line)) and pid in pending:
            index = pending.pop(pid)
            # strace pads a resumed line's result to its own column: one space, as whole.
            lines[index] += _PADDED_RESULT.sub(") = ", line[resumed.end() :], count=1)
        else:
            lines.append(line)
    return lines


def parse_strace(text: str) -> list[Event]:
    """The file-system events of a ``strace -f -y`` log, in the order the calls started."""
    events = []
    for line in joined_lines(text):
        if match := _OPEN.search(line):
            raw_mode = match["mode"]
            events.append(
                Event(
                    "open",
                    match["result"],
                    frozenset(match["flags"].split("|")),
                    int(raw_mode, 8) if raw_mode else None,
                )
            )
        elif match := _WRITE.search(line):
            events.append(Event("write", match["fdpath"]))
        elif match := _FSYNC.search(line):
            events.append(Event("fsync", match["fdpath"]))
        elif match := _RENAME.search(line):
            events.append(Event("rename", match["src"], target=match["dst"], thread=_pid(line)))
        elif match := _MKDIR.search(line):
            events.append(Event("mkdir", match["path"]))
        elif match := _FLOCK.search(line):
            ops = frozenset(match["ops"].split("|"))
            events.append(
                Event("flock", match["fdpath"], ops, target=match["fd"], thread=_pid(line))
            )
        elif match := _CLOSE_LOCK.search(line):
            events.append(Event("close", match["fdpath"], target=match["fd"], thread=_pid(line)))
    return events


def _pid(line: str) -> int | None:
    match = _PID.match(line)
    return int(match["pid"]) if match else None


_FLAG_NAMES = ("O_CREAT", "O_EXCL", "O_WRONLY", "O_RDWR", "O_TRUNC", "O_NOFOLLOW")


def _open_flags(mode: str) -> frozenset[str]:
    """The ``os.open`` flags an ``open()`` mode string stands for (only those of a create)."""
    flags = {"O_CREAT", "O_RDWR" if "+" in mode else "O_WRONLY"}
    if "x" in mode:
        flags.add("O_EXCL")
    if "w" in mode:
        flags.add("O_TRUNC")
    return frozenset(flags)


@contextlib.contextmanager
def os_spy() -> Iterator[list[Event]]:
    """Wrap the file functions a Python backend uses, in every thread: ``os.open`` (flags and
    mode), writes, fsyncs, renames, and ``open()``/``io.open`` (so ``Path.write_bytes`` and
    ``shutil.copy`` too), whose files are created with :data:`DEFAULT_CREATE_MODE` unless an
    ``opener`` (seen as its own ``os.open``) is given. The fallback of :func:`save_trace` when
    strace is unavailable (SPEC.md §4.1, B19, B20), and how B20 sees the mode a backup is
    created with (SPEC.md §3.2, §4.3)."""
    events: list[Event] = []
    fds: dict[int, str] = {}
    real = {
        name: getattr(os, name)
        for name in ("open", "write", "fsync", "fdatasync", "replace", "rename", "close", "mkdir")
    }
    real_open = builtins.open
    real_flock = fcntl.flock

    def spy_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        fd: int = real["open"](path, flags, mode, dir_fd=dir_fd)
        full = os.path.join(fds.get(dir_fd, ""), os.fsdecode(path)) if dir_fd else os.fsdecode(path)
        fds[fd] = os.path.abspath(full)
        names = frozenset(n for n in _FLAG_NAMES if flags & getattr(os, n, 0))
        events.append(Event("open", fds[fd], names, mode if flags & os.O_CREAT else None))
        return fd

    def spy_builtin_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        result = real_open(file, mode, *args, **kwargs)
        opener = kwargs.get("opener", args[5] if len(args) > 5 else None)
        if opener is None and not isinstance(file, int) and any(c in mode for c in "wxa"):
            path = os.path.abspath(os.fsdecode(file))
            events.append(Event("open", path, _open_flags(mode), DEFAULT_CREATE_MODE))
        return result

    def spy_fd(kind: str, name: str) -> Callable[..., Any]:
        def wrapper(fd: int, *args: Any) -> Any:
            events.append(Event(kind, fds.get(fd, f"fd{fd}")))
            return real[name](fd, *args)

        return wrapper

    def spy_rename(name: str) -> Callable[..., Any]:
        def wrapper(src: Any, dst: Any, **kwargs: Any) -> Any:
            result = real[name](src, dst, **kwargs)
            thread = threading.get_ident()
            events.append(Event("rename", os.fsdecode(src), target=os.fsdecode(dst), thread=thread))
            return result

        return wrapper

    def spy_mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real["mkdir"](path, mode, dir_fd=dir_fd)
        events.append(Event("mkdir", os.path.abspath(os.fsdecode(path))))

    def spy_flock(fd: Any, operation: int) -> None:
        real_flock(fd, operation)
        number = fd if isinstance(fd, int) else fd.fileno()
        ops = {name for name in ("LOCK_EX", "LOCK_SH", "LOCK_UN", "LOCK_NB")
               if operation & getattr(fcntl, name)}  # fmt: skip
        if operation & fcntl.LOCK_UN == fcntl.LOCK_UN and not operation & ~fcntl.LOCK_UN:
            ops = {"LOCK_UN"}
        events.append(Event("flock", _fd_path(number, fds), frozenset(ops), target=str(number),
                            thread=threading.get_ident()))  # fmt: skip

    def spy_close(fd: int) -> None:
        path = _fd_path(fd, fds)
        real["close"](fd)
        fds.pop(fd, None)  # the number may be reused for another file
        if path.endswith(".lock"):
            events.append(Event("close", path, target=str(fd), thread=threading.get_ident()))

    patches = {
        "open": spy_open,
        "write": spy_fd("write", "write"),
        "fsync": spy_fd("fsync", "fsync"),
        "fdatasync": spy_fd("fsync", "fdatasync"),
        "replace": spy_rename("replace"),
        "rename": spy_rename("rename"),
        "close": spy_close,
        "mkdir": spy_mkdir,
    }
    for name, function in patches.items():
        setattr(os, name, function)
    builtins.open = io.open = spy_builtin_open
    fcntl.flock = spy_flock
    try:
        yield events
    finally:
        for name, function in real.items():
            setattr(os, name, function)
        builtins.open = io.open = real_open
        fcntl.flock = real_flock


def _fd_path(fd: int, known: dict[int, str]) -> str:
    """The path behind a descriptor: as opened through the spy, else /proc's link."""
    if fd in known:
        return known[fd]
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd{fd}"


@dataclass
class Trace:
    events: list[Event]
    method: str
    directory: Path


def save_trace(ctx: CheckContext) -> Trace:
    """Trace a child process (or, failing that, this one) in which two instances save."""
    cached: Trace | None = ctx.run.cache.get("trace")
    if cached is not None:
        return cached
    workdir = ctx.run.workdir / "trace"
    path = workdir / "store" / "sessions.json"
    strace = shutil.which("strace")
    trace: Trace | None = None
    if strace and ctx.run.target:
        log = workdir / "strace.log"
        workdir.mkdir(parents=True, exist_ok=True)
        command = [
            strace, "-f", "-qq", "-y", "-s", "0", "-e", f"trace={_STRACE_CALLS}", "-o", str(log),
            sys.executable, "-m", CHILD, "mutate", ctx.run.target, str(path),
            str(epoch_ms(ctx.clock())),
        ]  # fmt: skip
        done = subprocess.run(
            command, env=child_environment(), capture_output=True, text=True, timeout=120
        )
        if done.returncode == 0:
            trace = Trace(parse_strace(log.read_text(errors="replace")), "strace", path.parent)
        elif "ptrace" not in done.stderr and "PTRACE" not in done.stderr:
            raise RuntimeError(f"the traced child failed:\n{done.stderr[-2000:]}")
    if trace is None:
        with os_spy() as events:
            _mutate_in_process(ctx, path)
        trace = Trace(list(events), "in-process os spy", path.parent)
    ctx.run.cache["trace"] = trace
    return trace


def _mutate_in_process(ctx: CheckContext, path: Path) -> None:
    first = ctx.run.factory(path, clock=ctx.clock)
    second = ctx.run.factory(path, clock=ctx.clock)
    for storage, label in ((first, "one"), (second, "two")):
        session_id = storage.create_session()
        storage.add_turn(session_id, ConversationTurn(label, label, ctx.clock()))
        storage.flush()
    first.close()
    second.close()


def _saves(trace: Trace) -> list[int]:
    """Indexes of the renames of a temp file over the sessions file."""
    return [
        i
        for i, e in enumerate(trace.events)
        if e.kind == "rename"
        and os.path.basename(e.target) == "sessions.json"
        and TEMP_NAME.match(os.path.basename(e.path))
    ]


# -- B19 ---------------------------------------------------------------------------------
@check("B19")
def temp_fsync_rename_fsync_dir(ctx: CheckContext) -> None:
    """Each save: a temp in the same dir, write, fsync it, rename over, fsync the dir."""
    trace = save_trace(ctx)
    ctx.notes.append(f"observed with {trace.method}")
    events = trace.events
    saves = _saves(trace)
    ctx.expect(
        saves,
        f"no rename of <name>.<unique>.tmp over the sessions file was observed ({trace.method})",
        actual=[e for e in events if e.kind == "rename"][:5],
    )
    directory = str(trace.directory)
    previous = 0
    for index in saves:
        temp_name = os.path.basename(events[index].path)
        opens = [
            i
            for i in range(previous, index)
            if events[i].kind == "open" and os.path.basename(events[i].path) == temp_name
        ]
        ctx.expect(opens, f"the temp file {temp_name} was not opened before the rename")
        opened = opens[-1]
        temp = events[opened].path
        ctx.expect(
            os.path.dirname(temp) == directory,
            "the temp file must be in the sessions file's directory",
            expected=directory,
            actual=temp,
        )
        # How the temp file is created (O_CREAT|O_EXCL, 0o600) is B20's rule, checked there.
        writes = [
            i for i in range(opened, index) if events[i].kind == "write" and events[i].path == temp
        ]
        ctx.expect(writes, "nothing was written to the temp file before the rename")
        syncs = [
            i
            for i in range(writes[-1] if writes else opened, index)
            if events[i].kind == "fsync" and events[i].path == temp
        ]
        ctx.expect(syncs, "the temp file must be fsynced after writing and before the rename")
        following = saves[saves.index(index) + 1] if index != saves[-1] else len(events)
        dir_syncs = [
            i
            for i in range(index, following)
            if events[i].kind == "fsync" and events[i].path.rstrip("/") == directory
        ]
        ctx.expect(dir_syncs, "the directory must be fsynced after the rename")
        previous = index
    temps = {os.path.basename(events[i].path) for i in saves}
    ctx.expect(
        len(temps) >= 2,
        "two instances on one path must use their own temp names",
        actual=sorted(temps),
    )


@check("B19")
def new_directory_fsynced_into_its_parent(ctx: CheckContext) -> None:
    """The first save creates the file's directory: the parent is fsynced after the mkdir
    and before the save's rename, or the new directory (and the file in it) can vanish in a
    crash."""
    trace = save_trace(ctx)
    ctx.notes.append(f"observed with {trace.method}")
    events, directory = trace.events, str(trace.directory)
    made = [
        i for i, e in enumerate(events) if e.kind == "mkdir" and e.path.rstrip("/") == directory
    ]
    ctx.expect(made, f"the first save did not create {directory} ({trace.method})")
    saves = _saves(trace)
    ctx.expect(saves, "no rename of a temp file over the sessions file was observed")
    parent = os.path.dirname(directory)
    synced = [
        i
        for i in range(made[0], saves[0])
        if events[i].kind == "fsync" and events[i].path.rstrip("/") == parent
    ]
    ctx.expect(
        synced,
        "the parent of a directory the save created must be fsynced after the mkdir and"
        " before the rename",
        actual=[(e.kind, e.path) for e in events[made[0] : saves[0]] if e.kind == "fsync"],
    )


@check("B19")
def concurrent_reader_sees_whole_files(ctx: CheckContext) -> None:
    """Another process reading in a loop during many large saves only sees complete JSON."""
    storage = ctx.open()
    session_id = storage.create_session()
    storage.update_session(session_id, turns=[ConversationTurn("x" * 1000, "y", ctx.clock())])
    storage.flush()
    # The reader below tells whole files from partial ones by parsing them: the files must
    # be valid to begin with (B10).
    ctx.require_valid_file()
    stop = ctx.dir / "stop"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sessionspec.conformance.child",
            "read-loop",
            str(ctx.path),
            str(stop),
            "120",
        ],
        env=child_environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Saving starts once the reader runs: a fixed sleep is too short on a loaded machine.
        ready = Path(str(stop) + ".ready")
        deadline = time.monotonic() + 60
        while not ready.exists() and reader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        for round_number in range(ctx.run.profile.reader_saves):
            size = 50_000 + (round_number % 5) * 40_000
            big = [ConversationTurn(f"{round_number}:" + "é" * size, "ok", ctx.clock())]
            storage.update_session(session_id, turns=big)
            storage.flush()
    finally:
        stop.touch()
        output, _ = reader.communicate(timeout=180)
    result = json.loads(output)
    if result["reads"] == 0:
        raise RuntimeError("the reader process never read the file; the check proved nothing")
    ctx.expect(
        result["bad"] == 0 and result["missing"] == 0,
        "a concurrent reader saw a partial, invalid or missing file",
        expected={"bad": 0, "missing": 0},
        actual=result,
    )


# -- B20 (temp file mode from the trace) -------------------------------------------------
@check("B20")
def temp_created_exclusive_0600(ctx: CheckContext) -> None:
    """Temp files are created O_EXCL with a mode no wider than 0o600."""
    trace = save_trace(ctx)
    ctx.notes.append(f"observed with {trace.method}")
    creates = [
        e
        for e in trace.events
        if e.kind == "open" and TEMP_NAME.match(os.path.basename(e.path)) and "O_CREAT" in e.flags
    ]
    ctx.require("B19", creates, f"no temp file creation observed ({trace.method})")
    for event in creates:
        ctx.expect("O_EXCL" in event.flags, "temp created without O_EXCL", actual=event)
        ctx.expect(
            event.mode is not None and event.mode & 0o177 == 0,
            f"temp {os.path.basename(event.path)} created with a mode wider than 0o600",
            actual=oct(event.mode) if event.mode is not None else None,
        )


# -- B21 ---------------------------------------------------------------------------------
def _burst(ctx: CheckContext, storage: SessionStorage) -> None:
    """A deterministic burst of mixed mutations."""
    ids: list[str] = []
    for step in range(ctx.run.profile.burst):
        kind = step % 7
        if kind == 0 or not ids:
            ids.append(storage.create_session())
        elif kind == 1:
            storage.add_turn(ids[-1], ConversationTurn(f"p{step}\ud800", f"r{step}", ctx.clock()))
        elif kind == 2:
            storage.set_codex_conversation_id(ids[step % len(ids)], f"conv-{step}")
        elif kind == 3:
            storage.ensure_session(f"ensured-{step % 5}")
        elif kind == 4 and len(ids) > 3:
            storage.delete_session(ids.pop(0))
        elif kind == 5:
            storage.reset_session(ids[step % len(ids)])
        else:
            storage.update_session(ids[-1], codex_conversation_id=None)


def _fresh_view(ctx: CheckContext) -> list[dict[str, Any]]:
    """What a new instance in a new process sees (in this process if the target has no name).
    What the backend saved must be a valid file first (B10, a precondition)."""
    ctx.require_valid_file()
    if ctx.run.target:
        done = subprocess.run(
            [sys.executable, "-m", CHILD, "dump", ctx.run.target, str(ctx.path),
             str(epoch_ms(ctx.clock()))],
            env=child_environment(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the reading child failed:\n{done.stderr[-2000:]}")
        data: list[dict[str, Any]] = json.loads(done.stdout)
        return data
    fresh = ctx.open()
    try:
        return [session_as_json(s) for s in fresh.list_sessions()]
    finally:
        fresh.close()


def _as_json_sessions(sessions: Iterable[SessionData]) -> list[dict[str, Any]]:
    # Through a JSON round trip, so lone surrogates compare like the child's output.
    data: list[dict[str, Any]] = json.loads(json.dumps([session_as_json(s) for s in sessions]))
    return data


def _as_json(storage: SessionStorage) -> list[dict[str, Any]]:
    return _as_json_sessions(storage.list_sessions())


@check("B21")
def flush_makes_final_state_visible(ctx: CheckContext) -> None:
    """After a burst and flush(), a fresh process sees exactly the final state."""
    storage = ctx.open()
    _burst(ctx, storage)
    storage.flush()
    expected = _as_json(storage)
    ctx.expect_same_store(_fresh_view(ctx), expected, "a fresh process must see the flushed state")


@check("B21")
def close_flushes(ctx: CheckContext) -> None:
    """close() flushes: a fresh process sees the final state without an explicit flush.

    After the burst, a flush() lets a write-behind writer go idle; then one new session and
    its turn, straight before close(). (Right after a burst alone the writer may take its
    snapshot only once the burst has ended, and so save everything by luck whatever close()
    does.) Only what the check needs to know is read between them: a close() that drops what
    is pending loses the new session unless its writer runs in those microseconds.
    """
    storage = ctx.open()
    _burst(ctx, storage)
    storage.flush()
    before = _as_json(storage)
    last = storage.create_session()
    storage.add_turn(last, ConversationTurn("pending at close()", "r", ctx.clock()))
    pending = storage.get_session(last)
    storage.close()
    storage.close()  # idempotent
    if pending is None:
        raise PreconditionFailed("B02", "get_session() of the session just given a turn")
    # The session touched last comes first (B04: later access first among equal times).
    expected = [*_as_json_sessions([pending]), *before]
    ctx.expect_same_store(_fresh_view(ctx), expected, "close() must flush the final state")


# -- B22 ---------------------------------------------------------------------------------
#: How long a write-behind backend gets to try, and fail, a background save on its own before
#: the kit goes on: waited for by its ERROR (SPEC.md §4.5), so a backend that coalesces
#: mutations for a while (a debounce) is still seen failing, and a fast one costs nothing.
BACKGROUND_FAILURE_WAIT = 2.0
#: The idle observation of "not retried in a loop" (B22): this many real seconds, in equal
#: slices, with the backend's clock moved on by these steps between them (7 h in all, so the
#: session stays live). A loop paced by real time shows when its period is under about half
#: the window (two attempts where one is tolerated); one paced by the backend's own clock
#: (its only time, SPEC.md §1.3) shows at the clock steps, whatever its backoff.
IDLE_SECONDS = 2.5
IDLE_CLOCK_STEPS = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(hours=6),
)
_WATCHED: list[tuple[str, list[int]]] = []
_HOOK_INSTALLED = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHED or event not in ("open", "os.mkdir", "os.rename", "os.link", "os.remove"):
        return
    text = " ".join(os.fsdecode(a) for a in args if isinstance(a, str | bytes))
    for needle, counter in _WATCHED:
        if needle in text:
            counter[0] += 1


@contextlib.contextmanager
def count_attempts(needle: str) -> Iterator[list[int]]:
    """Count file-system calls (from the audit hook, any thread) whose path contains needle."""
    global _HOOK_INSTALLED
    if not _HOOK_INSTALLED:
        sys.addaudithook(_audit)  # hooks cannot be removed; this one is inert when idle
        _HOOK_INSTALLED = True
    counter = [0]
    entry = (needle, counter)
    _WATCHED.append(entry)
    try:
        yield counter
    finally:
        _WATCHED.remove(entry)


@contextlib.contextmanager
def broken_directory(directory: Path) -> Iterator[None]:
    """Make every write under ``directory`` fail with ENOTDIR, even for root: move the directory
    away and put a regular file at its path."""
    away = directory.with_name(directory.name + ".away")
    os.rename(directory, away)
    directory.write_bytes(b"a file where the directory was")
    try:
        yield
    finally:
        directory.unlink()
        try:
            os.rename(away, directory)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # A background save made the directory again in the instant between the two
            # calls (the fault had cleared): what it saved stands, the old copy goes.
            shutil.rmtree(away)


def _await_background_failure(logs: LogCapture, bound: float = BACKGROUND_FAILURE_WAIT) -> bool:
    """Wait until the backend has logged the ERROR of a failed save, at most ``bound``
    seconds (B22: a failed background save is logged at once). True if it did; False for a
    backend that saves only in flush() and close() (SPEC.md §4.7), or that does not log."""
    deadline = time.monotonic() + bound
    while not logs.messages(logging.ERROR):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _prepare(ctx: CheckContext) -> tuple[SessionStorage, str]:
    storage = ctx.open()
    session_id = storage.create_session()
    storage.flush()
    return storage, session_id


def _saves_after_recovery(
    ctx: CheckContext, call: Callable[[], None], expected: list[dict[str, Any]], what: str
) -> None:
    """With the fault cleared, ``call`` (flush or close) must succeed and write ``expected``."""
    try:
        call()
    except OSError as exc:
        ctx.expect(False, f"{what} after the fault cleared must succeed: {exc!r}")
    ctx.expect_equal(_fresh_view(ctx), expected, f"{what} after the fault cleared must save all")


@check("B22")
def close_that_cannot_flush_raises_and_stays_open(ctx: CheckContext) -> None:
    """close() whose flush fails raises OSError and keeps every change; a later close() saves."""
    storage, session_id = _prepare(ctx)
    with broken_directory(ctx.path.parent), capture_logs():
        storage.add_turn(session_id, ConversationTurn("before", "close", ctx.clock()))
        raised: BaseException | None = None
        try:
            storage.close()
        except OSError as exc:
            raised = exc
        ctx.expect(raised is not None, "close() must raise OSError when its flush fails")
        data = storage.get_session(session_id)
        ctx.expect(
            data is not None and [t.prompt for t in data.turns] == ["before"],
            "after a failed close() memory must keep every change",
            actual=data,
        )
        expected = _as_json(storage)
    _saves_after_recovery(ctx, storage.close, expected, "close() retried after a failed one")


@check("B22")
def flush_after_a_failed_background_save_writes(ctx: CheckContext) -> None:
    """A background save fails, the fault clears, no new mutation: flush() must still write
    the full state (B22: a failure leaves the store unsaved until a save succeeds)."""
    storage, session_id = _prepare(ctx)
    with broken_directory(ctx.path.parent), capture_logs() as logs:
        storage.add_turn(session_id, ConversationTurn("pending", "", ctx.clock()))
        expected = _as_json(storage)
        # Until the background attempt has failed, however long the backend coalesces: with a
        # fixed pause a slower writer would save only after the fault cleared, and pass.
        if not _await_background_failure(logs):
            ctx.notes.append(
                f"no background save failed within {BACKGROUND_FAILURE_WAIT} s: this ran as a"
                " flush() after a fault, not after a failed background save"
            )
    _saves_after_recovery(ctx, storage.flush, expected, "flush() after a failed background save")


@check("B22")
def flush_raises_memory_kept_then_recovers(ctx: CheckContext) -> None:
    """A failing write makes flush() raise OSError; memory keeps changes; the next flush
    after the fault clears writes the full state."""
    storage, session_id = _prepare(ctx)
    with broken_directory(ctx.path.parent), capture_logs():
        storage.add_turn(session_id, ConversationTurn("during", "failure", ctx.clock()))
        storage.set_codex_conversation_id(session_id, "conv-during-failure")
        extra = storage.create_session()
        raised: BaseException | None = None
        try:
            storage.flush()
        except OSError as exc:
            raised = exc
        ctx.expect(raised is not None, "flush() must raise OSError when the write fails")
        data = storage.get_session(session_id)
        ctx.expect(
            data is not None
            and [t.prompt for t in data.turns] == ["during"]
            and data.codex_conversation_id == "conv-during-failure"
            and storage.get_session(extra) is not None,
            "memory must keep every change after a failed write",
            actual=data,
        )
        expected = _as_json(storage)
    storage.flush()
    ctx.expect_same_store(
        _fresh_view(ctx), expected, "after the fault clears, flush() must write the full state"
    )


@check("B22")
def background_failure_logged_once_without_retry_loop(ctx: CheckContext) -> None:
    """A failed background save is not retried in a loop while idle, whether the loop is paced
    by real time or by the backend's clock, and is logged once at ERROR: not again for the
    failed saves of later mutations until a save succeeds (B22, SPEC.md §4.5)."""
    storage, session_id = _prepare(ctx)
    with (
        broken_directory(ctx.path.parent),
        capture_logs() as logs,
        count_attempts(str(ctx.path.parent)) as attempts,
    ):
        # One mutation, so a correct backend has exactly one save to try: any attempt after
        # its failure, until the next mutation or flush(), is a retry.
        storage.add_turn(session_id, ConversationTurn("t0", "r", ctx.clock()))
        _await_background_failure(logs)
        background_attempts = attempts[0]
        for step in IDLE_CLOCK_STEPS:
            ctx.clock.advance(step)
            time.sleep(IDLE_SECONDS / len(IDLE_CLOCK_STEPS))
        idle_attempts = attempts[0] - background_attempts
        # New mutations may try again (SPEC.md §4.5), but not log a second ERROR.
        for index in range(1, 5):
            storage.add_turn(session_id, ConversationTurn(f"t{index}", "r", ctx.clock()))
        time.sleep(0.3)
        errors = logs.messages(logging.ERROR)
    with contextlib.suppress(OSError):
        storage.flush()
    moved = sum(IDLE_CLOCK_STEPS, timedelta())
    ctx.expect(
        idle_attempts <= 1,
        "a failed background save must not be retried in a loop",
        expected=f"at most 1 file-system call on the directory in {IDLE_SECONDS} s of"
        f" idleness, while the backend's clock moved on by {moved}",
        actual=f"{idle_attempts} file-system calls on the directory while idle",
    )
    if background_attempts:
        ctx.expect(
            len(errors) == 1,
            "a failed background save must be logged exactly once at ERROR"
            " (not again until a save succeeds)",
            expected=1,
            actual=errors,
        )
    else:
        ctx.expect(len(errors) <= 1, "at most one ERROR until a save succeeds", actual=errors)


@check("B22")
def every_failed_save_is_reported(ctx: CheckContext) -> None:
    """A failed background save is logged at ERROR without waiting for flush(); every flush()
    during the fault raises (a second one too); memory keeps every change."""
    storage, session_id = _prepare(ctx)
    with (
        broken_directory(ctx.path.parent),
        capture_logs() as logs,
        count_attempts(str(ctx.path.parent)) as attempts,
    ):
        storage.add_turn(session_id, ConversationTurn("first", "r", ctx.clock()))
        # A write-behind backend tries in the background; give it ample time to try and log.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not logs.messages(logging.ERROR):
            time.sleep(0.01)
        if attempts[0]:
            ctx.expect(
                logs.messages(logging.ERROR),
                "a failed background save must be logged at ERROR level",
                actual=f"{attempts[0]} attempts, no ERROR",
            )
        for attempt in ("first", "second"):
            if attempt == "second":
                storage.add_turn(session_id, ConversationTurn(attempt, "r", ctx.clock()))
            raised = False
            try:
                storage.flush()
            except OSError:
                raised = True
            ctx.expect(raised, f"the {attempt} flush() during a write failure must raise OSError")
    storage.flush()
    data = storage.get_session(session_id)
    # Which turns memory kept is this rule; their order is add_turn's (B02).
    ctx.expect_equal(
        sorted(t.prompt for t in data.turns) if data else None,
        ["first", "second"],
        "memory keeps the changes of every failed flush()",
    )


@check("B22")
def failed_rename_raises_oserror(ctx: CheckContext) -> None:
    """A save that fails at the rename (a directory now sits at the path) makes flush() raise
    OSError, and the next flush() once it is gone writes the full state."""
    storage, session_id = _prepare(ctx)
    ctx.path.unlink()
    ctx.path.mkdir()
    (ctx.path / "blocker").write_bytes(b"a non-empty directory cannot be replaced")
    with capture_logs():
        storage.add_turn(session_id, ConversationTurn("during", "failure", ctx.clock()))
        try:
            storage.flush()
        except OSError:
            pass
        else:
            ctx.expect(False, "flush() must raise OSError when the rename fails")
    (ctx.path / "blocker").unlink()
    ctx.path.rmdir()
    expected = _as_json(storage)
    storage.flush()
    ctx.expect_equal(_fresh_view(ctx), expected, "the next flush() must write the full state")
