"""The "must accept" set: one conforming backend per freedom of SPEC.md §4.7.

Each backend is the independent backend (tests/independent_backend.py, written from SPEC.md
alone) with one piece overridden, so that it uses exactly one freedom. Each one must pass the
whole conformance kit: a kit check that rejects one of them rejects a legitimate backend.
tests/test_must_accept.py runs the kit on each and checks that each really uses its freedom.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from independent_backend import IndependentFileStorage, log

LEVELS = ("core", "durable", "file-v1")


def save_at_exit(storage: IndependentFileStorage) -> None:
    """A backend that defers saves closes at a normal exit (B33). A strong reference: an
    instance its caller forgot (a local of a function that returned) must still save."""
    atexit.register(storage.close)


class WriteThroughStorage(IndependentFileStorage):
    """Freedom: write-through (SPEC.md §4.7; SPEC.md §4.5 makes write-behind a
    SHOULD). Every mutation saves synchronously before it returns; a failed save is logged
    once at ERROR and retried by the next mutation or flush(). Touches B21, B22."""

    sessionspec_levels = LEVELS


class WriteBehindTimerStorage(IndependentFileStorage):
    """Freedom: write-behind on a timer (SPEC.md §4.7; SPEC.md §4.5).

    A mutation serialises the state and schedules one save ``delay`` seconds later; mutations
    made before it fires coalesce into that save. flush() cancels the timer and saves the
    latest state synchronously (raising OSError); close() flushes, so no timer outlives it.
    A failed background save is logged once at ERROR and not rescheduled: the next mutation
    or flush() tries again. Touches B11, B21, B22.
    """

    sessionspec_levels = LEVELS
    delay = 0.03

    def __init__(self, path: Path, **kwargs: Any) -> None:
        self._lock = threading.Lock()  # guards _pending and _timer
        self._io = threading.Lock()  # one save at a time; held around every _write
        self._pending: bytes | None = None
        self._timer: threading.Timer | None = None
        super().__init__(path, **kwargs)
        save_at_exit(self)

    def _changed(self) -> None:
        content = self._document()  # serialised here: the timer thread never reads the store
        with self._lock:
            self._pending = content
            if self._timer is None:
                self._timer = threading.Timer(self.delay, self._save_pending, (False,))
                self._timer.daemon = True
                self._timer.start()

    def _save_pending(self, raising: bool) -> None:
        with self._io:
            with self._lock:
                content, self._pending = self._pending, None
                if self._timer is threading.current_thread():  # this is the timer firing
                    self._timer = None
            if content is None:
                return
            try:
                self._write(content)
            except OSError as exc:
                with self._lock:
                    if self._pending is None:  # a newer state, if any, supersedes this one
                        self._pending = content
                if raising:
                    raise
                self._report_failure(exc)

    def flush(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._save_pending(raising=True)


class FlushOnlyStorage(IndependentFileStorage):
    """Freedom: save only in flush() and close() (SPEC.md §4.7; SPEC.md §4.5).
    A mutation only marks the store dirty; nothing is written in the background, so there is
    no background failure to log. Touches B11, B21, B22."""

    sessionspec_levels = LEVELS

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        save_at_exit(self)

    def _changed(self) -> None:
        self._dirty = True


class FlushAlwaysRewritesStorage(IndependentFileStorage):
    """Freedom: flush() rewrites the file even when nothing changed since the last save, as
    codex-mcp-server's flush() does (SPEC.md §4.7). Only once the file exists
    or this instance has a mutation to save: flushing a store opened on a missing file writes
    nothing (B11). Touches B02, B03, B06, B08 (calls that must change nothing), B11, B21."""

    sessionspec_levels = LEVELS

    def flush(self) -> None:
        if self._dirty or self._path.exists():
            self._save()


class CompactEscapedStorage(IndependentFileStorage):
    """Freedom: compact JSON with every non-ASCII character escaped as \\uXXXX and every '/'
    as '\\/' (SPEC.md §4.7; SPEC.md §3.1: writers MAY escape any character,
    indentation is free). The file stays writer-valid. Touches B09, B10."""

    sessionspec_levels = LEVELS

    def _encode(self, envelope: dict[str, Any]) -> bytes:
        text = json.dumps(envelope, separators=(",", ":"), ensure_ascii=True)
        # json.dumps never escapes '/', so every '/' of its output is a character of a string.
        return text.replace("/", "\\/").encode("ascii")


class ReorderedTabsStorage(IndependentFileStorage):
    """Freedom: another member order and TAB indentation (SPEC.md §4.7; SPEC.md
    §3.1: order and whitespace are not information). Every object's members are written in
    reverse: sessions before version, turns (or codexConversationId) first in a session,
    timestamp first in a turn. Touches B09, B10."""

    sessionspec_levels = LEVELS

    def _encode(self, envelope: dict[str, Any]) -> bytes:
        return json.dumps(_reversed_members(envelope), indent="\t").encode("ascii")


def _reversed_members(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_members(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [_reversed_members(item) for item in value]
    return value


class UuidTempRenameStorage(IndependentFileStorage):
    """Freedom: temp files named ``<name>.<uuid4>.tmp`` (one uuid per instance) and renamed
    with os.rename instead of os.replace (SPEC.md §4.7; SPEC.md §4.1). Still
    created O_CREAT|O_EXCL|O_NOFOLLOW with mode 0o600, fsynced, directory fsynced.
    Touches B16, B19, B20."""

    sessionspec_levels = LEVELS

    def _make_token(self) -> str:
        return str(uuid.uuid4())

    def _install(self, temp: Path) -> None:
        os.rename(temp, self._path)


class CopyAsideStorage(IndependentFileStorage):
    """Freedom: move a corrupt or unknown-version file aside by exclusive copy + unlink instead
    of link + unlink (SPEC.md §4.7; SPEC.md §3.2 "Moving aside"). The backup
    is created O_CREAT|O_EXCL|O_NOFOLLOW 0o600 under the first free name, filled with the bytes
    that were read and fsynced; then the original is unlinked and the directory fsynced. An
    existing file is never overwritten. Touches B13, B14, B20."""

    sessionspec_levels = LEVELS

    def _move_aside(self, why: str, raw: bytes) -> None:
        content = raw  # only a file that was read is moved aside
        for attempt in range(10_000):
            backup = self._backup_name(attempt)
            try:
                self._write_new(backup, content)
            except FileExistsError:
                continue
            os.unlink(self._path)
            self._fsync_dir()
            log.warning("%s: %s; copied it aside to %s", self._path, why, backup)
            return
        raise OSError(f"no free backup name for {self._path}")


#: The must-accept set, by freedom.
MUST_ACCEPT: dict[str, type[IndependentFileStorage]] = {
    "write-through": WriteThroughStorage,
    "write-behind-timer": WriteBehindTimerStorage,
    "flush-only": FlushOnlyStorage,
    "flush-always-rewrites": FlushAlwaysRewritesStorage,
    "compact-escaped": CompactEscapedStorage,
    "reordered-tabs": ReorderedTabsStorage,
    "uuid-temp-rename": UuidTempRenameStorage,
    "copy-aside": CopyAsideStorage,
}
