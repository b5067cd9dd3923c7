"""Hypothesis strategies for ids, text, turns and clock steps, aimed at the spec's edges.

Constants and the id rule come from the kit's own ``oracle`` (SPEC.md §1.1, §2.3), not from
the spec helpers the backends use. Strategies of whole sessions files are in
``file_strategies``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from sessionspec.conformance.oracle import (
    SESSION_ID_MAX_LENGTH,
    SESSION_TTL,
    is_valid_session_id,
)
from sessionspec.spec import ConversationTurn

ID_ALPHABET = "ABCXYZabcxyz0189_-"

#: Valid ids at the grammar's edges: one character, exactly 256, every character class.
valid_ids = st.one_of(
    st.sampled_from(["a", "Z", "0", "_", "-", "a" * SESSION_ID_MAX_LENGTH, "A-b_9"]),
    st.text(alphabet=ID_ALPHABET, min_size=1, max_size=8),
    st.from_regex(r"\A[A-Za-z0-9_-]{1,256}\Z"),
)

_NEAR_MISSES = [
    "",
    "a" * (SESSION_ID_MAX_LENGTH + 1),
    "abc\n",  # "$" in many regex engines accepts a trailing newline
    "\nabc",
    "a b",
    " ",
    "a/b",
    "../x",
    ".",
    "a.b",
    "é",
    "ａ",  # noqa: RUF001 -- fullwidth letter: Unicode-aware \w would accept it
    "٣",
    "abc\x00",
    "a\tb",
    "a\x7f",
    "\u200b",
]

_ID_MUTANTS = st.one_of(
    # A valid id with a trailing newline: "$" in many regex engines accepts it.
    st.text(alphabet=ID_ALPHABET, min_size=1, max_size=6).map(lambda head: head + "\n"),
    # A valid id with one foreign character somewhere.
    st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.text(alphabet=ID_ALPHABET, max_size=4),
        st.characters(exclude_characters=ID_ALPHABET),
        st.text(alphabet=ID_ALPHABET, max_size=4),
    ).filter(lambda value: not is_valid_session_id(value)),
)
_NON_STRINGS = st.one_of(
    st.integers(), st.none(), st.just(b"abc"), st.just(["abc"]), st.floats(allow_nan=False)
)
#: Values ensure_session must reject (B08): mostly grammar near-misses, then non-strings.
invalid_ids = st.integers(0, 9).flatmap(
    lambda kind: (
        st.sampled_from(_NEAR_MISSES) if kind < 5 else _ID_MUTANTS if kind < 8 else _NON_STRINGS
    )
)

#: Characters that break naive serialisers: lone surrogates, NUL, separators, quotes.
SPECIAL_CHARACTERS = [
    "\ud800",
    "\udfff",
    "\udc00",
    "\x00",
    "\u2028",
    "\ufeff",
    '"',
    "\\",
    "\U0001f600",
]
_SURROGATE_PAIR = re.compile("([\ud800-\udbff])(?=[\udc00-\udfff])")


def keep_surrogates_lone(text: str) -> str:
    """Separate a high surrogate directly followed by a low one (SPEC.md §1, B09).

    In JSON (and JavaScript) "\\ud800\\udfff" is one astral character, so such a pair of
    code points cannot round-trip as two; lone surrogates can, and must (SPEC.md §1).
    """
    return _SURROGATE_PAIR.sub("\\1 ", text)


texts = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(SPECIAL_CHARACTERS)),
    max_size=12,
).map(keep_surrogates_lone)

_offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
#: Aware datetimes anywhere in years 0001-9999 (after conversion to UTC), any offset,
#: microseconds included so sub-millisecond truncation is exercised.
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.one_of(st.just(UTC), _offsets),
    ),
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.one_of(st.just(UTC), _offsets),
    ),
)

turns = st.builds(ConversationTurn, prompt=texts, response=texts, timestamp=timestamps)
conversation_ids = st.one_of(st.just(""), st.text(max_size=8), texts)

_MS = timedelta(milliseconds=1)
#: How far the clock moves: not at all (ties), sub-millisecond, small steps, and jumps that
#: land exactly on and just past the 24 h expiry boundary.
clock_steps = st.one_of(
    st.just(timedelta(0)),
    st.integers(1, 999).map(lambda us: timedelta(microseconds=us)),
    st.integers(1, 5).map(lambda ms: ms * _MS),
    st.sampled_from([SESSION_TTL, SESSION_TTL + _MS, SESSION_TTL - _MS, timedelta(hours=1)]),
)
