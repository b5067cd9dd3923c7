"""Bounded time: a check runs in a worker thread, and a backend call that outlives the step
limit stops the run with a FAIL that names the call (``sessionspec verify --step-timeout``).

No backend is wrapped or proxied: the watchdog samples the worker thread's stack
(:func:`sys._current_frames`) and finds the *backend call* in it, the outermost frame that
is not the kit's (the kit, the spec package, hypothesis, pytest, the libraries the kit uses
and the standard library). The same frame object seen for longer than the limit is one call
that has not returned. Threads cannot be killed in Python, so a hung call is abandoned in a
daemon thread: the run reports what it has and the rest as not run (see the engine).
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import FrameType
from typing import Any

#: The per-call limit when none is given: far above any honest call of a file backend (a
#: save of a full store with fsync takes milliseconds), low enough for a CI job.
DEFAULT_STEP_TIMEOUT = 15.0
#: How often the watchdog looks at the worker's stack.
SAMPLE_SECONDS = 0.05


@cache
def _kit_roots() -> tuple[str, ...]:
    """Directories whose code is the kit's side of a call, never the backend's."""
    import _pytest
    import hypothesis
    import jsonschema
    import pluggy
    import rich

    import sessionspec.conformance
    import sessionspec.spec

    roots = {
        os.path.dirname(module.__file__ or "")
        for module in (
            sessionspec.conformance,
            sessionspec.spec,
            hypothesis,
            jsonschema,
            _pytest,
            pluggy,
            rich,
        )
    }
    paths = sysconfig.get_paths()
    roots |= {paths["stdlib"], paths["platstdlib"]}
    return tuple(sorted(os.path.join(os.path.realpath(root), "") for root in roots if root))


def is_kit_frame(frame: FrameType) -> bool:
    """The frame runs the kit's code (or code the kit runs on its own behalf)."""
    return _is_kit_file(frame.f_code.co_filename)


@cache
def _is_kit_file(filename: str) -> bool:
    # Cached: the watchdog asks for every frame of the stack many times a second.
    if filename.startswith("<"):  # <frozen ...>, <string>: the interpreter's, not a backend's
        return True
    return os.path.join(os.path.realpath(filename), "").startswith(_kit_roots())


def backend_call(frame: FrameType | None) -> FrameType | None:
    """The outermost backend frame of a stack whose innermost frame is ``frame``, if any."""
    stack = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    for candidate in reversed(stack):
        if not is_kit_frame(candidate):
            return candidate
    return None


def describe_call(frame: FrameType, innermost: FrameType | None) -> str:
    """``Class.method (file:line)``, the kit line that called it, and where it is stuck now."""
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    lines = [f"{name}() at {code.co_filename}:{code.co_firstlineno}"]
    caller = frame.f_back
    if caller is not None:
        lines.append(f"called from {caller.f_code.co_filename}:{caller.f_lineno}")
    if innermost is not None:
        stuck = traceback.extract_stack(innermost)[-4:]
        lines.append("stack where it waits (innermost last):")
        lines += [f"  {entry.filename}:{entry.lineno} in {entry.name}" for entry in stuck]
    return "\n".join(lines)


@dataclass
class Hang:
    """A backend call that did not return within the limit."""

    call: str  # ``Class.method()``
    where: str  # describe_call's text
    seconds: float


class Interrupted(Exception):
    """The user interrupted the run (Ctrl-C) while a check was running."""


def run_bounded(function: Callable[[], Any], limit: float) -> tuple[Any, Hang | None]:
    """Run ``function`` in a daemon thread; return its result (or re-raise its exception),
    or ``(None, Hang)`` when one backend call in it outlives ``limit`` seconds.

    Ctrl-C in the waiting thread raises :class:`Interrupted` (the worker is abandoned).
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = function()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="sessionspec-check", daemon=True)
    worker.start()
    seen: FrameType | None = None
    since = time.monotonic()
    try:
        while worker.is_alive():
            worker.join(SAMPLE_SECONDS)
            innermost = sys._current_frames().get(worker.ident or -1)
            call = backend_call(innermost)
            now = time.monotonic()
            if call is not seen:
                seen, since = call, now
            elif call is not None and now - since > limit:
                code = call.f_code
                name = getattr(code, "co_qualname", code.co_name)
                return None, Hang(f"{name}()", describe_call(call, innermost), now - since)
            del innermost, call
    except KeyboardInterrupt:
        raise Interrupted from None
    finally:
        seen = None
    if "error" in box:
        raise box["error"]
    return box.get("value"), None
