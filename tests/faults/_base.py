"""The reference backends with seams, so each fault replaces one small piece of them.

``HookedFileStorage`` is ``reference.FileSessionStorage`` with its constructor, loader and
writer thread re-stated here (same statements, same order) so that the pieces a fault changes
are methods: the table class, the decoder, the move-aside, the lossy backup, the save itself
and what the writer does with its result. ``HookedMemoryStorage`` does the same for the
in-memory backend. Both pass every behaviour of the kit (tests/test_fault_gate.py checks
it), so a failing verdict for a fault is the fault's doing, not the seams'.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path

from sessionspec.reference import FileSessionStorage, InMemorySessionStorage, exits
from sessionspec.reference import file as ref_file
from sessionspec.reference.lock import SidecarLock
from sessionspec.reference.sessionfile import Decoded, InvalidFileError, SessionEncoder, decode
from sessionspec.reference.table import SessionTable, Snapshot, TableStorage
from sessionspec.spec import MAX_SESSIONS, SESSION_TTL, Clock, Level, to_millis, utc_now


class HookedMemoryStorage(InMemorySessionStorage):
    """``InMemorySessionStorage`` whose table class a fault can replace."""

    table_class: type[SessionTable] = SessionTable

    def __init__(
        self,
        path: str | PathLike[str] | None = None,
        *,
        clock: Clock = utc_now,
        max_sessions: int = MAX_SESSIONS,
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        TableStorage.__init__(
            self, self.table_class(clock=clock, max_sessions=max_sessions, ttl=ttl)
        )


class HookedFileStorage(FileSessionStorage):
    """``FileSessionStorage`` with seams; behaves exactly like it unless a fault overrides one.

    Without the shared level (SPEC.md §8): its saves replace the file (last save wins) and it
    never refreshes, as the reference did before the level, so the faults of B01-B24 keep
    exactly the verdicts they had.
    """

    sessionspec_levels = frozenset({Level.CORE, Level.DURABLE, Level.FILE_V1})
    table_class: type[SessionTable] = SessionTable
    encoder_class: type[SessionEncoder] = SessionEncoder

    def __init__(
        self,
        path: str | PathLike[str] | None = None,
        *,
        clock: Clock = utc_now,
        max_sessions: int = MAX_SESSIONS,
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        default = ref_file.DEFAULT_PATH.expanduser()
        self.path = Path(os.path.abspath(default if path is None else path))
        self.max_file_bytes = ref_file.MAX_FILE_BYTES
        self._clock = clock
        now = to_millis(clock())  # the constructor's one reading of the clock (SPEC.md §1.3)
        loaded = self._load(now)
        table = self.table_class(
            loaded[1].sessions if loaded else (),
            clock=clock,
            max_sessions=max_sessions,
            ttl=ttl,
            now=now,
        )
        TableStorage.__init__(self, table)
        if table.evicted_at_load:
            ref_file.logger.warning(
                "%s: left out %d live sessions over the cap of %d",
                self.path,
                len(table.evicted_at_load),
                max_sessions,
            )
        if loaded is not None and (loaded[1].lossy or table.evicted_at_load):
            backup = self._write_backup(self.path, loaded[0], ref_file._epoch_ms(now))
            ref_file.logger.warning(
                "%s: not all of it loaded; kept a copy in %s", self.path, backup
            )
        self._temp_path = self._temp_name()
        self._sidecar = SidecarLock(self.path)  # never taken: close() closes it
        self._wake = threading.Condition()
        self._wanted = 0
        self._attempted = 0
        self._saved = 0
        self._saving: int | None = None
        self._retry = False
        self._failures = 0
        self._last_failure: tuple[int, Exception] | None = None
        self._error_logged = False
        self._stopping = False
        self._closed = False
        self._writer: threading.Thread | None = None
        self._writer_idle = False
        self._encoder = self.encoder_class()
        exits.track(self)

    # -- seams of loading -------------------------------------------------------------------

    def _temp_name(self) -> Path:
        return self.path.with_name(f"{self.path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")

    def _new_temp_path(self) -> Path:  # after a fork
        return self._temp_name()

    def _read(self) -> bytes:
        read = ref_file._read_file(self.path, self.max_file_bytes)
        if read is None:
            raise FileNotFoundError(2, "No such file or directory", str(self.path))
        return read[0]

    def _decode(self, data: bytes) -> Decoded:
        return decode(data)

    def _move_aside(self, path: Path, epoch_ms: int) -> Path:
        return ref_file._move_aside(path, epoch_ms, self.max_file_bytes)

    def _write_backup(self, path: Path, data: bytes, epoch_ms: int) -> Path:
        return ref_file._write_backup(path, data, epoch_ms)

    def _load(self, now: datetime) -> tuple[bytes, Decoded] | None:
        try:
            data = self._read()
        except FileNotFoundError:
            self._remove_stale_temps(now)
            return None
        self._remove_stale_temps(now)
        try:
            decoded = self._decode(data)
        except InvalidFileError as exc:
            backup = self._move_aside(self.path, ref_file._epoch_ms(now))
            ref_file.logger.warning("%s: %s; moved it aside to %s", self.path, exc, backup)
            return None
        for skip in decoded.skipped:
            ref_file.logger.warning("%s: skipped %s: %s", self.path, skip.location, skip.reason)
        return data, decoded

    # -- seams of saving --------------------------------------------------------------------

    def _save_file(self, path: Path, temp_path: Path, data: bytes) -> None:
        ref_file._save_atomically(path, temp_path, data)

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        self._save_file(self.path, self._temp_path, self._encoder.encode(snapshot.sessions))

    def _record_result(self, snapshot: Snapshot, error: Exception | None) -> None:
        """What the writer does after an attempt; called with ``_wake`` held."""
        self._saving = None
        self._attempted = max(self._attempted, snapshot.revision)
        if error is None:
            self._saved = max(self._saved, snapshot.revision)
        else:
            self._failures += 1
            self._last_failure = (snapshot.revision, error)
            if not self._error_logged:
                unexpected = not isinstance(error, OSError)
                ref_file.logger.error(
                    "could not save %s: %s", self.path, error, exc_info=unexpected
                )
        self._error_logged = error is not None
        self._wake.notify_all()

    def _write_behind(self) -> None:
        while True:
            with self._wake:
                while not (self._wanted > self._attempted or self._retry or self._stopping):
                    self._writer_idle = True
                    self._wake.wait()
                    self._writer_idle = False
                if not (self._wanted > self._attempted or self._retry):
                    return
                self._retry = False
                snapshot = self._table.snapshot()
                self._saving = snapshot.revision
            error: Exception | None = None
            try:
                self._save_snapshot(snapshot)
            except Exception as exc:
                error = exc
            with self._wake:
                self._record_result(snapshot, error)

    def _refresh(self) -> None:
        """Never: this backend does not claim the shared level."""
