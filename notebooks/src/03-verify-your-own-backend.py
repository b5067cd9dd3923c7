# %% [markdown]
# # 3 · Verify your own backend
#
# The spec is prose plus schemas; prose cannot tell you whether *your* code follows it. The
# conformance kit can. You hand it a **factory**, `factory(path, *, clock) -> storage`, and it
# runs every behaviour of the levels you claim against it, and gives one verdict per behaviour
# (B01–B24): PASS, FAIL, or N/A for levels you do not claim.
#
# At the kit's heart is a **state machine**: it generates random programs (create, ensure,
# add a turn, advance the clock, list, reopen, …), runs each step on your backend *and* on a
# small, obviously correct model of the spec, and compares everything observable after every
# step. When they disagree, Hypothesis **shrinks** the program, the kit trims it until no step
# can be dropped, and names the one behaviour it breaks.
#
# In this notebook we:
#
# 1. write a backend on SQLite (Python's standard `sqlite3`), in a module file;
# 2. run the kit on it from Python, and get a FAIL;
# 3. read the failure and its shrunk example, and reproduce it by hand;
# 4. fix the bug and see every claimed behaviour pass.
#
# The bug is planted, but it is not contrived: it is the bug upstream's own code had.

# %%
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sessionspec import spec
from sessionspec.spec import ConversationTurn

ROOT = Path(tempfile.mkdtemp(prefix="sessionspec-nb03-"))
BACKENDS = ROOT / "backends"  # where our backend modules live
BACKENDS.mkdir()
sys.path.insert(0, str(BACKENDS))  # importable by name, also from the kit's child processes
print("working in", ROOT)

# %% [markdown]
# ## 1. A SQLite backend
#
# Design decisions, each forced by a rule of the spec:
#
# * **Levels.** It keeps its data in a database, not in the JSON file of §3, so it claims
#   `core` and `durable` but not `file-v1`. The kit will mark the file behaviours N/A.
# * **Where.** The kit passes the sessions file `path`; we keep the database beside it at
#   `path + ".sqlite3"`, so two stores on two paths stay apart and a reopen finds its data.
# * **Time.** Timestamps are stored as integer milliseconds since 1970, after
#   `spec.to_millis`: the store holds exactly millisecond precision, like the file would
#   (B09). "Now" comes only from the `clock` we are given, never from the wall.
# * **Access order.** Sessions get an `access` counter, bumped on every touch. Timestamps tie
#   whenever the clock has not moved, and list order must still be defined (B04).
# * **Text.** Prompts and responses may contain *any* Unicode string, lone surrogates included
#   (they occur in real data: a JavaScript string cut in the middle of an emoji). SQLite's
#   `TEXT` would refuse to encode them, so we store UTF-8 bytes with `surrogatepass` in a `BLOB`.
# * **Durability.** WAL mode with `synchronous=NORMAL`: a commit appends to the log without an
#   `fsync` (cheap, like the reference's write-behind), and `flush()` runs a checkpoint, which
#   fsyncs. That is precisely `flush()`'s contract (B21).
# * **One transaction per method**, under a lock, so every call is atomic and the kit may call
#   us from any thread.
#
# The `%%writefile` magic writes the cell to a module file instead of running it.

# %%
%%writefile {BACKENDS}/sqlite_backend.py
"""A sessionspec backend on SQLite (levels core and durable)."""

import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sessionspec import spec
from sessionspec.spec import UNSET, ConversationTurn, SessionData

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TTL_MS = spec.SESSION_TTL // timedelta(milliseconds=1)


def to_ms(moment):
    return (spec.to_millis(moment) - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms):
    return EPOCH + timedelta(milliseconds=ms)


def enc(text):
    return text.encode("utf-8", "surrogatepass")


def dec(blob):
    return bytes(blob).decode("utf-8", "surrogatepass")


TABLES = """
CREATE TABLE IF NOT EXISTS sessions (
    id               TEXT    PRIMARY KEY,
    created_at       INTEGER NOT NULL,   -- ms since 1970, UTC
    last_accessed_at INTEGER NOT NULL,
    access           INTEGER NOT NULL,   -- access order: larger = touched later
    conversation_id  BLOB                -- NULL = none
);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT    NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    prompt     BLOB    NOT NULL,
    response   BLOB    NOT NULL,
    timestamp  INTEGER NOT NULL,
    PRIMARY KEY (session_id, position)
);
"""
COLUMNS = "id, created_at, last_accessed_at, conversation_id"


class SqliteSessionStorage:
    sessionspec_levels = {spec.Level.CORE, spec.Level.DURABLE}

    #: List order (B04); eviction (B18) removes from the end of it.
    LIST_ORDER = "last_accessed_at DESC"

    def __init__(self, path, *, clock=spec.utc_now):
        path = Path(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._db = sqlite3.connect(
            path.with_name(path.name + ".sqlite3"), isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(TABLES)

    # -- one transaction per call ----------------------------------------------------------
    def _run(self, work):
        with self._lock:
            now = to_ms(self._clock())
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(now)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    # -- the rules, in SQL -------------------------------------------------------------------
    def _live(self, session_id, now):
        """The row of a live session, or None (unknown, invalid or expired id)."""
        if not spec.is_valid_session_id(session_id):
            return None
        return self._db.execute(
            f"SELECT {COLUMNS} FROM sessions WHERE id = ? AND ? - last_accessed_at <= ?",
            (session_id, now, TTL_MS),  # expired only when idle for MORE than 24 h (B17)
        ).fetchone()

    def _purge(self, now):
        self._db.execute("DELETE FROM sessions WHERE ? - last_accessed_at > ?", (now, TTL_MS))

    def _touch(self, session_id, now):
        self._db.execute(
            "UPDATE sessions SET last_accessed_at = ?,"
            " access = (SELECT MAX(access) + 1 FROM sessions) WHERE id = ?",
            (now, session_id),
        )

    def _insert(self, session_id, now):
        self._db.execute(
            "INSERT INTO sessions (id, created_at, last_accessed_at, access)"
            " VALUES (?, ?, ?, (SELECT COALESCE(MAX(access), 0) + 1 FROM sessions))",
            (session_id, now, now),
        )

    def _enforce_cap(self, keep):
        """Keep `keep` and the first MAX_SESSIONS - 1 others in list order (B18)."""
        self._db.execute(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE id != ?"
            f" ORDER BY {self.LIST_ORDER} LIMIT -1 OFFSET ?)",
            (keep, spec.MAX_SESSIONS - 1),
        )

    def _snapshot(self, row):
        session_id, created, accessed, conversation = row
        turns = tuple(
            ConversationTurn(dec(prompt), dec(response), from_ms(timestamp))
            for prompt, response, timestamp in self._db.execute(
                "SELECT prompt, response, timestamp FROM turns"
                " WHERE session_id = ? ORDER BY position",
                (session_id,),
            )
        )
        return SessionData(
            id=session_id,
            created_at=from_ms(created),
            last_accessed_at=from_ms(accessed),
            turns=turns,
            codex_conversation_id=None if conversation is None else dec(conversation),
        )

    # -- spec.SessionStorage -------------------------------------------------------------
    def create_session(self):
        def work(now):
            self._purge(now)
            session_id = str(uuid.uuid4())
            self._insert(session_id, now)
            self._enforce_cap(keep=session_id)
            return session_id

        return self._run(work)

    def ensure_session(self, session_id):
        spec.check_session_id(session_id)  # raises ValidationError, before any change (B08)

        def work(now):
            self._purge(now)
            if self._live(session_id, now):
                self._touch(session_id, now)
            else:
                self._insert(session_id, now)
            self._enforce_cap(keep=session_id)

        self._run(work)

    def get_session(self, session_id):
        with self._lock:  # a pure read: no touch, no write (B23)
            row = self._live(session_id, to_ms(self._clock()))
            return self._snapshot(row) if row else None

    def update_session(self, session_id, *, turns=UNSET, codex_conversation_id=UNSET):
        def work(now):
            if not self._live(session_id, now):
                return  # unknown or expired: do nothing (B02)
            if turns is not UNSET:
                self._db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
                self._db.executemany(
                    "INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                    [(session_id, i, enc(t.prompt), enc(t.response), to_ms(t.timestamp))
                     for i, t in enumerate(turns)],
                )
            if codex_conversation_id is not UNSET:
                value = None if codex_conversation_id is None else enc(codex_conversation_id)
                self._db.execute(
                    "UPDATE sessions SET conversation_id = ? WHERE id = ?", (value, session_id)
                )
            self._touch(session_id, now)

        self._run(work)

    def delete_session(self, session_id):
        def work(now):
            if not self._live(session_id, now):
                return False
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            return True

        return self._run(work)

    def list_sessions(self):
        def work(now):
            self._purge(now)
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM sessions ORDER BY {self.LIST_ORDER}"
            ).fetchall()
            return [self._snapshot(row) for row in rows]

        return self._run(work)

    def add_turn(self, session_id, turn):
        def work(now):
            if not self._live(session_id, now):
                return
            self._db.execute(
                "INSERT INTO turns SELECT ?, COUNT(*), ?, ?, ? FROM turns WHERE session_id = ?",
                (session_id, enc(turn.prompt), enc(turn.response), to_ms(turn.timestamp),
                 session_id),
            )
            self._touch(session_id, now)

        self._run(work)

    def reset_session(self, session_id):
        self.update_session(session_id, turns=(), codex_conversation_id=None)

    def set_codex_conversation_id(self, session_id, conversation_id):
        self.update_session(session_id, codex_conversation_id=conversation_id)

    def get_codex_conversation_id(self, session_id):
        session = self.get_session(session_id)
        return None if session is None else session.codex_conversation_id

    def flush(self):
        with self._lock:
            if not self._closed:
                # Copy the write-ahead log into the database, fsyncing both: now it is durable.
                self._db.execute("PRAGMA wal_checkpoint(FULL)")

    def close(self):
        with self._lock:
            if not self._closed:
                self.flush()
                self._db.close()
                self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

# %% [markdown]
# A quick try by hand, with a clock we control. It satisfies the `spec.SessionStorage`
# protocol, and it survives a reopen, lone surrogate included:

# %%
from sqlite_backend import SqliteSessionStorage


class FakeClock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
path = ROOT / "try" / "sessions.json"
with SqliteSessionStorage(path, clock=clock) as store:
    print("a SessionStorage:", isinstance(store, spec.SessionStorage))
    sid = store.create_session()
    store.add_turn(sid, ConversationTurn("half an emoji: \ud83d", "ok", clock()))
with SqliteSessionStorage(path, clock=clock) as store:
    print(store.get_session(sid).turns)

# %% [markdown]
# ## 2. Run the kit
#
# `conformance.verify(factory, *, levels=None, profile="ci", seed=None, only=None)` returns a
# `Report`. The factory's `sessionspec_levels` says what to check; `profile="smoke"` is the
# quickest budget (the default `ci` and `thorough` explore more programs); a fixed `seed` makes
# the run reproducible; `only=[...]` restricts it to some behaviours. From a shell, the same
# run is `sessionspec verify sqlite_backend:SqliteSessionStorage --profile smoke`.

# %%
import time

from sessionspec.conformance import verify


def verdicts(report):
    for result in report.results.values():
        if result.status != "N/A":
            print(f"  {result.id} {result.slug:<22} {result.status:<5} {result.title[:60]}")
    na = [r.id for r in report.results.values() if r.status == "N/A"]
    print(f"  N/A (level not claimed): {', '.join(na)}")
    print(f"  {report.counts()} in {report.duration_s} s; ok={report.ok}")


started = time.monotonic()
report = verify(SqliteSessionStorage, profile="smoke", seed=0)
verdicts(report)

# %% [markdown]
# The verdict: FAIL for behaviours about list order, PASS for everything else, including the
# TTL boundary, the id grammar with its near-misses, lone surrogates, and the round trip
# through a reopen. The `file-v1` behaviours are N/A: not claimed.
#
# ## 3. Read the failure
#
# Each failing behaviour carries its checks' results: a message, what was expected, what the
# backend did, and, for the state machine, the **shrunk program** and how to replay it. (The
# kit also has targeted checks, fixed scenarios aimed at one rule; they report expected and
# actual, with no program to shrink.) A program is Python: each `m.…` line is one step the
# machine took on *your* backend and on the model (`m.created[i]` is the i-th id your backend
# returned), and the kit writes it as a script you can run again (`python B04-list-sessions.py`).
# The kit reports only the first divergence: one root cause, one FAIL. UUIDs are shortened to
# 8 digits below to keep it readable.

# %%
import re

UUID = re.compile(r"([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def short(text):
    return UUID.sub(r"\1…", str(text))


failed = [r for r in report.results.values() if r.status == "FAIL"]
print("failed:", [r.id for r in failed])
for result in failed:
    print(f"== {result.id} {result.title}")
    for failure in result.failures:
        print("check:   ", failure.check)
        print("message: ", failure.message)
        print("expected:", short(failure.expected)[:200])
        print("actual:  ", short(failure.actual)[:200])
        if failure.program:
            print("program (shrunk):")
            print(textwrap.indent(short(failure.program).strip(), "    "))
        if failure.replay:
            print("replay:  ", failure.replay.splitlines()[0])
        print()

assert {"B01", "B04"} & {r.id for r in failed}, "the kit should catch the tie-order bug"

# %% [markdown]
# Read it like a bug report. The smallest program is two creates, and the
# complaint is that the session created *last* is not first in the list: the two ids come
# back swapped. Two sessions, no clock step in between: a **tie**. The kit's clock stands
# still unless the program advances it, so both sessions have the same `last_accessed_at`,
# and the spec breaks such ties by access order, latest first (B04). Our
# `ORDER BY last_accessed_at DESC` says nothing about ties, and SQLite returns them in
# whatever order its scan produces — here insertion order, oldest first. The same bug would
# make the cap (B18) evict the wrong session on a tie, since eviction removes the *end* of list
# order; the kit reports the root cause once, and a check of another behaviour that relies on
# tie order says "not judged" instead of failing too.
#
# A shrunk example is valuable because it is small enough to replay by hand:

# %%
clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))  # never advanced: every timestamp ties
with SqliteSessionStorage(ROOT / "repro" / "sessions.json", clock=clock) as store:
    older = store.create_session()
    newer = store.create_session()
    listed = [s.id for s in store.list_sessions()]
print("spec (latest access first):", [newer[:8], older[:8]])
print("our backend:               ", [i[:8] for i in listed])

# %% [markdown]
# Why is this realistic? Upstream codex-mcp-server sorted by timestamp only, and its clock
# (`Date.now()`) has millisecond resolution, so two sessions touched within one millisecond,
# which a busy server does all the time, tie. The "recent sessions" list then depended on map
# iteration order, and changed across restarts. Your test suite with the wall clock would
# almost never see it; a kit with a frozen clock sees it in two steps.
#
# ## 4. Fix it, verify again
#
# We already store the access counter; list order just has to use it. One line:

# %%
%%writefile {BACKENDS}/sqlite_backend_fixed.py
from sqlite_backend import SqliteSessionStorage as _FirstAttempt


class SqliteSessionStorage(_FirstAttempt):
    LIST_ORDER = "last_accessed_at DESC, access DESC"  # ties: latest access first (B04)

# %%
from sqlite_backend_fixed import SqliteSessionStorage as FixedStorage

fixed_report = verify(FixedStorage, profile="smoke", seed=0)
verdicts(fixed_report)
assert fixed_report.ok, "the fixed backend should pass every claimed behaviour"
print(f"\nboth kit runs took {time.monotonic() - started:.1f} s")

# %% [markdown]
# Every behaviour of `core` and `durable` passes; the `file-v1` ones are N/A because we do not
# claim to keep the JSON file. To claim `file-v1`, the backend would have to keep the sessions
# file of §3 at `path` with everything that implies (atomic replace, backups, permissions,
# stale temp files): a good reason to start from the reference instead.
#
# `smoke` explores little: it is for a quick loop while you edit. Before you trust the fix,
# give it the default `ci` budget (more and longer random programs; about ten seconds here),
# `thorough` with a few seeds now and then, and run the kit in CI, from the command line or
# from your own test suite:
#
# ```sh
# sessionspec verify sqlite_backend_fixed:SqliteSessionStorage              # profile ci
# sessionspec verify sqlite_backend_fixed:SqliteSessionStorage --profile thorough --seed 7
# pytest --sessionspec-backend sqlite_backend_fixed:SqliteSessionStorage    # inside pytest
# ```
#
# From Python, that is `verify(FixedStorage)` or
# `verify(FixedStorage, profile="thorough", seed=7)`.
#
# ## What to take away
#
# * A backend plugs in as `factory(path, *, clock)` plus the levels it claims.
# * The kit compares your backend with a model after every step of random programs, and
#   names exactly one behaviour per failure, with a shrunk program you can replay by hand.
# * Give your code its clock. Bugs that hide behind a moving wall clock (ties, the exact 24-hour
#   boundary) become two-line reproductions with a frozen one.

# %%
import shutil

sys.path.remove(str(BACKENDS))
shutil.rmtree(ROOT)
