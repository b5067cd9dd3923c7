"""Seeded faulty backends: the conformance kit must catch each and name the right behaviour.

Every fault is a class derived from a reference backend (through the seams of ``_base``, or,
for the shared level, the reference ``FileSessionStorage`` itself) that
differs from it by one realistic bug. The class is the kit factory
(``factory(path, *, clock)``), inherits ``sessionspec_levels`` from the reference backend it
comes from, and carries ``fault_name``, ``fault_target`` (the behaviour ID whose rule it
breaks) and ``fault_description``. ``FAULTS`` lists them in behaviour order.

tests/test_fault_gate.py runs the kit on each one; ``python -m tests.faults.kill_matrix``
writes docs/kill-matrix.md.
"""

from __future__ import annotations

from . import core, crash, exits, files, injected, reads, saving, shared
from ._base import HookedFileStorage, HookedMemoryStorage
from ._registry import REGISTRY, Fault, fault

FAULTS: tuple[Fault, ...] = tuple(sorted(REGISTRY, key=lambda f: f.target))

#: The seams without any fault: they must pass the kit like the reference does.
CONTROLS = (HookedFileStorage, HookedMemoryStorage)

__all__ = [
    "CONTROLS",
    "FAULTS",
    "Fault",
    "core",
    "crash",
    "exits",
    "fault",
    "files",
    "injected",
    "reads",
    "saving",
    "shared",
]
