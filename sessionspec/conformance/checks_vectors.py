"""One check per file vector of the manifest (``sessionspec/spec/vectors/``), attributed to its
behaviour (SPEC.md §7).

Each vector's bytes are written to the sessions path, the clock is set to the vector's
``now``, the backend is opened, and the manifest's ``expect`` is checked: a move-aside, or a
load of exactly the sessions it lists, with everything they hold (times, conversation id,
every turn's prompt, response and timestamp), the skips it names in WARNINGs, the file left
in place until the first save, and a backup at the first save exactly when the load is lossy.
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
from sessionspec.conformance.oracle import parse_timestamp
from sessionspec.conformance.registry import Check, make_check, provider
from sessionspec.spec import Level

#: How much of a long string a failure message shows.
SHOWN = 60


@cache
def manifest() -> tuple[Path, dict[str, Any]] | None:
    """The manifest of the file vectors (SPEC.md §7; B04, B06, B09, B13-B15, B17, B18) and its
    directory, or None while the vectors do not exist yet."""
    path = Path(str(resources.files("sessionspec.spec").joinpath("vectors", "manifest.json")))
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return path.parent, data


def _short(value: object) -> object:
    """``value`` for a failure message: long strings cut, with their length (text vectors hold
    100 000 characters)."""
    if isinstance(value, str) and len(value) > SHOWN:
        return f"{value[:SHOWN]!r}... ({len(value)} characters)"
    return value


def _held(session: Any) -> dict[str, Any]:
    """What a loaded session holds, in the form the manifest states it (timestamps as the
    backend returned them, so a naive or shifted one shows as it is)."""
    return {
        "createdAt": session.created_at,
        "lastAccessedAt": session.last_accessed_at,
        "codexConversationId": session.codex_conversation_id,
        "turns": [(t.prompt, t.response, t.timestamp) for t in session.turns],
    }


def _expected(item: dict[str, Any]) -> dict[str, Any]:
    """What the manifest says a loaded session holds, timestamps read by the kit's oracle."""
    return {
        "createdAt": parse_timestamp(item["createdAt"]),
        "lastAccessedAt": parse_timestamp(item["lastAccessedAt"]),
        "codexConversationId": item["codexConversationId"],
        "turns": [
            (t["prompt"], t["response"], parse_timestamp(t["timestamp"]))
            for t in item["turnContents"]
        ],
    }


def check_loaded_content(ctx: CheckContext, listed: list[Any], want: list[dict[str, Any]]) -> None:
    """Every loaded session holds exactly what the vector says (SPEC.md §3.2 step 5, §7).

    Ids in list order first (B04 for order vectors), then per session: createdAt and
    lastAccessedAt (UTC, truncated to the millisecond), the conversation id (None when absent
    or null), and every turn in order with its prompt, response and timestamp. The count of
    turns alone would let a reader that garbles text or shifts a timestamp pass.
    """
    got_ids, want_ids = [s.id for s in listed], [w["id"] for w in want]
    if ctx.behaviour_id == "B04":
        ctx.expect_equal(got_ids, want_ids, "loaded session ids (in list order)")
    else:  # which records load is this vector's point; their order is B04's rule
        ctx.expect_equal(sorted(got_ids), sorted(want_ids), "loaded session ids")
        ctx.require("B04", got_ids == want_ids, "loaded sessions are not in list order")
    by_id = {s.id: s for s in listed}
    for item in want:
        got = by_id.get(item["id"])
        if got is None:
            continue
        held, expected = _held(got), _expected(item)
        sid = item["id"]
        for key in ("createdAt", "lastAccessedAt", "codexConversationId"):
            _field(ctx, key, held[key], expected[key], f"{key} of {sid!r}")
        _field(
            ctx,
            "turns",
            len(held["turns"]),
            len(expected["turns"]),
            f"how many turns load for {sid!r}",
        )
        for index, (have, wanted) in enumerate(zip(held["turns"], expected["turns"], strict=False)):
            for part, name in enumerate(("prompt", "response", "timestamp")):
                # ``==`` also tells a naive datetime from an aware one (never equal).
                _field(
                    ctx, name, have[part], wanted[part], f"the {name} of turn {index} of {sid!r}"
                )


#: Which behaviour a field of a loaded record is the point of, by vector behaviour.
_OWN_FIELDS = {"B09": None, "B06": {"codexConversationId"}, "B15": {"turns"}}


def _field(ctx: CheckContext, key: str, actual: object, expected: object, what: str) -> None:
    """A field of a loaded session: the vector's own point (B09 for content; B06 for the
    conversation id; B15 for which turns load), or else a precondition on B09 (reading a
    record right), so one reader bug is one FAIL, not one per vector category."""
    own = ctx.behaviour_id in _OWN_FIELDS and (
        _OWN_FIELDS[ctx.behaviour_id] is None or key in (_OWN_FIELDS[ctx.behaviour_id] or ())
    )
    if own:
        ctx.expect(actual == expected, what, expected=_short(expected), actual=_short(actual))
    else:
        ctx.require(
            "B09",
            actual == expected,
            f"{what}: expected {_short(expected)!r}, got {_short(actual)!r}",
        )


def run_vector(ctx: CheckContext, vector: dict[str, Any], root: Path, default_now: str) -> None:
    """Open the vector's bytes with its clock and check the outcome the manifest states
    (SPEC.md §3.2, §7; the behaviour is the vector's own)."""
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
        kept = any(p.read_bytes() == content for p in backups(ctx.path))
        ctx.expect(kept, "the file's bytes must be kept in a backup when moved aside")
        named = expected_backup.is_file() and expected_backup.read_bytes() == content
        message = "the file must be byte-identical in <name>.<epoch-ms>.bak"
        if ctx.behaviour_id == "B13":
            ctx.expect(
                named,
                message,
                expected=expected_backup.name,
                actual=[p.name for p in backups(ctx.path)],
            )
        else:  # B14 moves aside "as in B13": the naming is B13's rule
            ctx.require("B13", named, message)
        ctx.expect_equal(storage.list_sessions(), [], "the store must start empty")
        return
    # A file with a valid envelope is read record by record and stays at its path, also when
    # no record is valid (§3.2 step 5, B15); a lossy one is not overwritten before its
    # original bytes are in a backup (§4.4).
    ctx.expect(
        ctx.path.is_file(),
        "a file with a valid envelope must stay at the path (it is read record by record,"
        " never moved aside, even when no record loads)",
        actual=[p.name for p in sorted(ctx.path.parent.iterdir())],
    )
    if expect["lossy"] and ctx.path.is_file() and ctx.path.read_bytes() != content:
        _backup_rule(
            ctx,
            any(p.read_bytes() == content for p in backups(ctx.path)),
            "a lossy file was overwritten at open before its bytes were in a backup",
            [p.name for p in backups(ctx.path)],
        )
    check_loaded_content(ctx, storage.list_sessions(), expect["loads"])
    warnings = logs.messages(logging.WARNING)
    for skip in expect["skips"]:
        location = skip["location"]
        _backup_rule(
            ctx,
            any(_names_location(m, location) for m in warnings),
            f"a WARNING must name the skipped record {location}",
            warnings,
        )
    # The first save: a lossy load must find the original bytes in a backup by then (B15,
    # §4.4); a clean one must have made none (nothing of the file was lost, §3.2 step 7).
    storage.create_session()
    storage.flush()
    found = backups(ctx.path)
    if expect["lossy"]:
        _backup_rule(
            ctx,
            any(p.read_bytes() == content for p in found),
            "a lossy load must keep the original bytes in a backup before the first save",
            [p.name for p in found],
        )
    else:
        _backup_rule(
            ctx,
            not found,
            "a load that is not lossy must make no backup (order, whitespace, escapes, null"
            " conversation ids, offsets, lowercase t/z and expired sessions lose nothing)",
            [p.name for p in found],
        )


def _backup_rule(ctx: CheckContext, condition: bool, message: str, actual: object) -> None:
    """Skip warnings and lossy backups are B15's rules: asserted by B15's vectors, and a
    precondition of the others (an order or expiry vector judges order or expiry)."""
    if ctx.behaviour_id == "B15":
        ctx.expect(condition, message, actual=actual)
    else:
        ctx.require("B15", condition, f"{message} (found {actual!r})")


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
    """One check per vector of the manifest, named ``vector[<name>]`` and attributed to the
    vector's behaviour (SPEC.md §7); level file-v1."""
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
