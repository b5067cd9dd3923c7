"""One check per file vector of the manifest (``sessionspec/spec/vectors/``), attributed to its
behaviour.

Each vector's bytes are written to the sessions path, the clock is set to the vector's
``now``, the backend is opened, and the manifest's ``expect`` is checked.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sessionspec.conformance.context import CheckContext, capture_logs
from sessionspec.conformance.fsutil import backup_path, backups, write_bytes
from sessionspec.conformance.registry import Check, make_check, provider
from sessionspec.spec import Level, parse_timestamp


@cache
def manifest() -> tuple[Path, dict[str, Any]] | None:
    """The manifest and its directory, or None while the vectors do not exist yet."""
    path = Path(str(resources.files("sessionspec.spec").joinpath("vectors", "manifest.json")))
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return path.parent, data


def run_vector(ctx: CheckContext, vector: dict[str, Any], root: Path, default_now: str) -> None:
    content = (root / vector["file"]).read_bytes()
    now = parse_timestamp(vector.get("now", default_now))
    ctx.clock.set(now)
    write_bytes(ctx.path, content, 0o600)
    expect = vector["expect"]
    result = expect["result"]
    with capture_logs() as logs:
        try:
            storage = ctx.open()
        except OSError as exc:
            ctx.expect(result == "raise", f"the constructor raised {exc!r}", expected=result)
            return
    ctx.expect(result != "raise", "the constructor must raise OSError", actual="no exception")
    if result == "move-aside":
        expected_backup = backup_path(ctx.path, now)
        ctx.expect(not ctx.path.exists(), "the file must be moved away from the path")
        ctx.expect(
            expected_backup.is_file() and expected_backup.read_bytes() == content,
            "the file must be byte-identical in <name>.<epoch-ms>.bak",
            expected=expected_backup.name,
            actual=[p.name for p in backups(ctx.path)],
        )
        ctx.expect_equal(storage.list_sessions(), [], "the store must start empty")
        return
    listed = storage.list_sessions()
    want = expect["loads"]
    ctx.expect_equal(
        [s.id for s in listed], [w["id"] for w in want], "loaded session ids (in list order)"
    )
    by_id = {s.id: s for s in listed}
    for item in want:
        got = by_id.get(item["id"])
        if got is None:
            continue
        ctx.expect_equal(len(got.turns), item["turns"], f"turns loaded for {item['id']!r}")
        if "codexConversationId" in item:
            ctx.expect_equal(
                got.codex_conversation_id,
                item["codexConversationId"],
                f"conversation id of {item['id']!r}",
            )
        for key, attribute in (("createdAt", "created_at"), ("lastAccessedAt", "last_accessed_at")):
            if key in item:
                ctx.expect_equal(
                    getattr(got, attribute), parse_timestamp(item[key]), f"{key} of {item['id']!r}"
                )
    warnings = logs.messages(logging.WARNING)
    for skip in expect["skips"]:
        location = skip["location"]
        ctx.expect(
            any(_names_location(m, location) for m in warnings),
            f"a WARNING must name the skipped record {location}",
            expected=location,
            actual=warnings,
        )
    if expect["lossy"]:
        storage.create_session()
        storage.flush()
        ctx.expect(
            any(p.read_bytes() == content for p in backups(ctx.path)),
            "a lossy load must keep the original bytes in a backup before the first save",
            actual=[p.name for p in backups(ctx.path)],
        )


def _names_location(message: str, location: str) -> bool:
    """``sessions[1]`` must not be satisfied by ``sessions[1].turns[0]`` or ``sessions[10]``."""
    start = message.find(location)
    while start != -1:
        end = start + len(location)
        if message[end : end + 7] != ".turns[":
            return True
        start = message.find(location, start + 1)
    return False


@provider
def vector_checks() -> list[Check]:
    found = manifest()
    if found is None:
        return []
    root, data = found
    checks = []
    for vector in data["vectors"]:

        def run(ctx: CheckContext, vector: dict[str, Any] = vector, now: str = data["now"]) -> None:
            run_vector(ctx, vector, root, now)

        checks.append(
            make_check(
                vector["behaviour"],
                f"vector[{vector['name']}]",
                run,
                requires=Level.FILE_V1,
                doc=vector["description"],
            )
        )
    return checks
