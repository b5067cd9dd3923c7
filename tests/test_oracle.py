"""The kit's own oracles (``oracle``, ``oracle_reader``) and its foreign files
(``file_strategies``), held to the vectors and cross-checked against the code they judge.

Every vector of sessionspec/spec/vectors is run through ``oracle_reader.expected_load`` and
must reach the manifest's outcome exactly; the id and timestamp vectors also pin ``oracle``'s
small rules on their own. Hypothesis then compares ``oracle`` with the spec helpers and
``oracle_reader`` with the reference reader on generated files: a disagreement means one of
them is wrong per SPEC.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, find, given, settings
from hypothesis import strategies as st

from sessionspec import spec
from sessionspec.conformance import oracle
from sessionspec.conformance import strategies as gen
from sessionspec.conformance.file_strategies import (
    VECTORS_NOW,
    Pairs,
    Raw,
    encode_document,
    foreign_files,
    mutated_documents,
    schema_documents,
    valid_documents,
    vector_files,
    vectors,
)
from sessionspec.conformance.oracle_reader import ExpectedLoad, Outcome, expected_load
from sessionspec.spec import ConversationTurn, SessionData, ValidationError

VECTORS = vectors()
NAMES = [v.name for v in VECTORS]
MANIFEST = json.loads(
    (Path(spec.__file__).parent / "vectors" / "manifest.json").read_text(encoding="utf-8")
)


def by_category(category: str) -> list[Any]:
    return [v for v in VECTORS if v.file.startswith(category + "/")]


# -- oracle_reader against every vector ---------------------------------------------------------


def test_every_manifest_vector_is_read() -> None:
    assert len(VECTORS) == len(MANIFEST["vectors"]) > 200
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_reader_oracle_reaches_each_vectors_outcome(vector: Any) -> None:
    """Result, loaded sessions (ids in list order, turn counts, conversation ids, both
    timestamps), skipped locations and lossiness: exactly the manifest's."""
    got = expected_load(vector.raw, vector.now).to_manifest()
    want = vector.expect
    assert got["result"] == want["result"]
    if want["result"] != "load":
        return
    assert [s["location"] for s in got["skips"]] == [s["location"] for s in want["skips"]]
    assert got["lossy"] == want["lossy"]
    assert len(got["loads"]) == len(want["loads"])
    for loaded, expected in zip(got["loads"], want["loads"], strict=True):
        assert {key: loaded[key] for key in expected} == expected


def _vector_document(vector: Any) -> Any:
    return json.loads(vector.raw.decode("utf-8"))


def test_reader_oracle_loads_turn_content_of_the_spec_example() -> None:
    """The manifest counts turns; their content is pinned here for the example of §3."""
    vector = next(v for v in VECTORS if v.name == "valid-spec-example")
    moment = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert expected_load(vector.raw, vector.now).sessions == (
        SessionData(
            "6f1c2f52-3c0e-4c71-9a55-5f0b1d8f3a2e",
            datetime(2026, 1, 1, tzinfo=UTC),
            moment,
            (ConversationTurn("hi", "hello", moment),),
            "conv_123",
        ),
    )


@pytest.mark.parametrize(
    ("name", "prompts"),
    [
        ("text-lone-surrogates", ["\ud800", "\udfff \udc00\ud800 end\udbff"]),
        ("text-surrogate-pair-escaped", ["\U0001f680"]),
        ("valid-everything-escaped", ["/\u00e9"]),
        ("records-repeated-member-name", ["second"]),  # the last value, as JSON.parse
        ("records-turn-prompt-null", ["p0", "p2"]),
    ],
)
def test_reader_oracle_keeps_text_exactly(name: str, prompts: list[str]) -> None:
    vector = next(v for v in VECTORS if v.name == name)
    (session,) = expected_load(vector.raw, vector.now).sessions
    assert [turn.prompt for turn in session.turns] == prompts


def test_reader_oracle_first_of_a_repeated_id_wins_even_expired() -> None:
    vector = next(v for v in VECTORS if v.name == "records-duplicate-of-expired")
    loaded = expected_load(vector.raw, vector.now)
    assert loaded.sessions == ()
    assert [s.id for s in loaded.expired] == ["a"]
    assert loaded.expired[0].codex_conversation_id is None  # not the second's "second"


def test_reader_oracle_move_aside_behaviours() -> None:
    assert expected_load(b"\xef\xbb\xbf{}", VECTORS_NOW).behaviour == "B13"
    assert expected_load(b'{"sessions": []}', VECTORS_NOW).behaviour == "B14"
    assert expected_load(b'{"version": 1}', VECTORS_NOW).behaviour == "B13"
    # version is step 3, before the envelope check of step 4
    assert expected_load(b'{"version": 2, "sessions": 0}', VECTORS_NOW).behaviour == "B14"
    # a repeated name is read with its last value
    repeated = expected_load(b'{"version": 2, "version": 1, "sessions": []}', VECTORS_NOW)
    assert repeated.outcome is Outcome.LOAD and repeated.lossy


def test_reader_oracle_evicts_over_the_cap_in_list_order() -> None:
    vector = next(v for v in VECTORS if v.name == "order-more-than-100-in-the-future")
    loaded = expected_load(vector.raw, vector.now)
    assert len(loaded.sessions) == oracle.MAX_SESSIONS
    assert len(loaded.evicted) == 20
    assert loaded.lossy and not loaded.skips
    assert min(s.last_accessed_at for s in loaded.sessions) >= max(
        s.last_accessed_at for s in loaded.evicted
    )


def test_expected_open_missing_and_unreadable(tmp_path: Path) -> None:
    from sessionspec.conformance.oracle_reader import expected_open

    missing = expected_open(tmp_path / "none.json", VECTORS_NOW)
    assert (missing.outcome, missing.behaviour, missing.sessions) == (Outcome.MISSING, "B11", ())
    unreadable = expected_open(tmp_path, VECTORS_NOW)  # a directory
    assert (unreadable.outcome, unreadable.behaviour) == (Outcome.RAISE, "B12")
    (tmp_path / "s.json").write_bytes(b'{"version": 1, "sessions": []}')
    assert expected_open(tmp_path / "s.json", VECTORS_NOW).outcome is Outcome.LOAD


# -- oracle's small rules against the id and timestamp vectors ----------------------------------


@pytest.mark.parametrize("vector", by_category("ids"), ids=lambda v: v.name)
def test_id_rule_agrees_with_id_vectors(vector: Any) -> None:
    """A record of an id vector is skipped exactly when its id breaks §1.1 (the rest of
    every record is valid) and every loaded id is one the oracle accepts."""
    skipped = {s["location"] for s in vector.expect["skips"]}
    records = _vector_document(vector)["sessions"]
    for index, record in enumerate(records):
        assert oracle.read_timestamp(record["createdAt"]) is not None
        assert oracle.is_valid_session_id(record["id"]) is (f"sessions[{index}]" not in skipped)
    assert all(oracle.is_valid_session_id(s["id"]) for s in vector.expect["loads"])


@pytest.mark.parametrize("vector", by_category("timestamps"), ids=lambda v: v.name)
def test_timestamp_grammar_agrees_with_timestamp_vectors(vector: Any) -> None:
    """Per record of a timestamp vector: skipped exactly when a timestamp breaks §1.2; the
    loaded instants, in writer form, are the manifest's; lossy exactly when something is
    skipped or a kept timestamp has non-zero digits below the millisecond."""
    skipped = {s["location"] for s in vector.expect["skips"]}
    loads = {s["id"]: s for s in vector.expect["loads"]}
    sub_millisecond = False
    for i, record in enumerate(_vector_document(vector)["sessions"]):
        created = oracle.read_timestamp(record["createdAt"])
        accessed = oracle.read_timestamp(record["lastAccessedAt"])
        assert oracle.is_valid_session_id(record["id"])
        if created is None or accessed is None:
            assert f"sessions[{i}]" in skipped
            continue
        assert f"sessions[{i}]" not in skipped
        sub_millisecond |= created.sub_millisecond or accessed.sub_millisecond
        if record["id"] in loads:
            assert oracle.format_timestamp(created.moment) == loads[record["id"]]["createdAt"]
            assert oracle.format_timestamp(accessed.moment) == loads[record["id"]]["lastAccessedAt"]
        for j, turn in enumerate(record["turns"]):
            stamp = oracle.read_timestamp(turn["timestamp"])
            assert (stamp is None) is (f"sessions[{i}].turns[{j}]" in skipped)
            sub_millisecond |= stamp is not None and stamp.sub_millisecond
    assert vector.expect["lossy"] is (bool(skipped) or sub_millisecond)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T12:00:00.000Z", "2026-01-01T12:00:00.000Z"),
        ("2026-01-01t12:00:00z", "2026-01-01T12:00:00.000Z"),
        ("2026-01-01T12:00:00.000-00:00", "2026-01-01T12:00:00.000Z"),
        ("2026-01-02T11:59:00+23:59", "2026-01-01T12:00:00.000Z"),
        ("2025-12-31T23:59:59.9999999Z", "2025-12-31T23:59:59.999Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        # After truncation the instant is the last millisecond of 9999: in range (§1.2).
        ("9999-12-31T23:59:59.9999Z", "9999-12-31T23:59:59.999Z"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"),
        ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z"),
        ("1900-02-29T00:00:00Z", None),
        ("2016-12-31T23:59:60Z", None),
        ("2026-01-01T12:00:00.000Z\n", None),
        ("2026-01-01T12:00:00.000", None),
        ("2026-01-01T12:00:00.Z", None),
        ("2026-01-01T12:00:00.000+24:00", None),
        ("2026-01-01T12:00:00.000+09:60", None),
        ("0001-01-01T00:59:59.999+01:00", None),
        ("9999-12-31T23:59:59.999-00:01", None),
        ("0000-01-01T00:00:00Z", None),
        ("\u0662\u0660\u0662\u0666-01-01T12:00:00Z", None),
        ("2026-01-01T12:00:00.000ZZ", None),
        ("2026-01-01T12:00:00.000+09:00Z", None),
        (None, None),
        (1767268800000, None),
    ],
)
def test_timestamp_edges(text: object, expected: str | None) -> None:
    read = oracle.read_timestamp(text)
    assert (None if read is None else oracle.format_timestamp(read.moment)) == expected
    if expected is None:
        with pytest.raises(ValueError):
            oracle.parse_timestamp(text)


def test_to_millis_and_writer_form() -> None:
    moment = datetime(2026, 1, 1, 21, 0, 0, 999999, tzinfo=timezone(timedelta(hours=9)))
    assert oracle.to_millis(moment) == datetime(2026, 1, 1, 12, 0, 0, 999000, tzinfo=UTC)
    assert oracle.format_timestamp(moment) == "2026-01-01T12:00:00.999Z"
    assert oracle.format_timestamp(datetime(33, 2, 3, 4, 5, 6, tzinfo=UTC)) == (
        "0033-02-03T04:05:06.000Z"
    )
    before_1970 = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert oracle.format_timestamp(before_1970) == "1969-12-31T23:59:59.999Z"
    assert oracle.epoch_millis(before_1970) == -1
    assert oracle.is_writer_timestamp("2026-01-01T12:00:00.000Z")
    assert not oracle.is_writer_timestamp("2026-01-01T12:00:00Z")
    with pytest.raises(ValidationError):
        oracle.to_millis(datetime(2026, 1, 1))


def test_expiry_boundary() -> None:
    last = datetime(2026, 1, 1, tzinfo=UTC)
    assert not oracle.is_expired(last, last + oracle.SESSION_TTL + timedelta(microseconds=999))
    assert oracle.is_expired(last, last + oracle.SESSION_TTL + timedelta(milliseconds=1))
    assert not oracle.is_expired(last, last - timedelta(days=1))  # future: live


# -- oracle against the spec helpers ------------------------------------------------------------


def test_constants_agree_with_the_interface() -> None:
    assert (
        oracle.SCHEMA_VERSION,
        oracle.MAX_SESSIONS,
        oracle.SESSION_TTL,
        oracle.STALE_TEMP_AGE,
        oracle.SESSION_ID_MAX_LENGTH,
    ) == (
        spec.SCHEMA_VERSION,
        spec.MAX_SESSIONS,
        spec.SESSION_TTL,
        spec.STALE_TEMP_AGE,
        spec.SESSION_ID_MAX_LENGTH,
    )


_digit = st.sampled_from("0123456789")


def _digits(n: int) -> st.SearchStrategy[str]:
    # Mostly ASCII digits, sometimes another script's digit or a letter.
    return st.lists(
        st.one_of(_digit, _digit, st.sampled_from("\u0663\uff11a ")), min_size=n, max_size=n
    ).map("".join)


def _number(low: int, high: int, width: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(low, high).map(lambda n: f"{n:0{width}d}"), _digits(width))


#: Strings near the reader grammar: every field at and past its limits.
near_timestamps = st.builds(
    lambda *parts: "".join(parts),
    st.one_of(_number(0, 9999, 4), st.sampled_from(["0000", "0001", "9999", "10000", "+002026"])),
    st.sampled_from(["-", "-", "/"]),
    _number(0, 13, 2),
    st.sampled_from(["-", "-", ""]),
    _number(0, 32, 2),
    st.sampled_from(["T", "T", "t", " ", ""]),
    _number(0, 25, 2),
    st.sampled_from([":", ":", ""]),
    _number(0, 61, 2),
    st.sampled_from([":", ":", "."]),
    _number(0, 61, 2),
    st.one_of(
        st.just(""),
        st.text(alphabet="0123456789", max_size=12).map(lambda d: "." + d),
        st.sampled_from([",5", ".\u0661"]),
    ),
    st.one_of(
        st.sampled_from(["Z", "z", "", " UTC", "+0900", "+09", "ZZ"]),
        st.builds(
            lambda sign, h, m: f"{sign}{h}:{m}",
            st.sampled_from("+-"),
            _number(0, 25, 2),
            _number(0, 61, 2),
        ),
    ),
    st.sampled_from(["", "", "", "\n", " "]),
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(near_timestamps, st.text(max_size=30), gen.timestamps.map(datetime.isoformat)))
@example("9999-12-31T23:59:59.9999Z")
@example("0001-01-01T00:00:00.000+00:01")
@example("2026-01-01T12:00:00.000Z\n")
def test_timestamp_grammar_agrees_with_spec_parse_timestamp(text: str) -> None:
    """oracle.read_timestamp and spec.parse_timestamp accept the same strings and read the
    same instants and lossiness (SPEC.md §1.2)."""
    read = oracle.read_timestamp(text)
    try:
        theirs: datetime | None = spec.parse_timestamp(text)
    except ValueError:
        theirs = None
    assert (read.moment if read else None) == theirs
    assert (read is not None and read.sub_millisecond) == spec.has_sub_millisecond_digits(text)


@given(gen.timestamps)
def test_to_millis_and_format_agree_with_spec(moment: datetime) -> None:
    ours = oracle.to_millis(moment)
    assert ours == spec.to_millis(moment)
    assert ours.utcoffset() == timedelta(0)
    assert oracle.format_timestamp(moment) == spec.format_timestamp(moment)
    assert oracle.parse_timestamp(oracle.format_timestamp(moment)) == ours


@given(st.datetimes())
def test_naive_datetimes_are_rejected_by_both(moment: datetime) -> None:
    with pytest.raises(ValidationError):
        oracle.to_millis(moment)
    with pytest.raises(ValidationError):
        spec.to_millis(moment)


@given(st.one_of(gen.valid_ids, gen.invalid_ids, st.text(max_size=300), st.text(max_size=3)))
@example("a" * 256)
@example("a" * 257)
@example("abc\n")
def test_id_rule_agrees_with_spec(value: object) -> None:
    assert oracle.is_valid_session_id(value) is spec.is_valid_session_id(value)


# -- oracle_reader against the reference reader -------------------------------------------------


def reference_load(
    raw: bytes, now: datetime
) -> tuple[str, bool, tuple[SessionData, ...], list[str]]:
    """What the reference reader makes of ``raw``: result, lossy, live sessions in list
    order, skipped locations (test-only import of the code under cross-check)."""
    from sessionspec.reference.inspection import Outcome as Verdict
    from sessionspec.reference.inspection import inspect_bytes
    from sessionspec.reference.sessionfile import decode
    from sessionspec.reference.table import SessionTable

    verdict = inspect_bytes(raw, now=now)
    if verdict.outcome is Verdict.MOVE_ASIDE:
        return "move-aside", False, (), []
    decoded = decode(raw)
    moment = spec.to_millis(now)
    table = SessionTable(decoded.sessions, clock=lambda: moment, now=moment)
    live = tuple(table.live_sessions())
    assert tuple(s.id for s in live) == verdict.loaded_ids
    return "load", verdict.backup_expected, live, [s.location for s in decoded.skipped]


def oracle_view(loaded: ExpectedLoad) -> tuple[str, bool, tuple[SessionData, ...], list[str]]:
    return (
        loaded.outcome.value,
        loaded.lossy,
        loaded.sessions,
        [s.location for s in loaded.skips],
    )


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_reader_oracle_content_agrees_with_reference_on_vectors(vector: Any) -> None:
    """Beyond the manifest: every loaded session's full content (every turn's prompt,
    response and timestamp) is what the reference loads."""
    assert oracle_view(expected_load(vector.raw, vector.now)) == reference_load(
        vector.raw, vector.now
    )


NOWS = st.sampled_from(
    [
        VECTORS_NOW,
        datetime(2031, 3, 14, 15, 9, 26, 535897, tzinfo=UTC),
        datetime(2026, 1, 1, 12, tzinfo=UTC),
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_reader_oracle_agrees_with_reference_on_foreign_files(data: st.DataObject) -> None:
    """Outcome, lossiness, skipped locations and every loaded session, on generated files."""
    now = data.draw(NOWS, label="now")
    raw = data.draw(foreign_files(now), label="raw")
    assert oracle_view(expected_load(raw, now)) == reference_load(raw, now)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(raw=mutated_documents(VECTORS_NOW))
def test_reader_oracle_agrees_with_the_reference_file_backend(
    raw: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """End to end on real files: the reference FileSessionStorage opened on a foreign file
    lists the oracle's sessions, moves aside exactly when the oracle says (B13, B14), and
    keeps the original bytes in a backup before its first save exactly when the load is
    lossy (B15)."""
    from sessionspec.reference import FileSessionStorage

    directory = tmp_path_factory.mktemp("foreign")
    path = directory / "sessions.json"
    path.write_bytes(raw)
    want = expected_load(raw, VECTORS_NOW)
    logging.disable(logging.WARNING)
    try:
        storage = FileSessionStorage(path, clock=lambda: VECTORS_NOW)
    finally:
        logging.disable(logging.NOTSET)
    try:
        assert storage.list_sessions() == list(want.sessions)
        backups = sorted(p for p in directory.iterdir() if p.name.endswith(".bak"))
        if want.outcome is Outcome.MOVE_ASIDE:
            assert not path.exists()
            assert [p.read_bytes() for p in backups] == [raw]
            return
        storage.create_session()
        storage.flush()
        kept = [p.read_bytes() for p in directory.iterdir() if p.name.endswith(".bak")]
        assert kept == ([raw] if want.lossy else [])
    finally:
        storage.close()


# -- file_strategies ----------------------------------------------------------------------------


def _documents(raw: bytes) -> Iterator[Any]:
    try:
        yield json.loads(raw)
    except ValueError:
        return


@settings(max_examples=200)
@given(schema_documents(VECTORS_NOW))
def test_schema_documents_are_reader_valid_and_small(raw: bytes) -> None:
    document = json.loads(raw)
    errors = list(spec.reader_validator().iter_errors(document))
    assert not errors, errors[0].message
    assert len(document["sessions"]) <= 8
    assert all(len(s["turns"]) <= 4 for s in document["sessions"])


@settings(max_examples=200)
@given(valid_documents(VECTORS_NOW))
def test_valid_documents_load_every_session(document: dict[str, Any]) -> None:
    raw = encode_document(document)
    assert not list(spec.reader_validator().iter_errors(json.loads(raw)))
    loaded = expected_load(raw, VECTORS_NOW)
    assert loaded.outcome is Outcome.LOAD and not loaded.skips
    assert len(loaded.sessions) + len(loaded.expired) == len(document["sessions"])


@settings(max_examples=200)
@given(mutated_documents(VECTORS_NOW))
def test_mutated_documents_stay_small(raw: bytes) -> None:
    """At most 8 sessions, or 101-111 with the over-the-cap mutation; at most 4 turns."""
    for document in _documents(raw):
        if not isinstance(document, dict) or not isinstance(document.get("sessions"), list):
            continue
        sessions = document["sessions"]
        assert len(sessions) <= 8 or oracle.MAX_SESSIONS < len(sessions) <= 111
        for session in sessions:
            if isinstance(session, dict) and isinstance(session.get("turns"), list):
                assert len(session["turns"]) <= 4


KINDS: dict[str, Any] = {
    "clean": lambda e: e.outcome is Outcome.LOAD and not e.lossy and e.sessions,
    "skip": lambda e: bool(e.skips),
    "lossy-without-skip": lambda e: e.lossy and not e.skips,
    "evicted": lambda e: bool(e.evicted),
    "expired": lambda e: bool(e.expired),
    "B13": lambda e: e.behaviour == "B13",
    "B14": lambda e: e.behaviour == "B14",
}


def test_foreign_files_cover_every_outcome() -> None:
    """Each kind of file the lead's machine needs occurs in a few hundred draws: clean, lossy
    with and without skips, evicted by the cap, expired, moved aside for B13 and for B14."""
    seen: set[str] = set()

    @settings(derandomize=True, database=None, max_examples=400)
    @given(foreign_files(VECTORS_NOW))
    def collect(raw: bytes) -> None:
        loaded = expected_load(raw, VECTORS_NOW)
        seen.update(name for name, kind in KINDS.items() if kind(loaded))

    collect()
    assert seen == set(KINDS)


#: No example database: the shrink target is what matters, and it must not depend on history.
FIND_SETTINGS = settings(database=None, derandomize=True)


#: What shrinks, toward what bound: across the three sources to a small vector (the vectors
#: are sorted by size), and within the mutated documents to one small targeted mutation (the
#: exact minimum depends on the shrinker's version and budget: small is the property).
SHRINK_CASES = {
    "lossy-file": (foreign_files, lambda raw: expected_load(raw, VECTORS_NOW).lossy, 4000),
    "moved-aside-file": (
        foreign_files,
        lambda raw: expected_load(raw, VECTORS_NOW).outcome is Outcome.MOVE_ASIDE,
        4000,
    ),
    "lossy-document": (mutated_documents, lambda raw: expected_load(raw, VECTORS_NOW).lossy, 400),
    "future-version-document": (
        mutated_documents,
        lambda raw: expected_load(raw, VECTORS_NOW).behaviour == "B14",
        400,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", SHRINK_CASES)
def test_foreign_files_shrink_toward_simple_files(case: str) -> None:
    """Failing files shrink to small ones (each case its own test: four shrinks run in
    parallel under xdist)."""
    source, condition, bound = SHRINK_CASES[case]
    found = find(source(VECTORS_NOW), condition, settings=FIND_SETTINGS)
    assert len(found) < bound and condition(found), found


def test_foreign_files_are_deterministic_under_derandomize() -> None:
    def run() -> list[bytes]:
        seen: list[bytes] = []

        @settings(derandomize=True, database=None, max_examples=40)
        @given(foreign_files(VECTORS_NOW))
        def collect(raw: bytes) -> None:
            seen.append(raw)

        collect()
        return seen

    first = run()
    assert first == run()
    assert len(set(first)) > 10


def test_vector_files_are_the_manifest_files() -> None:
    found = find(vector_files(), lambda raw: len(raw) > 100, settings=settings(database=None))
    assert found == min((v.raw for v in VECTORS if len(v.raw) > 100), key=lambda r: (len(r), r))


def test_encode_document_writes_raw_numbers_and_repeated_names() -> None:
    document = {"version": Raw("1e0"), "sessions": [Pairs((("id", "x"), ("id", "a\ud800")))]}
    assert encode_document(document, indent=None) == (
        b'{"version":1e0,"sessions":[{"id":"x","id":"a\\ud800"}]}'
    )
    assert json.loads(encode_document({"a": ["\u00e9"]})) == {"a": ["\u00e9"]}
    assert encode_document({"a": "\u00e9"}, indent=None, ascii_only=True) == b'{"a":"\\u00e9"}'
