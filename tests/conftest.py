"""Shared fixtures of the test suite."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS = Path(__file__).resolve().parent / "js"


def run_node(script: str, *args: str) -> Any:
    """Run one of tests/js/*.mjs with the machine's Node.js and return its JSON output."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is needed to run codex-mcp-server's serialisation for real")
    done = subprocess.run(
        [node, str(JS / script), *args], check=True, capture_output=True, text=True, timeout=60
    )
    return json.loads(done.stdout)


@pytest.fixture
def upstream_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A sessions file written by codex-mcp-server's serialisation code path, in real Node.js."""
    path = tmp_path / "sessions.json"
    facts = run_node("upstream_writer.mjs", str(path))
    return path, facts
