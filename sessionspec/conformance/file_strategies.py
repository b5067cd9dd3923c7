"""Hypothesis strategies of sessions files a backend did not write (SPEC.md §3, §7).

``foreign_files(now)`` gives the raw bytes of such files, from three sources:

- ``mutated_documents(now)``: a small valid document with zero or more targeted mutations: a
  required member dropped, a wrong type, a bad or naive timestamp, digits below the
  millisecond, a duplicate or invalid id, unknown or repeated members, a wrong or missing
  version, a bad envelope, expired, boundary and future sessions, more than 100 live sessions,
  and at the byte level a truncation, a BOM, invalid UTF-8 or trailing data (B13-B18);
- ``schema_documents(now)``: documents of the reader profile (``sessions.schema.json``), its
  leaves drawn by hypothesis-jsonschema's ``from_schema``;
- ``vector_files()``: every file vector of the manifest.

What a conforming reader must make of any of them is ``oracle_reader.expected_load``. Files
stay small (at most 8 sessions of at most 4 turns and short strings, apart from the
over-the-cap mutation and the vectors), everything is drawn from hypothesis (deterministic
under ``derandomize``), and shrinking goes toward ``{"version": 1, "sessions": []}``: the
mutation list shrinks to empty and the document to no sessions.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn
from hypothesis_jsonschema import from_schema

from sessionspec.conformance.oracle import (
    MAX_SESSIONS,
    SESSION_TTL,
    format_timestamp,
    parse_timestamp,
    read_timestamp,
    to_millis,
)
from sessionspec.conformance.strategies import ID_ALPHABET, texts
from sessionspec.spec import reader_schema

# -- the vectors (SPEC.md §7) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vector:
    """One file vector (SPEC.md §7): its bytes, the reader's clock and the manifest's
    ``expect``; ``behaviour`` is the one a reader breaks when it reaches another outcome."""

    name: str
    file: str
    behaviour: str
    raw: bytes
    now: datetime
    expect: dict[str, Any]


_VECTORS_ROOT: Final = resources.files("sessionspec.spec").joinpath("vectors")


@cache
def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(_VECTORS_ROOT.joinpath("manifest.json").read_bytes())
    return manifest


@cache
def vectors() -> tuple[Vector, ...]:
    """Every vector of ``sessionspec/spec/vectors/manifest.json``, in manifest order (§7;
    B04, B09, B13-B15, B17, B18), read through importlib.resources."""
    root = _VECTORS_ROOT
    manifest = _manifest()
    default_now = manifest["now"]
    return tuple(
        Vector(
            entry["name"],
            entry["file"],
            entry["behaviour"],
            root.joinpath(*entry["file"].split("/")).read_bytes(),
            parse_timestamp(entry.get("now", default_now)),
            entry["expect"],
        )
        for entry in manifest["vectors"]
    )


#: The manifest's default clock (2026-01-02T00:00:00.000Z): the "now" of files built around
#: no other.
VECTORS_NOW: Final = parse_timestamp(_manifest()["now"])


def vector_files() -> st.SearchStrategy[bytes]:
    """The bytes of every file vector (§7; B04, B09, B13-B15, B17, B18), smallest first, so
    shrinking goes toward the smallest vector that still shows a failure."""
    return st.sampled_from(sorted({vector.raw for vector in vectors()}, key=lambda r: (len(r), r)))


# -- writing documents --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Raw:
    """A JSON value written exactly as ``text`` (``1e0``, ``1.0000000000000000001``: the
    version spellings of B14)."""

    text: str


@dataclass(frozen=True, slots=True)
class Pairs:
    """A JSON object written member by member, so a name can repeat (§3.2 step 5, lossy by
    B15)."""

    members: tuple[tuple[str, Any], ...]


_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def encode_document(document: Any, *, indent: int | None = 2, ascii_only: bool = False) -> bytes:
    """The UTF-8 bytes of ``document`` (dicts, lists, str, int, float, bool, None, ``Raw``,
    ``Pairs``), as a writer would emit them (SPEC.md §3): lone surrogates escaped as
    ``\\uXXXX`` like JSON.stringify, so the bytes stay UTF-8 (B09, B10)."""
    parts: list[str] = []
    _write(document, parts, indent, ascii_only, 0)
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", "".join(parts))
    return text.encode("utf-8")


def _write(value: Any, out: list[str], indent: int | None, ascii_only: bool, depth: int) -> None:
    if isinstance(value, Raw):
        out.append(value.text)
        return
    if isinstance(value, dict | Pairs | list):
        items: Iterable[tuple[str | None, Any]]
        if isinstance(value, list):
            opener, closer, items = "[", "]", ((None, v) for v in value)
        else:
            members = value.members if isinstance(value, Pairs) else tuple(value.items())
            opener, closer, items = "{", "}", members
        items = list(items)
        if not items:
            out.append(opener + closer)
            return
        inner = "" if indent is None else "\n" + " " * (indent * (depth + 1))
        outer = "" if indent is None else "\n" + " " * (indent * depth)
        colon = ":" if indent is None else ": "
        out.append(opener)
        for n, (name, item) in enumerate(items):
            out.append(("," if n else "") + inner)
            if name is not None:
                out.append(json.dumps(name, ensure_ascii=ascii_only) + colon)
            _write(item, out, indent, ascii_only, depth + 1)
        out.append(outer + closer)
        return
    out.append(json.dumps(value, ensure_ascii=ascii_only, allow_nan=False))


# -- timestamps around now ----------------------------------------------------------------------

_MS: Final = timedelta(milliseconds=1)
#: Ages (now - last access) at the edges of expiry (B17): live, the exact 24 h boundary,
#: 1 ms past it, long expired, and in the future (a clock ahead of this one, §1.3).
AGES: Final = (
    timedelta(hours=1),
    timedelta(0),
    SESSION_TTL,
    SESSION_TTL + _MS,
    timedelta(hours=12),
    timedelta(days=3),
    -timedelta(hours=2),
)


def _spell(moment: datetime, offset_minutes: int, fraction: str, lower: bool) -> str:
    """``moment`` written in a reader-valid form: local time at ``offset_minutes``, the
    millisecond digits then ``fraction`` appended (``""`` none, ``"-"`` no fraction at all),
    ``t`` and ``z`` in lowercase if ``lower`` (SPEC.md §1.2)."""
    local = format_timestamp(moment + timedelta(minutes=offset_minutes))[:-1]  # drop the Z
    if fraction == "-":
        local = local[:-4] if local.endswith(".000") else local
    else:
        local += fraction
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    zone = "Z" if offset_minutes == 0 else f"{sign}{hours:02d}:{minutes:02d}"
    text = local + zone
    return text.replace("T", "t").replace("Z", "z") if lower else text


def timestamp_texts(now: datetime) -> st.SearchStrategy[str]:
    """Reader-valid timestamps around ``now`` (SPEC.md §1.2, B17): an age from ``AGES`` plus
    a few milliseconds, mostly in writer form, sometimes with an offset, without a fraction,
    with zero or non-zero digits below the millisecond (lossy, B15), or in lowercase."""
    base = to_millis(now)
    moments = st.builds(
        lambda age, jitter: base - age + jitter * _MS,
        st.sampled_from(AGES),
        st.sampled_from([0, 0, 1, -1, 7]),
    )
    spelling = st.tuples(
        st.sampled_from([0, 0, 540, -330, -1, 23 * 60 + 59]),
        st.sampled_from(["", "", "-", "000", "456", "0001"]),
        st.booleans(),
    )
    return st.builds(lambda m, s: _spell(m, *s), moments, spelling)


#: Timestamps a reader must reject (SPEC.md §1.2; the session or turn is skipped, B15).
BAD_TIMESTAMPS: Final = (
    "2026-01-01T12:00:00.000",  # naive: no zone
    "2016-12-31T23:59:60Z",  # leap second
    "2026-02-30T12:00:00.000Z",
    "2025-02-29T12:00:00.000Z",
    "0000-01-01T00:00:00.000Z",
    "2026-01-01T24:00:00.000Z",
    "2026-01-01T12:60:00.000Z",
    "2026-01-01T12:00:00.000+24:00",
    "2026-01-01T12:00:00.000+0900",
    "2026-01-01T12:00:00.000Z\n",
    " 2026-01-01T12:00:00.000Z",
    "2026-01-01 12:00:00.000Z",
    "2026-01-01",
    "2026-01-01T12:00:00.Z",
    "2026-01-01T12:00:00,000Z",
    "0001-01-01T00:30:00+01:00",  # year 0 in UTC
    "9999-12-31T23:30:00-01:00",  # year 10000 in UTC
    "\u0662\u0660\u0662\u0666-01-01T12:00:00.000Z",
    "+002026-01-01T12:00:00.000Z",
    "",
)


def bad_timestamps(now: datetime) -> st.SearchStrategy[str]:
    """Invalid timestamps (B15): fixed near-misses, and a valid one around ``now`` made
    naive by dropping its zone or given an impossible month."""
    around = timestamp_texts(now)
    return st.one_of(
        st.sampled_from(BAD_TIMESTAMPS),
        around.map(lambda text: text.rstrip("Zz")[:23]),
        around.map(lambda text: text[:5] + "13" + text[7:]),
    )


# -- valid documents ----------------------------------------------------------------------------

_short_texts = st.one_of(st.text(max_size=4), texts.map(lambda t: t[:4]))
_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=6)


def _turn(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"prompt": _short_texts, "response": _short_texts, "timestamp": timestamp_texts(now)}
    )


def _session(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    stamp = timestamp_texts(now)
    return st.fixed_dictionaries(
        {
            "id": _ids,
            "createdAt": stamp,
            "lastAccessedAt": stamp,
            "turns": st.lists(_turn(now), max_size=4),
        },
        optional={"codexConversationId": st.one_of(st.none(), _short_texts)},
    )


def valid_documents(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    """Reader-valid documents around ``now`` (SPEC.md §3.1): version 1 and up to 8 sessions
    with distinct ids, up to 4 turns each, short strings; expired, boundary and future
    sessions come from the timestamps (B17). Shrinks to ``{"version": 1, "sessions": []}``."""
    return st.builds(
        lambda sessions: {"version": 1, "sessions": sessions},
        st.lists(_session(now), max_size=8, unique_by=lambda s: s["id"]),
    )


# -- mutations ----------------------------------------------------------------------------------

#: Member names that v1 does not define: unknown members (lossy, B15), a case variant too.
UNKNOWN_NAMES: Final = ("title", "CreatedAt", "x", "metadata", "")
_WRONG_VALUES: Final[tuple[Any, ...]] = (None, 0, 1.5, True, "x", [], {}, ["x"])
_small_json: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3), st.just({})
)
#: Ids a reader must reject (SPEC.md §1.1, B15).
BAD_IDS: Final = ("", "a" * 257, "a b", "a/b", "a.b", "..", "abc\n", "\nabc", "caf\u00e9", "a\x00")
#: ``version`` spellings (SPEC.md §3.2 step 3, B14): the first five are the double 1.
VERSIONS: Final = (
    "1.0",
    "1e0",
    "10e-1",
    "1.0000000000000000001",
    "0.99999999999999999999",
    "2",
    "0",
    "-1",
    "1.5",
    "1.000001",
    "1e400",
    '"1"',
    "null",
    "true",
    "[1]",
)
#: The members of each level: 0 the envelope, 1 a session, 2 a turn (SPEC.md §3).
_MEMBERS: Final = {
    0: ("version", "sessions"),
    1: ("id", "createdAt", "lastAccessedAt", "turns", "codexConversationId"),
    2: ("prompt", "response", "timestamp"),
}

Where = tuple[int, ...]


class _Work:
    """A document being mutated. Objects are dicts; one that repeats a member name becomes
    ``Pairs`` in its parent (the envelope keeps its repeated members in ``prefix``), and no
    later mutation looks inside it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.prefix: list[tuple[str, Any]] = []

    def sessions(self) -> list[Any]:
        sessions = self.document.get("sessions")
        return sessions if isinstance(sessions, list) else []

    def paths(self, depth: int | None = None) -> list[Where]:
        """Paths to the dict objects: () the envelope, (i,) a session, (i, j) a turn."""
        found: list[Where] = [()]
        for i, session in enumerate(self.sessions()):
            if isinstance(session, dict):
                found.append((i,))
                turns = session.get("turns")
                for j, turn in enumerate(turns if isinstance(turns, list) else []):
                    if isinstance(turn, dict):
                        found.append((i, j))
        return [p for p in found if depth is None or len(p) == depth]

    def at(self, path: Where) -> dict[str, Any]:
        node: Any = self.document
        if path:
            node = self.sessions()[path[0]]
        if len(path) == 2:
            node = node["turns"][path[1]]
        assert isinstance(node, dict)
        return node

    def put(self, path: Where, value: Any) -> None:
        """Replace the session or turn at ``path`` (not the envelope) with ``value``."""
        if len(path) == 1:
            self.sessions()[path[0]] = value
        else:
            self.at(path[:1])["turns"][path[1]] = value

    def pick(self, draw: DrawFn, depth: int | None = None) -> tuple[Where, dict[str, Any]] | None:
        paths = self.paths(depth)
        if not paths:
            return None
        path = draw(st.sampled_from(paths))
        return path, self.at(path)

    def timestamps(self) -> list[tuple[dict[str, Any], str]]:
        found: list[tuple[dict[str, Any], str]] = []
        for path in self.paths():
            if path:
                node = self.at(path)
                names = ("createdAt", "lastAccessedAt") if len(path) == 1 else ("timestamp",)
                found.extend((node, name) for name in names)
        return found

    def finish(self) -> Any:
        """The document as written."""
        if not self.prefix:
            return self.document
        return Pairs((*self.prefix, *self.document.items()))


def _drop_member(draw: DrawFn, work: _Work, now: datetime) -> None:
    """A required member missing: the session or turn is skipped (B15), or without
    ``version`` (B14) or ``sessions`` (B13) the file is moved aside."""
    picked = work.pick(draw)
    assert picked is not None  # the envelope is always there
    path, node = picked
    names = [name for name in _MEMBERS[len(path)] if name in node]
    if names:
        del node[draw(st.sampled_from(names))]


def _wrong_type(draw: DrawFn, work: _Work, now: datetime) -> None:
    """A member of the wrong type (B13, B14 or B15, depending on the member)."""
    picked = work.pick(draw)
    assert picked is not None
    path, node = picked
    node[draw(st.sampled_from(_MEMBERS[len(path)]))] = copy.deepcopy(
        draw(st.sampled_from(_WRONG_VALUES))
    )


def _bad_timestamp(draw: DrawFn, work: _Work, now: datetime) -> None:
    """An invalid or naive timestamp: its session or turn is skipped (B15)."""
    members = work.timestamps()
    if members:
        node, name = draw(st.sampled_from(members))
        node[name] = draw(bad_timestamps(now))


def _sub_millisecond(draw: DrawFn, work: _Work, now: datetime) -> None:
    """Digits below the millisecond: zeros carry nothing, others make the load lossy (B15)."""
    members = work.timestamps()
    if members:
        node, name = draw(st.sampled_from(members))
        read = read_timestamp(node.get(name))
        moment = read.moment if read is not None else to_millis(now)
        node[name] = _spell(moment, 0, draw(st.sampled_from(["0001", "000", "999999"])), False)


def _duplicate_id(draw: DrawFn, work: _Work, now: datetime) -> None:
    """A later session repeats an earlier one's id: the first that loaded wins (B15)."""
    sessions = [s for s in work.sessions() if isinstance(s, dict)]
    if len(sessions) >= 2:
        first = draw(st.integers(0, len(sessions) - 2))
        later = draw(st.integers(first + 1, len(sessions) - 1))
        sessions[later]["id"] = copy.deepcopy(sessions[first].get("id", "a"))
    elif sessions:
        work.sessions().append(copy.deepcopy(sessions[0]))


def _invalid_id(draw: DrawFn, work: _Work, now: datetime) -> None:
    """An id outside the grammar of SPEC.md §1.1: the session is skipped (B15)."""
    picked = work.pick(draw, depth=1)
    if picked is not None:
        picked[1]["id"] = draw(st.sampled_from(BAD_IDS))


def _unknown_member(draw: DrawFn, work: _Work, now: datetime) -> None:
    """A member v1 does not define, at any level: ignored, lossy (B15)."""
    picked = work.pick(draw)
    assert picked is not None
    path, node = picked
    name = draw(st.sampled_from(UNKNOWN_NAMES))
    if name not in _MEMBERS[len(path)]:
        node[name] = draw(_small_json)


def _repeated_name(draw: DrawFn, work: _Work, now: datetime) -> None:
    """A member name twice in one object: the last value is read, lossy (B15)."""
    picked = work.pick(draw)
    assert picked is not None
    path, node = picked
    if not node:
        return
    name = draw(st.sampled_from(sorted(node)))
    first = draw(st.sampled_from([copy.deepcopy(node[name]), "earlier", None]))
    if not path:
        work.prefix.append((name, first))
    else:
        work.put(path, Pairs(((name, first), *node.items())))


def _version(draw: DrawFn, work: _Work, now: datetime) -> None:
    """Another spelling of ``version``: the double 1 loads, anything else is moved aside
    (B14); or no version at all."""
    if draw(st.booleans()):
        work.document["version"] = Raw(draw(st.sampled_from(VERSIONS)))
    else:
        work.document.pop("version", None)


def _envelope(draw: DrawFn, work: _Work, now: datetime) -> None:
    """``sessions`` not an array (B13)."""
    work.document["sessions"] = copy.deepcopy(draw(st.sampled_from([None, {}, "[]", 0])))


def _not_an_object(draw: DrawFn, work: _Work, now: datetime) -> None:
    """A session or turn that is not an object: skipped alone (B15)."""
    paths = work.paths()[1:]
    if paths:
        path = draw(st.sampled_from(paths))
        work.put(path, copy.deepcopy(draw(st.sampled_from([None, 0, "x", [], True]))))


def _conversation_id(draw: DrawFn, work: _Work, now: datetime) -> None:
    """codexConversationId null (absent, not lossy), "" (a value, B06) or a number (B15)."""
    picked = work.pick(draw, depth=1)
    if picked is not None:
        picked[1]["codexConversationId"] = draw(st.sampled_from([None, "", 7]))


def _age(draw: DrawFn, work: _Work, now: datetime) -> None:
    """A session's last access set to an age from ``AGES``: live, exactly 24 h (live),
    24 h + 1 ms (expired), long expired, or later than now (live) (B17)."""
    picked = work.pick(draw, depth=1)
    if picked is not None:
        moment = to_millis(now) - draw(st.sampled_from(AGES))
        picked[1]["lastAccessedAt"] = format_timestamp(moment)


def _over_the_cap(draw: DrawFn, work: _Work, now: datetime) -> None:
    """101 to 103 more live sessions, in three-way ties, so the cap of 100 is passed: those
    after the 100th in list order are evicted at load, lossy (B18). Their ids start with
    ``cap``, which no other id here does."""
    sessions = work.document.get("sessions")
    if not isinstance(sessions, list) or len(sessions) > MAX_SESSIONS:
        return  # once is enough: the file stays at most 111 sessions
    base = to_millis(now)
    for n in range(MAX_SESSIONS + draw(st.integers(1, 3))):
        stamp = format_timestamp(base - (n % 3) * timedelta(minutes=1))
        sessions.append({"id": f"cap{n}", "createdAt": stamp, "lastAccessedAt": stamp, "turns": []})


Mutation = Callable[[DrawFn, _Work, datetime], None]
#: The structural mutations, simplest first (``sampled_from`` shrinks toward the start).
MUTATIONS: Final[tuple[Mutation, ...]] = (
    _unknown_member,
    _drop_member,
    _wrong_type,
    _bad_timestamp,
    _sub_millisecond,
    _duplicate_id,
    _invalid_id,
    _conversation_id,
    _age,
    _not_an_object,
    _repeated_name,
    _version,
    _envelope,
    _over_the_cap,
)

#: Byte-level damage (B13): all but surrounding whitespace make the file unparseable.
BYTE_MUTATIONS: Final = ("bom", "truncate", "invalid-utf8", "trailing", "whitespace", "control")


def _damage(draw: DrawFn, raw: bytes, kind: str) -> bytes:
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw
    if kind == "whitespace":
        return b" \t\r\n" + raw + b"\n"
    if kind == "trailing":
        return raw + draw(st.sampled_from([b"x", b"\x00", b"\n" + raw, b"}"]))
    at = draw(st.integers(0, max(len(raw) - 1, 0)))
    if kind == "truncate":
        return raw[:at]
    if kind == "invalid-utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82"]))
        return raw[:at] + bad + raw[at:]
    return raw[:at] + b"\x01" + raw[at:]  # a raw control character


@st.composite
def mutated_documents(draw: DrawFn, now: datetime = VECTORS_NOW) -> bytes:
    """A valid document around ``now`` (``valid_documents``) with up to three structural
    mutations (``MUTATIONS``), written compact or indented, ASCII or UTF-8, then possibly one
    byte-level damage (``BYTE_MUTATIONS``): SPEC.md §3.2, B13-B18."""
    work = _Work(copy.deepcopy(draw(valid_documents(now))))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        mutation(draw, work, now)
    raw = encode_document(
        work.finish(),
        indent=draw(st.sampled_from([2, None])),
        ascii_only=draw(st.booleans()),
    )
    # One file in four is damaged; 0 (no damage) is where shrinking goes.
    if draw(st.integers(0, 3)) < 3:
        return raw
    return _damage(draw, raw, draw(st.sampled_from(BYTE_MUTATIONS)))


# -- documents of the reader schema -------------------------------------------------------------

#: Size limits put on the reader schema so files stay small.
_ARRAY_LIMITS: Final = {"sessions": 8, "turns": 4}
_STRING_LIMIT: Final = 6


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with every local ``$ref`` replaced by its definition (the reader schema has
    no recursion; hypothesis-jsonschema does not resolve a ``urn:`` base itself)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
        return {k: _inline(v, definitions) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


def _from_node(node: dict[str, Any], name: str, now: datetime) -> st.SearchStrategy[Any]:
    """Objects and arrays composed from the schema's own properties, required members and
    items; every leaf drawn by hypothesis-jsonschema's ``from_schema``. (hypothesis-jsonschema
    0.23.1 cannot draw objects under Hypothesis 6.170: it calls ``cu.many(...).more()``,
    which Hypothesis no longer has.)"""
    kind = node.get("type")
    if kind == "object":
        properties: dict[str, Any] = node.get("properties", {})
        required = set(node.get("required", ()))
        known = st.fixed_dictionaries(
            {k: _from_node(v, k, now) for k, v in properties.items() if k in required},
            optional={k: _from_node(v, k, now) for k, v in properties.items() if k not in required},
        )
        unknown = st.dictionaries(
            st.sampled_from([n for n in UNKNOWN_NAMES if n not in properties]),
            _small_json,
            max_size=1,
        )
        return st.builds(lambda k, u: {**u, **k}, known, unknown)
    if kind == "array":
        return st.lists(_from_node(node["items"], name, now), max_size=_ARRAY_LIMITS[name])
    leaf = dict(node)
    if "string" in (kind if isinstance(kind, list) else [kind]) and "format" not in leaf:
        leaf["maxLength"] = _STRING_LIMIT if "pattern" not in leaf else 8
    strategy = from_schema(leaf)
    if leaf.get("format") == "date-time":
        # Timestamps anywhere in 0001-9999 are almost all expired: mix in ones around now.
        return st.one_of(timestamp_texts(now), strategy)
    return strategy


@cache
def _reader_profile() -> dict[str, Any]:
    schema = reader_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    for key in ("$schema", "$id"):
        inlined.pop(key, None)
    return inlined


def schema_documents(now: datetime = VECTORS_NOW) -> st.SearchStrategy[bytes]:
    """Documents valid under the reader profile (``sessions.schema.json``, SPEC.md §3.1),
    small, written compact or indented: duplicate ids, unknown members, offsets,
    sub-millisecond digits and instants out of range in UTC all occur (B15, B17)."""
    return st.builds(
        lambda document, indent, ascii_only: encode_document(
            document, indent=indent, ascii_only=ascii_only
        ),
        _from_node(_reader_profile(), "", now),
        st.sampled_from([2, None]),
        st.booleans(),
    )


# -- all of them --------------------------------------------------------------------------------


def foreign_files(now: datetime = VECTORS_NOW) -> st.SearchStrategy[bytes]:
    """Raw bytes of sessions files a backend did not write, around the clock ``now``: mutated
    valid documents, reader-profile documents and the file vectors (SPEC.md §3, §7; B13-B18).

    ``oracle_reader.expected_load(raw, now)`` says what a conforming reader makes of each.
    Shrinks toward the mutation-free, session-free document ``{"version": 1, "sessions": []}``.
    """
    return st.one_of(mutated_documents(now), schema_documents(now), vector_files())
