"""What a check gets to work with: the factory, a fresh directory, a fake clock, log capture."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.clock import FakeClock
from conformance.registry import Check, expect
from spec import Level, SessionStorage


@dataclass(frozen=True)
class Profile:
    """A hypothesis budget and sizes of the process-level checks."""

    name: str
    max_examples: int
    step_count: int
    #: How many machine runs at most: each rerun masks the behaviours already found failing.
    machine_runs: int
    derandomize: bool
    #: How many large saves the B19 concurrent reader watches.
    reader_saves: int
    #: Mutations per burst in B21.
    burst: int
    #: Upper bound on hypothesis shrinking per machine failure.
    shrink_seconds: int


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", 10, 25, 2, True, 8, 40, 10),
    "ci": Profile("ci", 35, 40, 4, True, 20, 200, 20),
    "thorough": Profile("thorough", 400, 80, 8, False, 80, 2000, 120),
}


class LogCapture(logging.Handler):
    """Collects every record reaching the root logger while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno == level]

    def messages(self, level: int) -> list[str]:
        out = []
        for record in self.at(level):
            try:
                out.append(record.getMessage())
            except Exception:  # a backend's bad format string must not crash the kit
                out.append(str(record.msg))
        return out


@contextlib.contextmanager
def capture_logs() -> Iterator[LogCapture]:
    """Install a capturing handler on the root logger (backends log to named loggers that
    propagate there, SPEC.md §5)."""
    root = logging.getLogger()
    handler = LogCapture()
    old_level = root.level
    root.addHandler(handler)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@dataclass
class RunState:
    """Everything shared by the checks of one verification run."""

    factory: Callable[..., Any]
    target: str | None
    levels: frozenset[Level]
    profile: Profile
    seed: int | None
    workdir: Path
    cache: dict[str, Any] = field(default_factory=dict)

    def claims(self, level: Level) -> bool:
        return level in self.levels


class CheckContext:
    """A check's view of the run: one fresh directory, one clock, the storages it opened."""

    def __init__(self, run: RunState, check: Check) -> None:
        self.run = run
        self.check = check
        self.clock = FakeClock()
        self.dir = Path(tempfile.mkdtemp(prefix=check.behaviour.id + "-", dir=run.workdir))
        self._opened: list[SessionStorage] = []
        #: Remarks shown with the result (for example how syscalls were observed).
        self.notes: list[str] = []

    @property
    def behaviour_id(self) -> str:
        return self.check.behaviour.id

    @property
    def factory(self) -> Callable[..., Any]:
        return self.run.factory

    @property
    def path(self) -> Path:
        """The default sessions file of this check (inside a not-yet-existing directory)."""
        return self.dir / "store" / "sessions.json"

    def claims(self, level: Level) -> bool:
        return self.run.claims(level)

    def open(self, path: Path | None = None, clock: FakeClock | None = None) -> SessionStorage:
        storage: SessionStorage = self.run.factory(path or self.path, clock=clock or self.clock)
        self._opened.append(storage)
        return storage

    def expect(
        self, condition: object, message: str, *, expected: object = None, actual: object = None
    ) -> None:
        """Assert for this check's own behaviour (and no other)."""
        expect(self.behaviour_id, condition, message, expected=expected, actual=actual)

    def expect_equal(self, actual: object, expected: object, message: str) -> None:
        self.expect(actual == expected, message, expected=expected, actual=actual)

    def cleanup(self) -> None:
        for storage in self._opened:
            with contextlib.suppress(Exception):
                storage.close()
        self._opened.clear()
        # Restore permissions the check may have changed so the tree can be removed.
        for root, dirs, _files in os.walk(self.dir):
            for name in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(self.dir, ignore_errors=True)
