"""pytest plugin of the conformance kit (registered through the ``pytest11`` entry point).

Inert unless ``--sessionspec-backend TARGET`` is given: without the option it collects
nothing, loads nothing and changes no report but those of kit checks run by a
:class:`~sessionspec.conformance.testing.BackendTests` class, so it can stay installed in
every virtual environment. With it, pytest collects the kit like any other tests, under one
collector named after the target::

    sessionspec[TARGET]                  the kit's run of TARGET
      B07-ensure-session                 one collector per behaviour
        touches_existing                 one item per kit check

A check's node id is ``sessionspec[TARGET]::B07-ensure-session::touches_existing``; the kit's
checks count in ``collected N items``, and ``-k B07``, ``-m sessionspec``, ``--deselect``,
``--lf`` and ``-x`` treat them like any test. A node id, or the node id of one behaviour,
given as an argument runs just those checks::

    pytest --sessionspec-backend my_backend:Storage \\
        'sessionspec[my_backend:Storage]::B07-ensure-session::touches_existing'

A check whose level the backend does not claim is skipped (``N/A: level file-v1 not
claimed``). A failed check's ``FAILED`` summary line ends with the first line of why it
failed; its long report adds the expected and actual values, the diff, the shrunk program,
how to replay it, and the behaviour's rule (see :mod:`sessionspec.conformance.testing`, which
renders the kit's checks as tests for both this plugin and ``BackendTests``).

Exit statuses: pytest's own (0 passed, 1 some test failed), except when the run cannot judge
the backend at all -- TARGET does not load (:class:`~sessionspec.conformance.errors.TargetError`),
the levels are neither declared by the factory (``sessionspec_levels``) nor given with
``--sessionspec-level`` (:class:`~sessionspec.conformance.errors.LevelsError`), or the backend
fails the preflight (:class:`~sessionspec.conformance.errors.PreflightError`: constructed on a
fresh path, one call, closed) -- which is a **usage error, exit status 4**, like a path that
does not exist: one ``ERROR: --sessionspec-backend TARGET: ...`` message on stderr, with the
Python traceback only under ``-v``, and no check runs. (``sessionspec verify`` exits with 2 for
the same errors; pytest's 2 means "interrupted".) The preflight runs once, just before the
first test when kit checks were collected and selected, so ``--collect-only`` and a ``-k``
that deselects the kit never construct the backend. A backend call that hangs fails its check
and stops the session (exit status 1); Ctrl-C in a check interrupts it (exit status 2).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import traceback
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sessionspec.conformance.engine import Verification
    from sessionspec.conformance.registry import Check

#: The run's Verification, set at session start when --sessionspec-backend is given.
_VERIFICATION = pytest.StashKey["Verification"]()
#: The node ids (or node id prefixes) of kit checks given as arguments, in order.
_SELECTION = pytest.StashKey[list[str]]()

#: The first part of every node id of the kit: ``sessionspec[TARGET]``.
KIT_PREFIX = "sessionspec["


def kit_node_id(target: str) -> str:
    """The node id of the collector of TARGET's checks: ``sessionspec[TARGET]``; each check's
    node id continues it with ``::B07-ensure-session::touches_existing``."""
    return f"{KIT_PREFIX}{target}]"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``sessionspec`` option group: ``--sessionspec-backend TARGET`` turns the plugin on;
    ``--sessionspec-level``, ``--sessionspec-profile``, ``--sessionspec-seed`` and
    ``--sessionspec-step-timeout`` tune the run as ``--level``, ``--profile``, ``--seed`` and
    ``--step-timeout`` do for ``sessionspec verify``."""
    from sessionspec.conformance.context import PROFILES
    from sessionspec.conformance.watchdog import DEFAULT_STEP_TIMEOUT
    from sessionspec.spec import Level

    group = parser.getgroup("sessionspec", "sessionspec conformance kit")
    group.addoption(
        "--sessionspec-backend",
        metavar="TARGET",
        default=None,
        help="verify this backend factory ('module:attr' or 'path/to/file.py:attr'); "
        "its checks are collected as sessionspec[TARGET]::B07-ensure-session::CHECK",
    )
    group.addoption(
        "--sessionspec-stdio",
        metavar="COMMAND",
        default=None,
        help="verify a backend in any language: start COMMAND and talk the harness protocol"
        " to it (sessionspec/spec/PROTOCOL.md); the same as --sessionspec-backend 'stdio:COMMAND'",
    )
    group.addoption(
        "--sessionspec-level",
        action="append",
        default=None,
        metavar="LEVEL",
        choices=[level.value for level in Level],
        help="claimed level (core, durable, file-v1), overriding sessionspec_levels",
    )
    group.addoption(
        "--sessionspec-profile",
        default="ci",
        choices=sorted(PROFILES),
        help="smoke, ci (default) or thorough",
    )
    group.addoption(
        "--sessionspec-seed", type=int, default=None, metavar="SEED", help="hypothesis seed"
    )
    group.addoption(
        "--sessionspec-step-timeout",
        type=_positive_seconds,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help="the longest one backend call may take before its check fails and the session"
        f" stops (default {DEFAULT_STEP_TIMEOUT:g})",
    )


def _positive_seconds(text: str) -> float:
    """A ``--sessionspec-step-timeout`` value: a positive number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``sessionspec`` marker every kit check carries (``-m sessionspec``), and
    turn ``--sessionspec-stdio COMMAND`` into the TARGET ``stdio:COMMAND``."""
    config.addinivalue_line("markers", "sessionspec: a sessionspec conformance check")
    command = config.getoption("sessionspec_stdio", None)
    if command:
        if config.getoption("sessionspec_backend", None):
            raise pytest.UsageError("give --sessionspec-backend or --sessionspec-stdio, not both")
        from sessionspec.conformance.stdio import STDIO_PREFIX

        config.option.sessionspec_backend = STDIO_PREFIX + command


def _usage_error(config: pytest.Config, target: str, exc: BaseException) -> pytest.UsageError:
    """The kit error ``exc`` as pytest's usage error (exit status 4): its message, and the
    traceback only under ``-v`` (the message already says what to fix)."""
    message = f"--sessionspec-backend {target}: {exc}"
    if config.get_verbosity() > 0:
        message += "\n" + "".join(traceback.format_exception(exc)).rstrip()
    return pytest.UsageError(message)


def _take_kit_arguments(config: pytest.Config, target: str) -> list[str]:
    """Remove the kit's node ids from the arguments (pytest would look for a file named
    ``sessionspec[TARGET]``) and return them."""
    own = kit_node_id(target)
    taken: list[str] = []
    rest: list[str] = []
    for arg in config.args:
        head = arg.split("::", 1)[0]
        if not arg.startswith(KIT_PREFIX) or (config.invocation_params.dir / head).exists():
            rest.append(arg)
        elif head != own:
            raise pytest.UsageError(
                f"{arg}: this run collects the kit's checks as {own}::... "
                f"(--sessionspec-backend {target}), not as {head}"
            )
        else:
            taken.append(arg)
    config.args[:] = rest
    return taken


def _selects(selection: list[str], node_id: str) -> bool:
    """``node_id`` is one of the selected node ids, or lies under one."""
    return any(node_id == key or node_id.startswith(key + "::") for key in selection)


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``--sessionspec-backend TARGET``: load TARGET and resolve its levels, before
    pytest prints its header; a :class:`~sessionspec.conformance.errors.KitError` is a usage
    error (exit status 4). Kit node ids given as arguments become the kit's selection."""
    config = session.config
    target = config.getoption("sessionspec_backend", None)
    if not target:
        return
    from sessionspec.conformance.engine import Verification
    from sessionspec.conformance.errors import KitError

    selection = _take_kit_arguments(config, target)
    try:
        verification = Verification(
            target,
            levels=config.getoption("sessionspec_level"),
            profile=config.getoption("sessionspec_profile"),
            seed=config.getoption("sessionspec_seed"),
            step_timeout=config.getoption("sessionspec_step_timeout"),
        )
    except KitError as exc:
        raise _usage_error(config, target, exc) from None
    config.stash[_VERIFICATION] = verification
    config.stash[_SELECTION] = selection
    own = kit_node_id(target)
    known = [f"{own}::{check.node_id}" for check in verification.checks]
    for key in selection:
        if key != own and not any(_selects([key], node_id) for node_id in known):
            raise pytest.UsageError(f"not found: {key}\n(no check of the kit has this node id)")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """With ``--sessionspec-backend``: the kit's, spec's and vectors' versions
    (:func:`sessionspec.version_line`), then the backend, its levels and the profile; nothing
    otherwise, as the plugin is inert."""
    verification = config.stash.get(_VERIFICATION, None)
    if verification is None:
        return None
    import sessionspec

    levels = ", ".join(sorted(level.value for level in verification.run.levels))
    return [
        sessionspec.version_line(),
        f"sessionspec backend: {verification.label}; levels: {levels}, "
        f"{verification.levels_source}; profile: {verification.run.profile.name}",
    ]


class KitCollector(pytest.Collector):
    """``sessionspec[TARGET]``: the kit's checks of one backend, one collector per behaviour."""

    def __init__(self, *, verification: Verification, selection: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.verification = verification
        self.selection = selection

    def collect(self) -> Iterator[BehaviourCollector]:
        """One :class:`BehaviourCollector` per behaviour with checks (all of them, or those
        the node ids given as arguments select), in the catalogue's order."""
        by_behaviour: dict[str, list[Check]] = {}
        for check in self.verification.checks:
            node_id = f"{self.nodeid}::{check.node_id}"
            if self.selection and not _selects(self.selection, node_id):
                continue
            by_behaviour.setdefault(f"{check.behaviour.id}-{check.behaviour.slug}", []).append(
                check
            )
        for name, checks in by_behaviour.items():
            yield BehaviourCollector.from_parent(self, name=name, checks=checks)


class BehaviourCollector(pytest.Collector):
    """``B07-ensure-session``: the checks of one behaviour, so ``-k B07`` selects them all."""

    def __init__(self, *, checks: list[Check], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checks = checks

    def collect(self) -> Iterator[CheckItem]:
        """One :class:`CheckItem` per check of the behaviour."""
        parent = self.parent
        assert isinstance(parent, KitCollector)
        for check in self.checks:
            yield CheckItem.from_parent(
                self, name=check.name, check=check, verification=parent.verification
            )


class CheckItem(pytest.Item):
    """One kit check as a pytest test, marked ``sessionspec``."""

    def __init__(self, *, check: Check, verification: Verification, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.verification = verification
        self.add_marker(pytest.mark.sessionspec)

    def runtest(self) -> None:
        """Run the check (:func:`sessionspec.conformance.testing.run_as_test`): N/A and
        not-run checks skip with the reason, a failure fails with the kit's explanation."""
        from sessionspec.conformance.testing import run_as_test

        run_as_test(self.verification, self.check, self.session)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the check is reported: ``sessionspec[TARGET]`` (no file: the kit has none in
        the user's tree), and ``B07-ensure-session::touches_existing`` as the title of its
        failure section."""
        return self.path, None, self.check.node_id


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """With ``--sessionspec-backend``: add the ``sessionspec[TARGET]`` collector to what the
    session collects, beside the collectors of the paths given.

    Being collected like any other node (not appended to the items afterwards) is what makes
    ``collected N items``, ``-k``, ``--deselect``, ``--lf`` and ``-x`` count the kit's checks;
    pytest's own cache plugin wraps the session's collect report the same way.
    """
    report = yield
    if isinstance(collector, pytest.Session) and report.passed:
        config = collector.config
        verification = config.stash.get(_VERIFICATION, None)
        if verification is not None:
            target = config.getoption("sessionspec_backend")
            name = kit_node_id(target)
            # An explicit node id: the default would join the session's empty one with "::".
            # The path (no such file) is what reports print as the checks' location, and what
            # --lf files their failures under: sessionspec[TARGET].
            kit = KitCollector.from_parent(
                collector,
                name=name,
                nodeid=name,
                path=config.rootpath / name,
                verification=verification,
                selection=config.stash[_SELECTION],
            )
            report.result.append(kit)
    return report


def _is_kit_test(item: pytest.Item) -> bool:
    """``item`` runs a kit check: a :class:`CheckItem`, or a test of a
    :class:`~sessionspec.conformance.testing.BackendTests` class."""
    if isinstance(item, CheckItem):
        return True
    # No BackendTests class can have been collected unless its module was imported.
    testing = sys.modules.get("sessionspec.conformance.testing")
    return (
        testing is not None
        and isinstance(item, pytest.Function)
        and item.cls is not None
        and issubclass(item.cls, testing.BackendTests)
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The reports of kit checks, whether the plugin's items or a ``BackendTests`` class's:
    a failure as :class:`~sessionspec.conformance.testing.FailureRepr` (its first line in
    the ``FAILED`` summary line), a skip located at the test (``sessionspec[TARGET]``, or the
    test module) rather than at the kit's line that skipped it. Other reports are left alone.
    """
    report = yield
    if call.when != "call" or call.excinfo is None or not _is_kit_test(item):
        return report
    from sessionspec.conformance.testing import FailureRepr

    outcome = call.excinfo.value
    if report.failed and isinstance(outcome, pytest.fail.Exception) and not outcome.pytrace:
        text = outcome.msg or ""
        report.longrepr = FailureRepr(text, item.nodeid, item.config.getoption("tbstyle"))
    elif report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (*_where(item), report.longrepr[2])
    return report


def _where(item: pytest.Item) -> tuple[str, Any]:
    """Where -rs says a kit check was skipped (it folds the skips of one place and reason
    into one line): ``sessionspec[TARGET]`` for the plugin's checks, the ``BackendTests``
    subclass's ``class`` line for a test class's; not the kit's line that skipped them."""
    if isinstance(item, pytest.Function) and item.cls is not None:
        try:
            return str(item.path), inspect.getsourcelines(item.cls)[1]
        except (OSError, TypeError):
            pass
    # No line: pytest's own skip reports have None there too (a skip mark at setup).
    return str(item.path), None


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before the first test: the backend's preflight, once, when kit checks are to run; a
    :class:`~sessionspec.conformance.errors.PreflightError` is a usage error (exit status 4),
    not a failure of every check."""
    verification = session.config.stash.get(_VERIFICATION, None)
    if verification is None or session.config.option.collectonly:
        return
    if not any(isinstance(item, CheckItem) for item in session.items):
        return
    from sessionspec.conformance.errors import KitError

    try:
        verification.preflight()
    except KitError as exc:
        target = session.config.getoption("sessionspec_backend")
        raise _usage_error(session.config, target, exc) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the run's working directory."""
    verification = config.stash.get(_VERIFICATION, None)
    if verification is not None:
        verification.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The versions, then one line per behaviour that ran checks (status, ID, slug, level) and
    the levels, like the header and table of ``sessionspec verify``."""
    verification = config.stash.get(_VERIFICATION, None)
    if verification is None or not verification.results:
        return
    report = verification.report()
    terminalreporter.section(f"sessionspec conformance: {report.target}")
    terminalreporter.write_line(f"versions: {report.versions_text()}")
    for result in report.results.values():
        if result.checks:
            terminalreporter.write_line(
                f"{result.status:<4} {result.id} {result.slug} ({result.level})"
            )
    terminalreporter.write_line(f"levels: {', '.join(report.levels)} ({report.levels_source})")
    if report.stopped is not None:
        terminalreporter.write_line(f"stopped early: {report.stopped}")
    from sessionspec.conformance.report import Status

    for result in report.results.values():
        if result.status in (Status.XFAIL, Status.XPASS):
            terminalreporter.write_line(f"{result.status} {result.id}: {result.expected_failure}")
            if result.status is Status.XPASS:
                terminalreporter.write_line(
                    f"  {result.id} was declared to fail but passed: remove it from the"
                    " expected failures (sessionspec_expected_failures / expectedFailures)"
                )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """An expected failure that passed (XPASS) fails the session: the list cannot rot."""
    verification = session.config.stash.get(_VERIFICATION, None)
    if verification is None or not verification.results:
        return
    from sessionspec.conformance.report import Status

    report = verification.report()
    if any(r.status is Status.XPASS for r in report.results.values()) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
