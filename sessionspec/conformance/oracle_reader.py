"""The kit's own v1 reader: what a conforming backend holds after opening a file.

``expected_load(raw, now)`` applies SPEC.md §3.2 steps 2-7 to the bytes of a sessions file,
as a backend whose clock reads ``now`` must when it opens them: move the file aside (B13,
B14) or load it, skipping invalid records one by one (B15), hiding expired sessions (B17),
evicting over the cap (B18), and saying whether the load is lossy, so that the original bytes
must be kept in a backup before the first save (B15, §4.4).

Written from SPEC.md's text with the kit's ``oracle`` for ids and timestamps; it imports
nothing from ``sessionspec.reference`` and no helper of ``sessionspec.spec`` (only the
``SessionData`` and ``ConversationTurn`` interface types), so a bug in the reader it judges
cannot hide in it. ``tests/test_oracle.py`` holds it to every vector of
``sessionspec/spec/vectors`` and cross-checks it against the reference reader.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NoReturn

from sessionspec.conformance.oracle import (
    MAX_SESSIONS,
    SCHEMA_VERSION,
    format_timestamp,
    is_expired,
    is_valid_session_id,
    read_timestamp,
    to_millis,
)
from sessionspec.spec import ConversationTurn, SessionData

#: The members each level of a v1 file defines (SPEC.md §3); any other is unknown (lossy).
ENVELOPE_MEMBERS: Final = frozenset({"version", "sessions"})
SESSION_MEMBERS: Final = frozenset(
    {"id", "createdAt", "lastAccessedAt", "turns", "codexConversationId"}
)
TURN_MEMBERS: Final = frozenset({"prompt", "response", "timestamp"})
BOM: Final = b"\xef\xbb\xbf"


class Outcome(enum.StrEnum):
    """What opening a sessions file comes to (SPEC.md §3.2, B11-B15); the values of
    ``load``, ``move-aside`` and ``raise`` are the manifest's ``expect.result`` (§7)."""

    #: The file loads (clean or lossy, B15, B17, B18).
    LOAD = "load"
    #: Moved aside byte-identical to ``<name>.<epoch-ms>.bak``; the store starts empty
    #: (B13: cannot parse or bad envelope; B14: unknown version).
    MOVE_ASIDE = "move-aside"
    #: No file: an empty store, nothing created until the first save (step 1, B11).
    MISSING = "missing"
    #: The bytes cannot be read: the constructor raises OSError and touches nothing
    #: (step 1, B12).
    RAISE = "raise"


@dataclass(frozen=True, slots=True)
class Skip:
    """A record left out of the load (B15): ``sessions[i]`` or ``sessions[i].turns[j]``,
    which the backend's WARNING must name (SPEC.md §5)."""

    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class Loss:
    """Something else of the file a load does not carry into memory (SPEC.md §3.2 step 7):
    an unknown member, a repeated member name, digits below the millisecond, or a session
    evicted by the cap (B15, B18)."""

    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExpectedLoad:
    """The state a conforming v1 reader reaches on opening a file (SPEC.md §3.2; B04, B11-B15,
    B17, B18)."""

    outcome: Outcome
    #: The behaviour that decides a non-clean outcome: B11, B12, B13, B14, or B15 for a
    #: lossy load; None for a clean load.
    behaviour: str | None = None
    #: Why the file is moved aside or cannot be read; None otherwise.
    reason: str | None = None
    #: The live sessions after opening, in list order (B04), at most 100 (B18).
    sessions: tuple[SessionData, ...] = ()
    #: Sessions that load but are expired at now, in file order: invisible (B17), gone at
    #: the next save; their ids still win over later duplicates (B15).
    expired: tuple[SessionData, ...] = ()
    #: Live sessions over the cap, in list order: evicted at load (B18).
    evicted: tuple[SessionData, ...] = ()
    #: Records skipped, in file order (B15).
    skips: tuple[Skip, ...] = ()
    #: Other losses (SPEC.md §3.2 step 7).
    losses: tuple[Loss, ...] = ()

    @property
    def lossy(self) -> bool:
        """A load that does not carry everything of the file into memory: the original bytes
        must be in a backup before the first save overwrites them (B15, §4.4)."""
        return self.outcome is Outcome.LOAD and bool(self.skips or self.losses)

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids ``list_sessions()`` returns right after opening, in list order (B04)."""
        return tuple(session.id for session in self.sessions)

    def to_manifest(self) -> dict[str, Any]:
        """This outcome in the form of a manifest entry's ``expect`` (SPEC.md §7), with
        timestamps in writer form, so it compares with the vectors directly (B13-B15, B17,
        B18)."""
        if self.outcome is Outcome.RAISE:
            return {"result": "raise", "raises": "OSError"}
        if self.outcome is Outcome.MOVE_ASIDE:
            return {"result": "move-aside"}
        return {
            "result": "load",
            "loads": [
                {
                    "id": s.id,
                    "turns": len(s.turns),
                    "turnContents": [
                        {
                            "prompt": t.prompt,
                            "response": t.response,
                            "timestamp": format_timestamp(t.timestamp),
                        }
                        for t in s.turns
                    ],
                    "codexConversationId": s.codex_conversation_id,
                    "createdAt": format_timestamp(s.created_at),
                    "lastAccessedAt": format_timestamp(s.last_accessed_at),
                }
                for s in self.sessions
            ],
            "skips": [{"location": s.location, "reason": s.reason} for s in self.skips],
            "lossy": self.lossy,
        }


def expected_open(path: Path, now: datetime) -> ExpectedLoad:
    """What a constructor on ``path`` must do (SPEC.md §3.2 step 1, then ``expected_load``):
    a missing file is an empty store (B11); any other error reading it raises OSError (B12).

    Reads ``path`` once with ``Path.read_bytes``; meant for regular files and directories the
    kit made (a FIFO would block here as it may in a backend).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        return ExpectedLoad(Outcome.MISSING, "B11", str(exc))
    except OSError as exc:
        return ExpectedLoad(Outcome.RAISE, "B12", str(exc))
    return expected_load(raw, now)


def expected_load(raw: bytes, now: datetime) -> ExpectedLoad:
    """Apply SPEC.md §3.2 steps 2-7 to the bytes of a sessions file with the clock at ``now``.

    Step 2 (B13): not UTF-8, a BOM, not one RFC 8259 JSON text, or not an object: move aside.
    Step 3 (B14): ``version`` not a JSON number whose IEEE 754 double is 1: move aside.
    Step 4 (B13): ``sessions`` absent or not an array: move aside.
    Step 5 (B15): invalid sessions and turns are skipped one by one; a repeated id loses to
    the first session with it that loaded, expired or not.
    Step 6 (B17, B18): expired sessions load invisible; live ones past the 100th in list order
    (B04) are evicted.
    Step 7 (B15): the load is lossy when a record is skipped, a member is unknown, a member
    name repeats in one object, a timestamp has non-zero digits below the millisecond, or a
    session is evicted.

    ``now`` is truncated to milliseconds (§1.3). A document nested deeper than Python's
    recursion limit raises RecursionError: this oracle does not decide such files.
    """
    now = to_millis(now)
    try:
        document = _parse(raw)
    except _NotJson as exc:
        return ExpectedLoad(Outcome.MOVE_ASIDE, "B13", str(exc))
    if not isinstance(document, dict):
        return ExpectedLoad(Outcome.MOVE_ASIDE, "B13", f"the top level is {_kind(document)}")
    version = document.get("version", _ABSENT)
    # Every number was read as a double (JSON.parse's reading); a bool is not a number.
    if not (type(version) is float and version == SCHEMA_VERSION):
        return ExpectedLoad(Outcome.MOVE_ASIDE, "B14", f"version is {_describe(version)}")
    records = document.get("sessions", _ABSENT)
    if not isinstance(records, list):
        return ExpectedLoad(Outcome.MOVE_ASIDE, "B13", f"sessions is {_describe(records)}")

    reader = _Reader()
    reader.losses.extend(_repeated_names(document))
    reader.unknown(document, ENVELOPE_MEMBERS, "top level")
    loaded: dict[str, SessionData] = {}
    for index, record in enumerate(records):
        session = reader.session(f"sessions[{index}]", record, loaded)
        if session is not None:
            loaded[session.id] = session

    expired = tuple(s for s in loaded.values() if is_expired(s.last_accessed_at, now))
    live = [s for s in loaded.values() if not is_expired(s.last_accessed_at, now)]
    # List order: last access descending; sorted() is stable, so ties keep file order, and
    # earlier in the file means accessed later (§1.3, B04).
    live.sort(key=lambda s: s.last_accessed_at, reverse=True)
    kept, evicted = live[:MAX_SESSIONS], live[MAX_SESSIONS:]
    for session in evicted:
        reader.losses.append(
            Loss(reader.where[session.id], f"evicted: over the cap of {MAX_SESSIONS} (B18)")
        )
    lossy = bool(reader.skips or reader.losses)
    return ExpectedLoad(
        Outcome.LOAD,
        "B15" if lossy else None,
        None,
        tuple(kept),
        expired,
        tuple(evicted),
        tuple(reader.skips),
        tuple(reader.losses),
    )


# -- step 2: one JSON text ----------------------------------------------------------------------


class _NotJson(Exception):
    """The bytes are not one RFC 8259 JSON text in UTF-8 without a BOM (B13)."""


class _Object(dict[str, Any]):
    """A JSON object; ``repeated`` names the member names it had more than once."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    # dict() keeps the last value of a repeated name, as JSON.parse does (§3.2 step 5).
    result = _Object(pairs)
    if len(result) != len(pairs):
        names = [name for name, _ in pairs]
        result.repeated = tuple(sorted({n for n in names if names.count(n) > 1}))
    return result


def _reject_constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not JSON")


def _parse(raw: bytes) -> object:
    if raw.startswith(BOM):
        raise _NotJson("the file starts with a byte-order mark")
    try:
        text = raw.decode("utf-8")  # strict: no surrogates, overlongs or truncated sequences
    except UnicodeDecodeError as exc:
        raise _NotJson(f"not UTF-8: {exc}") from None
    try:
        # Every number as the nearest double, as JSON.parse reads it (1e400 is inf; no
        # digit limit as int() has); NaN and Infinity are not JSON; strict=True (the
        # default) refuses raw control characters in strings; trailing data is an error.
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_reject_constant,
            parse_int=float,
            parse_float=float,
        )
    except json.JSONDecodeError as exc:
        raise _NotJson(f"not a single JSON text: {exc}") from None


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT: Final = _Absent()


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "absent"


def _describe(value: object) -> str:
    if isinstance(value, float):
        return f"the number {value!r}"
    return _kind(value)


def _repeated_names(document: object) -> Iterator[Loss]:
    """Every object, at any depth, that repeats a member name (§3.2 step 7); iterative, so
    depth is no problem here."""
    stack: list[tuple[object, str]] = [(document, "top level")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, _Object):
            for name in value.repeated:
                yield Loss(where, f"member name {name!r:.40} repeats: only its last value is read")
            stack.extend((v, f"{where}/{k!r:.40}") for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(value))))


# -- step 5: records ----------------------------------------------------------------------------


class _Skipped(Exception):
    """The record is invalid; the message says why."""


class _Reader:
    """Reads records one by one, collecting skips and losses."""

    def __init__(self) -> None:
        self.skips: list[Skip] = []
        self.losses: list[Loss] = []
        #: The location of each loaded session, for eviction losses.
        self.where: dict[str, str] = {}

    def unknown(self, record: dict[str, Any], known: frozenset[str], where: str) -> None:
        for name in record:
            if name not in known:
                self.losses.append(Loss(where, f"unknown member {name!r:.40} is ignored"))

    def timestamp(self, record: dict[str, Any], member: str, where: str) -> datetime:
        if member not in record:
            raise _Skipped(f"{member} is missing")
        read = read_timestamp(record[member])
        if read is None:
            raise _Skipped(f"{member} {record[member]!r:.60} is not a valid timestamp")
        if read.sub_millisecond:
            self.losses.append(Loss(f"{where}.{member}", "non-zero digits below the millisecond"))
        return read.moment

    def session(
        self, where: str, record: object, loaded: dict[str, SessionData]
    ) -> SessionData | None:
        losses = len(self.losses)
        try:
            session = self._session(where, record, loaded)
        except _Skipped as why:
            # A skipped session is skipped whole: its own losses (a sub-millisecond createdAt
            # before a bad lastAccessedAt) are not reported apart. Turns come last, so none
            # of its turns was reported.
            del self.losses[losses:]
            self.skips.append(Skip(where, str(why)))
            return None
        self.where[session.id] = where
        return session

    def _session(self, where: str, record: object, loaded: dict[str, SessionData]) -> SessionData:
        if not isinstance(record, dict):
            raise _Skipped(f"not an object but {_kind(record)}")
        if "id" not in record:
            raise _Skipped("id is missing")
        session_id = record["id"]
        if not is_valid_session_id(session_id):
            raise _Skipped(f"id {session_id!r:.60} is not a valid session id")
        assert isinstance(session_id, str)
        if session_id in loaded:
            raise _Skipped(f"id {session_id!r} repeats an earlier session's (the first wins)")
        created_at = self.timestamp(record, "createdAt", where)
        last_accessed_at = self.timestamp(record, "lastAccessedAt", where)
        turns = record.get("turns", _ABSENT)
        if not isinstance(turns, list):
            raise _Skipped(f"turns is {_kind(turns)}, not an array")
        conversation_id = record.get("codexConversationId")  # null or absent: no id
        if conversation_id is not None and not isinstance(conversation_id, str):
            raise _Skipped(f"codexConversationId is {_kind(conversation_id)}")
        self.unknown(record, SESSION_MEMBERS, where)
        kept = []
        for j, item in enumerate(turns):
            turn_where = f"{where}.turns[{j}]"
            losses = len(self.losses)
            try:
                kept.append(self._turn(turn_where, item))
            except _Skipped as why:
                del self.losses[losses:]
                self.skips.append(Skip(turn_where, str(why)))
        return SessionData(session_id, created_at, last_accessed_at, tuple(kept), conversation_id)

    def _turn(self, where: str, item: object) -> ConversationTurn:
        if not isinstance(item, dict):
            raise _Skipped(f"not an object but {_kind(item)}")
        timestamp = self.timestamp(item, "timestamp", where)
        for member in ("prompt", "response"):
            if not isinstance(item.get(member), str):
                raise _Skipped(f"{member} is {_kind(item.get(member, _ABSENT))}, not a string")
        self.unknown(item, TURN_MEMBERS, where)
        return ConversationTurn(item["prompt"], item["response"], timestamp)
