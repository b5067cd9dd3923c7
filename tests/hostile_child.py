"""The child side of ``hostile_run``: open one file, mutate, flush, close, report.

Kept light (the backend and the standard library only): every child is forked from a
multiprocessing forkserver that has imported this module and the backend once.
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import resource
import sys
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from sessionspec.spec import ConversationTurn


def peak_kib() -> int:
    """This process's peak resident set size (VmHWM) in KiB, or ru_maxrss without /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def open_and_save(path: str, factory_name: str, now: datetime) -> dict[str, Any]:
    """Open, create a session, add a turn, flush, close. Everything but an OSError from the
    constructor is a crash, reported with its phase."""
    phase = "import"
    try:
        module, _, attr = factory_name.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        phase = "open"
        try:
            storage = factory(path, clock=lambda: now)
        except OSError as exc:
            return {"outcome": "oserror", "errno": exc.errno, "message": str(exc)[:300]}
        # Gone right after opening: moved aside. The constructor writes nothing else.
        report: dict[str, Any] = {
            "kept": os.path.exists(path),
            "loaded": len(storage.list_sessions()),
        }
        phase = "save"
        session = storage.create_session()
        storage.add_turn(session, ConversationTurn("hostile", "corpus", now))
        storage.flush()
        storage.close()
        return {**report, "outcome": "opened", "session": session}
    except BaseException as exc:
        return {"outcome": "crash", "phase": phase, "error": f"{type(exc).__name__}: {exc}"[:300]}


def child(
    path: str,
    factory: str,
    now: datetime,
    limit: int,
    timeout: float,
    log: str,
    conn: Connection,
) -> None:
    """The child's whole life: limit itself, send one report, exit 3 after a crash."""
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The backend's warnings (one per skipped record) go to a log, not the parent's terminal.
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    # Every thread's stack in the log shortly before the parent kills a hang.
    faulthandler.dump_traceback_later(max(0.5, timeout - 0.5), file=sys.stderr)
    report = open_and_save(path, factory, now)
    report["maxrss_kib"] = peak_kib()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    conn.send(report)
    conn.close()
    if report["outcome"] == "crash":
        sys.exit(3)
