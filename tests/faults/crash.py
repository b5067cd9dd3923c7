"""Seeded faults of B31 (crash-safe): what a process killed at any moment leaves behind.

Each is the reference ``FileSessionStorage`` (which claims shared) with one piece changed, as
such a bug would be written. Only the kit's kill storm (``checks_crash.py``) sees them: no
other check kills a writer, so none finds the debris a killed one leaves.
"""

from __future__ import annotations

from sessionspec.reference import FileSessionStorage

from ._registry import fault


@fault(
    "B31",
    "dead-writers-temps-stay",
    "a save never removes the <name>.shared-*.tmp of writers killed mid-save: every kill"
    " leaves one more temp file, for ever (B16 leaves shared temps to the saves)",
)
class DeadWritersTempsStay(FileSessionStorage):
    def _remove_dead_temps(self) -> None:
        # The bug: "another instance may be using it" -- but under the lock no live writer
        # has a shared temp file, so each one found is a dead writer's (SPEC.md 8.3).
        return None
