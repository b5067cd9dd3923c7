"""The ``sessionspec`` command: ``verify TARGET`` and ``catalogue``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from sessionspec.conformance.context import PROFILES
from sessionspec.conformance.loading import TargetError
from sessionspec.conformance.registry import Check
from sessionspec.conformance.report import CheckResult, Status, write_outputs
from sessionspec.spec import Level, behaviours


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionspec", description="sessionspec v1 conformance kit"
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
        help="factory(path, *, clock) as 'module:attr' or 'path/to/backend.py:attr'",
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
    verify.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report")
    verify.add_argument("--junit", type=Path, metavar="PATH", help="write a JUnit XML report")
    verify.add_argument("--markdown", type=Path, metavar="PATH", help="write a Markdown report")
    verify.add_argument("-q", "--quiet", action="store_true", help="no per-check progress")
    commands.add_parser("catalogue", help="print the behaviours of the catalogue")
    return parser


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
    from sessionspec.conformance.engine import Verification

    try:
        verification = Verification(
            args.target, levels=args.level, profile=args.profile, seed=args.seed, only=args.only
        )
    except (TargetError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2

    def progress(check: Check, result: CheckResult) -> None:
        if not args.quiet and result.status is not Status.NA:
            colour = "green" if result.status is Status.PASS else "red"
            name = escape(check.node_id)
            console.print(
                f"  [{colour}]{result.status:<4}[/] {name} ({result.duration_s} s)", highlight=False
            )

    with verification:
        report = verification.run_all(progress)
    report.print(console)
    write_outputs(report, json_path=args.json, junit_path=args.junit, markdown_path=args.markdown)
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
