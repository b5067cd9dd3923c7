"""What one add_turn costs on the SQLite backend, by how it commits (not a test).

    PYTHONPATH=. python benchmarks/sqlite_transactions.py [N]

N (default 10,000) ``add_turn`` on one session of one instance, timed with the final
``flush()``: a transaction per mutation with ``synchronous=FULL`` (what
examples/backends/sqlite_storage.py does) and with ``NORMAL``; all N in one transaction (the
best a write-behind queue could do); and the reference ``FileSessionStorage`` (write-behind).
The figures behind the backend's choice of a transaction per mutation (its module docstring).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sessionspec.conformance.loading import load_target
from sessionspec.reference import FileSessionStorage
from sessionspec.spec import ConversationTurn

ROOT = Path(__file__).resolve().parent.parent
BACKEND = f"{ROOT}/examples/backends/sqlite_storage.py:SqliteSessionStorage"
TURN = ConversationTurn("prompt " * 20, "response " * 60, datetime.now(UTC))


def per_mutation(count: int, synchronous: str) -> float:
    with tempfile.TemporaryDirectory() as work:
        storage = load_target(BACKEND)(Path(work) / "sessions.json")
        storage._db.execute(f"PRAGMA synchronous = {synchronous}")
        session_id = storage.create_session()
        began = time.perf_counter()
        for _ in range(count):
            storage.add_turn(session_id, TURN)
        storage.flush()
        elapsed = time.perf_counter() - began
        storage.close()
        return elapsed


def one_transaction(count: int) -> float:
    """The backend's own statements for add_turn, all in one transaction."""
    with tempfile.TemporaryDirectory() as work:
        storage = load_target(BACKEND)(Path(work) / "sessions.json")
        session_id = storage.create_session()
        prompt = TURN.prompt.encode("utf-8", "surrogatepass")
        response = TURN.response.encode("utf-8", "surrogatepass")
        db = storage._db
        began = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for _ in range(count):
            params = {"now": int(time.time() * 1000), "ttl": storage._ttl}
            storage._touch(db, session_id, params)
            db.execute(
                "INSERT INTO turns SELECT :id, coalesce(max(seq), 0) + 1, :p, :r, :t"
                " FROM turns WHERE session_id = :id",
                {"id": session_id, "p": prompt, "r": response, "t": params["now"]},
            )
        db.execute("COMMIT")
        elapsed = time.perf_counter() - began
        storage.close()
        return elapsed


def reference(count: int) -> float:
    with (
        tempfile.TemporaryDirectory() as work,
        FileSessionStorage(Path(work) / "s.json") as storage,
    ):
        session_id = storage.create_session()
        began = time.perf_counter()
        for _ in range(count):
            storage.add_turn(session_id, TURN)
        storage.flush()
        elapsed = time.perf_counter() - began
        storage.close()
        return elapsed


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    variants: list[tuple[str, Callable[[int], float]]] = [
        ("a transaction per mutation, synchronous=FULL", lambda n: per_mutation(n, "FULL")),
        ("a transaction per mutation, synchronous=NORMAL", lambda n: per_mutation(n, "NORMAL")),
        ("all in one transaction (a write-behind queue's best)", one_transaction),
        ("reference FileSessionStorage (write-behind) + flush()", reference),
    ]
    print(f"{count:,} add_turn on one session, 140 + 540 character turns")
    for name, variant in variants:
        seconds = variant(count)
        print(f"{name:55s} {seconds:7.3f} s  {seconds / count * 1e6:7.1f} us each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
