"""The stateful machine: drive a backend and the kit's model with the same random program.

Every observable result is compared after every step, and every comparison names exactly one
behaviour. One root cause, one FAIL: the first step where the backend and the model diverge
names the behaviour, the program is shrunk to the shortest hypothesis finds within the
profile's budget (counted in program runs, so the result is the same on every run), and later
divergences, being consequences of the first as often as not, are not reported. Each step is
also recorded as a Python statement: the program of a FAIL is a runnable replay script
(:mod:`sessionspec.conformance.replay`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, note, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sessionspec.conformance import strategies as gen
from sessionspec.conformance.checks_core import states_id_rule
from sessionspec.conformance.child import session_as_json
from sessionspec.conformance.clock import FakeClock
from sessionspec.conformance.context import CheckContext, Profile, RunState, writer_problem
from sessionspec.conformance.diff import structural_diff
from sessionspec.conformance.machine_files import FileSteps
from sessionspec.conformance.model import StoreModel
from sessionspec.conformance.oracle import (
    MAX_SESSIONS,
    SESSION_TTL,
    is_valid_session_id,
    parse_timestamp,
    to_millis,
)
from sessionspec.conformance.registry import (
    BehaviourViolation,
    CheckNotRun,
    make_check,
    register,
)
from sessionspec.spec import (
    UNSET,
    ConversationTurn,
    Level,
    SessionData,
    SessionStorage,
    ValidationError,
    writer_validator,
)

UUID4 = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")

#: The behaviours this machine asserts (each also has targeted checks elsewhere).
MACHINE_COVERS: dict[str, Level | None] = {
    "B01": None,
    "B02": None,
    "B03": None,
    "B04": None,
    "B05": None,
    "B06": None,
    "B07": None,
    "B08": None,
    "B09": None,
    "B10": None,
    "B17": None,
    "B18": None,
    # The machine compares the file with the model after each flush: needs the file.
    "B21": Level.FILE_V1,
    # The file steps (machine_files.FileSteps): foreign files, write faults, a directory.
    "B11": Level.FILE_V1,
    "B12": Level.FILE_V1,
    "B13": Level.FILE_V1,
    "B14": Level.FILE_V1,
    "B15": Level.FILE_V1,
    "B16": Level.FILE_V1,
    "B20": Level.FILE_V1,
    "B22": Level.FILE_V1,
    "B23": None,
    "B24": None,
}

_FAILED = object()

#: Calls that must change nothing in the file, and whose behaviour a change breaks.
WRITES_NOTHING = {
    "add_turn": "B02",
    "update_session": "B02",
    "reset_session": "B03",
    "set_codex_conversation_id": "B06",
    "get_codex_conversation_id": "B23",
    "ensure_session(invalid)": "B08",
}


def snapshot_problem(actual: object) -> str | None:
    """None when a read result is an immutable snapshot, else what is wrong with it (B24).

    Checked before any comparison, so a shared or mutable result is reported under B24 and
    not as a difference in whatever field it makes look wrong.
    """
    if actual is None:
        return None
    if not isinstance(actual, SessionData):
        return f"a read returned {type(actual).__name__}, not a SessionData snapshot"
    if type(actual.turns) is not tuple:
        return f"turns is a {type(actual.turns).__name__}, not a tuple: callers can change it"
    if not all(isinstance(t, ConversationTurn) for t in actual.turns):
        return "a turn is not a (frozen) ConversationTurn"
    return None


def sorted_by_own_stamps(listed: Sequence[Any]) -> bool:
    """The list is in descending order of the last-access times it shows itself (B04), or
    shows no comparable times at all (nothing to say then)."""
    stamps: list[Any] = [getattr(item, "last_accessed_at", None) for item in listed]
    try:
        return all(a >= b for a, b in itertools.pairwise(stamps))
    except TypeError:
        return True


def describe_difference(actual: SessionData | None, expected: SessionData | None) -> str | None:
    """None when equal (timestamps as aware UTC instants), else what differs.

    Turns compare as a sequence whatever their container: that they must be a tuple is
    ``snapshot_problem``'s business (B24), not a difference of content.
    """
    if actual is None or expected is None:
        if actual is expected:
            return None
        return "session missing" if actual is None else "session present but should not be"
    if not isinstance(actual, SessionData):
        return f"not a SessionData: {type(actual).__name__}"
    for name in ("id", "created_at", "last_accessed_at", "codex_conversation_id"):
        if getattr(actual, name) != getattr(expected, name):
            return f"{name} differs"
    try:
        turns = tuple(actual.turns)
    except TypeError:
        return "turns is not a sequence"
    if turns != expected.turns:
        return "turns differs"
    moments = [actual.created_at, actual.last_accessed_at, *(t.timestamp for t in turns)]
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None or moment.utcoffset():
            return f"timestamp {moment!r} is not an aware UTC datetime"
    return None


@dataclass
class MachineConfig:
    factory: Callable[..., Any]
    levels: frozenset[Level]
    workdir: Path
    #: Shared with the engine: ``machine_call`` is (behaviour, step) of the step in progress,
    #: so a call that hangs is charged to the right behaviour.
    shared: dict[str, Any] = field(default_factory=dict)
    #: The recorded program of the last example run (the shrunk one after a failure) and the
    #: ids the backend returned in it, in order.
    last_program: list[str] = field(default_factory=list)
    last_created: list[str] = field(default_factory=list)
    #: How many programs ran (the shrink budget's unit, see ``_shrink_budget``).
    runs: int = 0
    #: Print each step as it runs (the replay script) instead of noting it for hypothesis.
    echo: bool = False
    #: Hand each step to hypothesis's ``note()`` (off outside a hypothesis test: trimming).
    notes: bool = True
    #: The first divergence any program met, with that program and its ids: what is reported
    #: when hypothesis cannot replay it (a backend whose failure depends on timing).
    first_failure: tuple[BehaviourViolation, list[str], list[str]] | None = None


class StorageMachine(FileSteps, RuleBasedStateMachine):
    """Runs one random program against a backend and the model side by side."""

    config: ClassVar[MachineConfig]

    def __init__(self) -> None:
        super().__init__()
        self.config.runs += 1
        #: The program so far, one Python statement per step (``m`` is the machine).
        self.program: list[str] = []
        self.config.last_program = self.program
        #: Ids create_session returned, in order: the program names them ``m.created[i]``.
        self.created: list[str] = []
        self.config.last_created = self.created
        self.dir = Path(tempfile.mkdtemp(prefix="machine-", dir=self.config.workdir))
        self.path = self.dir / "store" / "sessions.json"
        self.clock = FakeClock()
        self.model = StoreModel()
        self.known: list[str] = []
        #: The behaviour of the last operation that used each id (for attribution).
        self.last_use: dict[str, str] = {}
        self.mutated = False
        self.saved_view: list[SessionData] = []
        #: read kind -> id -> (now, access clock, read number) of its latest read while live:
        #: what a read that touches (against B23) would have done, to tell that apart from
        #: other faults. Kinds: "get" (get_session), "cid" (get_codex_conversation_id).
        self.last_read: dict[str, dict[str, tuple[Any, int, int]]] = {"get": {}, "cid": {}}
        self.reads = 0

        self.say(f"# storage = factory(<dir>/store/sessions.json, clock) at {self.now.isoformat()}")
        # Not wrapped: a factory that cannot open an empty store stops the machine (an error).
        self.storage: SessionStorage = self._open()

    # -- plumbing --------------------------------------------------------------------------
    @property
    def now(self) -> Any:
        return self.clock()

    @property
    def durable(self) -> bool:
        return Level.DURABLE in self.config.levels or Level.FILE_V1 in self.config.levels

    @property
    def file_v1(self) -> bool:
        return Level.FILE_V1 in self.config.levels

    def _open(self) -> SessionStorage:
        storage: SessionStorage = self.config.factory(self.path, clock=self.clock)
        return storage

    def say(self, text: str) -> None:
        """Record a step (or a remark, as a comment) of the program."""
        self.program.append(text)
        if self.config.echo:
            print(text, flush=True)
        elif self.config.notes:
            note(text)

    def ref(self, value: object) -> str:
        """How the program names a value: ``m.created[i]`` for an id the backend made up,
        else its ``repr`` (so the program runs again against a backend that makes up new)."""
        if isinstance(value, str) and value in self.created:
            return f"m.created[{self.created.index(value)}]"
        return repr(value)

    def expect(
        self, bid: str, condition: object, message: str, *, expected: object = None,
        actual: object = None,
    ) -> None:  # fmt: skip
        if not condition:
            violation = BehaviourViolation(bid, message, expected=expected, actual=actual)
            if self.config.first_failure is None:
                self.config.first_failure = (violation, list(self.program), list(self.created))
            raise violation

    def call(self, bid: str, function: Callable[..., Any], label: str, *args: Any,
             **kwargs: Any) -> Any:  # fmt: skip
        """Call the backend; an unexpected exception is a violation of ``bid``."""
        self.config.shared["machine_call"] = (bid, label)
        try:
            return function(*args, **kwargs)
        except BehaviourViolation:
            raise
        except Exception as exc:
            self.expect(bid, False, f"{label} raised {exc!r}", actual=repr(exc))
            return _FAILED

    def use(self, session_id: object, bid: str) -> None:
        if isinstance(session_id, str):
            self.last_use[session_id] = bid

    def at_boundary(self, session_id: object) -> bool:
        """Idle for exactly 24 h: live by the spec, and where off-by-one expiry bugs show."""
        session = self.model.live(session_id, self.now)
        return session is not None and to_millis(self.now) - session.last_accessed_at == SESSION_TTL

    def owner(self, session_id: object, bid: str) -> str:
        """``bid``, unless the session sits on the expiry boundary: then B17 is at stake."""
        return "B17" if self.at_boundary(session_id) else bid

    def attribute(self, session_id: object) -> str:
        """Which behaviour a wrong observation about ``session_id`` breaks."""
        if not is_valid_session_id(session_id):
            return "B08"
        assert isinstance(session_id, str)
        if self.model.is_expired(session_id, self.now) or self.at_boundary(session_id):
            return "B17"
        if session_id in self.model.evicted and session_id not in self.model.sessions:
            return "B18"
        if session_id in self.model.deleted and session_id not in self.model.sessions:
            return "B05"
        if session_id in self.model.sessions and len(self.model.ordered(self.now)) >= MAX_SESSIONS:
            # A live session the backend lost while at the cap: a wrong eviction.
            actual = self.storage.get_session(session_id)
            if actual is None:
                return "B18"
        session = self.model.sessions.get(session_id)
        if session is not None and session.origin:
            return self.last_use.get(session_id, session.origin)
        return self.last_use.get(session_id, "B04")

    def draw_id(self, data: st.DataObject, *, invalid: bool = True) -> Any:
        """Mostly live ids, then other ids the store has seen, fresh valid ones, invalid ones."""
        live = [s.id for s in self.model.ordered(self.now)]
        kind = data.draw(st.integers(0, 9 if invalid else 8), label="id kind")
        if kind < 5 and live:
            return data.draw(st.sampled_from(live), label="live id")
        if kind < 7 and self.known:
            return data.draw(st.sampled_from(self.known), label="known id")
        if kind < 9:
            return data.draw(gen.valid_ids, label="valid id")
        return data.draw(gen.invalid_ids, label="invalid id")

    # -- reads: pure (B23) and snapshots (B24) ----------------------------------------------
    def note_read(self, session_id: object, kind: str = "get") -> None:
        """Remember a read of a live session (``kind`` "get" or "cid")."""
        if self.model.live(session_id, self.now) is not None:
            assert isinstance(session_id, str)
            self.reads += 1
            moment = (to_millis(self.now), self.model.access_clock, self.reads)
            self.last_read[kind][session_id] = moment

    def _latest_read(self, session_id: str, kinds: Sequence[str]) -> tuple[Any, int, int] | None:
        found = [self.last_read[k][session_id] for k in kinds if session_id in self.last_read[k]]
        return max(found, key=lambda read: read[2]) if found else None

    #: Which reads may be the ones that touch: each kind alone, or both.
    READ_HYPOTHESES: ClassVar[tuple[tuple[str, ...], ...]] = (("get",), ("cid",), ("get", "cid"))

    def touched_by_read(self, session_id: object, actual: object) -> bool:
        """The session's last access moved to the time of a later read: a read touched it."""
        expected = self.model.live(session_id, self.now)
        if expected is None or not isinstance(session_id, str):
            return False
        moment = getattr(actual, "last_accessed_at", None)
        for kinds in self.READ_HYPOTHESES:
            read = self._latest_read(session_id, kinds)
            if (
                read is not None
                and read[1] >= expected.access
                and moment == read[0]
                and read[0] > expected.last_accessed_at
            ):
                return True
        return False

    def order_if_reads_touched(self, kinds: Sequence[str]) -> list[str]:
        """List order had every read of these kinds since a session's last touch been a touch."""
        keyed = []
        for session in self.model.ordered(self.now):
            key: tuple[Any, float, int] = (session.last_accessed_at, session.access, 0)
            read = self._latest_read(session.id, kinds)
            if read is not None and read[1] >= session.access:
                key = (read[0], read[1] + 0.5, read[2])
            keyed.append((key, session.id))
        return [session_id for _, session_id in sorted(keyed, reverse=True)]

    def order_owner(self, actual_ids: list[Any], default: str) -> str:
        """Who a wrong list order breaks: B23 when reads that touched explain it exactly."""
        model_ids = [s.id for s in self.model.ordered(self.now)]
        for kinds in self.READ_HYPOTHESES:
            if_touched = self.order_if_reads_touched(kinds)
            shown = [i for i in if_touched if i in actual_ids]
            if if_touched != model_ids and actual_ids == shown:
                return "B23"
        return default

    def field_owner(self, session_id: object, actual: object, problem: str, default: str) -> str:
        if problem == "last_accessed_at differs" and self.touched_by_read(session_id, actual):
            return "B23"
        return default

    def check_snapshot(self, actual: object, label: str) -> bool:
        """Expect an immutable snapshot (B24); False when it is not one."""
        problem = snapshot_problem(actual)
        self.expect("B24", problem is None, f"{label}: {problem}", actual=type(actual).__name__)
        return problem is None

    def compare_one(self, session_id: object, bid: str, label: str) -> None:
        actual = self.call(bid, self.storage.get_session, "get_session", session_id)
        if actual is _FAILED:
            return
        self.note_read(session_id)
        self.check_snapshot(actual, f"after {label}: get_session({session_id!r:.40})")
        expected = self.model.get(session_id, self.now)
        problem = describe_difference(actual, expected)
        if problem:
            owner = bid if expected is not None else self.attribute_unknown(session_id, bid)
            owner = self.field_owner(session_id, actual, problem, owner)
            if actual is None and len(self.model.ordered(self.now)) >= MAX_SESSIONS:
                owner = "B18"  # a live session lost at the cap: a wrong eviction
            shown: tuple[object, object] = (expected, actual)
            if problem.endswith(" differs") and expected is not None and actual is not None:
                name = problem.split()[0]  # show the field that differs, not the whole snapshot
                shown = (getattr(expected, name), getattr(actual, name, None))
            self.expect(
                owner,
                False,
                f"after {label}: get_session({session_id!r:.40}): {problem}",
                expected=shown[0],
                actual=shown[1],
            )

    def check_touched_first(self, session_id: object, bid: str, label: str) -> None:
        """A touch makes the session the most recently accessed: first in list order.

        Checked after every touching call because a missing touch at an unchanged clock is
        visible only in the order. Skipped when listing would purge (a side effect).
        """
        expected = self.model.live(session_id, self.now)
        if expected is None or self.model.has_pending_expired(self.now):
            return
        if self.model.ordered(self.now)[0].id != session_id:
            return  # sessions loaded with last-access times ahead of now stay first (B18)
        listed = self.call(bid, self.storage.list_sessions, "list_sessions()")
        if listed is _FAILED or not isinstance(listed, list):
            return
        listed_ids = [getattr(s, "id", None) for s in listed]
        if listed_ids[:1] == [session_id]:
            return
        owner = bid
        mine = next((s for s in listed if getattr(s, "id", None) == session_id), None)
        if not sorted_by_own_stamps(listed):
            # The backend's list contradicts its own last-access times: whatever the call
            # did, the list order is wrong (B04).
            owner = "B04"
        elif mine is not None and mine.last_accessed_at == expected.last_accessed_at:
            # The timestamp was touched; only the tie order is wrong. Blame the call only
            # when the backend orders every other session right (then the call skipped the
            # access-order part of the touch); otherwise it is a list-order (B04) fault.
            model_ids = [s.id for s in self.model.ordered(self.now)]
            others_ok = [i for i in listed_ids if i != session_id] == [
                i for i in model_ids if i != session_id
            ]
            if not others_ok or bid == "B01":
                owner = "B04"
        self.expect(
            owner,
            False,
            f"after {label} the session must be the most recently accessed (first in list)",
            expected=session_id,
            actual=listed_ids[0] if listed_ids else None,
        )

    def attribute_unknown(self, session_id: object, bid: str) -> str:
        """The id should be unknown to the store; name who is to blame for seeing it."""
        if not is_valid_session_id(session_id):
            return "B08"
        if self.model.is_expired(session_id, self.now):
            return "B17"
        if session_id in self.model.evicted and session_id not in self.model.sessions:
            return "B18"
        if session_id in self.model.deleted and session_id not in self.model.sessions:
            return "B05"
        return bid

    def victims_if_reads_touched(self, new_id: str) -> list[set[str]]:
        """Who a create or ensure of ``new_id`` would evict had reads been touches, per read
        hypothesis (call before the model evicts): when the backend evicted exactly one of
        those sets, B23 is to blame."""
        victims: list[set[str]] = []
        if len(self.model.ordered(self.now)) < MAX_SESSIONS:
            return victims  # no eviction below the cap
        for kinds in self.READ_HYPOTHESES:
            others = [i for i in self.order_if_reads_touched(kinds) if i != new_id]
            victims.append(set(others[MAX_SESSIONS - 1 :]))
        return victims

    def check_evictions(
        self, evicted: Iterable[str], if_touched: list[set[str]] | None = None
    ) -> None:
        evicted = list(evicted)
        owner = "B18"
        for victims in if_touched or []:
            if victims != set(evicted) and all(
                self.storage.get_session(i) is None for i in victims
            ):
                owner = "B23"
                break
        for session_id in evicted:
            actual = self.storage.get_session(session_id)
            self.expect(
                owner,
                actual is None,
                f"session {session_id!r} should have been evicted (least recently accessed)",
                expected=None,
                actual=actual,
            )

    def after_mutation(self) -> None:
        """Remember the state the next save must write: the live sessions, in list order.

        The save may come later, so sessions that expire in between may be left out; a
        session already expired (or deleted) now must never be written again.
        """
        self.mutated = True
        view = self.model.snapshot(self.now)
        # Unsaved only if what a save writes changed: a touch at the same millisecond of the
        # session already first changes nothing, and a backend may skip that save.
        self.dirty = self.dirty or view != self.saved_view
        self.saved_view = view

    # -- rules --------------------------------------------------------------------------------
    # Each hypothesis rule only draws; the step it calls takes explicit arguments and records
    # itself as a Python statement, so a shrunk program can be replayed as a script.
    @rule()
    def rule_create(self) -> None:
        self.create()

    @rule(count=st.integers(20, 70))
    def rule_create_many(self, count: int) -> None:
        """Reach the 100-session cap within a short program."""
        self.create_many(count)

    @rule(data=st.data())
    def rule_ensure(self, data: st.DataObject) -> None:
        self.ensure(self.draw_id(data, invalid=False))

    @rule(bad=gen.invalid_ids)
    def rule_ensure_invalid(self, bad: object) -> None:
        self.ensure_invalid(bad)

    @rule(data=st.data())
    def rule_get(self, data: st.DataObject) -> None:
        self.get(self.draw_id(data))

    @rule()
    def rule_list_sessions(self) -> None:
        self.list_sessions()

    @rule(data=st.data())
    def rule_get_conversation_id(self, data: st.DataObject) -> None:
        self.get_conversation_id(self.draw_id(data))

    @rule(data=st.data(), turn=gen.turns)
    def rule_add_turn(self, data: st.DataObject, turn: ConversationTurn) -> None:
        self.add_turn(self.draw_id(data), turn)

    @rule(
        data=st.data(),
        turns=st.one_of(st.just(UNSET), st.lists(gen.turns, max_size=3)),
        conversation_id=st.one_of(st.just(UNSET), st.none(), gen.conversation_ids),
    )
    def rule_update(self, data: st.DataObject, turns: Any, conversation_id: Any) -> None:
        self.update(self.draw_id(data), turns, conversation_id)

    @rule(data=st.data())
    def rule_reset(self, data: st.DataObject) -> None:
        self.reset(self.draw_id(data))

    @rule(data=st.data(), conversation_id=gen.conversation_ids)
    def rule_set_conversation_id(self, data: st.DataObject, conversation_id: str) -> None:
        self.set_conversation_id(self.draw_id(data), conversation_id)

    @rule(data=st.data())
    def rule_delete(self, data: st.DataObject) -> None:
        self.delete(self.draw_id(data))

    @rule(step=gen.clock_steps)
    def rule_advance_clock(self, step: Any) -> None:
        self.advance_clock(step)

    @rule()
    def rule_flush(self) -> None:
        self.flush()

    @precondition(lambda self: self.durable and not self.broken)
    @rule()
    def rule_reopen(self) -> None:
        self.reopen()

    @precondition(lambda self: self.file_v1 and not self.broken)
    @rule(data=st.data(), operation=st.sampled_from(sorted(WRITES_NOTHING)))
    def rule_writes_nothing(self, data: st.DataObject, operation: str) -> None:
        if operation == "get_codex_conversation_id":
            session_id: Any = self.draw_id(data)
        elif operation == "ensure_session(invalid)":
            session_id = data.draw(gen.invalid_ids, label="invalid id")
        else:
            unknown = [i for i in self.known if self.model.live(i, self.now) is None] or [
                "never-created-id"
            ]
            session_id = data.draw(
                st.one_of(st.sampled_from(unknown), gen.invalid_ids), label="unknown id"
            )
        self.writes_nothing(operation, session_id)

    # -- steps: creating -------------------------------------------------------------------
    def _create(self) -> str | None:
        session_id = self.call("B01", self.storage.create_session, "create_session()")
        if session_id is _FAILED:
            return None
        self.expect(
            "B01",
            isinstance(session_id, str) and UUID4.match(session_id),
            "create_session() must return a canonical lowercase UUID4",
            expected="xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx",
            actual=session_id,
        )
        if not isinstance(session_id, str):
            return None
        self.expect(
            "B01",
            session_id not in self.model.ever_created and session_id not in self.model.sessions,
            "create_session() returned an id already used in this store",
            actual=session_id,
        )
        self.created.append(session_id)
        if_touched = self.victims_if_reads_touched(session_id)
        evicted = self.model.create(session_id, self.now)
        self.known.append(session_id)
        self.use(session_id, "B01")
        self.after_mutation()
        self.check_evictions(evicted, if_touched)
        return session_id

    def create(self) -> None:
        """``create_session()``: a new canonical id, compared at once (B01)."""
        self.say(f"m.create()  # m.created[{len(self.created)}]")
        session_id = self._create()
        if session_id is not None:
            self.compare_one(session_id, "B01", "create_session()")
            self.check_touched_first(session_id, "B01", "create_session()")

    def create_many(self, count: int) -> None:
        """``count`` calls of ``create_session()`` (B01, and B18 at the cap)."""
        first = len(self.created)
        self.say(f"m.create_many({count})  # m.created[{first}] to m.created[{first + count - 1}]")
        created = [self._create() for _ in range(count)]
        for session_id in created[-3:]:
            if session_id is not None:
                self.compare_one(session_id, "B01", "create_session() in a batch")

    def ensure(self, session_id: Any) -> None:
        """``ensure_session(id)`` on a valid id (B07; B05 after a delete, B17 after expiry)."""
        self.say(f"m.ensure({self.ref(session_id)})")
        was_expired = self.model.is_expired(session_id, self.now) or self.at_boundary(session_id)
        was_deleted = session_id in self.model.deleted
        result = self.call("B07", self.storage.ensure_session, "ensure_session", session_id)
        if result is _FAILED:
            return
        if_touched = self.victims_if_reads_touched(session_id)
        created, evicted = self.model.ensure(session_id, self.now)
        if session_id not in self.known:
            self.known.append(session_id)
        bid = "B17" if was_expired else "B05" if was_deleted and created else "B07"
        self.use(session_id, bid)
        self.after_mutation()
        self.expect("B07", result is None, "ensure_session must return None", actual=result)
        self.compare_one(session_id, bid, f"ensure_session({self.ref(session_id):.40})")
        self.check_touched_first(session_id, bid, "ensure_session")
        self.check_evictions(evicted, if_touched)

    def ensure_invalid(self, bad: object) -> None:
        """``ensure_session(id)`` on an id outside the grammar raises ValidationError (B08)."""
        self.say(f"m.ensure_invalid({bad!r})  # must raise ValidationError")
        self.config.shared["machine_call"] = ("B08", "ensure_session(invalid id)")
        try:
            self.storage.ensure_session(bad)  # type: ignore[arg-type]
        except ValidationError as exc:
            self.expect(
                "B08",
                states_id_rule(str(exc)),
                "the ValidationError message must state the rule (1 to 256 characters ...)",
                actual=str(exc),
            )
        except Exception as exc:
            self.expect(
                "B08",
                False,
                f"ensure_session({bad!r:.40}) must raise ValidationError",
                expected="ValidationError",
                actual=repr(exc),
            )
        else:
            self.expect(
                "B08",
                False,
                f"ensure_session({bad!r:.40}) accepted an id outside the grammar",
                expected="ValidationError",
                actual="no exception",
            )
        if isinstance(bad, str):
            self.use(bad, "B08")
            self.compare_one(bad, "B08", "rejected ensure_session")

    # -- steps: reading --------------------------------------------------------------------
    def get(self, session_id: Any) -> None:
        """``get_session(id)`` agrees with the model (whose behaviour: ``attribute``)."""
        self.say(f"m.get({self.ref(session_id)})")
        self.compare_one(session_id, self.attribute(session_id), "get_session")

    def list_sessions(self) -> None:
        """``list_sessions()`` agrees with the model, order included (B04)."""
        self.say("m.list_sessions()")
        actual = self.call("B04", self.storage.list_sessions, "list_sessions()")
        if actual is _FAILED:
            return
        expected = self.model.list(self.now)
        self.compare_list(actual, expected, "list_sessions()")

    def compare_list(self, actual: Any, expected: list[SessionData], label: str,
                     context: str | None = None) -> None:  # fmt: skip
        self.expect("B04", isinstance(actual, list), f"{label} must return a list", actual=actual)
        if not isinstance(actual, list):
            return
        for item in actual:
            if not self.check_snapshot(item, label):
                break
        actual_ids = [getattr(s, "id", s) for s in actual]
        expected_ids = [s.id for s in expected]
        self.expect(
            "B18",
            len(actual) <= MAX_SESSIONS,
            f"{label} holds {len(actual)} sessions, more than {MAX_SESSIONS}",
            actual=len(actual),
        )
        self.expect(
            "B04",
            len(set(actual_ids)) == len(actual_ids),
            f"{label} lists a session more than once",
            actual=actual_ids,
        )
        for session_id in [i for i in actual_ids if i not in expected_ids]:
            self.expect(
                context or self.attribute_unknown(session_id, self.attribute(session_id)),
                False,
                f"{label} includes {session_id!r:.40}, which is not a live session",
                expected=expected_ids,
                actual=actual_ids,
            )
        for session_id in [i for i in expected_ids if i not in actual_ids]:
            self.expect(
                context or self.attribute(session_id),
                False,
                f"{label} lacks live session {session_id!r:.40}",
                expected=expected_ids,
                actual=actual_ids,
            )
        by_id = {s.id: s for s in expected}
        for item in actual:
            want = by_id.get(str(getattr(item, "id", "")))
            problem = describe_difference(item, want) if want else None
            if problem and want:
                self.expect(
                    self.field_owner(want.id, item, problem, context or self.attribute(want.id)),
                    False,
                    f"{label}: session {want.id!r:.40}: {problem}",
                    expected=want,
                    actual=item,
                )
        self.expect(
            # Order is B04's rule whatever the step (B04 owns the order surviving reopen too).
            self.order_owner(actual_ids, "B04") if actual_ids != expected_ids else "B04",
            actual_ids == expected_ids,
            f"{label} is not in list order (last access descending, ties: latest access first)",
            expected=expected_ids,
            actual=actual_ids,
        )

    def get_conversation_id(self, session_id: Any) -> None:
        """``get_codex_conversation_id(id)`` agrees (B06) and touches nothing (B23)."""
        self.say(f"m.get_conversation_id({self.ref(session_id)})")
        actual = self.call("B06", self.storage.get_codex_conversation_id, "get_cid", session_id)
        if actual is _FAILED:
            return
        self.note_read(session_id, "cid")
        expected_session = self.model.get(session_id, self.now)
        expected = expected_session.codex_conversation_id if expected_session else None
        owner = (
            self.owner(session_id, "B06")
            if expected_session
            else self.attribute_unknown(session_id, "B06")
        )
        self.expect(
            owner,
            actual == expected and (actual is None or isinstance(actual, str)),
            f"get_codex_conversation_id({self.ref(session_id):.40})",
            expected=expected,
            actual=actual,
        )
        # A pure read: the session is not touched (B23).
        self.compare_one(
            session_id, self.owner(session_id, "B23"), "get_codex_conversation_id (no touch)"
        )

    # -- steps: mutating -------------------------------------------------------------------
    def add_turn(self, session_id: Any, turn: ConversationTurn) -> None:
        """``add_turn(id, turn)`` appends and touches (B02); unknown ids are ignored."""
        self.say(f"m.add_turn({self.ref(session_id)}, {turn!r})")
        bid = self.owner(session_id, "B02")
        if self.call("B02", self.storage.add_turn, "add_turn", session_id, turn) is _FAILED:
            return
        if self.model.add_turn(session_id, turn, self.now):
            self.after_mutation()
        self.use(session_id, "B02")
        self.compare_one(session_id, bid, "add_turn")
        self.check_touched_first(session_id, bid, "add_turn")

    def update(self, session_id: Any, turns: Any = UNSET, conversation_id: Any = UNSET) -> None:
        """``update_session(id, turns=..., codex_conversation_id=...)`` (B02, B06), copying
        the caller's list (B24)."""
        kwargs: dict[str, Any] = {}
        passed: list[ConversationTurn] | None = None
        if turns is not UNSET:
            passed = kwargs["turns"] = list(turns)
        if conversation_id is not UNSET:
            kwargs["codex_conversation_id"] = conversation_id
        arguments = [self.ref(session_id)]
        if passed is not None:
            arguments.append(f"turns={passed!r}")
        if conversation_id is not UNSET:
            arguments.append(f"conversation_id={conversation_id!r}")
        self.say(f"m.update({', '.join(arguments)})")
        bid = self.owner(session_id, "B06" if conversation_id is not UNSET else "B02")
        if self.call(bid, self.storage.update_session, "update_session", session_id,
                     **kwargs) is _FAILED:  # fmt: skip
            return
        changed = self.model.update(
            session_id,
            self.now,
            turns=None if turns is UNSET else turns,
            set_conversation_id=conversation_id is not UNSET,
            conversation_id=None if conversation_id is UNSET else conversation_id,
            origin=bid,
        )
        if changed:
            self.after_mutation()
        self.use(session_id, bid)
        self.compare_one(session_id, bid, "update_session")
        self.check_touched_first(session_id, bid, "update_session")
        if changed and passed is not None:
            # The store must have copied the list: the caller's later edits are not its own.
            passed.append(ConversationTurn("edited by the caller", "", self.now))
            passed.reverse()
            self.say("# the caller then edits the list it passed: append(...), reverse()")
            self.compare_one(session_id, "B24", "the caller edited the list it passed as turns=")

    def reset(self, session_id: Any) -> None:
        """``reset_session(id)`` clears turns and conversation id, keeps createdAt (B03)."""
        self.say(f"m.reset({self.ref(session_id)})")
        bid = self.owner(session_id, "B03")
        if self.call("B03", self.storage.reset_session, "reset_session", session_id) is _FAILED:
            return
        if self.model.reset(session_id, self.now):
            self.after_mutation()
        self.use(session_id, "B03")
        self.compare_one(session_id, bid, "reset_session")
        self.check_touched_first(session_id, bid, "reset_session")

    def set_conversation_id(self, session_id: Any, conversation_id: str) -> None:
        """``set_codex_conversation_id(id, cid)`` (B06)."""
        self.say(f"m.set_conversation_id({self.ref(session_id)}, {conversation_id!r})")
        bid = self.owner(session_id, "B06")
        if self.call("B06", self.storage.set_codex_conversation_id, "set_cid", session_id,
                     conversation_id) is _FAILED:  # fmt: skip
            return
        if self.model.update(
            session_id, self.now, set_conversation_id=True, conversation_id=conversation_id,
            origin="B06",
        ):  # fmt: skip
            self.after_mutation()
        self.use(session_id, "B06")
        self.compare_one(session_id, bid, "set_codex_conversation_id")
        self.check_touched_first(session_id, bid, "set_codex_conversation_id")

    def delete(self, session_id: Any) -> None:
        """``delete_session(id)`` returns whether a live session went away (B05)."""
        self.say(f"m.delete({self.ref(session_id)})")
        bid = self.owner(session_id, "B05")
        actual = self.call("B05", self.storage.delete_session, "delete_session", session_id)
        if actual is _FAILED:
            return
        was_expired = self.model.is_expired(session_id, self.now)
        expected = self.model.delete(session_id, self.now)
        if expected:
            self.after_mutation()
        self.use(session_id, "B05")
        self.expect(
            bid,
            actual is expected,
            f"delete_session({self.ref(session_id):.40}) return value"
            + (" (expired session)" if was_expired else ""),
            expected=expected,
            actual=actual,
        )
        self.compare_one(session_id, bid, "delete_session")

    # -- steps: time, durability, files ----------------------------------------------------
    def advance_clock(self, step: Any) -> None:
        """Move the injected clock (B17 expiry happens by the clock alone)."""
        self.clock.advance(step)
        self.say(f"m.advance_clock({step!r})  # now {self.now.isoformat()}")

    def flush(self) -> None:
        """``flush()`` returns, and (file-v1) the file then holds the state (B21, B10); under
        a write fault it raises OSError (B22): see ``FileSteps.flush_step``."""
        self.say("m.flush()")
        self.flush_step()

    def reopen(self) -> None:
        """``close()`` then a new instance on the path sees the same store (B09, B05)."""
        self.say("m.reopen()  # storage.close(); storage = factory(same path, clock)")
        if self.call("B21", self.storage.close, "close()") is _FAILED:
            return
        if self.file_v1 and not self.still_foreign():
            # A reopen reads what the backend wrote: it must be valid (B10).
            problem = writer_problem(self.path)
            self.expect("B10", problem is None, f"the file the backend saved: {problem}")
        reopened = self.call("B09", self._open, "factory(...) on reopen")
        if reopened is _FAILED:
            return
        self.storage = reopened
        actual = self.call("B09", self.storage.list_sessions, "list_sessions() after reopen")
        if actual is _FAILED:
            return
        expected = self.model.list(self.now)
        self.compare_list(actual, expected, "list_sessions() after reopen", context="B09")
        for session_id in sorted(self.model.deleted - set(self.model.sessions)):
            self.expect(
                "B05",
                self.storage.get_session(session_id) is None,
                f"deleted session {self.ref(session_id)} came back after reopen",
            )

    def writes_nothing(self, operation: str, session_id: Any) -> None:
        """Calls that must change nothing: what the file stores stays (B02, B03, B06, B08, B23)."""
        bid = WRITES_NOTHING[operation]
        self.say(f"m.writes_nothing({operation!r}, {self.ref(session_id)})")
        if self.call("B21", self.storage.flush, "flush()") is _FAILED:
            return
        before = self.file_state()
        turn = ConversationTurn("p", "r", self.now)
        accepted_invalid = False
        self.config.shared["machine_call"] = (bid, operation)
        with contextlib.suppress(Exception):
            if operation == "add_turn":
                self.storage.add_turn(session_id, turn)
            elif operation == "update_session":
                self.storage.update_session(session_id, turns=[turn], codex_conversation_id="c")
            elif operation == "reset_session":
                self.storage.reset_session(session_id)
            elif operation == "set_codex_conversation_id":
                self.storage.set_codex_conversation_id(session_id, "c")
            elif operation == "get_codex_conversation_id":
                self.storage.get_codex_conversation_id(session_id)
            else:
                self.storage.ensure_session(session_id)
                accepted_invalid = True
        self.expect("B08", not accepted_invalid, f"ensure_session({session_id!r:.40}) was accepted")
        if self.call("B21", self.storage.flush, "flush()") is _FAILED:
            return
        after = self.file_state()
        self.expect(
            bid,
            before == after,
            f"{operation}({self.ref(session_id):.40}) changed what the store holds",
            expected=before,
            actual=after,
        )

    def file_state(self) -> tuple[bool, object]:
        """Whether the file exists, and what it stores (its JSON value; bytes if unparseable).

        Not its bytes or mtime: ``flush()`` may rewrite an unchanged store in any layout the
        writer profile allows (SPEC.md, "What a backend may choose"). A backend that keeps no
        sessions file (no file-v1) but claims shared is seen through a second instance on the
        path, which may open at any time (SPEC.md §8.7): what it lists, every field. Any other
        has no store the kit can see beside its reads, which the model judges.
        """
        if not self.file_v1:
            if Level.SHARED not in self.config.levels:
                return False, None
            other = self._open()
            try:
                return True, [session_as_json(s) for s in other.list_sessions()]
            finally:
                other.close()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False, None
        try:
            return True, json.loads(raw.decode("utf-8"))
        except ValueError:
            return True, raw

    def check_file_after_flush(self, owner: str = "B21") -> None:
        """The file holds exactly the state of the last mutation (``owner``: B21, or B22
        for the first flush after a repaired write fault), valid, in list order (B10, B04)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.expect(
                owner,
                not self.mutated,
                "flush() returned after mutations but the sessions file does not exist",
            )
            return
        self.expect("B10", not raw.startswith(b"\xef\xbb\xbf"), "the file starts with a BOM")
        try:
            document = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            self.expect("B10", False, f"the file is not UTF-8 JSON: {exc}", actual=raw[:200])
            return
        errors = sorted(writer_validator().iter_errors(document), key=lambda e: list(e.path))
        self.expect(
            "B10",
            not errors,
            "the file does not validate against the writer schema: "
            + (f"{list(errors[0].path)}: {errors[0].message}" if errors else ""),
            actual=raw[:300],
        )
        if errors:
            return
        ids = [s["id"] for s in document["sessions"]]
        self.expect(
            "B10", len(ids) == len(set(ids)), "duplicate session ids in the file", actual=ids
        )
        # The file holds the state of the last mutation, minus sessions that expired since
        # (a save may come at any time between that mutation and this flush).
        everything = self.saved_view
        all_ids = [s.id for s in everything]
        live_ids = {s.id for s in self.model.ordered(self.now)}
        written = [i for i in ids if i in all_ids]
        for extra in [i for i in ids if i not in all_ids]:
            blame = (
                "B05"
                if extra in self.model.deleted
                else "B18"
                if extra in self.model.evicted
                else "B17"
                if extra in self.model.ever_created or extra in self.known
                else owner
            )
            self.expect(
                blame,
                False,
                f"after flush() the file still holds {extra!r:.40}, which the last mutation left"
                " deleted, evicted or expired",
                expected=all_ids,
                actual=ids,
            )
        self.expect(
            owner,
            written == ids and live_ids <= set(ids),
            "after flush() the file does not hold exactly the live sessions",
            expected=[i for i in all_ids if i in live_ids],
            actual=ids,
        )
        in_order = written == [i for i in all_ids if i in set(written)]
        self.expect(
            "B04" if in_order else self.order_owner(written, "B04"),
            in_order,
            "the file does not list sessions in list order",
            expected=[i for i in all_ids if i in set(written)],
            actual=written,
        )
        by_id = {s.id: s for s in everything}
        for record in document["sessions"]:
            want = by_id.get(record["id"])
            if want is None:
                continue
            got = SessionData(
                id=record["id"],
                created_at=parse_timestamp(record["createdAt"]),
                last_accessed_at=parse_timestamp(record["lastAccessedAt"]),
                turns=tuple(
                    ConversationTurn(t["prompt"], t["response"], parse_timestamp(t["timestamp"]))
                    for t in record["turns"]
                ),
                codex_conversation_id=record.get("codexConversationId"),
            )
            problem = describe_difference(got, want)
            self.expect(
                self.field_owner(want.id, got, problem, owner) if problem else owner,
                problem is None,
                f"after flush() the file's session {want.id!r}: {problem}",
                expected=want,
                actual=got,
            )

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def reads_agree(self) -> None:
        """get_session and get_codex_conversation_id agree with the model for every id."""
        if getattr(self, "storage", _FAILED) is _FAILED:
            return
        live = 0
        for session_id in list(dict.fromkeys(self.known)):
            actual = self.call("B04", self.storage.get_session, "get_session", session_id)
            if actual is _FAILED:
                continue
            live += actual is not None
            self.note_read(session_id)
            self.check_snapshot(actual, f"get_session({session_id!r:.40})")
            expected = self.model.get(session_id, self.now)
            problem = describe_difference(actual, expected)
            if problem:
                self.expect(
                    self.field_owner(session_id, actual, problem, self.attribute(session_id)),
                    False,
                    f"get_session({session_id!r:.40}): {problem}",
                    expected=expected,
                    actual=actual,
                )
            cid = self.storage.get_codex_conversation_id(session_id)
            self.note_read(session_id, "cid")
            want = expected.codex_conversation_id if expected else None
            self.expect(
                self.owner(session_id, "B06") if expected else self.attribute(session_id),
                cid == want,
                f"get_codex_conversation_id({session_id!r:.40}) disagrees with get_session",
                expected=want,
                actual=cid,
            )
        self.expect("B18", live <= MAX_SESSIONS, f"{live} live sessions", actual=live)

    @invariant()
    def list_agrees(self) -> None:
        """list_sessions matches the model, when listing has no purge to do."""
        if getattr(self, "storage", _FAILED) is _FAILED:
            return
        if self.model.has_pending_expired(self.now):
            return  # listing would purge: that would hide purge bugs of create/ensure
        actual = self.call("B04", self.storage.list_sessions, "list_sessions()")
        if actual is not _FAILED:
            self.compare_list(actual, self.model.snapshot(self.now), "list_sessions()")

    def teardown(self) -> None:
        self.restore_before_teardown()
        storage: Any = getattr(self, "storage", _FAILED)
        if storage is not _FAILED:
            with contextlib.suppress(Exception):
                storage.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class MachineOutcome:
    """What one machine run found: at most one violation, or a kit/hypothesis error."""

    violation: BehaviourViolation | None
    error: str | None
    report: list[str]
    #: The recorded program of the failing example (shrunk), and the ids it created.
    program: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    #: How the shrink ended, when it did not reach a minimal program.
    shrink_note: str | None = None


_UNREPLAYABLE = (
    "not shrunk: the backend did not diverge the same way when the program ran again (its"
    " failure depends on timing, e.g. a background writer); this is the first program that"
    " diverged, as it ran"
)


def _find_violation(exc: BaseException) -> BehaviourViolation | None:
    if isinstance(exc, BehaviourViolation):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_violation(inner)
            if found:
                return found
    if exc.__cause__ is not None:
        return _find_violation(exc.__cause__)
    return None


def machine_settings(run: RunState) -> settings:
    profile = run.profile
    return settings(
        max_examples=profile.max_examples,
        stateful_step_count=profile.step_count,
        deadline=None,
        database=None,  # never write .hypothesis/ into the user's directory
        derandomize=profile.derandomize and run.seed is None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        report_multiple_bugs=False,
    )


def machine_class(config: MachineConfig) -> type[StorageMachine]:
    """The machine bound to one configuration (hypothesis instantiates it per example)."""
    return type("SessionStorageMachine", (StorageMachine,), {"config": config})


def run_machine(run: RunState) -> MachineOutcome:
    """Run the machine once; the first divergence (shrunk) is the outcome."""
    config = MachineConfig(run.factory, run.levels, run.workdir, shared=run.cache)
    machine: Any = machine_class(config)
    if run.seed is not None:
        machine = hypothesis_seed(run.seed)(machine)
    lines: list[str] = []
    budget = ShrinkBudget(config, run.profile)
    with (
        with_reporter(lambda text: lines.append(str(text))),
        budget,
        _kit_storage_directory(),
        _no_local_constants(),
    ):
        try:
            run_state_machine_as_test(machine, settings=machine_settings(run))
        except (Exception, Flaky) as exc:
            # Hypothesis attaches the falsifying program and our notes to the exception.
            lines.extend(str(n) for n in getattr(exc, "__notes__", ()))
            violation = _find_violation(exc)
            first = config.first_failure
            if isinstance(exc, Flaky) and first is not None:
                # The same choices diverged once and not again (or elsewhere): the backend's
                # failure depends on timing. Report the first divergence as it was met (the
                # last program run is one that did not fail).
                violation, program, created = first
                return MachineOutcome(violation, None, lines, program, created, _UNREPLAYABLE)
            if violation is None:
                # Not a divergence: a kit error, or an exception no step expected. Keep the
                # whole chain (a FlakyFailure holds the first failure as a sub-exception).
                trace = "".join(traceback.format_exception(exc))[-4000:]
                return MachineOutcome(None, f"{type(exc).__name__}: {exc}\n{trace}", lines)
            return _trimmed(
                run,
                MachineOutcome(
                    violation,
                    None,
                    lines,
                    list(config.last_program),
                    list(config.last_created),
                    budget.note(lines),
                ),
            )
    return MachineOutcome(None, None, lines)


def _trimmed(run: RunState, outcome: MachineOutcome) -> MachineOutcome:
    """The outcome with its program trimmed step by step (see trim.py), when that keeps
    the divergence; the note says how minimal the program is."""
    from sessionspec.conformance.trim import trim

    assert outcome.violation is not None
    result = trim(
        run.factory,
        run.levels,
        run.workdir,
        outcome.program,
        outcome.violation,
        outcome.created,
        budget=run.profile.shrink_runs,
        seconds=run.profile.shrink_seconds,
    )
    if result.minimal:
        note = (
            None
            if outcome.shrink_note is None
            else "trimmed until no single step can be dropped or made smaller, after"
            " hypothesis's shrinking stopped at its budget (its values may not be the"
            " simplest)"
            + ("; it may differ between runs" if "backstop" in outcome.shrink_note else "")
        )
    else:
        note = (
            f"{outcome.shrink_note or 'shrunk'}; trimming stopped at its budget of"
            f" {run.profile.shrink_runs} program runs: the program may not be minimal"
        )
    return MachineOutcome(
        result.violation, None, outcome.report, result.program, result.created, note
    )


def kit_cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sessionspec" / "hypothesis"


@contextlib.contextmanager
def _kit_storage_directory() -> Iterator[None]:
    """Keep hypothesis's caches (charmap, constants) out of the user's working directory.

    The database is off anyway (``database=None``); hypothesis still caches other files in
    ``./.hypothesis`` unless told otherwise. A user's own choice (the environment variable, or
    a directory set in code) wins.
    """
    from hypothesis import configuration

    current = getattr(configuration, "__hypothesis_home_directory", None)
    if current is not None or os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    configuration.set_hypothesis_home_dir(kit_cache_directory())
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(None)


@contextlib.contextmanager
def _no_local_constants() -> Iterator[None]:
    """Keep the programs a function of the seed and the backend alone.

    Hypothesis seeds its draws with literals collected from every "local" module imported
    in the process, so the same seed gave different programs depending on which test
    modules, notebooks or user modules happened to be imported (a module of 1,800 lines of
    vector literals was enough to hide a fault from the B09 machine). No public setting
    turns that off: the collector is replaced for the run (and left alone if a future
    version renames it).
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover
        yield
        return
    collect = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if collect is None or cache is None or not hasattr(providers, "Constants"):
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    cache.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = collect
        cache.cache.clear()


class ShrinkBudget:
    """Bound shrinking by program runs, so a run's result is the same every time.

    Hypothesis bounds shrinking only by wall time (``MAX_SHRINKING_SECONDS``, no public
    setting), which made the shrunk program, and so the report, depend on the machine's
    load. For the run, its engine's clock is replaced by the number of programs the machine
    has run: the deadline then falls after ``profile.shrink_runs`` programs, on every run.
    A wall-time backstop (``profile.shrink_seconds``) still bounds a slow backend; when it
    cuts shrinking, :meth:`note` says so. Left alone if a future hypothesis renames these.
    """

    def __init__(self, config: MachineConfig, profile: Profile) -> None:
        self.config = config
        self.profile = profile
        self.cut_by_time = False
        self._start = 0.0
        self._engine: Any = None
        self._saved: tuple[Any, Any] | None = None

    def perf_counter(self) -> float:
        """The engine's clock: programs run, or far past any deadline after the backstop."""
        if time.monotonic() - self._start > self.profile.shrink_seconds:
            self.cut_by_time = True
            return float("inf")
        return float(self.config.runs)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)  # everything else of the time module, unchanged

    def __enter__(self) -> ShrinkBudget:
        self._start = time.monotonic()
        try:
            from hypothesis.internal.conjecture import engine
        except ImportError:  # pragma: no cover
            return self
        if not hasattr(engine, "MAX_SHRINKING_SECONDS") or not hasattr(engine, "time"):
            return self  # pragma: no cover
        self._engine = engine
        self._saved = (engine.MAX_SHRINKING_SECONDS, getattr(engine, "time"))  # noqa: B009
        engine.MAX_SHRINKING_SECONDS = self.profile.shrink_runs
        setattr(engine, "time", self)  # noqa: B010 (not a public attribute of the module)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._engine is not None and self._saved is not None:
            self._engine.MAX_SHRINKING_SECONDS, self._engine.time = self._saved

    def note(self, report: Sequence[str]) -> str | None:
        """What the report says about an early stop of shrinking (None: it ran to the end)."""
        if not any("WARNING: Hypothesis has spent" in line for line in report):
            return None
        if self.cut_by_time:
            return (
                f"shrinking stopped at the {self.profile.shrink_seconds} s backstop: the program"
                " may not be minimal, and may differ between runs"
            )
        return (
            f"shrinking stopped at its budget of {self.profile.shrink_runs} program runs:"
            " the program may not be minimal (the same on every run)"
        )


def name_ids(text: str | None, created: Sequence[str]) -> str | None:
    """``text`` with the ids the backend made up replaced by the program's names for them
    (``m.created[3]``), so the report is the same on every run of the same program."""
    if not text:
        return text
    for index, session_id in sorted(enumerate(created), key=lambda pair: -len(pair[1])):
        text = text.replace(session_id, f"m.created[{index}]")
    return text


def machine_results(run: RunState) -> dict[str, BehaviourViolation]:
    """Run the machine once per run (cached): at most one behaviour fails, the one of the
    first divergence, with its shrunk program and a replay script (``violation.replay``)."""
    cached: dict[str, BehaviourViolation] | None = run.cache.get("machine")
    if cached is not None:
        return cached
    from sessionspec.conformance.replay import replay_script

    start = time.monotonic()
    found: dict[str, BehaviourViolation] = {}
    try:
        outcome = run_machine(run)
    finally:
        run.cache["machine_seconds"] = run.cache.get("machine_seconds", 0.0) + (
            time.monotonic() - start
        )
    if outcome.error is not None:
        run.cache["machine_error"] = outcome.error + "\n" + "\n".join(outcome.report)
    elif outcome.violation is not None:
        violation = outcome.violation
        created = outcome.created
        violation.diff = named_difference(violation, created)
        violation.message = name_ids(violation.message, created) or violation.message
        violation.expected = _named(violation.expected, created)
        violation.actual = _named(violation.actual, created)
        violation.program = "\n".join(outcome.program)
        violation.replay = _how_to_replay(run, outcome.shrink_note)
        violation.replay_script = replay_script(
            run, violation, outcome.program, outcome.shrink_note
        )
        found[violation.behaviour_id] = violation
    run.cache["machine"] = found
    return found


def named_difference(violation: BehaviourViolation, created: Sequence[str]) -> list[str]:
    """The structural diff of a violation's expected and actual values, both with the ids the
    backend made up already named: diffing the raw ids would show an abbreviated random label
    or a "differ at index N" that changes between runs of the same program."""
    if violation.expected is None or violation.actual is None:
        return []
    return structural_diff(
        with_named_ids(violation.expected, created), with_named_ids(violation.actual, created)
    )


def with_named_ids(value: object, created: Sequence[str]) -> object:
    """``value`` with every string holding an id the backend made up renamed as the program
    names it (``m.created[3]``), through lists, tuples, dicts and dataclasses alike."""
    if not created:
        return value
    if isinstance(value, str):
        return name_ids(value, created)
    if isinstance(value, list | tuple):
        items = [with_named_ids(item, created) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {
            with_named_ids(key, created): with_named_ids(item, created)
            for key, item in value.items()
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            spec.name: with_named_ids(getattr(value, spec.name), created)
            for spec in dataclasses.fields(value)
            if spec.init
        }
        return dataclasses.replace(value, **changes)
    return value


def _how_to_replay(run: RunState, shrink_note: str | None) -> str:
    how = (
        f"the same program on every run with --profile {run.profile.name}"
        if run.seed is None and run.profile.derandomize
        else f"the same program with --seed {run.seed}"
        if run.seed is not None
        else "a random profile: rerun with --seed N to pin the program"
    )
    return how + (f"; {shrink_note}" if shrink_note else "")


def _named(value: object, created: Sequence[str]) -> object:
    """An expected/actual value as the report shows it, with made-up ids named."""
    if value is None or not created:
        return value
    from sessionspec.conformance.report import describe

    return name_ids(describe(value), created)


def _machine_check(context: CheckContext) -> None:
    """The stateful machine found no violation of this behaviour."""
    found = machine_results(context.run)
    violation = found.get(context.behaviour_id)
    if violation is not None:
        raise violation
    error = context.run.cache.get("machine_error")
    if error:
        if context.run.cache.setdefault("machine_error_reported", context.check.node_id) == (
            context.check.node_id
        ):
            raise RuntimeError(f"the state machine could not run: {error}")
        # One error, reported once (under the first behaviour): the others were not judged.
        raise CheckNotRun(
            f"the state machine could not run (see {context.run.cache['machine_error_reported']})"
        )
    if found:
        # The program stopped at the first divergence, of another behaviour: whatever this
        # behaviour would show later is not judged in this run (it is not a PASS).
        (other,) = found
        raise CheckNotRun(
            f"the state machine stopped at its first divergence, a FAIL of {other};"
            " fix that and rerun to have this behaviour judged by the machine"
        )


for _bid, _requires in MACHINE_COVERS.items():
    register(
        make_check(
            _bid,
            "state_machine",
            _machine_check,
            requires=_requires,
            doc="stateful machine vs the kit's model",
        )
    )
