"""A session-storage backend on a Redis server through redis-py (levels core, durable, shared).

``RedisSessionStorage`` implements ``spec.SessionStorage`` on one Redis server that any number
of instances, in any number of processes and on any number of hosts, use at once. It keeps no
sessions in memory: every read is one read-only Lua script, every mutation one Lua script.

Needs Redis 7.0 or later (``ZRANGE ... BYSCORE``, scripts flagged ``no-writes``). Pick it
when the server processes sharing sessions do not share a file system, or a Redis is
already run next to them. It keeps no sessions file (no file-v1), so upstream codex-mcp-server
cannot read it; pick the reference ``FileSessionStorage`` when that file matters, or
``sqlite_storage.py`` when the processes share a disk and nothing else should be run.

Choices, and why:

- **Where**: the server at the ``url=`` argument, else ``$SESSIONSPEC_REDIS_URL``, else
  ``redis://127.0.0.1:6379/0``. ``path`` only names the store: its keys start with
  ``sessionspec:<run>:<sha256(realpath)[:16]>:`` (``<run>`` is ``$SESSIONSPEC_REDIS_PREFIX``,
  empty by default), so two paths never share keys and runs given their own prefix never
  meet. Nothing is created at or beside ``path`` (SPEC.md §8.7).
- **Keys**: ``live``, a sorted set of session ids scored by ``last_accessed_at``; ``seq``, the
  access counter; per session a hash ``s:<id>`` (``c`` created, ``a`` last access, ``o``
  access order, ``v`` conversation id when set) and a list ``t:<id>`` of turns.
- **One Lua script per operation** (``register_script``, so ``EVALSHA``): a mutation reads,
  purges expired sessions where §2.1 says so (B17), applies its change and the cap (B18) and
  writes, and Redis runs no other command meanwhile. That is §8.2's merge for an instance
  whose base is the committed state at every mutation (§8.7): no update is lost (B25-B28).
  Reads are scripts flagged ``no-writes``: Redis itself refuses a write from them (B23), and a
  snapshot of a session (hash and turns) is never torn by a concurrent mutation.
- **Time** is the injected ``clock()``, read once per operation in Python and passed to the
  script in integer milliseconds (Lua numbers are doubles: exact below 2**53; times travel as
  strings, never through Lua's ``%.14g``). Redis ``TIME`` is never used for the rules. As a
  safety net only, every write sets ``PEXPIRE`` on what it wrote to 3 x the TTL of real
  time, so a store abandoned for days leaves nothing behind; a session idle that long is
  expired for any real clock anyway, and a read ignores an id whose hash is gone.
- **Access order** (B04 ties, B18): each touch stores ``INCR seq`` in ``o``; list order is
  ``a`` descending, then ``o`` descending.
- **Text** is UTF-8 with ``surrogatepass`` (``decode_responses=False``): the spec allows any
  ``str`` (B02, B06, B09) and round trips are exact. A turn is one list element,
  ``b"<timestamp ms>:<len(prompt)>:" + prompt + response``, parsed only in Python.
- **Durability**: configure the server with ``appendonly yes`` and ``appendfsync always``.
  Redis then fsyncs its AOF before it replies, so a mutation that returned is on disk, and
  ``flush()`` returns when every earlier mutation is acknowledged by a server that fsyncs its
  AOF before replying: nothing is ever pending, it only checks the instance is open (B21,
  B33). The constructor reads ``CONFIG GET appendonly appendfsync`` and logs a WARNING when
  that is not so (or cannot be read); it does not refuse: a cache-only store is a choice.
- **Failures** raise ``redis.RedisError``. redis-py's retries are off: a script whose reply was
  lost may have run, and running it again could append a turn twice; a mutation that raised
  may therefore have been applied or not, never half.
- **fork()**: redis-py's connection pool notices a new pid and opens new connections in the
  child without touching the parent's sockets, so an inherited instance keeps working (B33).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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

log = logging.getLogger(__name__)

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MS: Final = timedelta(milliseconds=1)
DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"
#: Real-time lifetime of written keys, in TTLs: a safety net far beyond the spec's expiry.
KEEP_TTLS: Final = 3

#: Shared head of the mutation scripts. ARGV: prefix, now, cutoff (now - ttl), keep ms, id.
#: A session is live when its score is >= cutoff (``now - a <= ttl``, B17) and its hash exists.
_HEAD: Final = """
local P, now, cutoff, keep, id = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local LIVE, SEQ = P .. 'live', P .. 'seq'
local function live(sid)
  local a = redis.call('ZSCORE', LIVE, sid)
  return a ~= false and tonumber(a) >= cutoff and redis.call('EXISTS', P .. 's:' .. sid) == 1
end
local function drop(sid)
  redis.call('DEL', P .. 's:' .. sid, P .. 't:' .. sid)
  redis.call('ZREM', LIVE, sid)
end
local function touch(sid)
  redis.call('ZADD', LIVE, now, sid)
  redis.call('HSET', P .. 's:' .. sid, 'a', now, 'o', redis.call('INCR', SEQ))
  for _, key in ipairs({LIVE, SEQ, P .. 's:' .. sid, P .. 't:' .. sid}) do
    redis.call('PEXPIRE', key, keep)
  end
end
"""
#: create_session / ensure_session. ARGV[6]: max sessions; ARGV[7]: 'new' fails on a live id.
_ENSURE: Final = (
    _HEAD
    + """
for _, sid in ipairs(redis.call('ZRANGE', LIVE, '-inf', '(' .. ARGV[3], 'BYSCORE')) do
  drop(sid)
end
if live(id) then
  if ARGV[7] == 'new' then return 0 end
else
  drop(id)
  redis.call('HSET', P .. 's:' .. id, 'c', now)
end
touch(id)
local max = tonumber(ARGV[6])
if redis.call('ZCARD', LIVE) > max then
  local others, all = {}, redis.call('ZRANGE', LIVE, 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    if all[i] ~= id then
      local o = redis.call('HGET', P .. 's:' .. all[i], 'o')
      others[#others + 1] = {all[i], tonumber(all[i + 1]), tonumber(o or '0')}
    end
  end
  table.sort(others, function(x, y)
    if x[2] ~= y[2] then return x[2] > y[2] end
    return x[3] > y[3]
  end)
  for i = max, #others do drop(others[i][1]) end
end
return 1
"""
)
#: Mutations of one live session. ARGV[6]: turns '-' unchanged, 'r' replace, 'a' append;
#: ARGV[7]: conversation id '-' unchanged, '0' clear, '1' set to ARGV[8]; ARGV[9..]: turns.
_UPDATE: Final = (
    _HEAD
    + """
if not live(id) then return 0 end
local turns = P .. 't:' .. id
if ARGV[6] == 'r' then redis.call('DEL', turns) end
for i = 9, #ARGV, 1000 do
  redis.call('RPUSH', turns, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[7] == '0' then redis.call('HDEL', P .. 's:' .. id, 'v') end
if ARGV[7] == '1' then redis.call('HSET', P .. 's:' .. id, 'v', ARGV[8]) end
touch(id)
return 1
"""
)
_DELETE: Final = _HEAD + "if not live(id) then return 0 end drop(id) return 1"
#: Read-only. ARGV: prefix, cutoff, '1' with turns or '0', then an id (none: every session).
#: One reply per live session: {id, created, last access, order, {v} or {}, turns}.
_READ: Final = """#!lua flags=no-writes
local P, cutoff = ARGV[1], ARGV[2]
local ids = {ARGV[4]}
if ARGV[4] == nil then ids = redis.call('ZRANGE', P .. 'live', cutoff, '+inf', 'BYSCORE') end
local out = {}
for _, sid in ipairs(ids) do
  local a = redis.call('ZSCORE', P .. 'live', sid)
  local s = redis.call('HMGET', P .. 's:' .. sid, 'c', 'a', 'o', 'v')
  if a and tonumber(a) >= tonumber(cutoff) and s[1] then
    local turns = {}
    if ARGV[3] == '1' then turns = redis.call('LRANGE', P .. 't:' .. sid, 0, -1) end
    out[#out + 1] = {sid, s[1], s[2], s[3], s[4] and {s[4]} or {}, turns}
  end
end
return out
"""


def _ms(moment: datetime) -> int:
    return (to_millis(moment) - EPOCH) // MS


def _datetime(ms: bytes | int) -> datetime:
    return EPOCH + int(ms) * MS


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _str(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogatepass")


def _turn(turn: object) -> bytes:
    if not isinstance(turn, ConversationTurn):
        raise ValidationError(f"turns must be spec.ConversationTurn, got {type(turn).__name__}")
    prompt = _text(turn.prompt)
    return b"%d:%d:%s%s" % (_ms(turn.timestamp), len(prompt), prompt, _text(turn.response))


def _plain(value: object) -> str:
    """A config name or value, which redis-py gives as str or bytes depending on version."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_turn(item: bytes) -> ConversationTurn:
    timestamp, length, rest = item.split(b":", 2)
    n = int(length)
    return ConversationTurn(_str(rest[:n]), _str(rest[n:]), _datetime(timestamp))


def _session(reply: list[object]) -> tuple[int, SessionData]:
    """A reply of ``_READ`` as (access order, snapshot)."""
    sid, created, accessed, order, cid, turns = reply
    assert isinstance(sid, bytes) and isinstance(created, bytes) and isinstance(accessed, bytes)
    assert isinstance(order, bytes) and isinstance(cid, list) and isinstance(turns, list)
    return int(order), SessionData(
        sid.decode("ascii"),
        _datetime(created),
        _datetime(accessed),
        tuple(_parse_turn(item) for item in turns),
        _str(cid[0]) if cid else None,
    )


class RedisSessionStorage:
    """``spec.SessionStorage`` on a Redis server, keys named after ``path``; see the module doc.

    The class is a kit factory: ``RedisSessionStorage(path, clock=clock)``.
    """

    sessionspec_levels: Final = frozenset({Level.CORE, Level.DURABLE, Level.SHARED})

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = utc_now,
        url: str | None = None,
        max_sessions: int = MAX_SESSIONS,
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        """Connect to the server and check its persistence; create nothing (SPEC.md §8.7)."""
        digest = hashlib.sha256(os.path.realpath(os.fsencode(Path(path)))).hexdigest()[:16]
        run = os.environ.get("SESSIONSPEC_REDIS_PREFIX", "")
        self.prefix: Final = f"sessionspec:{run}:{digest}:".encode()
        self.url: Final = url or os.environ.get("SESSIONSPEC_REDIS_URL") or DEFAULT_URL
        self._clock = clock
        self._max_sessions = max_sessions
        self._ttl = ttl // MS
        self._closed = False
        self._redis = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0))
        try:
            self._check_persistence()
            self._ensure = self._redis.register_script(_ENSURE)
            self._update = self._redis.register_script(_UPDATE)
            self._delete = self._redis.register_script(_DELETE)
            self._read = self._redis.register_script(_READ)
        except BaseException:
            self._redis.close()
            raise

    def _check_persistence(self) -> None:
        """Log a WARNING unless every acknowledged write is fsynced (see the module doc)."""
        try:
            config = self._redis.config_get("appendonly", "appendfsync")
        except redis.ResponseError as error:  # CONFIG renamed or refused (managed servers)
            log.warning("%s: cannot read its persistence settings: %s", self.url, error)
            return
        found = {_plain(key): _plain(value) for key, value in config.items()}
        if found.get("appendonly") != "yes" or found.get("appendfsync") != "always":
            log.warning(
                "%s: appendonly=%s appendfsync=%s: acknowledged writes may be lost in a crash"
                " (run it with appendonly yes, appendfsync always)",
                self.url,
                found.get("appendonly"),
                found.get("appendfsync"),
            )

    def _args(self, session_id: str) -> list[bytes | int]:
        """The head ARGV of a mutation (prefix, now, cutoff, keep, id), with the operation's
        one "now" (SPEC.md §1.3); raises ValueError once closed."""
        if self._closed:
            raise ValueError("I/O operation on a closed RedisSessionStorage")
        now = _ms(self._clock())
        keep = KEEP_TTLS * self._ttl
        return [self.prefix, now, now - self._ttl, keep, session_id.encode("ascii")]

    def _snapshots(self, session_id: str | None, turns: bool = True) -> list[SessionData]:
        """Live sessions (one, or all) read in one no-writes script, in list order (B04)."""
        if self._closed:
            raise ValueError("I/O operation on a closed RedisSessionStorage")
        now = _ms(self._clock())
        args: list[bytes | int] = [self.prefix, now - self._ttl, int(turns)]
        if session_id is not None:
            args.append(session_id.encode("ascii"))
        replies = self._read(args=args)
        assert isinstance(replies, list)
        found = [_session(reply) for reply in replies]
        found.sort(key=lambda pair: (pair[1].last_accessed_at, pair[0]), reverse=True)
        return [session for _, session in found]

    def _mutate(self, session_id: str, *extra: bytes | int) -> bool:
        """Run ``_UPDATE`` on ``session_id``; False when it is unknown or expired."""
        if not is_valid_session_id(session_id):
            return False
        return bool(self._update(args=[*self._args(session_id), *extra]))

    # -- spec.SessionStorage ----------------------------------------------------------------

    def create_session(self) -> str:
        """Purge expired sessions, create an empty session under a new UUID4 stamped now,
        evict the others last in list order over the cap; return the id (B01, B17, B18)."""
        args = [*self._args(""), self._max_sessions, b"new"]
        while True:  # ids never repeat within a store (B01)
            session_id = str(uuid.uuid4())
            args[4] = session_id.encode("ascii")
            if self._ensure(args=args):
                return session_id

    def ensure_session(self, session_id: str) -> None:
        """Raise ValidationError for an id outside the grammar, changing nothing (B08); purge;
        create the session if no live one has the id, else touch it; evict over the cap, the
        ensured session surviving (B07, B17, B18). Sees others' commits (B29)."""
        session_id = str.__str__(check_session_id(session_id))
        self._ensure(args=[*self._args(session_id), self._max_sessions, b"ensure"])

    def get_session(self, session_id: str) -> SessionData | None:
        """The live session as a fresh immutable snapshot, or None; a pure read that sees every
        committed change of every instance (B23, B24, B17, B29)."""
        if not is_valid_session_id(session_id):
            return None
        found = self._snapshots(session_id)
        return found[0] if found else None

    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        """Replace only the fields given (``turns`` in order, copied; ``None`` clears the
        conversation id) and touch; unknown or expired id: nothing (B02, B03, B06, B17, B24)."""
        items = None if isinstance(turns, Unset) else [_turn(turn) for turn in turns]
        if isinstance(codex_conversation_id, Unset):
            cid: list[bytes] = [b"-", b""]
        elif codex_conversation_id is None:
            cid = [b"0", b""]
        elif isinstance(codex_conversation_id, str):
            cid = [b"1", _text(codex_conversation_id)]
        else:
            raise ValidationError("codex_conversation_id must be a str or None")
        self._mutate(session_id, b"-" if items is None else b"r", *cid, *(items or ()))

    def delete_session(self, session_id: str) -> bool:
        """Remove a live session and its turns for good: True; False for an unknown, expired or
        already deleted id, which stays untouched (B05, B17, B26, B29)."""
        if not is_valid_session_id(session_id):
            return False
        return bool(self._delete(args=self._args(session_id)))

    def list_sessions(self) -> list[SessionData]:
        """A new list of every live session once, by last access descending, ties latest
        access first; no touch; expired sessions are left out (and removed by the next create
        or ensure) (B04, B17, B23, B24, B29)."""
        return self._snapshots(None)

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        """Append the turn after the existing ones, keeping its own timestamp, and touch;
        unknown or expired id: nothing (B02, B17, B27, B29)."""
        self._mutate(session_id, b"a", b"-", b"", _turn(turn))

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
        found = self._snapshots(session_id, turns=False)
        return found[0].codex_conversation_id if found else None

    def flush(self) -> None:
        """Return at once: every earlier mutation was acknowledged by a server that fsyncs its
        AOF before replying (B21, B33). Raises ValueError once closed."""
        if self._closed:
            raise ValueError("I/O operation on a closed RedisSessionStorage")

    def close(self) -> None:
        """Close the connections; every mutation is already stored (B21). A second close()
        does nothing."""
        if not self._closed:
            self._closed = True
            self._redis.close()

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
