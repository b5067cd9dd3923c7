"""The shared level's state machine (SPEC.md §8, B25-B29): instances on one path, interleaved.

Two or three instances of the backend share one path and one clock. Each step acts on one of
them: create, ensure, add a turn, reset, delete, flush, reopen, read. The clock moves one
millisecond before every step, so every touch and every turn has its own instant. When the
program ends, every instance flushes, every instance reads (taking in the others' saves), and
a fresh instance reads too.

A write-behind backend saves in the background at moments the kit does not control, and
where the merge lands depends on those moments (a delete racing a change keeps the change,
SPEC.md §8.2). So the oracle does not predict one state: it checks what must hold whatever
the moments were, from the kit's own record of the program (not from any merge code):

- every instance and a fresh one see the same store once all have flushed (B29);
- every session created and never deleted is there (B25);
- a session deleted by one instance, that no other instance ever changed, is gone (B26);
- every turn an instance added is there at most once; exactly once unless its session was
  reset or deleted after it, or by another instance at any time; turns are in timestamp
  order (B27);
- a surviving session's ``lastAccessedAt`` is its latest touch by any instance (B28).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sessionspec.conformance.clock import FakeClock
from sessionspec.conformance.context import RunState
from sessionspec.conformance.oracle import to_millis
from sessionspec.conformance.registry import BehaviourViolation
from sessionspec.spec import ConversationTurn, SessionStorage

MS = timedelta(milliseconds=1)
ENSURED = ("alpha", "beta")  # ids two instances may ensure at once (created on both sides)


@dataclass
class Record:
    """What the program did to one session id, in step order (the kit's own bookkeeping)."""

    touches: list[tuple[int, Any]] = field(default_factory=list)  # (step, instant) of touches
    changed_by: set[int] = field(default_factory=set)  # instances that changed it
    turns: list[tuple[int, str, int]] = field(default_factory=list)  # (step, prompt, instance)
    wipes: list[tuple[int, int]] = field(default_factory=list)  # (step, instance) of a reset/delete
    deleted_by: dict[int, int] = field(default_factory=dict)  # instance -> step of its delete
    created: bool = False


class SharedMachine(RuleBasedStateMachine):
    """Instances on one path; see the module docstring. ``factory`` is set per run."""

    factory: Callable[..., Any]
    workdir: Path

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.dir = Path(tempfile.mkdtemp(prefix="shared-", dir=self.workdir))
        self.path = self.dir / "store" / "sessions.json"
        self.instances: list[SessionStorage] = []
        self.records: dict[str, Record] = {}
        self.step = 0
        self.counter = 0

    # -- helpers ----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        note(text)

    def tick(self) -> Any:
        self.step += 1
        return self.clock.advance(MS)

    def record(self, session_id: str) -> Record:
        return self.records.setdefault(session_id, Record())

    def known(self) -> list[str]:
        return sorted(self.records)

    def holds(self, index: int, session_id: str) -> bool:
        """Whether the instance holds the session now (a read: it takes in the file, B29)."""
        return self.instances[index].get_session(session_id) is not None

    def touched(self, index: int, session_id: str, now: Any) -> None:
        record = self.record(session_id)
        record.touches.append((self.step, to_millis(now)))
        record.changed_by.add(index)

    # -- rules ------------------------------------------------------------------------------

    @initialize(count=st.integers(min_value=2, max_value=3))
    def open_instances(self, count: int) -> None:
        self.say(f"# {count} instances on one path")
        self.instances = [self.factory(self.path, clock=self.clock) for _ in range(count)]

    @precondition(lambda self: len(self.records) < 40)  # far under the cap: B18 is B18's
    @rule(index=st.integers(0, 2))
    def create(self, index: int) -> None:
        index %= len(self.instances)
        now = self.tick()
        session_id = self.instances[index].create_session()
        self.say(f"i{index}.create_session()  # {session_id}")
        self.record(session_id).created = True
        self.touched(index, session_id, now)

    @rule(index=st.integers(0, 2), name=st.sampled_from(ENSURED))
    def ensure(self, index: int, name: str) -> None:
        index %= len(self.instances)
        now = self.tick()
        self.say(f"i{index}.ensure_session({name!r})")
        self.instances[index].ensure_session(name)
        self.record(name).created = True
        self.touched(index, name, now)

    @precondition(lambda self: self.records)
    @rule(index=st.integers(0, 2), pick=st.integers(0, 1000))
    def add_turn(self, index: int, pick: int) -> None:
        index %= len(self.instances)
        session_id = self.known()[pick % len(self.records)]
        if not self.holds(index, session_id):
            return  # deleted (or not yet seen): add_turn would do nothing
        now = self.tick()
        self.counter += 1
        prompt = f"t{self.counter}"
        self.say(f"i{index}.add_turn({session_id!r}, {prompt!r})")
        self.instances[index].add_turn(session_id, ConversationTurn(prompt, "r", now))
        self.touched(index, session_id, now)
        self.record(session_id).turns.append((self.step, prompt, index))

    @precondition(lambda self: self.records)
    @rule(index=st.integers(0, 2), pick=st.integers(0, 1000))
    def reset(self, index: int, pick: int) -> None:
        index %= len(self.instances)
        session_id = self.known()[pick % len(self.records)]
        if not self.holds(index, session_id):
            return
        now = self.tick()
        self.say(f"i{index}.reset_session({session_id!r})")
        self.instances[index].reset_session(session_id)
        self.touched(index, session_id, now)
        self.record(session_id).wipes.append((self.step, index))

    @precondition(lambda self: self.records)
    @rule(index=st.integers(0, 2), pick=st.integers(0, 1000))
    def delete(self, index: int, pick: int) -> None:
        index %= len(self.instances)
        session_id = self.known()[pick % len(self.records)]
        self.tick()
        self.say(f"i{index}.delete_session({session_id!r})")
        if self.instances[index].delete_session(session_id):
            record = self.record(session_id)
            record.wipes.append((self.step, index))
            record.deleted_by[index] = self.step

    @rule(index=st.integers(0, 2))
    def flush(self, index: int) -> None:
        index %= len(self.instances)
        self.tick()
        self.say(f"i{index}.flush()")
        self.instances[index].flush()

    @rule(index=st.integers(0, 2))
    def reopen(self, index: int) -> None:
        index %= len(self.instances)
        self.tick()
        self.say(f"i{index}.close(); i{index} = factory(same path)")
        self.instances[index].close()
        self.instances[index] = self.factory(self.path, clock=self.clock)

    @rule(index=st.integers(0, 2))
    def read(self, index: int) -> None:
        index %= len(self.instances)
        self.tick()
        self.say(f"i{index}.list_sessions()")
        self.instances[index].list_sessions()

    # -- the end: all flush, all read, a fresh instance reads ---------------------------------

    def teardown(self) -> None:
        try:
            if self.instances:
                self.converge_and_judge()
        finally:
            for storage in self.instances:
                with contextlib.suppress(Exception):  # a failing close was judged already
                    storage.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def converge_and_judge(self) -> None:
        self.say("# the end: every instance flushes, then every instance and a fresh one read")
        for storage in self.instances:
            storage.flush()
        views = [_view(storage) for storage in self.instances]
        fresh = self.factory(self.path, clock=self.clock)
        try:
            final = _view(fresh)
        finally:
            fresh.close()
        for index, view in enumerate(views):
            if view != final:
                raise BehaviourViolation(
                    "B29",
                    f"after every instance flushed, instance {index} does not see what a fresh"
                    " instance sees",
                    expected=final,
                    actual=view,
                )
        self.judge(final)

    def judge(self, final: dict[str, tuple[Any, list[tuple[str, Any]]]]) -> None:
        for session_id, record in self.records.items():
            found = final.get(session_id)
            if record.created and not record.deleted_by and found is None:
                raise BehaviourViolation(
                    "B25", f"session {session_id!r}, created and never deleted, is gone"
                )
            deleters = set(record.deleted_by)
            if deleters and found is not None and not (record.changed_by - deleters):
                last_delete = max(record.deleted_by.values())
                if not any(step > last_delete for step, _ in record.touches):
                    raise BehaviourViolation(
                        "B26",
                        f"session {session_id!r} deleted by instance(s) {sorted(deleters)} and"
                        " changed by no other came back",
                    )
            if found is None:
                continue
            last_access, turns = found
            # A change lost where one instance alone changed the session was undone by a save
            # of an instance that did not change it (B25); with several, by the merge (B27/28).
            several = len(record.changed_by) > 1
            prompts = [prompt for prompt, _ in turns]
            for step, prompt, adder in record.turns:
                count = prompts.count(prompt)
                # A wipe may drop a turn if it came later, or if another instance made it at
                # any step: it may not have taken the turn in yet, and when both replaced the
                # turns the later touch's list wins whole (SPEC.md §8.2).
                wiped = any(when > step or who != adder for when, who in record.wipes)
                if count > 1 or (count == 0 and not wiped):
                    raise BehaviourViolation(
                        "B27" if several else "B25",
                        f"turn {prompt!r} of session {session_id!r} is there {count} times",
                        expected=1,
                        actual=count,
                    )
            stamps = [stamp for _, stamp in turns]
            if stamps != sorted(stamps):
                raise BehaviourViolation(
                    "B27",
                    f"the turns of session {session_id!r} are not in timestamp order",
                    expected=sorted(stamps),
                    actual=stamps,
                )
            latest = max((instant for _, instant in record.touches), default=None)
            if not record.deleted_by and latest is not None and last_access != latest:
                # (A session someone deleted may survive as another instance's older copy.)
                raise BehaviourViolation(
                    "B28" if several else "B25",
                    f"session {session_id!r}: lastAccessedAt is not its latest touch",
                    expected=latest,
                    actual=last_access,
                )


def _view(storage: SessionStorage) -> dict[str, tuple[Any, list[tuple[str, Any]]]]:
    return {
        s.id: (s.last_accessed_at, [(t.prompt, t.timestamp) for t in s.turns])
        for s in storage.list_sessions()
    }


def run_shared_machine(run: RunState) -> BehaviourViolation | None:
    """Run the machine with the profile's budget; the first violation found, or None.

    Not shrunk: which saves land before which reads depends on the backend's writer threads,
    so the same program may not fail again, and shrinking would chase it (the report says the
    program is the one that failed, as it ran).
    """
    machine = type(
        "SharedStorageMachine",
        (SharedMachine,),
        {"factory": staticmethod(run.factory), "workdir": run.workdir},
    )
    profile = run.profile
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=max(5, profile.max_examples // 2),
                stateful_step_count=profile.step_count,
                deadline=None,
                database=None,
                derandomize=profile.derandomize and run.seed is None,
                report_multiple_bugs=False,
                print_blob=False,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            ),
        )
    except Exception as exc:  # a violation, or hypothesis's wrapper of one (Flaky*)
        violation = _violation_in(exc)
        if violation is None:
            raise
        violation.program = "\n".join(str(n) for n in getattr(violation, "__notes__", ()))
        violation.replay = (
            "the program as it ran, not shrunk: where saves land depends on the backend's"
            " writer threads"
        )
        return violation
    return None


def _violation_in(exc: BaseException) -> BehaviourViolation | None:
    """The first BehaviourViolation in ``exc``, its exception groups, causes and contexts."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BehaviourViolation):
            return current
        pending.extend(getattr(current, "exceptions", ()))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None
