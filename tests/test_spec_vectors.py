"""The file vectors of sessionspec/spec/vectors/: well-formed, complete, true to the schemas and
to §3.2.

The expectations in the manifest are written by hand (sessionspec/spec/vectors/generate.py). This
module
checks them three ways: against manifest.schema.json, against the reader and writer schemas
(with format assertion), and against a small decoder written here from SPEC.md §3.2 alone.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sessionspec import spec

VECTORS = Path(spec.__file__).resolve().parent / "vectors"
MANIFEST: dict[str, Any] = json.loads((VECTORS / "manifest.json").read_text(encoding="utf-8"))
SCHEMA: dict[str, Any] = json.loads((VECTORS / "manifest.schema.json").read_text(encoding="utf-8"))
NOT_VECTORS = {
    "manifest.json",
    "manifest.schema.json",
    "generate.py",
    "__init__.py",
    ".gitattributes",
}
ALL = MANIFEST["vectors"]
IDS = [v["name"] for v in ALL]


def raw(vector: dict[str, Any]) -> bytes:
    return (VECTORS / vector["file"]).read_bytes()


class NotJSON(Exception):
    """The bytes are not one RFC 8259 JSON text in UTF-8 without a BOM."""


def _reject_constant(name: str) -> Any:
    raise NotJSON(f"{name} is not JSON")


class RepeatedNames(dict[str, Any]):
    """A JSON object that had a member name more than once (the last value is kept)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    return (RepeatedNames if len(set(names)) != len(names) else dict)(pairs)


def has_repeated_names(value: Any) -> bool:
    if isinstance(value, RepeatedNames):
        return True
    if isinstance(value, dict):
        return any(has_repeated_names(v) for v in value.values())
    if isinstance(value, list):
        return any(has_repeated_names(v) for v in value)
    return False


def _number(text: str) -> float:
    """A JSON number as JSON.parse reads it: the nearest IEEE 754 double (1e400 is inf)."""
    return float(text)


def parse_json(data: bytes) -> Any:
    """Strict RFC 8259 parsing of UTF-8 bytes: no BOM, no NaN/Infinity, no trailing data.

    Every number is a float, as JSON.parse reads every number as a double (this also spares
    int() its 4300-digit limit). Objects that repeat a member name come back as RepeatedNames
    (last value kept).
    """
    try:
        text = data.decode("utf-8")  # strict: rejects surrogates, overlongs, truncations
    except UnicodeDecodeError as exc:
        raise NotJSON(str(exc)) from None
    if text.startswith("\ufeff"):
        raise NotJSON("BOM")
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            object_pairs_hook=_object,
            parse_int=_number,
            parse_float=_number,
        )
    except json.JSONDecodeError as exc:
        raise NotJSON(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# The oracle: SPEC.md §3.2 step by step, as plainly as possible.

SESSION_MEMBERS = {"id", "createdAt", "lastAccessedAt", "turns", "codexConversationId"}
TURN_MEMBERS = {"prompt", "response", "timestamp"}


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return spec.parse_timestamp(value)
    except ValueError:
        return None


def _lossy_timestamp(value: str) -> bool:
    return spec.has_sub_millisecond_digits(value)


def oracle(data: bytes, now: datetime) -> dict[str, Any]:
    # 2. cannot parse
    try:
        document = parse_json(data)
    except NotJSON:
        return {"result": "move-aside"}
    if not isinstance(document, dict):
        return {"result": "move-aside"}
    # 3. unknown version: a number (not a boolean) whose double equals 1; parse_json read
    # every number as a double, so 1.0, 10e-1 and 1.0000000000000000001 are all 1.0
    version = document.get("version")
    if type(version) is not float or version != 1.0:
        return {"result": "move-aside"}
    # 4. bad envelope
    if not isinstance(document.get("sessions"), list):
        return {"result": "move-aside"}
    # 5. records
    # 6. lossy: an unknown member at the top level, or a value dropped for a repeated name
    lossy = bool(set(document) - {"version", "sessions"}) or has_repeated_names(document)
    skips: list[str] = []
    loaded: list[dict[str, Any]] = []  # in file order
    seen_ids: set[str] = set()
    for i, record in enumerate(document["sessions"]):
        where = f"sessions[{i}]"
        if not isinstance(record, dict):
            skips.append(where)
            continue
        sid = record.get("id")
        created = _timestamp(record.get("createdAt"))
        accessed = _timestamp(record.get("lastAccessedAt"))
        cid = record.get("codexConversationId")
        if (
            not spec.is_valid_session_id(sid)
            or sid in seen_ids
            or created is None
            or accessed is None
            or not isinstance(record.get("turns"), list)
            or (cid is not None and not isinstance(cid, str))
        ):
            skips.append(where)
            continue
        seen_ids.add(sid)
        if set(record) - SESSION_MEMBERS:
            lossy = True
        for member in ("createdAt", "lastAccessedAt"):
            if _lossy_timestamp(record[member]):
                lossy = True
        contents: list[dict[str, str]] = []
        for j, item in enumerate(record["turns"]):
            moment = _timestamp(item.get("timestamp")) if isinstance(item, dict) else None
            if (
                moment is None
                or not isinstance(item.get("prompt"), str)
                or not isinstance(item.get("response"), str)
            ):
                skips.append(f"{where}.turns[{j}]")
                continue
            if set(item) - TURN_MEMBERS or _lossy_timestamp(item["timestamp"]):
                lossy = True
            contents.append(
                {
                    "prompt": item["prompt"],
                    "response": item["response"],
                    "timestamp": spec.format_timestamp(moment),
                }
            )
        loaded.append(
            {
                "id": sid,
                "turns": len(contents),
                "turnContents": contents,
                "codexConversationId": cid,
                "createdAt": spec.format_timestamp(created),
                "lastAccessedAt": spec.format_timestamp(accessed),
                "_at": accessed,
            }
        )
    # 6. lossy: any skip
    lossy = lossy or bool(skips)
    # Expired sessions are loaded, then invisible (B17); list order (B04): time descending,
    # ties in file order (sorted() is stable).
    live = [s for s in loaded if now - s["_at"] <= timedelta(hours=24)]
    live = sorted(live, key=lambda s: s["_at"], reverse=True)
    # The cap (B18) holds at load too: sessions past the 100th in list order are evicted,
    # which discards information, so the load is lossy.
    if len(live) > spec.MAX_SESSIONS:
        live, lossy = live[: spec.MAX_SESSIONS], True
    for s in live:
        del s["_at"]
    return {"result": "load", "loads": live, "skips": skips, "lossy": lossy}


def _now(vector: dict[str, Any]) -> datetime:
    return spec.parse_timestamp(vector.get("now", MANIFEST["now"]))


# ---------------------------------------------------------------------------------------------
# The manifest itself


def test_manifest_schema_is_valid_and_manifest_follows_it() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    errors = [e.message for e in Draft202012Validator(SCHEMA).iter_errors(MANIFEST)]
    assert errors == []


def test_names_and_files_are_unique() -> None:
    assert len(IDS) == len(set(IDS))
    files = [v["file"] for v in ALL]
    assert len(files) == len(set(files))


def test_every_file_is_in_the_manifest_and_exists() -> None:
    named = {v["file"] for v in ALL}
    on_disk = {
        p.relative_to(VECTORS).as_posix()
        for p in VECTORS.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name not in NOT_VECTORS
    }
    assert named == on_disk


def test_count_and_required_vectors_present() -> None:
    assert len(ALL) >= 40
    categories = {v["file"].split("/")[0] for v in ALL}
    assert categories >= {"valid", "envelope", "version", "records", "timestamps", "ids"}
    assert categories >= {"encoding", "text", "expiry", "order"}
    required = {
        "valid-empty-store",
        "valid-reference-writer-bytes",
        "valid-upstream-codex-mcp-server",
        "valid-conversation-id-null",
        "text-unicode-emoji",
        "text-newlines-quotes-backslashes",
        "text-nul-and-controls",
        "text-lone-surrogates",
        "ids-256-chars",
        "ids-257-chars",
        "ids-space",
        "ids-slash",
        "ids-empty",
        "ids-non-ascii-letter",
        "ids-trailing-newline",
        "encoding-bom",
        "encoding-invalid-utf8",
        "envelope-trailing-garbage",
        "envelope-empty-file",
        "envelope-whitespace-only",
        "envelope-top-level-array",
        "envelope-top-level-string",
        "envelope-top-level-number",
        "envelope-top-level-null",
        "envelope-sessions-missing",
        "envelope-sessions-object",
        "envelope-sessions-null",
        "envelope-sessions-string",
        "version-0",
        "version-2",
        "version-1-point-5",
        "version-string-1",
        "version-minus-1",
        "version-null",
        "version-true",
        "version-absent",
        "version-1-point-0",
        "version-100",
        "records-created-at-invalid",
        "records-last-accessed-at-invalid",
        "records-turn-timestamp-invalid",
        "records-turn-prompt-number",
        "records-turn-response-array",
        "records-turn-prompt-missing",
        "records-session-not-object",
        "records-all-sessions-invalid",
        "records-all-sessions-invalid-timestamps",
        "records-duplicate-ids",
        "records-unknown-member-top-level",
        "records-unknown-member-session",
        "records-unknown-member-turn",
        "timestamps-offset-plus-0900",
        "timestamps-offset-minus-0000",
        "timestamps-lowercase-t-z",
        "timestamps-no-zone",
        "timestamps-date-only",
        "timestamps-leap-second",
        "timestamps-year-0001",
        "timestamps-year-9999",
        "timestamps-year-0000",
        "timestamps-offset-before-year-0001",
        "timestamps-offset-after-year-9999",
        "timestamps-sub-millisecond",
        "timestamps-nanoseconds",
        "expiry-expired-invisible",
        "expiry-exactly-24h-live",
        "expiry-future-live",
        "order-out-of-order",
        "order-ties-file-order",
        "order-more-than-100-sessions",
    }
    assert required <= set(IDS)
    nulls = {f"records-{m}-null" for m in ("id", "created-at", "last-accessed-at", "turns")}
    assert nulls | {"records-session-null", "records-turn-null"} <= set(IDS)


def test_behaviours_exist() -> None:
    known = {b.id for b in spec.behaviours()}
    assert {v["behaviour"] for v in ALL} <= known


# ---------------------------------------------------------------------------------------------
# Each vector


@pytest.mark.parametrize("vector", ALL, ids=IDS)
def test_schema_verdicts(vector: dict[str, Any]) -> None:
    try:
        document = parse_json(raw(vector))
    except NotJSON:
        assert (vector["reader_valid"], vector["writer_valid"]) == (False, False)
        return
    assert spec.reader_validator().is_valid(document) is vector["reader_valid"]
    assert spec.writer_validator().is_valid(document) is vector["writer_valid"]
    if vector["writer_valid"]:
        assert vector["reader_valid"], "every writer-valid file is reader-valid"


@pytest.mark.parametrize("vector", ALL, ids=IDS)
def test_expectation_matches_the_oracle(vector: dict[str, Any]) -> None:
    expect = vector["expect"]
    got = oracle(raw(vector), _now(vector))
    assert got["result"] == expect["result"]
    if got["result"] != "load":
        assert set(expect) == {"result"}
        return
    assert [s["location"] for s in expect["skips"]] == got["skips"]
    assert expect["lossy"] is got["lossy"]
    assert len(expect["loads"]) == len(got["loads"])
    for want, have in zip(expect["loads"], got["loads"], strict=True):
        assert {k: have[k] for k in want} == want
        assert "codexConversationId" in want, "loads state the conversation id (null if absent)"
        assert len(want["turnContents"]) == want["turns"], "loads state every turn's content"


@pytest.mark.parametrize("vector", ALL, ids=IDS)
def test_reader_valid_files_load_without_skips(vector: dict[str, Any]) -> None:
    """Reader-valid means 'loads completely': no move-aside and no skips, except the two
    rules a schema cannot express: duplicate ids and instants outside years 0001-9999."""
    if not vector["reader_valid"]:
        return
    expect = vector["expect"]
    assert expect["result"] == "load"
    for skip in expect["skips"]:
        assert "duplicate" in skip["reason"] or "once converted to UTC" in skip["reason"]


def test_oracle_sanity() -> None:
    """The oracle itself on a few inline cases, so a bug in it cannot hide a bug in both."""
    now = spec.parse_timestamp("2026-01-02T00:00:00.000Z")
    ok = b'{"version":1,"sessions":[]}'
    assert oracle(ok, now) == {"result": "load", "loads": [], "skips": [], "lossy": False}
    assert oracle(b"\xef\xbb\xbf" + ok, now)["result"] == "move-aside"
    assert oracle(ok + b"x", now)["result"] == "move-aside"
    assert oracle(b'{"version":true,"sessions":[]}', now)["result"] == "move-aside"
    assert oracle(b'{"version":1.0,"sessions":[]}', now)["result"] == "load"
    for one in (b"1", b"1e0", b"10e-1", b"1.0000000000000000001", b"0.99999999999999999999"):
        assert oracle(b'{"version":%s,"sessions":[]}' % one, now)["result"] == "load"
    for other in (b"1.000001", b"1e400", b"1" + b"0" * 4999, b'"1"', b"[1]", b"null"):
        assert oracle(b'{"version":%s,"sessions":[]}' % other, now)["result"] == "move-aside"
    assert oracle(b'{"version":1,"sessions":[],"v":NaN}', now)["result"] == "move-aside"
    session = (
        b'{"version":1,"sessions":[{"id":"a","createdAt":"2026-01-01T00:00:00Z",'
        b'"lastAccessedAt":"2026-01-01T00:00:00Z","turns":[1]}]}'
    )
    got = oracle(session, now)
    assert got["skips"] == ["sessions[0].turns[0]"]
    assert got["loads"][0]["lastAccessedAt"] == "2026-01-01T00:00:00.000Z"
    assert got["lossy"] is True
    assert oracle(session, now + timedelta(milliseconds=1))["loads"] == []


# ---------------------------------------------------------------------------------------------
# Bytes


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    loader = importlib.util.spec_from_file_location("_vectors_generate", VECTORS / "generate.py")
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    module.write(tmp_path)
    made = {
        p.relative_to(tmp_path).as_posix(): p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file()
    }
    for name, data in made.items():
        assert (VECTORS / name).read_bytes() == data, name
    assert set(made) == {v["file"] for v in ALL} | {"manifest.json"}


def test_reference_writer_bytes_are_exactly_json_dumps() -> None:
    (vector,) = [v for v in ALL if v["name"] == "valid-reference-writer-bytes"]
    data = raw(vector)
    document = json.loads(data)
    assert json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") == data


def test_version_vectors_follow_json_parse() -> None:
    """B14 against the real thing: version is 1 exactly when JavaScript's JSON.parse reads a
    number equal to 1, so every version/ vector loads if and only if Node.js says so."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is needed to run JSON.parse for real")
    vectors = [v for v in ALL if v["file"].startswith("version/")]
    script = (
        "const fs = require('fs'); const out = {};"
        "for (const p of process.argv.slice(1)) {"
        "  const v = JSON.parse(fs.readFileSync(p, 'utf8')).version;"
        "  out[p] = typeof v === 'number' && v === 1; }"
        "process.stdout.write(JSON.stringify(out));"
    )
    paths = [str(VECTORS / v["file"]) for v in vectors]
    done = subprocess.run([node, "-e", script, *paths], check=True, capture_output=True, timeout=60)
    is_one = json.loads(done.stdout)
    assert {v["name"]: is_one[str(VECTORS / v["file"])] for v in vectors} == {
        v["name"]: v["expect"]["result"] == "load" for v in vectors
    }
    assert sum(is_one.values()) >= 7


def test_upstream_vector_is_exactly_what_json_stringify_writes() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is needed to run JSON.stringify for real")
    (vector,) = [v for v in ALL if v["name"] == "valid-upstream-codex-mcp-server"]
    path = VECTORS / vector["file"]
    script = (
        "const fs = require('fs'); const b = fs.readFileSync(process.argv[1]);"
        "process.stdout.write(JSON.stringify(JSON.parse(b.toString('utf8')), null, 2));"
    )
    done = subprocess.run(
        [node, "-e", script, str(path)], check=True, capture_output=True, timeout=60
    )
    assert done.stdout == path.read_bytes()
    document = json.loads(path.read_bytes())
    assert all(
        "codexConversationId" not in s or s["codexConversationId"] for s in document["sessions"]
    )
