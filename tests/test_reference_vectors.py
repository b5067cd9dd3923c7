"""The reference reader against every vector of sessionspec/spec/vectors/manifest.json.

Each vector runs twice: through the pure codec (``decode`` plus a ``SessionTable`` with the
vector's clock, for list order and expiry) and through a real ``FileSessionStorage`` opened on
a copy of the bytes, which must also move aside, back up and log exactly as the vector says.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from sessionspec import spec
from sessionspec.reference import FileSessionStorage
from sessionspec.reference.sessionfile import CorruptFileError, InvalidFileError, decode
from sessionspec.reference.table import SessionTable

VECTORS = Path(spec.__file__).resolve().parent / "vectors"
MANIFEST_PATH = VECTORS / "manifest.json"
if not MANIFEST_PATH.exists():  # pragma: no cover - the vectors are written in parallel
    pytest.skip(
        "sessionspec/spec/vectors/manifest.json does not exist yet", allow_module_level=True
    )
MANIFEST: dict[str, Any] = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
ALL: list[dict[str, Any]] = MANIFEST["vectors"]


def clock_of(vector: dict[str, Any]) -> spec.Clock:
    now = spec.parse_timestamp(vector.get("now", MANIFEST["now"]))
    return lambda: now


def describe(sessions: list[spec.SessionData]) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "turns": len(s.turns),
            "turnContents": [
                {
                    "prompt": t.prompt,
                    "response": t.response,
                    "timestamp": spec.format_timestamp(t.timestamp),
                }
                for t in s.turns
            ],
            "codexConversationId": s.codex_conversation_id,
            "createdAt": spec.format_timestamp(s.created_at),
            "lastAccessedAt": spec.format_timestamp(s.last_accessed_at),
        }
        for s in sessions
    ]


def expected_loads(vector: dict[str, Any], got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The vector's loads, with members it leaves out taken from what was loaded."""
    loads: list[dict[str, Any]] = vector["expect"]["loads"]
    if len(loads) != len(got):
        return loads
    return [{**g, **want} for g, want in zip(got, loads, strict=True)]


@pytest.mark.parametrize("vector", ALL, ids=[v["name"] for v in ALL])
def test_decode_reaches_the_vector_outcome(vector: dict[str, Any]) -> None:
    data = (VECTORS / vector["file"]).read_bytes()
    expect = vector["expect"]
    if expect["result"] == "move-aside":
        with pytest.raises(InvalidFileError) as caught:
            decode(data)
        # B13 (corrupt or bad envelope) and B14 (version) are distinct errors.
        assert isinstance(caught.value, CorruptFileError) == (vector["behaviour"] == "B13")
        return
    decoded = decode(data)
    table = SessionTable(decoded.sessions, clock=clock_of(vector))
    got = describe(table.live_sessions())
    assert got == expected_loads(vector, got)
    assert [s.location for s in decoded.skipped] == [s["location"] for s in expect["skips"]]
    assert (decoded.lossy or bool(table.evicted_at_load)) == expect["lossy"]


@pytest.mark.parametrize("vector", ALL, ids=[v["name"] for v in ALL])
def test_file_storage_opens_the_vector(
    vector: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = (VECTORS / vector["file"]).read_bytes()
    path = tmp_path / "sessions.json"
    path.write_bytes(data)
    expect = vector["expect"]
    caplog.set_level(logging.WARNING, logger="reference")
    with FileSessionStorage(path, clock=clock_of(vector)) as storage:
        sessions = storage.list_sessions()
    backups = sorted(tmp_path.glob("sessions.json.*.bak"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    if expect["result"] == "move-aside":
        assert sessions == []
        assert not path.exists()
        assert len(backups) == 1 and backups[0].read_bytes() == data
        assert any(str(backups[0]) in w for w in warnings)
        return
    got = describe(sessions)
    assert got == expected_loads(vector, got)
    for skip in expect["skips"]:
        assert any(skip["location"] + ":" in w for w in warnings), skip
    # Opening and closing without a mutation writes nothing (B11): the file is as it was.
    assert path.read_bytes() == data
    if expect["lossy"]:
        assert len(backups) == 1 and backups[0].read_bytes() == data
        assert any(str(backups[0]) in w for w in warnings)
    else:
        assert backups == []
