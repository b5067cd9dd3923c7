"""Reference backends of sessionspec v1.

``FileSessionStorage`` keeps the sessions file of SPEC.md (levels core, durable, file-v1);
``InMemorySessionStorage`` keeps sessions in this process only (level core). Both classes are
kit factories: ``factory(path, *, clock)``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sessionspec.reference.file import DEFAULT_PATH, FileSessionStorage
from sessionspec.reference.memory import InMemorySessionStorage
from sessionspec.spec import Clock, SessionStorage, utc_now

__all__ = [
    "DEFAULT_PATH",
    "FileSessionStorage",
    "InMemorySessionStorage",
    "create_session_storage",
]


def create_session_storage(*, clock: Clock = utc_now) -> SessionStorage:
    """The backend codex-mcp-server would pick from its environment variables.

    ``CODEX_MCP_MEMORY_ONLY=true`` selects the in-memory backend; otherwise the file backend
    at ``CODEX_MCP_SESSION_FILE`` (``~`` expanded) or, when unset or empty, ``DEFAULT_PATH``.
    """
    if os.environ.get("CODEX_MCP_MEMORY_ONLY") == "true":
        return InMemorySessionStorage(clock=clock)
    path = os.environ.get("CODEX_MCP_SESSION_FILE")
    return FileSessionStorage(Path(path).expanduser() if path else None, clock=clock)
