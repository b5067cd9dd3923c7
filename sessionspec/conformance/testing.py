"""The conformance kit as a test class of the backend's own test suite.

For backend authors who would rather keep the kit in their tests than pass
``--sessionspec-backend``: subclass :class:`BackendTests` in a test module, set the factory,
and pytest collects one test per kit check (no option, no plugin needed)::

    # tests/test_conformance.py
    from sessionspec.conformance.testing import BackendTests

    from my_package import MyStorage


    class TestMyStorage(BackendTests):
        factory = staticmethod(MyStorage)  # called as factory(path, *, clock)
        levels = ("file-v1",)  # optional when MyStorage declares sessionspec_levels
        profile = "ci"  # smoke, ci or thorough

Each test is named after its check's behaviour,
``test_conformance[B07-ensure-session::touches_existing]``, so ``pytest -k B07`` runs the
checks of B07 and that node id reruns one check. A check of a level the backend does not claim
is skipped with the reason (``N/A: level file-v1 not claimed``); a failed check fails with the
kit's explanation (the first line is why, then the expected and actual values, the diff, the
shrunk program, how to replay it, and the behaviour's rule), as in the pytest plugin. (The
plugin, installed with the package, also makes the ``FAILED`` summary line end with just that
first line; under ``-p no:sessionspec`` pytest shows ``Failed: <first line>`` there instead.)

The class is prepared when pytest collects it: the levels are resolved and the backend is
constructed once on a fresh path, called once and closed (the preflight). When that cannot be
done -- no ``factory``, no levels (neither ``levels`` nor the factory's
``sessionspec_levels``), or a backend that fails the preflight -- the class is one collection
error whose message says why (the traceback only under ``-v``), and pytest exits with status
2, as ``sessionspec verify`` does for the same errors. The checks of one class share one
verification (one working directory, one state machine run), available to the class's own
tests as the ``sessionspec_verification`` fixture.

:func:`run_as_test` and :func:`failure_text` also render the checks of the pytest plugin
(:mod:`sessionspec.conformance.pytest_plugin`).
"""

from __future__ import annotations

import textwrap
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

# Private to pytest, but the base class of every report representation (its doctest
# plugin's too): pytest reads the summary line's message from a TerminalRepr's reprcrash.
from _pytest._code.code import TerminalRepr
from _pytest._io import TerminalWriter

from sessionspec.conformance import report
from sessionspec.conformance.engine import Verification, is_breakage
from sessionspec.conformance.errors import KitError
from sessionspec.conformance.registry import Check
from sessionspec.conformance.report import CheckResult, Status
from sessionspec.conformance.watchdog import DEFAULT_STEP_TIMEOUT

__all__ = ["BackendTests", "FailureRepr", "failure_text", "run_as_test"]

#: The verification of each BackendTests subclass of the session, made at collection.
_VERIFICATIONS = pytest.StashKey[dict[type, Verification]]()
#: The width the rule is wrapped to in a failure's long report.
RULE_WIDTH = 88


def failure_text(result: CheckResult, check: Check) -> str:
    """The long report of a failed check: why it failed on the first line (the line pytest's
    ``FAILED`` summary shows), then what the kit's reports add (expected and actual values,
    diff, shrunk program, how to replay), what the check does, and the behaviour's rule."""
    behaviour = check.behaviour
    parts = [report.failure_text(result).strip()]
    if check.doc:
        parts.append(f"check: {check.doc}")
    rule = textwrap.fill(
        behaviour.rule, width=RULE_WIDTH, initial_indent="    ", subsequent_indent="    "
    )
    parts.append(f"rule of {behaviour.id} {behaviour.slug} ({behaviour.level.value}):\n{rule}")
    return "\n\n".join(parts)


@dataclass(frozen=True)
class FailureLine:
    """The line pytest's summary shows for a failed check (``reprcrash`` of a report)."""

    path: str
    lineno: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class FailureRepr(TerminalRepr):
    """A failed check as pytest reports it: :func:`failure_text` in the long report, its first
    line as the ``reprcrash`` message the ``FAILED`` summary line shows (even on CI, where
    pytest shows the whole of a plain-text report there). With ``tbstyle`` ``line``
    (``--tb=line``) the long report is that one line, which pytest prints itself."""

    def __init__(self, text: str, where: str, tbstyle: str = "auto") -> None:
        self.text = text
        self.tbstyle = tbstyle
        self.reprcrash = FailureLine(where, None, text.split("\n", 1)[0])

    def toterminal(self, tw: TerminalWriter) -> None:
        """Write the long report, line by line, to pytest's terminal writer ``tw``."""
        if self.tbstyle == "line":
            return
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def run_as_test(verification: Verification, check: Check, session: pytest.Session) -> None:
    """Run one kit check inside a pytest test and end the test as the result says.

    PASS returns; N/A skips with ``N/A: <why>`` and a check that did not run (SKIP) skips with
    its reason; a FAIL of a behaviour the backend declared failing is an xfail (PROTOCOL.md
    §4; a behaviour that passes anyway fails the session, ``pytest_sessionfinish``); FAIL
    fails with :func:`failure_text` and no Python traceback (the kit's frames
    say nothing about the backend). When the check stopped the run -- a backend call hung, or
    Ctrl-C -- the session stops after this test: a hang as a failure (exit status 1), Ctrl-C
    as an interruption (exit status 2), since the kit runs no further check after either.
    """
    stopped_before = verification.stopped
    result = verification.run_check(check)
    if verification.stopped is not None and stopped_before is None:
        reason = f"sessionspec: {verification.stopped}"
        if result.status is Status.FAIL:
            session.shouldfail = reason
        else:
            session.shouldstop = reason
    if result.status is Status.NA:
        pytest.skip(f"N/A: {result.message}")
    if result.status is Status.SKIP:
        pytest.skip(result.message or "not run")
    expected = verification.expected_failures.get(check.behaviour.id)
    if result.status is Status.FAIL and expected is not None and not is_breakage(result.message):
        pytest.xfail(f"XFAIL ({expected}): {result.message.splitlines()[0][:200]}")
    if result.status is Status.FAIL:
        pytest.fail(failure_text(result, check), pytrace=False)


def _kit_error(
    config: pytest.Config, where: str, exc: BaseException
) -> pytest.Collector.CollectError:
    """``exc`` as a collection error of the class: the message, with the Python traceback only
    under ``-v`` (pytest shows a CollectError's message without a traceback)."""
    message = f"{where}: {exc}"
    if config.get_verbosity() > 0:
        message += "\n" + "".join(traceback.format_exception(exc)).rstrip()
    return pytest.Collector.CollectError(message)


def _verification(cls: type[BackendTests], config: pytest.Config) -> Verification:
    """The class's verification, made (and preflighted) the first time it is asked for and
    closed when the session ends."""
    made = config.stash.setdefault(_VERIFICATIONS, {})
    if cls in made:
        return made[cls]
    where = cls.__qualname__
    factory = getattr(cls, "factory", None)
    if factory is None or not callable(factory):
        raise pytest.Collector.CollectError(
            f"{where}: set the backend factory, e.g. factory = staticmethod(MyStorage) "
            "(called as factory(path, *, clock))"
        )
    # levels = "file-v1" is one level, not the levels "f", "i", "l", ...
    levels = (cls.levels,) if isinstance(cls.levels, str) else cls.levels
    try:
        verification = Verification(
            factory,
            levels=levels,
            profile=cls.profile,
            seed=cls.seed,
            step_timeout=cls.step_timeout,
        )
    except KitError as exc:
        raise _kit_error(config, where, exc) from None
    except ValueError as exc:  # an unknown level or profile, a step timeout <= 0
        raise pytest.Collector.CollectError(f"{where}: {exc}") from None
    config.add_cleanup(verification.close)
    try:
        verification.preflight()
    except KitError as exc:
        raise _kit_error(config, where, exc) from None
    made[cls] = verification
    return verification


class BackendTests:
    """One test per kit check of ``factory``'s backend (see the module's docstring).

    Class attributes: ``factory`` (required; ``staticmethod(MyStorage)`` or any callable
    ``factory(path, *, clock)``), ``levels`` (the claimed levels, default: the factory's
    ``sessionspec_levels``), ``profile`` (``smoke``, ``ci`` or ``thorough``; default ``ci``),
    ``seed`` (hypothesis's seed; default random) and ``step_timeout`` (the seconds one backend
    call may take before its check fails and the session stops).
    """

    factory: ClassVar[Callable[..., Any]]
    levels: ClassVar[Iterable[str] | None] = None
    profile: ClassVar[str] = "ci"
    seed: ClassVar[int | None] = None
    step_timeout: ClassVar[float] = DEFAULT_STEP_TIMEOUT

    # The base class is not a test class of its own (a ``python_classes = *Tests`` setting
    # would otherwise collect it, with no factory); every subclass is, unless it says not.
    __test__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One :meth:`test_conformance` per kit check, its id the check's name
        (``B07-ensure-session::touches_existing``)."""
        if "sessionspec_check" not in metafunc.fixturenames or metafunc.cls is None:
            return
        verification = _verification(metafunc.cls, metafunc.config)
        metafunc.parametrize(
            "sessionspec_check",
            verification.checks,
            ids=[check.node_id for check in verification.checks],
        )

    @pytest.fixture
    def sessionspec_verification(self, request: pytest.FixtureRequest) -> Verification:
        """The verification the class's checks share (``.report()`` is its report so far);
        made once per class at collection, so this fixture only looks it up."""
        assert request.cls is not None
        return _verification(request.cls, request.config)

    def test_conformance(
        self,
        sessionspec_check: Check,
        sessionspec_verification: Verification,
        request: pytest.FixtureRequest,
    ) -> None:
        """The kit check ``sessionspec_check`` passes on the backend, or is N/A for it."""
        run_as_test(sessionspec_verification, sessionspec_check, request.session)
