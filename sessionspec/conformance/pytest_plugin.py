"""pytest plugin of the conformance kit (registered through the ``pytest11`` entry point).

Inert unless ``--sessionspec-backend TARGET`` is given; then it adds one test item per kit
check, named after its behaviour (``B07-ensure-session::state_machine``), so ``-k B07`` works.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionspec.conformance.registry import Check
from sessionspec.conformance.report import CheckResult, Status

_KEY = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sessionspec", "sessionspec conformance kit")
    group.addoption(
        "--sessionspec-backend",
        metavar="TARGET",
        default=None,
        help="verify this backend factory ('module:attr' or 'path/to/file.py:attr')",
    )
    group.addoption(
        "--sessionspec-level",
        action="append",
        default=None,
        metavar="LEVEL",
        help="claimed level (core, durable, file-v1), overriding sessionspec_levels",
    )
    group.addoption("--sessionspec-profile", default="ci", help="smoke, ci or thorough")
    group.addoption("--sessionspec-seed", type=int, default=None, help="hypothesis seed")


class ConformanceFailure(Exception):
    def __init__(self, result: CheckResult, rule: str) -> None:
        super().__init__(result.message)
        self.result = result
        self.rule = rule


class ConformanceItem(pytest.Item):
    """One kit check as a pytest test."""

    def __init__(self, *, check: Check, verification: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.verification = verification
        self.add_marker(pytest.mark.sessionspec)

    def runtest(self) -> None:
        result = self.verification.run_check(self.check)
        if result.status is Status.NA:
            pytest.skip(f"N/A: {result.message}")
        if result.status is Status.FAIL:
            raise ConformanceFailure(result, self.check.behaviour.rule)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceFailure):
            from sessionspec.conformance.report import _failure_text

            return f"rule: {excinfo.value.rule}\n{_failure_text(excinfo.value.result)}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sessionspec: a sessionspec conformance check")


def pytest_report_header(config: pytest.Config) -> str | None:
    """With ``--sessionspec-backend``: the kit's, spec's and vectors' versions in pytest's
    header (:func:`sessionspec.version_line`); nothing otherwise, as the plugin is inert."""
    if not config.getoption("sessionspec_backend", None):
        return None
    import sessionspec

    return sessionspec.version_line()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With ``--sessionspec-backend TARGET``: one item per kit check, named after its
    behaviour (``B07-ensure-session::touches_existing``). A TARGET that does not load
    (:func:`~sessionspec.conformance.loading.load_target`) is a usage error, without traceback.
    """
    target = config.getoption("sessionspec_backend", None)
    if not target:
        return
    from sessionspec.conformance.engine import Verification

    try:
        verification = Verification(
            target,
            levels=config.getoption("sessionspec_level"),
            profile=config.getoption("sessionspec_profile"),
            seed=config.getoption("sessionspec_seed"),
        )
    except ValueError as exc:  # TargetError included: a usage error, not an internal error
        raise pytest.UsageError(f"--sessionspec-backend {target}: {exc}") from None
    config.stash[_KEY] = verification
    for check in verification.checks:
        items.append(
            ConformanceItem.from_parent(
                session, name=check.node_id, check=check, verification=verification
            )
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    verification = config.stash.get(_KEY, None)
    if verification is not None:
        verification.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The versions, then one line per behaviour that ran checks (status, ID, slug, level) and
    the levels, like the header and table of ``sessionspec verify``."""
    verification = config.stash.get(_KEY, None)
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
