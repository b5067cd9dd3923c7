"""TARGETs resolve as users expect (loading.py): ``module:attr`` from the current directory,
however the kit was started and in its child processes, and a TARGET that does not load is
a target error (exit status 2) that says what was searched, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sessionspec.conformance.loading import TargetError, child_environment, load_target

MEMORY_BACKEND = """\
from sessionspec.reference import InMemorySessionStorage


class Factory(InMemorySessionStorage):
    pass
"""

FILE_BACKEND = """\
from sessionspec.reference import FileSessionStorage


class Factory(FileSessionStorage):
    pass
"""

VERIFY_CORE = ["verify", "my_backend:Factory", "--level", "core", "--profile", "smoke", "-q"]


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    environment["COLUMNS"] = "400"  # rich folds long paths at 80 columns
    environment.update(env)
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def backend_dir(tmp_path: Path) -> Path:
    (tmp_path / "my_backend.py").write_text(MEMORY_BACKEND, encoding="utf-8")
    return tmp_path


def test_module_target_resolves_from_the_current_directory(backend_dir: Path) -> None:
    done = _run([sys.executable, "-m", "sessionspec", *VERIFY_CORE], backend_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout


def test_module_target_resolves_without_python_adding_the_directory(backend_dir: Path) -> None:
    """``python -P`` (and the ``sessionspec`` script, whose sys.path[0] is its own folder) do
    not put the current directory on sys.path; the kit does."""
    done = _run([sys.executable, "-P", "-m", "sessionspec", *VERIFY_CORE], backend_dir)
    assert done.returncode == 0, done.stdout + done.stderr


def test_module_target_resolves_through_the_console_script(backend_dir: Path) -> None:
    script = shutil.which("sessionspec", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the sessionspec console script is not installed next to this interpreter")
    done = _run([script, *VERIFY_CORE], backend_dir)
    assert done.returncode == 0, done.stdout + done.stderr


def test_child_processes_resolve_the_same_module_target(tmp_path: Path) -> None:
    """B21's checks open the backend in a child process (sessionspec.conformance.child): the
    child, started with child_environment(), finds ``my_backend`` in the same directory even
    under PYTHONSAFEPATH; were it not to, the checks would fail."""
    (tmp_path / "my_backend.py").write_text(FILE_BACKEND, encoding="utf-8")
    done = _run(
        [sys.executable, "-m", "sessionspec", "verify", "my_backend:Factory", "--level",
         "durable", "--only", "B21", "--profile", "smoke", "-q"],
        tmp_path, PYTHONSAFEPATH="1",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "B21 no-lost-updates" in done.stdout and "fall back" not in done.stdout


def test_child_environment_puts_the_current_directory_on_pythonpath(
    backend_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(backend_dir)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(backend_dir))])
    env = child_environment()
    entries = env["PYTHONPATH"].split(os.pathsep)
    assert entries[0] == str(backend_dir)
    assert all(os.path.isabs(entry) for entry in entries)
    store = backend_dir / "sessions.json"
    done = subprocess.run(
        [sys.executable, "-P", "-m", "sessionspec.conformance.child", "dump",
         "my_backend:Factory", str(store), "0"],
        cwd=backend_dir, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_load_target_imports_from_the_current_directory_in_process(
    backend_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(backend_dir)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(backend_dir))])
    monkeypatch.delitem(sys.modules, "my_backend", raising=False)
    try:
        factory = load_target("my_backend:Factory")
        assert factory.__module__ == "my_backend"
        assert sys.path[0] == str(backend_dir)
    finally:
        sys.modules.pop("my_backend", None)


def test_missing_module_exits_2_naming_what_was_searched(tmp_path: Path) -> None:
    done = _run(
        [sys.executable, "-m", "sessionspec", "verify", "no_such_backend:Factory"], tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    out = done.stdout
    assert "cannot import module 'no_such_backend'" in out
    assert "sys.path" in out and str(tmp_path) in out
    assert "'no_such_backend.py:Factory'" in out and "path/to/file.py:attr" in out
    assert "Traceback" not in done.stdout + done.stderr


def test_missing_module_error_lists_only_the_first_path_entries() -> None:
    with pytest.raises(TargetError) as caught:
        load_target("no_such_pkg.backend:Factory")
    message = str(caught.value)
    listed = [line for line in message.splitlines() if line.startswith("    ")]
    assert 1 <= len(listed) <= 6  # five entries and "... and N more"
    assert "'no_such_pkg/backend.py:Factory'" in message


@pytest.mark.parametrize("form", ["broken:Factory", "broken.py:Factory"])
def test_syntax_error_in_the_target_exits_2_without_traceback(tmp_path: Path, form: str) -> None:
    (tmp_path / "broken.py").write_text("class Factory(:\n    pass\n", encoding="utf-8")
    done = _run([sys.executable, "-m", "sessionspec", "verify", form], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    out = done.stdout
    assert "syntax error in" in out and "broken.py, line 1" in out
    assert "Traceback" not in done.stdout + done.stderr


def test_error_raised_while_importing_the_target_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        with pytest.raises(TargetError) as caught:
            load_target("needs_dep:Factory")
    finally:
        sys.modules.pop("needs_dep", None)
    message = str(caught.value)
    assert "no_such_dependency_xyz" in message and "needs_dep.py, line 1" in message
    assert "path/to/file.py:attr" not in message  # the module was found: no file-form hint


def test_failed_file_target_can_be_loaded_again_once_fixed(tmp_path: Path) -> None:
    backend = tmp_path / "later.py"
    backend.write_text("raise RuntimeError('not yet')\n", encoding="utf-8")
    with pytest.raises(TargetError, match="RuntimeError: not yet"):
        load_target(f"{backend}:Factory")
    backend.write_text(MEMORY_BACKEND, encoding="utf-8")
    assert callable(load_target(f"{backend}:Factory"))
