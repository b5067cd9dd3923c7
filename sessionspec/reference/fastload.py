"""A fast path of ``sessionfile.decode`` for files in the writer's own form.

``decode_writer_form`` returns the sessions of a file only when it can prove that the full
reader (``sessionfile.decode_fully``) gives exactly them, skipping nothing and losing nothing;
otherwise None, and ``decode`` reads the file with the full reader. The proof:

1. msgspec decodes the bytes into strict structs: no member beyond the writer's, every member
   of the type the reader wants, ``version`` the integer 1, timestamps kept as text.
2. msgspec's own encoding of those structs, indented by two spaces, is byte for byte the file
   (checked one session at a time).
   So the file is one JSON text in msgspec's canonical form, which is the writer's (the tests
   check that msgspec escapes exactly like ``json.dumps``): no repeated member name, no
   ``null`` conversation id, no whitespace, escape or number the two parsers could read
   differently. A file with anything else takes the full reader.
3. What is left of the reader's rules (SPEC.md §3.2, step 5) holds: every session id is in the
   grammar and none repeats; every timestamp is exactly in the writer's form
   (``WRITER_TIMESTAMP``: no sub-millisecond digit, no offset) and a real date and time, which
   ``datetime.fromisoformat`` checks as the reader's ``parse_timestamp`` does (it refuses month
   13, year 0000, second 60 or February 30, as the reader does).

msgspec decodes timestamps as text on purpose: its ``datetime`` rounds sub-microsecond digits
and accepts forms the reader refuses. It refuses lone-surrogate escapes, which the reader
loads: such a file takes the full reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from sessionspec.spec import ConversationTurn, SessionData, is_valid_session_id


class _Turn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    prompt: str
    response: str
    timestamp: str


class _Session(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    id: str
    created_at: str = msgspec.field(name="createdAt")
    last_accessed_at: str = msgspec.field(name="lastAccessedAt")
    turns: list[_Turn]
    # Absent is None: a null in the file is encoded back as absent, so the bytes differ.
    codex_conversation_id: str | None = msgspec.field(default=None, name="codexConversationId")


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    version: Literal[1]
    sessions: list[_Session]


_DECODER = msgspec.json.Decoder(_Document)
_ENCODER = msgspec.json.Encoder()
_INDENT = 2

# The writer's timestamp (WRITER_TIMESTAMP) with every digit a 0, and a newline.
_STAMP_LINE = "0000-00-00T00:00:00.000Z\n"
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")

# The immutable public classes, built without their __init__ (which checks and normalises
# what the proof above already established): their slots are set directly.
_new = object.__new__
_turn_slots: Mapping[str, Any] = vars(ConversationTurn)
_set_prompt = _turn_slots["prompt"].__set__
_set_response = _turn_slots["response"].__set__
_set_timestamp = _turn_slots["timestamp"].__set__
_session_slots: Mapping[str, Any] = vars(SessionData)
_set_id = _session_slots["id"].__set__
_set_created_at = _session_slots["created_at"].__set__
_set_last_accessed_at = _session_slots["last_accessed_at"].__set__
_set_turns = _session_slots["turns"].__set__
_set_conversation_id = _session_slots["codex_conversation_id"].__set__


def decode_writer_form(data: bytes) -> tuple[SessionData, ...] | None:
    """The sessions of a file in the writer's form, or None when this cannot prove that the
    full reader loads exactly them, with nothing skipped and nothing lost."""
    try:
        document = _DECODER.decode(data)
        if not _is_canonical(data, document):
            return None
    except (msgspec.MsgspecError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    records = document.sessions
    ids = [record.id for record in records]
    if len(set(ids)) != len(ids) or not all(map(is_valid_session_id, ids)):
        return None
    stamps = _writer_stamps(records)
    if stamps is None:
        return None
    try:
        # "Z" is UTC, tzinfo datetime.UTC: the reader's value. One map over all of them.
        moments = iter(list(map(datetime.fromisoformat, stamps)))
    except ValueError:  # in the writer's form, but no such date or time: the reader skips it
        return None
    sessions = []
    for record in records:
        turns = []
        # zip stops at the end of record.turns without taking a moment beyond them.
        for entry, moment in zip(record.turns, moments, strict=False):
            turn = _new(ConversationTurn)
            _set_prompt(turn, entry.prompt)
            _set_response(turn, entry.response)
            _set_timestamp(turn, moment)
            turns.append(turn)
        created_at = next(moments)
        sessions.append(
            unchecked_session(
                record.id, created_at, next(moments), tuple(turns), record.codex_conversation_id
            )
        )
    return tuple(sessions)


def unchecked_session(
    session_id: str,
    created_at: datetime,
    last_accessed_at: datetime,
    turns: tuple[ConversationTurn, ...],
    codex_conversation_id: str | None,
) -> SessionData:
    """``SessionData(...)`` for values already checked and normalised, its slots set directly
    (half the cost of the frozen dataclass's ``__init__``): a load makes one per session, a
    table one per mutation."""
    session = _new(SessionData)
    _set_id(session, session_id)
    _set_created_at(session, created_at)
    _set_last_accessed_at(session, last_accessed_at)
    _set_turns(session, turns)
    _set_conversation_id(session, codex_conversation_id)
    return session


def _canonical(document: _Document) -> bytes:
    return msgspec.json.format(_ENCODER.encode(document), indent=_INDENT)


_EMPTY = _canonical(_Document(1, []))
_HEAD = b'{\n  "version": 1,\n  "sessions": [\n'
_SEPARATOR = b",\n"
_TAIL = b"\n  ]\n}"


def _is_canonical(data: bytes, document: _Document) -> bool:
    """Whether ``data`` is msgspec's encoding of ``document``, indented by two spaces.

    One session at a time, each in a document of its own (so at its depth in the file), and
    compared in place: the whole file encoded again would be two more buffers of its size,
    whose fresh pages cost more than the encoding.
    """
    if not document.sessions:
        return data == _EMPTY
    if not (data.startswith(_HEAD) and data.endswith(_TAIL)):
        return False
    position = len(_HEAD)
    for index, record in enumerate(document.sessions):
        if index:
            if not data.startswith(_SEPARATOR, position):
                return False
            position += len(_SEPARATOR)
        alone = _canonical(_Document(1, [record]))
        if not (alone.startswith(_HEAD) and alone.endswith(_TAIL)):
            return False
        session = memoryview(alone)[len(_HEAD) : len(alone) - len(_TAIL)]
        if not data.startswith(session, position):
            return False
        position += len(session)
    return position + len(_TAIL) == len(data)


def _writer_stamps(records: list[_Session]) -> list[str] | None:
    """Every timestamp in the order the sessions are built (each session's turns, then its
    createdAt and lastAccessedAt), or None when one is not in the writer's form
    (``WRITER_TIMESTAMP``)."""
    stamps = []
    for record in records:
        stamps += [turn.timestamp for turn in record.turns]
        stamps += (record.created_at, record.last_accessed_at)
    # Every ASCII digit made a 0, the stamps one per line must be the writer's template repeated:
    # one C pass (a regex over them cost several times more). Any other character, a non-ASCII
    # digit included, stays as it is and breaks the match; and as the template's only newline
    # ends it, a stamp that is not exactly one template long (one holding a newline included)
    # moves the newlines after it off theirs.
    if not stamps:
        return stamps
    lines = "\n".join(stamps) + "\n"
    return stamps if lines.translate(_DIGITS_TO_ZERO) == _STAMP_LINE * len(stamps) else None
