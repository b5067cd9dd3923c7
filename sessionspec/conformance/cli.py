"""The ``sessionspec`` command: ``verify TARGET``, ``catalogue``, ``check FILE...``, ``vectors``.

``verify`` exit status (:mod:`sessionspec.conformance.errors`): 0 every behaviour of the
claimed levels passed; 1 a behaviour failed or a call hung; 2 the run could not start (the
TARGET does not load, no levels, the preflight failed, bad arguments); 130 interrupted
(Ctrl-C), after writing the partial report. ``verify --replay FILE``: 1 when the script's
divergence shows again, 0 when it does not, 2 when the script cannot run.

``check`` exit status: 0 every file is a clean load; 1 some file is a lossy load or would be
moved aside; 2 some file cannot be read or is too large, or bad arguments.
``vectors export DIR`` exit status: 0 written; 2 files exist (without --force) or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from sessionspec import version_line
from sessionspec.conformance.context import PROFILES
from sessionspec.conformance.errors import KitError
from sessionspec.conformance.registry import Check
from sessionspec.conformance.report import CheckResult, Report, Status, write_outputs
from sessionspec.conformance.vectors_export import ExportError, export_vectors
from sessionspec.conformance.watchdog import DEFAULT_STEP_TIMEOUT
from sessionspec.reference.inspection import (
    DEFAULT_MAX_BYTES,
    exit_code,
    inspect_file,
    render_text,
)
from sessionspec.spec import Level, behaviours, parse_timestamp, utc_now


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionspec", description="sessionspec conformance kit (spec 1.1, file format v1)"
    )
    parser.add_argument(
        "--version",
        action="version",
        version=version_line(),
        help="print the kit's, the spec's and the vectors' versions and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify",
        help="verify a backend against every behaviour",
        description="Exit status 0 only when every behaviour of the claimed levels passes.",
    )
    verify.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        help="factory(path, *, clock) as 'module:attr' or 'path/to/backend.py:attr'"
        " (with --replay: replaces the script's own TARGET)",
    )
    verify.add_argument(
        "--stdio",
        metavar="COMMAND",
        help='verify a backend in any language: start COMMAND (quoted, e.g. "node adapter.js")'
        " and talk the harness protocol to it over stdin/stdout (sessionspec/spec/PROTOCOL.md)",
    )
    verify.add_argument(
        "--level",
        action="append",
        choices=[level.value for level in Level],
        help="claimed level, overriding the factory's sessionspec_levels (repeatable)",
    )
    verify.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    verify.add_argument("--seed", type=int, default=None, help="hypothesis seed (replays a run)")
    verify.add_argument(
        "--only",
        action="append",
        metavar="ID",
        help="run only these behaviours or checks (B07, ensure-session, B07-...::name)",
    )
    verify.add_argument(
        "--step-timeout",
        type=float,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help=f"the longest one backend call may take before the run stops with a FAIL naming"
        f" it (default {DEFAULT_STEP_TIMEOUT:g})",
    )
    verify.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="run a FAIL's replay script through the kit instead of verifying",
    )
    verify.add_argument(
        "--replay-dir",
        type=Path,
        metavar="DIR",
        help="where to write the replay scripts of state machine FAILs (default: the folder"
        " of the first report written, else ./sessionspec-replays)",
    )
    verify.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report")
    verify.add_argument("--junit", type=Path, metavar="PATH", help="write a JUnit XML report")
    verify.add_argument("--markdown", type=Path, metavar="PATH", help="write a Markdown report")
    verify.add_argument("-q", "--quiet", action="store_true", help="no per-check progress")
    commands.add_parser("catalogue", help="print the behaviours of the catalogue")
    _add_check_parser(commands)
    _add_vectors_parser(commands)
    return parser


_CHECK_EPILOG = """\
Outcomes: clean load (every record loads, nothing lost); lossy load (records
skipped or data lost: a v1 reader keeps a backup before its first save, B15);
move aside (unparseable or no sessions array, B13; unknown version, B14);
cannot read (missing, B11; a directory, permission denied, ENOTDIR, B12; a
FIFO, socket or device, never read); too large (over --max-bytes, not read).

Exit status: 0 every file is a clean load; 1 some file is a lossy load or
would be moved aside; 2 some file cannot be read or is too large, or bad
arguments. Nothing is ever written, moved, created or chmodded.
"""


def _add_check_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``check FILE...``: what a v1 reader would do with each file (SPEC.md §3.2, B11-B18)."""
    check = commands.add_parser(
        "check",
        help="tell what a v1 reader would do with sessions files (writes nothing)",
        description="Apply the reader rules of SPEC.md section 3.2 to each FILE, read-only.",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a sessions file")
    check.add_argument(
        "--now",
        type=_timestamp,
        default=None,
        metavar="RFC3339",
        help="the reader's clock for expiry and the cap (default: the current time)",
    )
    check.add_argument("--json", action="store_true", help="print a JSON array, one per file")
    check.add_argument(
        "--max-bytes",
        type=_positive,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"read at most N bytes of a file (default {DEFAULT_MAX_BYTES})",
    )


def _add_vectors_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``vectors export DIR``: the file vectors of SPEC.md §7 for other languages."""
    vectors = commands.add_parser("vectors", help="the language-neutral file vectors")
    actions = vectors.add_subparsers(dest="vectors_command", required=True)
    export = actions.add_parser(
        "export",
        help="write the vectors, manifest.json and manifest.schema.json into DIR",
        description="Copy the vectors of the installed package into DIR, byte-identical, "
        "in the package's layout. Exit status 0 when written; 2 when files exist (without "
        "--force) or writing fails.",
    )
    export.add_argument("directory", metavar="DIR", type=Path, help="created if missing")
    export.add_argument("--force", action="store_true", help="overwrite existing files")


def _timestamp(text: str) -> datetime:
    """An RFC 3339 date-time with a zone, read as a v1 reader reads timestamps (§1.2)."""
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive number of bytes: {text!r}")
    return value


def _check(args: argparse.Namespace) -> int:
    """Run ``check``: one verdict per file (B11-B18), printed as text or JSON; exit 0/1/2."""
    now = utc_now() if args.now is None else args.now
    results = [inspect_file(path, now=now, max_bytes=args.max_bytes) for path in args.files]
    if args.json:
        _emit(json.dumps([result.to_json() for result in results], indent=2))
    else:
        _emit(render_text(results))
    return exit_code(results)


def _export(args: argparse.Namespace) -> int:
    """Run ``vectors export``: exit 0 when written, 2 when refused or failed."""
    try:
        exported = export_vectors(args.directory, force=args.force)
    except (ExportError, OSError) as exc:
        print(f"sessionspec vectors export: error: {exc}", file=sys.stderr)
        return 2
    _emit(
        f"wrote {len(exported.files)} files to {exported.directory}: "
        f"manifest.json, manifest.schema.json and {exported.vectors} vectors"
    )
    return 0


def _emit(text: str) -> None:
    """Print ``text``; characters stdout cannot encode are written as escapes."""
    encoding = sys.stdout.encoding or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"))


def _catalogue(console: Console) -> int:
    from rich.table import Table

    table = Table(title="sessionspec v1 behaviours")
    for column in ("id", "level", "slug", "title"):
        table.add_column(column)
    for item in behaviours():
        table.add_row(item.id, item.level.value, item.slug, item.title)
    console.print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    if args.command == "catalogue":
        return _catalogue(console)
    if args.command == "check":
        return _check(args)
    if args.command == "vectors":
        return _export(args)
    return _verify(args, console)


def _verify(args: argparse.Namespace, console: Console) -> int:
    """Run ``verify`` (or ``verify --replay``); exit status as the module says."""
    from sessionspec.conformance.engine import Verification

    if args.replay is not None:
        return _replay(args, console)
    if args.stdio is not None:
        if args.target is not None:
            console.print("[red]error:[/] give a TARGET or --stdio COMMAND, not both")
            return 2
        from sessionspec.conformance.stdio import STDIO_PREFIX

        args.target = STDIO_PREFIX + args.stdio
    if args.target is None:
        console.print("[red]error:[/] verify needs a TARGET, --stdio COMMAND or --replay FILE")
        return 2
    try:
        verification = Verification(
            args.target,
            levels=args.level,
            profile=args.profile,
            seed=args.seed,
            only=args.only,
            step_timeout=args.step_timeout,
        )
    except ValueError as exc:  # KitError (TargetError, LevelsError) and bad arguments
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2

    declared = verification.expected_failures

    def progress(check: Check, result: CheckResult) -> None:
        if not args.quiet and result.status is not Status.NA:
            status, colour = result.status.value, "yellow"
            if result.status is Status.PASS:
                colour = "green"
            elif result.status is Status.FAIL and check.behaviour.id in declared:
                status = "XFAIL"  # declared failing (PROTOCOL.md §4): not a red line
            elif result.status is Status.FAIL:
                colour = "red"
            name = escape(check.node_id)
            console.print(
                f"  [{colour}]{status:<4}[/] {name} ({result.duration_s} s)", highlight=False
            )

    with verification:
        try:
            report = verification.run_all(progress)
        except KitError as exc:  # the preflight
            console.print(f"[red]error:[/] {escape(str(exc))}")
            return 2
        except KeyboardInterrupt:  # during the preflight: nothing to report
            console.print("[red]interrupted[/]")
            return 130
    _write_replays(report, args)
    report.print(console)
    write_outputs(report, json_path=args.json, junit_path=args.junit, markdown_path=args.markdown)
    if report.stopped is not None:
        # A hung call still runs in its thread and may hold locks the interpreter's exit
        # would wait for (a backend's atexit save): end the process now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130 if report.stopped.startswith("interrupted") else 1)
    return report.exit_code


def _write_replays(report: Report, args: argparse.Namespace) -> None:
    """Write each FAIL's replay script next to the reports, and name it in the result."""
    scripts = [
        item for result in report.results.values() for item in result.checks if item.replay_script
    ]
    if not scripts:
        return
    folder = args.replay_dir or next(
        (path.parent for path in (args.json, args.junit, args.markdown) if path is not None),
        Path("sessionspec-replays"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    for item in scripts:
        path = folder / (item.check.split("::", 1)[0] + ".py")
        path.write_text(item.replay_script or "", encoding="utf-8")
        item.replay_path = str(path)


def _replay(args: argparse.Namespace, console: Console) -> int:
    """``verify --replay FILE [TARGET]``: 1 when the divergence shows again, else 0."""
    from sessionspec.conformance.replay import render_divergence, run_replay

    try:
        outcome = run_replay(args.replay, args.target)
    except ValueError as exc:  # KitError: not a script, the target does not load
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    if outcome.divergence is None:
        console.print(
            f"replayed {escape(str(args.replay))} against {escape(outcome.target)}:"
            f" no divergence in {outcome.steps} steps"
        )
        return 0
    console.print(
        f"replayed {escape(str(args.replay))} against {escape(outcome.target)}:", highlight=False
    )
    console.print(render_divergence(outcome.divergence), markup=False, highlight=False)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
