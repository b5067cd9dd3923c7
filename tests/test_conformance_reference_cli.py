"""The product's main job, as users run it: the CLI verifies the reference backends (ci profile)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sessionspec.spec import Level, behaviours

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("target", "claimed"),
    [
        ("sessionspec.reference:FileSessionStorage", set(Level)),  # shared too (SPEC.md §8)
        ("sessionspec.reference:InMemorySessionStorage", {Level.CORE}),
    ],
)
def test_sessionspec_verify_reference(target: str, claimed: set[Level], tmp_path: Path) -> None:
    cli = shutil.which("sessionspec", path=str(Path(sys.executable).parent))
    assert cli is not None, "the sessionspec console script is installed with the package"
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [cli, "verify", target, "--json", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = {r["id"]: r["status"] for r in json.loads(report_path.read_text())["results"]}
    assert statuses == {b.id: "PASS" if b.level in claimed else "N/A" for b in behaviours()}
    assert "verdict: PASS" in done.stdout
