"""What a check gets to work with: the factory, a fresh directory, a fake clock, log capture."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessionspec.conformance.clock import FakeClock
from sessionspec.conformance.registry import Check, PreconditionFailed, expect
from sessionspec.spec import Level, SessionData, SessionStorage, writer_validator

ZERO = datetime.timedelta(0)


@dataclass(frozen=True)
class Profile:
    """A hypothesis budget and sizes of the process-level checks."""

    name: str
    max_examples: int
    step_count: int
    derandomize: bool
    #: How many large saves the B19 concurrent reader watches.
    reader_saves: int
    #: Mutations per burst in B21.
    burst: int
    #: The shrink budget of a machine failure, in program runs: the same result every run.
    shrink_runs: int
    #: A wall-time backstop on the machine run, for slow backends (the report says if hit).
    shrink_seconds: int


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", 10, 25, True, 8, 40, 40, 60),
    "ci": Profile("ci", 35, 40, True, 20, 200, 40, 180),
    "thorough": Profile("thorough", 400, 80, False, 80, 2000, 3000, 900),
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

    def expect_same_store(
        self, actual: list[Any], expected: list[Any], message: str, *, fields: bool = False
    ) -> None:
        """Two views of a store (lists of sessions, their JSON objects, or (id, ...) tuples)
        hold the same sessions: that is this check's point. That they are in the same order
        is B04's rule, and that each holds the same fields B09's (a reader or writer that
        garbles a field): preconditions here, unless this check is theirs, so one order or
        field bug is one FAIL. ``fields``: the fields are this check's point too."""
        ids_actual, ids_expected = _ids_of(actual), _ids_of(expected)
        self.expect(
            sorted(ids_actual) == sorted(ids_expected),
            f"{message}: not the same sessions",
            expected=ids_expected,
            actual=ids_actual,
        )
        if self.behaviour_id != "B04" or ids_actual == ids_expected:
            self.require("B04", ids_actual == ids_expected, f"{message}: not in the same order")
        else:
            self.expect(False, f"{message}: not in the same order", expected=ids_expected,
                        actual=ids_actual)  # fmt: skip
        by_id = dict(zip(ids_expected, expected, strict=True))
        for session_id, item in zip(ids_actual, actual, strict=True):
            want = by_id.get(session_id)
            if fields or self.behaviour_id == "B09":
                self.expect(item == want, message, expected=want, actual=item)
            elif item != want:
                self.require("B09", False, f"{message}: session {session_id!r} differs")
        self.expect(actual == expected, message, expected=expected, actual=actual)

    def reopen(self, storage: Any = None, path: Path | None = None) -> SessionStorage:
        """Close ``storage`` (if given) and open the same path again, after requiring that
        what the backend wrote there is a valid file (B10's rule: a BOM, invalid UTF-8 or a
        schema error would make the reopen fail every check that reopens, for one cause)."""
        before: Any = None
        if storage is not None:
            with contextlib.suppress(Exception):
                before = storage.list_sessions()
            storage.close()
        self.require_valid_file(path or self.path)
        reopened = self.open(path)
        try:
            after = reopened.list_sessions()  # SnapshotView: naive timestamps stop here (B09)
        except PreconditionFailed:
            raise
        except Exception as exc:
            self.require("B09", False, f"after reopen, list_sessions() raised {exc!r}")
        if before is not None:
            # close() flushes (B21): sessions memory held must not be lost at close. (How
            # each is restored is B09's, and what this check judges.)
            lost = [i for i in _ids_of(before) if i not in _ids_of(after)]
            self.require("B21", not lost, f"sessions lost at close(): {lost!r:.200}")
        return reopened

    def require_valid_file(self, path: Path | None = None) -> None:
        """What the backend saved at ``path`` (if anything) is UTF-8 JSON without a BOM that
        validates against the writer profile (B10), as a precondition of a backend claiming
        file-v1. Any other keeps its store as it likes, at or beside the path (SPEC.md §8.7)."""
        if not self.claims(Level.FILE_V1):
            return
        problem = writer_problem(path or self.path)
        self.require("B10", problem is None, f"the file the backend saved: {problem}")

    def require(self, behaviour_id: str, condition: object, message: str) -> None:
        """State what this check needs from another behaviour (``behaviour_id``) before it
        can judge its own: when it does not hold, the check stops (PreconditionFailed), so
        one root cause is one FAIL, of ``behaviour_id``, not one more of this behaviour."""
        if not condition:
            raise PreconditionFailed(behaviour_id, message)

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


def writer_problem(path: Path) -> str | None:
    """What makes the file at ``path`` not a valid writer-profile file, or None (also when
    there is no file)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        return "it starts with a BOM"
    try:
        document = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        return f"not UTF-8 JSON ({exc})"
    error = next(iter(writer_validator().iter_errors(document)), None)
    return None if error is None else f"{list(error.path)}: {error.message}"


def _ids_of(items: list[Any]) -> list[Any]:
    """The session ids of a store view: ``.id``, ``["id"]`` or the first of a tuple."""
    ids = []
    for item in items:
        if isinstance(item, dict):
            ids.append(item.get("id"))
        elif isinstance(item, tuple):
            ids.append(item[0] if item else None)
        else:
            ids.append(getattr(item, "id", item))
    return ids


def as_snapshot(item: Any) -> Any:
    """``item`` with its turns as a tuple, when it is a SessionData holding another sequence.

    A read whose timestamps are not aware UTC datetimes stops the check (B09's rule: "as
    timezone-aware UTC datetimes"): comparing it would fail, or crash, every check that
    reads, each under its own behaviour, for one root cause.
    """
    if isinstance(item, SessionData):
        moments: list[Any] = [item.created_at, item.last_accessed_at]
        with contextlib.suppress(TypeError):
            moments += [getattr(turn, "timestamp", None) for turn in item.turns]
        for moment in moments:
            if isinstance(moment, datetime.datetime) and moment.utcoffset() != ZERO:
                raise PreconditionFailed(
                    "B09", f"a read returned {moment!r}, not an aware UTC datetime"
                )
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
