"""The reference at the ends of a process (B33) and on hostile paths (B32), beyond the kit:
real child processes, real signals, real fork() and multiprocessing workers, /dev/zero."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from reference_helpers import SIGTERM_CHILD

from sessionspec.reference import FileSessionStorage
from sessionspec.reference.file import FileTooLargeError, NotARegularFileError
from sessionspec.spec import ConversationTurn

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _turn(prompt: str) -> ConversationTurn:
    return ConversationTurn(prompt, "r", datetime.now(UTC))


def _prompts(path: Path) -> list[str]:
    with FileSessionStorage(path) as storage:
        return sorted(t.prompt for s in storage.list_sessions() for t in s.turns)


def _run_child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- B32: what the kit cannot do in its own process -------------------------------------------

_OPEN_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # a reader of /dev/zero dies here
from sessionspec.reference import FileSessionStorage
try:
    FileSessionStorage(sys.argv[1])
except OSError as exc:
    print(type(exc).__name__, exc.errno)
"""


def test_symlink_to_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    path.symlink_to("/dev/zero")
    child = _run_child(_OPEN_LIMITED, str(path))
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.split() == ["NotARegularFileError", str(errno.EINVAL)]
    assert os.readlink(path) == "/dev/zero"


def test_a_file_over_the_bound_is_refused_and_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    content = b'{"version": 1, "sessions": []}' + b" " * 2000
    path.write_bytes(content)
    with pytest.raises(FileTooLargeError) as raised:
        FileSessionStorage(path, max_file_bytes=1000)
    assert raised.value.errno == errno.EFBIG
    assert "1000-byte limit" in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions.json"]
    assert path.read_bytes() == content
    FileSessionStorage(path, max_file_bytes=len(content)).close()  # at the bound: loads


def test_a_file_at_the_default_bound_plus_one_is_refused(tmp_path: Path) -> None:
    from sessionspec.reference.file import MAX_FILE_BYTES

    path = tmp_path / "sessions.json"
    with open(path, "wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk, and no read is attempted
    with pytest.raises(FileTooLargeError):
        FileSessionStorage(path)
    assert path.stat().st_size == MAX_FILE_BYTES + 1


def test_a_fifo_as_the_lock_file_fails_the_save_not_hangs(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    os.mkfifo(tmp_path / "sessions.json.lock")
    storage = FileSessionStorage(path)
    storage.create_session()
    with pytest.raises(OSError, match="not a regular file"):
        storage.flush()
    assert not path.exists()
    os.unlink(tmp_path / "sessions.json.lock")
    storage.close()  # the fault cleared: the retry saves (B22)
    assert path.exists()


def test_refused_paths_name_what_is_there(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotARegularFileError, match="a FIFO"):
        FileSessionStorage(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError) as raised:
        FileSessionStorage(tmp_path / "dir")
    assert isinstance(raised.value, NotARegularFileError)


# -- B33: exits, signals, fork ----------------------------------------------------------------


def test_sigterm_right_after_a_mutation_saves_it_with_the_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_CHILD, str(path), "opt-in"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "mutated"
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGTERM  # still ends by the signal
    assert _prompts(path) == ["last words"]


def test_the_opt_in_calls_a_handler_installed_before_it(tmp_path: Path) -> None:
    code = """
    import signal, sys
    from sessionspec.reference import FileSessionStorage
    from sessionspec.reference.exits import flush_on_signals
    def before(signum, frame):
        print("before ran", flush=True)
        sys.exit(7)
    signal.signal(signal.SIGHUP, before)
    flush_on_signals()
    storage = FileSessionStorage(sys.argv[1])
    storage.create_session()
    signal.raise_signal(signal.SIGHUP)
    """
    child = _run_child(code, str(tmp_path / "sessions.json"))
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out) == (7, "before ran\n"), err
    with FileSessionStorage(tmp_path / "sessions.json") as storage:
        assert len(storage.list_sessions()) == 1


def _worker_opens_and_returns(path: str) -> None:
    storage = FileSessionStorage(path)
    storage.add_turn(storage.create_session(), _turn("from a worker"))
    # returns without close(): multiprocessing ends the process with os._exit


def _worker_uses_inherited(storage: FileSessionStorage, session_id: str) -> None:
    storage.add_turn(session_id, _turn("from the child"))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_multiprocessing_worker_that_returns_without_close_saves(
    tmp_path: Path, method: str
) -> None:
    path = tmp_path / "sessions.json"
    worker = multiprocessing.get_context(method).Process(
        target=_worker_opens_and_returns, args=(str(path),)
    )
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    assert _prompts(path) == ["from a worker"]


def test_a_forked_worker_keeps_using_an_inherited_instance(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    storage = FileSessionStorage(path)
    session_id = storage.create_session()
    storage.add_turn(session_id, _turn("from the parent"))
    storage.flush()  # the writer thread runs: the child does not inherit it
    worker = multiprocessing.get_context("fork").Process(
        target=_worker_uses_inherited, args=(storage, session_id)
    )
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    assert _prompts(path) == ["from the child", "from the parent"]
    storage.add_turn(session_id, _turn("parent again"))
    storage.close()  # the shared level merges the child's save in (SPEC.md §8)
    assert _prompts(path) == ["from the child", "from the parent", "parent again"]


def test_after_fork_the_child_has_its_own_temp_name_and_lock(tmp_path: Path) -> None:
    storage = FileSessionStorage(tmp_path / "sessions.json")
    storage.create_session()
    storage.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, json.dumps([str(storage._temp_path)]).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        [child_temp] = json.load(pipe)
    assert child_temp != str(storage._temp_path)
    assert f".shared-{pid}-" in child_temp
    storage.close()


# -- B32: hostile things at the backup, temp and lock names -----------------------------------

CORRUPT = b'{"version": 1, "sessions": [ cut'


def _hostile(kind: str, where: Path, victim: Path) -> None:
    if kind == "fifo":
        os.mkfifo(where)
    elif kind == "symlink":
        where.symlink_to(victim)
    elif kind == "dangling":
        where.symlink_to(where.parent / "nowhere")
    else:
        where.mkdir()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "dangling", "directory"])
def test_a_taken_backup_name_is_skipped_and_left_alone(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's")
    path = tmp_path / "sessions.json"
    path.write_bytes(CORRUPT)
    first = tmp_path / f"sessions.json.{int(NOW.timestamp() * 1000)}.bak"
    _hostile(kind, first, victim)
    before = os.lstat(first)
    with FileSessionStorage(path, clock=lambda: NOW) as storage:
        assert storage.list_sessions() == []
    assert os.lstat(first) == before
    assert (tmp_path / f"sessions.json.{int(NOW.timestamp() * 1000)}.1.bak").read_bytes() == CORRUPT
    assert victim.read_bytes() == b"someone else's"


@pytest.mark.parametrize("kind", ["fifo", "symlink", "dangling", "directory"])
def test_a_taken_temp_name_is_left_alone_and_another_taken(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's")
    storage = FileSessionStorage(tmp_path / "sessions.json")
    taken = storage._temp_path
    _hostile(kind, taken, victim)
    before = os.lstat(taken)
    storage.add_turn(storage.create_session(), _turn("saved anyway"))
    storage.close()
    assert os.lstat(taken) == before
    assert victim.read_bytes() == b"someone else's"
    assert _prompts(tmp_path / "sessions.json") == ["saved anyway"]


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_a_hostile_lock_file_fails_the_save_with_its_name(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's")
    lock = tmp_path / "sessions.json.lock"
    _hostile(kind, lock, victim)
    storage = FileSessionStorage(tmp_path / "sessions.json")
    storage.create_session()
    with pytest.raises(OSError) as raised:
        storage.flush()
    assert raised.value.filename == str(lock)
    assert victim.read_bytes() == b"someone else's"
    assert not (tmp_path / "sessions.json").exists()
    lock.rmdir() if kind == "directory" else lock.unlink()
    storage.close()  # the fault cleared: the retry saves (B22)
    assert (tmp_path / "sessions.json").exists()
