"""The built artifacts, tested the way users get them: not the source tree but what ``python -m
build`` makes, checked by ``twine check --strict`` and installed into a fresh virtual environment
with its dependencies from the package index, then run from a directory outside the tree.

The module builds once and installs once (module-scoped fixtures) and sits in one xdist group,
so ``make test`` (``pytest -n 2 --dist loadgroup``) runs it on one worker: about a minute, most
of it the three kit runs. ``SESSIONSPEC_SKIP_WHEEL_TESTS=1`` skips it on a local machine; CI
(``.ci/run``) unsets that, and there a build or an environment that cannot be made FAILS.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
NAME, VERSION = PROJECT["name"], PROJECT["version"]
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
SDIST_ROOT = f"{NAME}-{VERSION}"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("wheel"),
    pytest.mark.skipif(
        os.environ.get("SESSIONSPEC_SKIP_WHEEL_TESTS") == "1",
        reason="SESSIONSPEC_SKIP_WHEEL_TESTS=1 (never in CI)",
    ),
]

#: What the kit reads at run time through importlib.resources, relative to the wheel's root.
RUNTIME_DATA = (
    "sessionspec/py.typed",
    "sessionspec/spec/py.typed",
    "sessionspec/reference/py.typed",
    "sessionspec/conformance/py.typed",
    "sessionspec/spec/SPEC.md",
    "sessionspec/spec/behaviours.toml",
    "sessionspec/spec/sessions.schema.json",
    "sessionspec/spec/sessions-writer.schema.json",
    "sessionspec/spec/vectors/manifest.json",
    "sessionspec/spec/vectors/manifest.schema.json",
    "sessionspec/conformance/report.schema.json",
)

#: Never copied into the build snapshot: what .gitignore keeps out of a clean clone. Debris
#: anywhere in the tree, and the top level's own folders (a package may have a build/ folder).
DEBRIS = ("__pycache__", "*.py[cod]", "*.egg-info", ".hypothesis", ".*_cache", ".ipynb_checkpoints")
TOP_LEVEL_ONLY = (".git", ".venv*", "build", "dist", "mutants", "reports")


def snapshot_ignore(directory: str, names: list[str]) -> set[str]:
    patterns = DEBRIS + (TOP_LEVEL_ONLY if Path(directory) == ROOT else ())
    return {name for name in names if any(fnmatch.fnmatch(name, p) for p in patterns)}


WARNING = re.compile(r"warning", re.IGNORECASE)
#: ``python -m pytest -q`` in the fresh venv (-rA lists what passed; no .pytest_cache written).
PYTEST = ("-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider")


def run(
    command: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def shown(done: subprocess.CompletedProcess[str], tail: int = 6000) -> str:
    """A finished command for an assertion message: its line, exit status and output's end."""
    line = " ".join(str(part) for part in done.args)
    return (
        f"$ {line}\nexit {done.returncode}\n--- stdout ---\n{done.stdout[-tail:]}"
        f"\n--- stderr ---\n{done.stderr[-tail:]}"
    )


@dataclass(frozen=True)
class Built:
    source: Path  # the snapshot of the tree the build ran in
    sdist: Path
    wheel: Path
    log: str


@dataclass(frozen=True)
class Installed:
    venv: Path
    python: Path
    sessionspec: Path  # the console script
    env: dict[str, str]  # no PYTHON*/PYTEST* variables, the venv first on PATH
    outside: Path  # an empty working directory outside the source tree


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``python -m build`` (the sdist, then the wheel from the sdist) of a copy of the tree."""
    base = tmp_path_factory.mktemp("build")
    source, out = base / "source", base / "dist"
    # A copy, so the build writes no build/ or *.egg-info into the tree others work in.
    shutil.copytree(ROOT, source, symlinks=True, ignore=snapshot_ignore)
    env = dict(os.environ)
    # The environment's own choice, not the project's: setuptools would print "warning:
    # byte-compiling is disabled" for it. The wheel carries no bytecode either way.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = run([sys.executable, "-m", "build", "--outdir", out, source], cwd=base, env=env)
    if done.returncode != 0:
        pytest.fail(f"python -m build failed (is the dev extra installed?)\n{shown(done)}")
    sdist = out / f"{SDIST_ROOT}.tar.gz"
    wheel = out / f"{NAME}-{VERSION}-py3-none-any.whl"
    made = sorted(path.name for path in out.iterdir())
    assert made == sorted([sdist.name, wheel.name]), f"python -m build made {made}"
    return Built(source=source, sdist=sdist, wheel=wheel, log=done.stdout + done.stderr)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv with the wheel installed by pip (dependencies from the index, pip's cache)."""
    base = tmp_path_factory.mktemp("installed")
    venv, outside = base / "venv", base / "outside"
    outside.mkdir()
    if outside.resolve().is_relative_to(ROOT):
        pytest.fail(f"the scratch directory {outside} lies inside the source tree {ROOT}")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "PYTEST", "VIRTUAL_ENV", "COV_CORE", "COVERAGE"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(venv)
    done = run([sys.executable, "-m", "venv", venv], cwd=base, env=env)
    if done.returncode != 0:
        pytest.fail(f"python -m venv failed\n{shown(done)}")
    python = venv / "bin" / "python"
    done = run([python, "-m", "pip", "install", built.wheel], cwd=outside, env=env)
    if done.returncode != 0:
        pytest.fail(f"pip install of the wheel failed\n{shown(done)}")
    return Installed(
        venv=venv, python=python, sessionspec=venv / "bin" / "sessionspec", env=env, outside=outside
    )


@pytest.fixture
def wheel_names(built: Built) -> Iterator[list[str]]:
    with zipfile.ZipFile(built.wheel) as wheel:
        yield wheel.namelist()


# -- the build ---------------------------------------------------------------------------------


def test_build_prints_no_warnings(built: Built) -> None:
    """No setuptools warning of any kind: deprecated keys, license, package data, ..."""
    warnings = [line for line in built.log.splitlines() if WARNING.search(line)]
    assert not warnings, "python -m build warned:\n" + "\n".join(warnings)


def test_twine_check_strict(built: Built) -> None:
    """The metadata and the README render as PyPI would show them."""
    done = run(
        [sys.executable, "-m", "twine", "check", "--strict", built.sdist, built.wheel],
        cwd=built.source.parent,
        timeout=120,
    )
    assert done.returncode == 0, shown(done)
    assert done.stdout.count("PASSED") == 2, shown(done)


# -- the wheel's content -----------------------------------------------------------------------


def test_wheel_holds_only_the_sessionspec_package(wheel_names: list[str]) -> None:
    """Nothing but sessionspec/ and its dist-info: no generic top-level spec/, tests/, ..."""
    top = sorted({name.split("/", 1)[0] for name in wheel_names})
    assert top == sorted(["sessionspec", DIST_INFO])
    assert not [name for name in wheel_names if "__pycache__" in name or name.endswith(".pyc")]


def test_wheel_declares_the_command_and_the_pytest_plugin(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
        metadata = wheel.read(f"{DIST_INFO}/METADATA").decode()
        top_level = wheel.read(f"{DIST_INFO}/top_level.txt").decode().split()
    assert "sessionspec = sessionspec.conformance.cli:main" in entry_points
    assert "sessionspec = sessionspec.conformance.pytest_plugin" in entry_points
    assert top_level == ["sessionspec"]
    assert "License-Expression: MIT" in metadata.splitlines()


def test_wheel_holds_the_runtime_data(built: Built, wheel_names: list[str]) -> None:
    """SPEC.md, the catalogue, the schemas, py.typed, the manifest and every vector it names."""
    missing = [name for name in RUNTIME_DATA if name not in wheel_names]
    assert not missing, f"the wheel lacks {missing}"
    with zipfile.ZipFile(built.wheel) as wheel:
        manifest = json.loads(wheel.read("sessionspec/spec/vectors/manifest.json"))
    named = [f"sessionspec/spec/vectors/{vector['file']}" for vector in manifest["vectors"]]
    assert named, "the manifest names no vectors"
    missing = [name for name in named if name not in wheel_names]
    assert not missing, f"the wheel lacks {len(missing)} vector files the manifest names: {missing}"


def test_wheel_holds_every_module_of_the_tree(built: Built, wheel_names: list[str]) -> None:
    """A new module (or subpackage) of the tree is packaged without touching pyproject.toml."""
    package = built.source / "sessionspec"
    modules = sorted(path.relative_to(built.source).as_posix() for path in package.rglob("*.py"))
    missing = [name for name in modules if name not in wheel_names]
    assert not missing, f"the wheel lacks {missing}"


def test_sdist_holds_the_package_and_its_data(built: Built, wheel_names: list[str]) -> None:
    """The sdist rebuilds the wheel (``python -m build`` made the wheel from it) and ships the
    package with all its data, the README and pyproject.toml; the tests stay in the repository
    (they need notebooks/, tests/js and Node.js), so none half-ship (MANIFEST.in)."""
    with tarfile.open(built.sdist) as sdist:
        names = {member.name for member in sdist.getmembers() if member.isfile()}
    inner = {name.removeprefix(f"{SDIST_ROOT}/") for name in names}
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= inner
    packaged = {name for name in wheel_names if name.startswith("sessionspec/")}
    assert packaged <= inner, f"the sdist lacks {sorted(packaged - inner)}"
    assert not [name for name in inner if name.startswith("tests/")]


# -- the installed wheel, from outside the tree -----------------------------------------------


def test_installed_package_comes_from_the_venv(installed: Installed) -> None:
    probe = (
        "import json, sys, sessionspec; "
        "print(json.dumps({'file': sessionspec.__file__, 'version': sessionspec.__version__, "
        "'path': sys.path}))"
    )
    done = run([installed.python, "-c", probe], cwd=installed.outside, env=installed.env)
    assert done.returncode == 0, shown(done)
    found = json.loads(done.stdout)
    assert Path(found["file"]).resolve().is_relative_to(installed.venv.resolve()), found["file"]
    assert found["version"] == VERSION
    into_tree = [entry for entry in found["path"] if entry and Path(entry).is_relative_to(ROOT)]
    assert not into_tree, f"sys.path points into the source tree: {into_tree}"


@pytest.mark.parametrize("name", ["spec", "reference", "conformance"])
def test_no_generic_top_level_package(installed: Installed, name: str) -> None:
    done = run([installed.python, "-c", f"import {name}"], cwd=installed.outside, env=installed.env)
    assert done.returncode != 0, f"`import {name}` worked in the fresh venv\n{shown(done)}"
    assert f"No module named '{name}'" in done.stderr, shown(done)


def test_python_dash_m_help(installed: Installed) -> None:
    done = run(
        [installed.python, "-m", "sessionspec", "--help"], cwd=installed.outside, env=installed.env
    )
    assert done.returncode == 0, shown(done)
    assert "verify" in done.stdout, shown(done)


def test_verify_file_backend_passes_every_behaviour(installed: Installed) -> None:
    """Every behaviour of the installed catalogue PASSes, with the data read from the wheel."""
    catalogue = run(
        [
            installed.python,
            "-c",
            "from sessionspec.spec import behaviours; print(*(b.id for b in behaviours()))",
        ],
        cwd=installed.outside,
        env=installed.env,
    )
    assert catalogue.returncode == 0, shown(catalogue)
    ids = catalogue.stdout.split()
    assert ids, shown(catalogue)
    report = installed.outside / "r.json"
    done = run(
        [
            installed.sessionspec,
            "verify",
            "sessionspec.reference:FileSessionStorage",
            "--json",
            "r.json",
        ],
        cwd=installed.outside,
        env=installed.env,
    )
    assert done.returncode == 0, shown(done)
    results = json.loads(report.read_text(encoding="utf-8"))["results"]
    assert [result["id"] for result in results] == ids
    failing = {result["id"]: result["status"] for result in results if result["status"] != "PASS"}
    assert not failing, f"not PASS: {failing}\n{shown(done)}"


def test_verify_memory_backend(installed: Installed) -> None:
    done = run(
        [installed.sessionspec, "verify", "sessionspec.reference:InMemorySessionStorage"],
        cwd=installed.outside,
        env=installed.env,
    )
    assert done.returncode == 0, shown(done)


@pytest.fixture(scope="module")
def user_project(installed: Installed) -> Path:
    """A user's project with its OWN top-level ``spec`` package, which the kit must not shadow."""
    project = installed.outside.parent / "user-project"
    (project / "spec").mkdir(parents=True)
    (project / "spec" / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
    (project / "test_mine.py").write_text(
        "from spec import VALUE\n\n\ndef test_mine():\n    assert VALUE == 1\n", encoding="utf-8"
    )
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return project


def test_plugin_leaves_the_users_spec_alone(installed: Installed, user_project: Path) -> None:
    """The pytest11 plugin loads in every pytest run of the venv: inert, and shadows nothing."""
    done = run(
        [installed.python, *PYTEST],
        cwd=user_project,
        env=installed.env,
    )
    assert done.returncode == 0, shown(done)
    assert "PASSED test_mine.py::test_mine" in done.stdout, shown(done)
    assert "1 passed" in done.stdout, shown(done)


def test_plugin_runs_the_kit(installed: Installed, user_project: Path) -> None:
    done = run(
        [
            installed.python,
            *PYTEST,
            "--sessionspec-backend",
            "sessionspec.reference:InMemorySessionStorage",
        ],
        cwd=user_project,
        env=installed.env,
    )
    assert done.returncode == 0, shown(done)
    assert "PASSED test_mine.py::test_mine" in done.stdout, shown(done)
    # The kit's items are collected under sessionspec[TARGET]::B01-create-session::...
    kit = re.findall(
        r"^PASSED sessionspec\[[^\]]+\]::B\d\d-[a-z0-9-]+::\S+", done.stdout, re.MULTILINE
    )
    assert kit, f"the kit's checks did not run\n{shown(done)}"
    assert "sessionspec conformance" in done.stdout, shown(done)
