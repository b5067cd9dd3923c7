"""The Python adapter of the harness protocol: serve any in-process factory over stdio.

``python -m sessionspec.conformance.stdio_server TARGET`` answers PROTOCOL.md's requests
with the factory TARGET names (``module:attr`` or ``path/to/file.py:attr``), so
``sessionspec verify --stdio "python -m sessionspec.conformance.stdio_server TARGET"`` judges
the same backend the in-process run does, through the protocol. It is also the adapter to
copy when writing one in another language: one loop, one table of operations.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sessionspec
from sessionspec.conformance.loading import load_target
from sessionspec.conformance.protocol import (
    PROTOCOL_VERSION,
    error_to_wire,
    session_to_wire,
    turn_from_wire,
)
from sessionspec.spec import UNSET, SessionStorage, declared_levels, parse_timestamp

#: The factory attribute that lists known failures (PROTOCOL.md §4).
EXPECTED_FAILURES_ATTRIBUTE = "sessionspec_expected_failures"


class UnsupportedOperation(Exception):
    """A request names an operation this adapter does not know (error kind Unsupported)."""


class Adapter:
    """The state of one adapter process: the factory, the clock, the open instances."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.factory = load_target(target)
        self.now: datetime | None = None
        self.instances: dict[str, SessionStorage] = {}

    def clock(self) -> datetime:
        """The backend's clock: the ``now`` of the request being served (PROTOCOL.md §2.1)."""
        assert self.now is not None, "no request has set the clock yet"
        return self.now

    def hello(self, args: dict[str, Any]) -> dict[str, Any]:
        """The handshake: who this is and what it claims (PROTOCOL.md §3.1)."""
        if args.get("protocol") != PROTOCOL_VERSION:
            raise UnsupportedOperation(f"protocol {args.get('protocol')!r}; this adapter speaks 1")
        levels = declared_levels(self.factory)
        expected = getattr(self.factory, EXPECTED_FAILURES_ATTRIBUTE, None) or {}
        out: dict[str, Any] = {
            "protocol": PROTOCOL_VERSION,
            "implementation": {
                "name": self.target,
                "version": sessionspec.versions()["kit"],
                "language": "python",
            },
            "levels": sorted(level.value for level in levels or ()),
        }
        if expected:
            out["expectedFailures"] = dict(expected)
        return out

    def open(self, args: dict[str, Any]) -> None:
        """Construct an instance on a path under the kit's name for it."""
        name = args["instance"]
        if name in self.instances:
            raise ValueError(f"instance {name!r} is already open")
        self.instances[name] = self.factory(Path(args["path"]), clock=self.clock)

    def call(self, op: str, args: dict[str, Any]) -> Any:
        """One interface call on a named instance, its result in the protocol's JSON."""
        storage = self.instances[args["instance"]]
        session_id: Any = args.get("sessionId")  # any JSON value: the backend judges it (B08)
        if op == "update_session":
            turns = args.get("turns", UNSET)
            return storage.update_session(
                session_id,
                turns=UNSET if turns is UNSET else [turn_from_wire(t) for t in turns],
                codex_conversation_id=args.get("codexConversationId", UNSET),
            )
        if op == "add_turn":
            return storage.add_turn(session_id, turn_from_wire(args["turn"]))
        if op == "set_codex_conversation_id":
            return storage.set_codex_conversation_id(session_id, args["conversationId"])
        if op == "get_session":
            session = storage.get_session(session_id)
            return None if session is None else session_to_wire(session)
        if op == "list_sessions":
            return [session_to_wire(s) for s in storage.list_sessions()]
        if op in ("create_session", "flush", "close"):
            return getattr(storage, op)()
        if op in ("ensure_session", "delete_session", "reset_session",
                  "get_codex_conversation_id"):  # fmt: skip
            return getattr(storage, op)(session_id)
        raise UnsupportedOperation(op)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The response to one request."""
        op, args = request["op"], request.get("args", {})
        self.now = parse_timestamp(request["now"])
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "hello": self.hello,
            "open": self.open,
        }
        try:
            result = handlers[op](args) if op in handlers else self.call(op, args)
        except UnsupportedOperation as exc:
            what = str(exc) if op == "hello" else f"unknown operation {op!r}"
            error = {"kind": "Unsupported", "message": what}
            return {"id": request["id"], "error": error}
        except Exception as exc:
            return {"id": request["id"], "error": error_to_wire(exc)}
        return {"id": request["id"], "ok": result}


class Output:
    """stdout of the protocol: whole lines, from any thread (a background save's ERROR)."""

    def __init__(self) -> None:
        # The protocol owns file descriptor 1: what the backend prints goes to stderr.
        self._file = os.fdopen(os.dup(1), "w", encoding="ascii")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        # ensure_ascii: lone surrogates travel as \\uXXXX escapes (PROTOCOL.md §1).
        line = json.dumps(message, ensure_ascii=True) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()


class Diagnostics(logging.Handler):
    """Sends the backend's WARNINGs and ERRORs as ``log`` messages (PROTOCOL.md §2.3)."""

    def __init__(self, output: Output) -> None:
        super().__init__(logging.WARNING)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        self.output.send({"log": {"level": record.levelname, "message": record.getMessage()}})


def serve(target: str) -> None:
    """Answer requests from stdin until it closes; then end as a normal exit does, without
    closing the instances (their exit hooks save, B33; PROTOCOL.md §1)."""
    output = Output()
    logging.getLogger().addHandler(Diagnostics(output))
    adapter = Adapter(target)
    for line in sys.stdin:
        if line.strip():
            output.send(adapter.answer(json.loads(line)))


def main(argv: list[str] | None = None) -> None:
    """``python -m sessionspec.conformance.stdio_server TARGET``."""
    parser = argparse.ArgumentParser(
        prog="python -m sessionspec.conformance.stdio_server",
        description="Serve a Python factory over the sessionspec harness protocol (stdio).",
    )
    parser.add_argument("target", help="module:attr or path/to/file.py:attr")
    args = parser.parse_args(argv)
    serve(args.target)


if __name__ == "__main__":
    main()
