"""The state machine's file steps: files it did not write, write faults, a second instance.

A mixin of :class:`~sessionspec.conformance.machine.StorageMachine` (file-v1 unless said):

* ``load_file(raw)`` opens a new instance on a file the machine did not write (a vector, a
  document generated from the reader schema, or a targeted mutation of a valid one,
  :func:`~sessionspec.conformance.file_strategies.foreign_files`); the kit's own reader
  (:mod:`~sessionspec.conformance.oracle_reader`) says what must load (B13, B14, B15, B17,
  B18, B04), and later flushes check the backup rules (B15: kept before the first overwrite
  when lossy, never made when not);
* ``break_directory()`` / ``repair_directory()`` replace the store's directory by a regular
  file and back (ENOTDIR, root-safe): while broken, ``flush()`` of unsaved changes raises
  OSError; once repaired, the next ``flush()`` writes the full state, with or without a new
  mutation (B22, upstream's F7);
* ``open_directory_path()``: the path is a directory, so opening raises OSError and moves
  nothing (B12);
* ``second_instance()`` (durable): another instance on the same path sees the same store,
  and leaves what the file stores as it was (B09).

After every flush that wrote, the file is private (B20) and no temp file is left (B16); no
directory exists before the first mutation is saved (B11).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from sessionspec.conformance.file_strategies import foreign_files
from sessionspec.conformance.oracle_reader import Outcome, expected_load

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sessionspec.conformance.model import StoreModel
    from sessionspec.spec import SessionData

#: The backup names of B13: ``<name>.<epoch-ms>.bak`` or ``<name>.<epoch-ms>.<n>.bak``.
_BACKUP_SUFFIX = ".bak"


def backups(path: Path) -> dict[str, bytes]:
    """The backups of ``path`` in its directory (B13 names), by name, with their bytes."""
    found: dict[str, bytes] = {}
    prefix = path.name + "."
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return found
    for entry in entries:
        middle = entry.name[len(prefix) : -len(_BACKUP_SUFFIX)]
        if (
            entry.name.startswith(prefix)
            and entry.name.endswith(_BACKUP_SUFFIX)
            and middle.replace(".", "").isdigit()
            and entry.is_file(follow_symlinks=False)
        ):
            found[entry.name] = Path(entry.path).read_bytes()
    return found


def temp_files(path: Path) -> list[str]:
    """Temp files of ``path`` in its directory (``<name>.<middle>.tmp``, B16, B19)."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    prefix = path.name + "."
    return sorted(n for n in names if n.startswith(prefix) and n.endswith(".tmp"))


class FileSteps:
    """The file steps and their rules (see the module docstring)."""

    if TYPE_CHECKING:  # what StorageMachine provides
        storage: Any
        path: Path
        dir: Path
        config: ClassVar[Any]
        clock: Any
        model: StoreModel
        known: list[str]
        last_use: dict[str, str]
        saved_view: list[SessionData]
        mutated: bool

        @property
        def now(self) -> datetime: ...
        @property
        def file_v1(self) -> bool: ...
        @property
        def durable(self) -> bool: ...

        def say(self, text: str) -> None: ...
        def call(self, bid: str, function: Callable[..., Any], label: str, *args: Any) -> Any: ...
        def expect(
            self,
            bid: str,
            condition: object,
            message: str,
            *,
            expected: object = None,
            actual: object = None,
        ) -> None: ...
        def _open(self) -> Any: ...
        def compare_list(
            self, actual: Any, expected: list[SessionData], label: str, context: str | None = None
        ) -> None: ...
        def file_state(self) -> tuple[bool, object]: ...
        def check_file_after_flush(self, owner: str = "B21") -> None: ...

    #: The bytes of a foreign file loaded since the last save, and whether the load was lossy.
    foreign: bytes | None = None
    foreign_lossy: bool = False
    #: The store's directory is replaced by a regular file (a write fault is on).
    broken: bool = False
    #: The next flush must write the full state after a repaired fault (B22).
    after_fault: bool = False
    #: Changes not yet written by a flush that returned.
    dirty: bool = False
    loads: int = 0

    # -- rules -----------------------------------------------------------------------------
    @precondition(lambda self: self.file_v1 and not self.broken)
    @rule(data=st.data())
    def rule_load_file(self, data: st.DataObject) -> None:
        raw = data.draw(foreign_files(now=self.now), label="foreign file")
        self.load_file(raw)

    @precondition(lambda self: self.file_v1 and not self.broken)
    @rule()
    def rule_break_directory(self) -> None:
        self.break_directory()

    @precondition(lambda self: self.broken)
    @rule()
    def rule_repair_directory(self) -> None:
        self.repair_directory()

    @precondition(lambda self: self.file_v1 and not self.broken)
    @rule()
    def rule_open_directory_path(self) -> None:
        self.open_directory_path()

    @precondition(lambda self: self.durable and not self.broken)
    @rule()
    def rule_second_instance(self) -> None:
        self.second_instance()

    # -- steps -----------------------------------------------------------------------------
    def load_file(self, raw: bytes) -> None:
        """Close, then open a new instance on a fresh path holding ``raw`` (B13-B15, B17,
        B18, B04): it must hold what the kit's reader says, no more, no less."""
        self.say(f"m.load_file({raw!r})")
        self.call("B21", self.storage.close, "close()")
        self.loads += 1
        path = self.dir / f"load{self.loads}" / "sessions.json"
        path.parent.mkdir(parents=True, mode=0o700)
        path.write_bytes(raw)
        os.chmod(path, 0o600)
        self.path = path
        expected = expected_load(raw, self.now)
        owner = expected.behaviour or "B15"  # B13/B14 move aside, B15 records
        self.config.shared["machine_call"] = (owner, "factory(path) on a foreign file")
        self.storage = self.call(owner, self._open, "factory(...) on a foreign file")
        self.model.load(
            expected.sessions,
            expected.expired,
            origin="B15",
            evicted=[session.id for session in expected.evicted],
        )
        self.last_use.clear()
        for session in [*expected.sessions, *expected.expired]:
            if session.id not in self.known:
                self.known.append(session.id)
        self.saved_view = self.model.snapshot(self.now)
        self.mutated = False
        self.dirty = False
        if expected.outcome is Outcome.MOVE_ASIDE:
            kept = backups(path)
            self.expect(
                owner,
                raw in kept.values(),
                f"a file to move aside ({expected.reason}) must be kept byte-identical in"
                " <name>.<epoch-ms>.bak when the store opens",
                expected=raw[:120],
                actual=sorted(kept),
            )
            self.expect(
                owner,
                not path.exists() or path.read_bytes() != raw or raw in kept.values(),
                "the file was not moved aside",
            )
            self.foreign = None
        else:
            self.foreign = raw
            self.foreign_lossy = expected.lossy
        listed = self.call("B04", self.storage.list_sessions, "list_sessions() after load")
        # Which records load is B15's (B17 expired, B18 over the cap); what a loaded record
        # holds is B09's (read exactly); their order B04's.
        got = [getattr(item, "id", item) for item in listed] if isinstance(listed, list) else []
        want = list(expected.ids)
        expired = {session.id for session in expected.expired}
        evicted = {session.id for session in expected.evicted}
        for session_id in [i for i in got if i not in want] + [i for i in want if i not in got]:
            blame = "B17" if session_id in expired else "B18" if session_id in evicted else owner
            self.expect(
                blame,
                False,
                f"a foreign file ({expected.behaviour or 'clean'}) loads {got!r:.200}",
                expected=want,
                actual=got,
            )
        self.compare_list(
            listed, list(expected.sessions), "list_sessions() of a foreign file", "B09"
        )

    def break_directory(self) -> None:
        """Replace the store's directory by a regular file: every write fails (ENOTDIR)."""
        self.say("m.break_directory()  # flush(); the store's directory becomes a regular file")
        # Saved first: whatever changes come next cannot have been saved in the background.
        self.call("B21", self.storage.flush, "flush()")
        self.dirty = False
        folder = self.path.parent
        aside = folder.with_name(folder.name + ".aside")
        for _ in range(50):
            if folder.is_dir():
                # A writer that saves on a timer may re-create the directory at any moment:
                # the newest one is the one put back at repair.
                shutil.rmtree(aside, ignore_errors=True)
                folder.rename(aside)
            try:
                folder.write_bytes(b"not a directory\n")
                break
            except IsADirectoryError:
                continue
        self.broken = True

    def repair_directory(self) -> None:
        """Put the directory back: the next flush must write the full state (B22, F7)."""
        self.say("m.repair_directory()")
        self.put_directory_back()
        self.broken = False
        self.after_fault = self.dirty

    def put_directory_back(self) -> None:
        """Replace the regular file of a write fault by the directory put aside.

        Not atomic: between the unlink and the rename a write-behind writer may re-create the
        directory (B11) and save into it, and the rename then fails (ENOTEMPTY). What that
        writer saved is newer than the directory put aside: keep it, and move in only what it
        lacks (B13/B15 backups; the file, if the writer has not replaced it yet), never over
        a file the writer wrote meanwhile.
        """
        folder = self.path.parent
        aside = folder.with_name(folder.name + ".aside")
        if not folder.is_dir():  # a writer only re-creates a directory that is missing
            folder.unlink(missing_ok=True)
        if not aside.is_dir():
            return
        try:
            aside.rename(folder)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        for entry in os.scandir(aside):
            target = folder / entry.name
            with contextlib.suppress(FileExistsError):
                if entry.is_dir(follow_symlinks=False):
                    if not target.exists():
                        os.rename(entry.path, target)
                else:
                    os.link(entry.path, target, follow_symlinks=False)  # fails if it exists
        shutil.rmtree(aside, ignore_errors=True)

    def open_directory_path(self) -> None:
        """A second instance on a path that is a directory must raise OSError and change
        nothing (B12)."""
        self.say("m.open_directory_path()  # factory(<a directory>) must raise OSError")
        target = self.dir / "a-directory.json"
        target.mkdir(exist_ok=True)

        def around() -> list[str]:
            # Only what concerns this path: the main instance's writer may save meanwhile.
            names = [n for n in os.listdir(self.dir) if n.startswith(target.name)]
            return sorted(names) + sorted(os.listdir(target))

        before = around()
        self.config.shared["machine_call"] = ("B12", "factory(<a directory>)")
        try:
            other = self.config.factory(target, clock=self.clock)
        except OSError:
            pass
        except Exception as exc:
            self.expect("B12", False, f"opening a directory raised {exc!r}, not OSError")
        else:
            try:
                other.close()
            finally:
                self.expect("B12", False, "opening a path that is a directory did not raise")
        after = around()
        self.expect(
            "B12",
            target.is_dir() and after == before,
            "opening a directory moved, renamed or created something",
            expected=before,
            actual=after,
        )

    def second_instance(self) -> None:
        """flush(), then another instance on the same path holds the same store (B09) and
        leaves what the file stores as it was."""
        self.say("m.second_instance()  # flush(); other = factory(same path); other.close()")
        self.flush_step()
        before = self.file_state() if self.file_v1 else None
        other = self.call("B09", self._open, "factory(same path) for a second instance")
        try:
            listed = self.call("B09", other.list_sessions, "second instance: list_sessions()")
            self.compare_list(
                listed, self.model.snapshot(self.now), "a second instance's list", "B09"
            )
        finally:
            self.call("B09", other.close, "second instance: close()")
        if before is not None:
            after = self.file_state()
            self.expect(
                "B09",
                after == before,
                "a second instance that changed nothing changed what the file stores",
                expected=before,
                actual=after,
            )

    def still_foreign(self) -> bool:
        """The file at the path is still the foreign file loaded last (not rewritten yet)."""
        try:
            return self.foreign is not None and self.path.read_bytes() == self.foreign
        except OSError:
            return False

    # -- flush and what it must leave ------------------------------------------------------
    def flush_step(self) -> None:
        """``flush()``: raises OSError while a write fault is on and changes are unsaved
        (B22); else returns, and (file-v1) the file then holds the state (B21, B10, ...)."""
        if self.broken:
            self.config.shared["machine_call"] = ("B22", "flush() under a write fault")
            try:
                self.storage.flush()
            except OSError:
                return
            except Exception as exc:
                self.expect("B22", False, f"flush() under a write fault raised {exc!r}")
            self.expect(
                "B22",
                not self.dirty,
                "flush() returned while the save of unsaved changes failed (ENOTDIR)",
            )
            return
        owner = "B22" if self.after_fault else "B21"
        self.call(owner, self.storage.flush, "flush()")
        self.dirty = False
        if self.file_v1:
            self.check_files_after_flush(owner)
        self.after_fault = False

    def check_files_after_flush(self, owner: str) -> None:
        """What a flush that returned must leave on disk (B11, B15, B16, B20, then the
        content: B21, or B22 right after a repaired fault)."""
        if not self.mutated and self.foreign is None:
            self.expect(
                "B11",
                not self.path.parent.exists() or self.loads or self.path.exists(),
                "flush() with no mutation created the store's directory",
            )
        if not self.path.exists():
            self.check_file_after_flush(owner)
            return
        mode = stat.S_IMODE(self.path.stat().st_mode)
        self.expect("B20", mode == 0o600, f"the file's mode is {mode:#o}, not 0o600")
        left = temp_files(self.path)
        self.expect("B16", not left, "temp files remain after flush() returned", actual=left)
        raw = self.path.read_bytes()
        if self.foreign is not None:
            kept = backups(self.path)
            if raw == self.foreign:
                return  # not rewritten yet: the foreign bytes are still the file
            if self.foreign_lossy:
                self.expect(
                    "B15",
                    self.foreign in kept.values(),
                    "a lossy file was overwritten without a byte-identical backup",
                    actual=sorted(kept),
                )
            else:
                self.expect(
                    "B15",
                    not kept,
                    "a load that lost nothing made a backup",
                    actual=sorted(kept),
                )
            self.foreign = None
        self.check_file_after_flush(owner)

    def restore_before_teardown(self) -> None:
        """Undo a write fault so the backend can close and the tree can be removed."""
        if self.broken:
            self.put_directory_back()
            self.broken = False
        shutil.rmtree(self.dir / "a-directory.json", ignore_errors=True)


__all__ = ["FileSteps", "backups", "temp_files"]
