"""Trimming a failing program after hypothesis's shrink: the short program a reader wants.

Hypothesis shrinks the choices a program was drawn from, within the profile's budget; on a
slow backend (one that fsyncs every mutation) that budget ran out with six ``create()``s and
a ``break_directory()`` left in a program whose bug needs two creates and one ``add_turn``.
The machine records every step as a Python statement, so the program itself can be trimmed,
delta-debugging style: drop one step (from the last to the first), or lower a
``create_many(n)``, run the shorter program against a fresh backend, and keep the change
when it diverges the same way (same behaviour, same message once ids are named). Passes
repeat until no single change keeps the divergence (the program is then 1-minimal) or the
budget, in program runs, is spent: the same result on every run for a deterministic backend.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sessionspec.conformance.registry import BehaviourViolation
from sessionspec.spec import ConversationTurn

if TYPE_CHECKING:
    from sessionspec.conformance.machine import StorageMachine
    from sessionspec.spec import Level

_CREATED = re.compile(r"m\.created\[\d+\]")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CREATE_MANY = re.compile(r"^m\.create_many\((\d+)\)")
_SPAN = re.compile(
    r"^m\.create(?:\(\)|_many\(\d+\))  # m\.created\[(\d+)\](?: to m\.created\[(\d+)\])?"
)
_INDEX = re.compile(r"m\.created\[(\d+)\]")


@dataclass
class Trimmed:
    """The trimmed program (as the machine recorded it), its ids and divergence."""

    program: list[str]
    created: list[str]
    violation: BehaviourViolation
    #: True when no single step can be dropped or lowered (1-minimal); False: budget spent.
    minimal: bool
    runs: int


def signature(violation: BehaviourViolation, created: Sequence[str]) -> tuple[str, str]:
    """What "diverges the same way" compares: the behaviour and the message, with the ids
    the backend made up (and their positions) left out."""
    from sessionspec.conformance.machine import name_ids

    message = name_ids(violation.message, created) or violation.message
    return violation.behaviour_id, _UUID.sub("<id>", _CREATED.sub("m.created[_]", message))


class _Steps:
    """``m`` for a program: each step runs, then the machine's invariants (as hypothesis
    ran them)."""

    def __init__(self, machine: StorageMachine, steps: frozenset[str]) -> None:
        self._machine = machine
        self._steps = steps

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._machine, name)
        if name not in self._steps:
            return value

        def step(*args: Any, **kwargs: Any) -> None:
            value(*args, **kwargs)
            self._machine.reads_agree()
            self._machine.list_agrees()

        return step


def run_program(
    factory: Callable[..., Any], levels: frozenset[Level], workdir: Path, steps: Sequence[str]
) -> tuple[BehaviourViolation, list[str], list[str]] | None:
    """Run ``steps`` against a fresh backend: the divergence with the program as recorded
    and the ids made up, or None when it ran through (or is not a valid program any more:
    a step names an id a dropped create made)."""
    from sessionspec.conformance.machine import MachineConfig, machine_class
    from sessionspec.conformance.replay import STEPS

    config = MachineConfig(factory, levels, workdir, notes=False)
    machine: StorageMachine | None = None
    namespace: dict[str, Any] = {"datetime": datetime, "ConversationTurn": ConversationTurn}
    try:
        machine = machine_class(config)()
        namespace["m"] = _Steps(machine, STEPS)
        machine.reads_agree()
        machine.list_agrees()
        for line in steps:
            exec(line, namespace)  # a statement the machine itself recorded
    except BehaviourViolation as violation:
        assert machine is not None
        return violation, list(machine.program), list(machine.created)
    except Exception:
        return None
    finally:
        if machine is not None:
            with contextlib.suppress(Exception):
                machine.teardown()
    return None


def trim(
    factory: Callable[..., Any],
    levels: frozenset[Level],
    workdir: Path,
    program: Sequence[str],
    violation: BehaviourViolation,
    created: Sequence[str],
    *,
    budget: int,
    seconds: float,
) -> Trimmed:
    """Trim ``program`` (which diverged as ``violation``) to the shortest program, within
    ``budget`` program runs and ``seconds``, that diverges the same way."""
    want = signature(violation, created)
    steps = [line for line in program if not line.startswith("#")]
    best = Trimmed(list(program), list(created), violation, minimal=False, runs=0)
    deadline = time.monotonic() + seconds

    def attempt(candidate: list[str] | None) -> bool:
        nonlocal best, steps
        if candidate is None:
            return False  # it would name an id no step creates any more
        best.runs += 1
        found = run_program(factory, levels, workdir, candidate)
        if found is None or signature(found[0], found[2]) != want:
            return False
        best = Trimmed(found[1], found[2], found[0], minimal=False, runs=best.runs)
        steps = [line for line in best.program if not line.startswith("#")]
        return True

    def spent() -> bool:
        return best.runs >= budget or time.monotonic() > deadline

    changed = True
    while changed:
        changed = False
        for index in reversed(range(len(steps))):
            if index >= len(steps):
                continue
            if spent():
                return best
            span = _created_span(steps[index])
            if attempt(_without(steps, index, span)):
                changed = True
                continue
            many = _CREATE_MANY.match(steps[index])
            if many is not None and span is not None:
                count = int(many.group(1))
                for lower, dropped in _smaller_batches(span, count):
                    if spent():
                        return best
                    rest = _renumber(steps[index + 1 :], dropped)
                    if rest is not None and attempt(
                        [*steps[:index], f"m.create_many({lower})", *rest]
                    ):
                        changed = True
                        break
            for simpler in _simpler_strings(steps[index]):
                if spent():
                    return best
                if attempt([*steps[:index], simpler, *steps[index + 1 :]]):
                    changed = True
                    break
    best.minimal = True
    return best


def _simpler_strings(line: str) -> list[str]:
    """``line`` with its non-empty string literals emptied: all at once, then one by one
    (a turn's prompt and response are rarely what a divergence is about)."""
    try:
        tree = ast.parse(line.split("  # ")[0] if "  # m." in line else line)
    except SyntaxError:
        return []
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value
    ]

    def emptied(nodes: list[ast.Constant]) -> str:
        saved = [node.value for node in nodes]
        for node in nodes:
            node.value = ""
        text = ast.unparse(tree)
        for node, value in zip(nodes, saved, strict=True):
            node.value = value
        return text

    if not found:
        return []
    variants = [emptied(found)]
    if len(found) > 1:
        variants += [emptied([node]) for node in found]
    return variants


def _created_span(line: str) -> tuple[int, int] | None:
    """The ids a create step made, from the comment the machine recorded with it:
    ``# m.created[3]`` or ``# m.created[0] to m.created[19]`` (end exclusive)."""
    found = _SPAN.search(line)
    if found is None:
        return None
    first = int(found.group(1))
    last = int(found.group(2)) if found.group(2) else first
    return first, last + 1


def _without(steps: list[str], index: int, span: tuple[int, int] | None) -> list[str] | None:
    """``steps`` without step ``index``; later steps renumbered when it created ids."""
    rest = steps[index + 1 :]
    if span is not None:
        renumbered = _renumber(rest, span)
        if renumbered is None:
            return None
        rest = renumbered
    return [*steps[:index], *rest]


def _renumber(lines: list[str], dropped: tuple[int, int]) -> list[str] | None:
    """``lines`` with ids after a dropped range moved down; None when one names a dropped id."""
    low, high = dropped
    named_dropped = False

    def move(match: re.Match[str]) -> str:
        nonlocal named_dropped
        index = int(match.group(1))
        if low <= index < high:
            named_dropped = True
        return f"m.created[{index - (high - low) if index >= high else index}]"

    moved = [_INDEX.sub(move, line) for line in lines]
    return None if named_dropped else moved


def _smaller_batches(span: tuple[int, int], count: int) -> list[tuple[int, tuple[int, int]]]:
    """Smaller sizes for a batch of ``count`` creates (1, 2, a quarter, a half, one less),
    each keeping the batch's first ids or its last ones: (size, ids dropped)."""
    sizes = sorted({n for n in (1, 2, count // 4, count // 2, count - 1) if 0 < n < count})
    first = span[0]
    return [
        (size, dropped)
        for size in sizes
        for dropped in ((first + size, first + count), (first, first + count - size))
    ]


__all__ = ["Trimmed", "run_program", "signature", "trim"]
