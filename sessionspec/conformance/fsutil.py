"""File helpers of the targeted checks: tree snapshots, crafted sessions files, backup names."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sessionspec.conformance.clock import epoch_ms
from sessionspec.conformance.oracle import format_timestamp

BOM = b"\xef\xbb\xbf"


def snapshot_tree(root: Path) -> dict[str, tuple[str, int, bytes | None, int]]:
    """Every entry under ``root`` (root included): kind, mode, content of files, mtime_ns."""
    out: dict[str, tuple[str, int, bytes | None, int]] = {}
    for current, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            full = Path(current) if name == "." else Path(current) / name
            info = full.lstat()
            key = str(full.relative_to(root))
            if stat.S_ISREG(info.st_mode):
                out[key] = ("file", info.st_mode, full.read_bytes(), info.st_mtime_ns)
            else:
                out[key] = ("dir" if stat.S_ISDIR(info.st_mode) else "other", info.st_mode, None, 0)
    return out


def backup_path(path: Path, now: datetime, counter: int = 0) -> Path:
    """``<name>.<epoch-ms>.bak`` or ``<name>.<epoch-ms>.<n>.bak`` (SPEC.md §3.2)."""
    ms = epoch_ms(now)
    suffix = f"{ms}.bak" if counter == 0 else f"{ms}.{counter}.bak"
    return path.with_name(f"{path.name}.{suffix}")


def backups(path: Path) -> list[Path]:
    """Files beside ``path`` named like backups of it."""
    pattern = re.compile(re.escape(path.name) + r"\.[0-9]+(\.[0-9]+)?\.bak\Z")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.match(p.name))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_bytes(path: Path, content: bytes, file_mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, file_mode)


def record(
    session_id: str,
    accessed: datetime,
    *,
    created: datetime | None = None,
    turns: list[dict[str, Any]] | None = None,
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """One session record as a writer emits it."""
    item: dict[str, Any] = {
        "id": session_id,
        "createdAt": format_timestamp(created or accessed - timedelta(minutes=5)),
        "lastAccessedAt": format_timestamp(accessed),
        "turns": turns or [],
    }
    if conversation_id is not None:
        item["codexConversationId"] = conversation_id
    return item


def turn(prompt: str, response: str, moment: datetime) -> dict[str, Any]:
    return {"prompt": prompt, "response": response, "timestamp": format_timestamp(moment)}


def document(sessions: list[Any], **extra: Any) -> bytes:
    return json.dumps({"version": 1, "sessions": sessions, **extra}, indent=2).encode()


def warning_names(messages: list[str], needle: str) -> bool:
    return any(needle in message for message in messages)
