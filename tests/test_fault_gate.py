"""The conformance kit proves itself: every seeded fault of tests/faults is caught, and named.

For each faulty backend the kit runs in-process and the verdict must be FAIL with the fault's
target behaviour among the failing ones; the reference backends (and the seams the faults are
built on) must pass. docs/mutation-testing.md and docs/kill-matrix.md explain the choices:

- Profile ``smoke`` and only the target behaviour: the gate asks "does the kit catch this
  fault under the right name", not "what else does it trip" (the kill matrix answers that,
  on demand, with the full ``ci`` run). The target's deterministic checks run first; the
  stateful machine (the slow part, because it shrinks what it finds) runs only when they all
  pass, so most faults cost well under a second and the gate stays within its CI budget.
- One test per fault, so ``pytest -n 2`` spreads them over both cores.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from faults import CONTROLS, FAULTS, Fault

from sessionspec import conformance
from sessionspec.conformance import Report, Status
from sessionspec.conformance.context import PROFILES
from sessionspec.conformance.registry import all_checks
from sessionspec.reference import FileSessionStorage, InMemorySessionStorage
from sessionspec.spec import Level, behaviour, behaviours

GATE_PROFILE = "smoke"

#: Faults the kit does not catch yet under the gate's profile, with the missing check; each
#: is a kit gap to close, then to remove from here. Empty: the six gaps the first version of
#: the gate found (update of existing turns, order by last access, delete of an expired
#: session, ensure after delete, revive before purge, expired sessions in the file) were
#: closed in sessionspec/conformance/checks_core.py.
KIT_GAPS: dict[str, str] = {}


def _params() -> list[Any]:
    return [
        pytest.param(
            item,
            id=f"{item.target}-{item.name}",
            marks=[pytest.mark.xfail(reason=f"kit gap: {KIT_GAPS[item.name]}", strict=True)]
            if item.name in KIT_GAPS
            else [],
        )
        for item in FAULTS
    ]


def _failing(report: Report) -> set[str]:
    return {bid for bid, result in report.results.items() if result.status is Status.FAIL}


def _story(report: Report) -> str:
    lines = []
    for bid, result in report.results.items():
        for item in result.failures:
            lines.append(f"{bid} {item.check}: {item.message[:200]}")
    return "\n".join(lines) or "(no failing check)"


def catch(item: Fault, profile: str = GATE_PROFILE) -> Report:
    """Verify a faulty backend on its target: deterministic checks first, then the machine."""
    targeted = [
        c.node_id
        for c in all_checks()
        if c.behaviour.id == item.target and c.name != "state_machine"
    ]
    report = conformance.verify(item.factory, profile=profile, only=targeted)
    if report.results[item.target].status is Status.FAIL:
        return report
    return conformance.verify(item.factory, profile=profile, only=[item.target])


def test_every_behaviour_has_a_fault() -> None:
    targets = {item.target for item in FAULTS}
    assert targets == {b.id for b in behaviours()}
    assert len(FAULTS) >= 40
    names = [item.name for item in FAULTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("item", _params())
def test_kit_catches_fault(item: Fault) -> None:
    levels = {Level(level) for level in item.levels}
    assert behaviour(item.target).level in levels | {Level.CORE}, "the fault's level is claimed"
    report = catch(item)
    assert not report.ok, f"{item.name}: the kit passed a faulty backend ({item.description})"
    failing = _failing(report)
    assert item.target in failing, (
        f"{item.name} ({item.description}) was caught as {sorted(failing)}, not as {item.target}:"
        f"\n{_story(report)}"
    )


@pytest.mark.parametrize(
    "factory",
    [FileSessionStorage, InMemorySessionStorage, *CONTROLS],
    ids=lambda factory: factory.__name__,
)
def test_correct_backends_pass(factory: Any) -> None:
    report = conformance.verify(factory, profile="ci")
    assert report.ok, _story(report)
    counts = report.counts()
    if Level.FILE_V1 in {Level(level) for level in report.levels}:
        assert counts["PASS"] == len(behaviours()), counts
    else:
        assert counts["PASS"] + counts["N/A"] == len(behaviours()) and counts["FAIL"] == 0, counts


#: Faults of the rules spec 1.1 gave an owner: the full ``ci`` verdict, every behaviour run,
#: must fail their owner and nothing else (SPEC.md §9; issue "Spec 1.1").
EXACT_OWNERS = (
    "get-session-touches",
    "get-cid-touches",
    "keeps-callers-turns-list",
    "mutable-snapshot-turns",
    "close-forgets-on-failure",
)


@pytest.mark.parametrize("name", EXACT_OWNERS)
def test_fault_fails_exactly_the_behaviour_that_owns_its_rule(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shrinking is bounded in wall time; under CI load a cut-short shrink gives another
    # program. Unbounded here, the verdict depends only on the seed (it takes ~25 s a fault).
    monkeypatch.setitem(PROFILES, "ci", replace(PROFILES["ci"], shrink_seconds=600))
    item = next(f for f in FAULTS if f.name == name)
    report = conformance.verify(item.factory, profile="ci")
    assert _failing(report) == {item.target}, _story(report)
