"""Deliberately broken backends are failed on the behaviour their fault breaks."""

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


@pytest.mark.parametrize(
    ("backend", "behaviour"),
    [(faulty.NoDirectoryFsync, "B19"), (faulty.ExpiresAtExactly24Hours, "B17")],
    ids=["NoDirectoryFsync", "ExpiresAtExactly24Hours"],
)
def test_fault_is_attributed_to_its_behaviour_only(backend: type, behaviour: str) -> None:
    """A whole run reports the fault on its own behaviour and on no other."""
    report = verify(backend, profile="smoke")
    failing = {bid for bid, result in report.results.items() if result.status is Status.FAIL}
    assert failing == {behaviour}
