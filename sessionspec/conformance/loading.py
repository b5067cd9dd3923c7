"""Turn a TARGET (``module:attr`` or ``path/to/backend.py:attr``) into a factory and back."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


class TargetError(ValueError):
    """The TARGET string does not name a loadable factory."""


def _split(target: str) -> tuple[str, str]:
    module, sep, attr = target.rpartition(":")
    if not sep or not module or not attr:
        raise TargetError(f"TARGET must be 'module:attr' or 'path/to/file.py:attr', got {target!r}")
    return module, attr


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise TargetError(f"no such file: {path}")
    resolved = path.resolve()
    # A stable, unique module name per file, so two files named backend.py do not collide.
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    name = f"_sessionspec_target_{resolved.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Let the file import its siblings, as it would when run as a script.
    sys.path.insert(0, str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(resolved.parent))
    return module


def load_target(target: str) -> Any:
    """Import TARGET and return the attribute it names (the factory)."""
    module_name, attr = _split(target)
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        module = _load_file(Path(module_name))
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise TargetError(f"cannot import module {module_name!r}: {exc}") from exc
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(value):
        raise TargetError(f"{target!r} is not callable")
    return value


def target_for(factory: object) -> str | None:
    """A TARGET string another process can load to get ``factory``, or None if there is none."""
    module_name = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not module_name or not qualname or "<" in qualname:
        return None
    module = sys.modules.get(module_name)
    if module is None:
        return None
    file = getattr(module, "__file__", None)
    if module_name == "__main__" or module_name.startswith("_sessionspec_target_"):
        return f"{file}:{qualname}" if file else None
    return f"{module_name}:{qualname}"


def child_environment() -> dict[str, str]:
    """Environment for child processes: this interpreter's import path, so TARGETs resolve."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
