"""What the tests of examples/backends/ share: ``sessionspec verify`` run as CI runs it, the
verdict a backend claiming some levels must get, and processes appending to one session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sessionspec.conformance.loading import load_target
from sessionspec.spec import Level, behaviours

ROOT = Path(__file__).resolve().parent.parent


def verify(target: str, report: Path, env: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """``python -m sessionspec verify TARGET --profile ci --json REPORT``: (exit status, output,
    the JSON report)."""
    report.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "verify", target, "--profile", "ci",
         "--json", str(report), "-q"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, json.loads(report.read_text())


def assert_claimed_levels_pass(
    verified: tuple[int, str, Any], claimed: set[Level], not_applicable: dict[str, str]
) -> None:
    """Exit 0; every behaviour of the claimed levels PASS but ``not_applicable`` (N/A with
    that reason); every other N/A."""
    returncode, output, report = verified
    assert returncode == 0, output
    assert report["ok"] and set(report["levels"]) == {level.value for level in claimed}
    statuses = {result["id"]: result["status"] for result in report["results"]}
    expected = {
        b.id: "N/A" if b.level not in claimed or b.id in not_applicable else "PASS"
        for b in behaviours()
    }
    assert statuses == expected, output
    results = {result["id"]: result for result in report["results"]}
    for bid, reason in not_applicable.items():
        assert results[bid]["not_applicable"] == reason, output


APPENDER = """
import sys
from datetime import UTC, datetime
from sessionspec.conformance.loading import load_target
from sessionspec.spec import ConversationTurn
storage = load_target(sys.argv[1])(sys.argv[2])
storage.ensure_session("together")
for k in range(50):
    storage.add_turn("together", ConversationTurn(f"{sys.argv[3]}-{k}", "r", datetime.now(UTC)))
storage.close()
"""


def assert_processes_appending_at_once_lose_nothing(target: str, path: Path) -> None:
    """Four processes append 50 turns each to one session at once: a fresh instance then holds
    all 200, each process's in its own order (B02, B27)."""
    children = [
        subprocess.Popen([sys.executable, "-c", APPENDER, target, str(path), str(i)], cwd=ROOT)
        for i in range(4)
    ]
    assert [child.wait(timeout=60) for child in children] == [0] * 4
    with load_target(target)(path) as storage:
        session = storage.get_session("together")
        assert [s.id for s in storage.list_sessions()] == ["together"]
    assert session is not None
    prompts = [turn.prompt for turn in session.turns]
    assert sorted(prompts) == sorted(f"{i}-{k}" for i in range(4) for k in range(50))
    for i in range(4):
        assert [p for p in prompts if p.startswith(f"{i}-")] == [f"{i}-{k}" for k in range(50)]
