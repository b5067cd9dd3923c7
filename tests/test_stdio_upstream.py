"""The kit over stdio on the published codex-mcp-server@1.4.10 (adapters/node/upstream).

The adapter declares what upstream fails (expected failures, PROTOCOL.md §4). These tests keep
that declaration true in both directions: with it, the gate is green and every declared
behaviour is an XFAIL, none an XPASS; without it (SESSIONSPEC_UPSTREAM_NO_XFAIL=1), exactly
those behaviours FAIL. The smoke profile keeps the two runs cheap; the ci profile's verdicts
are in docs/upstream-report.md (adapters/upstream_report.py).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sessionspec.conformance.engine import Verification
from sessionspec.conformance.report import Report, Status
from sessionspec.conformance.stdio import STDIO_PREFIX

ROOT = Path(__file__).resolve().parent.parent
ADAPTER_DIR = ROOT / "adapters" / "node" / "upstream"
sys.path.insert(0, str(ROOT / "adapters"))

import node_install  # noqa: E402  (adapters/ is scripts, not a package)

NO_XFAIL = "SESSIONSPEC_UPSTREAM_NO_XFAIL"
# One xdist worker (make test: --dist loadgroup) runs both tests: one install, one declared run.
pytestmark = pytest.mark.xdist_group("upstream-adapter")


@pytest.fixture(scope="module")
def command() -> str:
    """The adapter's command line; npm ci runs once per lock file, on the first use."""
    try:
        node = node_install.require_node()
    except node_install.NodeMissingError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the upstream adapter: {exc}")
        pytest.skip(str(exc))
    modules = node_install.ensure_node_modules(ADAPTER_DIR)
    return shlex.join([node, str(ADAPTER_DIR / "adapter.mjs"), "--modules", str(modules)])


@pytest.fixture(scope="module")
def handshake(command: str) -> dict[str, Any]:
    """The adapter's own answer to hello, read without the kit."""
    hello = {"id": 0, "op": "hello", "now": "2026-11-27T10:00:00.000Z"}
    hello["args"] = {"protocol": 1, "spec": "1.3"}
    done = subprocess.run(
        shlex.split(command), input=json.dumps(hello) + "\n", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)["ok"]
    return answer


def _verify(command: str) -> Report:
    with Verification(STDIO_PREFIX + command, levels=["core"], profile="smoke") as verification:
        return verification.run_all()


@pytest.fixture(scope="module")
def declared(command: str) -> Report:
    return _verify(command)


@pytest.fixture(scope="module")
def undeclared(command: str) -> Report:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(NO_XFAIL, "1")  # the adapter, a child process, inherits it
        return _verify(command)


def _by_status(report: Report, status: Status) -> dict[str, str | None]:
    return {r.id: r.expected_failure for r in report.results.values() if r.status is status}


def test_declared_failures_are_xfail_and_the_gate_is_green(
    handshake: dict[str, Any], declared: Report
) -> None:
    assert declared.implementation is not None
    assert declared.implementation["name"] == "codex-mcp-server InMemorySessionStorage"
    assert declared.implementation["version"] == "1.4.10"
    expected = handshake["expectedFailures"]
    assert expected, "the adapter declares upstream's known failures"
    # Every declared behaviour is an XFAIL carrying the declared reason, and nothing else is.
    assert _by_status(declared, Status.XFAIL) == expected
    assert _by_status(declared, Status.XPASS) == {}, "a declared failure passes: update it"
    assert _by_status(declared, Status.FAIL) == {}
    assert declared.ok, declared.counts()


def test_without_the_declaration_exactly_those_fail(
    handshake: dict[str, Any], undeclared: Report
) -> None:
    assert undeclared.implementation is not None
    assert set(_by_status(undeclared, Status.FAIL)) == set(handshake["expectedFailures"])
    assert _by_status(undeclared, Status.XFAIL) == {}
    assert not undeclared.ok
