"""The kit on examples/backends/redis_storage.py (issue 17): a backend on a Redis server that
keeps no sessions file and claims core, durable and shared.

A ``redis-server`` of its own (tests/redis_server.py) runs for the module: 127.0.0.1, a free
port, its own data directory, ``appendonly yes``, ``appendfsync always``, no RDB snapshots.
Without redis-server the tests skip, saying how to install it; in CI (``$CI`` set) they fail.

CI runs ``sessionspec verify`` on the backend, profile ``ci``, through its TARGET, and keeps
the JSON report at ``reports/backends/redis.json``: exit 0, every behaviour of the claimed
levels PASS but B30 shared-file-lock, N/A (file-v1 only, SPEC.md §8.7). Each kit run gets a
key prefix of its own (``$SESSIONSPEC_REDIS_PREFIX``). Then the server is killed and
restarted on the same data, and what was acknowledged must be there, every field.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backend_checks import (
    ROOT,
    assert_claimed_levels_pass,
    assert_processes_appending_at_once_lose_nothing,
    verify,
)
from redis_server import RedisServer, RedisServerError

from sessionspec.conformance.loading import load_target
from sessionspec.spec import ConversationTurn, Level

BACKEND = ROOT / "examples" / "backends" / "redis_storage.py"
TARGET = f"{BACKEND}:RedisSessionStorage"
REPORT = ROOT / "reports" / "backends" / "redis.json"
CLAIMED = {Level.CORE, Level.DURABLE, Level.SHARED}
#: Claimed, but every check needs a level not claimed (file-v1), with the kit's reason.
NOT_APPLICABLE = {"B30": "level file-v1 not claimed"}
# One xdist worker runs every test here: one server, and the restart test owns it meanwhile.
pytestmark = pytest.mark.xdist_group("redis-server")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own, stopped at the end."""
    try:
        started = RedisServer.launch(tmp_path_factory.mktemp("redis"))
    except RedisServerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Redis backend's tests: {exc}")
        pytest.skip(str(exc))
    try:
        yield started
    finally:
        started.stop()


def _verify(server: RedisServer, report: Path) -> tuple[int, str, Any]:
    """``sessionspec verify`` as CI runs it, keys under a prefix of its own."""
    env = {
        "SESSIONSPEC_REDIS_URL": server.url,
        "SESSIONSPEC_REDIS_PREFIX": f"kit-{uuid.uuid4().hex}",
    }
    return verify(TARGET, report, env)


def test_sessionspec_verify_passes_every_claimed_behaviour(server: RedisServer) -> None:
    assert_claimed_levels_pass(_verify(server, REPORT), CLAIMED, NOT_APPLICABLE)


def test_killed_server_keeps_every_acknowledged_session(
    server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Persistence mode: AOF with ``appendfsync always``, no RDB (``--save ''``): Redis
    fsyncs each write to its AOF before it replies, so whatever a returned mutation (and so a
    returned flush()) acknowledged survives a SIGKILL of the server, which gets no chance to
    save anything more. Phase 1 writes sessions (turns, conversation ids, text with a lone
    surrogate, a reset, a delete, equal timestamps), flushes and the server is killed; after a
    restart on the same port and data directory, a fresh instance lists exactly the same
    sessions, every field, in the same order; then the kit passes again on that server."""
    monkeypatch.setenv("SESSIONSPEC_REDIS_PREFIX", f"restart-{uuid.uuid4().hex}")
    path = tmp_path / "store" / "sessions.json"
    now = datetime.now(UTC).replace(microsecond=0)
    factory = load_target(TARGET)
    first = factory(path, clock=lambda: now, url=server.url)
    ids = [first.create_session() for _ in range(4)]
    first.ensure_session("named_one")
    for k, session_id in enumerate(ids):
        for t in range(k + 1):
            turn = ConversationTurn(f"p{k}.{t} \ud800", f"r{k}.{t}\n\x00", now - timedelta(t))
            first.add_turn(session_id, turn)
        first.set_codex_conversation_id(session_id, f"conv-{k}-\udfff")
    first.reset_session(ids[1])
    assert first.delete_session(ids[2])
    first.flush()
    before = first.list_sessions()
    assert [s.id for s in before] == [ids[1], ids[3], ids[0], "named_one"]  # access order
    server.kill()
    first.close()
    server.start()
    with factory(path, clock=lambda: now, url=server.url) as second:
        assert second.list_sessions() == before
        assert second.get_session(ids[2]) is None
        assert second.get_codex_conversation_id(ids[3]) == "conv-3-\udfff"
    assert not path.parent.exists()  # nothing at the path, nor beside it
    verified = _verify(server, tmp_path / "after-restart.json")
    assert_claimed_levels_pass(verified, CLAIMED, NOT_APPLICABLE)


def test_processes_appending_at_once_lose_nothing(
    server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store" / "sessions.json"
    monkeypatch.setenv("SESSIONSPEC_REDIS_URL", server.url)
    monkeypatch.setenv("SESSIONSPEC_REDIS_PREFIX", f"append-{uuid.uuid4().hex}")
    assert_processes_appending_at_once_lose_nothing(TARGET, path)
    monkeypatch.setenv("SESSIONSPEC_REDIS_PREFIX", f"other-{uuid.uuid4().hex}")
    with load_target(TARGET)(path) as storage:
        assert storage.list_sessions() == []  # another prefix: another store
    assert not path.parent.exists()
