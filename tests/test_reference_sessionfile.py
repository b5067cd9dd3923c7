"""The pure codec of sessionspec.reference.sessionfile: what the vectors and the kit do not pin."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import NASTY_TEXTS, START, turn

from sessionspec import spec
from sessionspec.reference.sessionfile import (
    CorruptFileError,
    SessionEncoder,
    UnsupportedVersionError,
    decode,
    encode,
)


def sample_sessions() -> list[spec.SessionData]:
    return [
        spec.SessionData(
            f"s{i}",
            START,
            START + timedelta(seconds=i),
            tuple(turn(t, NASTY_TEXTS[-1 - j]) for j, t in enumerate(NASTY_TEXTS)),
            codex_conversation_id=[None, "", "conv"][i % 3],
        )
        for i in range(3)
    ]


def test_encode_writes_the_writer_profile_in_the_given_order() -> None:
    sessions = sample_sessions()
    data = encode(sessions)
    assert not data.startswith(b"\xef\xbb\xbf")
    document = json.loads(data.decode("utf-8"))
    assert [e.message for e in spec.writer_validator().iter_errors(document)] == []
    assert [s["id"] for s in document["sessions"]] == ["s0", "s1", "s2"]


def test_encode_omits_a_none_conversation_id_but_keeps_the_empty_string() -> None:
    document = json.loads(encode(sample_sessions()))
    assert "codexConversationId" not in document["sessions"][0]
    assert document["sessions"][1]["codexConversationId"] == ""
    assert document["sessions"][2]["codexConversationId"] == "conv"


def test_encode_indents_two_spaces_and_writes_timestamps_like_to_iso_string() -> None:
    session = spec.SessionData("a", START, START, (turn("x"),))
    text = encode([session]).decode("utf-8")
    assert text.startswith('{\n  "version": 1,\n  "sessions": [\n    {\n      "id": "a",')
    assert '"timestamp": "2026-01-01T12:00:00.000Z"' in text


def test_encode_escapes_lone_surrogates_and_keeps_other_text_raw() -> None:
    session = spec.SessionData("a", START, START, (turn("lone \ud800 \udfff", "héllo 🚀"),))
    data = encode([session])
    data.decode("utf-8")  # valid UTF-8 although the text is not
    assert b"\\ud800" in data and b"\\udfff" in data
    assert "héllo 🚀".encode() in data  # ensure_ascii=False for everything else


def test_decode_reads_back_exactly_what_encode_wrote() -> None:
    sessions = sample_sessions()
    decoded = decode(encode(sessions))
    assert list(decoded.sessions) == sessions
    assert decoded.skipped == () and decoded.lossy is False


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xef\xbb\xbf{}",
        b'{"version": 1, "sessions": []} x',
        b'{"version": 1, "sessions": [], "n": NaN}',
        b"[]",
        b'{"version": 1}',
        b'{"version": 1, "sessions": {}}',
        b'{"version": 1, "sessions": ["\xff"]}',
        b"[" * 100_000,
    ],
    ids=[
        "empty",
        "bom",
        "trailing",
        "nan",
        "array",
        "no-sessions",
        "sessions-object",
        "latin1",
        "deep",
    ],
)
def test_decode_raises_corrupt_for_what_cannot_be_parsed(data: bytes) -> None:
    with pytest.raises(CorruptFileError):
        decode(data)


@pytest.mark.parametrize(
    "version",
    [
        "2",
        "0",
        "-1",
        "1.5",
        "1.000001",
        # the first double above 1 is 1 + 2**-52; just above the halfway point rounds up to it
        "1.000000000000000111022302462515654042363166809082031251",
        '"1"',
        "true",
        "null",
        "[1]",
        "1e400",  # Infinity as a double
        "1" + "0" * 3998,  # an int, too large for float(int): Infinity as a double
        "1" + "0" * 4999,  # too many digits for int(); Infinity as a double
        "1e99999999999999999999999",  # an exponent beyond what Decimal holds
        "-1e99999999999999999999999",
        "1e-99999999999999999999999",
    ],
)
def test_decode_raises_unsupported_version(version: str) -> None:
    with pytest.raises(UnsupportedVersionError):
        decode(f'{{"version": {version}, "sessions": []}}'.encode())


@pytest.mark.parametrize(
    "version",
    [
        "1",
        "1.0",
        "1e0",
        "1E0",
        "10e-1",
        "0.1e1",
        "1.0000000000000000001",
        "0.99999999999999999999",
        # exactly halfway between 1 and the next double: round-half-even gives 1
        "1.00000000000000011102230246251565404236316680908203125",
    ],
)
def test_decode_reads_numbers_whose_double_is_1_as_version_1(version: str) -> None:
    decoded = decode(f'{{"version": {version}, "sessions": []}}'.encode())
    assert decoded.sessions == () and decoded.lossy is False


def test_decode_counts_a_repeated_member_name_as_lossy() -> None:
    data = b'{"version": 1, "sessions": [], "sessions": []}'
    assert decode(data).lossy is True


@pytest.mark.parametrize("number", [b"1" + b"0" * 5000, b"1e99999999999999999999999"])
def test_decode_reads_huge_numbers_in_unknown_members_instead_of_failing(number: bytes) -> None:
    data = b'{"version": 1, "sessions": [], "big": ' + number + b"}"
    assert decode(data).lossy is True  # an unknown member, not a corrupt file


def dumps_oracle(sessions: list[spec.SessionData]) -> bytes:
    """What encode must produce: json.dumps with indent=2, lone surrogates escaped."""
    document = {
        "version": 1,
        "sessions": [
            {
                "id": s.id,
                "createdAt": spec.format_timestamp(s.created_at),
                "lastAccessedAt": spec.format_timestamp(s.last_accessed_at),
                "turns": [
                    {
                        "prompt": t.prompt,
                        "response": t.response,
                        "timestamp": spec.format_timestamp(t.timestamp),
                    }
                    for t in s.turns
                ],
                **(
                    {}
                    if s.codex_conversation_id is None
                    else {"codexConversationId": s.codex_conversation_id}
                ),
            }
            for s in sessions
        ],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text).encode()


# A high then a low surrogate, as two code points, reads back as one astral character in
# every JSON reader (in JavaScript both are the same UTF-16 string): not a round trip.
SPLIT_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=20).filter(
    lambda text: SPLIT_PAIR.search(text) is None
)
SESSIONS = st.lists(
    st.builds(
        spec.SessionData,
        id=st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z"),
        created_at=st.just(START),
        last_accessed_at=st.datetimes(timezones=st.just(UTC)).map(spec.to_millis),
        turns=st.lists(
            st.builds(
                spec.ConversationTurn,
                prompt=ANY_TEXT,
                response=ANY_TEXT,
                timestamp=st.datetimes(timezones=st.just(UTC)),
            ),
            max_size=3,
        ).map(tuple),
        codex_conversation_id=st.none() | ANY_TEXT,
    ),
    max_size=4,
    unique_by=lambda s: s.id,
)


@given(SESSIONS)
def test_encode_writes_exactly_what_json_dumps_with_indent_2_writes(
    sessions: list[spec.SessionData],
) -> None:
    assert encode(sessions) == dumps_oracle(sessions)
    assert list(decode(encode(sessions)).sessions) == sessions


def test_encode_reproduces_the_reference_writer_vector_byte_for_byte() -> None:
    vectors = Path(spec.__file__).resolve().parent / "vectors"
    data = (vectors / "valid" / "reference-writer-bytes.json").read_bytes()
    assert encode(decode(data).sessions) == data


def test_session_encoder_reuses_unchanged_sessions_and_sees_every_change() -> None:
    encoder = SessionEncoder()
    sessions = sample_sessions()
    assert encoder.encode(sessions) == encode(sessions)
    changed = replace(sessions[1], turns=(*sessions[1].turns, turn("new")))
    sessions = [changed, sessions[0], sessions[2]]
    assert encoder.encode(sessions) == encode(sessions)
    assert encoder.encode(sessions[1:]) == encode(sessions[1:])
    assert encoder.encode([]) == encode([])
