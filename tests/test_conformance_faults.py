"""Deliberately broken backends are failed on the behaviour their fault breaks, also when
``only`` selects that behaviour. (That a whole run names no other behaviour is
tests/test_fault_gate.py's, for every seeded fault.)"""

from __future__ import annotations

import faulty_backends as faulty
import pytest

from sessionspec.conformance import Status, verify

FAULTS = [
    (faulty.AddTurnDoesNotTouch, "B02"),
    (faulty.TiesInCreationOrder, "B04"),
    (faulty.DollarAcceptsTrailingNewline, "B08"),
    (faulty.BackupOverwrites, "B13"),
    (faulty.ExpiresAtExactly24Hours, "B17"),
    (faulty.NoDirectoryFsync, "B19"),
    (faulty.SwallowsFlushErrors, "B22"),
]


@pytest.mark.parametrize(("backend", "behaviour"), FAULTS, ids=[f[0].__name__ for f in FAULTS])
def test_fault_fails_its_behaviour(backend: type, behaviour: str) -> None:
    report = verify(backend, profile="smoke", only=[behaviour])
    result = report.results[behaviour]
    assert result.status is Status.FAIL
    assert report.exit_code == 1
    for failure in result.failures:
        assert failure.check.startswith(f"{behaviour}-")
        assert failure.message
