"""The kit on examples/backends/sqlite_storage.py (issue 17): a backend on ``sqlite3`` that
keeps no sessions file and claims core, durable and shared.

One run of the kit, profile ``ci``, through its TARGET (so the many-processes checks start
real child processes and B33 can run a child that exits without close()): every behaviour of
the claimed levels PASSes, except

- B30 shared-file-lock, N/A: its checks concern a file backend's sidecar lock (they require
  file-v1, which this backend does not claim; SPEC.md §2.2);
- the kit checks listed in ``FILE_SPECIFIC_CHECKS``, which assume a JSON sessions file at
  the path rather than judge the behaviour. The gate test ``test_report_is_ok`` is a strict
  xfail until the kit stops assuming it, and then fails so this list is emptied.

A small test of its own runs four processes appending to one session at once.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from sessionspec import conformance
from sessionspec.conformance import Report, Status
from sessionspec.spec import Level, behaviours

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "examples" / "backends" / "sqlite_storage.py"
TARGET = f"{BACKEND}:SqliteSessionStorage"
CLAIMED = {Level.CORE, Level.DURABLE, Level.SHARED}
#: Claimed, but every check needs a level not claimed (file-v1), with the kit's reason.
NOT_APPLICABLE = {"B30": "level file-v1 not claimed"}
#: Kit checks that FAIL on this backend only because they read a sessions file at the path
#: (checks_shared.py, taking_in_the_file_writes_nothing: ``ctx.path.read_bytes()``).
FILE_SPECIFIC_CHECKS = {("B29", "taking_in_the_file_writes_nothing")}


@cache
def _report() -> Report:
    return conformance.verify(TARGET, profile="ci")


def _story(report: Report) -> str:
    lines = []
    for bid, result in report.results.items():
        for item in result.failures:
            lines.append(f"{bid} {item.name}: {item.message[:300]}")
    return "\n".join(lines) or "(no failing check)"


def test_every_claimed_behaviour_passes_but_file_specific_checks() -> None:
    report = _report()
    assert set(report.levels) == {level.value for level in CLAIMED}
    failing = {(bid, item.name) for bid, r in report.results.items() for item in r.failures}
    assert failing == FILE_SPECIFIC_CHECKS, _story(report)
    failing_behaviours = {bid for bid, _name in FILE_SPECIFIC_CHECKS}
    expected = {
        b.id: Status.NA
        if b.level not in CLAIMED or b.id in NOT_APPLICABLE
        else Status.FAIL
        if b.id in failing_behaviours
        else Status.PASS
        for b in behaviours()
    }
    statuses = {bid: result.status for bid, result in report.results.items()}
    assert statuses == expected, _story(report)
    for bid, reason in NOT_APPLICABLE.items():
        assert report.results[bid].not_applicable == reason
    # Each failing behaviour's other checks all ran and passed.
    for bid in failing_behaviours:
        others = [c for c in report.results[bid].checks if (bid, c.name) not in failing]
        assert others and all(c.status is Status.PASS for c in others), _story(report)


@pytest.mark.xfail(
    reason="kit checks assume a sessions file at the path: " + repr(sorted(FILE_SPECIFIC_CHECKS)),
    strict=True,
)
def test_report_is_ok() -> None:
    assert _report().ok, _story(_report())


CHILD = """
import sys
from datetime import UTC, datetime
sys.path.insert(0, sys.argv[1])
from sqlite_storage import SqliteSessionStorage
from sessionspec.spec import ConversationTurn
storage = SqliteSessionStorage(sys.argv[2])
storage.ensure_session("together")
for k in range(50):
    storage.add_turn("together", ConversationTurn(f"{sys.argv[3]}-{k}", "r", datetime.now(UTC)))
storage.close()
"""


def test_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store" / "sessions.json"
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(BACKEND.parent), str(path), str(i)])
        for i in range(4)
    ]
    assert [child.wait(timeout=60) for child in children] == [0] * 4
    sys.path.insert(0, str(BACKEND.parent))
    try:
        from sqlite_storage import SqliteSessionStorage
    finally:
        sys.path.remove(str(BACKEND.parent))
    with SqliteSessionStorage(path) as storage:
        session = storage.get_session("together")
        assert [s.id for s in storage.list_sessions()] == ["together"]
    assert session is not None
    prompts = [turn.prompt for turn in session.turns]
    assert sorted(prompts) == sorted(f"{i}-{k}" for i in range(4) for k in range(50))
    for i in range(4):  # each process's turns in its own order (B02)
        assert [p for p in prompts if p.startswith(f"{i}-")] == [f"{i}-{k}" for k in range(50)]
    assert not path.exists()  # the database is beside the path, never at it
    assert path.with_name("sessions.json.sqlite3").exists()
