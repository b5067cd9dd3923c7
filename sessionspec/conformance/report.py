"""The verdict: one status per behaviour, rendered as a rich table, JSON, JUnit or Markdown.

Every rendering names the three versions behind it (:func:`sessionspec.versions`: spec, kit
and vectors), so a verdict can be traced to the rules and the kit that reached it.
"""

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
from rich import box
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import sessionspec

REPORT_VERSION = 1
#: The stable ``$id`` of report.schema.json, also the ``$schema`` member of every JSON report.
REPORT_SCHEMA_ID = "urn:sessionspec:schema:conformance-report:v1"
#: Below this many columns the terminal table leaves out the title column (B-titles are in
#: ``sessionspec catalogue``, the JSON and the Markdown report).
WIDE_TABLE_COLUMNS = 100


class Status(enum.StrEnum):
    """The verdict of a behaviour or a check: N/A when its level is not claimed."""

    PASS = "PASS"
    FAIL = "FAIL"
    NA = "N/A"  # the backend does not claim the behaviour's level, or it cannot be observed
    SKIP = "SKIP"  # not selected in this run (``only``), or no check could observe it here
    XFAIL = "XFAIL"  # failed, and the implementation declared it would (PROTOCOL.md §4)
    XPASS = "XPASS"  # declared to fail, but passed: the declaration is stale, the gate fails


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
    #: Where expected and actual differ (:func:`sessionspec.conformance.diff.structural_diff`).
    diff: list[str] | None = None
    #: A runnable replay script of a state machine FAIL (its text), and where the CLI wrote it.
    replay_script: str | None = None
    replay_path: str | None = None
    #: The behaviour this check needed and found broken (it did not judge its own).
    depends_on: str | None = None


@dataclass
class BehaviourResult:
    id: str
    slug: str
    title: str
    level: str
    rule: str
    status: Status
    checks: list[CheckResult] = field(default_factory=list)
    #: Why the implementation declared it would fail (XFAIL or XPASS), or None.
    expected_failure: str | None = None
    #: Why the behaviour is N/A though its level is claimed (it cannot be observed), or None.
    not_applicable: str | None = None

    @property
    def failures(self) -> list[CheckResult]:
        """The checks of this behaviour that failed."""
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
    #: ``{"spec", "kit", "vectors"}`` of the installation that ran (:func:`sessionspec.versions`).
    versions: dict[str, str] = field(default_factory=sessionspec.versions)
    #: Why the run stopped before the end (a hung call, Ctrl-C), or None.
    stopped: str | None = None
    #: Wall time of the stateful machine, shared by the behaviours it checks (not in theirs).
    machine_duration_s: float = 0.0
    #: Who the implementation is, from a stdio adapter's handshake (PROTOCOL.md §3.1).
    implementation: dict[str, str] | None = None
    #: The last lines a stdio adapter wrote on stderr (its log), or None in-process.
    log: str | None = None

    @property
    def ok(self) -> bool:
        """Every behaviour of the claimed levels passed, apart from those ``only`` left out
        and those the implementation declared failing that did fail (XFAIL; an XPASS fails).

        A declared behaviour not fully checked (``only``, a check not run) is SKIP and does
        not fail the gate. A claimed behaviour whose checks all ran but were skipped (say, no
        tool could observe it here) is unverified, and an unverified behaviour must not pass a
        CI gate; nor does a run that stopped early.
        """
        return self.stopped is None and all(
            r.status in (Status.PASS, Status.NA, Status.XFAIL)
            or (r.status is Status.SKIP and (not r.checks or r.expected_failure is not None))
            for r in self.results.values()
        )

    @property
    def exit_code(self) -> int:
        """0 when ``ok`` (every claimed behaviour passed), else 1 (errors.py lists them all)."""
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        """How many behaviours ended PASS, FAIL, N/A and SKIP."""
        out = {s.value: 0 for s in Status}
        for result in self.results.values():
            out[result.status.value] += 1
        return out

    def versions_text(self) -> str:
        """The versions as one phrase, ``kit 0.2.0, spec 1.1, vectors 1.1.0``, for headers."""
        return ", ".join(
            f"{key} {self.versions.get(key, '?')}" for key in ("kit", "spec", "vectors")
        )

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON report: valid under report.schema.json (``$id`` :data:`REPORT_SCHEMA_ID`),
        with ``versions`` (spec, kit, vectors), one result per behaviour in ID order, ``ok``
        and ``counts``."""
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
        """The report as JSON, valid against report.schema.json (``validate_report``)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    # -- JUnit -----------------------------------------------------------------------------
    def to_junit(self) -> str:
        """One ``testsuite``: a ``testcase`` per check (or per behaviour that ran none), and
        the versions as ``properties`` (``sessionspec.spec``, ``.kit``, ``.vectors``) with the
        levels, profile and seed."""
        suite = ElementTree.Element(
            "testsuite",
            name=f"sessionspec conformance: {self.target}",
            time=str(self.duration_s),
        )
        properties = ElementTree.SubElement(suite, "properties")
        for name, value in (
            *((f"sessionspec.{key}", version) for key, version in self.versions.items()),
            ("sessionspec.levels", ",".join(self.levels)),
            ("sessionspec.profile", self.profile),
            ("sessionspec.seed", "" if self.seed is None else str(self.seed)),
        ):
            ElementTree.SubElement(properties, "property", name=name, value=value)
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
                if item.status is Status.FAIL and result.status is Status.XFAIL:
                    skipped += 1
                    ElementTree.SubElement(
                        case,
                        "skipped",
                        message=f"XFAIL ({result.expected_failure}): {item.message}",
                    )
                elif item.status is Status.FAIL:
                    failures += 1
                    failure = ElementTree.SubElement(case, "failure", message=item.message)
                    failure.text = failure_text(item)
                elif result.status is Status.XPASS and item.status is Status.PASS:
                    failures += 1
                    ElementTree.SubElement(
                        case,
                        "failure",
                        message=f"XPASS: declared to fail ({result.expected_failure}), but passed",
                    )
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
        """A Markdown page: the target, the versions, levels and profile, then one table row
        per behaviour, the verdict, and a section per failed check with its rule."""
        who = self.implementation
        lines = [
            f"# sessionspec conformance: `{self.target}`",
            "",
            *(
                [
                    f"Implementation: {who.get('name')} {who.get('version')}"
                    f" ({who.get('language')}).",
                    "",
                ]
                if who
                else []
            ),
            f"Versions: {self.versions_text()}.",
            "",
            f"Levels: {', '.join(self.levels)} ({self.levels_source}). "
            f"Profile: {self.profile}. Seed: {self.seed}. Took {self.duration_s} s"
            f" (state machine {self.machine_duration_s} s).",
            "",
            "| behaviour | level | status | title |",
            "| --- | --- | --- | --- |",
        ]
        for r in self.results.values():
            why = r.expected_failure or r.not_applicable
            title = f"{r.title} ({r.status}: {why})" if why else r.title
            lines.append(f"| {r.id} {r.slug} | {r.level} | **{r.status}** | {title} |")
        lines += ["", f"Verdict: {'PASS' if self.ok else 'FAIL'} {self.counts()}", ""]
        for note in self.notes:
            lines.append(f"> {note}")
        for r in self.results.values():
            for item in r.failures:
                lines += [f"## {item.check}", "", f"Rule: {r.rule}", "", "```text"]
                lines += [failure_text(item), "```", ""]
        if self.log:
            lines += [
                "## The adapter's log (stderr, last lines)",
                "",
                "```text",
                self.log,
                "```",
                "",
            ]
        return "\n".join(lines)

    # -- terminal --------------------------------------------------------------------------
    def header_lines(self) -> list[str]:
        """The header of the terminal report (plain text): the target, the versions, the levels
        with where they came from, then profile, seed and duration."""
        who = self.implementation
        return [
            f"sessionspec conformance: {self.target}",
            *(
                [f"implementation: {who.get('name')} {who.get('version')} ({who.get('language')})"]
                if who
                else []
            ),
            f"versions: {self.versions_text()}",
            f"levels: {', '.join(self.levels)} ({self.levels_source})",
            f"profile {self.profile}; seed {self.seed}; {self.duration_s} s"
            f" (state machine {self.machine_duration_s} s)",
        ]

    def table(self, width: int) -> Table:
        """The verdict table for a terminal ``width`` columns wide: one line per behaviour.

        ``behaviour`` (ID and slug), ``level``, ``status`` and ``checks`` (passed/run) never
        wrap; the title is a last column cut to fit, shown only from
        :data:`WIDE_TABLE_COLUMNS` columns on, so an 80-column terminal keeps one row a line.
        """
        wide = width >= WIDE_TABLE_COLUMNS
        style = {
            Status.PASS: "green",
            Status.FAIL: "bold red",
            Status.NA: "dim",
            Status.SKIP: "dim",
            Status.XFAIL: "yellow",
            Status.XPASS: "bold red",
        }
        rows: list[tuple[str, str, Status, str, str]] = []
        for r in self.results.values():
            ran = [c for c in r.checks if c.status in (Status.PASS, Status.FAIL)]
            checks = f"{len(ran) - len(r.failures)}/{len(ran)}" if ran else ""
            rows.append((f"{r.id} {r.slug}", r.level, r.status, checks, r.title))
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        # min_width = the widest cell: rich shrinks only the title to fit the console.
        for index, name in enumerate(("behaviour", "level", "status", "checks")):
            widest = max([len(name), *(len(str(row[index])) for row in rows)])
            justify: JustifyMethod = "right" if name == "checks" else "left"
            table.add_column(name, no_wrap=True, min_width=widest, justify=justify)
        if wide:
            table.add_column("title", overflow="ellipsis")  # shrinkable; its Text never wraps
        for behaviour, level, status, checks, title in rows:
            cells = [Text(behaviour), Text(level), Text(status.value, style[status]), Text(checks)]
            if wide:
                cells.append(Text(title, overflow="ellipsis", no_wrap=True))
            table.add_row(*cells)
        return table

    def print(self, console: Console | None = None, *, details: bool = True) -> None:
        """Print the report to ``console``: the header (:meth:`header_lines`, versions
        included), the table (:meth:`table`, fitted to the console's width), notes, each failed
        check with its rule when ``details``, and the verdict."""
        console = console or Console()
        first, *rest = self.header_lines()
        console.print(f"[bold]{escape(first)}[/]", highlight=False)
        for line in rest:
            console.print(line, markup=False, highlight=False)
        console.print(self.table(console.width))
        for note in self.notes:
            console.print(f"[yellow]note:[/] {escape(note)}")
        for r in self.results.values():
            if r.status in (Status.XFAIL, Status.XPASS):
                console.print(f"[yellow]{r.status} {r.id}:[/] {escape(str(r.expected_failure))}")
            elif r.not_applicable:
                console.print(f"[dim]N/A {r.id}:[/] {escape(r.not_applicable)}")
        if details:
            for r in self.results.values():
                for item in r.failures if r.status is Status.FAIL else []:
                    console.rule(f"[red]FAIL {escape(item.check)}")
                    console.print(f"rule: {r.rule}", markup=False)
                    console.print(failure_text(item), markup=False, highlight=False)
        verdict = "[green]PASS" if self.ok else "[bold red]FAIL"
        console.print(f"verdict: {verdict}[/] {self.counts()}")


def failure_text(item: CheckResult) -> str:
    """A failed check as text: message, difference (or expected/actual), program, replay."""
    parts = [item.message]
    if item.diff:
        parts.append("difference:\n" + "\n".join(f"  {line}" for line in item.diff))
    else:
        if item.expected is not None:
            parts.append(f"expected: {item.expected}")
        if item.actual is not None:
            parts.append(f"actual:   {item.actual}")
    if item.program:
        parts.append("program (shrunk):\n" + item.program)
    if item.replay:
        parts.append("replay: " + item.replay)
    if item.replay_path:
        parts.append(f"replay script: python {item.replay_path}")
    return "\n".join(parts)


@cache
def report_schema() -> dict[str, Any]:
    """report.schema.json, the JSON Schema of :meth:`Report.to_dict` (``$id``
    :data:`REPORT_SCHEMA_ID`), read once from the installed package."""
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
