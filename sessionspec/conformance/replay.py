"""Replay scripts: a FAIL of the stateful machine as a Python program anyone can run.

The machine records each step it takes as a Python statement (``m.add_turn(m.created[0],
ConversationTurn(...))``; ``m.created[i]`` names the i-th id the backend made up, so the same
program runs again against a backend that makes up new ones). A FAIL's script replays the
shrunk program against the same TARGET through :class:`Replay`, which runs the step and then
the machine's invariants, exactly as hypothesis did, and stops at the divergence::

    python B04-list-order.py                      # exit 1: the divergence shows again
    sessionspec verify --replay B04-list-order.py  # the same, through the kit

A script is plain Python: edit it, trim it, step through it with a debugger.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sessionspec.conformance.errors import KitError
from sessionspec.conformance.registry import BehaviourViolation

if TYPE_CHECKING:
    from sessionspec.conformance.context import RunState

#: The steps a script may call; anything else on ``m`` is a plain attribute (``m.created``).
STEPS = frozenset(
    {
        "create",
        "create_many",
        "ensure",
        "ensure_invalid",
        "get",
        "list_sessions",
        "get_conversation_id",
        "add_turn",
        "update",
        "reset",
        "set_conversation_id",
        "delete",
        "advance_clock",
        "flush",
        "reopen",
        "writes_nothing",
        "load_file",
        "break_directory",
        "repair_directory",
        "open_directory_path",
        "second_instance",
    }
)


class Diverged(Exception):
    """A replayed program diverged from the model (``violation`` says how, ``step`` where)."""

    def __init__(self, violation: BehaviourViolation, step: int) -> None:
        super().__init__(f"{violation.behaviour_id}: {violation.message}")
        self.violation = violation
        self.step = step


@dataclass
class ReplayOutcome:
    """What replaying a script showed: the divergence, or None when the program ran through."""

    target: str
    steps: int
    divergence: Diverged | None


#: Set while ``sessionspec verify --replay`` runs a script: divergences are raised to the kit
#: instead of ending the process.
_THROUGH_KIT: list[bool] = []


class Replay:
    """A backend and the kit's model driven step by step by a replay script.

    ``Replay(target, levels=[...])`` opens the backend on a fresh path with the kit's fake
    clock, as the machine did; every step (``m.create()``, ``m.add_turn(...)``) runs the
    machine's step and then its invariants. At the first divergence it prints the behaviour,
    the message and the difference, and ends the process with status 1 (or, under
    ``sessionspec verify --replay``, hands the divergence to the kit).
    """

    def __init__(
        self,
        target: str | Callable[..., Any],
        *,
        levels: Iterable[str],
        directory: str | None = None,
    ) -> None:
        from sessionspec.conformance.engine import expand_levels
        from sessionspec.conformance.loading import load_target
        from sessionspec.conformance.machine import MachineConfig, machine_class

        if directory and directory not in sys.path:
            # Where ``sessionspec verify`` ran: a ``module:attr`` TARGET resolved from there.
            sys.path.append(directory)
        factory = load_target(target) if isinstance(target, str) else target
        self.target = target if isinstance(target, str) else repr(target)
        self._workdir = Path(tempfile.mkdtemp(prefix="sessionspec-replay-"))
        config = MachineConfig(factory, expand_levels(levels), self._workdir, echo=True)
        self.steps = 0
        print(f"# replaying against {self.target}", flush=True)
        self._machine = self._guard(lambda: machine_class(config)())
        self._guard(self._invariants)

    def _invariants(self) -> None:
        self._machine.reads_agree()
        self._machine.list_agrees()

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except BehaviourViolation as violation:
            raise self._diverged(violation) from None

    def _diverged(self, violation: BehaviourViolation) -> BaseException:
        from sessionspec.conformance.machine import name_ids, named_difference

        created = getattr(getattr(self, "_machine", None), "created", [])
        violation.message = name_ids(violation.message, created) or violation.message
        violation.diff = named_difference(violation, created)
        divergence = Diverged(violation, self.steps)
        if _THROUGH_KIT:
            return divergence
        print(render_divergence(divergence), file=sys.stderr, flush=True)
        self.close()
        return SystemExit(1)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._machine, name)
        if name not in STEPS:
            return value

        def step(*args: Any, **kwargs: Any) -> None:
            self.steps += 1
            self._guard(lambda: value(*args, **kwargs))
            self._guard(self._invariants)

        return step

    def done(self) -> None:
        """The end of the program: no divergence. Prints so and closes the backend."""
        print(f"# no divergence: the program ran to its end ({self.steps} steps)", flush=True)
        self.close()

    def close(self) -> None:
        """Close the backend and remove the replay's directory."""
        with contextlib.suppress(Exception):
            self._machine.teardown()
        shutil.rmtree(self._workdir, ignore_errors=True)


def render_divergence(divergence: Diverged) -> str:
    """The divergence as the kit reports it: behaviour, step, message, difference."""
    from sessionspec.conformance.report import describe

    violation = divergence.violation
    lines = [f"DIVERGENCE at step {divergence.step}: {violation.behaviour_id}: {violation.message}"]
    if violation.diff:
        lines += [f"  {line}" for line in violation.diff]
    else:
        for label, value in (("expected", violation.expected), ("actual", violation.actual)):
            if value is not None:
                lines.append(f"{label}: {describe(value)}")
    return "\n".join(lines)


def replay_script(
    run: RunState,
    violation: BehaviourViolation,
    program: Sequence[str],
    shrink_note: str | None,
) -> str:
    """The Python text of the replay script of a machine FAIL (its program, shrunk)."""
    import sessionspec
    from sessionspec.spec import behaviour

    item = behaviour(violation.behaviour_id)
    levels = sorted(level.value for level in run.levels)
    target = run.target
    directory = os.getcwd()
    opening = (
        f"m = Replay({target!r}, levels={levels!r}, directory={directory!r})"
        if target
        else f"m = Replay(FACTORY, levels={levels!r})  # the factory was not importable by"
        " name: define FACTORY above"
    )
    steps = [line for line in program if not line.startswith("# storage = factory")]
    summary = violation.message.replace('"""', "'''").splitlines()[0][:200]
    header = [
        "#!/usr/bin/env python3",
        f'"""Replay of a sessionspec FAIL: {item.id} {item.slug}.',
        "",
        f"{summary}",
        "",
        f"Written by `sessionspec verify` (kit {sessionspec.versions().get('kit')},"
        f" profile {run.profile.name}, seed {run.seed}). Run it with `python <this file>`",
        "(exit status 1: the divergence shows again; 0: it does not), or",
        "`sessionspec verify --replay <this file>`. Steps are the machine's; `m.created[i]` is",
        "the i-th id the backend returned.",
    ]
    if shrink_note:
        header += ["", f"Note: {shrink_note}."]
    header += [
        '"""',
        "",
        "import datetime  # noqa: F401  (the reprs below name datetime.datetime, ...)",
        "",
        "from sessionspec.conformance.replay import Replay",
        "from sessionspec.spec import ConversationTurn  # noqa: F401",
        "",
        opening,
    ]
    return "\n".join([*header, *steps, "m.done()", ""])


def script_name(violation: BehaviourViolation) -> str:
    """The file name of a FAIL's replay script: ``B04-list-order.py``."""
    from sessionspec.spec import behaviour

    item = behaviour(violation.behaviour_id)
    return f"{item.id}-{item.slug}.py"


@contextlib.contextmanager
def _through_kit() -> Iterator[None]:
    _THROUGH_KIT.append(True)
    try:
        yield
    finally:
        _THROUGH_KIT.pop()


def run_replay(path: Path, target: str | None = None) -> ReplayOutcome:
    """Run a replay script through the kit (``sessionspec verify --replay FILE [TARGET]``):
    the divergence it shows, or None. ``target`` replaces the script's own TARGET."""
    if not path.is_file():
        raise KitError(f"no such replay script: {path}")
    replays: list[Replay] = []
    original = Replay.__init__

    def remember(
        self: Replay, script_target: Any, *, levels: Iterable[str], directory: str | None = None
    ) -> None:
        original(self, target or script_target, levels=levels, directory=directory)
        replays.append(self)

    with _through_kit(), _patched(Replay, "__init__", remember):
        try:
            runpy.run_path(str(path), run_name="__main__")
        except Diverged as divergence:
            name = replays[-1].target if replays else str(target)
            if replays:
                replays[-1].close()
            return ReplayOutcome(name, divergence.step, divergence)
    if not replays:
        raise KitError(f"{path} is not a replay script: it never creates Replay(...)")
    return ReplayOutcome(replays[-1].target, replays[-1].steps, None)


@contextlib.contextmanager
def _patched(owner: type, name: str, value: Any) -> Iterator[None]:
    saved = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)
