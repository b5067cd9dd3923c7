"""The values of the harness protocol (PROTOCOL.md): Python objects to JSON and back.

Both ends of the protocol that this package ships use it: the kit's client
(:mod:`sessionspec.conformance.stdio`) and the Python adapter
(:mod:`sessionspec.conformance.stdio_server`). Sessions and turns take the file format's JSON
shapes; errors travel as a kind, an errno name and a message.
"""

from __future__ import annotations

import errno
import json
import math
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from sessionspec.spec import (
    ConversationTurn,
    SessionData,
    ValidationError,
    format_timestamp,
    parse_timestamp,
)

#: The major version of the harness protocol (PROTOCOL.md §3.1).
PROTOCOL_VERSION: Final = 1
#: Behaviours the protocol cannot observe, and why (PROTOCOL.md §6): N/A over stdio.
UNOBSERVABLE_OVER_STDIO: Final = {
    "B24": "snapshot isolation concerns the caller's objects in the backend's own language;"
    " over the harness protocol every value is copied by serialisation, so it cannot be"
    " observed (PROTOCOL.md §6)",
}


class ProtocolError(RuntimeError):
    """An adapter broke the protocol: a line that is not JSON, a message that does not
    validate, an answer to another request, or an exit (PROTOCOL.md §5)."""


class AdapterError(RuntimeError):
    """The backend raised something that is neither a ValidationError nor an OSError (error
    kind ``Error`` or ``Unsupported``); the message names the kind and the type."""


@cache
def protocol_schema() -> dict[str, Any]:
    """The JSON Schema of every message (``sessionspec/spec/protocol.schema.json``)."""
    text = resources.files("sessionspec.spec").joinpath("protocol.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def message_validator(name: str) -> Draft202012Validator:
    """A validator for the message ``$defs/name`` of the protocol schema."""
    schema = protocol_schema()
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema)
    )
    return Draft202012Validator({"$ref": f"{schema['$id']}#/$defs/{name}"}, registry=registry)


def message_problem(message: object, name: str) -> str | None:
    """None when ``message`` validates as ``$defs/name``, else the first problem."""
    error = next(iter(message_validator(name).iter_errors(message)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "the message"
    return f"{where}: {error.message:.300}"


def turn_to_wire(turn: ConversationTurn) -> dict[str, str]:
    """A turn as the file format writes it."""
    return {
        "prompt": turn.prompt,
        "response": turn.response,
        "timestamp": format_timestamp(turn.timestamp),
    }


def turn_from_wire(item: dict[str, Any]) -> ConversationTurn:
    """A turn from its JSON shape (timestamps in ``toISOString()`` form)."""
    return ConversationTurn(item["prompt"], item["response"], parse_timestamp(item["timestamp"]))


def session_to_wire(session: SessionData) -> dict[str, Any]:
    """A session as the file format writes it; ``codexConversationId`` absent when None."""
    out: dict[str, Any] = {
        "id": session.id,
        "createdAt": format_timestamp(session.created_at),
        "lastAccessedAt": format_timestamp(session.last_accessed_at),
        "turns": [turn_to_wire(turn) for turn in session.turns],
    }
    if session.codex_conversation_id is not None:
        out["codexConversationId"] = session.codex_conversation_id
    return out


def session_from_wire(item: dict[str, Any]) -> SessionData:
    """A fresh immutable snapshot from a session's JSON shape."""
    return SessionData(
        id=item["id"],
        created_at=parse_timestamp(item["createdAt"]),
        last_accessed_at=parse_timestamp(item["lastAccessedAt"]),
        turns=tuple(turn_from_wire(turn) for turn in item["turns"]),
        codex_conversation_id=item.get("codexConversationId"),
    )


def id_to_wire(value: object) -> Any:
    """A session id argument as JSON (PROTOCOL.md §2.4): strings and JSON values as they are,
    ``bytes`` as the array of their byte values, other values (non-finite floats, objects)
    as an object naming them: whatever is not a string stays a non-string (B08)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, list | tuple):
        return [id_to_wire(item) for item in value]
    return {"python": repr(value)}


def error_to_wire(exc: BaseException) -> dict[str, str]:
    """The ``error`` member of a response for an exception the backend raised."""
    if isinstance(exc, ValidationError):
        return {"kind": "ValidationError", "message": str(exc)}
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, "EIO")
        return {"kind": "OSError", "errno": name, "message": str(exc)}
    return {"kind": "Error", "type": type(exc).__name__, "message": str(exc)}


def error_from_wire(error: dict[str, Any]) -> Exception:
    """The exception the kit raises for an ``error`` member (PROTOCOL.md §2.2)."""
    kind, message = error["kind"], error["message"]
    if kind == "ValidationError":
        return ValidationError(message)
    if kind == "OSError":
        code = getattr(errno, error["errno"], None)
        if code is None:
            return OSError(f"[{error['errno']}] {message}")
        return OSError(code, message)
    name = error.get("type")
    return AdapterError(f"{kind}{f' ({name})' if name else ''}: {message}")
