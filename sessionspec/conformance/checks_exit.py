"""B33: a process that ends keeps its mutations; a forked child's instance works or refuses.

Servers are stopped, not closed. One check runs a real child process that mutates and returns
from its main without flush() or close(); the file must then hold everything. The other forks
this process after a save (so a writer thread, if the backend has one, is running) and has the
child mutate its inherited instance and flush(): it must save, or refuse the mutation; a
flush() that never returns (a writer thread that the child does not have) or that fails after
the mutation was accepted is the bug.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings

from sessionspec.conformance.child import session_as_json
from sessionspec.conformance.clock import epoch_ms
from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.loading import child_environment
from sessionspec.conformance.registry import CheckNotApplicable, CheckNotRun, check
from sessionspec.spec import ConversationTurn

CHILD = "sessionspec.conformance.child"
#: How long the forked child may take to mutate and flush before it counts as blocked.
FORK_CHILD_SECONDS = 10
#: The forked child's exit codes.
SAVED, REFUSED, FLUSH_RAISED, CRASHED = 0, 3, 4, 5


@check("B33")
def exit_without_close_keeps_mutations(ctx: CheckContext) -> None:
    """A child process mutates and returns from main without flush() or close(): a new
    instance then reads every change."""
    if ctx.run.target is None:
        raise CheckNotRun("needs a TARGET another process can import (the backend is local)")
    done = subprocess.run(
        [
            sys.executable, "-m", CHILD, "exit-without-close", ctx.run.target, str(ctx.path),
            str(epoch_ms(ctx.clock())),
        ],
        env=child_environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    told = json.loads(done.stdout.strip().splitlines()[-1])
    ctx.require_valid_file()  # B10's, and how each session reads back B09's
    stored = [session_as_json(s) for s in ctx.open().list_sessions()]
    ctx.expect_same_store(
        stored, told, "what a new instance reads after a process mutated and exited without close()"
    )


@check("B33")
def forked_child_saves_or_refuses(ctx: CheckContext) -> None:
    """After a fork, the child's inherited instance saves its mutations, or refuses them: it
    never accepts a mutation and then blocks or fails in flush()."""
    if not hasattr(os, "fork"):
        raise CheckNotRun("this platform has no fork()")
    if getattr(ctx.factory, "sessionspec_over_stdio", False):
        raise CheckNotApplicable(
            "a fork of the kit does not fork a stdio adapter: the backend's own process is"
            " never forked with an open instance (PROTOCOL.md §6)"
        )
    storage = ctx.open()
    session_id = storage.create_session()
    storage.add_turn(session_id, ConversationTurn("before fork", "r", ctx.clock()))
    storage.flush()
    with warnings.catch_warnings():  # 3.12+ warns about fork with threads: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into the kit
        code = CRASHED
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)  # a blocked child dies of it
            signal.alarm(FORK_CHILD_SECONDS)
            try:
                storage.add_turn(session_id, ConversationTurn("in child", "r", ctx.clock()))
            except Exception:
                code = REFUSED
            else:
                try:
                    storage.flush()
                    code = SAVED
                except Exception:
                    code = FLUSH_RAISED
        finally:
            os._exit(code)
    status = _wait(pid, FORK_CHILD_SECONDS + 5)
    ctx.expect(
        status is not None and not os.WIFSIGNALED(status),
        "the forked child's add_turn or flush() blocked: an instance inherited across fork()"
        " must keep working or raise on use (a writer thread does not survive a fork)",
        actual="no exit" if status is None else f"killed by signal {os.WTERMSIG(status)}",
    )
    assert status is not None
    code = os.WEXITSTATUS(status)
    ctx.expect(
        code != FLUSH_RAISED,
        "the forked child's instance accepted add_turn, then flush() raised: it must either"
        " save the child's mutations or refuse them",
    )
    ctx.expect(code in (SAVED, REFUSED), "the forked child crashed", actual=f"exit {code}")
    if code == SAVED:
        ctx.require_valid_file()
        session = ctx.open().get_session(session_id)
        turns = None if session is None else sorted(t.prompt for t in session.turns)
        ctx.expect_equal(  # sorted: their order is B02's
            turns, ["before fork", "in child"], "the turns on disk after the child's flush()"
        )


def _wait(pid: int, seconds: float) -> int | None:
    """The child's wait status, or None (and the child killed) after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None
