"""The terminal report stays readable in a narrow terminal: one line per behaviour, its status
on the line of its ID, nothing wider than the console (report.py ``Report.print``)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from sessionspec.conformance.report import (
    WIDE_TABLE_COLUMNS,
    BehaviourResult,
    CheckResult,
    Report,
    Status,
)
from sessionspec.spec import behaviours

STATUSES = [Status.PASS, Status.FAIL, Status.NA, Status.SKIP]


def _report() -> Report:
    """Every behaviour of the catalogue, every status, a long target and one failure."""
    results = {}
    for index, item in enumerate(behaviours()):
        status = STATUSES[index % len(STATUSES)]
        checks = []
        if status in (Status.PASS, Status.FAIL):
            node = f"{item.id}-{item.slug}::check"
            checks = [CheckResult(node, "check", Status.PASS, "fine")] * 11
            if status is Status.FAIL:
                checks.append(
                    CheckResult(node, "check", Status.FAIL, "went wrong " * 20, "x" * 150, "y")
                )
        results[item.id] = BehaviourResult(
            item.id, item.slug, item.title, item.level.value, item.rule, status, checks
        )
    return Report(
        target="some/rather/long/path/to/a/backend/module/of/the/user/backend.py:BackendFactory",
        levels=["core", "durable", "file-v1"],
        levels_source="declared by the factory (sessionspec_levels)",
        profile="ci",
        seed=12345,
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=12.5,
        results=results,
        notes=["a note that is long enough to need more than one line at eighty columns " * 2],
        versions={"spec": "1.1", "kit": "0.2.0", "vectors": "1.1.0"},
    )


def _render(report: Report, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    report.print(console)
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, WIDE_TABLE_COLUMNS - 1, WIDE_TABLE_COLUMNS, 120, 160])
def test_one_line_per_behaviour_with_its_status_and_nothing_wider_than_the_console(
    width: int,
) -> None:
    report = _report()
    lines = _render(report, width)
    too_long = [line for line in lines if len(line) > width]
    assert too_long == []
    for result in report.results.values():
        row = re.compile(
            rf"^\s*{result.id} {re.escape(result.slug)}\s+{re.escape(result.level)}\s+"
            rf"{re.escape(result.status.value)}(\s|$)"
        )
        matching = [line for line in lines if row.match(line)]
        assert len(matching) == 1, (result.id, lines)
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("B01 "))
    last = next(i for i, line in enumerate(lines) if line.strip().startswith("B33 "))
    assert last - first == len(report.results) - 1  # no row takes a second line


def test_narrow_table_leaves_out_the_title_and_a_wide_one_shows_it_cut_to_fit() -> None:
    report = _report()
    narrow = _render(report, 80)
    wide = _render(report, 120)
    b01 = report.results["B01"]
    assert not any("title" in line.split() for line in narrow)
    assert any("title" in line.split() for line in wide)
    assert any(b01.title in line for line in wide)
    b24 = report.results["B24"]  # the longest title is cut with an ellipsis, not wrapped
    row = next(line for line in wide if line.strip().startswith("B24 "))
    assert b24.title not in row and "…" in row


@pytest.mark.parametrize("width", [80, 120])
def test_header_names_target_versions_and_levels(width: int) -> None:
    text = "\n".join(_render(_report(), width))
    assert "sessionspec conformance: " in text
    assert "versions: kit 0.2.0, spec 1.1, vectors 1.1.0" in text
    assert "levels: core, durable, file-v1" in text
    assert "profile ci; seed 12345" in text
    assert "verdict: FAIL" in text
