"""Generate the language-neutral file vectors of sessionspec v1 (SPEC.md §3, §7).

Run ``python -m sessionspec.spec.vectors.generate`` from the repository root: it rewrites every
vector file under ``sessionspec/spec/vectors/<category>/`` and ``.../vectors/manifest.json``,
deterministically. The committed files are the source of truth other languages read; this
script only makes edits reproducible. Expectations here are written by hand (which sessions
load, in which order, with which times and conversation id, which records are skipped and
whether the load is lossy); only the content of the loaded turns is copied from the file, by
:func:`turn_contents`, guided by the hand-written skips. ``tests/test_spec_vectors.py``
checks all of it against the schemas and against an independent decoder that follows
SPEC.md §3.2.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CATEGORIES = (
    "valid",
    "text",
    "encoding",
    "envelope",
    "version",
    "records",
    "ids",
    "timestamps",
    "expiry",
    "order",
)

#: The manifest's own format (``version``), which readers of the manifest check.
MANIFEST_FORMAT = 1
#: The vectors' version (``vectors_version``): major.minor is the spec version the vectors
#: encode (``SPEC_VERSION``); the patch part counts corrections and additions within it.
#: 1.1.1: every loaded session states its turns' content (``turnContents``); new vector
#: records/all-sessions-invalid-timestamps. 1.2.0: spec 1.2 (the shared level), vectors
#: unchanged. 1.3.0: spec 1.3 (B31-B33), vectors unchanged.
VERSION = "1.3.0"
NOW = "2026-01-02T00:00:00.000Z"  # the manifest's default clock
T = "2026-01-01T12:00:00.000Z"  # default record time: 12 h before NOW, so live
_ABSENT: Any = object()

# ---------------------------------------------------------------------------------------------
# Building documents


def turn(prompt: Any = "hi", response: Any = "hello", timestamp: Any = T, **extra: Any) -> Any:
    t: dict[str, Any] = {}
    for key, value in (("prompt", prompt), ("response", response), ("timestamp", timestamp)):
        if value is not _ABSENT:
            t[key] = value
    t.update(extra)
    return t


def session(
    sid: Any,
    at: Any = T,
    *,
    created: Any = None,
    turns: Any = None,
    cid: Any = _ABSENT,
    drop: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    s: dict[str, Any] = {
        "id": sid,
        "createdAt": at if created is None else created,
        "lastAccessedAt": at,
        "turns": [turn(timestamp=at if isinstance(at, str) else T)] if turns is None else turns,
    }
    if cid is not _ABSENT:
        s["codexConversationId"] = cid
    s.update(extra)
    for key in drop:
        del s[key]
    return s


def doc(*sessions: Any, version: Any = 1, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"version": version, "sessions": list(sessions)}
    d.update(extra)
    return d


_SURROGATE = re.compile("[\ud800-\udfff]")


def enc(document: Any, indent: int | None = 2) -> bytes:
    """The reference writer's bytes: json.dumps(indent=2, ensure_ascii=False), UTF-8.

    Lone surrogates cannot be encoded as UTF-8, so they are escaped as ``\\uXXXX`` the way
    JSON.stringify does (they only ever occur inside strings here).
    """
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.encode("utf-8")


def compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Expectations


def L(
    sid: str, turns: int = 1, cid: str | None = None, at: str = T, created: str | None = None
) -> dict[str, Any]:
    """One loaded session, in writer form."""
    return {
        "id": sid,
        "turns": turns,
        "codexConversationId": cid,
        "createdAt": at if created is None else created,
        "lastAccessedAt": at,
    }


def S(location: str, reason: str) -> dict[str, str]:
    return {"location": location, "reason": reason}


def load(
    loads: list[dict[str, Any]], skips: list[dict[str, str]] | None = None, *, lossy: bool
) -> dict[str, Any]:
    return {"result": "load", "loads": loads, "skips": skips or [], "lossy": lossy}


MOVE: dict[str, Any] = {"result": "move-aside"}

# The reader grammar of SPEC.md §1.2, only as far as the turns of loaded sessions need it: they
# are valid by construction (the hand-written skips say which are not), so this only converts.
_READER_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def writer_form(text: str) -> str:
    """A valid reader timestamp as the writer emits it: UTC, truncated to milliseconds."""
    match = _READER_TIMESTAMP.fullmatch(text)
    assert match is not None, f"not a loadable timestamp: {text!r}"
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    millis = int(((match[7] or "") + "000")[:3])
    moment = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)
    if match[8]:
        offset = timedelta(hours=int(match[9]), minutes=int(match[10]))
        moment = moment - offset if match[8] == "+" else moment + offset
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def turn_contents(data: bytes, expect: dict[str, Any]) -> None:
    """Fill in ``turnContents`` of every loaded session of ``expect`` from the file's bytes.

    A loaded session is the first record with its id that the hand-written skips do not
    name; its turns are those the skips do not name, in file order, with the timestamp in
    writer form. Each count must match the hand-written ``turns``. JSON's own rules apply
    (``json.loads``, like ``JSON.parse``, keeps the last value of a repeated member name).
    """
    document = json.loads(data.decode("utf-8"))
    skipped = {skip["location"] for skip in expect["skips"]}
    first: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, record in enumerate(document["sessions"]):
        if f"sessions[{index}]" not in skipped and isinstance(record, dict):
            first.setdefault(record["id"], (index, record))
    for item in expect["loads"]:
        index, record = first[item["id"]]
        contents = [
            {
                "prompt": t["prompt"],
                "response": t["response"],
                "timestamp": writer_form(t["timestamp"]),
            }
            for j, t in enumerate(record["turns"])
            if f"sessions[{index}].turns[{j}]" not in skipped
        ]
        assert len(contents) == item["turns"], (item["id"], len(contents), item["turns"])
        # Right after the count, so a reader of the manifest sees both together.
        ordered: dict[str, Any] = {}
        for key, value in item.items():
            ordered[key] = value
            if key == "turns":
                ordered["turnContents"] = contents
        item.clear()
        item.update(ordered)


VECTORS: list[dict[str, Any]] = []
FILES: dict[str, bytes] = {}


def add(
    category: str,
    short: str,
    description: str,
    behaviour: str,
    data: bytes | dict[str, Any],
    reader_valid: bool,
    writer_valid: bool,
    expect: dict[str, Any],
    now: str | None = None,
) -> None:
    assert category in CATEGORIES, category
    name = f"{category}-{short}"
    path = f"{category}/{short}.json"
    assert path not in FILES, path
    FILES[path] = data if isinstance(data, bytes) else enc(data)
    if expect["result"] == "load":
        turn_contents(FILES[path], expect)
    entry: dict[str, Any] = {
        "name": name,
        "file": path,
        "description": description,
        "behaviour": behaviour,
    }
    if now is not None:
        entry["now"] = now
    entry |= {"reader_valid": reader_valid, "writer_valid": writer_valid, "expect": expect}
    VECTORS.append(entry)


def one_valid_session(sid: str = "a", **kwargs: Any) -> dict[str, Any]:
    return doc(session(sid, **kwargs))


# ---------------------------------------------------------------------------------------------
# valid/ — plain loads

add(
    "valid",
    "empty-store",
    "An empty store: version 1 and no sessions.",
    "B09",
    doc(),
    True,
    True,
    load([], lossy=False),
)

add(
    "valid",
    "spec-example",
    "The example of SPEC.md §3, byte for byte in content: one session with a turn and a "
    "conversation id.",
    "B09",
    doc(
        session(
            "6f1c2f52-3c0e-4c71-9a55-5f0b1d8f3a2e",
            "2026-01-01T00:05:00.000Z",
            created="2026-01-01T00:00:00.000Z",
            turns=[turn("hi", "hello", "2026-01-01T00:05:00.000Z")],
            cid="conv_123",
        )
    ),
    True,
    True,
    load(
        [
            L(
                "6f1c2f52-3c0e-4c71-9a55-5f0b1d8f3a2e",
                1,
                "conv_123",
                "2026-01-01T00:05:00.000Z",
                "2026-01-01T00:00:00.000Z",
            )
        ],
        lossy=False,
    ),
)

_REF_SESSIONS = [
    session(
        "0b8f8a8e-5d9c-4f4e-8a53-1f6f0d2c9b11",
        "2026-01-01T23:00:00.000Z",
        created="2026-01-01T10:00:00.000Z",
        turns=[
            turn("héllo wörld — 你好 🚀", "réponse « ok »", "2026-01-01T22:59:59.123Z"),
            turn(
                'line1\nline2\ttab "q" \\ back',
                "ctl \u0000\u0001\u001f\u007f",
                "2026-01-01T23:00:00.000Z",
            ),
        ],
        cid="conv_reference",
    ),
    session("4c2e1d7a-9b3f-4a1e-b2c4-6d5e8f9a0b12", "2026-01-01T20:30:15.500Z", turns=[]),
    session(
        "my-client_id-42",
        "2026-01-01T20:30:15.500Z",
        turns=[turn("", "", "2026-01-01T20:30:15.500Z")],
        cid="",
    ),
]
add(
    "valid",
    "reference-writer-bytes",
    "Exactly the bytes the reference writes: json.dumps(doc, indent=2, ensure_ascii=False), "
    "UTF-8, no trailing newline; sessions in list order (a tie keeps file order).",
    "B09",
    enc(doc(*_REF_SESSIONS)),
    True,
    True,
    load(
        [
            L(
                "0b8f8a8e-5d9c-4f4e-8a53-1f6f0d2c9b11",
                2,
                "conv_reference",
                "2026-01-01T23:00:00.000Z",
                "2026-01-01T10:00:00.000Z",
            ),
            L("4c2e1d7a-9b3f-4a1e-b2c4-6d5e8f9a0b12", 0, None, "2026-01-01T20:30:15.500Z"),
            L("my-client_id-42", 1, "", "2026-01-01T20:30:15.500Z"),
        ],
        lossy=False,
    ),
)

# Upstream codex-mcp-server: JSON.stringify(file, null, 2), sessions in creation order (oldest
# first), codexConversationId only when truthy, lone surrogates escaped by JSON.stringify.
_UP = [
    session(
        "1d3c5b7a-0e2f-4a6b-8c9d-0f1e2d3c4b5a",
        "2026-01-01T09:00:00.000Z",
        turns=[turn("plain", "unicode: héllo wörld — 你好 — 🚀🎉", "2026-01-01T09:00:00.000Z")],
    ),
    session(
        "2e4d6c8b-1f3a-4b7c-9d0e-1a2b3c4d5e6f",
        "2026-01-01T11:30:00.250Z",
        created="2026-01-01T09:10:00.000Z",
        turns=[
            turn(
                "newlines\nand\ttabs\r\n", 'quotes " and \\ backslashes', "2026-01-01T09:10:00.000Z"
            ),
            turn(
                "control \u0000\u0001\u001f\u007f chars",
                "lone surrogates \ud800 and \udfff",
                "2026-01-01T11:30:00.250Z",
            ),
        ],
        cid="conv_2e4d6c8b",
    ),
    session(
        "3f5e7d9c-2a4b-4c8d-ae1f-2b3c4d5e6f70",
        "2026-01-01T10:00:00.000Z",
        created="2026-01-01T09:20:00.000Z",
        turns=[turn("x" * 2000, "", "2026-01-01T10:00:00.000Z")],
    ),
]
add(
    "valid",
    "upstream-codex-mcp-server",
    "A file as upstream codex-mcp-server writes it: JSON.stringify(file, null, 2), sessions in "
    "creation order rather than list order, no codexConversationId when absent. Loads in list "
    "order.",
    "B04",
    enc(doc(*_UP)),
    True,
    True,
    load(
        [
            L(
                "2e4d6c8b-1f3a-4b7c-9d0e-1a2b3c4d5e6f",
                2,
                "conv_2e4d6c8b",
                "2026-01-01T11:30:00.250Z",
                "2026-01-01T09:10:00.000Z",
            ),
            L(
                "3f5e7d9c-2a4b-4c8d-ae1f-2b3c4d5e6f70",
                1,
                None,
                "2026-01-01T10:00:00.000Z",
                "2026-01-01T09:20:00.000Z",
            ),
            L("1d3c5b7a-0e2f-4a6b-8c9d-0f1e2d3c4b5a", 1, None, "2026-01-01T09:00:00.000Z"),
        ],
        lossy=False,
    ),
)

add(
    "valid",
    "compact",
    "No insignificant whitespace at all.",
    "B09",
    compact(doc(session("a", cid="c"), session("b", "2026-01-01T11:00:00.000Z"))),
    True,
    True,
    load([L("a", 1, "c"), L("b", 1, None, "2026-01-01T11:00:00.000Z")], lossy=False),
)

add(
    "valid",
    "surrounding-whitespace",
    "JSON whitespace (space, tab, CR, LF) before and after the document is allowed.",
    "B13",
    b" \t\r\n" + enc(one_valid_session()) + b"\n\r\n\t ",
    True,
    True,
    load([L("a")], lossy=False),
)

add(
    "valid",
    "member-order-shuffled",
    "Members in an unusual order at every level (sessions before version, turns first). "
    "Order is presentation: not lossy.",
    "B09",
    enc(
        {
            "sessions": [
                {
                    "turns": [{"timestamp": T, "response": "r", "prompt": "p"}],
                    "codexConversationId": "c",
                    "lastAccessedAt": T,
                    "id": "a",
                    "createdAt": T,
                }
            ],
            "version": 1,
        }
    ),
    True,
    True,
    load([L("a", 1, "c")], lossy=False),
)

add(
    "valid",
    "everything-escaped",
    "Every member name and string written with \\uXXXX escapes (and \\/). Escapes are "
    "presentation: loads, not lossy.",
    "B09",
    (
        b'{"\\u0076ersion":1,"\\u0073essions":[{"\\u0069\\u0064":"\\u0061\\u002d\\u005f",'
        b'"createdAt":"2026\\u002d01-01T12:00:00.000\\u005a",'
        b'"lastAccessedAt":"\\u0032026-01-01T12:00:00.000Z",'
        b'"turns":[{"prompt":"\\/\\u00e9","response":"\\ud83d\\ude80","timestamp":'
        b'"2026-01-01T12:00:00.000Z"}],"\\u0063odexConversationId":"\\u0063"}]}'
    ),
    True,
    True,
    load([L("a-_", 1, "c")], lossy=False),
)

add(
    "valid",
    "conversation-id-empty-string",
    'codexConversationId "" is a conversation id like any other (upstream dropped it).',
    "B06",
    one_valid_session(cid=""),
    True,
    True,
    load([L("a", 1, "")], lossy=False),
)

add(
    "valid",
    "conversation-id-null",
    "codexConversationId null loads as absent and is NOT lossy; writers omit it instead.",
    "B15",
    one_valid_session(cid=None),
    True,
    False,
    load([L("a")], lossy=False),
)

add(
    "valid",
    "turns-empty",
    "A session with an empty turns array.",
    "B09",
    one_valid_session(turns=[]),
    True,
    True,
    load([L("a", 0)], lossy=False),
)

add(
    "valid",
    "created-after-accessed",
    "createdAt later than lastAccessedAt is not a rule of v1: loads as is.",
    "B15",
    one_valid_session(created="2026-01-01T13:00:00.000Z"),
    True,
    True,
    load([L("a", created="2026-01-01T13:00:00.000Z")], lossy=False),
)

# ---------------------------------------------------------------------------------------------
# text/ — strings are any Unicode, carried exactly

_TEXTS = {
    "unicode-emoji": ("héllo wörld — 你好 — Привет — مرحبا", "🚀🎉👩‍👩‍👧 🇺🇦 é (e + U+0301)"),
    "newlines-quotes-backslashes": ("a\nb\r\nc\rd\te", 'quote " backslash \\ slash / \\n'),
    "nul-and-controls": ("\u0000", "\u0001\u0002\u0007\u0008\u000b\u000c\u001b\u001f\u007f\u0085"),
    "lone-surrogates": ("\ud800", "\udfff \udc00\ud800 end\udbff"),
    "line-separators": ("\u2028", "\u2029 and \ufeff inside a string"),
    "noncharacters": ("\uffff\ufffe", "\U0010ffff \U0001fffe"),
    "empty-strings": ("", ""),
    "long-text": ("p" * 100_000, "r" * 65_537),
}
_TEXT_DESCRIPTIONS = {
    "unicode-emoji": "Non-ASCII text and emoji (ZWJ sequences, flags, combining marks) as UTF-8.",
    "newlines-quotes-backslashes": "Newlines, CR, tabs, quotes and backslashes, escaped.",
    "nul-and-controls": "NUL and other control characters, escaped as \\u0000 etc. (DEL and "
    "U+0085 raw, which JSON allows).",
    "lone-surrogates": "Lone surrogates escaped as \\ud800, \\udfff and a reversed pair; they "
    "load as lone surrogates, not lossy.",
    "line-separators": "U+2028, U+2029 and U+FEFF inside strings, raw UTF-8 (a BOM character "
    "inside a string is text, not a BOM).",
    "noncharacters": "Unicode noncharacters U+FFFF, U+FFFE, U+10FFFF, U+1FFFE as raw UTF-8.",
    "empty-strings": "Empty prompt and response.",
    "long-text": "A 100 000-character prompt and a 65 537-character response.",
}
for _short, (_p, _r) in _TEXTS.items():
    add(
        "text",
        _short,
        _TEXT_DESCRIPTIONS[_short],
        "B09",
        one_valid_session(turns=[turn(_p, _r), turn(_r, _p)]),
        True,
        True,
        load([L("a", 2)], lossy=False),
    )

add(
    "text",
    "surrogate-pair-escaped",
    "An escaped surrogate pair \\ud83d\\ude80 is one character (U+1F680).",
    "B09",
    b'{"version":1,"sessions":[{"id":"a","createdAt":"2026-01-01T12:00:00.000Z",'
    b'"lastAccessedAt":"2026-01-01T12:00:00.000Z","turns":[{"prompt":"\\ud83d\\ude80",'
    b'"response":"\\uD83D\\uDE80","timestamp":"2026-01-01T12:00:00.000Z"}]}]}',
    True,
    True,
    load([L("a", 1)], lossy=False),
)

# ---------------------------------------------------------------------------------------------
# encoding/ — bytes that are not UTF-8 JSON without a BOM: move aside (B13)

_GOOD = enc(one_valid_session())
_P = _GOOD.index(b'"hi"') + 1  # offset of the prompt text, to splice bytes into a string

add(
    "encoding",
    "bom",
    "A valid document preceded by a UTF-8 byte-order mark.",
    "B13",
    b"\xef\xbb\xbf" + _GOOD,
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "invalid-utf8",
    "A byte 0xFF inside a string.",
    "B13",
    _GOOD[:_P] + b"\xff" + _GOOD[_P:],
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "utf8-encoded-surrogate",
    "A surrogate encoded directly as UTF-8 bytes (ED A0 80, CESU/WTF-8) is not UTF-8.",
    "B13",
    _GOOD[:_P] + b"\xed\xa0\x80" + _GOOD[_P:],
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "overlong-utf8",
    "An overlong encoding of '/' (C0 AF).",
    "B13",
    _GOOD[:_P] + b"\xc0\xaf" + _GOOD[_P:],
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "truncated-utf8",
    "A truncated 3-byte sequence (E2 82) inside a string.",
    "B13",
    _GOOD[:_P] + b"\xe2\x82" + _GOOD[_P:],
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "latin1",
    "Text encoded as Latin-1 (é as the single byte E9).",
    "B13",
    _GOOD[:_P] + b"caf\xe9" + _GOOD[_P:],
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "utf16le-bom",
    "The document encoded as UTF-16LE with its BOM.",
    "B13",
    b"\xff\xfe" + _GOOD.decode("utf-8").encode("utf-16-le"),
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "utf16be-no-bom",
    "The document encoded as UTF-16BE without a BOM.",
    "B13",
    _GOOD.decode("utf-8").encode("utf-16-be"),
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "raw-control-char-in-string",
    "An unescaped U+0001 inside a string: not JSON (RFC 8259 requires escaping U+0000-U+001F).",
    "B13",
    _GOOD[:_P] + b"\x01" + _GOOD[_P:],
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "raw-nul-in-string",
    "An unescaped NUL byte inside a string: not JSON.",
    "B13",
    _GOOD[:_P] + b"\x00" + _GOOD[_P:],
    False,
    False,
    MOVE,
)
add(
    "encoding",
    "raw-newline-in-string",
    "An unescaped line feed inside a string: not JSON.",
    "B13",
    _GOOD[:_P] + b"\n" + _GOOD[_P:],
    False,
    False,
    MOVE,
)

# ---------------------------------------------------------------------------------------------
# envelope/ — not a single JSON text with an object at the top, or no sessions array (B13)

add("envelope", "empty-file", "A file of zero bytes.", "B13", b"", False, False, MOVE)
add(
    "envelope",
    "whitespace-only",
    "Only JSON whitespace.",
    "B13",
    b" \n\t\r\n  ",
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "trailing-garbage",
    "A valid document followed by 'x'.",
    "B13",
    _GOOD + b"\nx",
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "trailing-nul",
    "A valid document followed by a NUL byte.",
    "B13",
    _GOOD + b"\x00",
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "two-documents",
    "Two valid documents one after the other.",
    "B13",
    _GOOD + b"\n" + _GOOD,
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "truncated",
    "A valid document cut off in the middle (a crashed writer).",
    "B13",
    _GOOD[: len(_GOOD) // 2],
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "trailing-comma",
    "A trailing comma in the sessions array.",
    "B13",
    b'{"version": 1, "sessions": [],}',
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "comment",
    "A // comment: not JSON.",
    "B13",
    b'// sessions\n{"version": 1, "sessions": []}',
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "single-quotes",
    "Single-quoted strings: not JSON.",
    "B13",
    b"{'version': 1, 'sessions': []}",
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "nan-literal",
    "NaN is not JSON, although some parsers (Python's json) accept it.",
    "B13",
    b'{"version": 1, "sessions": [], "x": NaN}',
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "top-level-array",
    "The top level is an array holding a valid document.",
    "B13",
    b"[" + _GOOD + b"]",
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "top-level-string",
    "The top level is a string.",
    "B13",
    b'"{\\"version\\": 1, \\"sessions\\": []}"',
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "top-level-number",
    "The top level is the number 1.",
    "B13",
    b"1",
    False,
    False,
    MOVE,
)
add("envelope", "top-level-null", "The top level is null.", "B13", b"null", False, False, MOVE)
add("envelope", "top-level-true", "The top level is true.", "B13", b"true", False, False, MOVE)
add(
    "envelope",
    "sessions-missing",
    "version 1 and no sessions member.",
    "B13",
    {"version": 1},
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "sessions-object",
    "sessions is an object holding a valid session.",
    "B13",
    {"version": 1, "sessions": {"a": session("a")}},
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "sessions-null",
    "sessions is null.",
    "B13",
    {"version": 1, "sessions": None},
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "sessions-string",
    "sessions is a string.",
    "B13",
    {"version": 1, "sessions": "[]"},
    False,
    False,
    MOVE,
)
add(
    "envelope",
    "sessions-number",
    "sessions is a number.",
    "B13",
    {"version": 1, "sessions": 0},
    False,
    False,
    MOVE,
)

# ---------------------------------------------------------------------------------------------
# version/ — version 1 is a JSON number that JSON.parse reads as the double 1 (B14)
#
# Every JSON number is read as an IEEE 754 binary64 double rounded to nearest, exactly as
# JavaScript's JSON.parse reads it; version is 1 when that double equals 1. Schema validators
# must read numbers the same way (Python's json and check-jsonschema do): then the reader
# schema's "const": 1 gives the same verdict as a reader.

for _short, _raw, _desc in [
    ("0", b"0", "version 0."),
    ("2", b"2", "version 2: a newer program's file."),
    ("100", b"100", "version 100."),
    ("minus-1", b"-1", "version -1."),
    ("1-point-5", b"1.5", "version 1.5: the double 1.5, not 1."),
    ("string-1", b'"1"', 'version "1": a string, not a number.'),
    ("null", b"null", "version null."),
    ("true", b"true", "version true: a boolean, not a number."),
    ("array", b"[1]", "version [1]."),
    (
        "1-point-000001",
        b"1.000001",
        "version 1.000001: close to 1, but a double other than 1.",
    ),
    ("1e400", b"1e400", "version 1e400: too large for a double, JSON.parse reads Infinity."),
    (
        "5000-digits",
        b"1" + b"0" * 4999,
        "version 10^4999 written as 5000 digits: Infinity as a double; a reader must not fail "
        "on it (Python's int() refuses more than 4300 digits, so check-jsonschema reports the "
        "file as unparseable rather than invalid).",
    ),
]:
    add(
        "version",
        _short,
        _desc + " Moved aside whatever the sessions hold.",
        "B14",
        b'{"version": ' + _raw + b', "sessions": []}',
        False,
        False,
        MOVE,
    )
add(
    "version",
    "absent",
    "No version member (sessions present and valid).",
    "B14",
    {"sessions": [session("a")]},
    False,
    False,
    MOVE,
)
add(
    "version",
    "empty-object",
    "The empty object {}: version absent.",
    "B14",
    b"{}",
    False,
    False,
    MOVE,
)
add(
    "version",
    "2-with-v1-sessions",
    "version 2 with sessions that would be valid in v1: still moved aside, never rewritten.",
    "B14",
    doc(session("a"), version=2),
    False,
    False,
    MOVE,
)
add(
    "version",
    "1-point-0",
    "version 1.0 is the double 1: loads, not lossy (JSON Schema const 1 also accepts it).",
    "B14",
    b'{"version": 1.0, "sessions": []}',
    True,
    True,
    load([], lossy=False),
)
for _short, _raw, _desc in [
    ("1e0", b"1e0", "version 1e0 is the double 1."),
    ("1-capital-e0", b"1E0", "version 1E0 (capital E) is the double 1."),
    ("10e-minus-1", b"10e-1", "version 10e-1 is the double 1."),
    ("0-point-1e1", b"0.1e1", "version 0.1e1 is the double 1."),
    (
        "1-point-0000000000000000001",
        b"1.0000000000000000001",
        "version 1.0000000000000000001 rounds to the double 1 (as JSON.parse reads it).",
    ),
    (
        "0-point-99999999999999999999",
        b"0.99999999999999999999",
        "version 0.99999999999999999999 rounds to the double 1 (as JSON.parse reads it).",
    ),
]:
    add(
        "version",
        _short,
        _desc + " Loads, not lossy: version alone never makes a load lossy, so no backup.",
        "B14",
        b'{"version": ' + _raw + b', "sessions": [' + enc(session("a"), None) + b"]}",
        True,
        True,
        load([L("a")], lossy=False),
    )

# ---------------------------------------------------------------------------------------------
# records/ — invalid sessions and turns are skipped one by one (B15)

_B = "b"  # a valid neighbour that must still load

add(
    "records",
    "session-not-object",
    "Sessions that are not objects (number, string, array, boolean) are skipped; the valid "
    "neighbours load.",
    "B15",
    doc(session("a"), 42, "b", [session("c")], True, session(_B, "2026-01-01T11:00:00.000Z")),
    False,
    False,
    load(
        [L("a"), L(_B, at="2026-01-01T11:00:00.000Z")],
        [
            S("sessions[1]", "not an object (number)"),
            S("sessions[2]", "not an object (string)"),
            S("sessions[3]", "not an object (array)"),
            S("sessions[4]", "not an object (boolean)"),
        ],
        lossy=True,
    ),
)
add(
    "records",
    "session-null",
    "A null session is skipped.",
    "B15",
    doc(None, session("a")),
    False,
    False,
    load([L("a")], [S("sessions[0]", "not an object (null)")], lossy=True),
)

# session members: missing, null, wrong type, invalid
for _member, _cases in {
    "id": [("missing", _ABSENT), ("null", None), ("number", 7), ("array", ["a"])],
    "createdAt": [
        ("missing", _ABSENT),
        ("null", None),
        ("number", 1767268800000),
        ("invalid", "yesterday"),
        ("empty", ""),
    ],
    "lastAccessedAt": [
        ("missing", _ABSENT),
        ("null", None),
        ("boolean", False),
        ("invalid", "2026-13-01T00:00:00.000Z"),
        ("object", {}),
    ],
    "turns": [("missing", _ABSENT), ("null", None), ("object", {"0": turn()}), ("string", "[]")],
    "codexConversationId": [("number", 123), ("object", {}), ("boolean", True), ("array", ["c"])],
}.items():
    for _case, _value in _cases:
        _s = session("bad" if _member != "id" else _ABSENT, cid="x")
        if _value is _ABSENT:
            _s.pop(_member, None)
        else:
            _s[_member] = _value
        _kebab = re.sub(r"([A-Z])", r"-\1", _member).lower()
        _what = "missing" if _value is _ABSENT else f"{_case}: {json.dumps(_value)}"
        add(
            "records",
            f"{_kebab}-{_case}",
            f"A session whose {_member} is {_what} is skipped; the valid one after it loads.",
            "B15",
            doc(_s, session(_B)),
            False,
            False,
            load([L(_B)], [S("sessions[0]", f"{_member} {_case}")], lossy=True),
        )

# turn level: only the turn is skipped
_turn_cases: list[tuple[str, Any, str]] = [
    ("turn-null", None, "a null turn"),
    ("turn-string", "hi", "a turn that is a string"),
    ("turn-number", 0, "a turn that is a number"),
    ("turn-array", ["hi", "hello", T], "a turn that is an array"),
    ("turn-prompt-missing", turn(prompt=_ABSENT), "a turn without prompt"),
    ("turn-response-missing", turn(response=_ABSENT), "a turn without response"),
    ("turn-timestamp-missing", turn(timestamp=_ABSENT), "a turn without timestamp"),
    ("turn-prompt-null", turn(prompt=None), "a turn whose prompt is null"),
    ("turn-response-null", turn(response=None), "a turn whose response is null"),
    ("turn-timestamp-null", turn(timestamp=None), "a turn whose timestamp is null"),
    ("turn-prompt-number", turn(prompt=1), "a turn whose prompt is a number"),
    ("turn-response-array", turn(response=["hello"]), "a turn whose response is an array"),
    ("turn-prompt-object", turn(prompt={"text": "hi"}), "a turn whose prompt is an object"),
    ("turn-timestamp-number", turn(timestamp=1767268800000), "a turn whose timestamp is a number"),
    (
        "turn-timestamp-invalid",
        turn(timestamp="2026-01-01 12:00"),
        "a turn whose timestamp is invalid",
    ),
    (
        "turn-timestamp-no-zone",
        turn(timestamp="2026-01-01T12:00:00.000"),
        "a turn whose timestamp has no zone",
    ),
]
for _short, _bad, _desc in _turn_cases:
    add(
        "records",
        _short,
        f"Only {_desc} is skipped (turn 1 of 3); the session loads with the other two turns.",
        "B15",
        doc(session("a", turns=[turn("p0"), _bad, turn("p2")], cid="c")),
        False,
        False,
        load([L("a", 2, "c")], [S("sessions[0].turns[1]", _desc)], lossy=True),
    )

add(
    "records",
    "all-turns-invalid",
    "Every turn is invalid: each is skipped and the session loads with no turns.",
    "B15",
    doc(session("a", turns=[None, turn(prompt=2), turn(timestamp="x")])),
    False,
    False,
    load(
        [L("a", 0)],
        [
            S("sessions[0].turns[0]", "null turn"),
            S("sessions[0].turns[1]", "prompt not a string"),
            S("sessions[0].turns[2]", "invalid timestamp"),
        ],
        lossy=True,
    ),
)

add(
    "records",
    "skipped-session-turns-not-reported",
    "A session that is skipped is skipped whole: its invalid turns are not reported separately.",
    "B15",
    doc(session("a", created="nope", turns=[None, turn()]), session(_B)),
    False,
    False,
    load([L(_B)], [S("sessions[0]", "createdAt invalid")], lossy=True),
)

add(
    "records",
    "duplicate-ids",
    "The same id three times: the first wins, the later two are skipped although valid.",
    "B15",
    doc(
        session("a", turns=[turn(), turn()], cid="first"),
        session(_B),
        session("a", "2026-01-01T13:00:00.000Z", cid="second"),
        session("a", "2026-01-01T14:00:00.000Z", turns=[]),
    ),
    True,
    True,
    load(
        [L("a", 2, "first"), L(_B)],
        [S("sessions[2]", "duplicate id 'a'"), S("sessions[3]", "duplicate id 'a'")],
        lossy=True,
    ),
)
add(
    "records",
    "duplicate-of-skipped",
    "The first session with id 'a' is skipped (bad lastAccessedAt), so the second one is not "
    "a duplicate of a loaded session: it loads.",
    "B15",
    doc(session("a", "not a date", cid="first"), session("a", cid="second")),
    False,
    False,
    load([L("a", 1, "second")], [S("sessions[0]", "lastAccessedAt invalid")], lossy=True),
)
add(
    "records",
    "duplicate-of-expired",
    "The first session with id 'a' is expired but loaded (B17), so the live second one is a "
    "duplicate and is skipped; nothing is visible.",
    "B15",
    doc(session("a", "2025-12-01T00:00:00.000Z"), session("a", cid="second")),
    True,
    True,
    load([], [S("sessions[1]", "duplicate id 'a' (of an expired session)")], lossy=True),
)
add(
    "records",
    "ids-differ-in-case",
    "Ids are case-sensitive: 'abc' and 'ABC' are two sessions.",
    "B15",
    doc(session("abc"), session("ABC")),
    True,
    True,
    load([L("abc"), L("ABC")], lossy=False),
)

add(
    "records",
    "unknown-member-top-level",
    "An unknown member at the top level is ignored: loads, lossy.",
    "B15",
    doc(session("a"), extra={"from": "v1.1"}),
    True,
    False,
    load([L("a")], lossy=True),
)
add(
    "records",
    "unknown-member-session",
    "An unknown member in a session is ignored: loads, lossy.",
    "B15",
    doc(session("a", title="my chat")),
    True,
    False,
    load([L("a")], lossy=True),
)
add(
    "records",
    "unknown-member-turn",
    "An unknown member in a turn is ignored: loads, lossy.",
    "B15",
    doc(session("a", turns=[turn(model="gpt-5")])),
    True,
    False,
    load([L("a")], lossy=True),
)
add(
    "records",
    "unknown-member-null",
    "An unknown member whose value is null is still an unknown member: lossy.",
    "B15",
    doc(session("a", metadata=None)),
    True,
    False,
    load([L("a")], lossy=True),
)
add(
    "records",
    "unknown-member-case-variant",
    "'CreatedAt' beside 'createdAt' is an unknown member (names are case-sensitive): lossy.",
    "B15",
    doc(session("a", CreatedAt="2020-01-01T00:00:00.000Z")),
    True,
    False,
    load([L("a")], lossy=True),
)
add(
    "records",
    "repeated-member-name",
    "A turn repeats the member name 'prompt' with two different strings. JSON parsers keep one "
    "of them (most the last); either way the other is not carried into memory: loads, lossy.",
    "B15",
    b'{"version": 1, "sessions": [{"id": "a", "createdAt": "2026-01-01T12:00:00.000Z", '
    b'"lastAccessedAt": "2026-01-01T12:00:00.000Z", "turns": [{"prompt": "first", '
    b'"prompt": "second", "response": "r", "timestamp": "2026-01-01T12:00:00.000Z"}]}]}',
    True,
    True,
    load([L("a")], lossy=True),
)

add(
    "records",
    "mixed",
    "Valid and invalid records interleaved: indices in skips are positions in the file's "
    "sessions array.",
    "B15",
    doc(
        session("s0", "2026-01-01T10:00:00.000Z"),
        "junk",
        session("s2", "2026-01-01T15:00:00.000Z", turns=[turn(), {}, turn(), turn(prompt=None)]),
        session("bad id"),
        session("s0", "2026-01-01T16:00:00.000Z"),
        session("s5", "2026-01-01T12:00:00.000Z", cid=None),
        session("s6", created="2026-02-30T00:00:00.000Z"),
    ),
    False,
    False,
    load(
        [
            L("s2", 2, at="2026-01-01T15:00:00.000Z"),
            L("s5"),
            L("s0", at="2026-01-01T10:00:00.000Z"),
        ],
        [
            S("sessions[1]", "not an object"),
            S("sessions[2].turns[1]", "empty turn object"),
            S("sessions[2].turns[3]", "prompt null"),
            S("sessions[3]", "id contains a space"),
            S("sessions[4]", "duplicate id 's0'"),
            S("sessions[6]", "createdAt Feb 30"),
        ],
        lossy=True,
    ),
)

# Upstream threw on the first bad record mid-load and sent the whole file to the backup; a v1
# reader skips them one by one even when none is left.
_ALL_BAD: list[tuple[Any, str]] = [
    (42, "not an object (number)"),
    (None, "not an object (null)"),
    ("a", "not an object (string)"),
    ([session("a")], "not an object (array)"),
    (session("bad id"), "id with a space"),
    (session(_ABSENT, drop=("id",)), "id missing"),
    (session("c1", created="yesterday"), "createdAt invalid"),
    (session("c2", drop=("lastAccessedAt",)), "lastAccessedAt missing"),
    (session("c3", "2026-01-01T12:00:00.000"), "lastAccessedAt without a zone"),
    (session("c4", turns={"0": turn()}), "turns an object, not an array"),
    (session("c5", drop=("turns",)), "turns missing"),
    (session("c6", cid=7), "codexConversationId a number"),
]
add(
    "records",
    "all-sessions-invalid",
    "Every session record is invalid, each in another way (not an object, bad or missing id, "
    "bad createdAt or lastAccessedAt, turns not an array, a numeric conversation id): each is "
    "skipped with its location and the store loads empty. Lossy, so the original is kept in a "
    "backup, but the file is not moved aside: it has a valid envelope (upstream threw mid-load "
    "and sent the whole file to a backup).",
    "B15",
    doc(*(record for record, _ in _ALL_BAD)),
    False,
    False,
    load([], [S(f"sessions[{i}]", why) for i, (_, why) in enumerate(_ALL_BAD)], lossy=True),
)

# Upstream's worst case: every record is an object whose only fault is a date that does not
# parse (invalid for JavaScript's Date too). Upstream skips such a session silently, starts
# empty and overwrites the file at the next save with no backup: the user's whole history is
# gone. A v1 reader skips each with a WARNING, loads an empty store, keeps the file in place
# (a valid envelope is not corrupt) and, the load being lossy, backs it up before any save.
_BAD_DATES: list[tuple[Any, str]] = [
    (session("t0", created="yesterday", turns=[turn()]), "createdAt 'yesterday'"),
    (
        session("t1", "2026-13-01T12:00:00.000Z", created=T, turns=[turn()]),
        "lastAccessedAt month 13",
    ),
    (session("t2", created="", turns=[turn("kept?", "no")]), "createdAt empty"),
    (session("t3", "2026-01-01T25:00:00.000Z", turns=[turn()]), "hour 25 in both times"),
]
add(
    "records",
    "all-sessions-invalid-timestamps",
    "Every session record is an object with valid turns whose createdAt or lastAccessedAt "
    "does not parse (nor does it for JavaScript's Date). Each is skipped with a WARNING "
    "naming it and the store loads empty; the file is not moved aside (its envelope is "
    "valid) and stays as it is until the first save, which must find the original bytes in "
    "a backup (lossy). Upstream skips such sessions silently and overwrites the file with "
    "no backup.",
    "B15",
    doc(*(record for record, _ in _BAD_DATES)),
    False,
    False,
    load([], [S(f"sessions[{i}]", why) for i, (_, why) in enumerate(_BAD_DATES)], lossy=True),
)

# ---------------------------------------------------------------------------------------------
# ids/ — the one grammar ^[A-Za-z0-9_-]{1,256}$ (B08, applied by the reader: B15)

_ID_256 = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" * 4)[:256]
assert len(_ID_256) == 256
add(
    "ids",
    "256-chars",
    "A 256-character id (the maximum) loads.",
    "B15",
    doc(session(_ID_256)),
    True,
    True,
    load([L(_ID_256)], lossy=False),
)
add(
    "ids",
    "1-char",
    "A 1-character id loads.",
    "B15",
    doc(session("Z")),
    True,
    True,
    load([L("Z")], lossy=False),
)
add(
    "ids",
    "uppercase-uuid",
    "An uppercase UUID matches the grammar and loads.",
    "B15",
    doc(session("6F1C2F52-3C0E-4C71-9A55-5F0B1D8F3A2E")),
    True,
    True,
    load([L("6F1C2F52-3C0E-4C71-9A55-5F0B1D8F3A2E")], lossy=False),
)
for _short, _bad_id, _desc in [
    ("257-chars", _ID_256 + "a", "257 characters"),
    ("empty", "", "the empty string"),
    ("space", "a b", "a space"),
    ("slash", "a/b", "a slash"),
    ("dot", "a.b", "a dot"),
    ("dot-dot", "..", "'..'"),
    ("non-ascii-letter", "caf\u00e9", "a non-ASCII letter"),
    ("non-ascii-digit", "a\u0661", "an Arabic-Indic digit"),
    ("fullwidth", "\uff41\uff42", "fullwidth letters"),
    ("trailing-newline", "abc\n", "a trailing newline"),
    ("leading-newline", "\nabc", "a leading newline"),
    ("tab", "a\tb", "a tab"),
    ("nul", "a\u0000", "a NUL"),
    ("lone-surrogate", "a\ud800", "a lone surrogate"),
]:
    add(
        "ids",
        _short,
        f"An id with {_desc} is skipped; the valid session after it loads.",
        "B15",
        doc(session(_bad_id), session(_B)),
        False,
        False,
        load([L(_B)], [S("sessions[0]", f"id with {_desc}")], lossy=True),
    )

# ---------------------------------------------------------------------------------------------
# timestamps/ — the reader grammar of §1.2, normalised to UTC milliseconds

_TS_LOAD = [
    (
        "offset-plus-0900",
        "2026-01-01T21:00:00.000+09:00",
        "2026-01-01T12:00:00.000Z",
        False,
        "A +09:00 offset is converted to UTC; not lossy.",
    ),
    (
        "offset-minus-0000",
        "2026-01-01T12:00:00.000-00:00",
        "2026-01-01T12:00:00.000Z",
        False,
        "-00:00 is read as UTC; not lossy.",
    ),
    (
        "offset-plus-2359",
        "2026-01-02T11:59:00.000+23:59",
        "2026-01-01T12:00:00.000Z",
        False,
        "The largest offset, +23:59.",
    ),
    (
        "offset-minus-0530",
        "2026-01-01T06:30:00.000-05:30",
        "2026-01-01T12:00:00.000Z",
        False,
        "A negative offset with minutes.",
    ),
    (
        "lowercase-t-z",
        "2026-01-01t12:00:00.000z",
        "2026-01-01T12:00:00.000Z",
        False,
        "Lowercase t and z; not lossy.",
    ),
    (
        "no-fraction",
        "2026-01-01T12:00:00Z",
        "2026-01-01T12:00:00.000Z",
        False,
        "No fraction digits.",
    ),
    (
        "one-fraction-digit",
        "2026-01-01T12:00:00.5Z",
        "2026-01-01T12:00:00.500Z",
        False,
        "One fraction digit is 500 ms.",
    ),
    (
        "fraction-trailing-zeros",
        "2026-01-01T12:00:00.120000000Z",
        "2026-01-01T12:00:00.120Z",
        False,
        "Digits below the millisecond that are all zero carry nothing: not lossy.",
    ),
    (
        "sub-millisecond",
        "2026-01-01T12:00:00.1234Z",
        "2026-01-01T12:00:00.123Z",
        True,
        "A fourth fraction digit is truncated: loads, lossy.",
    ),
    (
        "microseconds",
        "2026-01-01T12:00:00.123456Z",
        "2026-01-01T12:00:00.123Z",
        True,
        "Six fraction digits (Python's isoformat) are truncated: lossy.",
    ),
    (
        "nanoseconds",
        "2026-01-01T12:00:00.123456789Z",
        "2026-01-01T12:00:00.123Z",
        True,
        "Nine fraction digits (more than Python's datetime holds): loads, truncated, lossy.",
    ),
    (
        "many-fraction-digits",
        "2026-01-01T12:00:00.00099999999999999999999Z",
        "2026-01-01T12:00:00.000Z",
        True,
        "23 fraction digits, truncated not rounded: lossy.",
    ),
    (
        "truncate-not-round",
        "2025-12-31T23:59:59.9999999Z",
        "2025-12-31T23:59:59.999Z",
        True,
        "Truncation never rounds up into the next day or year.",
    ),
    (
        "leap-day",
        "2024-02-29T12:00:00.000Z",
        "2024-02-29T12:00:00.000Z",
        False,
        "29 February of a leap year.",
    ),
]
for _short, _text, _utc, _lossy, _desc in _TS_LOAD:
    _now = NOW if _utc.startswith("2026") else "2026-01-01T00:00:00.000Z"
    if _short == "leap-day":
        _now = "2024-03-01T00:00:00.000Z"
    add(
        "timestamps",
        _short,
        _desc + " Used for createdAt, lastAccessedAt and the turn's timestamp.",
        "B15" if _lossy else "B09",
        doc(session("a", _text, turns=[turn(timestamp=_text)])),
        True,
        _text == _utc,
        load([L("a", 1, None, _utc)], lossy=_lossy),
        None if _now == NOW else _now,
    )

add(
    "timestamps",
    "sub-millisecond-turn-only",
    "Only a turn's timestamp has digits below the millisecond: lossy all the same.",
    "B15",
    doc(session("a", turns=[turn(timestamp="2026-01-01T12:00:00.000001Z")])),
    True,
    False,
    load([L("a")], lossy=True),
)

# Sub-millisecond digits in one position at a time: truncated to the millisecond; lossy when
# a dropped digit is not zero. The manifest states createdAt, lastAccessedAt and every turn's
# timestamp as loaded: truncated, in writer form.
for _frac, _lossy in ((".123456Z", True), (".123000Z", False)):
    _text = "2026-01-01T12:00:00" + _frac
    _cut = "2026-01-01T12:00:00.123Z"
    _prefix = "sub-millisecond" if _lossy else "zero-sub-millisecond"
    _how = (
        "is truncated to 12:00:00.123Z: loads, lossy (a backup is kept)."
        if _lossy
        else "is read as 12:00:00.123Z: the dropped digits are zeros, so not lossy."
    )
    for _short, _s, _loaded in (
        (
            "created-at-only",
            session("a", created=_text, turns=[turn()]),
            L("a", created=_cut),
        ),
        (
            "last-accessed-at-only",
            session("a", _text, created=T, turns=[turn()]),
            L("a", at=_cut, created=T),
        ),
        (
            "turn-timestamp-only",
            session("a", turns=[turn("p0"), turn(timestamp=_text)]),
            L("a", 2),
        ),
    ):
        _where = _short.removesuffix("-only").replace("-", " ")
        add(
            "timestamps",
            f"{_prefix}-{_short}",
            f"Only the {_where} has six fraction digits: {_text} {_how}",
            "B15" if _lossy else "B09",
            doc(_s),
            True,
            False,
            load([_loaded], lossy=_lossy),
        )

add(
    "timestamps",
    "year-0001",
    "The earliest instant, 0001-01-01T00:00:00.000Z, loads.",
    "B09",
    doc(session("a", "0001-01-01T00:00:00.000Z")),
    True,
    True,
    load([L("a", 1, None, "0001-01-01T00:00:00.000Z")], lossy=False),
    "0001-01-01T12:00:00.000Z",
)
add(
    "timestamps",
    "year-9999",
    "The latest instant, 9999-12-31T23:59:59.999Z, loads.",
    "B09",
    doc(session("a", "9999-12-31T23:59:59.999Z")),
    True,
    True,
    load([L("a", 1, None, "9999-12-31T23:59:59.999Z")], lossy=False),
    "9999-12-31T23:59:59.999Z",
)
add(
    "timestamps",
    "offset-into-year-0001",
    "0001-01-01T00:30:00-01:00 is 0001-01-01T01:30Z: inside the range, loads.",
    "B09",
    doc(session("a", "0001-01-01T00:30:00-01:00")),
    True,
    False,
    load([L("a", 1, None, "0001-01-01T01:30:00.000Z")], lossy=False),
    "0001-01-01T12:00:00.000Z",
)

_TS_SKIP: list[tuple[str, str, bool, str]] = [
    ("no-zone", "2026-01-01T12:00:00.000", False, "no time zone"),
    ("date-only", "2026-01-01", False, "a date without a time"),
    ("time-only", "12:00:00.000Z", False, "a time without a date"),
    ("space-separator", "2026-01-01 12:00:00.000Z", False, "a space instead of T"),
    ("leap-second", "2016-12-31T23:59:60Z", False, "a leap second 23:59:60"),
    ("year-0000", "0000-01-01T00:00:00.000Z", False, "year 0000"),
    (
        "offset-before-year-0001",
        "0001-01-01T00:30:00+01:00",
        True,
        "0001-01-01T00:30+01:00, which is in year 0 once converted to UTC (schema-valid)",
    ),
    (
        "offset-after-year-9999",
        "9999-12-31T23:30:00-01:00",
        True,
        "9999-12-31T23:30-01:00, which is in year 10000 once converted to UTC (schema-valid)",
    ),
    ("five-digit-year", "10000-01-01T00:00:00.000Z", False, "a five-digit year"),
    ("expanded-year", "+002026-01-01T12:00:00.000Z", False, "an expanded year +002026"),
    ("february-30", "2026-02-30T12:00:00.000Z", False, "30 February"),
    ("february-29-non-leap", "2025-02-29T12:00:00.000Z", False, "29 February of 2025"),
    ("month-13", "2026-13-01T12:00:00.000Z", False, "month 13"),
    ("day-00", "2026-01-00T12:00:00.000Z", False, "day 00"),
    ("hour-24", "2026-01-01T24:00:00.000Z", False, "hour 24"),
    ("minute-60", "2026-01-01T12:60:00.000Z", False, "minute 60"),
    ("offset-plus-2400", "2026-01-01T12:00:00.000+24:00", False, "offset +24:00"),
    ("offset-minutes-60", "2026-01-01T12:00:00.000+01:60", False, "offset minutes 60"),
    ("offset-no-colon", "2026-01-01T12:00:00.000+0900", False, "an offset without a colon"),
    ("offset-hours-only", "2026-01-01T12:00:00.000+09", False, "an offset of hours only"),
    ("utc-word", "2026-01-01T12:00:00.000 UTC", False, "' UTC' as the zone"),
    ("comma-fraction", "2026-01-01T12:00:00,000Z", False, "a comma before the fraction"),
    ("empty-fraction", "2026-01-01T12:00:00.Z", False, "a dot without fraction digits"),
    (
        "non-ascii-digits",
        "\u0662\u0660\u0662\u0666-01-01T12:00:00.000Z",
        False,
        "Arabic-Indic digits in the year",
    ),
    ("trailing-newline", "2026-01-01T12:00:00.000Z\n", False, "a trailing newline"),
    ("leading-space", " 2026-01-01T12:00:00.000Z", False, "a leading space"),
    ("basic-format", "20260101T120000Z", False, "the ISO 8601 basic format"),
    ("epoch-string", "1767268800000", False, "epoch milliseconds as a string"),
    ("js-date-string", "Thu Jan 01 2026 12:00:00 GMT+0000", False, "Date.toString() form"),
]
for _short, _text, _rv, _desc in _TS_SKIP:
    for _member in ("createdAt", "lastAccessedAt"):
        if _member == "lastAccessedAt" and _short not in {
            "no-zone",
            "date-only",
            "leap-second",
            "offset-after-year-9999",
            "year-0000",
        }:
            continue
        _s = session("a")
        _s[_member] = _text
        _suffix = "" if _member == "createdAt" else "-last-accessed"
        add(
            "timestamps",
            _short + _suffix,
            f"A {_member} with {_desc} is invalid: the session is skipped, the next loads.",
            "B15",
            doc(_s, session(_B)),
            _rv,
            False,
            load([L(_B)], [S("sessions[0]", f"{_member}: {_desc}")], lossy=True),
        )
    if _short in {"no-zone", "leap-second", "offset-before-year-0001", "year-0000"}:
        add(
            "timestamps",
            _short + "-turn",
            f"A turn timestamp with {_desc}: only the turn is skipped.",
            "B15",
            doc(session("a", turns=[turn("p0"), turn(timestamp=_text)])),
            _rv,
            False,
            load([L("a", 1)], [S("sessions[0].turns[1]", f"timestamp: {_desc}")], lossy=True),
        )

# ---------------------------------------------------------------------------------------------
# expiry/ — expired sessions load and are invisible (B17)

add(
    "expiry",
    "expired-invisible",
    "A live and an expired session: only the live one is visible; not lossy (loaded, then "
    "invisible).",
    "B17",
    doc(session("old", "2025-12-30T00:00:00.000Z"), session("live")),
    True,
    True,
    load([L("live")], lossy=False),
)
add(
    "expiry",
    "all-expired",
    "Every session expired: an empty list, not lossy.",
    "B17",
    doc(session("x", "2025-12-31T00:00:00.000Z"), session("y", "2020-01-01T00:00:00.000Z")),
    True,
    True,
    load([], lossy=False),
)
add(
    "expiry",
    "exactly-24h-live",
    "lastAccessedAt exactly 24 h before now: live.",
    "B17",
    doc(session("edge", "2026-01-01T00:00:00.000Z")),
    True,
    True,
    load([L("edge", 1, None, "2026-01-01T00:00:00.000Z")], lossy=False),
)
add(
    "expiry",
    "24h-plus-1ms-expired",
    "lastAccessedAt 24 h and 1 ms before now: expired.",
    "B17",
    doc(session("gone", "2025-12-31T23:59:59.999Z")),
    True,
    True,
    load([], lossy=False),
)
add(
    "expiry",
    "future-live",
    "lastAccessedAt in the future: live.",
    "B17",
    doc(session("future", "2030-06-01T00:00:00.000Z")),
    True,
    True,
    load([L("future", 1, None, "2030-06-01T00:00:00.000Z")], lossy=False),
)
add(
    "expiry",
    "old-created-recent-access",
    "Expiry follows lastAccessedAt only: a session created a year ago and accessed recently "
    "is live.",
    "B17",
    doc(session("a", created="2025-01-01T00:00:00.000Z")),
    True,
    True,
    load([L("a", created="2025-01-01T00:00:00.000Z")], lossy=False),
)
add(
    "expiry",
    "offset-hides-expiry",
    "2026-01-01T08:59:59.999+09:00 looks 15 h old but is 2025-12-31T23:59:59.999Z, 24 h + 1 ms "
    "before now: expired. The same instant in UTC form beside it at exactly 24 h is live.",
    "B17",
    doc(
        session("tokyo", "2026-01-01T08:59:59.999+09:00"),
        session("edge", "2026-01-01T09:00:00.000+09:00"),
    ),
    True,
    False,
    load([L("edge", 1, None, "2026-01-01T00:00:00.000Z")], lossy=False),
)
add(
    "expiry",
    "own-now",
    "The same file read with a clock of 2026-03-01: every session is expired.",
    "B17",
    doc(session("a"), session("b", "2026-01-01T11:00:00.000Z")),
    True,
    True,
    load([], lossy=False),
    "2026-03-01T00:00:00.000Z",
)

# ---------------------------------------------------------------------------------------------
# order/ — list order: lastAccessedAt descending, ties by file position (B04)

add(
    "order",
    "out-of-order",
    "Sessions in the file out of timestamp order load in list order.",
    "B04",
    doc(
        session("t10", "2026-01-01T10:00:00.000Z"),
        session("t23", "2026-01-01T23:00:00.000Z"),
        session("t03", "2026-01-01T03:00:00.000Z"),
        session("t15", "2026-01-01T15:00:00.000Z"),
    ),
    True,
    True,
    load(
        [
            L("t23", at="2026-01-01T23:00:00.000Z"),
            L("t15", at="2026-01-01T15:00:00.000Z"),
            L("t10", at="2026-01-01T10:00:00.000Z"),
            L("t03", at="2026-01-01T03:00:00.000Z"),
        ],
        lossy=False,
    ),
)
add(
    "order",
    "ties-file-order",
    "Equal lastAccessedAt: earlier in the file = accessed later = listed first.",
    "B04",
    doc(session("zeta"), session("alpha"), session("mid")),
    True,
    True,
    load([L("zeta"), L("alpha"), L("mid")], lossy=False),
)
add(
    "order",
    "ties-interleaved",
    "Ties interleaved with other timestamps: sort by time, ties keep file order.",
    "B04",
    doc(
        session("x1", "2026-01-01T10:00:00.000Z"),
        session("y1"),
        session("x2", "2026-01-01T10:00:00.000Z"),
        session("z", "2026-01-01T20:00:00.000Z"),
        session("y2"),
        session("x3", "2026-01-01T10:00:00.000Z"),
    ),
    True,
    True,
    load(
        [
            L("z", at="2026-01-01T20:00:00.000Z"),
            L("y1"),
            L("y2"),
            L("x1", at="2026-01-01T10:00:00.000Z"),
            L("x2", at="2026-01-01T10:00:00.000Z"),
            L("x3", at="2026-01-01T10:00:00.000Z"),
        ],
        lossy=False,
    ),
)
add(
    "order",
    "ties-across-offsets",
    "The same instant written with different offsets is a tie: file order decides.",
    "B04",
    doc(
        session("first", "2026-01-01T21:00:00.000+09:00"),
        session("second", "2026-01-01T12:00:00.000Z"),
        session("third", "2026-01-01T07:00:00.000-05:00"),
    ),
    True,
    False,
    load([L("first"), L("second"), L("third")], lossy=False),
)
add(
    "order",
    "ties-after-truncation",
    "12:00:00.0001Z and 12:00:00.0009Z are equal once truncated to milliseconds: a tie, so file "
    "order decides (not the untruncated digits); lossy.",
    "B04",
    doc(
        session("early-digits", "2026-01-01T12:00:00.0001Z"),
        session("late-digits", "2026-01-01T12:00:00.0009Z"),
    ),
    True,
    False,
    load([L("early-digits"), L("late-digits")], lossy=True),
)
add(
    "order",
    "millisecond-apart",
    "One millisecond apart is not a tie: the later one is listed first whatever the file order.",
    "B04",
    doc(session("older", "2026-01-01T12:00:00.000Z"), session("newer", "2026-01-01T12:00:00.001Z")),
    True,
    True,
    load([L("newer", at="2026-01-01T12:00:00.001Z"), L("older")], lossy=False),
)

# More than 100 live sessions: the cap (B18) holds at load too, evicting the last in list
# order; evicting discards information, so the load is lossy.
_N = 130
_many = []
for _k in range(_N):
    _i = (_k * 37) % _N  # a fixed permutation of the file order
    if _i % 13 == 0:
        _at = f"2025-12-{1 + _i // 13:02d}T00:00:00.000Z"  # 10 expired sessions
    else:
        _at = f"2026-01-01T{_i % 20:02d}:00:00.000Z"  # ties among equal _i % 20
    _many.append(session(f"s{_i:03d}", _at, turns=[]))
_live = [(pos, s) for pos, s in enumerate(_many) if not s["lastAccessedAt"].startswith("2025")]
_live.sort(key=lambda p: (p[1]["lastAccessedAt"], -p[0]), reverse=True)
add(
    "order",
    "more-than-100-sessions",
    f"{_N} sessions in shuffled order, 10 of them expired: of the {_N - 10} live ones the 100 "
    "first in list order load; the rest are evicted (B18), which makes the load lossy.",
    "B18",
    doc(*_many),
    True,
    False,
    load([L(s["id"], 0, None, s["lastAccessedAt"]) for _, s in _live[:100]], lossy=True),
)


# Clock skew: more than 100 live sessions whose lastAccessedAt lie up to a day AFTER now.
# Expiry is now - lastAccessedAt > 24 h, so a future session is live; the cap still loads the
# first 100 in list order (time descending, ties: earlier in the file first).
_N_SKEW = 120
_skew = []
for _k in range(_N_SKEW):
    _i = (_k * 47) % _N_SKEW  # a fixed permutation of the file order
    _hour = 1 + _i % 24  # 2026-01-02T01:00Z .. 2026-01-03T00:00Z, many ties
    _at = f"2026-01-02T{_hour:02d}:00:00.000Z" if _hour < 24 else "2026-01-03T00:00:00.000Z"
    _skew.append(session(f"f{_i:03d}", _at, turns=[]))
_skew_list = sorted(enumerate(_skew), key=lambda p: (p[1]["lastAccessedAt"], -p[0]), reverse=True)
assert all(s["lastAccessedAt"] > NOW for s in _skew)
add(
    "order",
    "more-than-100-in-the-future",
    f"Clock skew: {_N_SKEW} sessions whose lastAccessedAt are 1 to 24 hours after now. Future "
    "timestamps are live (expiry is now - lastAccessedAt > 24 h), so the first 100 in list "
    "order load (time descending, ties by file position) and the other "
    f"{_N_SKEW - 100} are evicted by the cap (B18): lossy, a backup is kept.",
    "B18",
    doc(*_skew),
    True,
    False,
    load([L(s["id"], 0, None, s["lastAccessedAt"]) for _, s in _skew_list[:100]], lossy=True),
)
# ---------------------------------------------------------------------------------------------


def manifest() -> dict[str, Any]:
    """The manifest (SPEC.md §7): its format, the vectors' version (:data:`VERSION`), ``now``
    and every vector, in the order of this file; vector names are unique."""
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names)), "vector names must be unique"
    return {"version": MANIFEST_FORMAT, "vectors_version": VERSION, "now": NOW, "vectors": VECTORS}


def write(out: Path) -> None:
    """Write every vector file and manifest.json under ``out``, replacing old vector files."""
    for category in CATEGORIES:
        shutil.rmtree(out / category, ignore_errors=True)
    for path, data in sorted(FILES.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    # Turn contents may hold lone surrogates: escaped like the vector files' (see enc()).
    text = json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n"
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    (out / "manifest.json").write_bytes(text.encode("utf-8"))


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
