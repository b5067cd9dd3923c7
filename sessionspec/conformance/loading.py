"""Turn a TARGET (``module:attr`` or ``path/to/backend.py:attr``) into a factory and back.

A ``module:attr`` TARGET resolves as ``python -m`` would: the current working directory is
importable, so ``sessionspec verify my_backend:Factory`` works from the backend's folder
whether the kit runs as ``python -m sessionspec``, as the ``sessionspec`` script or in a
child process of the kit (:func:`child_environment`). A TARGET that cannot be imported, or
that does not compile, is a :class:`TargetError` (exit status 2 of the CLI) that says what was
searched, never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from sessionspec.conformance.errors import TargetError

#: How many ``sys.path`` entries an import error lists.
SHOWN_PATH_ENTRIES = 5


def _split(target: str) -> tuple[str, str]:
    module, sep, attr = target.rpartition(":")
    if not sep or not module or not attr:
        raise TargetError(f"TARGET must be 'module:attr' or 'path/to/file.py:attr', got {target!r}")
    return module, attr


def _is_cwd(entry: str, cwd: str) -> bool:
    if entry in ("", "."):
        return True
    try:
        return os.path.samefile(entry, cwd)
    except OSError:
        return False


def ensure_cwd_importable() -> str:
    """Put the current working directory first on ``sys.path`` unless it is already there.

    This is what ``python -m`` does, and what the ``sessionspec`` script (whose ``sys.path[0]``
    is its own folder) and ``python -P`` do not: a ``module:attr`` TARGET in the folder the
    kit runs from must resolve however the kit was started. Returns the directory.
    """
    cwd = os.getcwd()
    if not any(_is_cwd(entry, cwd) for entry in sys.path):
        sys.path.insert(0, cwd)
    return cwd


def _describe_exception(exc: BaseException, what: str) -> str:
    """One readable paragraph for an exception raised while importing a TARGET."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename or what}, line {exc.lineno}"
        lines = [f"syntax error in {where}: {exc.msg}"]
        if exc.text:
            source = exc.text.rstrip("\n")
            stripped = source.lstrip()
            lines.append("    " + stripped)
            if exc.offset:
                column = max(exc.offset - 1 - (len(source) - len(stripped)), 0)
                lines.append("    " + " " * column + "^")
        return "\n".join(lines)
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename]
    location = f" (at {user[-1].filename}, line {user[-1].lineno})" if user else ""
    return f"importing {what} raised {type(exc).__name__}: {exc}{location}"


def _not_found(module_name: str, attr: str, exc: ModuleNotFoundError) -> TargetError:
    cwd = os.getcwd()
    entries = [entry or cwd for entry in sys.path]
    shown = entries[:SHOWN_PATH_ENTRIES]
    more = len(entries) - len(shown)
    lines = [
        f"cannot import module {module_name!r}: {exc}",
        f"searched the current directory ({cwd}) and sys.path"
        + (f", first {len(shown)} of {len(entries)} entries:" if more else ":"),
        *(f"    {entry}" for entry in shown),
    ]
    if more:
        lines.append(f"    ... and {more} more")
    file_form = module_name.replace(".", "/") + ".py"
    lines.append(
        f"if the factory is defined in a file, name the file instead: '{file_form}:{attr}'"
        " (the 'path/to/file.py:attr' form), or run from the folder that holds it"
    )
    return TargetError("\n".join(lines))


def _import_module(module_name: str, attr: str) -> ModuleType:
    ensure_cwd_importable()
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # The target itself (or one of its packages) is missing: say where we looked. A module
        # the target imports that is missing is the target's own error, reported as such.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise _not_found(module_name, attr, exc) from exc
        raise TargetError(_describe_exception(exc, repr(module_name))) from exc
    except Exception as exc:  # SyntaxError, ImportError, anything the module body raises
        raise TargetError(_describe_exception(exc, repr(module_name))) from exc


def _load_file(path: Path) -> ModuleType:
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
    except Exception as exc:  # SyntaxError, ImportError, anything the module body raises
        del sys.modules[name]  # not half a module for the next attempt
        raise TargetError(_describe_exception(exc, str(path))) from exc
    finally:
        sys.path.remove(str(resolved.parent))
    return module


def load_target(target: str) -> Any:
    """Import TARGET and return the attribute it names (the factory).

    ``stdio:CMD`` starts the adapter CMD and returns its
    :class:`~sessionspec.conformance.stdio.StdioFactory` (PROTOCOL.md).

    ``path/to/file.py:attr`` (any TARGET whose module part ends in ``.py`` or has a slash)
    loads that file; ``module:attr`` imports the module with the current directory importable
    (:func:`ensure_cwd_importable`). ``attr`` may be dotted (``module:Class.factory``). Raises
    :class:`TargetError` when the module is not found (naming what was searched and
    suggesting the file form), does not compile, raises while importing, lacks the attribute,
    or names something that is not callable.
    """
    from sessionspec.conformance.stdio import is_stdio_target, load_stdio_target

    if is_stdio_target(target):
        return load_stdio_target(target)
    module_name, attr = _split(target)
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        module = _load_file(Path(module_name))
    else:
        module = _import_module(module_name, attr)
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
    """A TARGET string another process can load to get ``factory``, or None if there is none.

    A factory may name its own (``sessionspec_target``): a stdio factory's is ``stdio:CMD``.
    """
    own = getattr(factory, "sessionspec_target", None)
    if isinstance(own, str):
        return own
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
    """Environment for the kit's child processes (``sessionspec.conformance.child``).

    ``PYTHONPATH`` is this interpreter's import path in its order, as absolute paths (an empty
    entry means the current directory), with the current directory first when it is not on it
    already (:func:`ensure_cwd_importable`): a child, which runs in the same directory,
    resolves a TARGET exactly as :func:`load_target` did here, even under ``PYTHONSAFEPATH``.
    """
    cwd = os.getcwd()
    entries: list[str] = []
    for entry in sys.path:
        absolute = os.path.abspath(entry or cwd)
        if absolute not in entries:
            entries.append(absolute)
    if not any(_is_cwd(entry, cwd) for entry in entries):
        entries.insert(0, cwd)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
