"""A session-storage backend on the standard library's ``sqlite3`` (levels core, durable, shared).

``SqliteSessionStorage`` implements ``spec.SessionStorage`` on one SQLite database that any
number of instances, in any number of processes, use at once. It keeps no sessions in memory:
every read is a query, every mutation one transaction.

Pick it when several server processes share one store and sessions grow long (``add_turn``
inserts a row instead of rewriting a file), and nothing else reads the store as JSON: it does
not keep the sessions file of SPEC.md §3 (no file-v1), so upstream codex-mcp-server cannot
read it. Pick the reference ``FileSessionStorage`` when that file matters.

Choices, and why:

- **Where**: ``path`` names the sessions file a file backend would keep; the database lives
  beside it, at ``<path>.sqlite3`` (with SQLite's ``-wal`` and ``-shm``), and ``path`` itself
  is never created. A file backend on the same default path would take a database found at
  ``path`` for a corrupt sessions file and move it aside (B13) without its ``-wal``; beside
  it, the two never meet. The directory is created 0o700, the database 0o600 (SQLite gives
  ``-wal`` and ``-shm`` the database's mode).
- **One transaction per mutation**, ``BEGIN IMMEDIATE`` (the write lock comes before the first
  read, so read-modify-writes of two processes never interleave), the clock read inside it:
  expiry (B17) and the cap (B18) apply to what is committed and no update is lost. This is
  §8.2's merge for an instance that takes in the shared state right before each mutation and
  saves right after it: its base is what is committed, so each merge puts its one change on
  top of every other commit, and turns land in commit order (which the kit's
  ``processes_at_once_keep_every_shared_turn`` accepts). Measured against a write-behind queue
  (``python benchmarks/sqlite_transactions.py``: 10,000 ``add_turn`` on one instance, ext4,
  2 cores): 221-265 us each with ``synchronous=FULL``, 52-74 us with ``NORMAL``, 15-21 us all
  in one transaction (a queue's best case). A turn comes per model
  call, seconds apart, so 0.2 ms is noise, and a queue would bring back memory that lags the
  database, §8.2's merge, exit hooks (B33) and deferred failures (B22).
- **WAL**: a read never waits for another process's write (B29) and, with nothing cached,
  sees every commit. ``busy_timeout`` (10 s, the reference's lock bound) queues writers.
- **synchronous=FULL**: in WAL mode ``NORMAL`` syncs only at checkpoints, so the last commits
  before a power loss may vanish; ``FULL`` syncs the WAL at each commit, so a mutation that
  returned is durable and ``flush()`` has nothing left to do (B21, B33).
- **Text** is UTF-8 with ``surrogatepass`` in BLOBs: ``sqlite3`` rejects lone surrogates in a
  ``str``, the spec allows any ``str`` (B02, B06, B09); round trips are exact. Timestamps are
  integer milliseconds since the Unix epoch.
- **Access order** (B04 ties, B18): ``access`` is set one above the largest at every touch;
  list order is ``last_accessed_at`` descending, then ``access`` descending.
- **Reads** are read-only transactions that leave out expired sessions (B23); the rows go at
  the next ``create_session`` or ``ensure_session``, which purge.
- **fork()**: SQLite forbids using a connection in a child; an inherited instance opens a new
  one on first use there and keeps working (B33).
- A mutation whose transaction fails (``database is locked`` after the timeout, a full disk)
  raises ``sqlite3.Error`` and changes nothing; nothing is ever pending, so ``flush()`` only
  checks the instance is open.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from sessionspec.spec import (
    MAX_SESSIONS,
    SESSION_TTL,
    UNSET,
    Clock,
    ConversationTurn,
    Level,
    SessionData,
    Unset,
    ValidationError,
    check_session_id,
    is_valid_session_id,
    to_millis,
    utc_now,
)

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MS: Final = timedelta(milliseconds=1)
BUSY_TIMEOUT_MS: Final = 10_000
SCHEMA_VERSION: Final = 1
SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        last_accessed_at INTEGER NOT NULL,
        access INTEGER NOT NULL,
        codex_conversation_id BLOB
    )""",
    """CREATE TABLE IF NOT EXISTS turns (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        prompt BLOB NOT NULL,
        response BLOB NOT NULL,
        timestamp INTEGER NOT NULL,
        PRIMARY KEY (session_id, seq)
    )""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
#: "Live" in SQL: ``now - last_accessed_at <= ttl`` (exactly the TTL is live, B17).
LIVE: Final = "(:now - last_accessed_at <= :ttl)"
#: Connections inherited across fork(): a child must neither use nor close them (SQLite's rule).
_INHERITED: list[sqlite3.Connection] = []


def _ms(moment: datetime) -> int:
    return (to_millis(moment) - EPOCH) // MS


def _datetime(ms: int) -> datetime:
    return EPOCH + ms * MS


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _str(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogatepass")


def _turn(turn: object) -> tuple[bytes, bytes, int]:
    if not isinstance(turn, ConversationTurn):
        raise ValidationError(f"turns must be spec.ConversationTurn, got {type(turn).__name__}")
    return _text(turn.prompt), _text(turn.response), _ms(turn.timestamp)


class SqliteSessionStorage:
    """``spec.SessionStorage`` on a SQLite database at ``<path>.sqlite3``; see the module doc.

    The class is a kit factory: ``SqliteSessionStorage(path, clock=clock)``.
    """

    sessionspec_levels: Final = frozenset({Level.CORE, Level.DURABLE, Level.SHARED})

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = utc_now,
        max_sessions: int = MAX_SESSIONS,
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        """Open (creating if needed) the database beside ``path``."""
        path = Path(path)
        self.database: Final = path.with_name(path.name + ".sqlite3")
        self._clock = clock
        self._max_sessions = max_sessions
        self._ttl = ttl // MS
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        self.database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.database, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        db = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.execute("BEGIN IMMEDIATE")  # two processes creating it at once: one waits
                try:
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    if version not in (0, SCHEMA_VERSION):
                        raise OSError(f"{self.database}: unknown schema version {version}")
                    for statement in SCHEMA if version == 0 else ():
                        db.execute(statement)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[tuple[sqlite3.Connection, dict[str, int]]]:
        """One transaction (``BEGIN IMMEDIATE`` to write) and the operation's one "now"
        (SPEC.md §1.3), read once the transaction began, as SQL parameters ``now`` and ``ttl``."""
        if self._forked() and not self._closed:
            self._db = self._connect()
        with self._lock:
            if self._closed:
                raise ValueError("I/O operation on a closed SqliteSessionStorage")
            db = self._db
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db, {"now": _ms(self._clock()), "ttl": self._ttl}
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # also when COMMIT failed: the next BEGIN must work
                    db.execute("ROLLBACK")
                raise

    def _forked(self) -> bool:
        """In a child made by fork() since the last call: set the inherited connection aside,
        never to be used or closed here (SQLite's rule), and take a new lock (another thread
        may have held the old one at the fork). The caller opens a new connection (B33)."""
        if os.getpid() == self._pid:
            return False
        _INHERITED.append(self._db)
        self._lock, self._pid = threading.Lock(), os.getpid()
        return True

    @staticmethod
    def _touch(db: sqlite3.Connection, session_id: str, params: dict[str, int]) -> bool:
        """Touch the live session (now, latest access); False for an unknown or expired id."""
        return (
            db.execute(
                "UPDATE sessions SET last_accessed_at = :now,"
                " access = (SELECT max(access) + 1 FROM sessions)"
                f" WHERE id = :id AND {LIVE}",
                {**params, "id": session_id},
            ).rowcount
            > 0
        )

    def _create(self, db: sqlite3.Connection, session_id: str, params: dict[str, int]) -> None:
        """Purge, then create or touch ``session_id``, then evict over the cap (B07, B17, B18)."""
        db.execute(f"DELETE FROM sessions WHERE NOT {LIVE}", params)
        if not self._touch(db, session_id, params):
            db.execute(
                "INSERT INTO sessions VALUES (:id, :now, :now,"
                " (SELECT coalesce(max(access), 0) + 1 FROM sessions), NULL)",
                {**params, "id": session_id},
            )
        db.execute(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE id != :id"
            " ORDER BY last_accessed_at DESC, access DESC LIMIT -1 OFFSET :keep)",
            {"id": session_id, "keep": self._max_sessions - 1},
        )

    def _session(
        self, db: sqlite3.Connection, row: tuple[str, int, int, bytes | None]
    ) -> SessionData:
        turns = db.execute(
            "SELECT prompt, response, timestamp FROM turns WHERE session_id = ? ORDER BY seq",
            (row[0],),
        )
        return SessionData(
            row[0],
            _datetime(row[1]),
            _datetime(row[2]),
            tuple(ConversationTurn(_str(p), _str(r), _datetime(t)) for p, r, t in turns),
            None if row[3] is None else _str(row[3]),
        )

    # -- spec.SessionStorage ----------------------------------------------------------------

    def create_session(self) -> str:
        """Purge expired sessions, create an empty session under a new UUID4 stamped now,
        evict the others last in list order over the cap; return the id (B01, B17, B18)."""
        with self._transaction(write=True) as (db, params):
            session_id = str(uuid.uuid4())
            while db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                session_id = str(uuid.uuid4())  # ids never repeat within a store (B01)
            self._create(db, session_id, params)
        return session_id

    def ensure_session(self, session_id: str) -> None:
        """Raise ValidationError for an id outside the grammar, changing nothing (B08); purge;
        create the session if no live one has the id, else touch it; evict over the cap, the
        ensured session surviving (B07, B17, B18). Sees others' commits (B29)."""
        session_id = str.__str__(check_session_id(session_id))
        with self._transaction(write=True) as (db, params):
            self._create(db, session_id, params)

    def get_session(self, session_id: str) -> SessionData | None:
        """The live session as a fresh immutable snapshot, or None; a pure read that sees every
        committed change of every instance (B23, B24, B17, B29)."""
        if not is_valid_session_id(session_id):
            return None
        with self._transaction(write=False) as (db, params):
            row = db.execute(
                "SELECT id, created_at, last_accessed_at, codex_conversation_id FROM sessions"
                f" WHERE id = :id AND {LIVE}",
                {**params, "id": session_id},
            ).fetchone()
            return None if row is None else self._session(db, row)

    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        """Replace only the fields given (``turns`` in order, copied; ``None`` clears the
        conversation id) and touch; unknown or expired id: nothing (B02, B03, B06, B17, B24)."""
        rows = None if isinstance(turns, Unset) else [_turn(turn) for turn in turns]
        if not isinstance(codex_conversation_id, Unset | str | None):
            raise ValidationError("codex_conversation_id must be a str or None")
        if not is_valid_session_id(session_id):
            return
        with self._transaction(write=True) as (db, params):
            if not self._touch(db, session_id, params):
                return
            if rows is not None:
                db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
                db.executemany(
                    "INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                    [(session_id, seq, *row) for seq, row in enumerate(rows, 1)],
                )
            if not isinstance(codex_conversation_id, Unset):
                cid = None if codex_conversation_id is None else _text(codex_conversation_id)
                db.execute(
                    "UPDATE sessions SET codex_conversation_id = ? WHERE id = ?", (cid, session_id)
                )

    def delete_session(self, session_id: str) -> bool:
        """Remove a live session and its turns for good: True; False for an unknown, expired or
        already deleted id, which stays untouched (B05, B17, B26, B29)."""
        if not is_valid_session_id(session_id):
            return False
        with self._transaction(write=True) as (db, params):
            query = f"DELETE FROM sessions WHERE id = :id AND {LIVE}"
            return db.execute(query, {**params, "id": session_id}).rowcount > 0

    def list_sessions(self) -> list[SessionData]:
        """A new list of every live session once, by last access descending, ties latest
        access first; no touch; expired sessions are left out (and removed by the next create
        or ensure) (B04, B17, B23, B24, B29)."""
        with self._transaction(write=False) as (db, params):
            rows = db.execute(
                "SELECT id, created_at, last_accessed_at, codex_conversation_id FROM sessions"
                f" WHERE {LIVE} ORDER BY last_accessed_at DESC, access DESC",
                params,
            ).fetchall()
            return [self._session(db, row) for row in rows]

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        """Append the turn after the existing ones, keeping its own timestamp, and touch;
        unknown or expired id: nothing (B02, B17, B27, B29)."""
        row = _turn(turn)
        if not is_valid_session_id(session_id):
            return
        with self._transaction(write=True) as (db, params):
            if self._touch(db, session_id, params):
                db.execute(
                    "INSERT INTO turns SELECT :id, coalesce(max(seq), 0) + 1, :p, :r, :t"
                    " FROM turns WHERE session_id = :id",
                    {"id": session_id, "p": row[0], "r": row[1], "t": row[2]},
                )

    def reset_session(self, session_id: str) -> None:
        """Remove every turn and the conversation id, keep id and created_at, touch; unknown
        or expired id: nothing (B03, B17)."""
        self.update_session(session_id, turns=(), codex_conversation_id=None)

    def set_codex_conversation_id(self, session_id: str, conversation_id: str) -> None:
        """Set the conversation id (any str) and touch; unknown or expired id: nothing (B06)."""
        if not isinstance(conversation_id, str):
            raise ValidationError("conversation_id must be a str")
        self.update_session(session_id, codex_conversation_id=conversation_id)

    def get_codex_conversation_id(self, session_id: str) -> str | None:
        """The live session's conversation id, or None; a pure read (B06, B23, B29)."""
        if not is_valid_session_id(session_id):
            return None
        with self._transaction(write=False) as (db, params):
            row = db.execute(
                f"SELECT codex_conversation_id FROM sessions WHERE id = :id AND {LIVE}",
                {**params, "id": session_id},
            ).fetchone()
        return None if row is None or row[0] is None else _str(row[0])

    def flush(self) -> None:
        """Return at once: every mutation committed, synced (synchronous=FULL), before it
        returned (B21, B22, B33). Raises ValueError once closed."""
        with self._transaction(write=False):
            pass

    def close(self) -> None:
        """Close the connection (the last one on the database checkpoints the WAL into it);
        every mutation is already durable (B21). A second close() does nothing."""
        forked = self._forked()
        with self._lock:
            if not self._closed:
                self._closed = True
                if not forked:
                    self._db.close()

    def __enter__(self) -> Self:
        """The storage itself; ``with storage:`` closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Call ``close()``."""
        self.close()
