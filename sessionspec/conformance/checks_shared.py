"""Targeted checks of the shared level (SPEC.md §8, B25-B30): several instances on one path.

Each check opens two or three instances on one path with one clock, has them change the store
in a set order with flushes between, and compares a fresh instance's view with the state
§8.2's merge yields, worked out by hand in the check. The many-processes checks run real
child processes at once (``child.py shared-burst``); the lock checks hold the sidecar lock
from the kit.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.clock import epoch_ms
from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.loading import child_environment
from sessionspec.conformance.oracle import to_millis
from sessionspec.conformance.registry import check
from sessionspec.spec import ConversationTurn, Level, SessionStorage

MS = timedelta(milliseconds=1)
CHILD = "sessionspec.conformance.child"
#: The many-processes workload: processes x (own sessions x turns, one deleted, shared turns).
PROCESSES, OWN, TURNS, SHARED_TURNS = 4, 4, 3, 5
SHARED_ID = "shared-by-all"
_GUARD = 120.0  # seconds: a hang guard for child processes and waits, far above need


def _turn(ctx: CheckContext, prompt: str, ms: int) -> ConversationTurn:
    """A turn stamped ``ms`` milliseconds after the check's start time."""
    return ConversationTurn(prompt, "r", ctx.clock() + ms * MS)


def _prompts(storage: SessionStorage, session_id: str) -> list[str] | None:
    session = storage.get_session(session_id)
    return None if session is None else [t.prompt for t in session.turns]


def _fresh(ctx: CheckContext) -> SessionStorage:
    """A new instance on the path, after what was saved passed the writer profile (B10)."""
    ctx.require_valid_file()
    return ctx.open()


def _seeded(ctx: CheckContext, *prompts: str, session_id: str = "x") -> str:
    """A session with ``prompts`` as turns, saved and closed before the check's own instances
    open: their common base."""
    first = ctx.open()
    first.ensure_session(session_id)
    for i, prompt in enumerate(prompts):
        first.add_turn(session_id, _turn(ctx, prompt, i))
    first.close()
    return session_id


# -- B25 shared-keeps-others ------------------------------------------------------------------


@check("B25")
def each_instance_keeps_the_others_sessions(ctx: CheckContext) -> None:
    """Two instances create sessions and flush in turn: a fresh instance has all of them."""
    one, two = ctx.open(), ctx.open()
    made: dict[str, list[str]] = {}
    for round_ in range(3):
        for name, storage in (("one", one), ("two", two)):
            session_id = storage.create_session()
            storage.add_turn(session_id, _turn(ctx, f"{name}-{round_}", round_))
            storage.flush()
            made[session_id] = [f"{name}-{round_}"]
    fresh = _fresh(ctx)
    found = {session_id: _prompts(fresh, session_id) for session_id in made}
    ctx.expect(
        found == made,
        "a save lost sessions another instance had saved",
        expected=made,
        actual=found,
    )


@check("B25")
def a_save_keeps_changes_it_did_not_make(ctx: CheckContext) -> None:
    """One instance adds a turn and a conversation id to a loaded session; another, which
    never touched it, saves later: the change stays."""
    session_id = _seeded(ctx, "base")
    one, two = ctx.open(), ctx.open()
    ctx.clock.advance(MS)
    one.add_turn(session_id, _turn(ctx, "one", 0))
    one.set_codex_conversation_id(session_id, "conv-one")
    one.flush()
    two.create_session()
    two.flush()
    fresh = _fresh(ctx)
    session = fresh.get_session(session_id)
    actual = (
        None
        if session is None
        else ([t.prompt for t in session.turns], session.codex_conversation_id)
    )
    ctx.expect_equal(
        actual,
        (["base", "one"], "conv-one"),
        "another instance's save undid a change it did not make",
    )


@check("B25")
def a_change_of_the_same_size_is_kept(ctx: CheckContext) -> None:
    """The other instance only touches a session, so the file keeps its size (a timestamp for
    a timestamp of the same length); this one then changes another session and saves: the
    touch stays. A file's size or stat is no proof that it is what this instance last saw
    (SPEC.md §8.2): only its bytes are."""
    _seeded(ctx, "x-base", session_id="x")
    _seeded(ctx, "y-base", session_id="y")
    one, two = ctx.open(), ctx.open()
    touched = ctx.clock.advance(MS)
    two.ensure_session("x")
    seen = two.get_session("x")
    ctx.require("B07", seen is not None and seen.last_accessed_at == to_millis(touched),
                "ensure_session of a present session touches it")  # fmt: skip
    two.flush()
    ctx.clock.advance(MS)
    one.add_turn("y", _turn(ctx, "y-one", 0))  # no read here: it would take the touch in
    one.flush()
    fresh = _fresh(ctx)
    x, y = fresh.get_session("x"), fresh.get_session("y")
    actual = (
        None if x is None else x.last_accessed_at,
        None if y is None else [t.prompt for t in y.turns],
    )
    expected = (to_millis(touched), ["y-base", "y-one"])
    ctx.expect_equal(actual, expected, "a touch saved by one instance, then another's save")


# -- B26 shared-deletes-stick -----------------------------------------------------------------


@check("B26")
def a_stale_copy_does_not_bring_a_deleted_session_back(ctx: CheckContext) -> None:
    """Both instances loaded x; one deletes it; the other, which never touched x, creates a
    session; the delete is saved first, or last (its save then merges a changed file)."""
    for delete_saves_first in (True, False):
        session_id = _seeded(ctx, "base", session_id=f"x{delete_saves_first}")
        one, two = ctx.open(), ctx.open()
        if delete_saves_first:
            ctx.expect(one.delete_session(session_id), "delete_session of a loaded session")
            one.flush()
            other = two.create_session()
            two.flush()
        else:  # the file changes under the deleting instance: its save must merge
            other = two.create_session()
            two.flush()
            ctx.expect(one.delete_session(session_id), "delete_session of a loaded session")
            one.flush()
        order = "the delete saved first" if delete_saves_first else "the delete saved last"
        fresh = _fresh(ctx)
        ctx.expect(fresh.get_session(session_id) is None, f"a deleted session came back ({order})")
        ctx.expect(
            fresh.get_session(other) is not None, f"the other instance's session was lost ({order})"
        )
        one.close()
        two.close()


@check("B26")
def a_change_after_the_base_beats_a_delete(ctx: CheckContext) -> None:
    """One instance adds a turn to x and flushes; the other, which loaded x before, deletes
    it: x ends either kept with the turn (the delete's base did not hold the change, SPEC.md
    §8.2: nothing typed is lost) or deleted (the instance took the change in before deleting,
    as a backend that reads the shared state on every call does), never half of each."""
    session_id = _seeded(ctx, "base")
    one, two = ctx.open(), ctx.open()
    ctx.clock.advance(MS)
    two.add_turn(session_id, _turn(ctx, "typed", 1))
    two.flush()
    one.delete_session(session_id)
    one.flush()
    two.flush()
    found = _prompts(_fresh(ctx), session_id)
    ctx.expect(
        found in (None, ["base", "typed"]),
        "a delete racing a change: the session is kept with the change, or gone",
        expected="['base', 'typed'] or no session",
        actual=found,
    )


# -- B27 shared-merges-turns ------------------------------------------------------------------


@check("B27")
def appended_turns_of_both_merge_by_timestamp(ctx: CheckContext) -> None:
    """Both append to x, alternating timestamps; each flushes once: every turn, in timestamp
    order, none twice."""
    session_id = _seeded(ctx, "base")
    one, two = ctx.open(), ctx.open()
    for ms, storage in ((10, one), (20, two), (30, one), (40, two)):
        storage.add_turn(session_id, _turn(ctx, f"t{ms}", ms))
    one.flush()
    two.flush()
    ctx.expect_equal(
        _prompts(_fresh(ctx), session_id),
        ["base", "t10", "t20", "t30", "t40"],
        "turns appended by two instances, merged",
    )


@check("B27")
def equal_timestamps_keep_the_file_s_turn_first(ctx: CheckContext) -> None:
    """Both append a turn with one timestamp: the one already in the file comes first."""
    session_id = _seeded(ctx, "base")
    one, two = ctx.open(), ctx.open()
    one.add_turn(session_id, _turn(ctx, "saved-first", 5))
    one.flush()  # in the file before the other adds (write-behind may save at any moment)
    two.add_turn(session_id, _turn(ctx, "saved-second", 5))
    two.flush()
    ctx.expect_equal(
        _prompts(_fresh(ctx), session_id),
        ["base", "saved-first", "saved-second"],
        "equal timestamps: the receiving (file's) turn first",
    )


@check("B27")
def a_reset_keeps_the_other_side_s_appends(ctx: CheckContext) -> None:
    """One resets x while the other appends, in either save order: x holds the appended turn
    alone (the reset's empty list with the other's added turn merged in), or nothing when the
    resetting instance took the append in first; never a base turn, never the turn twice."""
    for reset_saves_first in (True, False):
        session_id = _seeded(ctx, "base-0", "base-1", session_id=f"x{reset_saves_first}")
        one, two = ctx.open(), ctx.open()
        ctx.clock.advance(MS)
        one.reset_session(session_id)
        two.add_turn(session_id, _turn(ctx, "appended", 9))
        for storage in (one, two) if reset_saves_first else (two, one):
            storage.flush()
        order = "reset saved first" if reset_saves_first else "append saved first"
        found = _prompts(_fresh(ctx), session_id)
        ctx.expect(
            found in (["appended"], []),
            f"a reset and a concurrent append ({order})",
            expected="['appended'] (or [] if the reset saw the append)",
            actual=found,
        )
        one.close()
        two.close()


@check("B27")
def when_both_replace_the_later_touch_wins(ctx: CheckContext) -> None:
    """Both replace x's turns; the one touched later wins whole, whichever saves first."""
    for later_saves_first in (True, False):
        session_id = _seeded(ctx, "base", session_id=f"x{later_saves_first}")
        one, two = ctx.open(), ctx.open()
        ctx.clock.advance(MS)
        one.update_session(session_id, turns=[_turn(ctx, "earlier", 1)])
        ctx.clock.advance(MS)
        two.update_session(session_id, turns=[_turn(ctx, "later", 2)])
        for storage in (two, one) if later_saves_first else (one, two):
            storage.flush()
        ctx.expect_equal(
            _prompts(_fresh(ctx), session_id),
            ["later"],
            "both replaced the turns: the later touch's list",
        )
        one.close()
        two.close()


# -- B28 shared-merges-fields -----------------------------------------------------------------


@check("B28")
def conversation_id_and_timestamps_merge(ctx: CheckContext) -> None:
    """One sets the conversation id, the other touches later: the id stays, lastAccessedAt is
    the later; then both set it: the later touch's, whichever saves first."""
    session_id = _seeded(ctx, "base")
    created = ctx.clock()
    one, two = ctx.open(), ctx.open()
    ctx.clock.advance(MS)
    one.set_codex_conversation_id(session_id, "from-one")
    touched = ctx.clock.advance(MS)
    two.add_turn(session_id, _turn(ctx, "two", 3))
    two.flush()
    one.flush()
    session = _fresh(ctx).get_session(session_id)
    actual = (
        None
        if session is None
        else (session.codex_conversation_id, session.last_accessed_at, session.created_at)
    )
    expected = ("from-one", to_millis(touched), to_millis(created))
    ctx.expect_equal(actual, expected, "conversation id set on one side, touched on the other")
    three, four = ctx.open(), ctx.open()
    ctx.clock.advance(MS)
    three.set_codex_conversation_id(session_id, "earlier")
    ctx.clock.advance(MS)
    four.set_codex_conversation_id(session_id, "later")
    four.flush()
    three.flush()
    ctx.expect_equal(
        _fresh(ctx).get_codex_conversation_id(session_id),
        "later",
        "both set the conversation id: the later touch's",
    )


@check("B28")
def ensure_on_both_sides_is_one_session(ctx: CheckContext) -> None:
    """Both ensure one new id and add a turn: one session, the earlier createdAt, both turns."""
    one, two = ctx.open(), ctx.open()
    created = ctx.clock()
    one.ensure_session("both")
    one.add_turn("both", _turn(ctx, "one", 1))
    one.flush()
    ctx.clock.advance(MS)
    two.add_turn("nobody", _turn(ctx, "ignored", 0))  # unknown id: refreshes, then nothing
    two.ensure_session("both")
    two.add_turn("both", _turn(ctx, "two", 2))
    two.flush()
    session = _fresh(ctx).get_session("both")
    actual = None if session is None else ([t.prompt for t in session.turns], session.created_at)
    ctx.expect_equal(
        actual, (["one", "two"], to_millis(created)), "one id ensured by two instances"
    )


@check("B28")
def the_cap_applies_to_the_merged_state(ctx: CheckContext) -> None:
    """60 sessions saved by one instance, then 60 later ones by another: the file keeps the 100
    most recently accessed."""
    one, two = ctx.open(), ctx.open()
    first = [one.create_session() for _ in range(60)]
    one.flush()
    ctx.clock.advance(MS)
    second = [two.create_session() for _ in range(60)]
    two.flush()
    kept = {s.id for s in _fresh(ctx).list_sessions()}
    # The first 60 tie on lastAccessedAt; which 40 of them stay is their access order (B04).
    ctx.expect(
        set(second) <= kept and len(kept) == 100 and kept - set(second) <= set(first),
        "the merged state over the cap keeps the 100 most recently accessed",
        expected="the 60 later sessions and 40 of the earlier",
        actual=len(kept),
    )


# -- B29 shared-sees-others -------------------------------------------------------------------


@check("B29")
def a_session_created_elsewhere_is_found_listed_and_appended_to(ctx: CheckContext) -> None:
    """A session created and flushed by one instance is visible to and usable by another that
    was opened before it existed."""
    one, two = ctx.open(), ctx.open()
    two.list_sessions()
    session_id = one.create_session()
    one.add_turn(session_id, _turn(ctx, "one", 1))
    one.flush()
    ctx.expect_equal(_prompts(two, session_id), ["one"], "get_session of a session saved elsewhere")
    ctx.expect(
        session_id in [s.id for s in two.list_sessions()],
        "list_sessions shows a session saved elsewhere",
    )
    two.add_turn(session_id, _turn(ctx, "two", 2))
    two.flush()
    ctx.expect_equal(
        _prompts(_fresh(ctx), session_id), ["one", "two"], "add_turn on a session saved elsewhere"
    )


@check("B29")
def unknown_ids_are_looked_up_before_giving_up(ctx: CheckContext) -> None:
    """Each id-taking mutation first used on a session saved elsewhere acts on it."""
    one, two = ctx.open(), ctx.open()
    two.list_sessions()
    ids = [one.create_session() for _ in range(3)]
    one.flush()
    two.set_codex_conversation_id(ids[0], "conv")
    ctx.expect_equal(
        two.get_codex_conversation_id(ids[0]),
        "conv",
        "set_codex_conversation_id on a session saved elsewhere",
    )
    three = ctx.open()
    ids.append(one.create_session())
    one.flush()
    ctx.expect(
        three.delete_session(ids[3]), "delete_session of a session saved elsewhere returns True"
    )


@check("B29")
def a_delete_elsewhere_is_seen(ctx: CheckContext) -> None:
    """A session another instance deleted and flushed is gone from this one's reads."""
    session_id = _seeded(ctx, "base")
    one, two = ctx.open(), ctx.open()
    two.list_sessions()
    one.delete_session(session_id)
    one.flush()
    ctx.expect(
        two.get_session(session_id) is None, "get_session of a session another instance deleted"
    )
    ctx.expect(
        session_id not in [s.id for s in two.list_sessions()],
        "list_sessions shows a session another instance deleted",
    )


@check("B29", requires=Level.FILE_V1)
def taking_in_the_file_writes_nothing(ctx: CheckContext) -> None:
    """Reads that take in another instance's save leave the file exactly as it was (a file
    backend's: another backend has no file to take in; its reads are pure by B23)."""
    one, two = ctx.open(), ctx.open()
    two.list_sessions()
    one.create_session()
    one.flush()
    before = ctx.path.read_bytes(), os.stat(ctx.path).st_mtime_ns
    for _ in range(3):
        two.list_sessions()
    two.flush()
    ctx.expect(
        before == (ctx.path.read_bytes(), os.stat(ctx.path).st_mtime_ns),
        "taking in another instance's save wrote the file",
    )


# -- many processes at once (B25, B26, B27) ---------------------------------------------------


def _workload(ctx: CheckContext) -> dict[str, Any]:
    """Run the many-processes workload once per run: PROCESSES children (or threads, for a
    factory without an importable name) start together on one path; then a fresh instance
    reads. Returns what the children report and what the reader sees."""
    cached: dict[str, Any] | None = ctx.run.cache.get("shared-workload")
    if cached is not None:
        return cached
    ctx.path.parent.mkdir(parents=True, exist_ok=True)
    go = ctx.path.with_name("go")
    stamp = str(epoch_ms(ctx.clock()))
    reports: list[dict[str, Any]] = []
    if ctx.run.target:
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    CHILD,
                    "shared-burst",
                    ctx.run.target,
                    str(ctx.path),
                    stamp,
                    str(index),
                    str(go),
                ],
                env=child_environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for index in range(PROCESSES)
        ]
        go.touch()
        for child in children:
            out, err = child.communicate(timeout=_GUARD)
            if child.returncode != 0:
                raise RuntimeError(f"a shared-burst child failed:\n{err[-2000:]}")
            reports.append(json.loads(out))
        how = f"{PROCESSES} child processes"
    else:
        from sessionspec.conformance.child import shared_burst

        results: list[dict[str, Any]] = [{} for _ in range(PROCESSES)]
        threads = [
            threading.Thread(
                target=lambda i=index: results.__setitem__(
                    i, shared_burst(ctx.open(raw=True), i, go)
                )
            )
            for index in range(PROCESSES)
        ]
        for thread in threads:
            thread.start()
        go.touch()
        for thread in threads:
            thread.join(_GUARD)
        reports = results
        how = f"{PROCESSES} threads (the factory has no importable name to start processes)"
    ctx.require_valid_file()
    fresh = ctx.open()
    seen = {s.id: [t.prompt for t in s.turns] for s in fresh.list_sessions()}
    fresh.close()
    outcome = {"reports": reports, "seen": seen, "how": how}
    ctx.run.cache["shared-workload"] = outcome
    return outcome


@check("B25")
def processes_at_once_lose_nothing(ctx: CheckContext) -> None:
    """Several processes create sessions and add turns on one path at once: every kept
    session is there with all its turns."""
    outcome = _workload(ctx)
    ctx.notes.append(outcome["how"])
    expected = {
        sid: turns for report in outcome["reports"] for sid, turns in report["kept"].items()
    }
    actual = {sid: outcome["seen"].get(sid) for sid in expected}
    lost = sorted(sid for sid in expected if actual[sid] != expected[sid])
    ctx.expect(
        not lost,
        f"{len(lost)} of {len(expected)} sessions lost or missing turns",
        expected={sid: expected[sid] for sid in lost[:3]},
        actual={sid: actual[sid] for sid in lost[:3]},
    )


@check("B26")
def processes_at_once_resurrect_nothing(ctx: CheckContext) -> None:
    """Sessions deleted by one of several processes at once stay deleted."""
    outcome = _workload(ctx)
    ctx.notes.append(outcome["how"])
    deleted = [sid for report in outcome["reports"] for sid in report["deleted"]]
    back = [sid for sid in deleted if sid in outcome["seen"]]
    ctx.expect(
        not back,
        f"{len(back)} of {len(deleted)} deleted sessions came back",
        expected=[],
        actual=back,
    )


@check("B27")
def processes_at_once_keep_every_shared_turn(ctx: CheckContext) -> None:
    """Several processes append to one session at once: every turn exactly once, each
    process's in its own order. (Not the global timestamp order: a backend that reads the
    shared state on every call appends a turn stamped before another process's commit after
    it, and conforms.)"""
    outcome = _workload(ctx)
    ctx.notes.append(outcome["how"])
    made = sorted(prompt for report in outcome["reports"] for prompt, _ in report["shared"])
    seen: list[str] = outcome["seen"].get(SHARED_ID) or []
    ctx.expect_equal(sorted(seen), made, "the turns of the session every process appended to")
    for report in outcome["reports"]:
        own = [prompt for prompt, _ in report["shared"]]
        ctx.expect_equal([p for p in seen if p in own], own, "one process's turns, in its order")


# -- the shared state machine (B25-B29) -------------------------------------------------------


def _machine_verdict(ctx: CheckContext) -> None:
    """Raise the shared machine's violation if it is this check's behaviour (one run, cached)."""
    from sessionspec.conformance.machine_shared import run_shared_machine

    if "shared-machine" not in ctx.run.cache:
        ctx.run.cache["shared-machine"] = run_shared_machine(ctx.run)
    violation = ctx.run.cache["shared-machine"]
    if violation is not None and violation.behaviour_id == ctx.behaviour_id:
        raise violation


for _behaviour in ("B25", "B26", "B27", "B28", "B29"):
    check(_behaviour, name="shared_state_machine")(_machine_verdict)


# -- B30 shared-file-lock ---------------------------------------------------------------------


def _lock_path(ctx: CheckContext) -> Path:
    return ctx.path.with_name(ctx.path.name + ".lock")


@check("B30", requires=Level.FILE_V1)
def the_lock_file_is_private_and_stays(ctx: CheckContext) -> None:
    """After saves and close, <name>.lock is a private regular file, the same one throughout."""
    storage = ctx.open()
    storage.create_session()
    storage.flush()
    lock = _lock_path(ctx)
    ctx.expect(os.path.lexists(lock), "a save of a shared file backend creates <name>.lock")
    first = os.lstat(lock)
    ctx.expect(
        stat.S_ISREG(first.st_mode) and stat.S_IMODE(first.st_mode) == 0o600,
        "the lock file is a regular file, mode 0o600",
        expected="0o600",
        actual=oct(stat.S_IMODE(first.st_mode)),
    )
    storage.create_session()
    storage.close()
    other = ctx.open()
    other.create_session()
    other.close()
    ctx.expect(os.path.lexists(lock), "the lock file must never be deleted")
    last = os.lstat(lock)
    ctx.expect(
        (last.st_dev, last.st_ino) == (first.st_dev, first.st_ino),
        "the lock file must never be replaced",
    )


@check("B30", requires=Level.FILE_V1)
def a_save_waits_while_another_holds_the_lock(ctx: CheckContext) -> None:
    """While the kit holds an exclusive flock on <name>.lock, flush() does not complete and the
    file is not written; once released, flush() returns and the file holds the change."""
    storage = ctx.open()
    storage.create_session()
    storage.flush()
    before = ctx.path.read_bytes()
    fd = os.open(_lock_path(ctx), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    done = threading.Event()
    error: list[BaseException] = []

    def flush() -> None:
        try:
            storage.flush()
        except BaseException as exc:  # reported below
            error.append(exc)
        finally:
            done.set()

    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        session_id = storage.create_session()
        waiter = threading.Thread(target=flush, daemon=True)
        waiter.start()
        time.sleep(0.5)
        ctx.expect(not done.is_set(), "flush() returned while another held the lock")
        ctx.expect(ctx.path.read_bytes() == before, "the file was written without the lock")
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    ctx.expect(done.wait(_GUARD), "flush() did not return after the lock was released")
    ctx.expect(not error, f"flush() failed after the lock was released: {error!r:.200}")
    ctx.expect(
        session_id in {s.id for s in _fresh(ctx).list_sessions()},
        "the save made while waiting for the lock",
    )


@check("B30", requires=Level.FILE_V1)
def every_rename_happens_under_the_lock(ctx: CheckContext) -> None:
    """In a trace of two instances saving one after the other (strace, else an in-process
    spy), an exclusive flock on <name>.lock is held at every rename over the file."""
    from sessionspec.conformance.checks_process import _saves, save_trace

    trace = save_trace(ctx)
    ctx.notes.append(f"observed with {trace.method}")
    lock_path = str(trace.directory / "sessions.json.lock")
    # Keyed by thread and descriptor, but any holder counts at a rename: a flock belongs to an
    # open file description, and runtimes (Go, libuv, tokio) move calls between threads.
    held: dict[tuple[int | None, str], bool] = {}
    saves = set(_saves(trace))
    ctx.expect(saves, f"no save was observed ({trace.method})")
    for index, event in enumerate(trace.events):
        if event.kind == "flock" and event.path == lock_path:
            if "LOCK_UN" in event.flags:
                held[(event.thread, event.target)] = False
            elif "LOCK_EX" in event.flags:
                held[(event.thread, event.target)] = True
        elif event.kind == "close" and event.path == lock_path:
            held[(event.thread, event.target)] = False
        elif index in saves:
            ctx.expect(
                any(held.values()),
                f"a rename over the sessions file while no exclusive flock on {lock_path} was held",
                actual=f"event {index} of {len(trace.events)} ({trace.method})",
            )
