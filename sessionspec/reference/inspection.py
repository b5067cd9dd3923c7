"""What a v1 reader would do with a sessions file, found without writing anything.

In the reference, not the kit: it is the reference reader (decode, SessionTable), minus writes.

``inspect_bytes`` is pure; ``inspect_file`` reads a file read-only (never creates, moves,
backs up or chmods anything, opens with ``O_NONBLOCK`` and reads only regular files, at most
``max_bytes``). Both return a ``FileCheck``. Outcomes and their exit codes (``exit_code``):

- ``clean-load`` (0): every record loads, nothing is lost (SPEC.md §3.2 steps 5-7, B15 not
  triggered); expired sessions load invisible and leave at the next save (B17).
- ``lossy-load`` (1): records are skipped, or unknown members, repeated member names,
  sub-millisecond digits or sessions over the cap are lost (§3.2 steps 5-7, B15, B18); a v1
  reader keeps a backup of the original bytes before its first save (§4.4).
- ``move-aside`` (1): the file cannot be parsed or has no sessions array (B13), or its version
  is not 1 (B14); a v1 reader moves it to ``<name>.<epoch-ms>.bak`` and starts empty.
- ``cannot-read`` (2): the file is missing (B11: a v1 reader starts empty), or reading it
  fails: a directory, permission denied, a path component not a directory (B12: a v1 reader
  raises OSError); also a FIFO, socket or device, which this module never reads.
- ``too-large`` (2): more than ``max_bytes``; nothing more was read.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sessionspec.reference.sessionfile import (
    ENVELOPE_MEMBERS,
    SESSION_MEMBERS,
    TURN_MEMBERS,
    Decoded,
    InvalidFileError,
    Skip,
    UnsupportedVersionError,
    decode,
)
from sessionspec.reference.table import SessionTable
from sessionspec.spec import (
    MAX_SESSIONS,
    format_timestamp,
    has_sub_millisecond_digits,
    to_millis,
)

#: Files larger than this are not read (``inspect_file``'s default ``max_bytes``).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Read-only, never blocking on a FIFO, never becoming a controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)  # Linux: leave even the access time alone


class Outcome(StrEnum):
    """What a v1 reader would do with the file (SPEC.md §3.2)."""

    CLEAN_LOAD = "clean-load"
    LOSSY_LOAD = "lossy-load"
    MOVE_ASIDE = "move-aside"
    CANNOT_READ = "cannot-read"
    TOO_LARGE = "too-large"

    @property
    def exit_code(self) -> int:
        """0 for a clean load; 1 for a lossy load (B15, B18) or a move aside (B13, B14); 2
        when the file was not read (B11, B12, or too large)."""
        if self is Outcome.CLEAN_LOAD:
            return 0
        if self in (Outcome.LOSSY_LOAD, Outcome.MOVE_ASIDE):
            return 1
        return 2


@dataclass(frozen=True, slots=True)
class Loss:
    """Something of the file a load does not carry into memory, other than a skipped record.

    ``location`` names where it is (``sessions[3]``, ``sessions[3].turns[0].timestamp``,
    ``top level``); see SPEC.md §3.2 step 7.
    """

    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The verdict on one file; ``inspect_bytes`` and ``inspect_file`` make it."""

    path: str
    now: datetime
    outcome: Outcome
    #: The live sessions a v1 reader holds after opening, in list order (B04, B17, B18).
    loaded_ids: tuple[str, ...] = ()
    #: Sessions that load but are expired at ``now``: invisible, gone at the next save (B17).
    expired: int = 0
    #: Records skipped one by one (B15), in file order.
    skipped: tuple[Skip, ...] = ()
    #: The other losses of a lossy load: unknown members, repeated member names,
    #: sub-millisecond digits, sessions evicted by the cap (SPEC.md §3.2 step 7).
    losses: tuple[Loss, ...] = ()
    #: With ``move-aside``: why the file cannot be loaded.
    move_aside_reason: str | None = None
    #: The behaviour that decides the outcome (B11-B15), None for a clean load.
    behaviour: str | None = None
    #: With ``cannot-read`` or ``too-large``: what went wrong.
    error: str | None = None

    @property
    def backup_expected(self) -> bool:
        """Whether a v1 reader must back up the original bytes before its first save: exactly
        when the load is lossy (SPEC.md §3.2 step 7, §4.4, B15)."""
        return self.outcome is Outcome.LOSSY_LOAD

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON object for ``check --json``: the fields above (``skipped``
        B15, ``lossy_reasons`` B15/B18, ``expired`` B17), ``sessions_loaded`` and
        ``backup_expected``; members that do not apply to the outcome are null or empty."""
        loaded = self.outcome in (Outcome.CLEAN_LOAD, Outcome.LOSSY_LOAD)
        return {
            "path": self.path,
            "now": format_timestamp(self.now),
            "outcome": self.outcome.value,
            "behaviour": self.behaviour,
            "sessions_loaded": len(self.loaded_ids) if loaded else None,
            "loaded_ids": list(self.loaded_ids) if loaded else None,
            "expired": self.expired if loaded else None,
            "skipped": [{"location": s.location, "reason": s.reason} for s in self.skipped],
            "lossy_reasons": [{"location": s.location, "reason": s.reason} for s in self.losses],
            "backup_expected": self.backup_expected,
            "move_aside_reason": self.move_aside_reason,
            "error": self.error,
        }


def exit_code(results: Iterable[FileCheck]) -> int:
    """The worst exit code of the results: 0 every file a clean load, 1 some lossy load (B15,
    B18) or move aside (B13, B14), 2 some file not read (B11, B12, too large)."""
    return max((result.outcome.exit_code for result in results), default=0)


def inspect_bytes(data: bytes, *, now: datetime, path: str = "") -> FileCheck:
    """Apply SPEC.md §3.2 steps 2-7 to ``data`` as a v1 reader whose clock reads ``now``.

    Steps 2-5 are the reference's ``decode`` (B13, B14, B15), expiry and the cap the
    reference's ``SessionTable`` (B17, B18); the verdict is exactly the file backend's. The
    itemised ``losses`` only explain a lossy verdict, which they never decide.
    """
    now = to_millis(now)
    try:
        decoded = decode(data)
    except InvalidFileError as exc:
        version = isinstance(exc, UnsupportedVersionError)
        return FileCheck(
            path,
            now,
            Outcome.MOVE_ASIDE,
            move_aside_reason=str(exc),
            behaviour="B14" if version else "B13",
        )
    table = SessionTable(decoded.sessions, clock=lambda: now, max_sessions=MAX_SESSIONS, now=now)
    live = table.live_sessions()
    evicted = table.evicted_at_load
    expired = len(decoded.sessions) - len(live) - len(evicted)
    lossy = decoded.lossy or bool(evicted)  # as FileSessionStorage decides its backup (B15)
    losses = _explain(data, decoded, evicted) if lossy else ()
    return FileCheck(
        path,
        now,
        Outcome.LOSSY_LOAD if lossy else Outcome.CLEAN_LOAD,
        loaded_ids=tuple(s.id for s in live),
        expired=expired,
        skipped=decoded.skipped,
        losses=losses,
        behaviour="B15" if lossy else None,
    )


def inspect_file(
    path: str | os.PathLike[str], *, now: datetime, max_bytes: int = DEFAULT_MAX_BYTES
) -> FileCheck:
    """``inspect_bytes`` of the file at ``path``, read read-only and bounded (B11, B12).

    Never writes, creates, moves or chmods anything. A missing file, a directory or any
    OSError gives ``cannot-read`` (B11, B12); so does anything but a regular file (a FIFO is
    opened with O_NONBLOCK and never read, so this never blocks). More than ``max_bytes``
    gives ``too-large`` and nothing more is read.
    """
    name = os.fspath(path)
    now = to_millis(now)
    try:
        data = read_bounded(name, max_bytes)
    except FileTooLargeError as exc:
        return FileCheck(name, now, Outcome.TOO_LARGE, error=str(exc))
    except FileNotFoundError as exc:
        return FileCheck(name, now, Outcome.CANNOT_READ, behaviour="B11", error=str(exc))
    except NotRegularFileError as exc:  # a v1 reader might block on it: nothing to say
        return FileCheck(name, now, Outcome.CANNOT_READ, error=str(exc))
    except OSError as exc:
        return FileCheck(name, now, Outcome.CANNOT_READ, behaviour="B12", error=str(exc))
    return inspect_bytes(data, now=now, path=name)


class FileTooLargeError(Exception):
    """The file holds more bytes than the limit; it was not read to the end."""


class NotRegularFileError(OSError):
    """A FIFO, socket or device: never read, so a check cannot block on it."""


def read_bounded(path: str, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them (B11, B12).

    Read-only (with O_NOATIME where the system allows it): nothing is moved, created or
    written. Raises OSError as ``open`` does (IsADirectoryError for a directory, found before
    opening), NotRegularFileError (EINVAL) for a FIFO, socket or device, and
    FileTooLargeError beyond ``max_bytes``.
    """
    _require_regular(os.stat(path).st_mode, path)  # a device is not even opened
    try:
        fd = os.open(path, _OPEN_FLAGS | _NOATIME)
    except PermissionError:
        if not _NOATIME:
            raise
        fd = os.open(path, _OPEN_FLAGS)  # O_NOATIME needs the file's owner
    try:
        info = os.fstat(fd)
        _require_regular(info.st_mode, path)  # it may have changed since the stat
        if info.st_size > max_bytes:
            raise FileTooLargeError(_too_large(info.st_size, max_bytes))
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew, or st_size does not tell (procfs)
                raise FileTooLargeError(_too_large(None, max_bytes))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _require_regular(mode: int, path: str) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file"
        )
        raise NotRegularFileError(errno.EINVAL, f"{kind}, not a regular file", path)


def _too_large(size: int | None, max_bytes: int) -> str:
    held = f"{size} bytes, more" if size is not None else "more bytes"
    return f"{held} than the limit of {max_bytes}: not read (see --max-bytes)"


def backup_name(path: str, now: datetime) -> str:
    """The backup name a v1 reader tries first at ``now``: ``<name>.<epoch-ms>.bak``, epoch-ms
    from the clock; ``.<n>.bak`` follows when it is taken (SPEC.md §3.2, B13, B14, B15)."""
    epoch_ms = (to_millis(now) - _EPOCH) // timedelta(milliseconds=1)
    return f"{os.path.basename(path) or 'sessions.json'}.{epoch_ms}.bak"


# -- text for people, 80 columns -------------------------------------------------------------

WIDTH = 80
_LABELS = {
    Outcome.CLEAN_LOAD: "clean load",
    Outcome.LOSSY_LOAD: "lossy load",
    Outcome.MOVE_ASIDE: "move aside",
    Outcome.CANNOT_READ: "cannot read",
    Outcome.TOO_LARGE: "too large",
}


def render_text(results: Iterable[FileCheck]) -> str:
    """Each verdict as a few lines of at most 80 columns (long paths excepted), then a total.

    States what a v1 reader would do: load (B15 backup if lossy, B17 expired, B18 cap), move
    aside (B13, B14), start empty (B11) or raise (B12).
    """
    results = list(results)
    lines: list[str] = []
    for result in results:
        lines.append(result.path)
        lines.extend(_wrap(text) for text in _describe(result))
    counts = Counter(result.outcome for result in results)
    total = ", ".join(f"{_LABELS[o]}: {counts[o]}" for o in Outcome if counts[o])
    plural = "s" if len(results) != 1 else ""
    lines.append(_wrap(f"{len(results)} file{plural}; {total}", indent=""))
    return "\n".join(lines)


def _describe(result: FileCheck) -> list[str]:
    label = _LABELS[result.outcome]
    if result.outcome is Outcome.MOVE_ASIDE:
        return [
            f"{label} ({result.behaviour}): {result.move_aside_reason}",
            f"a v1 reader would move it to {backup_name(result.path, result.now)} (or the next "
            "free .<n>.bak) and start with an empty store",
        ]
    if result.outcome is Outcome.TOO_LARGE:
        return [f"{label}: {result.error}"]
    if result.outcome is Outcome.CANNOT_READ:
        consequence = {
            "B11": "a v1 reader would start with an empty store and create nothing until "
            "its first save",
            "B12": "a v1 reader would raise OSError and touch nothing",
        }.get(result.behaviour or "", "not read: check reads only regular files")
        behaviour = f" ({result.behaviour})" if result.behaviour else ""
        return [f"{label}{behaviour}: {result.error}", consequence]
    count = len(result.loaded_ids)
    expired = (
        f"{result.expired} expired, dropped at the next save (B17)"
        if result.expired
        else "none expired"
    )
    text = [f"{label}: {count} live session{'s' if count != 1 else ''}; {expired}"]
    text.extend(f"skipped {skip.location}: {skip.reason}" for skip in result.skipped)
    text.extend(f"lost at {loss.location}: {loss.reason}" for loss in result.losses)
    if result.backup_expected:
        text.append("a v1 reader would back up the original bytes before its first save (B15)")
    return text


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


# -- explaining a lossy load (SPEC.md §3.2 step 7) -----------------------------------------


class _Object(dict[str, Any]):
    """A JSON object that remembers the member names it repeated."""

    repeated: tuple[str, ...] = ()


def _make_object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        repeated: dict[str, None] = {}
        for name, _ in pairs:
            if name in seen:
                repeated[name] = None
            seen.add(name)
        result.repeated = tuple(repeated)
    return result


def _explain(data: bytes, decoded: Decoded, evicted: tuple[str, ...]) -> tuple[Loss, ...]:
    """Itemise what a lossy load loses besides skipped records; ``decode`` only says that.

    Walks the same JSON again (it parsed, so it parses) and looks where the reader looks:
    the envelope, and the sessions and turns that loaded.
    """
    try:
        document = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_make_object,
            parse_int=lambda _: 0,  # values of numbers do not matter here
            parse_float=lambda _: 0,
        )
    except (ValueError, RecursionError):  # pragma: no cover - decode parsed the same text
        return (Loss("file", "the reference reader reports a loss not itemised here"),)
    losses = _repeated_names(document)
    records: list[Any] = document["sessions"]
    losses.extend(_unknown(document, ENVELOPE_MEMBERS, "top level"))
    skipped = {skip.location for skip in decoded.skipped}
    loaded_at = [i for i in range(len(records)) if f"sessions[{i}]" not in skipped]
    location_of = {}
    for index, session in zip(loaded_at, decoded.sessions, strict=True):
        where = f"sessions[{index}]"
        location_of[session.id] = where
        record = records[index]
        losses.extend(_unknown(record, SESSION_MEMBERS, where))
        losses.extend(_sub_millisecond(record, ("createdAt", "lastAccessedAt"), where))
        for j, turn in enumerate(record["turns"]):
            if f"{where}.turns[{j}]" not in skipped:
                losses.extend(_unknown(turn, TURN_MEMBERS, f"{where}.turns[{j}]"))
                losses.extend(_sub_millisecond(turn, ("timestamp",), f"{where}.turns[{j}]"))
    for session_id in evicted:
        losses.append(
            Loss(
                location_of[session_id],
                f"session {session_id!r} is evicted: over the cap of {MAX_SESSIONS} (B18)",
            )
        )
    if not losses and not decoded.skipped:  # pragma: no cover - would be a bug here
        losses.append(Loss("file", "the reference reader reports a loss not itemised here"))
    return tuple(losses)


def _repeated_names(document: object) -> list[Loss]:
    """Every object, at any depth, that repeats a member name (iteratively: files nest deep)."""
    losses = []
    stack: list[tuple[object, str]] = [(document, "top level")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, _Object):
            for name in value.repeated:
                losses.append(
                    Loss(where, f"member name {name!r:.60} repeats; only its last value is read")
                )
            children = [(v, _member_path(where, k)) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        stack.extend(reversed(children))
    return losses


def _member_path(where: str, name: str) -> str:
    base = "" if where == "top level" else where
    if name.isidentifier() and name.isascii():
        return f"{base}.{name}" if base else name
    return f"{base}[{json.dumps(name)[:62]}]"


def _unknown(record: dict[str, Any], known: frozenset[str], where: str) -> list[Loss]:
    return [
        Loss(where, f"unknown member {name!r:.60} is ignored")
        for name in record
        if name not in known
    ]


def _sub_millisecond(record: dict[str, Any], members: Iterable[str], where: str) -> list[Loss]:
    return [
        Loss(f"{where}.{member}", f"{record[member]!r:.60} has digits below the millisecond")
        for member in members
        if has_sub_millisecond_digits(record[member])
    ]
