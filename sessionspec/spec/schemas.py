"""The JSON Schemas of the sessions file: reader and writer profiles (SPEC.md, "File format")."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import Draft202012Validator

READER_SCHEMA_ID: Final = "urn:sessionspec:schema:sessions:v1"
WRITER_SCHEMA_ID: Final = "urn:sessionspec:schema:sessions:v1:writer"


def _load(name: str) -> dict[str, Any]:
    text = resources.files("sessionspec.spec").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def reader_schema() -> dict[str, Any]:
    """sessionspec/spec/sessions.schema.json: what a v1 reader loads completely."""
    return _load("sessions.schema.json")


@cache
def writer_schema() -> dict[str, Any]:
    """sessionspec/spec/sessions-writer.schema.json: what a conforming v1 writer emits."""
    return _load("sessions-writer.schema.json")


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    # Formats are assertions here: "date-time" must really be checked, not just annotated.
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def reader_validator() -> Draft202012Validator:
    return _validator(reader_schema())


@cache
def writer_validator() -> Draft202012Validator:
    return _validator(writer_schema())
