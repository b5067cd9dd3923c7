"""The sessions file of SPEC.md §3 as pure functions: ``decode`` bytes, ``encode`` sessions.

No I/O here: the file backend decides what to do with a corrupt, future or lossy file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import repeat
from json.encoder import encode_basestring as _string  # C: escapes like json.dumps
from operator import attrgetter
from typing import Any, NoReturn

import msgspec

from sessionspec.reference.fastload import decode_writer_form
from sessionspec.spec import (
    SCHEMA_VERSION,
    ConversationTurn,
    SessionData,
    format_timestamp,
    has_sub_millisecond_digits,
    is_valid_session_id,
    parse_timestamp,
)

SESSION_MEMBERS = frozenset({"id", "createdAt", "lastAccessedAt", "turns", "codexConversationId"})
TURN_MEMBERS = frozenset({"prompt", "response", "timestamp"})
ENVELOPE_MEMBERS = frozenset({"version", "sessions"})


class InvalidFileError(ValueError):
    """The file cannot be loaded at all; it must be moved aside (B13, B14)."""


class CorruptFileError(InvalidFileError):
    """Not UTF-8 JSON without a BOM, top level not an object, or no sessions array (B13)."""


class UnsupportedVersionError(InvalidFileError):
    """``version`` is absent or not a number that JSON.parse reads as 1 (B14)."""


@dataclass(frozen=True, slots=True)
class Skip:
    """A record left out of the load, and where it was (``sessions[3].turns[0]``)."""

    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a v1 reader loads from a file (SPEC.md §3.2, steps 2-6)."""

    sessions: tuple[SessionData, ...]  # in file order; duplicates removed (first wins)
    skipped: tuple[Skip, ...]
    lossy: bool  # something of the file is not in ``sessions``: keep the original bytes


def decode(data: bytes) -> Decoded:
    """Read a sessions file. Raises CorruptFileError or UnsupportedVersionError.

    A file in the writer's own form takes a fast path (``fastload``) that gives exactly what
    the full reader, ``decode_fully``, gives; any other file, the full reader.
    """
    sessions = decode_writer_form(data)
    if sessions is not None:
        return Decoded(sessions, (), False)
    return decode_fully(data)


def decode_fully(data: bytes) -> Decoded:
    """``decode`` by the reader's rules, step by step (SPEC.md §3.2): any file."""
    document, repeated_names = _parse_json(data)
    if not isinstance(document, dict):
        raise CorruptFileError("the top level is not a JSON object")
    if not _is_version_1(document.get("version")):
        raise UnsupportedVersionError(f"unsupported version {_as_json(document, 'version')}")
    records = document.get("sessions")
    if not isinstance(records, list):
        raise CorruptFileError("'sessions' is absent or not an array")

    reader = _RecordReader()
    # A repeated member name keeps only its last value: the earlier ones are lost.
    reader.lossy = repeated_names or bool(document.keys() - ENVELOPE_MEMBERS)
    sessions: dict[str, SessionData] = {}
    for index, record in enumerate(records):
        session = reader.session(f"sessions[{index}]", record, sessions)
        if session is not None:
            sessions[session.id] = session
    return Decoded(tuple(sessions.values()), tuple(reader.skipped), reader.lossy)


def _as_json(document: dict[str, Any], member: str) -> str:
    """A member's value as it reads in JSON (``1.5``, ``"1"``, ``true``), or ``(absent)``."""
    if member not in document:
        return "(absent)"
    value = document[member]
    if isinstance(value, Decimal):
        text = str(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _reject_constant(name: str) -> NoReturn:
    raise CorruptFileError(f"{name} is not JSON")


def _parse_int(digits: str) -> int | Decimal:
    # Python refuses to convert very long digit strings to int.
    return int(digits) if len(digits) < 4000 else Decimal(digits)


def _parse_float(text: str) -> Decimal | float:
    # Exact, so nothing is rounded before it must be. An exponent beyond what Decimal can
    # hold (1e99999999999999999999) is read as float() reads it: +-inf or +-0.0.
    try:
        return Decimal(text)
    except ArithmeticError:  # decimal.InvalidOperation
        return float(text)


def _parse_json(data: bytes) -> tuple[object, bool]:
    """The JSON value, and whether any object repeated a member name."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise CorruptFileError("the file starts with a byte-order mark")
    repeated = False

    def make_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        result = dict(pairs)
        repeated = repeated or len(result) != len(pairs)
        return result

    try:
        text = data.decode("utf-8")
        document = json.loads(
            text,
            object_pairs_hook=make_object,
            parse_constant=_reject_constant,  # NaN and Infinity are not JSON
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"not UTF-8: {exc}") from None
    except CorruptFileError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptFileError(f"not a single JSON text: {exc}") from None
    return document, repeated


def _is_version_1(version: object) -> bool:
    """A JSON number that, read as JSON.parse reads it, equals 1 (SPEC.md §3.2 step 3).

    JSON.parse reads every number as an IEEE 754 binary64 double, rounding to nearest, so
    1, 1.0, 1e0, 10e-1, 1.0000000000000000001 and 0.99999999999999999999 are version 1;
    1.000001, 1e400 (Infinity) and true (a bool is an int in Python) are not.
    """
    if isinstance(version, bool) or not isinstance(version, int | float | Decimal):
        return False
    # float(Decimal) rounds to nearest like JSON.parse and never raises: a huge value is inf.
    # Going through Decimal also spares float(int) its OverflowError on a 3999-digit int.
    value = version if isinstance(version, float) else float(Decimal(version))
    return value == SCHEMA_VERSION


class _Skipped(Exception):
    """A record is invalid; the message says why."""


class _RecordReader:
    """Step 5 of SPEC.md §3.2: records one by one, noting skips and losses."""

    def __init__(self) -> None:
        self.skipped: list[Skip] = []
        self.lossy = False

    def session(
        self, where: str, record: object, loaded: dict[str, SessionData]
    ) -> SessionData | None:
        try:
            return self._session(where, record, loaded)
        except _Skipped as reason:
            self._skip(where, reason)
            return None

    def _session(self, where: str, record: object, loaded: dict[str, SessionData]) -> SessionData:
        if not isinstance(record, dict):
            raise _Skipped("not an object")
        session_id = record.get("id")
        if not isinstance(session_id, str) or not is_valid_session_id(session_id):
            raise _Skipped(f"id {session_id!r:.60} is missing or invalid")
        if session_id in loaded:
            raise _Skipped(f"id {session_id!r} repeats an earlier session's")
        created_at = self._timestamp(record, "createdAt")
        last_accessed_at = self._timestamp(record, "lastAccessedAt")
        turns = record.get("turns")
        if not isinstance(turns, list):
            raise _Skipped("turns is missing or not an array")
        conversation_id = record.get("codexConversationId")
        if not isinstance(conversation_id, str | None):
            raise _Skipped("codexConversationId is neither a string nor null")
        if record.keys() - SESSION_MEMBERS:
            self.lossy = True
        kept = []
        for j, turn in enumerate(turns):
            try:
                kept.append(self._turn(turn))
            except _Skipped as reason:
                self._skip(f"{where}.turns[{j}]", reason)
        return SessionData(session_id, created_at, last_accessed_at, tuple(kept), conversation_id)

    def _turn(self, record: object) -> ConversationTurn:
        if not isinstance(record, dict):
            raise _Skipped("not an object")
        timestamp = self._timestamp(record, "timestamp")
        prompt, response = record.get("prompt"), record.get("response")
        if not isinstance(prompt, str) or not isinstance(response, str):
            raise _Skipped("prompt or response is missing or not a string")
        if record.keys() - TURN_MEMBERS:
            self.lossy = True
        return ConversationTurn(prompt, response, timestamp)

    def _timestamp(self, record: dict[str, Any], member: str) -> datetime:
        text = record.get(member)
        try:
            moment = parse_timestamp(text)
        except ValueError:
            raise _Skipped(f"{member} {text!r:.60} is missing or not a valid timestamp") from None
        if isinstance(text, str) and has_sub_millisecond_digits(text):
            self.lossy = True
        return moment

    def _skip(self, where: str, reason: _Skipped) -> None:
        self.skipped.append(Skip(where, str(reason)))
        self.lossy = True


# -- writing ---------------------------------------------------------------------------------

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_DOCUMENT_HEAD = b'{\n  "version": %d,\n  "sessions": [\n' % SCHEMA_VERSION
_DOCUMENT_TAIL = b"\n  ]\n}"
_EMPTY_DOCUMENT = b'{\n  "version": %d,\n  "sessions": []\n}' % SCHEMA_VERSION
_SESSION_SEPARATOR = b",\n"
#: Turns appended one save at a time are joined into one piece every this many: a save
#: writes its pieces with writev(2), which is as fast as write(2) only for large pieces.
_LOOSE_TURNS = 64
#: Strings and datetimes to JSON bytes in C, escaping exactly as json.dumps(ensure_ascii=False)
#: does (tests/test_reference_fastload.py checks every character); it refuses lone surrogates,
#: which the text path below escapes as JSON.stringify does.
_JSON = msgspec.json.Encoder()
_TURN = (
    b'%s\n        {\n          "prompt": %s,\n          "response": %s,\n'
    b'          "timestamp": %s\n        }'
)
_HEAD = (
    b'    {\n      "id": %s,\n      "createdAt": %s,\n      "lastAccessedAt": %s,\n      "turns": '
)


def encode(sessions: Iterable[SessionData]) -> bytes:
    """The writer profile (B10) in the given order, indented by two spaces like upstream.

    The bytes are exactly ``json.dumps(document, indent=2, ensure_ascii=False)`` with lone
    surrogates escaped (the tests check it), built from fixed templates around the stdlib's C
    string escaper: with an indent, ``json.dumps`` runs its pure-Python encoder, which is
    several times slower, and per-session pieces let ``SessionEncoder`` reuse them.
    """
    return _document([_session_bytes(session) for session in sessions])


@dataclass(slots=True)
class _Encoded:
    """One session as ``SessionEncoder`` last encoded it, in pieces: ``head``, ``turns`` (the
    encoded ``turns_of``, each piece one turn or many), ``tail``."""

    session: SessionData
    head: bytes
    turns: list[bytes]
    tail: bytes
    turns_of: tuple[ConversationTurn, ...]
    loose: int  # how many of the last pieces of ``turns`` hold one turn each


class SessionEncoder:
    """``encode`` that reuses the bytes of every session unchanged since its last call.

    Sessions are immutable and a change replaces the object, so "unchanged" is identity:
    a save after one ``add_turn`` encodes one session, not the whole store, and of that
    session only what changed: its head (the times) and the turns it did not have.
    """

    def __init__(self) -> None:
        self._last: dict[str, _Encoded] = {}

    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        return b"".join(self.pieces(sessions))

    def pieces(self, sessions: Iterable[SessionData]) -> list[bytes]:
        """``encode(sessions)`` in pieces, to write with writev(2) rather than join."""
        current: dict[str, _Encoded] = {}
        pieces = [_DOCUMENT_HEAD]
        for session in sessions:
            cached = self._last.get(session.id)
            if cached is None or cached.session is not session:
                cached = _encoded(session, cached)
            current[session.id] = cached
            pieces += (cached.head, *cached.turns, cached.tail, _SESSION_SEPARATOR)
        self._last = current
        if not current:
            return [_EMPTY_DOCUMENT]
        pieces[-1] = _DOCUMENT_TAIL  # the last separator
        return pieces


def _encoded(session: SessionData, before: _Encoded | None) -> _Encoded:
    """``session`` in pieces, reusing the turns ``before`` encoded when it only added some."""
    turns = session.turns
    kept = 0 if before is None else len(before.turns_of)
    if before is not None and kept <= len(turns) and turns[:kept] == before.turns_of:
        pieces = [*before.turns, *_turns_bytes(turns[kept:], first=kept == 0)]
        loose = before.loose + len(turns) - kept
        if loose >= _LOOSE_TURNS:
            pieces[-loose:] = [b"".join(pieces[-loose:])]
            loose = 0
    else:
        pieces = [b"".join(_turns_bytes(turns, first=True))] if turns else []
        loose = 0
    return _Encoded(session, _head_bytes(session), pieces, _tail_bytes(session), turns, loose)


def _document(sessions: list[bytes]) -> bytes:
    if not sessions:
        return _EMPTY_DOCUMENT
    return b"".join([_DOCUMENT_HEAD, _SESSION_SEPARATOR.join(sessions), _DOCUMENT_TAIL])


def _session_bytes(session: SessionData) -> bytes:
    turns = _turns_bytes(session.turns, first=True)
    return b"".join([_head_bytes(session), *turns, _tail_bytes(session)])


# The bytes of a session's parts, in C where it can (a turn in about a quarter of the text
# path's time, the timestamp being most of it); the text path for strings msgspec refuses.


def _head_bytes(session: SessionData) -> bytes:
    try:
        return _HEAD % (
            _JSON.encode(session.id),
            _stamp_bytes(session.created_at),
            _stamp_bytes(session.last_accessed_at),
        )
    except UnicodeEncodeError:
        return _utf8(_head_text(session))


def _turns_bytes(turns: tuple[ConversationTurn, ...], *, first: bool) -> list[bytes]:
    """``_turn_bytes`` of each turn, the first opening the array when ``first``: in a few C
    calls for the turns whose timestamps msgspec writes as ``"YYYY-MM-DDTHH:MM:SS.fff000Z"``
    (every stored one not on a whole second) and strings hold no lone surrogate; else turn by
    turn. (A quarter less time per turn, measured on 200-character turns.)"""
    count = len(turns)
    try:
        stamps = _JSON.encode(list(map(_TIMESTAMP, turns)))
        # 29 bytes and a comma each, each ending in 000Z": each is that form, no other.
        if len(stamps) == 30 * count + 1 and stamps.count(b'000Z"') == count:
            pieces = list(
                map(
                    _TURN.__mod__,
                    zip(
                        repeat(b",", count),
                        map(_JSON.encode, map(_PROMPT, turns)),
                        map(_JSON.encode, map(_RESPONSE, turns)),
                        stamps.replace(b'000Z"', b'Z"')[1:-1].split(b","),
                        strict=True,
                    ),
                )
            )
            if first:
                pieces[0] = b"[" + pieces[0][1:]
            return pieces
    except (UnicodeEncodeError, TypeError):
        pass  # a lone surrogate, or a datetime msgspec does not know: the text path knows
    return [_turn_bytes(turn, first and i == 0) for i, turn in enumerate(turns)]


_PROMPT = attrgetter("prompt")
_RESPONSE = attrgetter("response")
_TIMESTAMP = attrgetter("timestamp")


def _turn_bytes(turn: ConversationTurn, first: bool) -> bytes:
    try:
        return _TURN % (
            b"[" if first else b",",
            _JSON.encode(turn.prompt),
            _JSON.encode(turn.response),
            _stamp_bytes(turn.timestamp),
        )
    except UnicodeEncodeError:
        return _utf8(_turn_text(turn, first))


def _tail_bytes(session: SessionData) -> bytes:
    try:
        conversation_id = session.codex_conversation_id
        close = b"\n      ]" if session.turns else b"[]"
        if conversation_id is None:  # absent, not null; "" is a value (B06)
            return close + b"\n    }"
        cid = _JSON.encode(conversation_id)
        return b'%s,\n      "codexConversationId": %s\n    }' % (close, cid)
    except UnicodeEncodeError:
        return _utf8(_tail_text(session))


def _stamp_bytes(moment: datetime) -> bytes:
    """``format_timestamp`` quoted, as bytes: msgspec writes a UTC datetime as
    ``"YYYY-MM-DDTHH:MM:SS.ffffffZ"``, or without the fraction when it is zero."""
    if type(moment) is datetime and moment.tzinfo is UTC and not moment.microsecond % 1000:
        quoted = _JSON.encode(moment)
        return quoted[:-5] + b'Z"' if moment.microsecond else quoted[:-2] + b'.000Z"'
    return b'"%s"' % format_timestamp(moment).encode()


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8; escape them as JSON.stringify does. They occur
        # only inside strings, where "\udXXX" is a valid JSON escape.
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def _session_text(session: SessionData) -> str:
    turns = "".join([_turn_text(turn, i == 0) for i, turn in enumerate(session.turns)])
    return _head_text(session) + turns + _tail_text(session)


def _head_text(session: SessionData) -> str:
    return (
        f"    {{\n"
        f'      "id": {_string(session.id)},\n'
        f'      "createdAt": "{format_timestamp(session.created_at)}",\n'
        f'      "lastAccessedAt": "{format_timestamp(session.last_accessed_at)}",\n'
        f'      "turns": '
    )


def _turn_text(turn: ConversationTurn, first: bool) -> str:
    """A turn with what precedes it in the array: its opening bracket or a separator."""
    return (
        f"{'[' if first else ','}\n"
        f"        {{\n"
        f'          "prompt": {_string(turn.prompt)},\n'
        f'          "response": {_string(turn.response)},\n'
        f'          "timestamp": "{format_timestamp(turn.timestamp)}"\n'
        f"        }}"
    )


def _tail_text(session: SessionData) -> str:
    conversation_id = (
        ""
        if session.codex_conversation_id is None  # absent, not null; "" is a value (B06)
        else f',\n      "codexConversationId": {_string(session.codex_conversation_id)}'
    )
    close = "\n      ]" if session.turns else "[]"
    return f"{close}{conversation_id}\n    }}"
