"""The conformance kit: its three ways in, its levels, its report and its attribution."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from faults.core import UppercaseIds
from faulty_backends import undeclared_factory
from independent_backend import IndependentFileStorage, IndependentMemoryStorage

from sessionspec.conformance import Status, verify
from sessionspec.conformance.checks_vectors import manifest
from sessionspec.conformance.cli import main
from sessionspec.conformance.errors import LevelsError
from sessionspec.conformance.registry import all_checks
from sessionspec.conformance.report import validate_report
from sessionspec.spec import Level, behaviours

ROOT = Path(__file__).resolve().parent.parent
INDEPENDENT = "tests/independent_backend.py:IndependentFileStorage"
ALL_IDS = [b.id for b in behaviours()]


def test_independent_backend_passes_every_behaviour() -> None:
    report = verify(IndependentFileStorage)
    failures = {k: [c.message for c in r.failures] for k, r in report.results.items() if r.failures}
    assert failures == {}
    # It was written from spec 1.1 and claims file-v1, not shared: the shared level's
    # behaviours (B25-B30) are N/A, never PASS, and do not fail the gate.
    shared = {b.id for b in behaviours() if b.level is Level.SHARED}
    assert shared == {f"B{n}" for n in range(25, 31)}
    assert {k: r.status for k, r in report.results.items()} == {
        k: Status.NA if k in shared else Status.PASS for k in ALL_IDS
    }
    assert report.exit_code == 0
    assert report.levels == ["core", "durable", "file-v1"]


def test_cli_verifies_independent_backend_in_a_subprocess(tmp_path: Path) -> None:
    paths = {kind: tmp_path / f"report.{kind}" for kind in ("json", "junit", "markdown")}
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "verify", INDEPENDENT, "--profile", "smoke",
         "-q", "--json", str(paths["json"]), "--junit", str(paths["junit"]),
         "--markdown", str(paths["markdown"])],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    validate_report(data)
    assert data["ok"] is True
    shared = sum(b.level is Level.SHARED for b in behaviours())  # not claimed: N/A
    assert data["counts"] == {
        "PASS": len(ALL_IDS) - shared, "FAIL": 0, "N/A": shared, "SKIP": 0, "XFAIL": 0, "XPASS": 0
    }  # fmt: skip
    suite = ElementTree.parse(paths["junit"]).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests", "0")) > len(ALL_IDS)
    assert "| B22 flush-failure | file-v1 | **PASS** |" in paths["markdown"].read_text()


def test_memory_only_backend_passes_core_and_the_rest_is_not_applicable() -> None:
    report = verify(IndependentMemoryStorage, profile="smoke")
    for item in behaviours():
        expected = Status.PASS if item.level is Level.CORE else Status.NA
        assert report.results[item.id].status is expected, item.id
    assert report.exit_code == 0


def test_undeclared_factory_is_an_error_naming_the_attribute_and_the_option() -> None:
    with pytest.raises(LevelsError, match=r"sessionspec_levels.*--level"):
        verify(undeclared_factory, profile="smoke", only=["B07"])
    report = verify(undeclared_factory, levels=["core"], profile="smoke", only=["B07", "B09"])
    assert report.levels == ["core"]
    assert report.levels_source == "given with --level"
    assert report.results["B07"].status is Status.PASS
    assert report.results["B09"].status is Status.NA
    assert report.results["B01"].status is Status.SKIP


def test_level_override_replaces_the_declaration() -> None:
    report = verify(
        IndependentFileStorage, levels=["durable"], profile="smoke", only=["B09", "B10"]
    )
    assert report.levels == ["core", "durable"]
    assert report.results["B09"].status is Status.PASS
    assert report.results["B10"].status is Status.NA


def test_machine_failure_report_is_schema_valid_with_program_and_replay() -> None:
    report = verify(UppercaseIds, profile="smoke", only=["B01"])
    validate_report(report.to_dict())
    assert report.results["B01"].status is Status.FAIL
    assert report.exit_code == 1
    machine = [c for c in report.results["B01"].failures if c.name == "state_machine"]
    assert machine, [c.check for c in report.results["B01"].checks]
    assert "m.create()" in (machine[0].program or "")
    assert "--profile smoke" in (machine[0].replay or "")
    assert "m.create()" in (machine[0].replay_script or "")
    assert machine[0].diff, "a structural difference, not a dump"


def test_every_check_names_exactly_one_behaviour_and_every_behaviour_has_checks() -> None:
    checks = all_checks()
    assert sorted({c.behaviour.id for c in checks}) == ALL_IDS
    for check in checks:
        assert re.fullmatch(rf"{check.behaviour.id}-{check.behaviour.slug}::\S+", check.node_id)
    found = manifest()
    assert found is not None
    vectors = [c for c in checks if c.name.startswith("vector[")]
    assert len(vectors) == len(found[1]["vectors"])


def test_catalogue_subcommand_prints_every_behaviour(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalogue"]) == 0
    out = capsys.readouterr().out
    for item in behaviours():
        assert item.id in out


def test_unloadable_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "no_such_module_here:factory"]) == 2
    assert "cannot import" in capsys.readouterr().out


def _pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_pytest_plugin_adds_one_item_per_check_named_by_behaviour(tmp_path: Path) -> None:
    target = str(ROOT / "tests" / "independent_backend.py") + ":IndependentFileStorage"
    done = _pytest(
        str(tmp_path), "--sessionspec-backend", target, "--sessionspec-profile", "smoke",
        "-k", "B07 or B13", "-v", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "B07-ensure-session::touches_existing PASSED" in done.stdout
    assert "B13-corrupt-file-backup::moved_aside_not_json PASSED" in done.stdout
    assert "B01-create-session" not in done.stdout


def test_pytest_plugin_marks_unclaimed_levels_skipped(tmp_path: Path) -> None:
    target = str(ROOT / "tests" / "independent_backend.py") + ":IndependentMemoryStorage"
    done = _pytest(str(tmp_path), "--sessionspec-backend", target, "-k", "B11", "-rs", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "N/A: level file-v1 not claimed" in done.stdout


def test_pytest_plugin_is_inert_without_the_option(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    done = _pytest(str(tmp_path), "--collect-only", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "B0" not in done.stdout and "1 test collected" in done.stdout


def test_check_order_does_not_depend_on_import_order() -> None:
    # A process that imported some check modules first (a test importing one directly) once
    # listed their checks first: pytest node ids and reports then differed between processes.
    code = (
        "import sessionspec.conformance.checks_crash, sessionspec.conformance.checks_injected\n"
        "from sessionspec.conformance.registry import all_checks\n"
        "print('\\n'.join(c.node_id for c in all_checks()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split("\n")[:-1] == [c.node_id for c in all_checks()]
