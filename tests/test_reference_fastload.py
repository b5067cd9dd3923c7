"""The fast path of ``decode`` (reference.fastload): exactly the full reader's outcome.

Every test forces both paths: ``decode_writer_form`` (None when it cannot prove its result)
and ``decode_fully`` (the reader's rules step by step), on the vectors, on generated stores and
on byte-level mutations of writer-form files.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from reference_helpers import NASTY_TEXTS, START

from sessionspec import spec
from sessionspec.reference.fastload import decode_writer_form
from sessionspec.reference.sessionfile import (
    Decoded,
    InvalidFileError,
    decode,
    decode_fully,
    encode,
)

VECTORS = Path(spec.__file__).resolve().parent / "vectors"
VECTOR_FILES = sorted(p for p in VECTORS.rglob("*.json") if p.name not in {"manifest.json"})


def outcome(read: object, data: bytes) -> Decoded | str:
    """What a reader makes of ``data``: the Decoded, or the kind of error it raised."""
    assert callable(read)
    try:
        result = read(data)
    except InvalidFileError as exc:
        return type(exc).__name__
    assert isinstance(result, Decoded)
    return result


def assert_same_outcome(data: bytes) -> Decoded | str:
    """The fast path, when it answers, and ``decode`` both give the full reader's outcome."""
    full = outcome(decode_fully, data)
    fast = decode_writer_form(data)
    if fast is not None:
        assert Decoded(fast, (), False) == full
        for session in fast:  # the same types too: the public classes, plain values
            assert type(session) is spec.SessionData
            assert all(type(t) is spec.ConversationTurn for t in session.turns)
            assert session.created_at.tzinfo is UTC
    assert outcome(decode, data) == full
    return full


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: str(p.relative_to(VECTORS)))
def test_every_vector_reads_the_same_through_both_paths(path: Path) -> None:
    assert_same_outcome(path.read_bytes())


def test_the_reference_writer_vector_takes_the_fast_path() -> None:
    data = (VECTORS / "valid" / "reference-writer-bytes.json").read_bytes()
    assert decode_writer_form(data) == decode_fully(data).sessions


def test_msgspec_escapes_every_character_as_the_writer_does() -> None:
    # The fast path's proof rests on it: msgspec's encoding of a str is json.dumps's
    # (ensure_ascii=False), so a writer-form file is msgspec's canonical form.
    text = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert msgspec.json.encode(text) == json.dumps(text, ensure_ascii=False).encode("utf-8")


SPLIT_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
TEXT = st.one_of(
    st.sampled_from(NASTY_TEXTS),
    st.text(st.characters(codec=None, categories=None), max_size=12),
    st.text(st.sampled_from('"\\\n\t\x00\x1f\x7f\u2028 aé🚀/'), max_size=8),
).filter(lambda text: SPLIT_PAIR.search(text) is None)
MOMENT = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(spec.to_millis)
TURNS = st.lists(st.builds(spec.ConversationTurn, TEXT, TEXT, MOMENT), max_size=6).map(tuple)
MANY_TURNS = st.integers(20, 200).map(
    lambda n: tuple(
        spec.ConversationTurn(f"p{i}", "r", START + timedelta(milliseconds=i)) for i in range(n)
    )
)
STORES = st.lists(
    st.builds(
        spec.SessionData,
        id=st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z"),
        created_at=MOMENT,
        last_accessed_at=MOMENT,
        turns=TURNS | MANY_TURNS,
        codex_conversation_id=st.none() | st.just("") | TEXT,
    ),
    max_size=4,
    unique_by=lambda s: s.id,
)
HAS_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogates_in(sessions: list[spec.SessionData]) -> bool:
    texts = [s.codex_conversation_id or "" for s in sessions]
    texts += [text for s in sessions for t in s.turns for text in (t.prompt, t.response)]
    return any(HAS_SURROGATE.search(text) for text in texts)


@given(STORES)
def test_a_written_store_takes_the_fast_path_and_reads_back_the_same(
    sessions: list[spec.SessionData],
) -> None:
    data = encode(sessions)
    assert assert_same_outcome(data) == Decoded(tuple(sessions), (), False)
    # msgspec refuses lone-surrogate escapes: only those files take the full reader.
    assert (decode_writer_form(data) is None) == surrogates_in(sessions)


# -- byte-level mutations of writer-form files -------------------------------------------------

BASE = encode(
    [
        spec.SessionData(
            "a",
            START,
            START + timedelta(seconds=1),
            (spec.ConversationTurn("hi", 'a "b"\n', START),),
            "conv",
        ),
        spec.SessionData("b", START, START, (), ""),
        spec.SessionData("c", START, START, ()),
    ]
)
STAMP = b'"2026-01-01T12:00:00.000Z"'
# Each rewrites the first occurrence of a piece of the file; all keep it JSON or nearly.
MUTATIONS: list[tuple[bytes, bytes]] = [
    (b'"id": "a",', b'"id": "a",\n      "id": "a",'),  # a repeated member name
    (b'"id": "a",', b'"id": "b",'),  # a repeated session id
    (b'"id": "a",', b'"id": "a b",'),  # an id outside the grammar
    (b'"prompt": "hi",', b'"prompt": "hi",\n          "prompt": "hi",'),
    (b'"prompt": "hi",', b'"prompt": "hi", "extra": 1,'),
    (b'"version": 1', b'"version": 1.0'),
    (b'"version": 1', b'"version": 1, "version": 1'),
    (b'"version": 1', b'"version": 2'),
    (b'"codexConversationId": ""', b'"codexConversationId": null'),
    (b'"codexConversationId": ""', b'"codexConversationId": 0'),
    (b'"turns": []', b'"turns": {}'),
    (b'"turns": []', b'"turns": [1]'),
    (STAMP, b'"2026-01-01T12:00:00.000123Z"'),
    (STAMP, b'"2026-01-01T12:00:00.000000Z"'),
    (STAMP, b'"2026-01-01T12:00:00.000z"'),
    (STAMP, b'"2026-01-01t12:00:00.000Z"'),
    (STAMP, b'"2026-01-01T12:00:00.000+00:00"'),
    (STAMP, b'"2026-01-01T13:00:00.000+01:00"'),
    (STAMP, b'"2026-01-01T12:00:00Z"'),
    (STAMP, b'"2026-01-01 12:00:00.000Z"'),
    (STAMP, b'"2026-13-01T12:00:00.000Z"'),
    (STAMP, b'"0000-01-01T12:00:00.000Z"'),
    (STAMP, b'"2026-01-01T12:00:60.000Z"'),
    (STAMP, b'"2026-02-30T12:00:00.000Z"'),
    (STAMP, b'"2026-W01-1T12:00:00.000Z"'),
    (STAMP, b'"\\u0032026-01-01T12:00:00.000Z"'),
    (STAMP, b'"2026-01-01T12:00:00.00\xd9\xa2Z"'),  # an Arabic-Indic digit two
    (STAMP, b'"2026-01-01T12:00:00.00Z"'),  # one digit short...
    (STAMP, b'"2026-01-01T12:00:00.0000Z"'),  # ...or long: the stamps' lines shift
    (STAMP, b'"2026-01-01T12:00:00.000Z\\n"'),
    (b'"hi"', b'"h\\u0069"'),
    (b'"hi"', b'"h\\ud800"'),
    (b'"hi"', b'"h\x01"'),
    (b'"hi"', b'"h\xff"'),
    (b'"hi"', b'"h\\/"'),
    (b"{\n", b"\xef\xbb\xbf{\n"),
    (b"{\n", b"{ \n"),
    (b"{\n", b"{\t\n"),
    (b"{\n", b"{\r\n"),
    (b'"sessions": [', b'"sessions" : ['),
]


@pytest.mark.parametrize(("old", "new"), MUTATIONS, ids=[repr(m[1])[:40] for m in MUTATIONS])
def test_a_mutated_writer_file_reads_the_same_through_both_paths(old: bytes, new: bytes) -> None:
    assert old in BASE
    data = BASE.replace(old, new, 1)
    assert_same_outcome(data)
    assert decode_writer_form(data) is None  # none of these is in the writer's form


@given(
    position=st.integers(0, len(BASE)),
    cut=st.integers(0, 3),
    insert=st.binary(max_size=3) | st.sampled_from([b" ", b"\n", b'"', b"\\", b",", b"}", b"0"]),
)
@example(position=len(BASE), cut=0, insert=b"\n")
@example(position=0, cut=0, insert=b" ")
def test_any_byte_edit_of_a_writer_file_reads_the_same_through_both_paths(
    position: int, cut: int, insert: bytes
) -> None:
    assert_same_outcome(BASE[:position] + insert + BASE[position + cut :])


@given(STORES, st.data())
def test_a_member_repeated_anywhere_is_lossy_through_either_path(
    sessions: list[spec.SessionData], data: st.DataObject
) -> None:
    raw = encode(sessions)
    # A member whose value ends on its line (a string, a number, []), with its line's start.
    members = re.findall(rb'(?=(\n *"[A-Za-z]+": (?:"|[0-9]|\[\])[^\n]*))', raw)
    line = data.draw(st.sampled_from(members)).rstrip(b",")
    start = raw.index(line)
    repeated = raw[:start] + line + b"," + raw[start:]
    result = assert_same_outcome(repeated)
    assert isinstance(result, Decoded)
    assert result.lossy


def test_every_session_after_an_odd_separator_is_still_proved() -> None:
    """A file whose sessions are apart by ", " rather than ",\\n" is one JSON text all the same;
    the proof must still reach the sessions after it (here one repeating a member: lossy)."""
    sessions = [spec.SessionData(f"s{i}", START, START) for i in range(3)]
    raw = encode(sessions)
    first_break = raw.index(b"},\n    {") + 1
    odd = raw[:first_break] + b", " + raw[first_break + 2 :]
    last_id = raw.rindex(b'"id": ')
    line_end = raw.index(b"\n", last_id)
    repeated = odd.replace(
        raw[last_id:line_end], raw[last_id:line_end] + b"\n      " + raw[last_id:line_end]
    )
    assert json.loads(repeated)  # still one JSON text
    result = assert_same_outcome(repeated)
    assert isinstance(result, Decoded)
    assert result.lossy
