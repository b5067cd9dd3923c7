"""The save storm of B31 (crash-safe): a process the kit SIGKILLs at random moments.

``python -m sessionspec.conformance.child_crash serve TARGET PATH EPOCH_MS FLUSH_EVERY`` runs
a fork server: it imports TARGET once, then for every ``storm START`` line on its stdin forks
a fresh process that opens the backend on PATH (clock fixed at EPOCH_MS) and makes mutations
START, START+1, ... of one deterministic sequence, calling flush() every FLUSH_EVERY of them,
until the kit kills it; ``reap PID`` waits for a killed one, ``quit`` ends. Forking from a
process that already imported the backend makes a kill cost a fork, not an interpreter
start (B31's check must stay cheap at the smoke profile), and every storm is still a real
process of its own, killed with a real SIGKILL.

Every state of the sequence is a function of the index of its last mutation
(:func:`expected_state`), and every mutation leaves its index in the state (a prompt
``p<i>:...`` or a conversation id ``conv-<i>``), so the kit reads from a file which state it
holds (:func:`judge_file`) and compares the whole content with that state: the oracle is
exact without the storm telling the kit what it did before it died.

Lines a storm writes (one ``os.write`` each, so lines of processes sharing the pipe never
interleave): ``ready PID``; ``ack PID I J VERDICT`` after flush() returned for mutation I, J
being the mutation the file held right then (VERDICT ``ok``, or what was wrong with it);
``diverged PID I KIND DETAIL`` when the backend's memory is not the sequence's state (a bug
of the method KIND, not of saving); ``error PID STAGE DETAIL`` when a call raised (STAGE:
open, load, read, flush or the mutation's KIND).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.child import session_as_json
from sessionspec.conformance.clock import EPOCH
from sessionspec.conformance.loading import load_target
from sessionspec.conformance.oracle import format_timestamp
from sessionspec.conformance.stdio import GROUP_VARIABLE
from sessionspec.spec import ConversationTurn, SessionStorage, writer_validator

#: The sessions of the storm: ids of letters and digits only, valid under any reading of the
#: id grammar, so a grammar bug (B08) cannot stop the storm.
SESSION_IDS = ("crash0", "crash1", "crash2")
#: Every CYCLE-th round of a session sets its conversation id; the other rounds add a turn.
CYCLE = 5
#: A session keeps its last WINDOW turns (older ones go by update_session), so files stay
#: the same size however long the storm runs.
WINDOW = 4
#: Long prompts make saves slow enough that many kills land in the middle of one.
FILLER = ("kill -9 mid-save é ✓ " * 1200)[:20_000]
#: A storm that outlives its kill (it never should) stops after this many mutations.
MAX_MUTATIONS = 100_000

_TOKEN = re.compile(r"\A(?:p(\d+):|conv-(\d+)\Z)")

#: What the kit compares: session id -> session rendered by ``child.session_as_json``.
State = dict[str, dict[str, Any]]


def moment_of(epoch_ms: int) -> datetime:
    """The storm's fixed "now" (the kit's clock handling, as child.py's; B31)."""
    return EPOCH + timedelta(milliseconds=epoch_ms)


def kind_of(index: int) -> str:
    """Which method mutation ``index`` of B31's storm calls: ensure, cid, append or replace."""
    round_ = index // len(SESSION_IDS)
    if round_ == 0:
        return "ensure"
    if round_ % CYCLE == 0:
        return "cid"
    return "append" if _turn_rounds(round_) <= WINDOW else "replace"


def _turn_rounds(round_: int) -> int:
    """How many of a session's rounds 1..round_ added a turn."""
    return round_ - round_ // CYCLE


def _turn(index: int, stamp: datetime) -> ConversationTurn:
    return ConversationTurn(f"p{index}:{FILLER}", f"r{index}", stamp)


def _window(slot: int, round_: int) -> list[int]:
    """The mutation indexes of the turns session ``slot`` holds after its round ``round_``."""
    indexes: list[int] = []
    while round_ >= 1 and len(indexes) < WINDOW:
        if round_ % CYCLE:
            indexes.append(slot + round_ * len(SESSION_IDS))
        round_ -= 1
    return indexes[::-1]


def expected_session(slot: int, index: int, stamp: str) -> dict[str, Any] | None:
    """Session ``slot`` after mutation ``index`` of B31's sequence (None: not created yet)."""
    if index < slot:
        return None
    last = (index - slot) // len(SESSION_IDS)
    cids = [r for r in range(last, 0, -1) if r % CYCLE == 0][:1]
    return {
        "id": SESSION_IDS[slot],
        "createdAt": stamp,
        "lastAccessedAt": stamp,
        "turns": [[f"p{i}:{FILLER}", f"r{i}", stamp] for i in _window(slot, last)],
        "codexConversationId": f"conv-{slot + cids[0] * len(SESSION_IDS)}" if cids else None,
    }


def expected_state(index: int, stamp: str) -> State:
    """The store after mutations 0..index of B31's sequence (-1: nothing yet)."""
    state: State = {}
    for slot, session_id in enumerate(SESSION_IDS):
        session = expected_session(slot, index, stamp)
        if session is not None:
            state[session_id] = session
    return state


def apply(storage: SessionStorage, index: int, moment: datetime) -> str:
    """Make mutation ``index`` of B31's sequence; returns the id of the session it changed."""
    slot = index % len(SESSION_IDS)
    session_id = SESSION_IDS[slot]
    kind = kind_of(index)
    if kind == "ensure":
        storage.ensure_session(session_id)
    elif kind == "cid":
        storage.set_codex_conversation_id(session_id, f"conv-{index}")
    elif kind == "append":
        storage.add_turn(session_id, _turn(index, moment))
    else:
        turns = [_turn(i, moment) for i in _window(slot, index // len(SESSION_IDS))]
        storage.update_session(session_id, turns=turns)
    return session_id


def last_index(state: State) -> int:
    """The mutation a state of B31's sequence is the state after: the highest index it holds
    (every mutation after the first round leaves its own), else one per created session."""
    found = -1
    for session in state.values():
        texts = [turn[0] for turn in session.get("turns") or [] if turn]
        texts.append(session.get("codexConversationId"))
        for text in texts:
            match = _TOKEN.match(text) if isinstance(text, str) else None
            if match:
                found = max(found, int(match[1] or match[2]))
    return found if found >= 0 else len(state) - 1


def state_of(document: Any) -> State:
    """The content of a parsed, writer-valid file, rendered like ``session_as_json`` (B31)."""
    state: State = {}
    for item in document["sessions"]:
        state[item["id"]] = {
            "id": item["id"],
            "createdAt": item["createdAt"],
            "lastAccessedAt": item["lastAccessedAt"],
            "turns": [[t["prompt"], t["response"], t["timestamp"]] for t in item["turns"]],
            "codexConversationId": item.get("codexConversationId"),
        }
    return state


@dataclass(frozen=True)
class FileVerdict:
    """What a sessions file holds, judged against the sequence.

    ``problem``: None, ``"missing"``, ``"unparseable"`` (not UTF-8 JSON) or ``"invalid"``
    (a BOM, or not writer-valid: a whole file that no kill cut short); ``index``: the
    mutation its content names (-1 when it names none); ``exact``: the content is exactly
    ``expected_state(index)``.
    """

    problem: str | None
    detail: str = ""
    index: int = -1
    exact: bool = False
    size: int = 0

    def describe(self) -> str:
        """One line on what the file holds (for B31's messages)."""
        if self.problem is not None:
            return f"{self.problem}: {self.detail}"
        if not self.exact:
            return f"holds no state of the sequence (nearest: mutation {self.index}): {self.detail}"
        return f"the state after mutation {self.index}"


def judge_bytes(raw: bytes, stamp: str) -> FileVerdict:
    """Judge the bytes of a sessions file against B31's sequence (``stamp``: the storm's
    timestamps, writer form)."""
    size = len(raw)
    if raw.startswith(b"\xef\xbb\xbf"):
        return FileVerdict("invalid", f"it starts with a BOM ({size} bytes)", size=size)
    try:
        document = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        detail = f"{exc} ({size} bytes, ending {raw[-60:]!r})"
        return FileVerdict("unparseable", detail, size=size)
    error = next(iter(writer_validator().iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(part) for part in error.path)
        return FileVerdict("invalid", f"at {where or 'the top'}: {error.message[:200]}", size=size)
    state = state_of(document)
    index = last_index(state)
    want = expected_state(index, stamp)
    if state == want:
        return FileVerdict(None, index=index, exact=True, size=size)
    return FileVerdict(None, _difference(state, want), index=index, size=size)


def judge_file(path: Path, stamp: str) -> FileVerdict:
    """Judge what is at ``path`` now against B31's sequence (a missing file is
    ``problem="missing"``)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return FileVerdict("missing", "no file at the path")
    return judge_bytes(raw, stamp)


def _difference(actual: State, expected: State) -> str:
    """One line on where two states differ, with long prompts cut short."""
    if sorted(actual) != sorted(expected):
        return f"sessions {sorted(actual)}, expected {sorted(expected)}"
    for session_id, want in expected.items():
        got = actual[session_id]
        for key in want:
            if got.get(key) != want[key]:
                return f"{session_id}.{key} is {_short(got.get(key))}, expected {_short(want[key])}"
    return "the sessions differ"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False).replace(FILLER, "…")
    return text if len(text) <= 160 else text[:157] + "..."


# -- the storm (in a forked process) -----------------------------------------------------


def _emit(*words: object) -> None:
    # One write per line, below PIPE_BUF: lines of the server and its storms never mix.
    line = " ".join(str(word) for word in words).replace("\n", " ")[:3000] + "\n"
    os.write(1, line.encode("utf-8", "backslashreplace"))


class _Stage:
    """What the storm is doing, so an exception can be charged to the call that raised it."""

    name = "open"


def storm(
    storage: SessionStorage,
    path: Path,
    start: int,
    flush_every: int,
    moment: datetime,
    stage: _Stage | None = None,
) -> None:
    """Mutations ``start``, ``start + 1``... on a backend that loaded the state before
    ``start``; after each flush(), say which state the file holds. Runs until killed (B31)."""
    stage = stage or _Stage()
    pid, parent = os.getpid(), os.getppid()
    stamp = format_timestamp(moment)
    stage.name = "load"
    loaded = {s.id: session_as_json(s) for s in storage.list_sessions()}
    if loaded != expected_state(start - 1, stamp):
        # What the last storm left on disk was judged whole; memory differs: a load bug.
        detail = _difference(loaded, expected_state(start - 1, stamp))
        _emit("diverged", pid, start - 1, "load", json.dumps(detail))
        return
    _emit("ready", pid)
    for index in range(start, start + MAX_MUTATIONS):
        stage.name = kind_of(index)
        session_id = apply(storage, index, moment)
        # Memory must be the sequence's state: else a method is broken, not saving.
        stage.name = "read"
        got = storage.get_session(session_id)
        wanted = expected_session(SESSION_IDS.index(session_id), index, stamp)
        rendered = None if got is None else session_as_json(got)
        if rendered != wanted:
            detail = _difference({session_id: rendered or {}}, {session_id: wanted or {}})
            _emit("diverged", pid, index, kind_of(index), json.dumps(detail))
            return
        if (index - start + 1) % flush_every == 0:
            if os.getppid() != parent:
                return  # the server (and the kit) went away without killing this storm
            stage.name = "flush"
            storage.flush()
            verdict = judge_file(path, stamp)
            verdict_word = "ok" if verdict.problem is None and verdict.exact else "bad"
            _emit("ack", pid, index, verdict.index, verdict_word, json.dumps(verdict.describe()))


def _storm_process(factory: Any, path: Path, moment: datetime, start: int, every: int) -> int:
    stage = _Stage()
    try:
        storage: SessionStorage = factory(path, clock=lambda: moment)
        storm(storage, path, start, every, moment, stage)
    except BaseException as exc:  # reported to the kit; this process must not go on
        _emit("error", os.getpid(), stage.name, json.dumps(f"{type(exc).__name__}: {exc}"))
        return 1
    return 0


def serve(target: str, path: str, epoch_ms: str, flush_every: str) -> int:
    """B31's fork server: one storm process per ``storm START`` line (see the module doc)."""
    factory = load_target(target)
    moment = moment_of(int(epoch_ms))
    _emit("serving", os.getpid())
    for line in sys.stdin:
        command, *args = line.split()
        if command == "storm":
            pid = os.fork()
            if pid == 0:  # the storm: never back into this loop, whatever happens
                code = 1
                try:
                    # Its own process group, which a stdio adapter it starts joins: the kit
                    # stops and kills the group, the backend's process with it (PROTOCOL.md).
                    os.setpgid(0, 0)
                    os.environ[GROUP_VARIABLE] = "inherit"
                    code = _storm_process(
                        factory, Path(path), moment, int(args[0]), int(flush_every)
                    )
                finally:
                    os._exit(code)
            with contextlib.suppress(OSError):  # the child may have done it already
                os.setpgid(pid, pid)
            _emit("started", pid)
        elif command == "reap":
            _, status = os.waitpid(int(args[0]), 0)
            _emit("reaped", args[0], status)
        elif command == "quit":
            break
    return 0


def main(argv: list[str]) -> int:
    """``python -m sessionspec.conformance.child_crash serve ...`` (B31)."""
    command, *args = argv
    if command == "serve":
        return serve(*args)
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
