"""The one engine behind the CLI, the pytest plugin and ``conformance.verify``."""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sessionspec.conformance.context import PROFILES, CheckContext, RunState, capture_logs
from sessionspec.conformance.loading import load_target, target_for
from sessionspec.conformance.registry import BehaviourViolation, Check, all_checks
from sessionspec.conformance.report import BehaviourResult, CheckResult, Report, Status, describe
from sessionspec.spec import Level, behaviours, declared_levels

#: Claiming a level implies the levels below it (SPEC.md §2.2).
_IMPLIES = {
    Level.FILE_V1: {Level.FILE_V1, Level.DURABLE, Level.CORE},
    Level.DURABLE: {Level.DURABLE, Level.CORE},
    Level.CORE: {Level.CORE},
}


def expand_levels(levels: Iterable[Level | str]) -> frozenset[Level]:
    out: set[Level] = set()
    for level in levels:
        out |= _IMPLIES[Level(str(level))]
    return frozenset(out)


def resolve_levels(
    factory: object, override: Iterable[Level | str] | None
) -> tuple[frozenset[Level], str]:
    """The levels to verify and where they came from (for the report)."""
    if override:
        return expand_levels(override), "given with --level"
    declared = declared_levels(factory)
    if declared is None:
        return frozenset({Level.CORE}), (
            "the factory declares no sessionspec_levels: verified as core only"
        )
    return expand_levels(declared), "declared by the factory (sessionspec_levels)"


def _selected(check: Check, only: frozenset[str] | set[str] | None) -> bool:
    if not only:
        return True
    return any(
        key in (check.behaviour.id, check.behaviour.slug, check.node_id)
        or check.node_id.startswith(key + "::")
        for key in only
    )


class Verification:
    """One verification run: resolves the target and levels, runs checks, builds the report."""

    def __init__(
        self,
        factory_or_target: Callable[..., Any] | str,
        *,
        levels: Iterable[Level | str] | None = None,
        profile: str = "ci",
        seed: int | None = None,
        only: Iterable[str] | None = None,
    ) -> None:
        if isinstance(factory_or_target, str):
            factory = load_target(factory_or_target)
            target: str | None = factory_or_target
        else:
            factory = factory_or_target
            target = target_for(factory)
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
        resolved, source = resolve_levels(factory, levels)
        self.only = frozenset(only) if only else None
        self.label = target or repr(factory)
        self.levels_source = source
        self.started = datetime.now(UTC)
        self._clock_start = time.monotonic()
        self.run = RunState(
            factory=factory,
            target=target,
            levels=resolved,
            profile=PROFILES[profile],
            seed=seed,
            workdir=Path(tempfile.mkdtemp(prefix="sessionspec-kit-")),
        )
        self.checks = all_checks()
        self.results: dict[str, CheckResult] = {}
        if self.only:
            unknown = {
                key for key in self.only if not any(_selected(c, {key}) for c in self.checks)
            }
            if unknown:
                shutil.rmtree(self.run.workdir, ignore_errors=True)
                raise ValueError(f"--only names no behaviour or check: {sorted(unknown)}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the run's working directory."""
        shutil.rmtree(self.run.workdir, ignore_errors=True)

    def applicable(self, check: Check) -> bool:
        """The backend claims the check's behaviour level and the level the check requires."""
        return self.run.claims(check.behaviour.level) and self.run.claims(check.requires)

    def selected(self, check: Check) -> bool:
        """The check is among those ``--only`` selects (all when no ``--only``)."""
        return _selected(check, self.only)

    def run_check(self, check: Check) -> CheckResult:
        """Run one check (or mark it N/A); results are kept for the report."""
        if not self.applicable(check):
            needed = check.requires if self.run.claims(check.behaviour.level) else None
            why = f"level {(needed or check.behaviour.level).value} not claimed"
            result = CheckResult(check.node_id, check.name, Status.NA, why)
            self.results[check.node_id] = result
            return result
        context = CheckContext(self.run, check)
        start = time.monotonic()
        try:
            # A handler on the root logger for the whole check keeps backend warnings out of
            # the terminal (logging's last-resort handler would print them).
            with capture_logs():
                check.function(context)
        except BehaviourViolation as violation:
            result = CheckResult(
                check.node_id,
                check.name,
                Status.FAIL,
                violation.message,
                expected=describe(violation.expected),
                actual=describe(violation.actual),
                program=violation.program,
                replay=violation.replay,
            )
            if violation.behaviour_id != check.behaviour.id:
                # A check only asserts its own behaviour; anything else is a kit bug.
                result.message = f"(raised for {violation.behaviour_id}) {result.message}"
        except Exception as exc:
            result = CheckResult(
                check.node_id,
                check.name,
                Status.FAIL,
                f"unexpected {type(exc).__name__}: {exc}",
                actual="".join(traceback.format_exception(exc)[-6:]),
            )
        else:
            message = " ".join([check.doc, *(f"[{note}]" for note in context.notes)])
            result = CheckResult(check.node_id, check.name, Status.PASS, message)
        finally:
            context.cleanup()
        result.duration_s = round(time.monotonic() - start, 3)
        self.results[check.node_id] = result
        return result

    def run_all(self, progress: Callable[[Check, CheckResult], None] | None = None) -> Report:
        """Run every selected check, calling ``progress`` after each, and return the report."""
        for check in self.checks:
            if not self.selected(check):
                continue
            result = self.run_check(check)
            if progress:
                progress(check, result)
        return self.report()

    def report(self) -> Report:
        """One result per behaviour of the catalogue from the checks run so far."""
        by_behaviour: dict[str, BehaviourResult] = {}
        for item in behaviours():
            checks = [
                self.results[c.node_id] for c in self.checks if c.behaviour.id == item.id
                if c.node_id in self.results
            ]  # fmt: skip
            if not self.run.claims(item.level):
                status = Status.NA
            elif not any(_selected(c, self.only) for c in self.checks if c.behaviour.id == item.id):
                status = Status.SKIP
            elif any(c.status is Status.FAIL for c in checks):
                status = Status.FAIL
            elif any(c.status is Status.PASS for c in checks):
                status = Status.PASS
            else:
                status = Status.SKIP
            by_behaviour[item.id] = BehaviourResult(
                id=item.id,
                slug=item.slug,
                title=item.title,
                level=item.level.value,
                rule=item.rule,
                status=status,
                checks=checks,
            )
        notes = []
        if self.run.target is None:
            notes.append(
                "the factory is not importable by name: checks that need a second process"
                " fall back to in-process observation"
            )
        return Report(
            target=self.label,
            levels=sorted(level.value for level in self.run.levels),
            levels_source=self.levels_source,
            profile=self.run.profile.name,
            seed=self.run.seed,
            started_at=self.started.isoformat(timespec="seconds"),
            duration_s=round(time.monotonic() - self._clock_start, 2),
            results=by_behaviour,
            notes=notes,
        )


def verify(
    factory_or_target: Callable[..., Any] | str,
    *,
    levels: Iterable[Level | str] | None = None,
    profile: str = "ci",
    seed: int | None = None,
    only: Iterable[str] | None = None,
) -> Report:
    """Verify a backend; ``report.results["B07"].status`` is the verdict for B07.

    ``factory_or_target`` is a factory ``factory(path, *, clock)`` or a TARGET string
    (``module:attr`` or ``path/to/backend.py:attr``). ``only`` restricts the run to some
    behaviours (IDs, slugs or check names), for quick in-process tests.
    """
    with Verification(
        factory_or_target, levels=levels, profile=profile, seed=seed, only=only
    ) as verification:
        return verification.run_all()
