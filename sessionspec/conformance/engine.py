"""The one engine behind the CLI, the pytest plugin and ``conformance.verify``.

A run never goes green without checking and never hangs: levels must be declared or given
(:class:`LevelsError`), the backend must survive a preflight (:meth:`Verification.preflight`,
:class:`PreflightError`), every check runs under the watchdog's per-call limit
(:mod:`sessionspec.conformance.watchdog`), and a hung call or Ctrl-C stops the run with a
partial report whose unfinished checks say they did not run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sessionspec.conformance.clock import FakeClock
from sessionspec.conformance.context import PROFILES, CheckContext, RunState, capture_logs
from sessionspec.conformance.diff import structural_diff
from sessionspec.conformance.errors import ExpectedFailuresError, LevelsError, PreflightError
from sessionspec.conformance.loading import load_target, target_for
from sessionspec.conformance.registry import (
    BehaviourViolation,
    Check,
    CheckNotApplicable,
    CheckNotRun,
    PreconditionFailed,
    all_checks,
)
from sessionspec.conformance.report import BehaviourResult, CheckResult, Report, Status, describe
from sessionspec.conformance.stdio import TIMEOUT_VARIABLE, is_stdio_target, load_stdio_target
from sessionspec.conformance.watchdog import DEFAULT_STEP_TIMEOUT, Interrupted, run_bounded
from sessionspec.spec import Level, behaviours, declared_levels

#: Claiming a level implies the levels below it (SPEC.md §2.2).
_IMPLIES = {
    Level.SHARED: {Level.SHARED, Level.DURABLE, Level.CORE},
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
    """The levels to verify and where they came from (for the report).

    Never a silent default: a factory that declares no ``sessionspec_levels`` (a typo in the
    attribute's name looks exactly like that) and no ``override`` is a :class:`LevelsError`.
    """
    if override:
        return expand_levels(override), "given with --level"
    declared = declared_levels(factory)
    if declared is None:
        name = getattr(factory, "__qualname__", None) or repr(factory)
        raise LevelsError(
            f"{name} declares no levels: set sessionspec_levels on the factory, e.g. "
            f"{name}.sessionspec_levels = ('file-v1',) (one of "
            f"{', '.join(level.value for level in Level)}), or give the levels: --level LEVEL"
            " (sessionspec verify), --sessionspec-level LEVEL (pytest), levels= (Python)"
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


def _failed(check: Check, violation: BehaviourViolation) -> CheckResult:
    """A check's FAIL: the violation's message, values, structural diff and replay."""
    diff = violation.diff
    if diff is None and violation.expected is not None and violation.actual is not None:
        diff = structural_diff(violation.expected, violation.actual)
    return CheckResult(
        check.node_id,
        check.name,
        Status.FAIL,
        violation.message,
        expected=describe(violation.expected),
        actual=describe(violation.actual),
        program=violation.program,
        replay=violation.replay,
        diff=diff or None,
        replay_script=violation.replay_script,
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
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
    ) -> None:
        if step_timeout <= 0:
            raise ValueError(f"the step timeout must be positive, got {step_timeout}")
        if isinstance(factory_or_target, str) and is_stdio_target(factory_or_target):
            # The handshake too is bounded by the step timeout (PROTOCOL.md §5).
            factory: Any = load_stdio_target(factory_or_target, timeout=step_timeout)
            target: str | None = factory_or_target
        elif isinstance(factory_or_target, str):
            factory = load_target(factory_or_target)
            target = factory_or_target
        else:
            factory = factory_or_target
            target = target_for(factory)
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
        self._timeout_before = os.environ.get(TIMEOUT_VARIABLE)
        if hasattr(factory, "sessionspec_over_stdio"):
            factory.timeout = step_timeout  # the adapter's per-request limit (PROTOCOL.md §5)
            os.environ[TIMEOUT_VARIABLE] = str(step_timeout)  # and in the kit's children
        resolved, source = resolve_levels(factory, levels)
        #: Behaviours the backend says fail, with why (PROTOCOL.md §4): XFAIL, or XPASS.
        self.expected_failures = expected_failures(factory, resolved)
        #: Behaviours this connection cannot observe, with why (PROTOCOL.md §6): N/A.
        self.unobservable: dict[str, str] = dict(
            getattr(factory, "sessionspec_unobservable", None) or {}
        )
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
        self.step_timeout = step_timeout
        #: Why the run stopped early (a hung call, Ctrl-C); None while it runs normally.
        self.stopped: str | None = None
        self._preflight_done = False
        if self.only:
            unknown = {
                key for key in self.only if not any(_selected(c, {key}) for c in self.checks)
            }
            if unknown:
                self.close()
                raise ValueError(f"--only names no behaviour or check: {sorted(unknown)}")
            if not any(self.applicable(c) for c in self.checks if self.selected(c)):
                levels = sorted(
                    {c.behaviour.level.value for c in self.checks if self.selected(c)}
                    | {c.requires.value for c in self.checks if self.selected(c)}
                )
                self.close()
                raise LevelsError(
                    f"--only {' '.join(sorted(self.only))} selects nothing this backend claims:"
                    f" the selection needs level {' or '.join(levels)}, the backend claims"
                    f" {', '.join(sorted(level.value for level in resolved))} ({source})"
                )

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
        """End a stdio adapter (end of input), remove the run's working directory."""
        end = getattr(self.run.factory, "close", None)
        if hasattr(self.run.factory, "sessionspec_over_stdio") and callable(end):
            end()
            if self._timeout_before is None:
                os.environ.pop(TIMEOUT_VARIABLE, None)
            else:
                os.environ[TIMEOUT_VARIABLE] = self._timeout_before
        shutil.rmtree(self.run.workdir, ignore_errors=True)

    def applicable(self, check: Check) -> bool:
        """The backend claims the check's behaviour level and the level the check requires."""
        return self.run.claims(check.behaviour.level) and self.run.claims(check.requires)

    def selected(self, check: Check) -> bool:
        """The check is among those ``--only`` selects (all when no ``--only``)."""
        return _selected(check, self.only)

    def preflight(self) -> None:
        """Construct the backend once on a fresh path, list its sessions, close it.

        Raises :class:`PreflightError` (exit status 2) with the traceback when any of it
        raises or hangs, so a factory with the wrong signature, an ``__init__`` that raises or
        a backend that cannot open a path is one clear error, not a FAIL in every check.
        Runs once per verification; :meth:`run_all` calls it first.
        """
        if self._preflight_done:
            return
        path = self.run.workdir / "preflight" / "store" / "sessions.json"
        step = ["factory(path, clock=clock)"]

        def attempt() -> None:
            storage = self.run.factory(path, clock=FakeClock())
            step[0] = "list_sessions()"
            storage.list_sessions()
            step[0] = "close()"
            storage.close()

        try:
            with capture_logs():
                _, hang = run_bounded(attempt, self.step_timeout)
        except Interrupted:
            raise KeyboardInterrupt from None
        except Exception as exc:
            trace = "".join(traceback.format_exception(exc))
            raise PreflightError(
                f"preflight: {step[0]} raised {type(exc).__name__}: {exc}\n"
                f"(the kit constructs the backend as factory(path, clock=clock) on a fresh path "
                f"{path}, calls list_sessions() and close() before any check)\n{trace}"
            ) from None
        if hang is not None:
            raise PreflightError(
                f"preflight: {step[0]} did not return within {self.step_timeout:g} s "
                f"(--step-timeout): {hang.where}"
            )
        self._preflight_done = True

    def run_check(self, check: Check) -> CheckResult:
        """Run one check (or mark it N/A, or not run once the run has stopped) under the
        watchdog's per-call limit; results are kept for the report."""
        if not self.applicable(check):
            needed = check.requires if self.run.claims(check.behaviour.level) else None
            why = f"level {(needed or check.behaviour.level).value} not claimed"
            return self._keep(CheckResult(check.node_id, check.name, Status.NA, why))
        if check.behaviour.id in self.unobservable:
            why = self.unobservable[check.behaviour.id]
            return self._keep(CheckResult(check.node_id, check.name, Status.NA, why))
        if self.stopped is not None:
            return self._keep(self._not_run(check))
        context = CheckContext(self.run, check)
        start = time.monotonic()
        machine_before = self.run.cache.get("machine_seconds", 0.0)
        try:
            result, hang = run_bounded(lambda: self._judge(check, context), self.step_timeout)
        except Interrupted:
            self.stopped = f"interrupted (Ctrl-C) during {check.node_id}"
            result = CheckResult(check.node_id, check.name, Status.SKIP, f"not run: {self.stopped}")
        else:
            if hang is not None:
                result = self._hung(check, hang.call, hang.where)
        elapsed = time.monotonic() - start
        # The state machine's time is shown on its own line, not charged to the check that
        # happened to start it.
        elapsed -= self.run.cache.get("machine_seconds", 0.0) - machine_before
        result.duration_s = round(max(elapsed, 0.0), 3)
        return self._keep(result)

    def _keep(self, result: CheckResult) -> CheckResult:
        self.results[result.check] = result
        return result

    def _hung(self, check: Check, call: str, where: str) -> CheckResult:
        """The FAIL of a hung call, charged to the behaviour whose step made it; the run
        stops (the backend may hold its locks forever)."""
        owner = check.behaviour.id
        step = self.run.cache.get("machine_call") if check.name == "state_machine" else None
        if step is not None:
            owner = step[0]
        message = (
            f"hung: {call} did not return within {self.step_timeout:g} s (the step timeout)"
            + (f" in the state machine's step {step[1]}" if step else "")
        )
        self.stopped = f"{call} hung in {check.node_id}"
        if check.name == "state_machine":
            violation = BehaviourViolation(owner, message, actual=where)
            self.run.cache["machine"] = {owner: violation}
            self.run.cache["machine_incomplete"] = self.stopped
            if owner != check.behaviour.id:
                return self._not_run(check)
        return CheckResult(check.node_id, check.name, Status.FAIL, message, actual=where)

    def _not_run(self, check: Check) -> CheckResult:
        """The result of a check the stopped run did not run (or a state machine verdict the
        run found before it stopped)."""
        found = self.run.cache.get("machine", {}) if check.name == "state_machine" else {}
        violation = found.get(check.behaviour.id)
        if violation is not None:
            return _failed(check, violation)
        return CheckResult(check.node_id, check.name, Status.SKIP, f"not run: {self.stopped}")

    def _judge(self, check: Check, context: CheckContext) -> CheckResult:
        """Run the check's function and turn what happened into a result."""
        try:
            # A handler on the root logger for the whole check keeps backend warnings out of
            # the terminal (logging's last-resort handler would print them).
            with capture_logs():
                check.function(context)
        except BehaviourViolation as violation:
            result = _failed(check, violation)
            if violation.behaviour_id != check.behaviour.id:
                # A check only asserts its own behaviour; anything else is a kit bug.
                result.message = f"(raised for {violation.behaviour_id}) {result.message}"
        except PreconditionFailed as unmet:
            result = CheckResult(
                check.node_id,
                check.name,
                Status.SKIP,
                f"not judged: {unmet.behaviour_id} does not hold here ({unmet.message})",
                depends_on=unmet.behaviour_id,
            )
        except CheckNotRun as reason:
            result = CheckResult(check.node_id, check.name, Status.SKIP, f"not run: {reason}")
        except CheckNotApplicable as reason:
            result = CheckResult(check.node_id, check.name, Status.NA, str(reason))
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
        return self._stable(result)

    def _stable(self, result: CheckResult) -> CheckResult:
        """The result with the run's temporary directory named ``<workdir>``, so two runs of
        the same backend report the same text (the directory's name is random)."""
        workdir = str(self.run.workdir)
        for name in ("message", "expected", "actual", "program", "replay_script"):
            value = getattr(result, name)
            if value and workdir in value:
                setattr(result, name, value.replace(workdir, "<workdir>"))
        if result.diff:
            result.diff = [line.replace(workdir, "<workdir>") for line in result.diff]
        return result

    def run_all(self, progress: Callable[[Check, CheckResult], None] | None = None) -> Report:
        """Run the preflight, then every selected check, calling ``progress`` after each, and
        return the report (partial, with ``stopped`` set, after a hung call or Ctrl-C)."""
        self.preflight()
        try:
            for check in self.checks:
                if not self.selected(check):
                    continue
                result = self.run_check(check)
                if progress:
                    progress(check, result)
        except KeyboardInterrupt:  # between checks (within one, run_check catches it)
            self.stopped = self.stopped or "interrupted (Ctrl-C) between checks"
            for check in self.checks:
                if self.selected(check) and check.node_id not in self.results:
                    self.run_check(check)  # N/A or "not run": no backend call once stopped
        return self.report()

    def report(self) -> Report:
        """One result per behaviour of the catalogue from the checks run so far.

        A check that did not judge because a behaviour it needs does not hold
        (``depends_on``) stays "not judged" when that behaviour FAILs; when that behaviour
        does not FAIL, nothing else reports the problem, so the check FAILs itself.
        """
        failing = {
            c.behaviour.id
            for c in self.checks
            if c.node_id in self.results and self.results[c.node_id].status is Status.FAIL
        }
        for result in self.results.values():
            if (
                result.depends_on
                and result.status is Status.SKIP
                and result.depends_on not in failing
            ):
                result.status = Status.FAIL
                result.message = (
                    f"{result.message}; and no check of {result.depends_on} failed, so it is"
                    " reported here"
                )
        by_behaviour: dict[str, BehaviourResult] = {}
        for item in behaviours():
            checks = [
                self.results[c.node_id] for c in self.checks if c.behaviour.id == item.id
                if c.node_id in self.results
            ]  # fmt: skip
            not_applicable = None
            if not self.run.claims(item.level):
                status = Status.NA
            elif not any(_selected(c, self.only) for c in self.checks if c.behaviour.id == item.id):
                status = Status.SKIP
            elif any(c.status is Status.FAIL for c in checks):
                status = Status.FAIL
            elif any(c.status is Status.PASS for c in checks):
                status = Status.PASS
            elif checks and all(c.status is Status.NA for c in checks):
                status = Status.NA
                not_applicable = "; ".join(dict.fromkeys(c.message for c in checks))
            else:
                status = Status.SKIP
            expected = self.expected_failures.get(item.id)
            if expected is not None:
                status = self._declared(item.id, status, checks)
            by_behaviour[item.id] = BehaviourResult(
                id=item.id,
                slug=item.slug,
                title=item.title,
                level=item.level.value,
                rule=item.rule,
                status=status,
                checks=checks,
                expected_failure=expected,
                not_applicable=not_applicable,
            )
        notes = []
        for key in self.expected_failures:
            machine = by_behaviour[key].checks
            if any(c.name == "state_machine" and c.status is Status.FAIL for c in machine):
                notes.append(
                    f"the state machine stopped at its first divergence, in {key}, which is"
                    " declared failing: its verdicts on the other behaviours are not judged"
                    " in this run (their own checks still are)"
                )
        if self.stopped is not None:
            notes.append(f"the run stopped early: {self.stopped}; later checks did not run")
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
            stopped=self.stopped,
            machine_duration_s=round(self.run.cache.get("machine_seconds", 0.0), 2),
            implementation=getattr(self.run.factory, "implementation", None),
            log=self._log(),
        )

    def _declared(self, key: str, status: Status, checks: list[CheckResult]) -> Status:
        """The verdict of a behaviour declared failing (PROTOCOL.md §4): XFAIL when it
        failed, but never for the adapter's own breakage (a hang, a broken protocol: FAIL);
        XPASS only when every check of it ran and passed; else SKIP, not judged."""
        if status is Status.FAIL:
            broken = any(c.status is Status.FAIL and is_breakage(c.message) for c in checks)
            return Status.FAIL if broken else Status.XFAIL
        if status is Status.PASS:
            ran = {c.check: c.status for c in checks}
            own = [c.node_id for c in self.checks if c.behaviour.id == key and self.applicable(c)]
            complete = all(ran.get(node) in (Status.PASS, Status.NA) for node in own)
            return Status.XPASS if complete else Status.SKIP
        return status

    def _log(self) -> str | None:
        """What a stdio adapter wrote on stderr, or None in-process."""
        log_text = getattr(self.run.factory, "log_text", None)
        return (
            log_text() if hasattr(self.run.factory, "sessionspec_over_stdio") and log_text else None
        )


def is_breakage(message: str) -> bool:
    """A check's FAIL message says the adapter itself broke (hung, exited, spoke nonsense:
    a ProtocolError): not the behaviour failing, so never an expected failure."""
    return message.startswith("unexpected ProtocolError")


def expected_failures(factory: object, levels: frozenset[Level]) -> dict[str, str]:
    """The behaviours ``factory`` declares it fails (``sessionspec_expected_failures``, a
    stdio adapter's ``expectedFailures``), with the reasons (PROTOCOL.md §4).

    Raises :class:`ExpectedFailuresError` for an id the catalogue lacks, a behaviour of a
    level not claimed, or a reason that is empty: a declaration must mean something.
    """
    raw = getattr(factory, "sessionspec_expected_failures", None) or {}
    if not isinstance(raw, dict):
        raise ExpectedFailuresError(f"expected failures must map behaviour ids to reasons: {raw!r}")
    known = {item.id: item for item in behaviours()}
    out: dict[str, str] = {}
    for key, reason in raw.items():
        item = known.get(str(key))
        if item is None:
            raise ExpectedFailuresError(
                f"expected failure {key!r} names no behaviour (B01-B{len(known):02d})"
            )
        if item.level not in levels:
            raise ExpectedFailuresError(
                f"expected failure {key} is of level {item.level.value}, which is not claimed"
            )
        if not isinstance(reason, str) or not reason.strip():
            raise ExpectedFailuresError(f"expected failure {key} needs a reason")
        out[item.id] = reason
    return out


def verify(
    factory_or_target: Callable[..., Any] | str,
    *,
    levels: Iterable[Level | str] | None = None,
    profile: str = "ci",
    seed: int | None = None,
    only: Iterable[str] | None = None,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
) -> Report:
    """Verify a backend; ``report.results["B07"].status`` is the verdict for B07.

    ``factory_or_target`` is a factory ``factory(path, *, clock)`` or a TARGET string
    (``module:attr`` or ``path/to/backend.py:attr``). ``only`` restricts the run to some
    behaviours (IDs, slugs or check names), for quick in-process tests. Raises a
    :class:`~sessionspec.conformance.errors.KitError` when the run cannot judge the backend
    (no levels, target or preflight errors); ``step_timeout`` bounds every backend call.
    """
    with Verification(
        factory_or_target,
        levels=levels,
        profile=profile,
        seed=seed,
        only=only,
        step_timeout=step_timeout,
    ) as verification:
        return verification.run_all()
