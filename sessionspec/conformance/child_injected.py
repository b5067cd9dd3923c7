"""The child process of the injected-error checks (B22):
``python -m sessionspec.conformance.child_injected TARGET EPOCH_MS``.

It imports TARGET once, then serves runs: for each line ``PATH<TAB>GO_FILE<TAB>REPORT_FILE``
read on stdin it forks a process, prints that process's pid, and the process waits until
``GO_FILE`` exists (the parent creates it once strace is attached to it), runs
:func:`scenario` on a store at PATH and writes its report (JSON) to ``REPORT_FILE``. Starting
Python and importing a backend costs ~0.3 s; a forked run costs a few milliseconds. When
stdin closes it waits for its runs and exits.

The scenario is deterministic, so that a run under strace makes the same calls at the same
ordinals as the calibration run before it: a fixed session id, the clock stopped at EPOCH_MS,
one mutation per save (a write-behind backend then saves exactly once for it), and one write
of its own (the report), at the end. Three saves, each ending in ``flush()``:

1. ``ensure_session``: the first state, which must save;
2. ``add_turn``: the save the parent injects an error into, whose ``flush()`` must raise;
3. no mutation: the next ``flush()``, which must write the full state.

Before each the child opens a path that does not exist (:func:`mark`): a call strace logs, so
the parent can tell which calls belong to which save.

Over stdio (TARGET ``stdio:CMD``) a request line has a fourth field, a JSON list: the argv
prefix (strace and its options) the run starts its own adapter under
(``SESSIONSPEC_STDIO_WRAP``), so that strace traces the adapter alone, not this process that
drives it. A mark is then also a request the adapter reads (``get_session`` of the id
``MARKER_ID + name``, a session that never exists), which its strace log shows. The run ends
its adapter (and so strace) before it writes its report, then creates ``REPORT_FILE.done``
(holding why, when the run failed): the parent waits for that file. Such a run is the leader
of a process group, its adapter a member: a run that failed, or that the parent finds hung,
is killed with its whole group.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.child import session_as_json
from sessionspec.conformance.clock import EPOCH
from sessionspec.conformance.loading import load_target
from sessionspec.conformance.stdio import GROUP_VARIABLE, WRAP_VARIABLE
from sessionspec.spec import ConversationTurn, SessionStorage

#: Never created: opening ``MARKER/<name>`` only leaves a line in the strace log.
MARKER = "/nonexistent-sessionspec-marker"
#: Over stdio, ``get_session(MARKER_ID + name)``: a request the adapter's strace log shows.
MARKER_ID = "sessionspec-marker-"
#: The markers, in the order the scenario leaves them.
MARKS = ("save-1", "save-2", "save-3", "saved")
SESSION_ID = "injected-session"
PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = 2**64 - 1  # (unsigned long) -1
#: How long a forked run waits for its tracer before it gives up.
GO_TIMEOUT = 60.0


def mark(name: str, storage: SessionStorage | None = None) -> None:
    """Leave ``name`` in the parent's strace log (an openat that fails with ENOENT), so
    B22's checks tell the saves apart; over stdio (``storage`` given) in the adapter's log,
    as a request it reads."""
    with contextlib.suppress(OSError):
        os.close(os.open(f"{MARKER}/{name}", os.O_RDONLY))
    if storage is not None:
        storage.get_session(MARKER_ID + name)


def _read(path: Path) -> str | None:
    try:
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except FileNotFoundError:
        return None


def _flush(storage: SessionStorage) -> dict[str, Any] | None:
    """What ``flush()`` raised, or None."""
    try:
        storage.flush()
    except Exception as exc:  # any exception: the parent says which kind B22 wants
        return {
            "type": type(exc).__name__,
            "oserror": isinstance(exc, OSError),
            "errno": getattr(exc, "errno", None),
            "message": str(exc)[:300],
        }
    return None


def _state(storage: SessionStorage) -> list[dict[str, Any]]:
    return [session_as_json(s) for s in storage.list_sessions()]


def scenario(factory: Callable[..., Any], path: str, epoch_ms: str) -> dict[str, Any]:
    """The three saves of the injected-error checks (B22); returns the report."""
    file = Path(path)
    moment = EPOCH + timedelta(milliseconds=int(epoch_ms))
    storage: SessionStorage = factory(file, clock=lambda: moment)
    # Over stdio the marks are requests too: only the adapter is traced.
    marked = storage if getattr(factory, "sessionspec_over_stdio", False) else None
    report: dict[str, Any] = {}
    mark("save-1", marked)
    storage.ensure_session(SESSION_ID)
    report["first"] = _flush(storage)
    report["before"] = _read(file)
    mark("save-2", marked)
    storage.add_turn(SESSION_ID, ConversationTurn("during the fault", "kept", moment))
    report["failed"] = _flush(storage)
    report["after"] = _read(file)
    report["entries"] = sorted(os.listdir(file.parent)) if file.parent.is_dir() else []
    report["memory_after"] = _state(storage)
    mark("save-3", marked)
    report["retried"] = _flush(storage)
    mark("saved", marked)
    report["final"] = _read(file)
    report["memory_final"] = _state(storage)
    report["closed"] = None
    try:
        storage.close()
    except Exception as exc:  # reported, not raised: the parent judges
        report["closed"] = f"{type(exc).__name__}: {exc}"[:300]
    return report


def _allow_any_tracer() -> None:
    """Let strace attach although it is not an ancestor of this process (Yama's
    ptrace_scope 1, the default of many distributions, allows ancestors only)."""
    with contextlib.suppress(Exception):  # no Yama, no libc prctl: nothing to allow
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(PR_SET_PTRACER_ANY), 0, 0, 0)


def _run_forked(
    factory: Callable[..., Any], path: str, go: str, out: str, epoch_ms: str, over_stdio: bool
) -> int:
    _allow_any_tracer()
    deadline = time.monotonic() + GO_TIMEOUT
    # Polled with calls the parent neither counts nor injects (stat, sleep).
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.0005)
    report = scenario(factory, path, epoch_ms)
    end = getattr(factory, "close", None)
    if over_stdio and end is not None:
        end()  # the adapter ends, then its strace: the log is whole
    data = json.dumps(report).encode()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:  # one write for a report this size: this thread's writes are counted
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return 0


def serve(target: str, epoch_ms: str) -> int:
    """Import ``target`` once; fork one run of B22's scenario per request line (see the
    module's docstring)."""
    # stdout is the parent's protocol: whatever the backend prints goes to stderr.
    protocol, sys.stdout = sys.stdout, sys.stderr
    factory = load_target(target)
    runs: list[int] = []
    while line := sys.stdin.readline():
        path, go, out, *wrap = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:
            code, why = 1, ""
            try:
                if wrap:  # over stdio: this run's adapter starts under strace
                    os.environ[WRAP_VARIABLE] = wrap[0]
                    os.setpgid(0, 0)  # a group of its own: its adapter can be killed with it
                    os.environ[GROUP_VARIABLE] = "inherit"
                code = _run_forked(factory, path, go, out, epoch_ms, bool(wrap))
            except BaseException as exc:
                traceback.print_exc()
                why = f"{type(exc).__name__}: {exc}"
            finally:
                if wrap:
                    with contextlib.suppress(OSError):
                        Path(f"{out}.done").write_text(why)
                    if code != 0:  # an adapter that hung may outlive its killed strace
                        os.killpg(0, signal.SIGKILL)
                os._exit(code)  # not the parent's atexit hooks, nor its buffered output
        runs.append(pid)
        print(pid, file=protocol, flush=True)
    for pid in runs:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(serve(*sys.argv[1:]))
