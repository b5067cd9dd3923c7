"""Three versions travel with every verdict: the spec's, the kit's and the vectors'
(``sessionspec.versions()``), in the JSON report (validated against report.schema.json), the
Markdown and terminal headers, JUnit properties and pytest's header."""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest
from independent_backend import IndependentMemoryStorage
from rich.console import Console

import sessionspec
from sessionspec.conformance import verify
from sessionspec.conformance.report import (
    REPORT_SCHEMA_ID,
    Report,
    report_schema,
    validate_report,
)
from sessionspec.spec import SPEC_VERSION
from sessionspec.spec.vectors import generate

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads(
    resources.files("sessionspec.spec").joinpath("vectors", "manifest.json").read_text("utf-8")
)


@pytest.fixture(scope="module")
def report() -> Report:
    return verify(IndependentMemoryStorage, profile="smoke", only=["B07", "B09"])


def test_versions_names_spec_kit_and_vectors() -> None:
    assert sessionspec.versions() == {
        "spec": SPEC_VERSION,
        "kit": metadata.version("sessionspec"),
        "vectors": MANIFEST["vectors_version"],
    }
    assert sessionspec.__version__ == metadata.version("sessionspec")


def test_vectors_version_follows_the_spec_and_the_generator() -> None:
    assert MANIFEST["vectors_version"] == generate.VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", generate.VERSION)
    assert generate.VERSION.rsplit(".", 1)[0] == SPEC_VERSION


def test_version_line_is_one_line_with_all_three() -> None:
    found = sessionspec.versions()
    line = sessionspec.version_line()
    assert line == (
        f"sessionspec {found['kit']} (spec {found['spec']}, vectors {found['vectors']})"
    )
    assert "\n" not in line


def test_import_sessionspec_stays_cheap() -> None:
    code = (
        "import sys, sessionspec; "
        "print(sorted(m for m in sys.modules if m.startswith('sessionspec.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_json_report_carries_the_versions_and_follows_the_shipped_schema(report: Report) -> None:
    data = json.loads(report.to_json())
    assert data["versions"] == sessionspec.versions()
    assert data["$schema"] == REPORT_SCHEMA_ID == "urn:sessionspec:schema:conformance-report:v1"
    validate_report(data)
    shipped = resources.files("sessionspec.conformance").joinpath("report.schema.json")
    schema = json.loads(shipped.read_text("utf-8"))
    assert schema == report_schema() and schema["$id"] == REPORT_SCHEMA_ID
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "versions" in schema["required"]


@pytest.mark.parametrize("key", ["spec", "kit", "vectors"])
def test_schema_requires_every_version(report: Report, key: str) -> None:
    data = report.to_dict()
    without = copy.deepcopy(data)
    del without["versions"][key]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(without)
    del without["versions"]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(without)


def test_markdown_and_terminal_headers_show_the_versions(report: Report) -> None:
    expected = "kit {kit}, spec {spec}, vectors {vectors}".format(**sessionspec.versions())
    head = report.to_markdown().splitlines()[:4]
    assert f"Versions: {expected}." in head
    console = Console(width=80, record=True, file=io.StringIO())
    report.print(console)
    assert f"versions: {expected}" in console.export_text().splitlines()[:5]


def test_junit_report_has_the_versions_as_testsuite_properties(report: Report) -> None:
    suite = ElementTree.fromstring(report.to_junit().split("\n", 1)[1])
    assert suite.tag == "testsuite" and suite[0].tag == "properties"
    properties = {p.get("name"): p.get("value") for p in suite[0]}
    for key, value in sessionspec.versions().items():
        assert properties[f"sessionspec.{key}"] == value
    assert properties["sessionspec.profile"] == "smoke"


def test_cli_reports_validate_and_name_the_versions(tmp_path: Path) -> None:
    paths = {kind: tmp_path / f"report.{kind}" for kind in ("json", "junit", "markdown")}
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "verify",
         "tests/independent_backend.py:IndependentMemoryStorage", "--profile", "smoke",
         "--only", "B07", "-q", "--json", str(paths["json"]), "--junit", str(paths["junit"]),
         "--markdown", str(paths["markdown"])],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    validate_report(data)
    assert data["versions"] == sessionspec.versions()
    assert "versions: kit " in done.stdout
    assert "Versions: kit " in paths["markdown"].read_text(encoding="utf-8")
    suite = ElementTree.parse(paths["junit"]).getroot()
    assert suite.find("properties/property[@name='sessionspec.vectors']") is not None


def test_pytest_plugin_header_names_the_versions(tmp_path: Path) -> None:
    target = str(ROOT / "tests" / "independent_backend.py") + ":IndependentMemoryStorage"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         str(tmp_path), "--sessionspec-backend", target, "--sessionspec-profile", "smoke",
         "-k", "B07"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert sessionspec.version_line() in done.stdout
    assert "versions: kit " in done.stdout


def test_pytest_plugin_reports_an_unloadable_target_as_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         str(tmp_path), "--sessionspec-backend", "no_such_backend_xyz:Factory"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    assert "cannot import module 'no_such_backend_xyz'" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_sessionspec_version_prints_all_three_versions() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = sessionspec.versions()
    assert done.stdout.strip() == (
        f"sessionspec {found['kit']} (spec {found['spec']}, vectors {found['vectors']})"
    )
    assert "0+unknown" not in done.stdout
