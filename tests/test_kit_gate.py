"""The kit as a CI gate: never silent, never hung, one clear error when it cannot judge, the
same report on every run, and FAILs that replay.

Each test runs the real ``sessionspec`` command in a child process (as a CI job would), from
tests/ so the ``module:attr`` TARGETs below resolve.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
#: A hang guard for the child processes, far above what any of these runs needs.
GUARD_SECONDS = 300


def sessionspec(*args: str, cwd: Path = TESTS, timeout: float = GUARD_SECONDS) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "sessionspec", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "100"},
    )


def test_no_declared_levels_exits_2_naming_the_attribute_and_the_option() -> None:
    done = sessionspec("verify", "faulty_backends:undeclared_factory")
    assert done.returncode == 2, done.stdout
    assert "sessionspec_levels" in done.stdout and "--level" in done.stdout
    assert "FAIL" not in done.stdout


def test_only_selecting_unclaimed_behaviours_exits_2() -> None:
    done = sessionspec("verify", "independent_backend:IndependentMemoryStorage", "--only", "B13")
    assert done.returncode == 2, done.stdout
    assert "selects nothing this backend claims" in done.stdout
    assert "file-v1" in done.stdout


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("faulty_backends:wrong_signature", "unexpected keyword argument 'clock'"),
        ("faulty_backends:InitRaises", "cannot connect to the session store"),
        ("faulty_backends:path_cannot_open", "NotADirectoryError"),
    ],
)
def test_a_backend_that_cannot_start_is_one_preflight_error_exit_2(target: str, says: str) -> None:
    done = sessionspec("verify", target, "--level", "file-v1")
    assert done.returncode == 2, done.stdout
    assert "preflight" in done.stdout
    assert says in done.stdout
    assert "Traceback" in done.stdout  # the traceback, once
    assert done.stdout.count(says) <= 2  # the message and its traceback line, not 50 FAILs
    assert "FAIL" not in done.stdout and "verdict" not in done.stdout


def test_a_target_with_a_syntax_error_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken_backend.py").write_text("def factory(path, *, clock:\n    pass\n")
    done = sessionspec("verify", "broken_backend:factory", cwd=tmp_path)
    assert done.returncode == 2
    assert "syntax error" in done.stdout and "broken_backend.py" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_hung_call_is_a_fail_naming_it_and_the_run_ends(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    start = time.monotonic()
    done = sessionspec(
        "verify",
        "faulty_backends:FlushHangsOnceUsed",
        "--step-timeout",
        "2",
        "--json",
        str(report_path),
    )
    took = time.monotonic() - start
    assert done.returncode == 1, done.stdout
    assert "did not return within 2 s (the step timeout)" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["ok"] is False and "hung" in report["stopped"]
    failed = [
        check for result in report["results"] for check in result["checks"]
        if check["status"] == "FAIL"
    ]  # fmt: skip
    # The first check to close a used instance hangs; the call is named, with the stack
    # down to the backend's flush() where it waits.
    assert len(failed) == 1, failed
    assert failed[0]["message"].startswith("hung: IndependentFileStorage.close()")
    assert "faulty_backends.py" in failed[0]["actual"] and " in flush" in failed[0]["actual"]
    not_run = [
        check for result in report["results"] for check in result["checks"]
        if check["status"] == "SKIP" and check["message"].startswith("not run:")
    ]  # fmt: skip
    assert not_run, "the checks after the hang are reported as not run"
    print(f"hung flush: exit {done.returncode} after {took:.1f} s with --step-timeout 2")


def test_ctrl_c_writes_the_partial_report_and_exits_130(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    command = ["verify", "independent_backend:IndependentFileStorage", "--json", str(report_path)]
    child = subprocess.Popen(
        [sys.executable, "-m", "sessionspec", *command],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert child.stdout is not None
    seen = []
    for line in child.stdout:  # wait until some checks ran
        seen.append(line)
        if sum("PASS" in item for item in seen) >= 3:
            break
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=GUARD_SECONDS)
    assert child.returncode == 130, (out, err)
    assert "KeyboardInterrupt" not in err
    report = json.loads(report_path.read_text())
    assert report["ok"] is False and report["stopped"].startswith("interrupted")
    statuses = [c["status"] for r in report["results"] for c in r["checks"]]
    assert statuses.count("PASS") >= 3 and "SKIP" in statuses


def _without_timings(report: dict[str, Any]) -> dict[str, Any]:
    report = copy.deepcopy(report)
    for key in ("started_at", "duration_s", "machine_duration_s"):
        report.pop(key)
    for result in report["results"]:
        for check in result["checks"]:
            check.pop("duration_s")
    return report


def test_two_ci_runs_on_a_faulty_backend_give_the_same_report_and_the_replay_replays(
    tmp_path: Path,
) -> None:
    """The ``ci`` profile is deterministic: same programs, verdicts and replay data; and the
    replay script of the machine's FAIL, run by itself, shows the same divergence."""
    reports = []
    for run in ("a", "b"):
        path = tmp_path / run / "report.json"
        done = sessionspec("verify", "faults.core:AddTurnNoTouch", "--json", str(path))
        assert done.returncode == 1, done.stdout
        reports.append(json.loads(path.read_text()))
    first, second = (_without_timings(report) for report in reports)
    for report in (first, second):  # the scripts sit in different folders
        for result in report["results"]:
            for check in result["checks"]:
                if check["replay_path"]:
                    check["replay_path"] = Path(check["replay_path"]).name
    assert first == second
    (machine,) = [
        check for result in reports[0]["results"] for check in result["checks"]
        if check["name"] == "state_machine" and check["status"] == "FAIL"
    ]  # fmt: skip
    script = Path(machine["replay_path"])
    assert script.read_text() == machine["replay_script"]
    replayed = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=GUARD_SECONDS,
    )  # fmt: skip
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert f"B02: {machine['message']}" in replayed.stderr
    through_kit = sessionspec("verify", "--replay", str(script))
    assert through_kit.returncode == 1
    assert "B02" in through_kit.stdout and "DIVERGENCE" in through_kit.stdout


def test_the_replay_of_a_fixed_backend_shows_no_divergence(tmp_path: Path) -> None:
    """``--replay FILE TARGET`` runs a script against another backend: the fixed one passes."""
    path = tmp_path / "report.json"
    done = sessionspec("verify", "faults.core:AddTurnNoTouch", "--json", str(path))
    assert done.returncode == 1
    script = next(tmp_path.glob("B02-*.py"))
    fixed = sessionspec(
        "verify", "--replay", str(script), "sessionspec.reference:InMemorySessionStorage"
    )
    assert fixed.returncode == 0, fixed.stdout
    assert "no divergence" in fixed.stdout


def test_a_divergence_that_does_not_come_back_is_reported_as_met(tmp_path: Path) -> None:
    """A backend whose failure depends on timing fails once and not on the replay; hypothesis
    then calls the program flaky. The machine reports the divergence it met, unshrunk, under
    its behaviour, never as an error of the kit (B05 here)."""
    from sessionspec.conformance.context import PROFILES, RunState
    from sessionspec.conformance.machine import run_machine
    from sessionspec.reference import InMemorySessionStorage
    from sessionspec.spec import Level

    armed = [True]

    class LosesTheFirstDelete(InMemorySessionStorage):
        def delete_session(self, session_id: str) -> bool:
            if armed[0] and self.get_session(session_id) is not None:
                armed[0] = False
                return True  # the bug, once per process: says deleted, keeps the session
            return super().delete_session(session_id)

    def factory(path: object = None, **kwargs: Any) -> LosesTheFirstDelete:
        return LosesTheFirstDelete(**kwargs)

    run = RunState(factory, None, frozenset({Level.CORE}), PROFILES["smoke"], None, tmp_path)
    outcome = run_machine(run)
    assert outcome.error is None, outcome.error
    assert outcome.violation is not None
    assert outcome.violation.behaviour_id == "B05", outcome.violation
    assert any("delete" in step for step in outcome.program), outcome.program
    assert outcome.shrink_note is not None and "timing" in outcome.shrink_note
