"""Child processes of the kit: ``python -m sessionspec.conformance.child COMMAND ...``.

- ``mutate TARGET PATH EPOCH_MS``: two instances on one path each mutate and flush (traced by
  strace for B19/B20);
- ``dump TARGET PATH EPOCH_MS``: open a fresh instance and print its state as JSON (B21);
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


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "mutate":
        return mutate_two_instances(*args)
    if command == "dump":
        return _dump(*args)
    if command == "read-loop":
        return _read_loop(*args)
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
