"""The harness protocol (PROTOCOL.md): the kit reaches a backend through an adapter process.

The Python adapter serves in-process factories over stdio, so the reference and seeded
faults get their verdicts through the protocol and are compared with in-process runs. Broken
adapters (one that hangs, one that answers nonsense, one of another protocol) are real child
processes. Expected failures (XFAIL/XPASS) are checked in-process, where they are cheap.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
from xml.etree import ElementTree

import pytest

from sessionspec.conformance.engine import verify
from sessionspec.conformance.errors import ExpectedFailuresError, TargetError
from sessionspec.conformance.protocol import ProtocolError, message_problem
from sessionspec.conformance.report import Status, validate_report
from sessionspec.conformance.stdio import StdioFactory
from sessionspec.reference import FileSessionStorage, InMemorySessionStorage
from sessionspec.spec import ValidationError
from tests.faults.core import NonStrTypeError, Uuid1Ids
from tests.faults.crash import DeadWritersTempsStay
from tests.faults.files import MoveAsideNotWarned

pytest_plugins = ("pytester",)

REFERENCE = "sessionspec.reference:FileSessionStorage"
MOMENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def serve(target: str) -> str:
    """The command that serves ``target`` over stdio with the Python adapter."""
    return shlex.join([sys.executable, "-m", "sessionspec.conformance.stdio_server", target])


def test_reference_over_stdio_gets_the_in_process_verdicts() -> None:
    """The same backend, in-process and through the protocol: the same verdict for every
    behaviour, except those PROTOCOL.md §6 says stdio cannot observe (N/A, with why)."""
    in_process = verify(FileSessionStorage, profile="smoke")
    over_stdio = verify("stdio:" + serve(REFERENCE), profile="smoke")
    assert in_process.ok, in_process.counts()
    assert over_stdio.ok, over_stdio.counts()
    assert over_stdio.implementation is not None
    assert over_stdio.implementation["language"] == "python"
    differ = {
        key: (result.status, over_stdio.results[key].status)
        for key, result in in_process.results.items()
        if result.status != over_stdio.results[key].status
    }
    assert differ == {"B24": (Status.PASS, Status.NA)}
    assert "serialisation" in (over_stdio.results["B24"].not_applicable or "")
    # The part of B33 stdio cannot reach is an N/A check inside a judged behaviour.
    na_checks = {
        check.name
        for key in ("B22", "B33")
        for check in over_stdio.results[key].checks
        if check.status is Status.NA
    }
    assert na_checks == {"forked_child_saves_or_refuses"}
    # B22's injected EIO runs over stdio (the adapter alone under strace), with the in-process
    # verdicts at all four sites: the reference writes its temp file with writev, which its
    # adapter does not use for the responses (a shared write site would be SKIP: §6).
    eio = {c.name: c.status for c in over_stdio.results["B22"].checks if c.name.startswith("eio_")}
    eio_in_process = {
        c.name: c.status for c in in_process.results["B22"].checks if c.name.startswith("eio_")
    }
    assert len(eio) == 4 and eio == eio_in_process
    crash = over_stdio.results["B31"].checks
    assert [c.status for c in crash] == [Status.PASS]


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (Uuid1Ids, "B01-create-session::fresh_uuid4_each_time"),
        (NonStrTypeError, "B08-session-id-grammar::rejects_grammar_edges"),
        (MoveAsideNotWarned, "B13-corrupt-file-backup::moved_aside_not_json"),
        (DeadWritersTempsStay, "B31-crash-safe::sigkill_mid_save_storm"),
    ],
    ids=["core", "error-kind", "diagnostics", "kills-reach-the-adapter"],
)
def test_faults_over_stdio_fail_their_behaviour(fault: type, check: str) -> None:
    """A seeded fault served over stdio fails the check that catches it in-process: the
    protocol carries return values, error kinds (a TypeError is not a ValidationError) and
    the backend's WARNINGs (B13 wants one naming the backup); B31's kills land in the
    adapter's process (its temp files stay), not only in the kit's child that drives it.
    (One check each, not the whole behaviour: the state machine over stdio is CI time.)"""
    target = f"{fault.__module__}:{fault.__qualname__}"
    report = verify("stdio:" + serve(target), profile="smoke", only=[check])
    behaviour = check[:3]
    assert [c.status for c in report.results[behaviour].checks] == [Status.FAIL]
    assert report.results[behaviour].status is Status.FAIL
    assert not report.ok


def test_every_message_of_a_run_validates(tmp_path: Path) -> None:
    """Every request the kit sends and every line the Python adapter answers (responses and
    diagnostics) validate against protocol.schema.json; ids that are not strings travel."""
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    command = f"sh -c {shlex.quote(f'tee {requests} | {serve(REFERENCE)} | tee {answers}')}"
    only = [
        "B01-create-session::fresh_uuid4_each_time",
        "B08-session-id-grammar::rejects_grammar_edges",
        "B13-corrupt-file-backup::moved_aside_not_json",
    ]
    report = verify("stdio:" + command, profile="smoke", only=only)
    assert report.ok, report.counts()
    sent = [json.loads(line) for line in requests.read_text().splitlines()]
    got = [json.loads(line) for line in answers.read_text().splitlines()]
    assert {message["op"] for message in sent} >= {"hello", "open", "ensure_session", "close"}
    assert any(not isinstance(m["args"].get("sessionId", ""), str) for m in sent)
    assert any("log" in message for message in got)
    for message in sent:
        assert message_problem(message, "request") is None, message
    for message in got:
        assert message_problem(message, "log" if "log" in message else "response") is None


# -- broken adapters ------------------------------------------------------------------------
def _adapter(tmp_path: Path, body: str) -> str:
    """A command running a small Python adapter whose loop is ``body`` (``hello`` answered
    correctly unless ``body`` says otherwise)."""
    script = tmp_path / "adapter.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, time
            def answer(request, **member):
                print(json.dumps({"id": request["id"], **member}), flush=True)
            HELLO = {"protocol": 1, "levels": ["core"], "implementation":
                     {"name": "broken", "version": "0", "language": "python"}}
            for line in sys.stdin:
                request = json.loads(line)
                if request["op"] == "hello" and "HELLO" not in BODY:
                    answer(request, ok=HELLO)
                    continue
            """
        ).replace("BODY", repr(body))
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return shlex.join([sys.executable, str(script)])


def test_an_adapter_that_hangs_is_killed_at_the_time_limit(tmp_path: Path) -> None:
    command = _adapter(tmp_path, "print('stuck', file=sys.stderr, flush=True); time.sleep(60)")
    factory = StdioFactory(command, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ProtocolError, match=r"hung: .* open within 1 s") as caught:
        factory(tmp_path / "sessions.json", clock=lambda: MOMENT)
    assert time.monotonic() - started < 10
    assert "stuck" in str(caught.value)  # the adapter's stderr is quoted
    adapter = factory.adapter()  # a new adapter replaces the killed one
    assert adapter.dead is None
    factory.close()


def test_an_adapter_that_answers_nonsense_breaks_the_protocol(tmp_path: Path) -> None:
    command = _adapter(tmp_path, "print('hello there', flush=True)")
    factory = StdioFactory(command)
    with pytest.raises(ProtocolError, match="not JSON: b'hello there"):
        factory(tmp_path / "sessions.json", clock=lambda: MOMENT)
    factory.close()


def test_an_adapter_that_exits_is_reported(tmp_path: Path) -> None:
    command = _adapter(tmp_path, "sys.exit(3)")
    factory = StdioFactory(command)
    with pytest.raises(ProtocolError, match=r"exited \(status 3\) without answering open"):
        factory(tmp_path / "sessions.json", clock=lambda: MOMENT)


def test_another_protocol_version_is_refused_at_the_handshake(tmp_path: Path) -> None:
    command = _adapter(tmp_path, "answer(request, ok=dict(HELLO, protocol=2))")
    with pytest.raises(TargetError, match="answered hello"):
        StdioFactory(command)


def test_a_wrapped_adapter_leaves_no_process_behind(tmp_path: Path) -> None:
    """The adapter's whole process group is killed: a wrapper (sh -c) leaves no orphan."""
    inner = _adapter(tmp_path, "time.sleep(60)")
    factory = StdioFactory(f"sh -c {shlex.quote(inner + '; exit 0')}", timeout=1.0)
    with pytest.raises(ProtocolError, match="hung"):
        factory(tmp_path / "sessions.json", clock=lambda: MOMENT)
    time.sleep(0.2)
    alive = subprocess.run(["pgrep", "-f", str(tmp_path / "adapter.py")], capture_output=True)
    assert alive.stdout == b"", "the adapter outlived the kill of its wrapper"


def test_the_handshake_has_the_step_timeout(tmp_path: Path) -> None:
    command = _adapter(tmp_path, "time.sleep(3); answer(request, ok=HELLO)")
    started = time.monotonic()
    with pytest.raises(TargetError, match="did not answer hello within 1 s"):
        verify("stdio:" + command, step_timeout=1.0, only=["B01"])
    assert time.monotonic() - started < 3


def test_a_malformed_log_message_is_named(tmp_path: Path) -> None:
    body = "print(json.dumps({'log': {'level': 'WARN', 'message': 'x'}}), flush=True)"
    factory = StdioFactory(_adapter(tmp_path, body))
    with pytest.raises(ProtocolError, match="a log message that breaks the protocol"):
        factory(tmp_path / "sessions.json", clock=lambda: MOMENT)


def test_stderr_without_newlines_is_kept_bounded(tmp_path: Path) -> None:
    body = "sys.stderr.write('x' * 3_000_000); sys.stderr.flush(); answer(request, ok=None)"
    factory = StdioFactory(_adapter(tmp_path, body))
    factory(tmp_path / "sessions.json", clock=lambda: MOMENT)
    time.sleep(0.3)
    assert 4096 < len(factory.log_text()) < 2_000_000
    factory.close()


def test_a_missing_command_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="cannot start the adapter"):
        StdioFactory("/nonexistent/adapter --flag")


def test_errors_keep_their_kind_over_stdio(tmp_path: Path) -> None:
    """ValidationError stays a ValidationError; an OSError keeps its errno (ENOTDIR here:
    the path's directory is a regular file)."""
    factory = StdioFactory(serve(REFERENCE))
    storage = factory(tmp_path / "a" / "sessions.json", clock=lambda: MOMENT)
    with pytest.raises(ValidationError, match="session ID must be"):
        storage.ensure_session("not valid!")
    storage.close()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        factory(tmp_path / "file" / "sessions.json", clock=lambda: MOMENT)
    factory.close()


# -- expected failures ----------------------------------------------------------------------
class DeclaredUuid1Ids(Uuid1Ids):
    sessionspec_expected_failures: ClassVar = {"B01": "ids are UUID1 (a known bug, issue 1)"}


class DeclaredReference(InMemorySessionStorage):
    sessionspec_expected_failures: ClassVar = {"B01": "stale: this passes"}


def test_a_declared_failure_is_xfail_and_keeps_the_gate_green() -> None:
    report = verify(DeclaredUuid1Ids, profile="smoke", only=["B01", "B02"])
    assert report.results["B01"].status is Status.XFAIL
    assert report.results["B01"].expected_failure == "ids are UUID1 (a known bug, issue 1)"
    assert report.results["B02"].status is Status.PASS
    assert report.ok and report.exit_code == 0
    data = report.to_dict()
    validate_report(data)
    assert data["counts"]["XFAIL"] == 1
    junit = ElementTree.fromstring(report.to_junit())
    assert junit.get("failures") == "0"
    assert "XFAIL" in (junit.find(".//skipped").get("message") or "")  # type: ignore[union-attr]
    assert "XFAIL: ids are UUID1" in report.to_markdown()


def test_a_declared_failure_partly_checked_is_not_judged() -> None:
    """Only one of B01's checks selected: it passes, yet B01 is not an XPASS (the other
    check might fail); SKIP, and the gate stays green."""
    report = verify(
        DeclaredReference, profile="smoke", only=["B01-create-session::fresh_uuid4_each_time"]
    )
    assert report.results["B01"].status is Status.SKIP
    assert report.ok


def test_an_adapter_that_hangs_is_a_fail_even_when_declared(tmp_path: Path) -> None:
    """A declared behaviour whose check hangs the adapter is a FAIL, not an XFAIL: the
    adapter's breakage is never the expected failure."""
    script = tmp_path / "hangs.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from sessionspec.conformance import stdio_server
            class Hangs(stdio_server.Adapter):
                def hello(self, args):
                    return dict(super().hello(args), expectedFailures={"B01": "ids are odd"})
                def call(self, op, args):
                    if op == "create_session":
                        time.sleep(60)
                    return super().call(op, args)
            stdio_server.Adapter = Hangs
            stdio_server.main(["sessionspec.reference:InMemorySessionStorage"])
            """
        )
    )
    command = shlex.join([sys.executable, str(script)])
    only = ["B01-create-session::fresh_uuid4_each_time"]
    report = verify("stdio:" + command, profile="smoke", only=only, step_timeout=1.0)
    assert report.results["B01"].status is Status.FAIL
    assert not report.ok


def test_a_declared_failure_that_passes_is_xpass_and_fails_the_gate() -> None:
    report = verify(DeclaredReference, profile="smoke", only=["B01"])
    assert report.results["B01"].status is Status.XPASS
    assert not report.ok and report.exit_code == 1
    validate_report(report.to_dict())


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"B99": "x"}, "names no behaviour"),
        ({"B25": "x"}, "level shared, which is not claimed"),
        ({"B01": " "}, "needs a reason"),
    ],
)
def test_a_bad_declaration_is_an_error_before_any_check(
    declared: dict[str, str], message: str
) -> None:
    factory = type("Declared", (InMemorySessionStorage,), {})
    factory.sessionspec_expected_failures = declared  # type: ignore[attr-defined]
    with pytest.raises(ExpectedFailuresError, match=message):
        verify(factory, profile="smoke", only=["B01"])


# -- command line and pytest plugin ---------------------------------------------------------
def test_cli_verifies_over_stdio_and_shows_the_implementation() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionspec", "verify", "--stdio", serve(REFERENCE),
         "--profile", "smoke", "--only", "B02", "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "implementation: sessionspec.reference:FileSessionStorage" in done.stdout
    both = subprocess.run(
        [sys.executable, "-m", "sessionspec", "verify", REFERENCE, "--stdio", serve(REFERENCE)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert both.returncode == 2
    assert "not both" in both.stdout + both.stderr


def test_pytest_plugin_verifies_over_stdio(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--sessionspec-stdio", serve(REFERENCE),
        "--sessionspec-profile", "smoke", "-k", "appends_in_order_and_touches",
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0 and "failed" not in outcomes, outcomes
    assert result.ret == 0
    assert outcomes["passed"] == 1, outcomes
    result.stdout.fnmatch_lines(["*B02 add-turn (core)*"])
