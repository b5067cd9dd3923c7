"""The structural diff names where expected and actual differ, and how, in a few short lines."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from sessionspec.conformance import strategies
from sessionspec.conformance.diff import LINE_WIDTH, format_diff, structural_diff
from sessionspec.spec import ConversationTurn, SessionData

AT = datetime(2030, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)


def make_session(index: int, turns: int = 3) -> SessionData:
    """A session with a distinct UUID id and ``turns`` turns prompted p<index*10+k>."""
    session_id = str(uuid.UUID(int=Random(index).getrandbits(128), version=4))
    return SessionData(
        session_id,
        AT,
        AT + timedelta(seconds=index),
        tuple(ConversationTurn(f"p{index * 10 + k}", f"r{k}", AT) for k in range(turns)),
    )


def with_prompt(session: SessionData, turn: int, prompt: str) -> SessionData:
    turns = list(session.turns)
    turns[turn] = dataclasses.replace(turns[turn], prompt=prompt)
    return dataclasses.replace(session, turns=tuple(turns))


def assert_bounded(lines: list[str]) -> None:
    for line in lines:
        assert len(line) <= LINE_WIDTH, line


# --- equal values -------------------------------------------------------------------------


def test_equal_values_give_no_lines() -> None:
    sessions = [make_session(i) for i in range(5)]
    assert structural_diff(sessions, [dataclasses.replace(s) for s in sessions]) == []
    assert structural_diff({"a": [1, "x", None]}, {"a": [1, "x", None]}) == []
    assert structural_diff("same", "".join(["sa", "me"])) == []
    assert structural_diff(float("nan"), float("nan")) == []
    assert format_diff([1, 2], [1, 2]) == "(no difference)"


def test_turns_compared_by_content_not_container_type() -> None:
    session = make_session(1)
    as_list = dataclasses.replace(session, turns=list(session.turns))  # type: ignore[arg-type]
    assert structural_diff(session, as_list) == []


def test_same_instant_in_another_zone_is_equal() -> None:
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    assert structural_diff(AT, plus_two) == []


# --- the surrogate example ----------------------------------------------------------------


def test_lone_surrogate_in_one_prompt_among_60_sessions() -> None:
    expected = [make_session(i) for i in range(60)]
    actual = list(expected)
    expected[19] = with_prompt(expected[19], 1, "p197\ud800")
    actual[19] = with_prompt(actual[19], 1, "p197?")
    # The actual side's turns come back as a list: content only, no container complaint.
    actual[19] = dataclasses.replace(actual[19], turns=list(actual[19].turns))  # type: ignore[arg-type]

    lines = structural_diff(expected, actual)

    session_label = "session " + repr(expected[19].id[:12])[:-1] + "…'"
    assert lines == [
        f"{session_label} turns[1].prompt: strings differ at index 4: "
        "expected 'p197\\ud800', actual 'p197?'"
    ]


# --- lists of sessions --------------------------------------------------------------------


def test_missing_and_unexpected_sessions_are_named_by_id() -> None:
    expected = [make_session(i) for i in range(6)]
    newcomer = make_session(99)
    actual = [expected[0], expected[1], expected[3], expected[4], expected[5], newcomer]

    lines = structural_diff(expected, actual)

    assert lines == [
        f"1 session missing from actual (expected 6, actual 6): '{expected[2].id[:12]}…'",
        f"1 session unexpected in actual (expected 6, actual 6): '{newcomer.id[:12]}…'",
    ]


def test_order_only_difference_is_one_line_with_both_orders() -> None:
    expected = [make_session(i) for i in range(10)]
    actual = list(expected)
    actual[4], actual[5] = actual[5], actual[4]
    ids = [s.id[:8] for s in expected]

    lines = structural_diff(expected, actual)

    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("order differs at position 4: expected [")
    # Shown from one id before the first difference, ids cut to 8 characters.
    assert f"expected […, {ids[3]}, {ids[4]}, {ids[5]}," in line
    assert f"actual […, {ids[3]}, {ids[5]}, {ids[4]}," in line
    assert expected[4].id not in line  # ids are cut, not printed whole


def test_session_field_differences_carry_the_session_path() -> None:
    expected = [make_session(i) for i in range(3)]
    actual = list(expected)
    actual[1] = dataclasses.replace(
        expected[1], codex_conversation_id="conv-1", turns=expected[1].turns[:2]
    )

    lines = structural_diff(expected, actual)

    label = f"session '{expected[1].id[:12]}…'"
    assert len(lines) == 2
    assert lines[0].startswith(
        f"{label} turns: expected 3 turns, actual 2; "
        "first missing turns[2]: ConversationTurn(prompt='p12', response='r2', timestamp="
    )
    assert lines[1] == f"{label} codex_conversation_id: expected None, actual str ('conv-1')"
    assert_bounded(lines)


def test_colliding_id_prefixes_get_distinct_labels() -> None:
    base = make_session(0)
    expected = [
        dataclasses.replace(base, id="conformance-session-0001"),
        dataclasses.replace(base, id="conformance-session-0002"),
    ]
    actual = [
        dataclasses.replace(expected[0], codex_conversation_id="x"),
        dataclasses.replace(expected[1], codex_conversation_id="y"),
    ]

    lines = structural_diff(expected, actual)

    assert [line.split(" codex_conversation_id")[0] for line in lines] == [
        "session 'conformance-session-0001'",
        "session 'conformance-session-0002'",
    ]


def test_duplicate_session_is_reported() -> None:
    expected = [make_session(i) for i in range(3)]
    actual = [*expected, expected[0]]
    assert structural_diff(expected, actual) == [
        f"session '{expected[0].id[:12]}…': listed 2 times in actual"
    ]


# --- single sessions and turns ------------------------------------------------------------


def test_turn_count_then_first_differing_turn() -> None:
    session = make_session(0)
    shifted = dataclasses.replace(session, turns=session.turns[1:])

    lines = structural_diff(session, shifted)

    assert lines == [
        "turns: expected 3 turns, actual 2",
        "turns[0].prompt: strings differ at index 1: expected 'p0', actual 'p1'",
        "turns[0].response: strings differ at index 1: expected 'r0', actual 'r1'",
    ]


def test_type_mismatch_and_none_are_named() -> None:
    session = make_session(0)
    [line] = structural_diff(session, {"id": session.id})
    assert line.startswith("expected SessionData (SessionData(id=")
    assert line.endswith(f"actual dict ({{'id': '{session.id}'}})")

    [line] = structural_diff(None, "abc")
    assert line == "expected None, actual str ('abc')"
    [line] = structural_diff(session, None)
    assert line.startswith("expected SessionData (") and line.endswith(", actual None")
    assert structural_diff(True, 1) == ["expected bool (True), actual int (1)"]


# --- JSON documents -----------------------------------------------------------------------


def json_document(prompt: str) -> dict[str, object]:
    return {
        "version": 1,
        "sessions": [
            {
                "id": f"s{i}",
                "createdAt": "2030-01-01T12:00:00.123Z",
                "turns": [{"prompt": prompt if i == 2 else "p", "response": "r"}],
            }
            for i in range(4)
        ],
    }


def test_json_documents_get_json_paths() -> None:
    expected = json_document("hello")
    actual = json_document("hellO")
    sessions = actual["sessions"]
    assert isinstance(sessions, list)
    del sessions[0]["createdAt"]
    sessions[1]["codexConversationId"] = "c-1"
    actual["odd key"] = [1, 2]

    lines = structural_diff(expected, actual)

    assert lines == [
        "['odd key']: unexpected key; actual [1, 2]",
        "sessions[0].createdAt: key missing from actual; expected '2030-01-01T12:00:00.123Z'",
        "sessions[1].codexConversationId: unexpected key; actual 'c-1'",
        "sessions[2].turns[0].prompt: strings differ at index 4: expected 'hello', actual 'hellO'",
    ]


def test_json_list_length_difference() -> None:
    expected = {"sessions": [1, 2, 3]}
    assert structural_diff(expected, {"sessions": [1, 2]}) == [
        "sessions: expected 3 sessions, actual 2; first missing sessions[2]: 3"
    ]
    assert structural_diff([1], [1, 2]) == ["expected 1 item, actual 2; first extra [1]: 2"]


# --- strings, bytes, datetimes, other values ----------------------------------------------


def test_long_strings_differing_at_the_end_show_a_window() -> None:
    expected = "x" * 1000 + "tail-A"
    actual = "x" * 1000 + "tail-B!"

    [line] = structural_diff(expected, actual)

    assert line.startswith("strings differ at index 1005 (lengths 1006 vs 1007): expected …'x")
    assert "tail-A'," in line
    assert line.endswith("tail-B!'")
    assert len(line) < 160
    assert "x" * 100 not in line


def test_string_window_reprs_escapes_and_marks_cuts() -> None:
    expected = "a" * 50 + "\x00" + "b" * 50
    actual = "a" * 50 + "\n" + "b" * 50

    [line] = structural_diff(expected, actual)

    assert "index 50:" in line
    assert "aaaa\\x00bbbb" in line
    assert "aaaa\\nbbbb" in line
    assert line.count("…") == 4  # both windows are cut on both sides
    assert "lengths" not in line  # equal lengths are not mentioned


def test_bytes_give_the_first_differing_offset() -> None:
    [line] = structural_diff(b"\x00" * 40 + b"\xff\x01", b"\x00" * 40 + b"\xfe\x01")
    assert line.startswith("bytes differ at offset 40: expected …b'\\x00")
    assert "\\xff\\x01'," in line
    assert line.endswith("\\xfe\\x01'")


def test_naive_against_aware_datetime() -> None:
    naive = AT.replace(tzinfo=None)
    assert structural_diff(AT, naive) == [
        "expected 2030-01-01T12:00:00.123+00:00, actual 2030-01-01T12:00:00.123 (actual is naive)"
    ]
    session = make_session(0)
    lines = structural_diff(session, dataclasses.replace(session, created_at=naive))
    assert lines == [
        "created_at: expected 2030-01-01T12:00:00.123+00:00, "
        "actual 2030-01-01T12:00:00.123 (actual is naive)"
    ]


def test_datetimes_show_the_difference_and_sub_millisecond_digits() -> None:
    assert structural_diff(AT, AT + timedelta(milliseconds=5)) == [
        "expected 2030-01-01T12:00:00.123+00:00, actual 2030-01-01T12:00:00.128+00:00 "
        "(actual is 0:00:00.005000 later)"
    ]
    assert structural_diff(AT, AT - timedelta(microseconds=7)) == [
        "expected 2030-01-01T12:00:00.123000+00:00, actual 2030-01-01T12:00:00.122993+00:00 "
        "(actual is 0:00:00.000007 earlier)"
    ]


class Opaque:
    """A value of no known kind, compared with ``==`` and shown by ``repr``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Opaque({self.text!r})"


def test_other_values_are_cut_reprs_that_keep_the_first_difference() -> None:
    [line] = structural_diff(Opaque("z" * 200 + "1"), Opaque("z" * 200 + "2"))
    assert line.startswith("expected …zzz")
    assert "zz1')," in line
    assert line.endswith("zz2')")
    assert len(line) < 2 * 80 + 30


def test_default_reprs_carry_no_addresses() -> None:
    [line] = structural_diff(object(), object())
    assert "0x" not in line
    assert line == "unequal object values with the same repr <object object>"


def test_sets_are_shown_sorted_whatever_the_hash_seed() -> None:
    code = (
        "from sessionspec.conformance.diff import format_diff;"
        "print(format_diff({'kiwi', 'apple', 'fig', 'date'}, {'plum', 'fig', 'cherry'}));"
        "print(format_diff({'kiwi', 'apple', 'fig'}, ['fig']))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {
        "3 elements missing from actual: 'apple', 'date', 'kiwi'\n"
        "2 elements unexpected in actual: 'cherry', 'plum'\n"
        "expected set ({'apple', 'fig', 'kiwi'}), actual list (['fig'])\n"
    }


# --- bounds -------------------------------------------------------------------------------


def test_limit_truncates_and_counts_the_rest() -> None:
    expected = list(range(100))
    actual = [n + 1 for n in expected]

    lines = structural_diff(expected, actual, limit=3)

    assert lines == [
        "[0]: expected 0, actual 1",
        "[1]: expected 1, actual 2",
        "[2]: expected 2, actual 3",
        "... and 97 more differences",
    ]
    assert structural_diff(expected, actual, limit=0) == ["... and 100 more differences"]
    assert len(structural_diff(expected, actual)) == 11
    assert format_diff(expected, actual, limit=1) == (
        "[0]: expected 0, actual 1\n... and 99 more differences"
    )


def test_deep_paths_and_long_keys_stay_within_the_line_width() -> None:
    nested_expected: object = "a" * 300
    nested_actual: object = "a" * 299 + "b"
    for depth in range(30):
        key = f"key_number_{depth}_" + "k" * 40
        nested_expected = {key: [nested_expected]}
        nested_actual = {key: [nested_actual]}

    [line] = structural_diff(nested_expected, nested_actual)

    assert len(line) <= LINE_WIDTH
    assert "index 299" in line
    assert "'a" in line and "b'" in line


# --- properties ---------------------------------------------------------------------------


sessions = st.builds(
    SessionData,
    id=strategies.valid_ids,
    created_at=strategies.timestamps,
    last_accessed_at=strategies.timestamps,
    turns=st.lists(strategies.turns, max_size=4).map(tuple),
    codex_conversation_id=st.one_of(st.none(), strategies.conversation_ids),
)


def fresh(text: str) -> str:
    """An equal str that is (for two or more characters) a different object."""
    return "".join(list(text))


def rebuilt(session: SessionData) -> SessionData:
    """An equal session sharing no container and (mostly) no str or datetime object."""
    conversation = session.codex_conversation_id
    return SessionData(
        fresh(session.id),
        session.created_at.astimezone(UTC),
        session.last_accessed_at + timedelta(0),
        [  # type: ignore[arg-type]
            ConversationTurn(fresh(t.prompt), fresh(t.response), t.timestamp) for t in session.turns
        ],
        None if conversation is None else fresh(conversation),
    )


def changed(session: SessionData, field: str) -> SessionData:
    """``session`` with exactly one field made different."""
    if field == "id":
        return dataclasses.replace(session, id=session.id + "x")
    if field == "created_at":
        return dataclasses.replace(session, created_at=session.created_at + timedelta(seconds=1))
    if field == "last_accessed_at":
        moment = session.last_accessed_at - timedelta(microseconds=1)
        return dataclasses.replace(session, last_accessed_at=moment)
    if field == "turns":
        if session.turns:
            first = session.turns[0]
            edited = dataclasses.replace(first, prompt=first.prompt + "\ud800")
            return dataclasses.replace(session, turns=(edited, *session.turns[1:]))
        return dataclasses.replace(session, turns=(ConversationTurn("p", "r", AT),))
    conversation = session.codex_conversation_id
    return dataclasses.replace(
        session, codex_conversation_id="c" if conversation is None else conversation + "!"
    )


FIELDS = [field.name for field in dataclasses.fields(SessionData)]


@given(sessions)
def test_a_session_equals_its_rebuilt_copy(session: SessionData) -> None:
    assert structural_diff(session, rebuilt(session)) == []
    assert structural_diff([session], [rebuilt(session)]) == []


@given(sessions, st.sampled_from(FIELDS))
def test_one_changed_field_is_reported_at_that_field(session: SessionData, field: str) -> None:
    lines = structural_diff(session, changed(session, field))
    assert lines
    assert lines[0].startswith(field)
    assert_bounded(lines)


@given(st.lists(sessions, max_size=8, unique_by=lambda s: s.id), st.randoms())
def test_a_shuffled_session_list_differs_only_in_order(
    listed: list[SessionData], random: Random
) -> None:
    shuffled = list(listed)
    random.shuffle(shuffled)
    lines = structural_diff(listed, shuffled)
    if [s.id for s in shuffled] == [s.id for s in listed]:
        assert lines == []
    else:
        assert len(lines) == 1
        assert lines[0].startswith("order differs at position ")


@given(strategies.texts, strategies.texts, strategies.texts)
def test_strings_report_the_first_differing_index(prefix: str, left: str, right: str) -> None:
    expected, actual = prefix + left, prefix + right
    lines = structural_diff(expected, actual)
    if expected == actual:
        assert lines == []
        return
    index = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    [line] = lines
    assert f"differ at index {index}" in line
    assert len(line) <= LINE_WIDTH
    for text in (expected, actual):
        if index < len(text):
            assert repr(text[index])[1:-1] in line
