"""``sessionspec check FILE...``: what a v1 reader would do with real files, writing nothing.

Every vector of the manifest must reach its stated outcome through the real CLI; files written
by the reference backend and by upstream's serialisation must be clean loads; a check must
leave its directory exactly as it was, and must not hang on a FIFO.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from sessionspec.conformance.cli import main
from sessionspec.reference import FileSessionStorage
from sessionspec.reference.inspection import Outcome, inspect_bytes
from sessionspec.reference.sessionfile import encode
from sessionspec.spec import ConversationTurn, SessionData, format_timestamp

VECTORS = resources.files("sessionspec.spec.vectors")
MANIFEST: dict[str, Any] = json.loads(VECTORS.joinpath("manifest.json").read_bytes())
ALL: list[dict[str, Any]] = MANIFEST["vectors"]
NOW = datetime(2026, 1, 2, tzinfo=UTC)
EXIT = {"clean-load": 0, "lossy-load": 1, "move-aside": 1, "cannot-read": 2, "too-large": 2}


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    """Run ``sessionspec check --json ARGS`` in this process; exit code and parsed output."""
    code = main(["check", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def snapshot(directory: Path) -> dict[str, tuple[int, int, int, bytes | None]]:
    """``directory`` and every entry under it: mode, size, mtime (ns), bytes of regular files.

    The directory's own mtime changes with any entry created, renamed or removed in it.
    """
    info = directory.lstat()
    entries = {".": (info.st_mode, info.st_size, info.st_mtime_ns, None)}
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            path = Path(root, name)
            info = path.lstat()
            data = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
            key = str(path.relative_to(directory))
            entries[key] = (info.st_mode, info.st_size, info.st_mtime_ns, data)
    return entries


def session(session_id: str, at: datetime, turns: int = 1) -> SessionData:
    return SessionData(
        session_id, at, at, tuple(ConversationTurn(f"p{i}", "r", at) for i in range(turns))
    )


# -- every vector ------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", ALL, ids=[v["name"] for v in ALL])
def test_check_reaches_the_vector_outcome(
    vector: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expect = vector["expect"]
    if expect["result"] == "raise":  # pragma: no cover - bytes alone cannot fail to read
        pytest.skip("a 'raise' vector needs a file system condition, not bytes")
    path = tmp_path / "sessions.json"
    path.write_bytes(VECTORS.joinpath(vector["file"]).read_bytes())
    before = snapshot(tmp_path)

    code, [result] = check(capsys, "--now", vector.get("now", MANIFEST["now"]), str(path))

    assert snapshot(tmp_path) == before  # nothing moved aside or backed up for real
    assert result["path"] == str(path)
    if expect["result"] == "move-aside":
        assert (code, result["outcome"]) == (1, "move-aside")
        assert result["behaviour"] == vector["behaviour"]  # B13 corrupt, B14 version
        assert result["move_aside_reason"]
        assert result["sessions_loaded"] is None and result["backup_expected"] is False
        return
    assert result["outcome"] == ("lossy-load" if expect["lossy"] else "clean-load")
    assert code == (1 if expect["lossy"] else 0)
    assert result["loaded_ids"] == [s["id"] for s in expect["loads"]]
    assert result["sessions_loaded"] == len(expect["loads"])
    assert [s["location"] for s in result["skipped"]] == [s["location"] for s in expect["skips"]]
    assert result["backup_expected"] is expect["lossy"]
    # A lossy verdict is always explained, and only a lossy one.
    assert bool(result["skipped"] or result["lossy_reasons"]) is expect["lossy"]
    assert all("not itemised" not in r["reason"] for r in result["lossy_reasons"])


def test_vector_outcomes_in_text_fit_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for vector in ALL:
        path = tmp_path / vector["name"] / "sessions.json"
        path.parent.mkdir()
        path.write_bytes(VECTORS.joinpath(vector["file"]).read_bytes())
        paths.append(str(path))
    code = main(["check", "--now", MANIFEST["now"], *paths])
    out = capsys.readouterr().out
    assert code == 1  # lossy loads and move-asides, nothing unreadable
    lines = out.splitlines()
    too_wide = [line for line in lines if len(line) > 80 and line not in paths]
    assert too_wide == []
    assert lines[-1].startswith(f"{len(ALL)} files; clean load: ")
    for label in ("lossy load: ", "move aside (B13): ", "move aside (B14): ", "skipped sessions["):
        assert f"  {label}" in out


# -- files written by real writers -------------------------------------------------------------


def test_reference_written_file_is_a_clean_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store" / "sessions.json"
    with FileSessionStorage(path, clock=lambda: NOW) as storage:
        ids = [storage.create_session() for _ in range(3)]
        storage.add_turn(ids[0], ConversationTurn("hi \ud800", "hello\n", NOW))
        storage.set_codex_conversation_id(ids[1], "")
        listed = [s.id for s in storage.list_sessions()]

    code, [result] = check(capsys, "--now", format_timestamp(NOW), str(path))

    assert (code, result["outcome"]) == (0, "clean-load")
    assert result["loaded_ids"] == listed and sorted(listed) == sorted(ids)
    assert result["skipped"] == result["lossy_reasons"] == []
    assert result["expired"] == 0 and result["backup_expected"] is False


def test_upstream_written_file_is_a_clean_load(
    upstream_file: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, facts = upstream_file
    code, [result] = check(capsys, str(path))  # the current time: the file was just written
    assert (code, result["outcome"]) == (0, "clean-load")
    assert result["loaded_ids"] == facts["ids"]


# -- what a v1 reader loads, in detail -----------------------------------------------------------


def test_expiry_follows_now_and_is_not_lossy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(encode([session("a", NOW), session("b", NOW - timedelta(milliseconds=1))]))
    at_24h = format_timestamp(NOW + timedelta(hours=24))
    code, [result] = check(capsys, "--now", at_24h, str(path))
    assert (code, result["loaded_ids"], result["expired"]) == (0, ["a"], 1)
    code, [result] = check(capsys, "--now", "2026-01-03T00:00:00.0001+00:00", str(path))
    assert (code, result["loaded_ids"], result["expired"]) == (0, ["a"], 1)  # truncated to ms
    code, [result] = check(capsys, "--now", "2026-01-01T19:00:00-05:00", str(path))
    assert (code, result["loaded_ids"], result["expired"]) == (0, ["a", "b"], 0)
    assert main(["check", "--now", at_24h, str(path)]) == 0
    assert "1 live session; 1 expired, dropped at the next save (B17)" in capsys.readouterr().out


def test_the_cap_evicts_the_last_in_list_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # File order is list order; two sessions tie with the 100th: file position decides.
    sessions = [session(f"s{i:03d}", NOW - timedelta(seconds=min(i, 99))) for i in range(102)]
    path = tmp_path / "sessions.json"
    path.write_bytes(encode(sessions))
    code, [result] = check(capsys, "--now", format_timestamp(NOW), str(path))
    assert (code, result["outcome"], result["backup_expected"]) == (1, "lossy-load", True)
    assert result["loaded_ids"] == [s.id for s in sessions[:100]]
    assert result["skipped"] == []
    assert [r["location"] for r in result["lossy_reasons"]] == ["sessions[100]", "sessions[101]"]
    assert all("over the cap of 100 (B18)" in r["reason"] for r in result["lossy_reasons"])


def test_lossy_reasons_are_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """{"version": 1, "extra": 1, "sessions": [
      {"id": "a", "createdAt": "2026-01-01T12:00:00.0001Z",
       "lastAccessedAt": "2026-01-01T12:00:00.000Z", "title": "t",
       "turns": [{"prompt": "p", "response": "r", "timestamp": "2026-01-01T12:00:00Z",
                  "model": "m", "model": "n"}, 7]},
      {"id": "b", "createdAt": "2026-01-01T12:00:00Z", "lastAccessedAt": "x", "turns": [],
       "junk": 1}
    ]}"""
    path = tmp_path / "sessions.json"
    path.write_text(text, encoding="utf-8")
    code, [result] = check(capsys, "--now", format_timestamp(NOW), str(path))
    assert (code, result["outcome"], result["loaded_ids"]) == (1, "lossy-load", ["a"])
    assert [s["location"] for s in result["skipped"]] == ["sessions[0].turns[1]", "sessions[1]"]
    reasons = [(r["location"], r["reason"]) for r in result["lossy_reasons"]]
    assert reasons == [
        ("sessions[0].turns[0]", "member name 'model' repeats; only its last value is read"),
        ("top level", "unknown member 'extra' is ignored"),
        ("sessions[0]", "unknown member 'title' is ignored"),
        ("sessions[0].createdAt", "'2026-01-01T12:00:00.0001Z' has digits below the millisecond"),
        ("sessions[0].turns[0]", "unknown member 'model' is ignored"),
    ]
    assert main(["check", "--now", format_timestamp(NOW), str(path)]) == 1
    out = capsys.readouterr().out
    assert "  skipped sessions[0].turns[1]: not an object\n" in out
    assert "  lost at top level: unknown member 'extra' is ignored\n" in out
    assert "back up the original bytes before its first save (B15)" in out


def test_inspect_bytes_is_the_pure_core() -> None:
    result = inspect_bytes(b'{"version": 2, "sessions": []}', now=NOW, path="x")
    assert (result.outcome, result.behaviour) == (Outcome.MOVE_ASIDE, "B14")
    result = inspect_bytes(b"\xef\xbb\xbf{}", now=NOW)
    assert (result.outcome, result.behaviour) == (Outcome.MOVE_ASIDE, "B13")
    assert "byte-order mark" in (result.move_aside_reason or "")


# -- what cannot be read -------------------------------------------------------------------------


def test_unreadable_paths_exit_2_with_the_oserror(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "plain").write_text("{}", encoding="utf-8")
    cases = {
        "missing.json": ("B11", "No such file"),
        "dir.json": ("B12", "Is a directory"),
        "plain/sessions.json": ("B12", "Not a directory"),
    }
    before = snapshot(tmp_path)
    code, results = check(capsys, *(str(tmp_path / name) for name in cases))
    assert code == 2
    for result, (behaviour, message) in zip(results, cases.values(), strict=True):
        assert (result["outcome"], result["behaviour"]) == ("cannot-read", behaviour)
        assert message in result["error"]
        assert result["sessions_loaded"] is None
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "missing.json").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_not_read_and_exits_2_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "sessions.json"
    os.mkfifo(fifo)  # no writer: a plain open() for reading would block forever
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "check", "--json", str(fifo)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    [result] = json.loads(done.stdout)
    assert result["outcome"] == "cannot-read" and "FIFO" in result["error"]
    assert time.monotonic() - started < 30
    code, [result] = check(capsys, str(fifo))  # in process too: O_NONBLOCK, never blocks
    assert (code, result["outcome"]) == (2, "cannot-read")


def test_too_large_is_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(encode([session("a", NOW)]))
    size = path.stat().st_size
    now = format_timestamp(NOW)
    code, [result] = check(capsys, "--max-bytes", str(size - 1), "--now", now, str(path))
    assert (code, result["outcome"]) == (2, "too-large")
    assert str(size - 1) in result["error"]
    code, [result] = check(capsys, "--max-bytes", str(size), "--now", now, str(path))
    assert (code, result["outcome"]) == (0, "clean-load")


def test_exit_code_is_the_worst_of_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean, lossy, corrupt = (tmp_path / n for n in ("clean.json", "lossy.json", "corrupt.json"))
    clean.write_bytes(encode([session("a", NOW)]))
    lossy.write_text('{"version": 1, "sessions": [1]}', encoding="utf-8")
    corrupt.write_bytes(b"{")
    now = ["--now", format_timestamp(NOW)]
    assert check(capsys, *now, str(clean), str(clean))[0] == 0
    assert check(capsys, *now, str(clean), str(lossy))[0] == 1
    code, results = check(capsys, *now, str(corrupt), str(tmp_path / "missing"), str(clean))
    assert code == 2
    assert [r["outcome"] for r in results] == ["move-aside", "cannot-read", "clean-load"]


@pytest.mark.parametrize(
    "args",
    [[], ["--now", "2026-01-02"], ["--now", "yesterday"], ["--max-bytes", "0"]],
    ids=["no-file", "date-only", "not-a-time", "zero-bytes"],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", *args, *(["x.json"] if args else [])])
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


# -- read-only, as a user runs it ----------------------------------------------------------------


def test_check_in_a_subprocess_changes_nothing(tmp_path: Path) -> None:
    old = time.time() - 7200
    files = {
        "sessions.json": encode([session("a", NOW)]),
        "lossy.json": b'{"version": 1, "sessions": [{"id": "bad id"}], "x": 1}',
        "corrupt.json": b"\xef\xbb\xbf{}",
        "future.json": b'{"version": 2, "sessions": []}',
        "sessions.json.1234-abc.tmp": b"a stale temp file a reader would remove (B16)",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        os.chmod(tmp_path / name, 0o644)
        os.utime(tmp_path / name, (old, old))
    (tmp_path / "dir.json").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.json")
    before = snapshot(tmp_path)
    names = sorted(set(os.listdir(tmp_path)) - {"sessions.json.1234-abc.tmp"})

    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "check", "--now", "2026-01-02T00:00:00Z", *names],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 2, done.stderr  # the directory and the FIFO cannot be read
    assert snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == sorted(set(before) - {"."})
    out = done.stdout
    for expected in (
        "corrupt.json\n  move aside (B13): the file starts with a byte-order mark",
        "future.json\n  move aside (B14): unsupported version 2",
        "lossy.json\n  lossy load: 0 live sessions; none expired",
        "sessions.json\n  clean load: 1 live session; none expired",
        "dir.json\n  cannot read (B12): [Errno 21] Is a directory",
    ):
        assert expected in out
    assert all(len(line) <= 80 for line in out.splitlines())
