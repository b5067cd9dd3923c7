"""The conformance kit as the test suite of a mutation run over the reference (on demand).

Not part of CI: it only runs when ``SESSIONSPEC_MUTATION=1`` (docs/mutation-testing.md has the
command). Every test verifies a reference backend with the kit and asserts the verdict is
PASS, so a mutant of ``sessionspec/reference/`` is killed exactly when the kit fails it. The
file backend is split into groups (the machine's behaviours, the file checks, the process
checks, the shared level, kills and exits), cheapest first, so a mutant the first group kills
costs a few seconds, not a full run.
"""

from __future__ import annotations

import os

import pytest

from sessionspec import conformance
from sessionspec.conformance import Status
from sessionspec.reference import FileSessionStorage, InMemorySessionStorage

pytestmark = pytest.mark.skipif(
    os.environ.get("SESSIONSPEC_MUTATION") != "1",
    reason="mutation testing runs on demand: SESSIONSPEC_MUTATION=1 (docs/mutation-testing.md)",
)

#: The profile of the kit used for every mutant (the lightest one).
PROFILE = os.environ.get("SESSIONSPEC_MUTATION_PROFILE", "smoke")

MACHINE = [f"B{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 18, 23, 24)]
FILES = ["B10", "B11", "B12", "B13", "B14", "B15", "B16", "B20"]
PROCESSES = ["B19", "B21", "B22"]
#: The shared level (many instances on one path: the merge, taking in others' saves, the lock).
SHARED = ["B25", "B26", "B27", "B28", "B29", "B30"]
#: Kills, hostile paths, exits: real child processes, the dearest.
ENDINGS = ["B31", "B32", "B33"]


def _verify(factory: object, only: list[str] | None) -> None:
    report = conformance.verify(factory, profile=PROFILE, only=only)  # type: ignore[arg-type]
    failed = {
        bid: [f"{c.check}: {c.message}" for c in result.failures]
        for bid, result in report.results.items()
        if result.status is Status.FAIL
    }
    assert not failed, failed


def test_memory_backend() -> None:
    _verify(InMemorySessionStorage, None)


@pytest.mark.parametrize(
    "group",
    [MACHINE, FILES, PROCESSES, SHARED, ENDINGS],
    ids=["machine", "files", "procs", "shared", "endings"],
)
def test_file_backend(group: list[str]) -> None:
    _verify(FileSessionStorage, group)
