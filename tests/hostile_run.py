"""Open every file of the hostile corpus in a child process and judge what it left behind.

For each ``CorpusFile``: a fresh directory, the file copied to ``<dir>/sessions.json``, then a
child process (forked from a multiprocessing forkserver, address space limited by
``RLIMIT_AS``, killed after a wall timeout) opens ``FileSessionStorage`` on it with the clock
at ``hostile_corpus.NOW``, creates a session, adds a turn, flushes and closes, and sends a
report. The parent then classifies:

- ``loaded``: the path was still there after opening and no backup exists;
- ``loaded+backup``: the path was still there and a ``.bak`` exists (a lossy load, B15);
- ``moved-aside``: the path was gone after opening (B13, B14);
- ``oserror``: the constructor raised OSError (B12, or a backup it could not write);
- ``crash``: any other exception, a non-zero exit, or no report;
- ``hang``: the wall timeout passed.

and checks that nothing was lost (``recoverable``): a file in the directory has the original
sha256, or the load was clean and the saved file holds every session the original did (a
clean load needs no backup, so its bytes are rightly overwritten); and that the file at the
path validates against the writer profile and holds the new session (B10).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Final

import hostile_child
from hostile_corpus import (
    CRASH,
    HANG,
    LOADED,
    LOADED_BACKUP,
    MOVED_ASIDE,
    NOW,
    OSERROR,
    OUTCOMES,
    CorpusFile,
    oracle_outcome,
)

from sessionspec.conformance.oracle_reader import Outcome, expected_load
from sessionspec.spec import MAX_SESSIONS, writer_validator

NAME: Final = "sessions.json"
ADDRESS_SPACE: Final = 2 * 1024**3
TIMEOUT: Final = {"small": 10.0, "full": 30.0}
#: The backend under test, as ``module:attr`` (a module of tests/ can be named too).
REFERENCE: Final = "sessionspec.reference:FileSessionStorage"
#: Outcomes after which the child saved nothing.
UNSAVED: Final = (OSERROR, CRASH, HANG)

#: Children are forked from a server that has imported the backend once: a fresh interpreter
#: per file would spend most of the run importing. Each child still re-runs the main module
#: (multiprocessing's main fixup; the "__main__" preload is ignored on 3.11), so the modules
#: a main script of ours imports are preloaded too, which makes that re-run cheap.
_CONTEXT: Final = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["sessionspec.reference", "hostile_run", "hostile_forkserver"])
_SERVER_LOCK: Final = threading.Lock()
#: Held to start a child and to read its exit code. Process.start() polls every other child
#: (multiprocessing's _cleanup), and a forkserver child's exit code is read once from a pipe:
#: two threads reading it at once leave one with EOF, which multiprocessing reports as 255.
_PROCESS_LOCK: Final = threading.Lock()


def _start_server() -> None:
    """Start the forkserver with tests/ on its path: on 3.11 it does not take the parent's
    sys.path, only PYTHONPATH, and without it the preloads fail silently."""
    tests = str(Path(__file__).resolve().parent)
    with _SERVER_LOCK:
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([tests, *filter(None, [saved])])
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved


def _in_child(
    path: Path, factory: str, timeout: float
) -> tuple[dict[str, Any] | None, int | None, str]:
    """Run ``hostile_child.child`` in a new process: its report ({} when it sent none,
    None when it did not exit in time), its exit code and the end of its stderr."""
    log = path.parent.with_name(path.parent.name + ".log")
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(
        target=hostile_child.child,
        args=(str(path), factory, NOW, ADDRESS_SPACE, timeout, str(log), sender),
    )
    _start_server()
    deadline = time.monotonic() + timeout
    with _PROCESS_LOCK:
        process.start()
    sender.close()
    report: dict[str, Any] | None = {}
    try:
        if receiver.poll(timeout):
            report = receiver.recv()
    except EOFError:
        pass  # it died without a report: a crash
    # A report and then no exit (a thread that never ends) is a hang too.
    wait([process.sentinel], max(0.0, deadline - time.monotonic()))
    with _PROCESS_LOCK:
        exitcode = process.exitcode
    if exitcode is None:
        process.kill()
        wait([process.sentinel])
        with _PROCESS_LOCK:
            exitcode = process.exitcode
        report = None
    receiver.close()
    stderr = log.read_text(errors="replace").strip()[-1500:] if log.exists() else ""
    log.unlink(missing_ok=True)
    return report, exitcode, stderr


@dataclass(frozen=True, slots=True)
class Result:
    """What opening one corpus file came to."""

    file: CorpusFile
    outcome: str
    #: The original bytes are in the directory, or the load was clean and lost nothing.
    recoverable: bool
    #: The file at the path is writer-valid and holds the new session; None when the child
    #: saved nothing (oserror, crash, hang).
    writer_valid: bool | None
    #: Live sessions right after opening.
    loaded: int | None
    detail: str
    #: The child's peak resident set size (VmHWM), in KiB.
    maxrss_kib: int | None
    #: The directory, kept for a reproduction when something went wrong; else None.
    kept: Path | None

    @property
    def as_expected(self) -> bool:
        return not self.file.expect or self.outcome in self.file.expect

    @property
    def bad(self) -> bool:
        return (
            self.outcome in (CRASH, HANG)
            or not self.recoverable
            or self.writer_valid is False
            or not self.as_expected
        )


def dump(results: Iterable[Result]) -> str:
    """Results as JSON text (``load`` reads them back): a run shared between processes."""
    return json.dumps(
        [
            {
                **dataclasses.asdict(r),
                "file": {
                    **dataclasses.asdict(r.file),
                    "path": str(r.file.path),
                    "expect": sorted(r.file.expect),
                },
                "kept": None if r.kept is None else str(r.kept),
            }
            for r in results
        ]
    )


def load(text: str) -> list[Result]:
    results = []
    for item in json.loads(text):
        file = CorpusFile(
            **{
                **item["file"],
                "path": Path(item["file"]["path"]),
                "expect": frozenset(item["file"]["expect"]),
            }
        )
        kept = None if item["kept"] is None else Path(item["kept"])
        results.append(Result(**{**item, "file": file, "kept": kept}))
    return results


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sessions(raw: bytes) -> list[dict[str, Any]]:
    """The live sessions the oracle reads from ``raw`` at NOW (empty when not a load)."""
    try:
        expected = expected_load(raw, NOW)
    except RecursionError:
        return []
    if expected.outcome is not Outcome.LOAD:
        return []
    loads: list[dict[str, Any]] = expected.to_manifest()["loads"]
    return loads


def _writer_valid(path: Path, session: str) -> bool:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    if not writer_validator().is_valid(document):
        return False
    return session in [s["id"] for s in document["sessions"]]


def _clean_load_kept_everything(original: bytes, saved: Path) -> bool:
    """The original loads clean, and every session of it is in the saved file unchanged, but
    for those the new session pushed over the cap (B18)."""
    if oracle_outcome(original) != {LOADED}:
        return False  # skipped records or unknown members: only a backup keeps them
    before = _sessions(original)
    after = {json.dumps(s, sort_keys=True) for s in _sessions(saved.read_bytes())}
    missing = [s for s in before if json.dumps(s, sort_keys=True) not in after]
    return len(missing) <= max(0, len(before) + 1 - MAX_SESSIONS)


def run_one(file: CorpusFile, workdir: Path, timeout: float, factory: str = REFERENCE) -> Result:
    """Open one corpus file in a child process in ``workdir/<name>`` and judge the result."""
    directory = workdir / file.name
    directory.mkdir()
    path = directory / NAME
    shutil.copyfile(file.path, path)
    report, exitcode, stderr = _in_child(path, factory, timeout)
    if report is None:
        outcome, detail, report = HANG, f"no exit within {timeout:g} s: {stderr}", {}
    else:
        if exitcode != 0 or report.get("outcome") not in ("opened", OSERROR):
            outcome = CRASH
            detail = f"exit {exitcode}: {report.get('phase')}: {report.get('error')}; {stderr}"
        elif report["outcome"] == OSERROR:
            outcome, detail = OSERROR, f"errno {report['errno']}: {report['message']}"
        else:
            backups = list(directory.glob(f"{NAME}.*.bak"))
            outcome = LOADED_BACKUP if backups else LOADED
            if not report["kept"]:
                outcome = MOVED_ASIDE
            detail = ", ".join(sorted(p.name for p in directory.iterdir()))
    left = [p for p in directory.iterdir() if p.is_file()]
    recoverable = file.sha256 in {_sha256(p) for p in left}
    writer_valid = None
    if report.get("outcome") == "opened":
        writer_valid = _writer_valid(path, report["session"])
        if not recoverable and outcome == LOADED:
            recoverable = _clean_load_kept_everything(file.path.read_bytes(), path)
    result = Result(
        file,
        outcome,
        recoverable,
        writer_valid,
        report.get("loaded"),
        detail,
        report.get("maxrss_kib"),
        None,
    )
    if result.bad:
        return dataclasses.replace(result, kept=directory)
    shutil.rmtree(directory)
    return result


def run_corpus(
    files: Iterable[CorpusFile],
    workdir: Path,
    *,
    timeout: float,
    jobs: int = 2,
    factory: str = REFERENCE,
    progress: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run every file, ``jobs`` children at a time; results in the order of ``files``.

    The largest files go first, so a long one does not finish alone at the end."""
    ordered = list(files)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            f.name: pool.submit(run_one, f, workdir, timeout, factory)
            for f in sorted(ordered, key=lambda f: -f.size)
        }
        results = []
        for f in ordered:
            result = futures[f.name].result()
            if progress is not None:
                progress(result)
            results.append(result)
    return results


# -- the table ----------------------------------------------------------------------------------

COLUMNS: Final = (*OUTCOMES, "unrecoverable", "not writer-valid", "not as specified")


def counts(results: Iterable[Result]) -> Counter[str]:
    """How many results fall in each column of ``COLUMNS``."""
    tally: Counter[str] = Counter()
    for r in results:
        tally[r.outcome] += 1
        tally["unrecoverable"] += not r.recoverable
        tally["not writer-valid"] += r.writer_valid is False
        tally["not as specified"] += not r.as_expected
    return tally


def table(results: list[Result]) -> str:
    """A Markdown table: one row per kind (hand-picked files alone, generated ones by how
    they were made), then the total."""
    kinds: dict[str, list[Result]] = {}
    for r in results:
        kinds.setdefault(r.file.kind, []).append(r)
    header = ["kind", "files", *COLUMNS]
    rows = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for kind, group in [*sorted(kinds.items()), ("**total**", results)]:
        tally = counts(group)
        cells = [kind, str(len(group)), *(str(tally[c]) if tally[c] else "" for c in COLUMNS)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def elapsed(began: float) -> float:
    return time.perf_counter() - began


def largest(files: Iterable[CorpusFile]) -> CorpusFile:
    return max(files, key=lambda f: f.size)


def describe(result: Result) -> str:
    """One line for a result that went wrong: enough to reproduce it."""
    return (
        f"{result.file.name} ({result.file.kind}, {result.file.size} bytes, sha256 "
        f"{result.file.sha256[:16]}): {result.outcome}, expected "
        f"{'/'.join(sorted(result.file.expect)) or 'any'}; recoverable={result.recoverable}, "
        f"writer_valid={result.writer_valid}; {result.detail}; file {result.file.path}, "
        f"directory left in {result.kept}"
    )


def main() -> None:
    """Reproduce one file: ``python tests/hostile_run.py FILE [--timeout S]``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--timeout", type=float, default=TIMEOUT["full"])
    args = parser.parse_args()
    raw = args.file.read_bytes()
    file = CorpusFile(
        args.file.name,
        "given",
        args.file.resolve(),
        len(raw),
        hashlib.sha256(raw).hexdigest(),
        oracle_outcome(raw),
    )
    workdir = Path(tempfile.mkdtemp(prefix="hostile-run-"))
    result = run_one(file, workdir, args.timeout)
    print(describe(result))
    if result.kept is None:
        workdir.rmdir()
    sys.exit(1 if result.bad else 0)


if __name__ == "__main__":
    main()
