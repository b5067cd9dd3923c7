"""A throwaway ``redis-server`` for the Redis backend's tests (tests/test_backend_redis.py).

It listens on 127.0.0.1 on a free port, keeps its data in a directory of its own and runs with
``--appendonly yes --appendfsync always --save ''``: every acknowledged write is in the AOF,
fsynced, and nothing else is on disk. It can be killed (SIGKILL) and started again on the same
port and directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL = "install it (Debian/Ubuntu: apt-get install redis-server)"


class RedisServerError(RuntimeError):
    """redis-server is missing or did not answer PING."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process at a time, on one port and one data directory."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(f"redis-server is not on PATH: {INSTALL}")
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def launch(cls, directory: Path, attempts: int = 3) -> RedisServer:
        """A started server; another free port when the first was taken meanwhile."""
        server = cls(directory)
        for attempt in range(attempts):
            try:
                server.start()
                return server
            except RedisServerError:
                if attempt == attempts - 1:
                    raise
                server.port = _free_port()
        raise AssertionError("unreachable")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        """Start it (on the same port and directory as before) and wait for PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _pings(self.port):
                return
            time.sleep(0.05)
        self.stop()
        tail = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        raise RedisServerError(f"redis-server on port {self.port} did not answer PING:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; only what is in the AOF survives."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s); nothing when it is not running."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
