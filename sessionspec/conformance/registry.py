"""Checks and their attribution: every check and every assertion names exactly one behaviour.

A check is a function registered with ``@check("B13")``; its rule text comes from the
catalogue (``sessionspec/spec/behaviours.toml``), never from this package. Failures are raised as
``BehaviourViolation`` carrying the behaviour ID, so the engine can attribute them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sessionspec.spec import Behaviour, Level, behaviour

if TYPE_CHECKING:
    from sessionspec.conformance.context import CheckContext

CheckFunction = Callable[["CheckContext"], None]


class BehaviourViolation(AssertionError):
    """A backend broke one behaviour; ``behaviour_id`` says which."""

    def __init__(
        self,
        behaviour_id: str,
        message: str,
        *,
        expected: object = None,
        actual: object = None,
    ) -> None:
        super().__init__(f"{behaviour_id}: {message}")
        self.behaviour_id = behaviour_id
        self.message = message
        self.expected = expected
        self.actual = actual
        #: The shrunk step program (hypothesis notes) when a state machine found it.
        self.program: str | None = None
        #: How to replay the failure (profile, seed) in one line.
        self.replay: str | None = None
        #: Where expected and actual differ (computed by the engine when not set here).
        self.diff: list[str] | None = None
        #: The text of a runnable replay script (:mod:`sessionspec.conformance.replay`).
        self.replay_script: str | None = None


class CheckNotRun(Exception):
    """A check could not judge its behaviour in this run (the reason is ``str()``): its
    result is SKIP, which fails the gate for a claimed behaviour, never PASS."""


class CheckNotApplicable(Exception):
    """The check cannot observe its behaviour through this run's connection to the backend
    (a stdio adapter, PROTOCOL.md §6; the reason is ``str()``): its result is N/A, and a
    behaviour none of whose checks applies is N/A with that reason, never PASS."""


class PreconditionFailed(CheckNotRun):
    """What a check needs from another behaviour does not hold: the check cannot judge its
    own. Reported under the check as "not judged" when that behaviour FAILs (one root cause,
    one FAIL), and as this check's FAIL when it does not (never silent)."""

    def __init__(self, behaviour_id: str, message: str) -> None:
        super().__init__(f"needs {behaviour_id}: {message}")
        self.behaviour_id = behaviour_id
        self.message = message


def expect(
    behaviour_id: str,
    condition: object,
    message: str,
    *,
    expected: object = None,
    actual: object = None,
) -> None:
    """Raise ``BehaviourViolation`` for ``behaviour_id`` unless ``condition`` holds."""
    if not condition:
        raise BehaviourViolation(behaviour_id, message, expected=expected, actual=actual)


def expect_equal(behaviour_id: str, actual: object, expected: object, message: str) -> None:
    """``expect`` specialised to equality, recording both sides."""
    expect(behaviour_id, actual == expected, message, expected=expected, actual=actual)


@dataclass(frozen=True)
class Check:
    """One named check of one behaviour. ``requires`` is the level needed to run it."""

    behaviour: Behaviour
    name: str
    function: CheckFunction
    requires: Level
    doc: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def node_id(self) -> str:
        """How reports and pytest name the check: ``B07-ensure-session::touches_existing``."""
        return f"{self.behaviour.id}-{self.behaviour.slug}::{self.name}"


#: Modules whose import registers checks.
CHECK_MODULES = (
    "sessionspec.conformance.checks_core",
    "sessionspec.conformance.machine",
    "sessionspec.conformance.checks_files",
    "sessionspec.conformance.checks_process",
    "sessionspec.conformance.checks_vectors",
    "sessionspec.conformance.checks_reads",
    "sessionspec.conformance.checks_shared",
    "sessionspec.conformance.checks_temps",
    "sessionspec.conformance.checks_paths",
    "sessionspec.conformance.checks_exit",
    "sessionspec.conformance.checks_injected",
    "sessionspec.conformance.checks_crash",
)
_STATIC: list[Check] = []
_PROVIDERS: list[Callable[[], list[Check]]] = []


def make_check(
    behaviour_id: str,
    name: str,
    function: CheckFunction,
    *,
    requires: Level | None = None,
    doc: str = "",
) -> Check:
    item = behaviour(behaviour_id)
    return Check(item, name, function, requires or item.level, doc)


def check(
    behaviour_id: str, *, name: str | None = None, requires: Level | None = None
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function for exactly one behaviour."""

    def register(function: CheckFunction) -> CheckFunction:
        doc = (function.__doc__ or "").strip().split("\n")[0]
        _STATIC.append(
            make_check(
                behaviour_id, name or function.__name__, function, requires=requires, doc=doc
            )
        )
        return function

    return register


def register(item: Check) -> Check:
    """Register a check built with ``make_check`` (for checks made in a loop)."""
    _STATIC.append(item)
    return item


def provider(function: Callable[[], list[Check]]) -> Callable[[], list[Check]]:
    """Register a function that builds checks at collection time (e.g. one per file vector)."""
    _PROVIDERS.append(function)
    return function


def all_checks() -> list[Check]:
    """Every check, ordered by behaviour ID (stable within a behaviour)."""
    # Importing the check modules registers their checks.
    for module in CHECK_MODULES:
        importlib.import_module(module)
    # Checks registered at import: by module in CHECK_MODULES order, then as registered. Not
    # import order, which depends on what else the process imported first (a test importing
    # a check module directly reordered the checks in reports and pytest node ids).
    rank = {module: i for i, module in enumerate(CHECK_MODULES)}
    position = {id(c): i for i, c in enumerate(_STATIC)}
    found = sorted(
        _STATIC,
        key=lambda c: (rank.get(getattr(c.function, "__module__", ""), len(rank)), position[id(c)]),
    )
    for build in _PROVIDERS:
        found.extend(build())
    names = [c.node_id for c in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate check names: {sorted(duplicates)}")
    order = {b: i for i, b in enumerate(sorted({c.behaviour.id for c in found}))}
    return sorted(found, key=lambda c: order[c.behaviour.id])
