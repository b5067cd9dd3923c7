"""The file reference backend: sessions in one JSON file, saved atomically and behind.

Read top to bottom: loading (SPEC.md §3.2, B11-B16), mutating (the shared ``SessionTable``),
saving (§4, B19-B22), sharing the file with other instances (§8, B25-B30). One writer thread
per instance saves the latest state, once a burst of mutations pauses (§4.5: coalescing); a save
encodes only what changed (``SessionEncoder``). Callers never wait for the disk except in
``flush()`` and ``close()``, and, when another instance changed the file, in the read that
takes it in.

Every save is a read-merge-write under the sidecar lock: when the file changed since this
instance last loaded or saved it (a ``stat`` tells), what is on disk is merged three ways with
what this instance did (``reference.merge``), so no instance's save undoes another's.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path

from sessionspec.reference import exits
from sessionspec.reference.lock import LOCK_TIMEOUT_SECONDS, SidecarLock
from sessionspec.reference.merge import Store, merge_stores
from sessionspec.reference.sessionfile import Decoded, InvalidFileError, SessionEncoder, decode
from sessionspec.reference.table import SessionTable, Snapshot, TableStorage
from sessionspec.spec import (
    MAX_SESSIONS,
    SESSION_TTL,
    STALE_TEMP_AGE,
    Clock,
    Level,
    SessionData,
    to_millis,
    utc_now,
)

DEFAULT_PATH = Path("~/.codex-mcp/sessions.json")
WRITER_THREAD_PREFIX = "sessionspec-writer"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
#: Temp files named ``<name>.shared-<unique>.tmp`` are created only under the lock (B30).
SHARED_TEMP_MARK = "shared-"
#: The largest file a load reads (B32); ``max_file_bytes`` changes it. A bigger file is an
#: OSError and nothing is moved: 256 MiB is far above 100 sessions of long conversations, and
#: far below what decoding it costs in memory (about six times its size).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: The writer coalesces a burst of mutations into one save (SPEC.md §4.5): it saves once none
#: came for COALESCE_QUIET seconds, and at the latest COALESCE_MAX seconds after it woke for
#: the first; flush() and close() cut the wait short. A burst of 10,000 add_turn is then one
#: or two saves, not one per save's duration, and the caller's thread keeps the GIL meanwhile.
COALESCE_QUIET = 0.005
COALESCE_MAX = 0.1

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
#: os.link errors of a file system (or file) that cannot take another hard link.
_CANNOT_LINK = frozenset(
    {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
)


class NotARegularFileError(OSError):
    """The path is a FIFO, a socket, a device or a directory (B32); nothing was read from it."""


class PathIsADirectoryError(NotARegularFileError, IsADirectoryError):
    """The path is a directory (B12, B32): both kinds of error, for whoever catches either."""


class FileTooLargeError(OSError):
    """The file is larger than ``max_file_bytes`` (B32); nothing was moved."""


class FileSessionStorage(TableStorage):
    """Sessions persisted in the sessions file of SPEC.md §3 (levels core, durable, file-v1,
    shared: any number of instances, in any processes, on one path).

    The constructor raises OSError when the file exists but cannot be read (B12), when the path
    is not a regular file or the file is over ``max_file_bytes`` (B32), and when a file it must
    move aside or back up cannot be preserved (B13-B15): the bytes then stay at the path or in a
    complete backup, never in neither. A save waits at most ``lock_timeout``
    seconds for another instance's save (B30), then fails as any save does (B22).
    """

    sessionspec_levels = frozenset({Level.CORE, Level.DURABLE, Level.FILE_V1, Level.SHARED})

    def __init__(
        self,
        path: str | PathLike[str] | None = None,
        *,
        clock: Clock = utc_now,
        max_sessions: int = MAX_SESSIONS,
        ttl: timedelta = SESSION_TTL,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.path = Path(os.path.abspath(DEFAULT_PATH.expanduser() if path is None else path))
        self.max_file_bytes = max_file_bytes
        self._clock = clock
        # One reading of the clock for the whole constructor: expiry and the cap at load,
        # stale temp files and backup names all use it (SPEC.md §1.3).
        now = to_millis(clock())
        self._loaded: tuple[_FileId, _Content] = (None, None)  # what _load read last
        loaded = self._load(now)
        # The file as this instance last synchronised with it (loaded, saved or taken in),
        # changed only together with the table's base: its bytes (``_content_of``), which decide,
        # and its stat, a cheap hint that it may have changed since (SPEC.md §8.2, §8.4).
        self._disk_stat: _FileId = self._loaded[0]
        self._disk_content: _Content = self._loaded[1]
        table = SessionTable(
            loaded[1].sessions if loaded else (),
            clock=clock,
            max_sessions=max_sessions,
            ttl=ttl,
            now=now,
        )
        super().__init__(table)
        if table.evicted_at_load:
            logger.warning(
                "%s: left out %d live sessions over the cap of %d",
                self.path,
                len(table.evicted_at_load),
                max_sessions,
            )
        if loaded is not None and (loaded[1].lossy or table.evicted_at_load):
            # Exactly the bytes read, before any save can replace them (B15).
            backup = _write_backup(self.path, loaded[0], _epoch_ms(now))
            logger.warning("%s: not all of it loaded; kept a copy in %s", self.path, backup)
        self._temp_path = self._new_temp_path()
        self._sidecar = SidecarLock(self.path, lock_timeout)
        # Serialises this instance's synchronisations (saves and refreshes): each merges
        # against the base the previous one left.
        self._sync = threading.Lock()
        # Writer state, all guarded by _wake's lock. Revisions are the table's.
        self._wake = threading.Condition()
        self._wanted = 0  # latest revision a mutation asked to save
        self._attempted = 0  # revision of the latest finished save attempt
        self._saved = 0  # revision of the latest successful save (0: the file as loaded)
        self._saving: int | None = None  # revision being saved right now
        self._retry = False  # flush() asks for another attempt after a failure
        self._failures = 0
        self._last_failure: tuple[int, Exception] | None = None
        self._error_logged = False
        self._stopping = False
        self._closed = False
        self._writer: threading.Thread | None = None
        self._writer_idle = False  # the writer waits on _wake for something to save
        self._encoder = SessionEncoder()  # used by the writer thread only
        exits.track(self)

    def _new_temp_path(self) -> Path:
        # Unique to this instance, so two writers never share a temp file (B19); the marker
        # says it is only ever created under the sidecar lock (B30).
        return self.path.with_name(
            f"{self.path.name}.{SHARED_TEMP_MARK}{os.getpid()}-{secrets.token_hex(6)}.tmp"
        )

    def _after_fork(self) -> None:
        """In a child made by fork(): a working instance of the child's own (B33).

        Only the forking thread survives a fork: the writer is gone and a lock another thread
        held stays held. So: new locks, no writer until the next mutation starts one, a temp
        name of the child's, and a sidecar descriptor of its own (a flock belongs to an open
        file description, which the child would otherwise share with the parent).
        """
        self._sync = threading.Lock()
        self._wake = threading.Condition()
        self._writer = None
        self._writer_idle = False
        self._saving = None
        self._temp_path = self._new_temp_path()
        self._sidecar.after_fork()
        self._table.after_fork()

    # -- loading ----------------------------------------------------------------------------

    def _load(self, now: datetime) -> tuple[bytes, Decoded] | None:
        """The file's bytes and what they decode to, or None for an empty store."""
        read = self._read_path()  # ENOENT only is None: anything else is raised
        self._remove_stale_temps(now)
        if read is None:
            return None  # B11: nothing is written until a mutation
        return self._decoded(*read, now)

    def _decoded(
        self, data: bytes, read_stat: _FileId, now: datetime
    ) -> tuple[bytes, Decoded] | None:
        """Decode bytes read from the path; an unparseable file is moved aside (B13, B14)."""
        try:
            decoded = decode(data)
        except InvalidFileError as exc:
            backup = self._set_aside(now)
            logger.warning("%s: %s; moved it aside to %s", self.path, exc, backup)
            return None
        self._loaded = (read_stat, _content_of(data))
        for skip in decoded.skipped:
            logger.warning("%s: skipped %s: %s", self.path, skip.location, skip.reason)
        return data, decoded

    def _read_path(self) -> tuple[bytes, _FileId] | None:
        """The file's bytes and stat hint; None when absent (B11); OSError otherwise (B32)."""
        return _read_file(self.path, self.max_file_bytes)

    def _set_aside(self, now: datetime) -> Path:
        """Move the file at the path aside to a new backup name (B13, B14, B32)."""
        return _move_aside(self.path, _epoch_ms(now), self.max_file_bytes)

    def _remove_stale_temps(self, now: datetime) -> None:
        """Remove crashed writers' temp files older than an hour; younger may be live (B16).

        Only ``<name>.<middle>.tmp`` with a non-empty middle, and only regular files (never
        followed through a symlink) of this effective user whose mtime, in nanoseconds, is
        strictly earlier than ``now`` (already truncated to milliseconds) minus an hour.
        """
        prefix, suffix = f"{self.path.name}.", ".tmp"
        shortest = len(prefix) + 1 + len(suffix)
        # Shared writers' temps are removed under the lock only (B30): without it, a clock
        # ahead of the file system's would take a live writer's temp for an old one.
        locked = prefix + SHARED_TEMP_MARK
        cutoff_ns = _epoch_ms(now - STALE_TEMP_AGE) * 1_000_000
        uid = os.geteuid()
        try:
            entries = list(os.scandir(self.path.parent))
        except FileNotFoundError:
            return
        for entry in entries:
            name = entry.name
            if len(name) < shortest or not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            if name.startswith(locked):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if (
                    stat.S_ISREG(info.st_mode)
                    and info.st_uid == uid
                    and info.st_mtime_ns < cutoff_ns
                ):
                    os.unlink(entry.path)
                    logger.info("removed stale temp file %s", entry.path)
            except FileNotFoundError:
                pass  # its writer finished or another cleaner was first

    # -- mutating: the methods of TableStorage change the table, then call _changed ----------

    def _changed(self, revision: int) -> None:
        with self._wake:
            if revision > self._wanted:
                self._wanted = revision
            if self._writer is None:
                self._start_writer()
            elif self._writer_idle:
                # Only a sleeping writer needs waking: a busy one looks at _wanted again when
                # its save ends, so a burst of mutations costs no notification each.
                self._wake.notify_all()

    # -- saving -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Return once every earlier mutation is durably saved; raise OSError if that failed."""
        target = self._table.revision
        with self._wake:
            if self._saved >= target:
                return
            failures_before = self._failures
            if self._saving is None or self._saving < target:
                # No attempt under way covers target: ask for one, even after a failure.
                self._wanted = max(self._wanted, target)
                self._retry = True
                self._start_writer()
                self._wake.notify_all()
            while self._saved < target:
                if self._stopping:
                    raise ValueError(f"{self.path}: flush() after close()")
                if self._failures > failures_before and self._last_failure is not None:
                    revision, error = self._last_failure
                    if revision >= target:
                        raise error
                self._wake.wait()

    def close(self) -> None:
        """Flush, then stop the writer thread; after a close() that succeeded, do nothing.

        When the flush fails, raise its error and stay open (B22): memory keeps every change,
        the writer thread and the exit hook stay, and a later close() or flush() retries.
        """
        if self._closed:
            return
        self.flush()
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._writer is not None:
            self._writer.join()  # it saves what a racing mutation left, then ends
            exits.disarm_exit(self)
        self._sidecar.close()
        self._closed = True
        exits.forget(self)

    def _close_at_exit(self) -> None:
        """Save at a normal exit (B33): the writer is a daemon thread, so a process that
        forgets close() still saves here."""
        try:
            self.close()
        except Exception as exc:  # an exit hook must not print a traceback
            logger.error("could not save %s at exit: %s", self.path, exc)

    def _start_writer(self) -> None:
        # Started on the first mutation, so merely opening a store costs no thread.
        if self._writer is None and not self._stopping:
            self._writer = threading.Thread(
                target=self._write_behind,
                name=f"{WRITER_THREAD_PREFIX} {self.path}",
                daemon=True,  # never holds up exit; _close_at_exit saves what is left
            )
            self._writer.start()
            exits.arm_exit(self)

    def _write_behind(self) -> None:
        """The writer thread: save the latest snapshot whenever there is something new."""
        while True:
            with self._wake:
                while not (self._wanted > self._attempted or self._retry or self._stopping):
                    self._writer_idle = True
                    self._wake.wait()
                    self._writer_idle = False
                if not (self._wanted > self._attempted or self._retry):
                    return  # stopping, nothing left to do
                self._coalesce()
                self._retry = False
                self._saving = self._table.revision  # the snapshot below covers at least this
            error: Exception | None = None
            # The snapshot is taken under _sync: a refresh between it and the save would give
            # the save a base older than memory's, and the merge would count others' changes
            # twice.
            with self._sync:
                snapshot = self._table.snapshot()  # cheap; serialised below, without _wake
                try:
                    self._save(snapshot)
                except Exception as exc:  # kept for flush(); the thread must outlive any failure
                    error = exc
            with self._wake:
                self._saving = None
                self._attempted = max(self._attempted, snapshot.revision)
                if error is None:
                    self._saved = max(self._saved, snapshot.revision)
                    if self._saved >= self._wanted:
                        # A flush() that saw only _saving's lower bound asked for another
                        # attempt this one already covered: a save after flush() returned
                        # would leave a temp file behind its back.
                        self._retry = False
                else:
                    self._failures += 1
                    self._last_failure = (snapshot.revision, error)
                    if not self._error_logged:  # once until a save succeeds (B22)
                        # Under the lock, so it is logged before flush() raises the error.
                        unexpected = not isinstance(error, OSError)  # a bug: show where
                        logger.error("could not save %s: %s", self.path, error, exc_info=unexpected)
                self._error_logged = error is not None
                self._wake.notify_all()

    def _coalesce(self) -> None:
        """Let a burst of mutations end before saving: wait, ``_wake`` held, until none came
        for COALESCE_QUIET, at most COALESCE_MAX; flush() or close() ends the wait at once."""
        deadline = time.monotonic() + COALESCE_MAX
        while not (self._retry or self._stopping):
            seen = self._wanted
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(COALESCE_QUIET, left))  # mutations do not notify: not idle
            if self._wanted == seen:
                return

    # -- sharing the file (SPEC.md §8) --------------------------------------------------------

    def _save(self, snapshot: Snapshot) -> None:
        """Read, merge, write under the sidecar lock; then the written state is the base
        (B19, B25-B28, B30). Called with ``_sync`` held."""
        _make_private_dirs(self.path.parent)
        with self._sidecar:
            now = to_millis(self._clock())
            theirs = self._read_if_changed(now)
            stored = snapshot.sessions if theirs is None else self._merged(snapshot, theirs, now)
            self._remove_dead_temps()
            data = self._encoder.pieces(stored)  # written with writev(2), never joined

            def renamed(written: _FileId) -> None:
                # The file holds ``stored`` from the rename on, whatever fails after it (the
                # directory's fsync): it is the base now, or a retry would merge it twice.
                self._disk_stat, self._disk_content = written, _content_of(data)
                self._table.synced(snapshot, stored)

            try:
                _save_atomically(self.path, self._temp_path, data, renamed)
            except FileExistsError:
                # Something someone put at this instance's temp name (a FIFO, a link): leave
                # it, take a new name, and try once more (B32).
                self._temp_path = self._new_temp_path()
                _save_atomically(self.path, self._temp_path, data, renamed)

    def _refresh(self) -> None:
        """Take in what other instances saved since this one synchronised (B29).

        One ``stat`` when nothing changed. Never waits for another process (no lock: every
        writer renames whole files into place) and writes nothing (B23): a file that does not
        decode is left for the next save to set aside (B13-B15), memory goes on. A save of
        this instance under way is not waited for either: it merges the file itself.
        """
        if _current_id(self.path) == self._disk_stat:
            return
        if not self._sync.acquire(timeout=0.05):
            return
        try:
            if _current_id(self.path) == self._disk_stat:
                return  # this instance's own save renamed it while we waited: nothing to read
            read = self._read_path()
            if read is None:
                if self._disk_content is None:
                    return
                theirs: list[SessionData] = []  # removed by someone: an empty store
                stat_key: _FileId = None
                content: _Content = None
                changed = True
            else:
                data, stat_key = read
                content = _content_of(data)
                changed = not _same_bytes(data, self._disk_content)
                if changed:
                    try:
                        theirs = list(decode(data).sessions)
                    except InvalidFileError as exc:
                        logger.warning(
                            "%s: not taking it in: %s; the next save sets it aside", self.path, exc
                        )
                        return
            if changed:
                self._table.refresh(theirs)
            self._disk_stat, self._disk_content = stat_key, content
        except OSError as exc:
            logger.warning("%s: could not take in other instances' changes: %s", self.path, exc)
        finally:
            self._sync.release()

    def _read_if_changed(self, now: datetime) -> list[SessionData] | None:
        """The sessions on disk in file order, or None when its bytes are the ones this
        instance last synchronised with. Under the lock; recovers as a load does (B13-B15)."""
        if _file_holds(self.path, self._disk_content):
            return None  # compared a chunk at a time: no buffer of the file's size
        read = self._read_path()
        if read is None:
            return None if self._disk_content is None else []
        if _same_bytes(read[0], self._disk_content):
            return None
        loaded = self._decoded(*read, now)  # the bytes just read: not a second read
        if loaded is None:
            return []
        if loaded[1].lossy:
            backup = _write_backup(self.path, loaded[0], _epoch_ms(now))
            logger.warning("%s: not all of it loaded; kept a copy in %s", self.path, backup)
        return list(loaded[1].sessions)

    def _merged(
        self, snapshot: Snapshot, theirs: list[SessionData], now: datetime
    ) -> list[SessionData]:
        """merge(base, local, disk), live, in list order, within the cap (B04, B17, B18)."""
        base, ours = snapshot.base, {s.id: s for s in snapshot.sessions}
        merged = self._merge(base, ours, {s.id: s for s in theirs})
        on_disk = {s.id: len(theirs) - i for i, s in enumerate(theirs)}

        def list_order(session: SessionData) -> tuple[datetime, int, int]:
            # Ties: what this instance changed since its base first, in its access order;
            # then the others in the file's order (B04).
            mine = ours.get(session.id)
            if mine is not None and mine != base.get(session.id):
                return session.last_accessed_at, 1, snapshot.access[session.id]
            return session.last_accessed_at, 0, on_disk.get(session.id, 0)

        live = [s for s in merged.values() if now - s.last_accessed_at <= self._table.ttl]
        live.sort(key=list_order, reverse=True)
        return live[: self._table.max_sessions]

    @staticmethod
    def _merge(base: Store, local: Store, disk: Store) -> dict[str, SessionData]:
        """The merge a save applies (SPEC.md §8.2, B25-B28): ``reference.merge``'s."""
        return merge_stores(base, local, disk)

    def _remove_dead_temps(self) -> None:
        """Under the lock every other ``<name>.shared-….tmp`` is a dead writer's: every writer
        that names its temp so creates it under the lock (B30). Others' temps keep B16."""
        prefix = f"{self.path.name}.{SHARED_TEMP_MARK}"
        try:
            entries = list(os.scandir(self.path.parent))
        except FileNotFoundError:
            return
        for entry in entries:
            if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
                continue
            if entry.path == str(self._temp_path):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                    os.unlink(entry.path)
                    logger.info("removed a dead writer's temp file %s", entry.path)
            except FileNotFoundError:
                pass


#: A hint of one version of the file: device, inode, size, mtime in ns. Not proof (inodes are
#: reused, timestamps coarse): only its bytes decide that it is unchanged (``_same_bytes``).
_FileId = tuple[int, int, int, int] | None
#: The bytes of one version of the file, in pieces (as read, or as written with writev), or
#: None for no file. Kept rather than hashed: comparing bytes costs less than hashing them.
_Content = tuple[bytes, ...] | None


def _file_id(info: os.stat_result) -> _FileId:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _content_of(data: bytes | Sequence[bytes]) -> _Content:
    """What identifies bytes read or written, to compare later ones with: the bytes
    themselves, no copy (``_same_bytes``)."""
    return (data,) if isinstance(data, bytes) else tuple(data)


def _same_bytes(data: bytes, content: _Content) -> bool:
    """Whether ``data`` is exactly the bytes of ``content`` (None, no file: never)."""
    if content is None or len(data) != sum(map(len, content)):
        return False
    position = 0
    for piece in content:
        if not data.startswith(piece, position):  # a memcmp, no copy
            return False
        position += len(piece)
    return True


#: How much of the file ``_file_holds`` reads at a time.
_COMPARE_CHUNK = 1 << 20


def _file_holds(path: Path, content: _Content) -> bool:
    """Whether the file at ``path`` is exactly ``content``, read a chunk at a time into one
    buffer: a save that finds the file as this instance left it (the common case) then costs
    no buffer of the file's size, nor its fresh pages. False on any doubt, an error included:
    the caller then reads the file whole, as a load does (B12, B32)."""
    if content is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != sum(map(len, content)):
            return False
        buffer = bytearray(max(1, min(_COMPARE_CHUNK, info.st_size)))
        got = start = 0  # buffer[start:got] is read and not compared yet
        for piece in content:
            rest = memoryview(piece)
            while rest:
                if start == got:
                    got, start = os.readv(fd, [buffer]), 0
                    if not got:
                        return False  # shorter than its size said: it is being changed
                n = min(len(rest), got - start)
                if not buffer.startswith(rest[:n], start):  # a memcmp, no copy
                    return False
                start, rest = start + n, rest[n:]
        return start == got and not os.read(fd, 1)
    except OSError:
        return False
    finally:
        os.close(fd)


def _read_file(path: Path, limit: int) -> tuple[bytes, _FileId] | None:
    """The file's bytes and the stat of what was read, or None if nothing is there (B11; a
    dangling symlink included).

    Opened without blocking (a FIFO would wait for a writer forever) and read only when it is
    a regular file, and then at most ``limit`` bytes (B32): anything else raises, read nothing.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # open(2) of a socket: say what it is
            kind = "not a regular file (a socket)"
            raise NotARegularFileError(exc.errno, kind, str(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            if stat.S_ISDIR(info.st_mode):
                raise PathIsADirectoryError(errno.EISDIR, f"not a regular file ({kind})", str(path))
            raise NotARegularFileError(errno.EINVAL, f"not a regular file ({kind})", str(path))
    except BaseException:
        os.close(fd)  # open() below would own it; a refused path must not leak it
        raise
    with open(fd, "rb") as file:
        too_large = FileTooLargeError(
            errno.EFBIG,
            f"the file is over the {limit}-byte limit (max_file_bytes); nothing was moved",
            str(path),
        )
        if info.st_size > limit:
            raise too_large  # before reading: a refusal costs no memory and no time
        # A buffer of the size the fstat gave, not of the limit: read(n) allocates n bytes
        # first, and 256 MiB of fresh memory costs a page fault per page read into it.
        data = file.read(info.st_size + 1)
        if len(data) > info.st_size:  # + 1: it grew since the fstat; read on to the limit
            data += file.read(limit + 1 - len(data))
        if len(data) > limit:
            raise too_large
        return data, _file_id(os.fstat(fd))


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


def _current_id(path: Path) -> _FileId:
    try:
        return _file_id(os.stat(path))
    except (FileNotFoundError, NotADirectoryError):
        return None


def _save_atomically(
    path: Path,
    temp_path: Path,
    data: bytes | Sequence[bytes],
    renamed: Callable[[_FileId], None] | None = None,
) -> None:
    """Temp file, fsync, rename over, fsync the directory (B19, B20, B11). ``data`` is the
    bytes or their pieces, written in order. ``renamed`` is called with the new file's stat
    hint as soon as the rename returned."""
    _make_private_dirs(path.parent)
    fd = os.open(temp_path, _NEW_FILE, PRIVATE_FILE)
    try:
        try:
            os.fchmod(fd, PRIVATE_FILE)  # the umask may only narrow; make it exact
            _write_all(fd, data)
            os.fsync(fd)
            written = _file_id(os.fstat(fd))  # ours: a stat after the rename may be theirs
        finally:
            os.close(fd)
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    if renamed is not None:
        renamed(written)
    _fsync_directory(path.parent)


def _make_private_dirs(directory: Path) -> None:
    """Create missing directories, each exactly 0o700 whatever the umask (B11)."""
    missing = []
    while not os.path.lexists(directory):
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, PRIVATE_DIR)
        except FileExistsError:
            continue  # created meanwhile by someone else: not ours to chmod
        os.chmod(new, PRIVATE_DIR)
        _fsync_directory(new.parent)


def _write_all(fd: int, data: bytes | Sequence[bytes]) -> None:
    """Write all of ``data``: bytes with write(2), pieces with writev(2), whatever either
    writes short."""
    if isinstance(data, bytes):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return
    pieces: list[bytes | memoryview] = [piece for piece in data if piece]
    first = 0  # pieces[first:] are left to write
    while first < len(pieces):
        written = os.writev(fd, pieces[first : first + _IOV_MAX])
        while first < len(pieces) and written >= len(pieces[first]):
            written -= len(pieces[first])
            first += 1
        if written:  # a short write ended inside pieces[first]
            pieces[first] = memoryview(pieces[first])[written:]


def _iov_max() -> int:
    """How many pieces one writev(2) takes (IOV_MAX; 1024 on Linux)."""
    try:
        limit = os.sysconf("SC_IOV_MAX")
    except (ValueError, OSError):
        limit = -1
    return min(limit, 1024) if limit > 0 else 16  # POSIX: at least 16


_IOV_MAX = _iov_max()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- backups (B13-B15): never overwrite anything, never wider than 0o600 ----------------------


def _epoch_ms(now: datetime) -> int:
    return (now - _EPOCH) // timedelta(milliseconds=1)


def _backup_names(path: Path, epoch_ms: int) -> Iterator[Path]:
    yield path.with_name(f"{path.name}.{epoch_ms}.bak")
    n = 1
    while True:
        yield path.with_name(f"{path.name}.{epoch_ms}.{n}.bak")
        n += 1


def _move_aside(path: Path, epoch_ms: int, limit: int) -> Path:
    """Move the file to a free backup name, then unlink it from ``path`` (B13, B14).

    A hard link, or a complete copy where the file system cannot link or where the file's
    inode has another name too: narrowing the mode of a linked backup would change that other
    file (B32). A symlink at the path is moved as the link itself. ``path`` is unlinked only
    once the backup is complete, so whatever fails, the bytes are at the path, in a complete
    backup, or both.
    """
    info = os.lstat(path)
    shared_inode = stat.S_ISREG(info.st_mode) and info.st_nlink > 1
    backup = None if shared_inode else _link_backup(path, epoch_ms)
    if backup is None:
        read = _read_file(path, limit)
        if read is None:
            raise FileNotFoundError(errno.ENOENT, "removed while being moved aside", str(path))
        backup = _write_backup(path, read[0], epoch_ms)
    os.unlink(path)
    _fsync_directory(path.parent)
    return backup


def _link_backup(path: Path, epoch_ms: int) -> Path | None:
    """Hard-link the file to a free backup name, not wider than 0o600; None if it cannot link."""
    for backup in _backup_names(path, epoch_ms):
        try:
            os.link(path, backup, follow_symlinks=False)  # fails rather than overwrite
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in _CANNOT_LINK:
                return None
            raise
        try:
            info = os.lstat(backup)
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & ~PRIVATE_FILE:
                os.chmod(backup, stat.S_IMODE(info.st_mode) & PRIVATE_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(backup)  # the file is still at the path; a wide backup may not stay
            raise
        return backup
    raise AssertionError("unreachable: there is always a free backup name")


def _write_backup(path: Path, data: bytes, epoch_ms: int) -> Path:
    """Write ``data`` to a new backup file beside ``path`` (exclusive create, 0o600, fsync).

    On any error the backup is removed again: a backup is complete or absent.
    """
    for backup in _backup_names(path, epoch_ms):
        try:
            fd = os.open(backup, _NEW_FILE, PRIVATE_FILE)
        except FileExistsError:
            continue
        try:
            try:
                os.fchmod(fd, PRIVATE_FILE)
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_directory(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(backup)
            raise
        return backup
    raise AssertionError("unreachable: there is always a free backup name")
