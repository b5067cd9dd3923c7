"""The kit inside pytest: the plugin (``--sessionspec-backend``) and ``BackendTests``.

Every test runs a real pytest in a subprocess (``pytester.runpytest_subprocess``), as a
backend author would, on the in-memory reference backend or a one-fault variant of it written
next to the test, and reads what that pytest printed and returned.
"""

from __future__ import annotations

import re

import pytest

from sessionspec.conformance.registry import all_checks
from sessionspec.spec import Level

pytest_plugins = ("pytester",)

REFERENCE = "sessionspec.reference:InMemorySessionStorage"
KIT = f"sessionspec[{REFERENCE}]"
CHECKS = all_checks()
CORE_CHECKS = [c for c in CHECKS if c.behaviour.level is Level.CORE and c.requires is Level.CORE]
B01 = [c.node_id for c in CHECKS if c.behaviour.id == "B01"]
B07 = [c.node_id for c in CHECKS if c.behaviour.id == "B07"]

#: One fault: create_session returns an uppercase UUID (B01 says lowercase). It registers
#: the id with ensure_session, so every other behaviour still sees a working store.
BACKENDS = '''
import time
import uuid

from sessionspec.reference import InMemorySessionStorage


class UpperIds(InMemorySessionStorage):
    def create_session(self):
        session_id = str(uuid.uuid4()).upper()
        self.ensure_session(session_id)
        return session_id


class NoLevels:
    """Declares no sessionspec_levels."""

    def __init__(self, path, *, clock):
        pass


class Broken(InMemorySessionStorage):
    def __init__(self, path, *, clock):
        raise RuntimeError("cannot open the database")


class Hangs(InMemorySessionStorage):
    def reset_session(self, session_id):
        time.sleep(3600)
'''

TIMEOUT = 300


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A backend author's folder with ``backends.py``; wide, non-CI output, so summary lines
    keep their messages unless the plugin drops them."""
    pytester.makepyfile(backends=BACKENDS)
    monkeypatch.setenv("COLUMNS", "300")
    for name in ("CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def _run(project: pytest.Pytester, *args: str, plugin: bool = True) -> pytest.RunResult:
    """pytest in a subprocess, in ``project``, with the kit's quick profile unless ``plugin``
    is off (pytest would not know the option)."""
    options = ("--sessionspec-profile", "smoke") if plugin else ("-p", "no:sessionspec")
    return project.runpytest_subprocess("-p", "no:cacheprovider", *options, *args, timeout=TIMEOUT)


def _summary(result: pytest.RunResult) -> list[str]:
    """The lines of pytest's short test summary."""
    lines = result.outlines
    starts = [i for i, line in enumerate(lines) if "short test summary info" in line]
    assert starts, result.stdout.str()
    return [line for line in lines[starts[-1] + 1 :] if not line.startswith("=")]


# -- collection ---------------------------------------------------------------------------


def test_every_check_is_collected_under_the_targets_node_id(project: pytest.Pytester) -> None:
    result = _run(project, "--sessionspec-backend", REFERENCE, "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    ids = [line for line in result.outlines if line.startswith("sessionspec[")]
    assert ids == [f"{KIT}::{check.node_id}" for check in CHECKS]
    result.stdout.fnmatch_lines([f"{len(CHECKS)} tests collected*"])


def test_the_header_counts_the_kit_and_the_users_tests_honestly(project: pytest.Pytester) -> None:
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = _run(project, "--sessionspec-backend", REFERENCE, "-k", "B07 or test_mine")
    assert result.ret == 0, result.stdout.str()
    total = len(CHECKS) + 1
    selected = len(B07) + 1
    result.stdout.fnmatch_lines(
        [f"collected {total} items / {total - selected} deselected / {selected} selected"]
    )
    result.assert_outcomes(passed=selected, deselected=total - selected)


def test_a_node_id_or_a_behaviour_reruns_just_that(project: pytest.Pytester) -> None:
    one = f"{KIT}::{B07[-1]}"
    result = _run(
        project, "--sessionspec-backend", REFERENCE, one, f"{KIT}::B01-create-session", "-v"
    )
    assert result.ret == 0, result.stdout.str()
    expected = len(B01) + 1
    result.stdout.fnmatch_lines([f"*collected {expected} items"])
    ran = re.findall(r"^(\S+) PASSED", result.stdout.str(), re.MULTILINE)
    assert sorted(ran) == sorted([one, *(f"{KIT}::{node_id}" for node_id in B01)])


def test_a_node_id_the_kit_does_not_have_is_a_usage_error(project: pytest.Pytester) -> None:
    result = _run(project, "--sessionspec-backend", REFERENCE, f"{KIT}::B07-ensure-session::nope")
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    assert f"not found: {KIT}::B07-ensure-session::nope" in result.stderr.str()
    other = _run(project, "--sessionspec-backend", REFERENCE, "sessionspec[other:Thing]::B07")
    assert other.ret == 4
    assert "not as sessionspec[other:Thing]" in other.stderr.str()


def test_deselect_and_exitfirst_count_the_kits_checks(project: pytest.Pytester) -> None:
    gone = f"{KIT}::{B07[0]}"
    result = _run(project, "--sessionspec-backend", REFERENCE, "-k", "B07", "--deselect", gone)
    assert result.ret == 0, result.stdout.str()
    total = len(CHECKS)
    kept = len(B07) - 1
    result.stdout.fnmatch_lines([f"collected {total} items / {total - kept} deselected*"])
    result.assert_outcomes(passed=kept, deselected=total - kept)

    first = _run(project, "--sessionspec-backend", "backends.py:UpperIds", "-x")
    assert first.ret == 1, first.stdout.str()
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_plugin_is_inert_without_the_option(project: pytest.Pytester) -> None:
    project.makepyfile(test_one="def test_one():\n    pass\n")
    result = _run(project, "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    assert "sessionspec[" not in result.stdout.str()
    assert "B0" not in result.stdout.str()
    result.stdout.fnmatch_lines(["1 test collected*"])


# -- results ------------------------------------------------------------------------------


def test_unclaimed_levels_are_skipped_with_the_reason(project: pytest.Pytester) -> None:
    result = _run(project, "--sessionspec-backend", REFERENCE, "-k", "B11", "-rs")
    assert result.ret == 0, result.stdout.str()
    b11 = [c for c in CHECKS if c.behaviour.id == "B11"]
    result.assert_outcomes(skipped=len(b11), deselected=len(CHECKS) - len(b11))
    # Located at the kit's run, not at the kit's line that skipped them.
    assert f"SKIPPED [{len(b11)}] {KIT}: N/A: level file-v1 not claimed" in result.outlines


def test_a_failure_summary_line_says_why_and_the_long_report_has_the_rule(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = "backends.py:UpperIds"
    kit = f"sessionspec[{target}]"
    result = _run(project, "--sessionspec-backend", target, "-k", "B01")
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(failed=len(B01), deselected=len(CHECKS) - len(B01))
    summary = _summary(result)
    assert f"FAILED {kit}::B01-create-session::fresh_uuid4_each_time - not a canonical UUID4" in (
        summary
    )
    assert all("MUST" not in line and "rule" not in line for line in summary), summary
    out = result.stdout.str()
    assert "rule of B01 create-session (core):" in out
    assert "create_session() MUST return a new canonical UUID version 4 string" in out
    assert "Traceback" not in out

    # On CI pytest prints a plain-text report whole in the summary: the kit's is one line.
    monkeypatch.setenv("CI", "true")
    ci = _run(project, "--sessionspec-backend", target, "-k", "fresh_uuid4_each_time")
    assert _summary(ci) == [
        f"FAILED {kit}::B01-create-session::fresh_uuid4_each_time - not a canonical UUID4"
    ]


def test_a_broken_backend_fails_exactly_its_behaviour(project: pytest.Pytester) -> None:
    result = _run(project, "--sessionspec-backend", "backends.py:UpperIds", "-q", "-rf")
    assert result.ret == 1, result.stdout.str()
    failed = sorted(re.findall(r"^FAILED sessionspec\[[^]]+\]::(\S+)", result.stdout.str(), re.M))
    assert failed == sorted(B01)


def test_a_hung_call_fails_its_check_and_stops_the_session(project: pytest.Pytester) -> None:
    result = _run(
        project, "--sessionspec-backend", "backends.py:Hangs", "--sessionspec-step-timeout", "1",
        "-k", "B03",
    )  # fmt: skip
    assert result.ret == 1, result.stdout.str()
    b03 = [c for c in CHECKS if c.behaviour.id == "B03"]
    assert len(b03) > 1
    # The first check of B03 hangs; the session ran no test after it.
    result.assert_outcomes(failed=1, deselected=len(CHECKS) - len(b03))
    summary = _summary(result)
    assert summary[0].startswith("FAILED sessionspec[backends.py:Hangs]::B03-reset-session::")
    assert "hung: Hangs.reset_session() did not return within 1 s" in summary[0]
    assert any(
        line.startswith("!") and "sessionspec: Hangs.reset_session() hung in B03" in line
        for line in result.outlines
    ), result.stdout.str()


# -- kit errors ---------------------------------------------------------------------------


def test_a_target_that_does_not_import_is_one_error_line(project: pytest.Pytester) -> None:
    project.makepyfile(badimport="import nonexistent_dependency_xyz\n")
    result = _run(project, "--sessionspec-backend", "badimport.py:Storage")
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    assert err.startswith("ERROR: --sessionspec-backend badimport.py:Storage: importing")
    assert "No module named 'nonexistent_dependency_xyz'" in err
    everything = result.stdout.str() + err
    assert "Traceback" not in everything and "INTERNALERROR" not in everything

    verbose = _run(project, "--sessionspec-backend", "badimport.py:Storage", "-v")
    assert verbose.ret == 4
    assert "Traceback (most recent call last)" in verbose.stderr.str()
    assert "INTERNALERROR" not in verbose.stdout.str() + verbose.stderr.str()


def test_undeclared_levels_are_a_usage_error(project: pytest.Pytester) -> None:
    result = _run(project, "--sessionspec-backend", "backends.py:NoLevels")
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    assert "NoLevels declares no levels" in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    given = _run(
        project, "--sessionspec-backend", "backends.py:NoLevels", "--sessionspec-level", "core",
        "--collect-only", "-q",
    )  # fmt: skip
    assert given.ret == 0, given.stdout.str() + given.stderr.str()


def test_a_backend_that_fails_the_preflight_is_one_error_not_a_failure_per_check(
    project: pytest.Pytester,
) -> None:
    result = _run(project, "--sessionspec-backend", "backends.py:Broken")
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    assert err.count("ERROR: ") == 1
    assert "preflight" in err and "RuntimeError: cannot open the database" in err
    assert "FAILED" not in result.stdout.str() and "INTERNALERROR" not in err
    result.assert_outcomes()  # nothing ran

    # Collecting runs no backend, so it does not need a working one.
    collected = _run(project, "--sessionspec-backend", "backends.py:Broken", "--collect-only")
    assert collected.ret == 0, collected.stdout.str() + collected.stderr.str()


# -- BackendTests ---------------------------------------------------------------------------

TEST_CLASSES = """
from sessionspec.conformance.testing import BackendTests
from sessionspec.reference import InMemorySessionStorage

from backends import UpperIds


class TestReference(BackendTests):
    factory = staticmethod(InMemorySessionStorage)
    profile = "smoke"


class TestUpperIds(BackendTests):
    factory = staticmethod(UpperIds)
    levels = ("core",)
    profile = "smoke"
"""


def test_backend_tests_pass_on_the_reference(project: pytest.Pytester) -> None:
    project.makepyfile(test_backend=TEST_CLASSES)
    result = _run(project, "-k", "TestReference", "-rs")
    assert result.ret == 0, result.stdout.str()
    # One test per check: the core ones pass, the others are N/A for a core backend.
    result.assert_outcomes(
        passed=len(CORE_CHECKS),
        skipped=len(CHECKS) - len(CORE_CHECKS),
        deselected=len(CHECKS),
    )
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]*[]] test_backend.py:*: N/A: level durable not claimed"]
    )


def test_backend_tests_fail_exactly_the_broken_behaviour(project: pytest.Pytester) -> None:
    project.makepyfile(test_backend=TEST_CLASSES)
    result = _run(project, "-k", "TestUpperIds")
    assert result.ret == 1, result.stdout.str()
    failed = re.findall(r"^FAILED test_backend\.py::(\S+)", result.stdout.str(), re.MULTILINE)
    assert sorted(failed) == sorted(f"TestUpperIds::test_conformance[{n}]" for n in B01)
    assert (
        "FAILED test_backend.py::TestUpperIds::test_conformance"
        "[B01-create-session::fresh_uuid4_each_time] - not a canonical UUID4"
    ) in _summary(result)
    assert "rule of B01 create-session (core):" in result.stdout.str()


def test_backend_tests_are_named_after_the_behaviour(project: pytest.Pytester) -> None:
    project.makepyfile(test_backend=TEST_CLASSES)
    result = _run(project, "-k", "TestReference and B07", "-v")
    assert result.ret == 0, result.stdout.str()
    ran = re.findall(r"^(\S+) PASSED", result.stdout.str(), re.MULTILINE)
    assert sorted(ran) == sorted(
        f"test_backend.py::TestReference::test_conformance[{node_id}]" for node_id in B07
    )


def test_backend_tests_work_without_the_plugin(project: pytest.Pytester) -> None:
    project.makepyfile(test_backend=TEST_CLASSES)
    result = _run(project, "-k", "UpperIds and B01", "-rf", plugin=False)
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(failed=len(B01), deselected=2 * len(CHECKS) - len(B01))
    # pytest's own rendering of the failure: the first line still says why.
    assert any(line.endswith("- Failed: not a canonical UUID4") for line in _summary(result))


def test_backend_tests_without_levels_or_factory_are_one_clear_error_each(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_backend="""
from sessionspec.conformance.testing import BackendTests

from backends import Broken, NoLevels


class TestNoLevels(BackendTests):
    factory = staticmethod(NoLevels)


class TestNoFactory(BackendTests):
    pass


class TestBroken(BackendTests):
    factory = staticmethod(Broken)
    levels = ("core",)
"""
    )
    result = _run(project)
    assert result.ret == 2, result.stdout.str()  # pytest's collection error
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    assert "TestNoLevels: NoLevels declares no levels: set sessionspec_levels" in out
    assert "TestNoFactory: set the backend factory, e.g. factory = staticmethod(" in out
    assert "TestBroken: preflight: factory(path, clock=clock) raised RuntimeError" in out
    # The backend's traceback is part of the preflight message; none of the kit's or pytest's.
    assert "pytest_generate_tests" not in out and "_verification" not in out
