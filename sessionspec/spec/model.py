"""The Python interface of sessionspec v1: data types, constants and the storage protocol.

SPEC.md is normative; this module is its executable form. Backends, the reference and the
conformance kit all import these names, so they are pinned: change them only with SPEC.md.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self, runtime_checkable

#: The version of SPEC.md this package implements (its section 10 lists the changes).
SPEC_VERSION: Final = "1.3"
#: The ``version`` member of the sessions file, which spec 1.2 does not change.
SCHEMA_VERSION: Final = 1
MAX_SESSIONS: Final = 100
SESSION_TTL: Final = timedelta(hours=24)
STALE_TEMP_AGE: Final = timedelta(hours=1)
SESSION_ID_MAX_LENGTH: Final = 256
SESSION_ID_PATTERN: Final = re.compile(r"\A[A-Za-z0-9_-]{1,256}\Z")
SESSION_ID_RULE: Final = (
    "session ID must be a string of 1 to 256 characters from A-Z, a-z, 0-9, '_' and '-'"
)


class ValidationError(ValueError):
    """An argument breaks a rule of the spec (for example the session-ID grammar, B08)."""


class Level(enum.StrEnum):
    """Conformance levels. A backend claims a set of them; each behaviour belongs to one."""

    CORE = "core"
    DURABLE = "durable"
    FILE_V1 = "file-v1"
    SHARED = "shared"


#: Name of the attribute on a factory (class or function) that lists the levels it claims.
LEVELS_ATTRIBUTE: Final = "sessionspec_levels"


def declared_levels(factory: object) -> frozenset[Level] | None:
    """The levels a factory claims through ``sessionspec_levels``, or None if it claims none."""
    raw = getattr(factory, LEVELS_ATTRIBUTE, None)
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [raw]
    return frozenset(Level(str(level)) for level in raw)


def is_valid_session_id(value: object) -> bool:
    """True when ``value`` is a str matching the one ID grammar of B08."""
    return isinstance(value, str) and SESSION_ID_PATTERN.match(value) is not None


def check_session_id(value: object) -> str:
    """Return ``value`` if it is a valid session ID, else raise ValidationError stating the rule."""
    if not is_valid_session_id(value):
        raise ValidationError(f"{SESSION_ID_RULE}; got {value!r:.80}")
    assert isinstance(value, str)
    return value


def to_millis(moment: datetime) -> datetime:
    """Normalise an aware datetime to UTC with sub-millisecond digits truncated.

    Every timestamp enters a store through this function, so what memory holds is exactly
    what the file can hold (B09).
    """
    if type(moment) is datetime and moment.tzinfo is UTC and not moment.microsecond % 1000:
        return moment  # already normal: the common case, every stored value (cheap on purpose)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"timestamps must be timezone-aware; got naive {moment!r}")
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


def format_timestamp(moment: datetime) -> str:
    """Write a timestamp exactly as JavaScript's ``Date.prototype.toISOString()`` does."""
    utc = to_millis(moment)
    # Not strftime("%Y"): it does not zero-pad years below 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


# RFC 3339 date-time with the limits SPEC.md adds: ASCII digits only, year 0001 or later,
# seconds 00-59 (no leap second: JavaScript's Date and Python's datetime cannot hold one).
#: The timestamp grammar of the reader profile; sessions.schema.json uses the same pattern.
READER_TIMESTAMP_PATTERN: Final = (
    r"^(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.([0-9]+))?"
    # Not "$": in Python regexes "$" also matches before a final newline.
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])(?![\s\S])"
)
_READER_TIMESTAMP: Final = re.compile(READER_TIMESTAMP_PATTERN)
#: The exact form a conforming writer emits (``Date.prototype.toISOString()``).
WRITER_TIMESTAMP: Final = re.compile(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z"
)


def parse_timestamp(text: object) -> datetime:
    """Read a timestamp as a v1 reader must (SPEC.md, "Timestamps").

    Returns an aware UTC datetime truncated to milliseconds. Raises ValueError for anything
    that is not an RFC 3339 date-time within the limits of the spec, including instants that
    fall outside years 0001-9999 once converted to UTC.
    """
    match = _READER_TIMESTAMP.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time with a zone: {text!r:.80}")
    # Since Python 3.11, fromisoformat reads "Z" and any number of fraction digits (it keeps
    # microseconds; to_millis keeps milliseconds); only lower-case "t"/"z" need upper().
    try:
        return to_millis(datetime.fromisoformat(match.group(0).upper()).astimezone(UTC))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a representable date-time: {text!r:.80} ({exc})") from None


def has_sub_millisecond_digits(text: str) -> bool:
    """True when a timestamp that parses carries precision below the millisecond (lossy)."""
    match = _READER_TIMESTAMP.match(text)
    fraction = match.group(1) if match else None
    return fraction is not None and any(digit != "0" for digit in fraction[3:])


@dataclass(frozen=True, slots=True, init=False)
class ConversationTurn:
    """One prompt/response exchange. ``timestamp`` is normalised to UTC milliseconds."""

    prompt: str
    response: str
    timestamp: datetime

    def __init__(self, prompt: str, response: str, timestamp: datetime) -> None:
        # By hand, not the dataclass's: a turn is built per add_turn, and setting the slots
        # directly after checking the arguments costs two thirds of object.__setattr__ thrice
        # then __post_init__ (390 against 594 ns, measured).
        if not isinstance(prompt, str):
            raise ValidationError("turn prompt must be a str")
        if not isinstance(response, str):
            raise ValidationError("turn response must be a str")
        if not isinstance(timestamp, datetime):
            raise ValidationError("turn timestamp must be a datetime")
        _set_turn_prompt(self, prompt)
        _set_turn_response(self, response)
        _set_turn_timestamp(self, to_millis(timestamp))


_set_turn_prompt = vars(ConversationTurn)["prompt"].__set__
_set_turn_response = vars(ConversationTurn)["response"].__set__
_set_turn_timestamp = vars(ConversationTurn)["timestamp"].__set__


@dataclass(frozen=True, slots=True)
class SessionData:
    """An immutable snapshot of one session, as returned by reads."""

    id: str
    created_at: datetime
    last_accessed_at: datetime
    turns: tuple[ConversationTurn, ...] = ()
    codex_conversation_id: str | None = None


class Unset(enum.Enum):
    """Sentinel type: "leave this field as it is" in ``update_session``."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: the current time as an aware UTC datetime."""
    return datetime.now(UTC)


@runtime_checkable
class SessionStorage(Protocol):
    """The storage interface every backend implements (SPEC.md §2, "Interface").

    Each method's docstring states its rule and the behaviours (SPEC.md §6) that own it.
    "Now" is the backend's clock truncated to milliseconds, read once per call (§1.3); an id
    outside the grammar or an expired one is unknown to every method but ``ensure_session``.
    """

    def create_session(self) -> str:
        """Purge expired sessions, create an empty session under a new canonical UUID4 stamped
        now, evict the others last in list order over the cap; return the id (B01, B17, B18)."""
        ...

    def ensure_session(self, session_id: str) -> None:
        """Raise ValidationError for an id outside the grammar, changing nothing (B08); purge;
        create the session empty if no live one has the id, else touch it; enforce the cap,
        the ensured session surviving (B07, B17, B18)."""
        ...

    def get_session(self, session_id: str) -> SessionData | None:
        """The live session as an immutable snapshot, or None; a pure read: no touch, no
        purge, no write (B23, B24, B17)."""
        ...

    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        """Replace only the fields given (``turns`` in order; ``codex_conversation_id=None``
        clears it) and touch; the store copies the sequence (B02, B06, B24). Unknown or
        expired id: nothing happens, nothing is written (B02, B17)."""
        ...

    def delete_session(self, session_id: str) -> bool:
        """Remove a live session for good and return True; False for an unknown, expired or
        already deleted id (B05, B17)."""
        ...

    def list_sessions(self) -> list[SessionData]:
        """Purge expired sessions; return a new list of every live session once, by last
        access descending, ties latest access first; no touch (B04, B17, B23, B24)."""
        ...

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        """Append the turn after the existing ones, keeping its own timestamp, and touch;
        unknown or expired id: nothing happens (B02, B17)."""
        ...

    def reset_session(self, session_id: str) -> None:
        """Remove every turn and the conversation id, keep id and created_at, touch; unknown
        or expired id: nothing happens (B03, B17)."""
        ...

    def set_codex_conversation_id(self, session_id: str, conversation_id: str) -> None:
        """Set the conversation id (any str) and touch; unknown or expired id: nothing
        happens (B06, B17)."""
        ...

    def get_codex_conversation_id(self, session_id: str) -> str | None:
        """The conversation id of a live session, or None; a pure read (B06, B23)."""
        ...

    def flush(self) -> None:
        """Return once every earlier mutation is durably stored; raise OSError if that write
        fails, keeping every change in memory (B21, B22)."""
        ...

    def close(self) -> None:
        """Flush, then release resources; if the flush fails raise its OSError and stay open
        so a later close() retries; after a successful close, do nothing (B21, B22)."""
        ...

    def __enter__(self) -> Self:
        """Return the storage itself: ``with storage:`` closes it on exit."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Call ``close()`` (B21, B22)."""
        ...


class StorageFactory(Protocol):
    """How a backend is plugged into the kit: ``factory(path, *, clock) -> SessionStorage``."""

    def __call__(self, path: Path, *, clock: Clock) -> SessionStorage: ...
