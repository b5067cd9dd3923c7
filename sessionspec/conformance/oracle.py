"""The kit's own reading of SPEC.md's small rules: ids, timestamps, constants.

The kit judges backends, the reference among them, so it must not lean on the code it judges:
everything here is written from SPEC.md's text (§1.1, §1.2, §1.3, §2.3), not from
``sessionspec.spec.model``, and by other means (character sets and integer arithmetic instead
of regular expressions and ``datetime.fromisoformat``). ``tests/test_oracle.py`` holds it to
every id and timestamp vector and cross-checks it against the spec helpers with hypothesis:
a bug on either side shows as a disagreement.

Only the interface types (``ValidationError`` here) come from ``sessionspec.spec``.
"""

from __future__ import annotations

import calendar
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from sessionspec.spec import ValidationError

# -- constants (SPEC.md §2.3, §1.3) -------------------------------------------------------------

#: The ``version`` member of a v1 sessions file (§3.2 step 3, B14).
SCHEMA_VERSION: Final = 1
#: At most this many live sessions in a store (§1.3, B18).
MAX_SESSIONS: Final = 100
#: A session expires when now - last access is strictly greater than this (§1.3, B17).
SESSION_TTL: Final = timedelta(hours=24)
#: Temp files strictly older than this are stale (§4.6, B16).
STALE_TEMP_AGE: Final = timedelta(hours=1)
#: The longest session id (§1.1, B08).
SESSION_ID_MAX_LENGTH: Final = 256

# -- session ids (SPEC.md §1.1) -----------------------------------------------------------------

#: The id alphabet spelled out, so no regex engine's idea of "$" or "\w" can creep in.
SESSION_ID_CHARACTERS: Final = frozenset(string.ascii_letters + string.digits + "_-")


def is_valid_session_id(value: object) -> bool:
    """True when ``value`` is a str of 1 to 256 ASCII letters, digits, ``_`` and ``-`` and
    nothing else (SPEC.md §1.1; B08 for ensure_session, B15 for records in a file)."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= SESSION_ID_MAX_LENGTH
        and (
            SESSION_ID_CHARACTERS.issuperset(value)  # every character in the alphabet
        )
    )


# -- timestamps (SPEC.md §1.2) ------------------------------------------------------------------

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
#: The TTL in milliseconds (the machine asks is_expired millions of times: integers are fast).
_TTL_MS: Final = 24 * 3_600_000
_MS_PER_DAY: Final = 86_400_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: The earliest and latest instants a reader accepts, in ms since 1970 (§1.2).
_MIN_MS: Final = (date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * _MS_PER_DAY
_MAX_MS: Final = (date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL + 1) * _MS_PER_DAY - 1
#: ASCII digits only: str.isdigit() would accept Arabic-Indic and other digits.
_DIGITS: Final = frozenset("0123456789")


def to_millis(moment: datetime) -> datetime:
    """``moment`` in UTC with its sub-millisecond digits truncated (SPEC.md §1.2, B02, B09).

    Raises ValidationError for a naive datetime (§1.2). Truncation is toward the earlier
    instant, which is what dropping the digits of the microsecond field does. An instant
    outside years 0001-9999 in UTC raises OverflowError, as ``datetime`` arithmetic does.
    """
    if not isinstance(moment, datetime):
        raise ValidationError(f"timestamps must be datetimes; got {type(moment).__name__}")
    if moment.utcoffset() is None:
        raise ValidationError(f"timestamps must be timezone-aware; got naive {moment!r}")
    return EPOCH + epoch_millis(moment) * _MS


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since 1970-01-01T00:00:00Z of an aware ``moment``, truncated (floor) to
    the millisecond: the ``<epoch-ms>`` of backup names (SPEC.md §3.2, B13, B15)."""
    if moment.utcoffset() is None:
        raise ValidationError(f"timestamps must be timezone-aware; got naive {moment!r}")
    # Aware subtraction accounts for the offset; timedelta // timedelta floors.
    return (moment - EPOCH) // _MS


def format_timestamp(moment: datetime) -> str:
    """The writer's form, exactly ``Date.prototype.toISOString()`` for years 0001-9999:
    ``YYYY-MM-DDTHH:MM:SS.mmmZ`` of ``moment`` in UTC, truncated (SPEC.md §1.2, B10)."""
    days, in_day = divmod(epoch_millis(moment), _MS_PER_DAY)
    day = date.fromordinal(_EPOCH_ORDINAL + days)
    hours, rest = divmod(in_day, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return (
        f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
        f"T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"
    )


def is_writer_timestamp(text: object) -> bool:
    """True when ``text`` is exactly what a writer emits: a valid timestamp that
    ``format_timestamp`` gives back unchanged (SPEC.md §1.2, §3.1, B10)."""
    read = read_timestamp(text)
    return read is not None and format_timestamp(read.moment) == text


@dataclass(frozen=True, slots=True)
class ReadTimestamp:
    """A timestamp as a v1 reader holds it (SPEC.md §1.2; B09 the instant, B15 the loss)."""

    #: The instant in UTC, truncated to the millisecond.
    moment: datetime
    #: Non-zero fraction digits below the millisecond were dropped: the load is lossy
    #: (SPEC.md §3.2 step 7, B15).
    sub_millisecond: bool


class _Scanner:
    """Reads ``text`` left to right; every method returns None when the grammar fails."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def digits(self, count: int) -> int | None:
        part = self.text[self.at : self.at + count]
        if len(part) != count or not all(c in _DIGITS for c in part):
            return None
        self.at += count
        return int(part)

    def literal(self, *choices: str) -> bool:
        if self.at < len(self.text) and self.text[self.at] in choices:
            self.at += 1
            return True
        return False

    def fraction(self) -> str | None:
        """The digits after a ``.``, or "" when there is no ``.``; None for a bare ``.``."""
        if not self.literal("."):
            return ""
        start = self.at
        while self.at < len(self.text) and self.text[self.at] in _DIGITS:
            self.at += 1
        return self.text[start : self.at] or None


def _field(value: int | None, low: int, high: int) -> bool:
    return value is not None and low <= value <= high


def read_timestamp(text: object) -> ReadTimestamp | None:
    """Read ``text`` as a v1 reader must (SPEC.md §1.2; B15 skips what this rejects), or None.

    The grammar: ``YYYY-MM-DD``, ``T`` or ``t``, ``HH:MM:SS``, an optional ``.`` with one or
    more digits, then ``Z``, ``z`` or ``±HH:MM`` (hours 00-23, minutes 00-59; ``-00:00`` is
    UTC), and nothing else: no trailing newline, no space. ASCII digits only; year 0001 or
    later; a real calendar date; hours 00-23, minutes and seconds 00-59 (no leap second). The
    instant, converted to UTC and truncated to the millisecond, must lie within
    0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
    """
    if not isinstance(text, str):
        return None
    scan = _Scanner(text)
    year = scan.digits(4)
    month = scan.digits(2) if scan.literal("-") else None
    day = scan.digits(2) if scan.literal("-") else None
    hour = scan.digits(2) if scan.literal("T", "t") else None
    minute = scan.digits(2) if scan.literal(":") else None
    second = scan.digits(2) if scan.literal(":") else None
    if not (
        _field(year, 1, 9999)
        and _field(month, 1, 12)
        and _field(hour, 0, 23)
        and _field(minute, 0, 59)
        and _field(second, 0, 59)
    ):
        return None
    assert year is not None and month is not None and hour is not None
    assert minute is not None and second is not None
    if not _field(day, 1, calendar.monthrange(year, month)[1]):
        return None
    assert day is not None
    fraction = scan.fraction()
    if fraction is None:
        return None
    offset_minutes = 0
    if not scan.literal("Z", "z"):
        sign = -1 if text[scan.at : scan.at + 1] == "-" else 1
        if not scan.literal("+", "-"):
            return None
        offset_hour = scan.digits(2)
        offset_minute = scan.digits(2) if scan.literal(":") else None
        if not (_field(offset_hour, 0, 23) and _field(offset_minute, 0, 59)):
            return None
        assert offset_hour is not None and offset_minute is not None
        offset_minutes = sign * (offset_hour * 60 + offset_minute)
    if scan.at != len(text):
        return None
    # Local wall time minus the offset is UTC; integer milliseconds, never a datetime that
    # could overflow on the way.
    local_seconds = (
        (date(year, month, day).toordinal() - _EPOCH_ORDINAL) * 86_400
        + hour * 3600
        + minute * 60
        + second
    )
    millis = (local_seconds - offset_minutes * 60) * 1000 + int((fraction + "000")[:3])
    if not _MIN_MS <= millis <= _MAX_MS:
        return None
    return ReadTimestamp(EPOCH + millis * _MS, sub_millisecond=any(d != "0" for d in fraction[3:]))


def parse_timestamp(text: object) -> datetime:
    """The instant a v1 reader reads from ``text``, in UTC truncated to milliseconds; raises
    ValueError for anything outside the reader grammar (SPEC.md §1.2, B15)."""
    read = read_timestamp(text)
    if read is None:
        raise ValueError(f"not a timestamp a v1 reader accepts: {text!r:.80}")
    return read.moment


# -- expiry (SPEC.md §1.3) ----------------------------------------------------------------------


def is_expired(last_accessed_at: datetime, now: datetime) -> bool:
    """True when ``now`` (truncated to milliseconds) minus ``last_accessed_at`` is strictly
    more than 24 h; at exactly 24 h a session is live, and a future one is live (B17)."""
    return epoch_millis(now) - epoch_millis(last_accessed_at) > _TTL_MS
