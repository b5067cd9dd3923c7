"""The kit over stdio (PROTOCOL.md) on a backend in another language: the Node.js file backend
of examples/backends/node-file, written from SPEC.md, claims file-v1 and passes it.

One run of the real ``sessionspec verify --stdio`` command, profile ``smoke`` (CI's budget is
tight): every behaviour of the claimed levels (file-v1, so durable and core) PASSes, except
B24, which cannot be observed over stdio (PROTOCOL.md §6) and is N/A; shared is N/A.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sessionspec.spec import Level, behaviours

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "examples" / "backends" / "node-file" / "adapter.mjs"
CLAIMED = {Level.CORE, Level.DURABLE, Level.FILE_V1}
NOT_OBSERVABLE_OVER_STDIO = {"B24"}


def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed: CI must provide Node.js >= 20 for this test")
        pytest.skip("node is not installed: install Node.js >= 20 to verify the Node backend")
    return found


def test_kit_over_stdio_passes_the_node_file_backend(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    command = shlex.join([node(), str(ADAPTER)])
    kit = [sys.executable, "-m", "sessionspec", "verify", "--stdio", command]
    options = ["--level", "file-v1", "--profile", "smoke", "--json", str(report_path)]
    done = subprocess.run(kit + options, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert report_path.exists(), done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert set(report["levels"]) == {level.value for level in CLAIMED}
    statuses = {r["id"]: r["status"] for r in report["results"]}
    expected = {
        b.id: "N/A" if b.id in NOT_OBSERVABLE_OVER_STDIO or b.level not in CLAIMED else "PASS"
        for b in behaviours()
    }
    assert statuses == expected, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
