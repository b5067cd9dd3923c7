"""Edges of the spec's helpers (sessionspec/spec/model.py) that no vector reaches.

The mutation run over the spec's helpers (``bash tests/mutation/run.sh spec``,
docs/mutation-testing.md) found these gaps in the tests that hold the helpers to the vectors:
a ``tzinfo`` whose ``utcoffset()`` is None, a machine whose local zone is not UTC, and three
helpers no selected test called (``check_session_id``, ``declared_levels``, ``utc_now``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest

from sessionspec import spec
from sessionspec.spec import Level, ValidationError


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: Python calls such a datetime naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_a_tzinfo_without_an_offset_is_naive() -> None:
    """SPEC.md §1.2: naive timestamps are rejected. ``tzinfo`` set but ``utcoffset()`` None is
    naive too; ``astimezone`` would read it as the machine's local time."""
    moment = datetime(2026, 1, 1, 12, tzinfo=_NoOffset())
    with pytest.raises(ValidationError):
        spec.to_millis(moment)
    with pytest.raises(ValidationError):
        spec.format_timestamp(moment)
    with pytest.raises(ValidationError):
        spec.ConversationTurn("p", "r", moment)


@pytest.fixture(params=[("JST-9", 9), ("EST+5", -5)], ids=["utc+9", "utc-5"])
def local_zone(request: pytest.FixtureRequest) -> Iterator[None]:
    """The process's local zone east, then west of UTC (POSIX TZ strings: no tz database)."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset() is needed to change the local zone")
    zone, hours = request.param
    old = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        local = datetime(2026, 1, 1, tzinfo=UTC).astimezone()
        assert local.utcoffset() == timedelta(hours=hours)
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("local_zone")
def test_helpers_give_utc_whatever_the_local_zone() -> None:
    """to_millis, parse_timestamp and format_timestamp convert to UTC, never to the local
    zone (SPEC.md §1.2): on a UTC machine the two cannot be told apart. The first and last
    instants a reader accepts do not exist in every local zone (year 0 or 10000)."""
    moment = datetime(2026, 1, 1, 21, 0, 0, 999999, tzinfo=timezone(timedelta(hours=9)))
    got = spec.to_millis(moment)
    assert got.utcoffset() == timedelta(0)
    assert (got.day, got.hour, got.microsecond) == (1, 12, 999000)
    parsed = spec.parse_timestamp("2026-01-01T21:00:00.999+09:00")
    assert parsed.utcoffset() == timedelta(0) and parsed.hour == 12
    assert spec.format_timestamp(moment) == "2026-01-01T12:00:00.999Z"
    turn = spec.ConversationTurn("p", "r", moment)
    assert turn.timestamp.utcoffset() == timedelta(0) and turn.timestamp.hour == 12
    for text, instant in [
        ("0001-01-01T00:00:00.000Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999Z", datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ]:
        assert spec.parse_timestamp(text) == instant
        assert spec.format_timestamp(instant) == text


@pytest.mark.parametrize("value", ["a", "A-z_09", "a" * 256])
def test_check_session_id_returns_a_valid_id(value: str) -> None:
    assert spec.check_session_id(value) == value


@pytest.mark.parametrize("value", ["", "a" * 257, "a\n", "a b", None, 5])
def test_check_session_id_states_the_rule(value: object) -> None:
    """B08: an id outside the grammar raises ValidationError whose message states the rule."""
    with pytest.raises(ValidationError) as caught:
        spec.check_session_id(value)
    assert spec.SESSION_ID_RULE in str(caught.value)
    assert repr(value)[:20] in str(caught.value)


class _Claims:
    def __init__(self, levels: object) -> None:
        self.sessionspec_levels = levels


def test_declared_levels() -> None:
    assert spec.declared_levels(object()) is None
    assert spec.declared_levels(_Claims(None)) is None
    assert spec.declared_levels(_Claims("core")) == frozenset({Level.CORE})
    assert spec.declared_levels(_Claims([Level.CORE, "file-v1"])) == frozenset(
        {Level.CORE, Level.FILE_V1}
    )
    assert spec.declared_levels(_Claims(())) == frozenset()
    with pytest.raises(ValueError):
        spec.declared_levels(_Claims(["core", "gold"]))


def test_utc_now_is_an_aware_utc_now() -> None:
    before = datetime.now(UTC)
    now = spec.utc_now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


@pytest.mark.parametrize(
    ("text", "lossy"),
    [
        ("2026-01-01T12:00:00Z", False),
        ("2026-01-01T12:00:00.5Z", False),
        ("2026-01-01T12:00:00.123000000Z", False),
        ("2026-01-01T12:00:00.1230001Z", True),
        ("2026-01-01T12:00:00.1234Z", True),
    ],
)
def test_sub_millisecond_digits(text: str, lossy: bool) -> None:
    """B15: only non-zero digits below the millisecond make a load lossy."""
    assert spec.has_sub_millisecond_digits(text) is lossy


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01t12:00:00.123456789z",
        "2026-01-01T12:00:00.1234567891234Z",
        "2026-01-01T13:00:00.123999+01:00",
    ],
)
def test_parse_timestamp_reads_any_fraction_and_case(text: str) -> None:
    """SPEC.md §1.2: any number of fraction digits, truncated to the millisecond; "t"/"z" in
    either case."""
    assert spec.parse_timestamp(text) == datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_errors_name_the_rule_and_the_value() -> None:
    """A clear error (SPEC.md §1.2, B02): the message says what was wrong and with what."""
    naive = datetime(2026, 1, 1, 12)
    with pytest.raises(ValidationError, match=r"timezone-aware.*2026, 1, 1, 12"):
        spec.to_millis(naive)
    with pytest.raises(ValueError, match="not an RFC 3339 date-time with a zone: 'yesterday'"):
        spec.parse_timestamp("yesterday")
    with pytest.raises(ValueError, match="not a representable date-time: '0001-01-01T00:00:00"):
        spec.parse_timestamp("0001-01-01T00:00:00+01:00")
    with pytest.raises(ValidationError, match=r"^turn prompt must be a str$"):
        spec.ConversationTurn(b"p", "r", datetime(2026, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^turn response must be a str$"):
        spec.ConversationTurn("p", None, datetime(2026, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^turn timestamp must be a datetime$"):
        spec.ConversationTurn("p", "r", "2026-01-01T00:00:00Z")  # type: ignore[arg-type]


def test_to_millis_returns_a_normal_plain_datetime_itself_and_rebuilds_any_other() -> None:
    """Issue 16: a value already normal (a plain UTC datetime in whole milliseconds) is not
    normalised again, so a turn built from a stored timestamp costs no copy; any other value,
    a datetime subclass included, is rebuilt, so no caller's object of a subclass (which may
    carry state of its own) ends up in a store (B24)."""
    normal = datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert spec.to_millis(normal) is normal

    class Stamp(datetime):
        pass

    theirs = Stamp(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert spec.to_millis(theirs) is not theirs
    assert spec.to_millis(theirs) == normal
