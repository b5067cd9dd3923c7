"""The conformance kit accepts every freedom of SPEC.md §4.7 "What a backend may choose".

For each backend of tests/must_accept.py: the full kit (profile ``ci``) passes every behaviour
of the catalogue, and a direct probe shows the backend really uses its freedom. Each probe is
also run on a backend without that freedom and must fail there, so no probe passes vacuously.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from independent_backend import IndependentFileStorage
from must_accept import (
    LEVELS,
    MUST_ACCEPT,
    CompactEscapedStorage,
    CopyAsideStorage,
    FlushAlwaysRewritesStorage,
    FlushOnlyStorage,
    ReorderedTabsStorage,
    UuidTempRenameStorage,
    WriteBehindTimerStorage,
    WriteThroughStorage,
)

from sessionspec import conformance
from sessionspec.conformance import Report, Status
from sessionspec.conformance.clock import FakeClock
from sessionspec.spec import ConversationTurn, behaviours, writer_validator
from sessionspec.spec.catalogue import spec_path

Factory = type[IndependentFileStorage]
Probe = Callable[[Factory, Path, pytest.MonkeyPatch], None]
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def _story(report: Report) -> str:
    lines = []
    for bid, result in report.results.items():
        if result.status is not Status.PASS:
            lines.append(f"{bid} {result.status}")
        for item in result.failures:
            lines.append(f"  {bid} {item.check}: {item.message[:300]}")
    return "\n".join(lines) or "(no failing check)"


@pytest.mark.parametrize("name", list(MUST_ACCEPT))
def test_kit_accepts_the_freedom(name: str) -> None:
    report = conformance.verify(MUST_ACCEPT[name], profile="ci")
    statuses = {bid: result.status for bid, result in report.results.items()}
    catalogue = [item.id for item in behaviours()]
    assert sorted(statuses) == sorted(catalogue), "the report covers the whole catalogue"
    assert report.ok, _story(report)
    claimed = set(report.levels)  # file-v1 and what it implies; not shared (SPEC.md §8)
    assert {item.id: statuses[item.id] for item in behaviours()} == {
        item.id: Status.PASS if item.level in claimed else Status.NA for item in behaviours()
    }, _story(report)


@pytest.mark.parametrize("name", list(MUST_ACCEPT))
def test_declares_its_freedom(name: str) -> None:
    factory = MUST_ACCEPT[name]
    assert tuple(factory.sessionspec_levels) == LEVELS
    assert factory.__doc__ and "SPEC.md §4.7" in " ".join(factory.__doc__.split())
    assert "### 4.7 What a backend may choose" in spec_path().read_text(encoding="utf-8")
    assert re.search(r"\bB\d\d\b", factory.__doc__), "the docstring names the behaviours"


# -- probes: does the backend really use its freedom? ----------------------------------------
def _turn(clock: FakeClock, text: str = "p") -> ConversationTurn:
    return ConversationTurn(text, "r", clock())


def _stored(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    assert not list(writer_validator().iter_errors(data)), "the file is writer-valid"
    return data


def _turn_count(path: Path, session_id: str) -> int:
    (session,) = [s for s in _stored(path)["sessions"] if s["id"] == session_id]
    return len(session["turns"])


def probe_write_through(factory: Factory, tmp: Path, _: pytest.MonkeyPatch) -> None:
    """Each mutation is on disk when it returns, without flush()."""
    clock, path = FakeClock(), tmp / "sessions.json"
    storage = factory(path, clock=clock)
    session_id = storage.create_session()
    assert path.exists(), "create_session() returned before saving"
    storage.add_turn(session_id, _turn(clock))
    assert _turn_count(path, session_id) == 1, "add_turn() returned before saving"
    storage.close()


def _spy_writes(
    storage: IndependentFileStorage, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[int], threading.Semaphore]:
    """Count the saves of ``storage`` (whatever thread makes them)."""
    sizes: list[int] = []
    saved = threading.Semaphore(0)
    real = storage._write

    def counting(content: bytes) -> None:
        real(content)
        sizes.append(len(content))
        saved.release()

    monkeypatch.setattr(storage, "_write", counting)
    return sizes, saved


def probe_write_behind_timer(factory: Factory, tmp: Path, mp: pytest.MonkeyPatch) -> None:
    """A burst of mutations arms one Timer and writes nothing; flush() cancels the timer and
    saves once; a timer that fires saves without flush()."""
    clock, path = FakeClock(), tmp / "sessions.json"
    storage = factory(path, clock=clock)
    storage.delay = 3600.0  # type: ignore[attr-defined]  # no firing by itself in this part
    sizes, saved = _spy_writes(storage, mp)
    session_id = storage.create_session()
    for index in range(20):
        storage.add_turn(session_id, _turn(clock, f"t{index}"))
    assert not path.exists(), "a mutation saved synchronously"
    timer = getattr(storage, "_timer", None)
    assert isinstance(timer, threading.Timer) and timer.is_alive(), "no save is scheduled"
    storage.flush()
    assert len(sizes) == 1, "flush() must save the whole burst once (coalesced)"
    assert _turn_count(path, session_id) == 20
    timer.join(10)
    assert not timer.is_alive() and getattr(storage, "_timer", None) is None, "timer cancelled"
    assert saved.acquire(timeout=0)
    # Now let the timer fire at once: the save happens in the background, without flush().
    storage.delay = 0.0  # type: ignore[attr-defined]
    storage.add_turn(session_id, _turn(clock, "background"))
    assert saved.acquire(timeout=30), "the timer never saved"
    assert _turn_count(path, session_id) == 21
    storage.close()
    assert len(sizes) == 2, "close() had nothing left to save"


def probe_flush_only(factory: Factory, tmp: Path, _: pytest.MonkeyPatch) -> None:
    """Mutations only mark the store dirty; flush() and close() save."""
    clock, path = FakeClock(), tmp / "sessions.json"
    storage = factory(path, clock=clock)
    session_id = storage.create_session()
    storage.add_turn(session_id, _turn(clock))
    assert not path.exists(), "a mutation saved before flush()"
    storage.flush()
    assert _turn_count(path, session_id) == 1
    storage.add_turn(session_id, _turn(clock))
    assert _turn_count(path, session_id) == 1, "a mutation saved before flush()"
    storage.close()
    assert _turn_count(path, session_id) == 2, "close() must save"


def probe_flush_always_rewrites(factory: Factory, tmp: Path, _: pytest.MonkeyPatch) -> None:
    """flush() with nothing pending replaces the file (new inode), except on a missing file."""
    clock, path = FakeClock(), tmp / "sessions.json"
    storage = factory(path, clock=clock)
    storage.flush()
    storage.close()
    assert not path.exists(), "flushing a store opened on a missing file wrote (B11)"
    storage = factory(path, clock=clock)
    storage.create_session()
    storage.flush()
    before = path.stat().st_ino  # the old file lives while the new one is created: no reuse
    storage.flush()
    assert path.stat().st_ino != before, "flush() with nothing pending did not rewrite"
    storage.close()
    reopened = factory(path, clock=clock)  # an existing file, no mutation by this instance
    before = path.stat().st_ino
    reopened.flush()
    assert path.stat().st_ino != before, "flush() of an unchanged existing file did not rewrite"
    reopened.close()


def probe_compact_escaped(factory: Factory, tmp: Path, _: pytest.MonkeyPatch) -> None:
    """The file is compact, pure ASCII, with \\/ and \\u00e9 escapes, writer-valid."""
    clock, path = FakeClock(), tmp / "sessions.json"
    storage = factory(path, clock=clock)
    session_id = storage.create_session()
    storage.add_turn(session_id, _turn(clock, "a/é"))
    storage.close()
    raw = path.read_bytes()
    assert b"a\\/\\u00e9" in raw, raw[:300]
    assert b"/" not in raw.replace(b"\\/", b""), "an unescaped '/'"
    assert b"\n" not in raw and b": " not in raw and b", " not in raw, "not compact"
    assert raw.isascii()
    _stored(path)
    reopened = factory(path, clock=clock).get_session(session_id)
    assert reopened is not None and reopened.turns[0].prompt == "a/é"


def probe_reordered_tabs(factory: Factory, tmp: Path, _: pytest.MonkeyPatch) -> None:
    """Indented with TABs only; sessions before version, turns first, timestamp first."""
    clock, path = FakeClock(), tmp / "sessions.json"
    storage = factory(path, clock=clock)
    session_id = storage.create_session()
    storage.add_turn(session_id, _turn(clock))
    storage.close()
    raw = path.read_bytes()
    assert b"\n\t" in raw and b"\n " not in raw, raw[:300]
    assert raw.index(b'"sessions"') < raw.index(b'"version"')
    assert raw.index(b'"turns"') < raw.index(b'"id"')
    assert raw.index(b'"timestamp"') < raw.index(b'"prompt"')
    _stored(path)
    reopened = factory(path, clock=clock).get_session(session_id)
    assert reopened is not None and len(reopened.turns) == 1


def probe_uuid_temp_rename(factory: Factory, tmp: Path, mp: pytest.MonkeyPatch) -> None:
    """Saves rename ``<name>.<uuid4>.tmp`` (one uuid per instance) with os.rename, never
    os.replace; the temp is created O_CREAT|O_EXCL|O_NOFOLLOW with mode 0o600."""
    clock, path = FakeClock(), tmp / "sessions.json"
    renamed: list[tuple[str, str]] = []
    created: list[tuple[str, int, int]] = []
    real_rename, real_open = os.rename, os.open

    def spy_rename(src: Any, dst: Any, **kwargs: Any) -> None:
        renamed.append((os.fsdecode(src), os.fsdecode(dst)))
        real_rename(src, dst, **kwargs)

    def no_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        raise AssertionError(f"os.replace({src}, {dst}) instead of os.rename")

    def spy_open(file: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if os.fsdecode(file).endswith(".tmp"):
            created.append((os.fsdecode(file), flags, mode))
        return real_open(file, flags, mode, **kwargs)

    mp.setattr(os, "rename", spy_rename)
    mp.setattr(os, "replace", no_replace)
    mp.setattr(os, "open", spy_open)
    first, second = factory(path, clock=clock), factory(path, clock=clock)
    for storage in (first, second, first):
        storage.create_session()
        storage.flush()
    first.close()
    second.close()
    temp = re.compile(re.escape(str(path)) + rf"\.({UUID4})\.tmp\Z")
    matches = [temp.match(src) for src, dst in renamed if dst == str(path)]
    assert len(matches) == 3 and all(matches), renamed
    uuids = [m[1] for m in matches if m]
    assert uuids[0] == uuids[2] != uuids[1], "one uuid per instance"
    required = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    assert created and all(f & required == required and m == 0o600 for _, f, m in created)


def probe_copy_aside(factory: Factory, tmp: Path, _: pytest.MonkeyPatch) -> None:
    """The backup of a corrupt file is a new file (another inode), not a link to the original."""
    clock, path = FakeClock(), tmp / "sessions.json"
    path.write_bytes(b"{corrupt")
    os.chmod(path, 0o644)
    original = path.stat().st_ino
    factory(path, clock=clock).close()
    assert not path.exists()
    (backup,) = tmp.glob("sessions.json.*.bak")
    assert backup.read_bytes() == b"{corrupt"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert backup.stat().st_ino != original, "the backup is the original inode (a link)"


#: The probe of each freedom, and a conforming backend without that freedom.
PROBES: dict[str, tuple[Probe, Factory]] = {
    "write-through": (probe_write_through, FlushOnlyStorage),
    "write-behind-timer": (probe_write_behind_timer, IndependentFileStorage),
    "flush-only": (probe_flush_only, IndependentFileStorage),
    "flush-always-rewrites": (probe_flush_always_rewrites, IndependentFileStorage),
    "compact-escaped": (probe_compact_escaped, IndependentFileStorage),
    "reordered-tabs": (probe_reordered_tabs, IndependentFileStorage),
    "uuid-temp-rename": (probe_uuid_temp_rename, IndependentFileStorage),
    "copy-aside": (probe_copy_aside, IndependentFileStorage),
}


def test_every_freedom_has_a_probe() -> None:
    assert set(PROBES) == set(MUST_ACCEPT)
    assert {
        WriteThroughStorage,
        WriteBehindTimerStorage,
        FlushOnlyStorage,
        FlushAlwaysRewritesStorage,
        CompactEscapedStorage,
        ReorderedTabsStorage,
        UuidTempRenameStorage,
        CopyAsideStorage,
    } == set(MUST_ACCEPT.values())


@pytest.mark.parametrize("name", list(PROBES))
def test_uses_its_freedom(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe, _ = PROBES[name]
    probe(MUST_ACCEPT[name], tmp_path, monkeypatch)


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_fails_without_the_freedom(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe, control = PROBES[name]
    with pytest.raises(AssertionError):
        probe(control, tmp_path, monkeypatch)
