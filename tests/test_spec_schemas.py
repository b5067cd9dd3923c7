"""The two schema profiles: valid draft 2020-12, consistent, and true to upstream's files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sessionspec import spec


@pytest.mark.parametrize(
    "schema", [spec.reader_schema(), spec.writer_schema()], ids=["reader", "writer"]
)
def test_schema_is_valid_against_the_2020_12_meta_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_stable_ids() -> None:
    assert spec.reader_schema()["$id"] == spec.READER_SCHEMA_ID
    assert spec.writer_schema()["$id"] == spec.WRITER_SCHEMA_ID


def test_reader_timestamp_pattern_is_the_one_in_spec_model() -> None:
    ts = spec.reader_schema()["$defs"]["timestamp"]
    assert ts["pattern"] == spec.model.READER_TIMESTAMP_PATTERN


def test_upstream_files_are_reader_valid(upstream_file: tuple[Path, dict[str, Any]]) -> None:
    path, facts = upstream_file
    document = json.loads(path.read_bytes())
    errors = [e.message for e in spec.reader_validator().iter_errors(document)]
    assert errors == []
    assert [s["id"] for s in document["sessions"]] == facts["ids"]
    # Upstream's own output is also what a conforming writer emits.
    assert [e.message for e in spec.writer_validator().iter_errors(document)] == []
    text = path.read_text(encoding="utf-8")
    assert "\\ud800" in text and "\\u0000" in text, "the file exercises escapes"


def test_check_jsonschema_cli_accepts_the_schema(
    upstream_file: tuple[Path, dict[str, Any]],
) -> None:
    path, _ = upstream_file
    cli = Path(sys.executable).with_name("check-jsonschema")
    if not cli.exists():
        pytest.skip("check-jsonschema is installed with the dev extra")
    for schema in ("sessions.schema.json", "sessions-writer.schema.json"):
        done = subprocess.run(
            [str(cli), "--schemafile", str(Path(spec.__file__).with_name(schema)), str(path)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-01-01T00:00:00.000Z", True),
        ("2026-01-01T09:00:00+09:00", True),
        ("2026-01-01T00:00:00.000Z\n", False),
        ("2016-12-31T23:59:60Z", False),
        ("0000-01-01T00:00:00Z", False),
        ("2026-01-01T00:00:00", False),
    ],
)
def test_reader_schema_and_parse_timestamp_agree(text: str, valid: bool) -> None:
    document = {
        "version": 1,
        "sessions": [{"id": "a", "createdAt": text, "lastAccessedAt": text, "turns": []}],
    }
    assert spec.reader_validator().is_valid(document) is valid
    try:
        spec.parse_timestamp(text)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed is valid
