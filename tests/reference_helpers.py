"""Helpers shared by the reference backends' tests (tests/test_reference_*.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sessionspec.reference.file import WRITER_THREAD_PREFIX
from sessionspec.spec import ConversationTurn

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

#: Texts that stress the codec: escapes, control characters, astral and lone surrogates.
NASTY_TEXTS = (
    "plain",
    "unicode: héllo wörld — 你好 — 🚀🎉",
    "newlines\nand\ttabs\r\n",
    'quotes " and \\ backslashes',
    "control \x00\x01\x1f\x7f chars",
    "lone surrogates \ud800 and \udfff",
    "line separators \u2028\u2029",
    "",
)


class ManualClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def turn(prompt: str, response: str = "ok", at: datetime = START) -> ConversationTurn:
    return ConversationTurn(prompt, response, at)


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WRITER_THREAD_PREFIX)]


def temp_files(path: Path) -> Iterator[Path]:
    return path.parent.glob(f"{path.name}.*.tmp")


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.*.bak"))


#: A child process (``python -c SIGTERM_CHILD PATH opt-in|no``) that opens the reference on
#: PATH, makes one turn, says ``mutated`` and waits to be signalled (B33): the test of the
#: opt-in and benchmarks/exits_and_paths.py both run it.
SIGTERM_CHILD = """
import sys
from datetime import UTC, datetime
from sessionspec.reference import FileSessionStorage
from sessionspec.reference.exits import flush_on_signals
from sessionspec.spec import ConversationTurn
if sys.argv[2] == "opt-in":
    flush_on_signals()
storage = FileSessionStorage(sys.argv[1])
session_id = storage.create_session()
storage.add_turn(session_id, ConversationTurn("last words", "r", datetime.now(UTC)))
print("mutated", flush=True)
sys.stdin.read()  # until killed
"""
