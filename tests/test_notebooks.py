"""The teaching notebooks run top to bottom in a fresh kernel, and are committed clean.

Each notebook is executed with nbclient in a new kernel (the venv's ``python3``), with a
temporary working directory, ``TMPDIR`` and ``HOME``, so that nothing can touch the user's
real ``~/.codex-mcp`` and nothing is left behind in ``/tmp``. Any cell error fails the test.
Run times are printed (see them with ``pytest -s`` or ``-rA``) and recorded as the JUnit
property ``run_seconds``, never asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
CELL_TIMEOUT = 180  # seconds per cell; the notebooks aim at under a minute in total


def test_there_are_notebooks() -> None:
    assert [p.name[:3] for p in PATHS] == ["01-", "02-", "03-", "04-", "05-", "06-"]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(
    path: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    nb = nbformat.read(path, as_version=4)
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    scratch = tmp_path / "tmp"  # the notebooks' temp dirs land here, even if a cell fails
    scratch.mkdir()
    # Notebook 06 installs the Node adapters' packages: into the user's cache, not the empty HOME.
    node_cache = Path.home() / ".cache" / "sessionspec" / "node"
    env = {
        "SESSIONSPEC_NODE_CACHE": str(node_cache),
        **os.environ,
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "PYTHONHASHSEED": "0",
    }
    for name in ("CODEX_MCP_MEMORY_ONLY", "CODEX_MCP_SESSION_FILE"):
        env.pop(name, None)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(work)}},
    )
    started = time.monotonic()
    client.execute(cwd=str(work), env=env)
    elapsed = time.monotonic() - started
    record_property("run_seconds", round(elapsed, 1))
    print(f"\n{path.name}: ran in {elapsed:.1f} s")
    assert not (home / ".codex-mcp").exists(), "a notebook touched the default sessions file"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {index} has outputs"
        assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


def test_notebooks_are_built_from_their_sources() -> None:
    done = subprocess.run(
        [sys.executable, str(NOTEBOOKS / "build.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
