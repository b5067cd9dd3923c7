"""Trimming a failing program (sessionspec/conformance/trim.py): steps dropped, batches
made smaller, ids renumbered, strings emptied, and only while the divergence stays the same."""

from __future__ import annotations

from pathlib import Path

from faults.core import AddTurnNoTouch

from sessionspec.conformance.trim import run_program, signature, trim
from sessionspec.reference import InMemorySessionStorage
from sessionspec.spec import Level

CORE = frozenset({Level.CORE})
TURN = (
    "ConversationTurn(prompt='\\U0001f44d long prompt', response='r',"
    " timestamp=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))"
)
#: B02 (add_turn must touch) needs two sessions and a turn on the older one; the rest is noise.
NOISY = [
    "# storage = factory(<dir>/store/sessions.json, clock) at 2031-03-14T15:09:26Z",
    "m.create_many(6)  # m.created[0] to m.created[5]",
    "m.create()  # m.created[6]",
    "m.get(m.created[6])",
    "m.advance_clock(datetime.timedelta(seconds=1))",
    f"m.add_turn(m.created[3], {TURN})",
    "m.list_sessions()",
]


def test_a_noisy_program_trims_to_the_two_creates_and_the_turn(tmp_path: Path) -> None:
    found = run_program(AddTurnNoTouch, CORE, tmp_path, NOISY[1:])
    assert found is not None, "the noisy program diverges"
    violation, program, created = found
    assert violation.behaviour_id == "B02"
    result = trim(
        AddTurnNoTouch, CORE, tmp_path, program, violation, created, budget=200, seconds=60
    )
    assert result.minimal, result
    steps = [line for line in result.program if not line.startswith("#")]
    # 1-minimal: two sessions and the turn on the older, or one session, a tick and the turn.
    assert len(steps) <= 3, steps
    assert steps[0].startswith(("m.create_many(1)", "m.create_many(2)", "m.create()")), steps
    assert steps[-1].startswith("m.add_turn(m.created[0], ConversationTurn(prompt='', response=''")
    assert signature(result.violation, result.created) == signature(violation, created)


def test_trimming_keeps_the_divergence_not_any_divergence(tmp_path: Path) -> None:
    """Dropping the batch would leave a program naming ids nobody made: never tried as a
    'shorter program', and the turn's session stays the older one."""
    found = run_program(AddTurnNoTouch, CORE, tmp_path, NOISY[1:])
    assert found is not None
    result = trim(AddTurnNoTouch, CORE, tmp_path, found[1], found[0], found[2], budget=200,
                  seconds=60)  # fmt: skip
    replayed = run_program(AddTurnNoTouch, CORE, tmp_path, result.program)
    assert replayed is not None and replayed[0].behaviour_id == "B02"
    assert run_program(InMemorySessionStorage, CORE, tmp_path, result.program) is None, (
        "the trimmed program passes on a correct backend"
    )


def test_the_budget_bounds_trimming(tmp_path: Path) -> None:
    found = run_program(AddTurnNoTouch, CORE, tmp_path, NOISY[1:])
    assert found is not None
    result = trim(AddTurnNoTouch, CORE, tmp_path, found[1], found[0], found[2], budget=2,
                  seconds=60)  # fmt: skip
    assert result.runs == 2 and not result.minimal
    assert run_program(AddTurnNoTouch, CORE, tmp_path, result.program) is not None


def test_a_program_that_does_not_diverge_runs_through(tmp_path: Path) -> None:
    assert run_program(InMemorySessionStorage, CORE, tmp_path, NOISY[1:]) is None
    assert run_program(AddTurnNoTouch, CORE, tmp_path, ["m.add_turn(m.created[9], None)"]) is None
