"""The kill criterion of a mutation run over the kit's own model and oracle (on demand).

Not part of CI: it only runs when ``SESSIONSPEC_MUTATION=1`` (``bash tests/mutation/run.sh
kit``; docs/mutation-testing.md has the figures). The kit judges backends, so a mutant of its
model (``conformance/model.py``) or oracle (``conformance/oracle.py``) is killed when the kit
judges wrongly, in either direction:

- it fails a correct backend: both reference backends must PASS the ``smoke`` profile
  (``test_reference_passes``; the file backend in three groups, cheapest first);
- it misses a seeded fault of tests/faults: each fault of ``CAUGHT`` must FAIL under its own
  behaviour (``test_seeded_fault_is_caught``).

tests/test_oracle.py and tests/test_conformance_model.py, which pin the oracle and the model to
the vectors and to SPEC.md's examples, run alongside (run.sh selects them).

``CAUGHT`` holds one fault per behaviour whose verdict rests on the model or the oracle (B01-B18,
B23, B24: the model is the state machine's oracle, the oracle module gives the id rule, the
timestamp grammar and arithmetic, the expiry rule and the constants to every check), the
quickest one the kit catches. ``machine`` faults are verified with the behaviour's state
machine alone (``only=["Bxx-slug::state_machine"]``): the model is that machine's oracle, and
the behaviour's deterministic checks (which do not use the model) would otherwise catch the
fault for it and hide a blinded model. Behaviours whose faults the ``smoke`` machine does not
catch (B03, B05, B06, B09-B16) are verified with all their checks (``only=[target]``), as
tests/test_fault_gate.py does. B19-B22 (processes, saving) are left to the reference: their
checks use the oracle only for timestamps and the clock, which every check also uses.
"""

from __future__ import annotations

from typing import Any

import pytest
from faults import FAULTS, Fault

# The same switch, profile and groups as the reference's mutation suite.
from test_kit_on_reference import FILES, MACHINE, PROCESSES, PROFILE, pytestmark  # noqa: F401

from sessionspec import conformance
from sessionspec.conformance import Report, Status
from sessionspec.conformance.registry import all_checks
from sessionspec.reference import FileSessionStorage, InMemorySessionStorage

#: fault name -> how it is verified: "machine" (the target's state machine alone) or
#: "target" (every check of the target). Seconds are those of one run on the 2-core machine.
CAUGHT: dict[str, str] = {
    "uuid1-ids": "machine",  # B01, 0.4 s
    "add-turn-conjures": "machine",  # B02, 1.3 s
    "reset-keeps-conversation-id": "target",  # B03, 0.9 s
    "ties-in-creation-order": "machine",  # B04, 0.8 s
    "file-in-creation-order": "machine",  # B04 after a reopen (model.load), 8 s
    "deleted-stays-in-file": "target",  # B05, 1.0 s
    "update-none-ignored": "target",  # B06, 1.4 s
    "ensure-recreates": "machine",  # B07, 11 s
    "lenient-grammar": "machine",  # B08, 3.3 s
    "touched-only-not-saved": "target",  # B09, 1.9 s
    "timestamps-with-microseconds": "machine",  # B10 writer form, 1.3 s
    "flush-writes-untouched-store": "target",  # B11, 0.7 s
    "read-error-moves-aside": "target",  # B12, 1.1 s
    "backup-named-by-wall-clock": "target",  # B13 backup <epoch-ms>, 0.8 s
    "true-is-version-1": "target",  # B14, 1.0 s
    "one-bad-turn-drops-file": "target",  # B15, 1.4 s
    "stale-by-wall-clock": "target",  # B16 stale age, 1.1 s
    "ttl-inclusive": "machine",  # B17 the 24 h boundary, 12 s
    "add-turn-revives-expired": "target",  # B17, 1.1 s
    "cap-off-by-one": "machine",  # B18, 2.1 s
    "get-cid-touches": "machine",  # B23, 1.1 s
    "mutable-snapshot-turns": "machine",  # B24, 0.4 s
}

_BY_NAME = {item.name: item for item in FAULTS}


def _failing(report: Report) -> dict[str, list[str]]:
    return {
        bid: [f"{c.check}: {c.message[:300]}" for c in result.failures]
        for bid, result in report.results.items()
        if result.status is Status.FAIL
    }


def _verify(factory: Any, only: list[str] | None) -> Report:
    return conformance.verify(factory, profile=PROFILE, only=only)


def test_reference_memory_backend_passes() -> None:
    failed = _failing(_verify(InMemorySessionStorage, None))
    assert not failed, failed


@pytest.mark.parametrize("group", [MACHINE, FILES, PROCESSES], ids=["machine", "files", "procs"])
def test_reference_file_backend_passes(group: list[str]) -> None:
    failed = _failing(_verify(FileSessionStorage, group))
    assert not failed, failed


def _machine_node(behaviour_id: str) -> str:
    (node,) = [
        c.node_id
        for c in all_checks()
        if c.behaviour.id == behaviour_id and c.name == "state_machine"
    ]
    return node


def _target(name: str) -> str:
    return _BY_NAME[name].target


#: In behaviour order.
FAULT_NAMES: list[str] = sorted(CAUGHT, key=_target)


@pytest.fixture(scope="module")
def kit_passes_the_memory_reference() -> None:
    """A kit that fails the reference catches every fault for nothing: catching one means
    something only when the reference passes. Checked once, before the first fault; a
    mutant that breaks it fails every fault test at once (cheaper than waiting for
    ``test_reference_memory_backend_passes``, which mutmut runs after the quick faults)."""
    test_reference_memory_backend_passes()


@pytest.mark.usefixtures("kit_passes_the_memory_reference")
@pytest.mark.parametrize("name", FAULT_NAMES)
def test_seeded_fault_is_caught(name: str) -> None:
    item: Fault = _BY_NAME[name]
    only = [_machine_node(item.target)] if CAUGHT[name] == "machine" else [item.target]
    report = _verify(item.factory, only)
    result = report.results[item.target]
    assert result.status is Status.FAIL, (
        f"{item.target} {name} ({' '.join(only)}): {result.status.value}, want FAIL"
    )


def test_every_listed_fault_exists() -> None:
    assert set(CAUGHT) <= set(_BY_NAME)
