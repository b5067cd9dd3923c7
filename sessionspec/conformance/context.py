"""What a check gets to work with: the factory, a fresh directory, a fake clock, log capture."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessionspec.conformance.clock import FakeClock
from sessionspec.conformance.registry import Check, expect
from sessionspec.spec import Level, SessionData, SessionStorage


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

    def open(
        self, path: Path | None = None, clock: FakeClock | None = None, *, raw: bool = False
    ) -> SessionStorage:
        """A new instance from the factory, closed at cleanup.

        Unless ``raw``, reads come back as tuples of turns (``SnapshotView``): whether a result
        is a proper snapshot is B24's check (which opens raw), so other checks compare content
        only and one fault is not reported under every behaviour that reads.
        """
        storage: SessionStorage = self.run.factory(path or self.path, clock=clock or self.clock)
        self._opened.append(storage)
        return storage if raw else SnapshotView(storage)

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


def as_snapshot(item: Any) -> Any:
    """``item`` with its turns as a tuple, when it is a SessionData holding another sequence."""
    if isinstance(item, SessionData) and type(item.turns) is not tuple:
        with contextlib.suppress(TypeError):
            return dataclasses.replace(item, turns=tuple(item.turns))
    return item


class SnapshotView:
    """A backend seen through reads normalised by ``as_snapshot``; everything else passes."""

    def __init__(self, storage: SessionStorage) -> None:
        self._storage = storage

    def get_session(self, session_id: str) -> Any:
        return as_snapshot(self._storage.get_session(session_id))

    def list_sessions(self) -> Any:
        listed = self._storage.list_sessions()
        return [as_snapshot(item) for item in listed] if isinstance(listed, list) else listed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def __enter__(self) -> SnapshotView:
        self._storage.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._storage.__exit__(*exc_info)
