"""The kit's controllable clock: the backend's only source of "now" (SPEC.md §1.3)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sessionspec.spec import to_millis

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Deliberately carries sub-millisecond digits, so backends must truncate (§1.2).
DEFAULT_START = datetime(2031, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 of ``moment`` truncated to milliseconds (backup names, B13)."""
    return (to_millis(moment) - EPOCH) // timedelta(milliseconds=1)


class FakeClock:
    """A clock that only moves when the kit says so. Thread-safe for write-behind backends."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, step: timedelta) -> datetime:
        with self._lock:
            self._now += step
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment

    def __repr__(self) -> str:
        return f"FakeClock({self().isoformat()})"
