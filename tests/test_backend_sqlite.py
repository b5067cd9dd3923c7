"""The kit on examples/backends/sqlite_storage.py (issue 17): a backend on ``sqlite3`` that
keeps no sessions file and claims core, durable and shared.

CI runs ``sessionspec verify`` on it, profile ``ci``, through its TARGET (so the
many-processes checks start real child processes and B33 can run a child that exits without
close()), and keeps the JSON report at ``reports/backends/sqlite.json``: exit 0, every
behaviour of the claimed levels PASS but B30 shared-file-lock, N/A (its checks concern a file
backend's sidecar lock and require file-v1, SPEC.md §8.7). A small test of its own runs four
processes appending to one session at once.
"""

from __future__ import annotations

from pathlib import Path

from backend_checks import (
    ROOT,
    assert_claimed_levels_pass,
    assert_processes_appending_at_once_lose_nothing,
    verify,
)

from sessionspec.spec import Level

BACKEND = ROOT / "examples" / "backends" / "sqlite_storage.py"
TARGET = f"{BACKEND}:SqliteSessionStorage"
REPORT = ROOT / "reports" / "backends" / "sqlite.json"
CLAIMED = {Level.CORE, Level.DURABLE, Level.SHARED}
#: Claimed, but every check needs a level not claimed (file-v1), with the kit's reason.
NOT_APPLICABLE = {"B30": "level file-v1 not claimed"}


def test_sessionspec_verify_passes_every_claimed_behaviour() -> None:
    assert_claimed_levels_pass(verify(TARGET, REPORT), CLAIMED, NOT_APPLICABLE)


def test_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store" / "sessions.json"
    assert_processes_appending_at_once_lose_nothing(TARGET, path)
    assert not path.exists()  # the database is beside the path, never at it
    assert path.with_name("sessions.json.sqlite3").exists()
