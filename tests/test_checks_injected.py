"""How the injected-EIO checks of B22 read strace logs (sessionspec/conformance/
checks_injected.py): lines as strace 6.1 writes them with ``-f -y``, the calls of the real
runs being the fault gate's (tests/test_fault_gate.py); and one real run over stdio."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from sessionspec.conformance.checks_injected import (
    FSYNC,
    calibrate,
    find_sites,
    parse_calls,
    run_sites,
)
from sessionspec.conformance.clock import EPOCH
from sessionspec.conformance.stdio import StdioFactory

STORE = Path("/tmp/k/store/sessions.json")
TEMP = "/tmp/k/store/sessions.json.shared-7-ab.tmp"


def _save(pid: int, size: int) -> list[str]:
    return [
        f'{pid} openat(AT_FDCWD</tmp>, "{TEMP}", O_WRONLY|O_CREAT|O_EXCL, 0600) = 4<{TEMP}>',
        f'{pid} write(4<{TEMP}>, "{{"..., {size}) = {size}',
        f"{pid} fsync(4<{TEMP}>) = 0",
        f'{pid} rename("{TEMP}", "{STORE}") = 0',
        f'{pid} openat(AT_FDCWD</tmp>, "/tmp/k/store", O_RDONLY|O_CLOEXEC) = 4</tmp/k/store>',
        f"{pid} fsync(4</tmp/k/store>) = 0",
    ]


def _mark(name: str) -> str:
    return f'10 openat(AT_FDCWD</tmp>, "/nonexistent-sessionspec-marker/{name}", O_RDONLY) = -1'


def _log(main_writes: int = 1) -> str:
    lines = [
        _mark("save-1"),
        *_save(11, 200),
        _mark("save-2"),
        "11 fsync(3</tmp/k> <unfinished ...>",
        '10 openat(AT_FDCWD</tmp>, "/tmp/k/store/sessions.json", O_RDONLY) = 5</tmp/k/x>',
        "11 <... fsync resumed>) = 0",
        *_save(11, 347),
        _mark("save-3"),
        *_save(11, 347),
        _mark("saved"),
        *['10 write(3</tmp/k/report>, "{"..., 9) = 9' for _ in range(main_writes)],
    ]
    return "\n".join(lines)


def test_unfinished_calls_are_joined_with_their_result() -> None:
    calls = parse_calls(_log())
    joined = [c for c in calls if c.name == "fsync" and c.fd_path == "/tmp/k"]
    assert len(joined) == 1
    assert joined[0].result == "0" and joined[0].ok


def test_a_renameat_with_directory_descriptors_names_absolute_paths() -> None:
    (call,) = parse_calls(
        '5 renameat2(3</tmp/k/store>, "x.tmp", 3</tmp/k/store>, "sessions.json", 0) = -1 EIO'
        " (Input/output error) (INJECTED)"
    )
    assert call.renamed() == ("/tmp/k/store/x.tmp", "/tmp/k/store/sessions.json")
    assert call.injected and not call.ok


def test_sites_of_the_second_save_and_their_ordinals_per_thread() -> None:
    calls = parse_calls(_log())
    found, missing = find_sites(calls, STORE)
    assert not missing
    assert {key: (calls[i].name, calls[i].fd_path) for key, i in found.items()} == {
        "write": ("write", TEMP),
        "fsync": ("fsync", TEMP),
        "rename": ("rename", ""),
        "directory-fsync": ("fsync", "/tmp/k/store"),
    }
    assert calls[found["rename"]].renamed() == (TEMP, str(STORE))
    assert found["write"] > calls.index(next(c for c in calls if "save-2" in c.args))
    targets = calibrate({}, _log(), STORE).targets
    # Thread 11: the second save's write is its 2nd write, its temp fsync its 4th fsync (one
    # directory fsync came between), its directory fsync its 5th.
    assert {key: (t.syscall, t.ordinal) for key, t in targets.items()} == {
        "write": ("write", 2),
        "fsync": ("fsync", 4),
        "rename": ("rename", 2),
        "directory-fsync": ("fsync", 5),
    }


def test_a_target_another_thread_would_also_hit_is_not_injected() -> None:
    calibration = calibrate({}, _log(main_writes=2), STORE)
    assert "write" not in calibration.targets
    assert "when=2" in calibration.ambiguous["write"]


def test_a_save_without_its_rename_needs_b19() -> None:
    log = "\n".join(line for line in _log().splitlines() if "rename(" not in line)
    _, missing = find_sites(parse_calls(log), STORE)
    assert {failed.behaviour_id for failed in missing.values()} == {"B19"}


def _request(pid: int, number: int, name: str) -> str:
    return (
        f'{pid} read(0<pipe:[7]>, "{{\\"id\\": {number}, \\"op\\": \\"get_session\\",'
        f' \\"args\\": {{\\"instance\\": \\"s1\\", \\"sessionId\\":'
        f' \\"sessionspec-marker-{name}\\"}}}}\\n", 8192) = 120'
    )


def test_over_stdio_the_marks_are_requests_the_adapter_reads() -> None:
    # The kit's process is not traced, only the adapter: no openat marker, a request instead.
    log = _log()
    for number, name in enumerate(("save-1", "save-2", "save-3", "saved")):
        log = log.replace(_mark(name), _request(10, number + 3, name))
    assert "nonexistent-sessionspec-marker" not in log
    targets = calibrate({}, log, STORE).targets
    assert {key: (t.syscall, t.ordinal) for key, t in targets.items()} == {
        "write": ("write", 2),
        "fsync": ("fsync", 4),
        "rename": ("rename", 2),
        "directory-fsync": ("fsync", 5),
    }


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_over_stdio_a_swallowed_fsync_error_is_caught(tmp_path: Path) -> None:
    """One real site over stdio (the adapter alone under strace): a backend that ignores a
    failed fsync of its temp file fails B22."""
    command = shlex.join(
        [sys.executable, "-m", "sessionspec.conformance.stdio_server",
         "tests.faults.injected:FsyncErrorSwallowed"]
    )  # fmt: skip
    factory = StdioFactory(command)

    def open_store(path: Path) -> Any:
        return factory(path, clock=lambda: EPOCH)

    try:
        _, results = run_sites(
            "stdio:" + command, 1_700_000_000_000, tmp_path, open_store, sites=(FSYNC,)
        )
    finally:
        factory.close()
    outcomes = results["fsync"]
    assert isinstance(outcomes, list), outcomes
    (outcome,) = outcomes
    assert not outcome.raised
    assert any("returned normally" in problem for problem in outcome.problems)
