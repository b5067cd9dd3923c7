"""Child processes of the kit: ``python -m sessionspec.conformance.child COMMAND ...``.

- ``mutate TARGET PATH EPOCH_MS``: two instances on one path each mutate and flush (traced by
  strace for B19/B20);
- ``dump TARGET PATH EPOCH_MS``: open a fresh instance and print its state as JSON (B21);
- ``shared-burst TARGET PATH EPOCH_MS INDEX GO_FILE``: once ``GO_FILE`` exists, create
  sessions with turns, delete one, append to one session every child shares, flushing
  between, and print what it was told was stored (B25-B27);
- ``exit-without-close TARGET PATH EPOCH_MS``: mutate, print the state as JSON, and return
  without flush() or close(): a normal exit must keep it all (B33);
- ``read-loop PATH STOP_FILE SECONDS``: read and parse the file until told to stop, and
  print how many reads saw something other than a complete JSON document (B19); it creates
  ``STOP_FILE.ready`` once reading, so the parent starts saving only then.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.clock import EPOCH
from sessionspec.conformance.loading import load_target
from sessionspec.conformance.oracle import format_timestamp
from sessionspec.spec import ConversationTurn, SessionData, SessionStorage


def _open(target: str, path: str, epoch_ms: str) -> SessionStorage:
    moment = EPOCH + timedelta(milliseconds=int(epoch_ms))
    factory = load_target(target)
    storage: SessionStorage = factory(Path(path), clock=lambda: moment)
    return storage


def session_as_json(session: SessionData) -> dict[str, Any]:
    """A process-neutral rendering (json.dumps escapes lone surrogates)."""
    return {
        "id": session.id,
        "createdAt": _moment(session.created_at),
        "lastAccessedAt": _moment(session.last_accessed_at),
        "turns": [[t.prompt, t.response, _moment(t.timestamp)] for t in session.turns],
        "codexConversationId": session.codex_conversation_id,
    }


def _moment(value: Any) -> str:
    """The writer form of an aware datetime; anything else shown as it is, so the parent
    reports a difference (B09), not a crash of this child."""
    try:
        return format_timestamp(value)
    except Exception:
        return f"not an aware datetime: {value!r}"


def mutate_two_instances(target: str, path: str, epoch_ms: str) -> int:
    first = _open(target, path, epoch_ms)
    second = _open(target, path, epoch_ms)
    now = datetime.now(UTC)
    for storage, label in ((first, "one"), (second, "two")):
        session_id = storage.create_session()
        storage.add_turn(session_id, ConversationTurn(label, label, now))
        storage.flush()
    first.close()
    second.close()
    return 0


def shared_burst(storage: SessionStorage, index: int, go: Path) -> dict[str, Any]:
    """One participant of the many-processes workload of the shared level (B25-B27).

    Turn timestamps are the real time when the turn is made, as a server stamps them: a turn
    another participant saved earlier is then never stamped later than this one, so the
    shared session's turns must come out in timestamp order.
    """
    from sessionspec.conformance.checks_shared import OWN, SHARED_ID, SHARED_TURNS, TURNS

    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    kept: dict[str, list[str]] = {}
    shared: list[tuple[str, str]] = []
    for k in range(max(TURNS, SHARED_TURNS)):
        if k == 0:
            kept = {storage.create_session(): [] for _ in range(OWN)}
        if k < TURNS:
            stamp = datetime.now(UTC)
            for session_id, prompts in kept.items():
                prompt = f"own-{index}-{k}"
                storage.add_turn(session_id, ConversationTurn(prompt, "r", stamp))
                prompts.append(prompt)
        if k < SHARED_TURNS:
            storage.ensure_session(SHARED_ID)  # takes in what the others saved (B29)
            stamp = datetime.now(UTC)
            prompt = f"shared-{index}-{k}"
            storage.add_turn(SHARED_ID, ConversationTurn(prompt, "r", stamp))
            shared.append((prompt, _moment(stamp)))
        storage.flush()
    deleted = next(iter(kept))
    storage.delete_session(deleted)
    del kept[deleted]
    storage.close()
    return {"kept": kept, "deleted": [deleted], "shared": shared}


def _shared_burst(target: str, path: str, epoch_ms: str, index: str, go: str) -> int:
    storage = _open(target, path, epoch_ms)
    print(json.dumps(shared_burst(storage, int(index), Path(go))))
    return 0


def _dump(target: str, path: str, epoch_ms: str) -> int:
    storage = _open(target, path, epoch_ms)
    print(json.dumps([session_as_json(s) for s in storage.list_sessions()]))
    storage.close()
    return 0


def _read_loop(path: str, stop_file: str, seconds: str) -> int:
    deadline = time.monotonic() + float(seconds)
    reads = bad = missing = 0
    examples: list[str] = []
    ready = Path(stop_file + ".ready")
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        if not ready.exists():
            ready.touch()  # the parent starts saving only once this loop runs
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            missing += 1
            continue
        reads += 1
        try:
            json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            bad += 1
            if len(examples) < 3:
                examples.append(f"{exc} ({len(raw)} bytes)")
    print(json.dumps({"reads": reads, "bad": bad, "missing": missing, "examples": examples}))
    return 0


def exit_without_close(target: str, path: str, epoch_ms: str) -> int:
    """Mutate and end normally, flushing nothing (B33): the exit hooks must save it."""
    storage = _open(target, path, epoch_ms)
    moment = EPOCH + timedelta(milliseconds=int(epoch_ms))
    for prompt in ("saved at exit", "this one too"):
        storage.add_turn(storage.create_session(), ConversationTurn(prompt, "yes", moment))
    print(json.dumps([session_as_json(s) for s in storage.list_sessions()]), flush=True)
    return 0


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "mutate":
        return mutate_two_instances(*args)
    if command == "dump":
        return _dump(*args)
    if command == "shared-burst":
        return _shared_burst(*args)
    if command == "exit-without-close":
        return exit_without_close(*args)
    if command == "read-loop":
        return _read_loop(*args)
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
