"""The verdict: one status per behaviour, rendered as a rich table, JSON, JUnit or Markdown."""

from __future__ import annotations

import enum
import json
import reprlib
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from jsonschema import Draft202012Validator
from rich.console import Console
from rich.markup import escape
from rich.table import Table

REPORT_VERSION = 1
REPORT_SCHEMA_ID = "urn:sessionspec:schema:conformance-report:v1"


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NA = "N/A"  # the backend does not claim the behaviour's level
    SKIP = "SKIP"  # not selected in this run (``only``), or no check could observe it here


_repr = reprlib.Repr()
_repr.maxstring = 300
_repr.maxother = 300
_repr.maxlist = 12
_repr.maxtuple = 12
_repr.maxdict = 12
_repr.maxlevel = 4


def describe(value: object) -> str | None:
    """A short, readable rendering of an expected/actual value."""
    if value is None:
        return None
    return value if isinstance(value, str) else _repr.repr(value)


@dataclass
class CheckResult:
    check: str
    name: str
    status: Status
    message: str = ""
    expected: str | None = None
    actual: str | None = None
    program: str | None = None
    replay: str | None = None
    duration_s: float = 0.0


@dataclass
class BehaviourResult:
    id: str
    slug: str
    title: str
    level: str
    rule: str
    status: Status
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is Status.FAIL]


@dataclass
class Report:
    target: str
    levels: list[str]
    levels_source: str
    profile: str
    seed: int | None
    started_at: str
    duration_s: float
    results: dict[str, BehaviourResult]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every behaviour of the claimed levels passed, apart from those ``only`` left out.

        A claimed behaviour whose checks all ran but were skipped (say, no tool could observe
        it here) is unverified, and an unverified behaviour must not pass a CI gate.
        """
        return all(
            r.status in (Status.PASS, Status.NA) or (r.status is Status.SKIP and not r.checks)
            for r in self.results.values()
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for result in self.results.values():
            out[result.status.value] += 1
        return out

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results"] = [asdict(r) for r in self.results.values()]
        return {
            "$schema": REPORT_SCHEMA_ID,
            "report_version": REPORT_VERSION,
            **data,
            "ok": self.ok,
            "counts": self.counts(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    # -- JUnit -----------------------------------------------------------------------------
    def to_junit(self) -> str:
        suite = ElementTree.Element(
            "testsuite",
            name=f"sessionspec conformance: {self.target}",
            time=str(self.duration_s),
        )
        tests = failures = skipped = 0
        for result in self.results.values():
            cases = result.checks or [CheckResult(f"{result.id}-{result.slug}", "-", result.status)]
            for item in cases:
                tests += 1
                case = ElementTree.SubElement(
                    suite,
                    "testcase",
                    classname=f"{result.id}-{result.slug}",
                    name=item.check,
                    time=str(item.duration_s),
                )
                if item.status is Status.FAIL:
                    failures += 1
                    failure = ElementTree.SubElement(case, "failure", message=item.message)
                    failure.text = _failure_text(item)
                elif item.status is not Status.PASS:
                    skipped += 1
                    ElementTree.SubElement(
                        case, "skipped", message=f"{item.status}: {item.message}"
                    )
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("skipped", str(skipped))
        suite.set("errors", "0")
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    # -- Markdown --------------------------------------------------------------------------
    def to_markdown(self) -> str:
        lines = [
            f"# sessionspec conformance: `{self.target}`",
            "",
            f"Levels: {', '.join(self.levels)} ({self.levels_source}). "
            f"Profile: {self.profile}. Seed: {self.seed}. Took {self.duration_s} s.",
            "",
            "| behaviour | level | status | title |",
            "| --- | --- | --- | --- |",
        ]
        for r in self.results.values():
            lines.append(f"| {r.id} {r.slug} | {r.level} | **{r.status}** | {r.title} |")
        lines += ["", f"Verdict: {'PASS' if self.ok else 'FAIL'} {self.counts()}", ""]
        for note in self.notes:
            lines.append(f"> {note}")
        for r in self.results.values():
            for item in r.failures:
                lines += [f"## {item.check}", "", f"Rule: {r.rule}", "", "```text"]
                lines += [_failure_text(item), "```", ""]
        return "\n".join(lines)

    # -- terminal --------------------------------------------------------------------------
    def print(self, console: Console | None = None, *, details: bool = True) -> None:
        console = console or Console()
        table = Table(title=f"sessionspec conformance: {self.target}")
        for column in ("behaviour", "level", "status", "title", "checks"):
            table.add_column(column)
        style = {
            Status.PASS: "green",
            Status.FAIL: "bold red",
            Status.NA: "dim",
            Status.SKIP: "dim",
        }
        for r in self.results.values():
            ran = [c for c in r.checks if c.status in (Status.PASS, Status.FAIL)]
            table.add_row(
                escape(f"{r.id} {r.slug}"),
                r.level,
                f"[{style[r.status]}]{r.status}[/]",
                r.title,
                f"{len(ran) - len(r.failures)}/{len(ran)}" if ran else "",
            )
        console.print(table)
        console.print(
            f"levels: {', '.join(self.levels)} ({self.levels_source}); profile {self.profile};"
            f" seed {self.seed}; {self.duration_s} s"
        )
        for note in self.notes:
            console.print(f"[yellow]note:[/] {note}")
        if details:
            for r in self.results.values():
                for item in r.failures:
                    console.rule(f"[red]FAIL {escape(item.check)}")
                    console.print(f"rule: {r.rule}", markup=False)
                    console.print(_failure_text(item), markup=False, highlight=False)
        verdict = "[green]PASS" if self.ok else "[bold red]FAIL"
        console.print(f"verdict: {verdict}[/] {self.counts()}")


def _failure_text(item: CheckResult) -> str:
    parts = [item.message]
    if item.expected is not None:
        parts.append(f"expected: {item.expected}")
    if item.actual is not None:
        parts.append(f"actual:   {item.actual}")
    if item.program:
        parts.append("program (shrunk):\n" + item.program)
    if item.replay:
        parts.append("replay: " + item.replay)
    return "\n".join(parts)


@cache
def report_schema() -> dict[str, Any]:
    text = (
        resources.files("sessionspec.conformance").joinpath("report.schema.json").read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_report(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` is not a valid report."""
    Draft202012Validator(report_schema()).validate(data)


def write_outputs(
    report: Report,
    *,
    json_path: Path | None = None,
    junit_path: Path | None = None,
    markdown_path: Path | None = None,
) -> None:
    for path, text in (
        (json_path, report.to_json() if json_path else ""),
        (junit_path, report.to_junit() if junit_path else ""),
        (markdown_path, report.to_markdown() if markdown_path else ""),
    ):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
