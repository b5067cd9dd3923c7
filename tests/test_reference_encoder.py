"""The incremental writer: ``SessionEncoder.pieces`` (reused sessions, appended turns only,
timestamps formatted fast) and ``reference.file._write_all`` (writev) write exactly ``encode``."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import NASTY_TEXTS, START

from sessionspec import spec
from sessionspec.reference import file as ref_file
from sessionspec.reference import sessionfile
from sessionspec.reference.sessionfile import SessionEncoder, encode

TEXT = st.sampled_from(NASTY_TEXTS) | st.text(st.characters(codec=None), max_size=6)
MOMENT = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(spec.to_millis)
TURN = st.builds(spec.ConversationTurn, TEXT, TEXT, MOMENT)
IDS = st.sampled_from(["a", "b", "c", "d"])

# One step on a store of sessions by id: what a table does between two saves.
STEPS = st.one_of(
    st.tuples(st.just("append"), IDS, st.lists(TURN, min_size=1, max_size=70)),
    st.tuples(st.just("replace-turns"), IDS, st.lists(TURN, max_size=3)),
    st.tuples(st.just("touch"), IDS, MOMENT),
    st.tuples(st.just("cid"), IDS, st.none() | TEXT),
    st.tuples(st.just("delete"), IDS, st.none()),
    st.tuples(st.just("reverse"), st.none(), st.none()),
)


def apply(store: dict[str, spec.SessionData], step: tuple[str, object, object]) -> None:
    kind, session_id, value = step
    if kind == "reverse":
        for key in reversed(list(store)):
            store[key] = store.pop(key)
        return
    assert isinstance(session_id, str)
    session = store.get(session_id) or spec.SessionData(session_id, START, START)
    if kind == "append":
        assert isinstance(value, list)
        store[session_id] = replace(session, turns=(*session.turns, *value))
    elif kind == "replace-turns":
        assert isinstance(value, list)
        store[session_id] = replace(session, turns=tuple(value))
    elif kind == "touch":
        assert isinstance(value, datetime)
        store[session_id] = replace(session, last_accessed_at=value)
    elif kind == "cid":
        assert value is None or isinstance(value, str)
        store[session_id] = replace(session, codex_conversation_id=value)
    else:
        store.pop(session_id, None)


@given(st.lists(st.lists(STEPS, max_size=3), max_size=8))
def test_every_save_is_exactly_encode_of_the_store(
    saves: list[list[tuple[str, object, object]]],
) -> None:
    encoder = SessionEncoder()
    store: dict[str, spec.SessionData] = {}
    for steps in saves:
        for step in steps:
            apply(store, step)
        sessions = list(store.values())
        assert b"".join(encoder.pieces(sessions)) == encode(sessions)
    assert encoder.encode(list(store.values())) == encode(list(store.values()))


def test_an_appended_turn_encodes_only_that_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    turns = tuple(spec.ConversationTurn(f"p{i}", "r", START) for i in range(100))
    session = spec.SessionData("a", START, START, turns)
    encoder = SessionEncoder()
    encoder.pieces([session])
    encoded: list[spec.ConversationTurn] = []
    turns_bytes = sessionfile._turns_bytes

    def counting(turns: tuple[spec.ConversationTurn, ...], *, first: bool) -> list[bytes]:
        encoded.extend(turns)
        return turns_bytes(turns, first=first)

    new = spec.ConversationTurn("new", "turn", START)
    longer = replace(session, turns=(*turns, new), last_accessed_at=START + timedelta(1))
    expected = encode([longer])
    monkeypatch.setattr(sessionfile, "_turns_bytes", counting)
    assert b"".join(encoder.pieces([longer])) == expected
    assert encoded == [new]


@given(st.lists(TURN, max_size=40), st.booleans())
def test_turns_encoded_together_are_the_turns_encoded_one_by_one(
    turns: list[spec.ConversationTurn], first: bool
) -> None:
    one_by_one = [sessionfile._turn_bytes(turn, first and i == 0) for i, turn in enumerate(turns)]
    assert sessionfile._turns_bytes(tuple(turns), first=first) == one_by_one


def test_turns_off_a_whole_second_are_encoded_together(monkeypatch: pytest.MonkeyPatch) -> None:
    turns = tuple(
        spec.ConversationTurn(f'p{i}\u2028"', "r\\", START + timedelta(milliseconds=i))
        for i in range(1, 100)
    )
    expected = [sessionfile._turn_bytes(turn, i == 0) for i, turn in enumerate(turns)]

    def one_by_one(turn: spec.ConversationTurn, first: bool) -> bytes:
        raise AssertionError("turn by turn")

    monkeypatch.setattr(sessionfile, "_turn_bytes", one_by_one)
    assert sessionfile._turns_bytes(turns, first=True) == expected


@given(
    st.datetimes(
        min_value=datetime(1, 1, 1, 1),
        max_value=datetime(9999, 12, 31),
        timezones=st.sampled_from([UTC, UTC, timezone(timedelta(hours=-3))]),
    )
)
def test_the_fast_timestamp_is_format_timestamp(moment: datetime) -> None:
    quoted = f'"{spec.format_timestamp(moment)}"'.encode()
    assert sessionfile._stamp_bytes(moment) == quoted  # msgspec's, cut to milliseconds
    assert sessionfile._stamp_bytes(spec.to_millis(moment)) == quoted


def test_write_all_writes_every_piece_in_order_through_short_writevs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = [bytes([65 + i % 26]) * (i % 7) for i in range(3000)]  # empty ones too
    writev = os.writev
    calls: list[int] = []

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        assert 0 < len(buffers) <= ref_file._IOV_MAX
        calls.append(len(buffers))
        return writev(fd, [memoryview(b"".join(buffers))[:5]])  # at most 5 bytes a call

    monkeypatch.setattr(os, "writev", short_writev)
    path = tmp_path / "out"
    with path.open("wb") as file:
        ref_file._write_all(file.fileno(), pieces)
    assert path.read_bytes() == b"".join(pieces)
    assert len(calls) > 1


def test_same_bytes_compares_pieces_with_what_was_read() -> None:
    pieces = (b"ab", b"", b"cd")
    assert ref_file._same_bytes(b"abcd", pieces)
    assert ref_file._same_bytes(b"abcd", ref_file._content_of(b"abcd"))
    assert not ref_file._same_bytes(b"abce", pieces)
    assert not ref_file._same_bytes(b"abcde", pieces)
    assert not ref_file._same_bytes(b"abc", pieces)
    assert not ref_file._same_bytes(b"", None)


@given(
    pieces=st.lists(st.binary(max_size=9), max_size=12),
    chunk=st.integers(1, 8),
    edit=st.one_of(st.none(), st.integers(0, 200)),
)
def test_file_holds_compares_the_file_with_pieces_a_chunk_at_a_time(
    pieces: list[bytes], chunk: int, edit: int | None
) -> None:
    """A save's "is the file as this instance left it?" (SPEC.md §8.2): the same answer as
    reading it whole and comparing, whatever the chunk and piece boundaries."""
    data = b"".join(pieces)
    if edit is not None and data:
        position = edit % len(data)  # one byte changed...
        data = data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]
    elif edit is not None:
        data = b"x"  # ...or, for empty pieces, a file that is not empty
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "sessions.json"
        for on_disk in (data, data + b"!", data[:-1]):
            path.write_bytes(on_disk)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(ref_file, "_COMPARE_CHUNK", chunk)
                held = ref_file._file_holds(path, tuple(pieces))
            assert held == (on_disk == b"".join(pieces))


def test_file_holds_is_false_for_no_content_no_file_and_no_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    assert not ref_file._file_holds(path, (b"",))  # no file
    path.write_bytes(b"")
    assert not ref_file._file_holds(path, None)  # no content known: never the same
    assert ref_file._file_holds(path, (b"",))
    path.unlink()
    os.mkfifo(path)  # opened without blocking, refused by its fstat
    assert not ref_file._file_holds(path, (b"",))
