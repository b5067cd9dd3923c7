"""``sessionspec vectors export DIR``: the vectors of the installed package, for any language."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from sessionspec.conformance.cli import main

PACKAGED = resources.files("sessionspec.spec.vectors")


def tree(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``directory`` by relative POSIX path: its mtime (ns) and bytes."""
    return {
        path.relative_to(directory).as_posix(): (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_export_writes_the_packaged_vectors_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "vectors"  # created, parents included

    assert main(["vectors", "export", str(target)]) == 0

    manifest = json.loads((target / "manifest.json").read_bytes())
    named = {vector["file"] for vector in manifest["vectors"]}
    exported = tree(target)
    assert set(exported) == {"manifest.json", "manifest.schema.json", *named}
    for name, (_, data) in exported.items():
        assert data == PACKAGED.joinpath(*name.split("/")).read_bytes(), name
    assert not [name for name in exported if name.endswith(".py")]
    assert not list(target.rglob("*.py")) and not list(target.rglob("__pycache__"))
    schema = json.loads((target / "manifest.schema.json").read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(manifest)
    out = capsys.readouterr().out
    assert f"wrote {len(exported)} files to {target}" in out
    assert f"{len(manifest['vectors'])} vectors" in out


def test_a_second_export_refuses_without_force_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vectors", "export", str(tmp_path)]) == 0
    (tmp_path / "manifest.json").write_bytes(b"edited")
    before = tree(tmp_path)
    capsys.readouterr()

    assert main(["vectors", "export", str(tmp_path)]) == 2

    assert tree(tmp_path) == before
    err = capsys.readouterr().err
    assert "exist" in err and "--force" in err

    assert main(["vectors", "export", "--force", str(tmp_path)]) == 0
    assert (tmp_path / "manifest.json").read_bytes() == PACKAGED.joinpath(
        "manifest.json"
    ).read_bytes()
    assert set(tree(tmp_path)) == set(before)  # no temp file left behind


def test_one_existing_file_is_enough_to_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads(PACKAGED.joinpath("manifest.json").read_bytes())
    first = tmp_path / manifest["vectors"][0]["file"]
    first.parent.mkdir(exist_ok=True)
    first.write_bytes(b"mine")
    assert main(["vectors", "export", str(tmp_path)]) == 2
    assert list(tree(tmp_path)) == [first.relative_to(tmp_path).as_posix()]
    assert first.read_bytes() == b"mine"
    assert "1 of the" in capsys.readouterr().err


def test_export_into_a_file_fails_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"x")
    assert main(["vectors", "export", str(target)]) == 2
    assert target.read_bytes() == b"x"
    assert "error" in capsys.readouterr().err


def test_export_in_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "vectors", "export", "out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(tmp_path / "out" / "manifest.schema.json")
    assert done.stdout.startswith("wrote ")
