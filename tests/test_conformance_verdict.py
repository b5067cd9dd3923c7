"""The exit status of a report: only verified behaviours of the claimed levels count as passing."""

from __future__ import annotations

from sessionspec.conformance.report import BehaviourResult, CheckResult, Report, Status


def _report(*results: BehaviourResult) -> Report:
    return Report(
        target="t:f",
        levels=["core"],
        levels_source="test",
        profile="ci",
        seed=None,
        started_at="2026-01-01T00:00:00Z",
        duration_s=0.0,
        results={r.id: r for r in results},
    )


def _result(bid: str, status: Status, checks: list[CheckResult] | None = None) -> BehaviourResult:
    return BehaviourResult(bid, "slug", "title", "core", "rule", status, checks or [])


def test_pass_and_not_applicable_exit_zero() -> None:
    report = _report(_result("B01", Status.PASS), _result("B09", Status.NA))
    assert report.ok and report.exit_code == 0


def test_behaviour_left_out_by_only_does_not_fail_the_run() -> None:
    assert _report(_result("B01", Status.PASS), _result("B02", Status.SKIP)).exit_code == 0


def test_selected_behaviour_that_nothing_verified_fails_the_run() -> None:
    unverified = _result("B19", Status.SKIP, [CheckResult("B19::x", "x", Status.SKIP)])
    assert _report(_result("B01", Status.PASS), unverified).exit_code == 1


def test_any_failure_fails_the_run() -> None:
    assert _report(_result("B01", Status.FAIL)).exit_code == 1
