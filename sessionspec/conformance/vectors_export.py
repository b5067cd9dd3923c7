"""``sessionspec vectors export DIR``: the file vectors of SPEC.md §7, out of the installed package.

Implementers in other languages get ``manifest.json``, ``manifest.schema.json`` and every
``<category>/<name>.json`` the manifest names, byte-identical and in the package's layout,
read through ``importlib.resources`` (so a wheel or a zip import works, not only a checkout).
No Python file is exported. Existing files are never overwritten without ``force``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

VECTORS_PACKAGE = "sessionspec.spec.vectors"
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "manifest.schema.json"


class ExportError(Exception):
    """The export cannot be done (files exist, a bad manifest entry); nothing was written."""


@dataclass(frozen=True, slots=True)
class Exported:
    """What ``export_vectors`` wrote: relative paths in the package's layout, and where."""

    directory: Path
    files: tuple[str, ...]
    vectors: int


def vector_files() -> tuple[str, ...]:
    """The relative paths to export: the manifest, its schema, then each vector's file.

    SPEC.md §7; the vectors cover B04, B06, B09, B13-B15, B17 and B18; this only copies them.

    Every path comes from the packaged manifest and must be a relative POSIX path inside
    the package ending in ``.json``; anything else is an ExportError.
    """
    manifest = json.loads(_package().joinpath(MANIFEST).read_bytes())
    names = [MANIFEST, MANIFEST_SCHEMA]
    for vector in manifest["vectors"]:
        name = vector["file"]
        parts = PurePosixPath(name).parts
        if (
            not name.endswith(".json")
            or PurePosixPath(name).is_absolute()
            or any(part in ("", ".", "..") for part in parts)
            or "\\" in name
        ):
            raise ExportError(f"the manifest names an unexpected file: {name!r}")
        if name not in names:
            names.append(name)
    return tuple(names)


def export_vectors(directory: str | os.PathLike[str], *, force: bool = False) -> Exported:
    """Write the packaged vectors into ``directory`` (created if missing), byte-identical.

    The rule (SPEC.md §7, no behaviour of its own): the same relative layout as the package,
    the exact bytes of every file, no Python file, and nothing existing overwritten.

    Without ``force``, any existing target makes it an ExportError before anything is
    written; with ``force`` each target is replaced atomically (a symlink is replaced, not
    followed). Raises OSError when the file system refuses.
    """
    target = Path(directory)
    names = vector_files()
    package = _package()
    contents = {name: _resource(package, name).read_bytes() for name in names}
    if not force:
        existing = [name for name in names if os.path.lexists(target / name)]
        if existing:
            shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
            raise ExportError(
                f"{len(existing)} of the {len(names)} files exist in {target} ({shown}); "
                "nothing written; use --force to overwrite them"
            )
    for name, data in contents.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if force:
            _replace(path, data)
        else:
            with open(path, "xb") as file:  # never overwrite: a racing writer wins
                file.write(data)
    return Exported(target, names, len(names) - 2)


def _package() -> Traversable:
    return resources.files(VECTORS_PACKAGE)


def _resource(package: Traversable, name: str) -> Traversable:
    return package.joinpath(*PurePosixPath(name).parts)


def _replace(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temp, "xb") as file:
            file.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
