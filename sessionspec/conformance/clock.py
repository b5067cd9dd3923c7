"""The kit's controllable clock: the backend's only source of "now" (SPEC.md §1.3)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sessionspec.conformance.oracle import EPOCH, epoch_millis

__all__ = ["DEFAULT_START", "EPOCH", "FakeClock", "epoch_ms"]

#: Deliberately carries sub-millisecond digits, so backends must truncate (§1.2).
DEFAULT_START = datetime(2031, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 of ``moment`` truncated to milliseconds: the ``<epoch-ms>`` of
    backup names (SPEC.md §3.2, B13, B15).

    The kit's own arithmetic (``oracle.epoch_millis``), not the spec helpers it judges.
    """
    return epoch_millis(moment)


class FakeClock:
    """A clock that only moves when the kit says so (SPEC.md §1.3, §2.2: the backend's only
    source of "now"; B16, B17). Thread-safe for write-behind backends."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """The current "now", untruncated: backends truncate it themselves (§1.2, §1.3)."""
        with self._lock:
            return self._now

    def advance(self, step: timedelta) -> datetime:
        """Move "now" forward by ``step`` and return it (expiry B17, stale temps B16)."""
        with self._lock:
            self._now += step
            return self._now

    def set(self, moment: datetime) -> None:
        """Put "now" at ``moment`` (a vector's own clock, §7; B17)."""
        with self._lock:
            self._now = moment

    def __repr__(self) -> str:
        return f"FakeClock({self().isoformat()})"
