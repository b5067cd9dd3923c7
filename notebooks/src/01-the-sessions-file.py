# %% [markdown]
# # 1 · The sessions file
#
# codex-mcp-server keeps every conversation it has with the Codex CLI in one JSON file,
# `~/.codex-mcp/sessions.json`. That file outlives the process that wrote it: the server is
# restarted, upgraded, run twice side by side, and one day a different implementation (this
# project's Python reference, or your own backend) opens a file that the TypeScript server
# wrote. A file shared across time and across programs is an **interface**, and an interface
# needs a contract that a machine can check. This notebook reads that contract:
#
# 1. the shape of the file;
# 2. the JSON Schema in its **two profiles**, reader and writer, and *why* there are two;
# 3. validating good and bad files from the language-neutral vectors in `sessionspec/spec/vectors/`, and
#    reading the errors a validator gives you;
# 4. timestamps: what a writer emits (`toISOString()`), what a reader accepts;
# 5. session ids: one grammar, and the regex trap it avoids.
#
# Everything runs in a temporary directory; nothing here reads or writes your real
# `~/.codex-mcp`.

# %%
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sessionspec import spec

print("schema version:", spec.SCHEMA_VERSION)
print("at most", spec.MAX_SESSIONS, "sessions, idle sessions expire after", spec.SESSION_TTL)

# %% [markdown]
# ## 1. The shape
#
# A JSON object with a `version` and a list of `sessions`. Each session has an `id`, two
# timestamps, its conversation `turns` in order, and optionally the id of the Codex thread it
# continues (`codexConversationId`). Member names are camelCase because the first program to
# write the file was TypeScript; the Python API (`spec.SessionData`) uses snake_case and the
# mapping is fixed by the spec.

# %%
good = {
    "version": 1,
    "sessions": [
        {
            "id": "6f1c2f52-3c0e-4c71-9a55-5f0b1d8f3a2e",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "lastAccessedAt": "2026-01-01T00:05:00.000Z",
            "turns": [
                {"prompt": "hi", "response": "hello", "timestamp": "2026-01-01T00:05:00.000Z"}
            ],
            "codexConversationId": "conv_123",
        }
    ],
}
print(json.dumps(good, indent=2))

# %% [markdown]
# ## 2. Two profiles: liberal reader, strict writer
#
# The spec ships **two** schemas of the same file:
#
# | profile | file | answers the question |
# | --- | --- | --- |
# | reader | `sessionspec/spec/sessions.schema.json` | "will a v1 reader load *all* of this?" |
# | writer | `sessionspec/spec/sessions-writer.schema.json` | "is this exactly what a conforming writer emits?" |
#
# Why not one? Because the two sides of an interface have different duties. A **reader** meets
# files it did not write: from upstream's TypeScript server, from a hand edit, from a newer
# program that added a member. Rejecting those would throw away a user's history over
# presentation details, so the reader profile allows unknown members, a `null` conversation
# id, time-zone offsets and any number of fraction digits. A **writer** is under our control,
# so it can be held to one canonical form that *every* reader, including the original
# TypeScript code, handles: no extra members, the conversation id absent rather than `null`,
# timestamps exactly as JavaScript's `Date.prototype.toISOString()` prints them, at most 100
# sessions. This is Postel's robustness principle written down as two schemas, and it gives a
# useful guarantee: **every writer-valid file is reader-valid**, never the other way round.
#
# `spec.reader_validator()` and `spec.writer_validator()` return ready `jsonschema` validators
# (draft 2020-12) with `format` checking switched on, so `"format": "date-time"` is really
# checked rather than treated as a comment.

# %%
reader = spec.reader_validator()
writer = spec.writer_validator()
print(reader.schema["$id"])
print(writer.schema["$id"])
print("good file, reader profile:", reader.is_valid(good))
print("good file, writer profile:", writer.is_valid(good))

# %% [markdown]
# Now a file that upstream or a hand edit could plausibly produce: an extra member on a
# session, a `null` conversation id, and a timestamp with a `+02:00` offset and microseconds.
# A reader loads it; a conforming writer would never have written it.
#
# `iter_errors` yields **every** error, not only the first. Each error carries
# `error.json_path` (where in the document, as a JSONPath) and `error.message` (what is wrong).
# Sorting by path gives a stable, readable report.

# %%
import copy

liberal = copy.deepcopy(good)
session = liberal["sessions"][0]
session["codexConversationId"] = None
session["pinned"] = True  # a member some other program added
session["lastAccessedAt"] = "2026-01-01T02:05:00.123456+02:00"


def report(validator, document):
    errors = sorted(validator.iter_errors(document), key=lambda e: e.json_path)
    if not errors:
        print("  valid")
    for error in errors:
        print(f"  {error.json_path:<32} {error.message}")
    return errors


print("reader profile:")
report(reader, liberal)
print("writer profile:")
_ = report(writer, liberal)

# %% [markdown]
# Read the writer's complaints one by one: the `pinned` member is "additional" (the writer
# schema says `additionalProperties: false`), `null` is not a string, and the offset
# timestamp does not match the `toISOString()` pattern. All three are *presentation or
# unknown data* that a reader tolerates, which is exactly the reader/writer split above.
#
# Loading that file is **lossy**, though: a v1 program cannot carry `pinned` or the
# microseconds into memory, so the next save would drop them. The spec therefore makes a
# reader keep the original bytes in a backup before it overwrites such a file (B15); notebook 2
# shows that backup.
#
# Not everything fits in a schema. Two writer rules are checked by the conformance kit
# instead: ids in one file are unique, and sessions are listed most recently accessed first.
# A schema cannot compare array elements with each other.

# %%
duplicated = copy.deepcopy(good)
duplicated["sessions"].append(copy.deepcopy(good["sessions"][0]))
print("two sessions with one id, writer-valid by schema:", writer.is_valid(duplicated))

# %% [markdown]
# ## 3. The vectors: files as bytes, outcomes as data
#
# A schema tells you whether a document is valid; it does not tell a reader what to *do* with
# an invalid one. `sessionspec/spec/vectors/` does. It is a suite in the spirit of the
# JSON-Schema-Test-Suite: each entry of `manifest.json` names a file (raw bytes, so BOMs,
# broken UTF-8 and trailing garbage are exact) and states whether it is valid under each
# profile and what a v1 reader must do when it opens it:
#
# * `load` — open it, with these sessions in this order, these records skipped, and a backup
#   if the load was lossy;
# * `move-aside` — the file cannot be understood at all (not JSON, unknown version, no
#   sessions array): move it to a `.bak`, byte-identical, and start empty;
# * `raise` — the file cannot even be read: raise `OSError`, touch nothing.
#
# Because the vectors are plain files plus JSON, a TypeScript or Go implementation can run the
# same suite.

# %%
from collections import Counter

VECTORS = Path(spec.__file__).parent / "vectors"
manifest = json.loads((VECTORS / "manifest.json").read_text(encoding="utf-8"))
vectors = manifest["vectors"]
print(len(vectors), "vectors; the reader's clock is", manifest["now"])
print(Counter(v["expect"]["result"] for v in vectors))
for v in vectors[:8]:
    print(f"  {v['behaviour']}  {v['name']:<40} -> {v['expect']['result']}")

# %% [markdown]
# Schema validation needs a JSON value, so first the bytes must *be* a JSON text: UTF-8 with
# no byte-order mark, one value and nothing after it. Python's `json` module is more lenient
# than that: `json.loads(b'\xef\xbb\xbf{"a": NaN}')` happily returns `{'a': nan}`, skipping
# the BOM and accepting a `NaN` that is not JSON at all. So the parser below is strict on
# purpose. A file that fails here is valid under neither profile.

# %%
print("json.loads, lenient:", json.loads(b'\xef\xbb\xbf{"a": NaN}'))


def parse_strict(data: bytes):
    """The bytes as a JSON value, or raise ValueError: UTF-8, no BOM, RFC 8259 only."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ValueError("starts with a byte-order mark")
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constants)


def validity(data: bytes):
    try:
        document = parse_strict(data)
    except ValueError as exc:
        return False, False, f"not a JSON text: {exc}"
    return reader.is_valid(document), writer.is_valid(document), None


try:
    parse_strict(b'\xef\xbb\xbf{"a": NaN}')
except ValueError as exc:
    print("parse_strict:        ", exc)

rows = []
for v in vectors:
    data = (VECTORS / v["file"]).read_bytes()
    r_ok, w_ok, why = validity(data)
    rows.append((v, r_ok, w_ok, why))

mismatches = [
    (v["name"], (r, w), (v["reader_valid"], v["writer_valid"]))
    for v, r, w, _ in rows
    if (r, w) != (v["reader_valid"], v["writer_valid"])
]
print("vectors where our validation disagrees with the manifest:", mismatches or "none")
assert not mismatches

# %% [markdown]
# Our two validators reproduce every `reader_valid` / `writer_valid` flag of the manifest. Now
# the interesting part: put **schema validity** next to **what a reader must do**. If the
# schema were the whole story, every reader-invalid file would be rejected. It is not:

# %%
table = Counter()
for v, r_ok, w_ok, _ in rows:
    profile = "writer-valid" if w_ok else "reader-valid only" if r_ok else "reader-invalid"
    table[(profile, v["expect"]["result"])] += 1
for (profile, result), count in sorted(table.items()):
    print(f"  {profile:<18} -> {result:<10} x{count}")

# %% [markdown]
# Many reader-invalid files still **load**. A reader does not throw away a file because one
# turn has a bad timestamp: it skips that record alone (B15), loads everything else, and keeps
# the original bytes in a backup. Only when the envelope itself is unusable does it move the
# file aside. The schema draws the line "loads completely"; the vectors draw the line of
# behaviour.
#
# Let us read the errors of a few such files. The JSON path tells us *which record* a reader
# will skip, and lines up with the manifest's `skips`.

# %%
by_name = {v["name"]: (v, r_ok, w_ok, why) for v, r_ok, w_ok, why in rows}


def explain(name):
    v, r_ok, w_ok, _ = by_name[name]
    print(f"{name} ({v['behaviour']}): {v['description']}")
    print(f"  reader-valid={r_ok} writer-valid={w_ok} -> {v['expect']['result']}")
    report(reader, parse_strict((VECTORS / v["file"]).read_bytes()))
    for skip in v["expect"].get("skips", []):
        print(f"  manifest: skip {skip['location']:<22} ({skip['reason']})")
    print("  manifest: lossy =", v["expect"].get("lossy"))
    print()


explain("records-mixed")

# %% [markdown]
# Each schema error's `json_path` names a record (`$.sessions[1]`, `$.sessions[2].turns[1]`,
# ...) and the manifest's skips name the same locations: a bad *turn* costs that turn, not its
# session; a bad *session* costs that session, not the file. All but one: the manifest also
# skips `sessions[4]`, and the validator says nothing about it. It repeats the id of
# `sessions[0]`, and uniqueness is a rule no schema can state.
#
# The converse also holds: **schema-valid does not mean loaded as is**. Two kinds of rule live
# outside any schema:

# %%
explain("records-duplicate-ids")
explain("timestamps-offset-before-year-0001")

# %% [markdown]
# A file with one id three times is even *writer*-valid by schema (a schema cannot compare
# array elements), yet a reader keeps the first and skips the others. And
# `0001-01-01T00:30+01:00` matches the timestamp pattern, but converted to UTC it falls in year
# 0, which neither JavaScript's `Date` nor Python's `datetime` can hold; the reader must parse,
# not only pattern-match (section 4 comes back to this).
#
# %% [markdown]
# And the files a reader must move aside. Some are not JSON at all (the error comes from the
# parser, not the schema), others are JSON with an envelope a v1 reader cannot trust, such as
# a `version` from the future (B14): writing a v1 file over a v2 file would destroy data this
# program cannot even represent. Note `version-1-point-5` and `version-string-1`: `1.5` and
# `"1"` are not version 1, and guessing would be worse than setting the file aside. The rule
# is the one every JSON library can apply (spec 1.1): read the number as a double, as
# `JSON.parse` does, and compare with 1 — so `1.0`, `10e-1` and even `1.0000000000000000001`
# (which rounds to 1.0) are version 1.

# %%
moved = [(v, why) for v, _, _, why in rows if v["expect"]["result"] == "move-aside"]
not_json = [v["name"] for v, why in moved if why]
print(f"{len(not_json)} of {len(moved)} move-aside vectors are not JSON texts at all, e.g.:")
for v, why in moved:
    if why and v["name"] in ("encoding-bom", "encoding-invalid-utf8", "envelope-trailing-garbage",
                             "envelope-truncated", "envelope-nan-literal", "envelope-empty-file"):
        print(f"  {v['name']:<30} {why[:70]}")
print("the others are JSON whose envelope is wrong:")
for v, why in moved:
    if not why and v["name"] in ("envelope-top-level-array", "envelope-sessions-object",
                                 "version-2", "version-1-point-5", "version-string-1",
                                 "version-absent", "version-2-with-v1-sessions"):
        document = parse_strict((VECTORS / v["file"]).read_bytes())
        error = min(reader.iter_errors(document), key=lambda e: len(e.json_path))
        print(f"  {v['name']:<30} {error.json_path}: {error.message[:50]}")

# %% [markdown]
# ## 4. Timestamps
#
# **Writers** emit exactly what JavaScript's `Date.prototype.toISOString()` emits:
# `YYYY-MM-DDTHH:MM:SS.mmmZ`, always UTC, always three fraction digits. One fixed form has
# three pay-offs: the TypeScript server parses it with `new Date(...)` and writes back the
# same string; two files with the same data are byte-comparable; and fixed-width UTC strings
# sort **lexicographically in time order**, so even a tool that compares strings gets the
# order right.
#
# In memory, timestamps are aware UTC `datetime`s with millisecond resolution:
# `spec.to_millis` converts to UTC and **truncates** (never rounds) below the millisecond, so
# memory holds exactly what the file can hold and a round trip is exact.

# %%
moment = datetime(2026, 3, 1, 9, 30, 15, 987654, tzinfo=timezone(timedelta(hours=2)))
print("in:           ", moment.isoformat())
print("to_millis:    ", spec.to_millis(moment).isoformat(), " (UTC, .987654 -> .987)")
print("file form:    ", spec.format_timestamp(moment))
print("Python's own: ", moment.astimezone(UTC).isoformat(), " (not the same string!)")
try:
    spec.to_millis(datetime(2026, 3, 1, 9, 30))
except spec.ValidationError as exc:
    print("naive datetime:", exc)

# %% [markdown]
# Python's `isoformat()` writes `+00:00` and six digits; a writer that used it would emit a
# file that the **reader** profile accepts but the **writer** profile rejects. That is exactly
# the kind of drift two profiles catch in CI.
#
# Why string order matters: with offsets, string order and time order disagree.

# %%
stamps = ["2026-01-01T10:00:00.000+02:00", "2026-01-01T09:00:00.000Z"]
print("as strings:", sorted(stamps))
print("in time:   ", sorted(stamps, key=spec.parse_timestamp))
canonical = [spec.format_timestamp(spec.parse_timestamp(s)) for s in stamps]
print("canonical: ", sorted(canonical), "<- both orders agree")

# %% [markdown]
# **Readers** accept more: RFC 3339 `date-time` with a zone, `T`/`Z` in either case, any
# number of fraction digits, `±HH:MM` offsets. They reject anything a JavaScript `Date` and a
# Python `datetime` could not both hold: year 0000, leap seconds (`:60`), a missing zone, a
# date without a time, non-ASCII digits, a trailing newline. One limit is *not* expressible in
# a schema pattern: the instant, once converted to UTC, must lie in years 0001–9999.
# `spec.parse_timestamp` is the executable definition; let us compare it with the reader
# schema's pattern-and-format check on each input.

# %%
ts_schema = {**reader.schema["$defs"]["timestamp"]}
ts_validator = type(reader)(ts_schema, format_checker=reader.FORMAT_CHECKER)

samples = [
    "2026-01-01T00:00:00.000Z",  # canonical
    "2026-01-01t00:00:00z",  # lower case, no fraction
    "2026-01-01T02:00:00.5+02:00",  # offset, one fraction digit
    "2026-01-01T00:00:00.123456789Z",  # nanoseconds: accepted, truncated, lossy
    "2026-01-01T00:00:00-00:00",  # "unknown local offset", read as UTC
    "2026-01-01T00:00:00",  # no zone
    "2026-01-01",  # no time
    "2016-12-31T23:59:60Z",  # leap second
    "0000-01-01T00:00:00Z",  # year zero
    "2026-02-30T00:00:00Z",  # not a calendar date
    "2026-01-01T00:00:00Z\n",  # trailing newline
    "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
]
for text in samples:
    schema_ok = ts_validator.is_valid(text)
    try:
        parsed = spec.format_timestamp(spec.parse_timestamp(text))
        lossy = " (lossy)" if spec.has_sub_millisecond_digits(text) else ""
        outcome = f"-> {parsed}{lossy}"
    except ValueError:
        outcome = "rejected"
    print(f"  schema {'ok ' if schema_ok else 'bad'}  {text!r:<34} {outcome}")

# %% [markdown]
# Every row agrees except the last: `0001-01-01T00:00:00+01:00` passes the schema but is the
# last hour of year 0 in UTC, which no `Date`/`datetime` pair can hold. That is why the spec
# says "a schema cannot check this; the vectors show it", and why a reader calls
# `parse_timestamp` rather than trusting the schema alone.
#
# ## 5. Session ids
#
# Ids travel through URLs, file names and log lines, and clients bring their own
# (`ensure_session`). So there is exactly one grammar, for every backend and every entry
# point: 1–256 ASCII letters, digits, `_` and `-`. `create_session` returns lowercase UUID4
# strings, which fit it.

# %%
import uuid

print("a fresh UUID4 looks like", uuid.uuid4())
candidates = ["6f1c2f52-3c0e-4c71-9a55-5f0b1d8f3a2e", "my-session_01", "", "a" * 256, "a" * 257,
              "has space", "../etc/passwd", "café", "ok\n", 42]
for candidate in candidates:
    shown = repr(candidate) if len(str(candidate)) < 40 else f"'aaa…' ({len(candidate)} chars)"
    print(f"  {spec.is_valid_session_id(candidate)!s:<5} {shown}")
try:
    spec.check_session_id("../etc/passwd")
except spec.ValidationError as exc:
    print("ValidationError:", exc)

# %% [markdown]
# The last candidate, `"ok\n"`, is the trap the grammar's wording ("no trailing newline")
# warns about. In Python's `re` (and in PCRE), `$` matches at the end of the string **or
# before a final newline**, so the obvious pattern lets a newline through into your log lines
# and file names. The spec's pattern uses `\Z` (and the schema uses `(?![\s\S])`, which means
# the same in every regex dialect).

# %%
import re

naive = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
print("naive pattern accepts 'ok\\n':", naive.match("ok\n") is not None)
print("spec pattern accepts 'ok\\n': ", spec.SESSION_ID_PATTERN.match("ok\n") is not None)
print("spec pattern:", spec.SESSION_ID_PATTERN.pattern)

# %% [markdown]
# ## What to take away
#
# * The file is an interface between programs and across time, so its contract is
#   machine-checkable: two schemas, a vector suite, and `spec`'s Python helpers.
# * **Reader liberal, writer strict.** Every writer-valid file is reader-valid. A reader that
#   sees something it cannot carry keeps the original bytes before overwriting.
# * Schema validity is not behaviour: the vectors say what a reader *does* with each file.
# * Timestamps are written in one canonical UTC form that sorts as text, read generously,
#   and truncated to milliseconds in memory.
# * One id grammar, anchored with `\Z`, not `$`.
#
# Next: notebook 2 opens the reference backend and watches it write this file.
