"""The kit's end of the harness protocol: a backend in any language, as a Python factory.

:class:`StdioFactory` starts an adapter (PROTOCOL.md) as a child process, shakes hands, and is
then a factory like any other: ``factory(path, clock=clock)`` opens an instance in the
adapter and returns a :class:`StdioStorage`, whose methods are requests carrying the kit's
clock. Every check of the kit therefore runs unchanged; the files at the paths are inspected
and the adapter's process traced or killed by the kit itself. A TARGET ``stdio:CMD`` names
it, so checks that start a second process start a second adapter with the same command.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NoReturn, Self

from sessionspec.conformance.errors import TargetError
from sessionspec.conformance.protocol import (
    PROTOCOL_VERSION,
    UNOBSERVABLE_OVER_STDIO,
    ProtocolError,
    error_from_wire,
    id_to_wire,
    message_problem,
    session_from_wire,
    turn_to_wire,
)
from sessionspec.conformance.watchdog import DEFAULT_STEP_TIMEOUT
from sessionspec.spec import (
    SPEC_VERSION,
    UNSET,
    Clock,
    ConversationTurn,
    SessionData,
    Unset,
    format_timestamp,
)

#: A TARGET that starts with this names an adapter command, not a Python factory.
STDIO_PREFIX: Final = "stdio:"
#: How much of the adapter's stderr (its log) the kit keeps, in lines (the last ones), and
#: the longest line it keeps (the rest is cut): an adapter cannot fill the kit's memory.
LOG_LINES: Final = 400
LOG_LINE_BYTES: Final = 4096
#: How long adapters may take to exit once their stdin closed (PROTOCOL.md §1), together.
EXIT_GRACE: Final = 10.0
#: The per-request time limit of adapters started in this process and its children (the kit
#: sets it from ``--step-timeout``; PROTOCOL.md §5).
TIMEOUT_VARIABLE: Final = "SESSIONSPEC_STEP_TIMEOUT"
#: Set to ``inherit``, adapters start in the caller's process group instead of their own: B31's
#: storms and B22's runs are killed as a group, adapter included.
GROUP_VARIABLE: Final = "SESSIONSPEC_STDIO_GROUP"
#: An argv prefix (a JSON list of strings) an adapter is started under, read at each start:
#: B22's injected-error runs start theirs under strace, so that only the adapter is traced.
WRAP_VARIABLE: Final = "SESSIONSPEC_STDIO_WRAP"

#: Where the backend's diagnostics (PROTOCOL.md §2.3) are logged again, in the kit.
ADAPTER_LOGGER: Final = logging.getLogger("sessionspec.adapter")

_live: weakref.WeakSet[AdapterProcess] = weakref.WeakSet()


def end_adapters(adapters: Sequence[AdapterProcess]) -> None:
    """Close every adapter's stdin, then wait for all of them to end as a normal exit does
    (that is when a backend that saves behind saves, B33), within one shared
    :data:`EXIT_GRACE`; kill the process group of those that linger."""
    mine = [adapter for adapter in adapters if adapter.pid_of_kit == os.getpid()]
    for adapter in mine:
        adapter.close_input()
    deadline = time.monotonic() + EXIT_GRACE
    for adapter in mine:
        try:
            adapter.process.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            adapter.kill()
        adapter.dead = adapter.dead or "the adapter was ended"
        _live.discard(adapter)


def _end_adapters_at_exit() -> None:
    end_adapters(list(_live))


def default_timeout() -> float:
    """The per-request limit: :data:`TIMEOUT_VARIABLE` if set (by the kit for its child
    processes), else the kit's default step timeout."""
    try:
        value = float(os.environ.get(TIMEOUT_VARIABLE, ""))
    except ValueError:
        return DEFAULT_STEP_TIMEOUT
    return value if value > 0 else DEFAULT_STEP_TIMEOUT


atexit.register(_end_adapters_at_exit)


class AdapterProcess:
    """One running adapter: its pipes, its stderr log and one request at a time."""

    def __init__(self, argv: Sequence[str], log: collections.deque[str]) -> None:
        self.argv = list(argv)
        self.log = log
        #: Its own process group, killed whole (a wrapper such as ``sh -c``, ``npx`` or strace
        #: leaves no orphan), unless :data:`GROUP_VARIABLE` says to join the caller's.
        self.own_group = os.environ.get(GROUP_VARIABLE) != "inherit"
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0 if self.own_group else None,
            )
        except OSError as exc:
            raise TargetError(f"cannot start the adapter {shlex.join(self.argv)}: {exc}") from exc
        self.pid_of_kit = os.getpid()
        self.dead: str | None = None
        self._next_id = 0
        self._lock = threading.Lock()
        #: Lines of stdout that are not log messages: the responses, in order.
        self._responses: queue.Queue[bytes | None] = queue.Queue()
        for target in (self._drain_stderr, self._read_stdout):
            threading.Thread(target=target, daemon=True).start()
        _live.add(self)

    def _drain_stderr(self) -> None:
        """Keep the adapter's stderr as lines, each cut at :data:`LOG_LINE_BYTES` (a
        progress bar without newlines must not fill the kit's memory)."""
        assert self.process.stderr is not None
        fd, pending = self.process.stderr.fileno(), b""
        while chunk := os.read(fd, 1 << 16):
            *whole, pending = (pending + chunk).split(b"\n")
            for raw in whole:
                self._log_line(raw)
            if len(pending) > LOG_LINE_BYTES:  # a long line: kept in pieces, each cut
                self._log_line(pending[:LOG_LINE_BYTES] + b" [cut]")
                pending = b""
        if pending:
            self._log_line(pending)

    def _log_line(self, raw: bytes) -> None:
        text = raw[:LOG_LINE_BYTES].decode(errors="replace").rstrip()
        self.log.append(f"[pid {self.process.pid}] {text}")

    def _read_stdout(self) -> None:
        """Hand responses to the waiting request; re-log the backend's diagnostics (a
        ``log`` message, written at any time: SPEC.md §5, PROTOCOL.md §2.3) on the logger
        ``sessionspec.adapter``, where the kit's checks see them as they would in-process."""
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if isinstance(message, dict) and set(message) == {"log"}:
                problem = message_problem(message, "log")
                if problem is None:
                    entry = message["log"]
                    level = logging.getLevelName(entry["level"])
                    ADAPTER_LOGGER.log(level, "%s", entry["message"])
                    continue
            self._responses.put(raw)
        self._responses.put(None)

    def tail(self, lines: int = 20) -> str:
        """The last lines of the adapter's stderr."""
        mine = [line for line in self.log if line.startswith(f"[pid {self.process.pid}] ")]
        return "\n".join(mine[-lines:]) or "(nothing on stderr)"

    def request(self, op: str, args: dict[str, Any], now: datetime, timeout: float) -> Any:
        """Send one request and return its ``ok``; raise the error it answered, or
        :class:`ProtocolError` when the adapter hangs, exits or answers nonsense."""
        if os.getpid() != self.pid_of_kit:
            raise ProtocolError(
                "an adapter's pipes cannot be used from a forked copy of the kit (PROTOCOL.md §6)"
            )
        with self._lock:
            if self.dead is not None:
                raise ProtocolError(self.dead)
            self._next_id += 1
            message = {"id": self._next_id, "op": op, "now": format_timestamp(now), "args": args}
            line = json.dumps(message, ensure_ascii=True) + "\n"
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(line.encode("ascii"))
                self.process.stdin.flush()
            except OSError:  # BrokenPipeError: it exited
                self._die(f"the adapter exited before {op} (status {self.process.wait()})")
            response = self._read_response(op, timeout)
        problem: str | None
        if isinstance(response, dict) and set(response) == {"log"}:
            problem = f"a log message that breaks the protocol: {message_problem(response, 'log')}"
        else:
            problem = message_problem(response, "response")
        if problem is None and response["id"] != message["id"]:
            problem = f"answered request {response['id']}, not {message['id']}"
        if problem is not None:
            self._die(f"the adapter's answer to {op} breaks the protocol: {problem}")
        if "error" in response:
            raise error_from_wire(response["error"])
        return response["ok"]

    def _read_response(self, op: str, timeout: float) -> Any:
        try:
            raw = self._responses.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            self._die(f"hung: the adapter did not answer {op} within {timeout:g} s"
                      " (the step timeout); it was killed")  # fmt: skip
        if raw is None:
            status = self.process.wait()
            self._die(f"the adapter exited (status {status}) without answering {op}")
        try:
            return json.loads(raw)
        except ValueError:
            self._die(f"the adapter answered {op} with a line that is not JSON: {raw[:200]!r}")

    def _die(self, why: str) -> NoReturn:
        time.sleep(0.05)  # let the stderr thread catch the adapter's last words
        self.dead = why
        self.kill()  # an adapter that broke the protocol is not waited for
        raise ProtocolError(f"{why}\nthe adapter's stderr, last lines:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the adapter, with its process group when it has its own (a hang, a
        broken protocol, or an adapter that does not end at end of input)."""
        with contextlib.suppress(OSError):
            if self.own_group:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(EXIT_GRACE)
        _live.discard(self)

    def close_input(self) -> None:
        """Close the adapter's stdin: the end of its process (PROTOCOL.md §1)."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()


def wrap_prefix() -> list[str]:
    """The argv prefix :data:`WRAP_VARIABLE` names (none when unset or empty)."""
    raw = os.environ.get(WRAP_VARIABLE, "")
    if not raw:
        return []
    try:
        prefix = json.loads(raw)
    except ValueError:
        prefix = None
    if not isinstance(prefix, list) or not all(isinstance(arg, str) for arg in prefix):
        raise TargetError(f"{WRAP_VARIABLE} must be a JSON list of strings, not {raw!r:.200}")
    return [str(arg) for arg in prefix]


class StdioFactory:
    """A factory whose instances live in an adapter process (PROTOCOL.md).

    Construction starts the adapter and shakes hands: the handshake's ``levels`` and
    ``expectedFailures`` become the factory's ``sessionspec_levels`` and
    ``sessionspec_expected_failures``, as a Python factory declares them. A hung or dead
    adapter is replaced by a new one at the next ``factory(...)`` call; the instances of the
    old one then raise :class:`ProtocolError`.
    """

    #: Behaviours the protocol cannot observe (N/A with the reason, PROTOCOL.md §6).
    sessionspec_unobservable: Final = UNOBSERVABLE_OVER_STDIO
    #: The kit cannot fork a copy of the backend (B33's fork check is N/A).
    sessionspec_over_stdio: Final = True

    def __init__(self, command: str | Sequence[str], *, timeout: float | None = None):
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise TargetError("--stdio needs a command that starts the adapter")
        self.command = command if isinstance(command, str) else shlex.join(self.argv)
        self.timeout = default_timeout() if timeout is None else timeout
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self._adapter: AdapterProcess | None = None
        #: Every adapter this factory started, ended together by :meth:`close`.
        self._started: list[AdapterProcess] = []
        self._instances = 0
        self._lock = threading.Lock()
        hello = self._handshake(self._start())
        self.implementation: dict[str, Any] = hello["implementation"]
        self.sessionspec_levels: list[str] = hello["levels"]
        self.sessionspec_expected_failures: dict[str, str] = hello.get("expectedFailures", {})

    @property
    def sessionspec_target(self) -> str:
        """The TARGET another process loads to reach the same implementation."""
        return STDIO_PREFIX + self.command

    def __repr__(self) -> str:
        return f"StdioFactory({self.command!r})"

    def _start(self) -> AdapterProcess:
        self._adapter = AdapterProcess([*wrap_prefix(), *self.argv], self.log)
        self._started = [a for a in self._started if a.process.poll() is None]
        self._started.append(self._adapter)
        return self._adapter

    def _handshake(self, adapter: AdapterProcess) -> dict[str, Any]:
        now = datetime.now().astimezone()
        args = {"protocol": PROTOCOL_VERSION, "spec": SPEC_VERSION}
        try:
            hello = adapter.request("hello", args, now, self.timeout)
        except (ProtocolError, OSError, RuntimeError, ValueError) as exc:
            adapter.kill()
            raise TargetError(f"the adapter {self.command!r} failed the handshake: {exc}") from exc
        problem = message_problem(hello, "hello-result")
        if problem is not None:
            adapter.kill()
            raise TargetError(
                f"the adapter {self.command!r} answered hello with {hello!r:.300}: {problem}"
                f" (PROTOCOL.md §3.1 wants protocol {PROTOCOL_VERSION})"
            )
        return dict(hello)

    def adapter(self) -> AdapterProcess:
        """The live adapter, started anew (with a handshake) if the last one died."""
        with self._lock:
            adapter = self._adapter
            # A forked copy of the kit (a fork server's child) gets an adapter of its own.
            if adapter is None or adapter.dead is not None or adapter.pid_of_kit != os.getpid():
                self._handshake(self._start())
            assert self._adapter is not None
            return self._adapter

    def __call__(self, path: Path, *, clock: Clock) -> StdioStorage:
        """Open an instance on ``path`` in the adapter (``open``; the constructor's errors,
        such as B12's and B32's OSErrors, are raised here)."""
        adapter = self.adapter()
        with self._lock:
            self._instances += 1
            name = f"s{self._instances}"
        adapter.request("open", {"instance": name, "path": str(path)}, clock(), self.timeout)
        return StdioStorage(adapter, name, clock, self.timeout)

    def close(self) -> None:
        """End every adapter this factory started (end of input, PROTOCOL.md §1)."""
        end_adapters(self._started)

    def log_text(self) -> str:
        """What the adapters wrote on stderr (the last :data:`LOG_LINES` lines)."""
        return "\n".join(self.log)


class StdioStorage:
    """One instance in an adapter: the ``SessionStorage`` interface as requests."""

    def __init__(self, adapter: AdapterProcess, name: str, clock: Clock, timeout: float) -> None:
        self._adapter = adapter
        self._name = name
        self._clock = clock
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"<StdioStorage {self._name} in pid {self._adapter.process.pid}>"

    def _call(self, op: str, **args: Any) -> Any:
        return self._adapter.request(
            op, {"instance": self._name, **args}, self._clock(), self._timeout
        )

    def _expect(self, value: Any, kind: type, op: str) -> Any:
        if not isinstance(value, kind):
            raise ProtocolError(f"{op} answered {value!r:.200}, not {kind}")
        return value

    def create_session(self) -> str:
        """Request ``create_session`` (B01, B17, B18)."""
        return str(self._expect(self._call("create_session"), str, "create_session"))

    def ensure_session(self, session_id: str) -> None:
        """Request ``ensure_session`` (B07, B08)."""
        self._call("ensure_session", sessionId=id_to_wire(session_id))

    def get_session(self, session_id: str) -> SessionData | None:
        """Request ``get_session``; a fresh snapshot of the answer (B23)."""
        value = self._call("get_session", sessionId=id_to_wire(session_id))
        problem = message_problem(value, "session-result")
        if problem is not None:
            raise ProtocolError(f"get_session answered {value!r:.200}: {problem}")
        return None if value is None else session_from_wire(value)

    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        """Request ``update_session``; an UNSET argument is an absent member (B02, B06)."""
        args: dict[str, Any] = {"sessionId": id_to_wire(session_id)}
        if not isinstance(turns, Unset):
            args["turns"] = [turn_to_wire(turn) for turn in turns]
        if not isinstance(codex_conversation_id, Unset):
            args["codexConversationId"] = codex_conversation_id
        self._call("update_session", **args)

    def delete_session(self, session_id: str) -> bool:
        """Request ``delete_session`` (B05)."""
        value = self._call("delete_session", sessionId=id_to_wire(session_id))
        return bool(self._expect(value, bool, "delete_session"))

    def list_sessions(self) -> list[SessionData]:
        """Request ``list_sessions``; fresh snapshots in the adapter's order (B04)."""
        value = self._call("list_sessions")
        problem = message_problem(value, "list-result")
        if problem is not None:
            raise ProtocolError(f"list_sessions answered {value!r:.200}: {problem}")
        return [session_from_wire(item) for item in value]

    def add_turn(self, session_id: str, turn: ConversationTurn) -> None:
        """Request ``add_turn`` (B02)."""
        self._call("add_turn", sessionId=id_to_wire(session_id), turn=turn_to_wire(turn))

    def reset_session(self, session_id: str) -> None:
        """Request ``reset_session`` (B03)."""
        self._call("reset_session", sessionId=id_to_wire(session_id))

    def set_codex_conversation_id(self, session_id: str, conversation_id: str) -> None:
        """Request ``set_codex_conversation_id`` (B06)."""
        self._call(
            "set_codex_conversation_id",
            sessionId=id_to_wire(session_id),
            conversationId=conversation_id,
        )

    def get_codex_conversation_id(self, session_id: str) -> str | None:
        """Request ``get_codex_conversation_id`` (B06, B23)."""
        value = self._call("get_codex_conversation_id", sessionId=id_to_wire(session_id))
        return None if value is None else str(self._expect(value, str, "get_codex_conversation_id"))

    def flush(self) -> None:
        """Request ``flush``: its OSError is raised here (B21, B22)."""
        self._call("flush")

    def close(self) -> None:
        """Request ``close``; a failed close raises and the instance stays open (B22)."""
        self._call("close")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def load_stdio_target(target: str, timeout: float | None = None) -> StdioFactory:
    """The factory a ``stdio:CMD`` TARGET names (``timeout``: see :func:`default_timeout`)."""
    return StdioFactory(target[len(STDIO_PREFIX) :], timeout=timeout)


def is_stdio_target(target: str) -> bool:
    """True for a ``stdio:CMD`` TARGET."""
    return target.startswith(STDIO_PREFIX)


__all__ = [
    "STDIO_PREFIX",
    "AdapterProcess",
    "StdioFactory",
    "StdioStorage",
    "is_stdio_target",
    "load_stdio_target",
]
