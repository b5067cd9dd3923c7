"""A corpus of hostile sessions files: generated mutations plus hand-picked named cases.

``write_corpus(directory, size)`` writes every file of the corpus into ``directory`` and
returns one ``CorpusFile`` per file: its name, kind, path, size, sha256 and the outcomes
SPEC.md §3.2 allows for it. ``tests/hostile_run.py`` opens each one in a child process; the CI
test (``tests/test_hostile_corpus.py``) runs the ``small`` size, ``benchmarks/hostile_corpus.py``
the ``full`` one.

Two parts:

- **generated** (kinds ``generated/...``): hypothesis draws a base file (bytes of real
  ``FileSessionStorage`` saves, the kit's ``mutated_documents`` and the file vectors, or a
  reader-profile document of the kit's ``schema_documents``, whose leaves come from
  hypothesis-jsonschema's ``from_schema``), then up to three hostile mutations: structural
  ones on the parsed document (a type swapped, a member or item removed, an extra member, a
  repeated member name, a number edge case), written with a drawn ``json.dumps`` variant,
  and byte-level ones (truncation, a flipped bit, a bracket, quote or comma inserted or
  removed). The allowed outcome is what the kit's independent reader
  (``oracle_reader.expected_load``) says, so no expectation is hand-written for them.
- **hand-picked** (kinds ``hand/<name>``): the named cases below, each with the outcome read
  off SPEC.md §3.2 by hand.

Generation is deterministic: one ``@given`` run with ``@seed(SEED)``, ``database=None`` and
only the generate phase collects the files. ``SearchStrategy.example()`` is meant for the
interactive prompt (it warns outside it, is not seeded and draws a fresh random each call);
a ``@given`` run is the supported way to drive strategies, and a fixed seed makes the same
corpus on every machine with the same Hypothesis, so a failure names a file anyone can
regenerate.
"""

from __future__ import annotations

import codecs
import copy
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from sessionspec.conformance.file_strategies import (
    VECTORS_NOW,
    Pairs,
    Raw,
    encode_document,
    mutated_documents,
    schema_documents,
    vector_files,
)
from sessionspec.conformance.oracle_reader import Outcome, expected_load
from sessionspec.reference import FileSessionStorage
from sessionspec.spec import ConversationTurn, format_timestamp

Size = Literal["small", "full"]

#: The clock of every child: the oracle's expectations (expiry, the cap) hold at this instant.
NOW: Final = VECTORS_NOW
SEED: Final = 20261127

LOADED: Final = "loaded"
LOADED_BACKUP: Final = "loaded+backup"
MOVED_ASIDE: Final = "moved-aside"
OSERROR: Final = "oserror"
CRASH: Final = "crash"
HANG: Final = "hang"
#: Every outcome of the runner, in table order.
OUTCOMES: Final = (LOADED, LOADED_BACKUP, MOVED_ASIDE, OSERROR, CRASH, HANG)

#: Generated files per size; the hand-picked ones come on top.
GENERATED: Final = {"small": 80, "full": 500}
#: The huge string (a turn's prompt), in bytes.
HUGE_STRING: Final = {"small": 1_000_000, "full": 100_000_000}
MANY_TURNS: Final = {"small": 10_000, "full": 100_000}


@dataclass(frozen=True, slots=True)
class CorpusFile:
    """One file of the corpus. ``expect`` holds the outcomes SPEC.md §3.2 allows; empty when
    no reader decides (the oracle cannot parse a document nested deeper than Python's
    recursion limit)."""

    name: str
    kind: str
    path: Path
    size: int
    sha256: str
    expect: frozenset[str]

    @property
    def generated(self) -> bool:
        return self.kind.startswith("generated/")


def oracle_outcome(raw: bytes) -> frozenset[str]:
    """The outcome the kit's independent reader predicts for ``raw`` opened at ``NOW``."""
    try:
        expected = expected_load(raw, NOW)
    except RecursionError:
        return frozenset()
    if expected.outcome is Outcome.MOVE_ASIDE:
        return frozenset({MOVED_ASIDE})
    if expected.outcome is Outcome.LOAD:
        return frozenset({LOADED_BACKUP if expected.lossy else LOADED})
    return frozenset({OSERROR})


# -- bases: real saves ---------------------------------------------------------------------------

#: Texts that are awkward to escape: quotes, backslashes, controls, a lone surrogate, emoji,
#: line separators, a NUL, non-BMP and combining characters.
AWKWARD_TEXTS: Final = (
    "",
    'say "hi"\\n',
    "line\nbreak\ttab\r",
    "\x00\x01\x1f\x7f",
    "\ud800 lone",
    "emoji \U0001f600 \u2028\u2029",
    "e\u0301 \ufeff \uffff",
    "x" * 300,
)


def real_saves() -> tuple[bytes, ...]:
    """Bytes that ``FileSessionStorage`` itself saved: stores of 1 to 6 sessions with fixed
    ids, awkward texts and a clock moving back from ``NOW`` (so the list order matters),
    written by real saves in a temporary directory."""
    saves = []
    with tempfile.TemporaryDirectory(prefix="hostile-bases-") as tmp:
        for store in range(4):
            path = Path(tmp) / f"s{store}" / "sessions.json"
            moment = [NOW - timedelta(hours=2)]
            storage = FileSessionStorage(path, clock=lambda moment=moment: moment[0])
            for n in range(1 + store + store // 2):
                moment[0] += timedelta(minutes=7, milliseconds=n)
                session_id = f"base-{store}-{n}"
                storage.ensure_session(session_id)
                for t in range(n % 3 + store % 2):
                    text = AWKWARD_TEXTS[(n + t + store) % len(AWKWARD_TEXTS)]
                    turn = ConversationTurn(text, text[::-1], moment[0])
                    storage.add_turn(session_id, turn)
                if n % 2:
                    storage.set_codex_conversation_id(session_id, f"conv_{store}_{n}")
            storage.flush()
            storage.close()
            saves.append(path.read_bytes())
    return tuple(saves)


# -- generated: mutations ------------------------------------------------------------------------

#: Numbers at the edges of JSON and of Python: the double 1 spelled long, infinities by
#: exponent, 2^53 + 1, beyond int()'s 4300-digit limit, negative zero, underflow.
NUMBER_EDGES: Final = (
    "-0",
    "0e0",
    "1E+0",
    "0.1e1",
    "1e400",
    "-1e400",
    "1e-400",
    "9007199254740993",
    "1" + "0" * 5000,
    "-" + "9" * 4301,
    "1." + "0" * 5000 + "1",
    "0." + "9" * 400,
    "1e99999999999999999999",
    "1e-99999999999999999999",
    "123456789.123456789e-20",
)
#: Values of every JSON type, for swapping one in.
SWAP_VALUES: Final[tuple[Any, ...]] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    "",
    "1",
    [],
    {},
    [None],
    {"": 0},
)
EXTRA_NAMES: Final = ("x", "title", "version", "sessions", "id", "turns", "prompt", "", "\u0000")
STRUCTURAL: Final = b'[]{}",:\\'

Node = Any
Path_ = tuple[Any, ...]


def _paths(node: Node, at: Path_ = ()) -> Iterator[Path_]:
    """Every position in a parsed document (dict member names and list indexes)."""
    yield at
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _paths(value, (*at, name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*at, index))


def _get(node: Node, at: Path_) -> Node:
    for step in at:
        node = node[step]
    return node


def _replace(node: Node, at: Path_, value: Node) -> Node:
    if not at:
        return value
    parent = _get(node, at[:-1])
    parent[at[-1]] = value
    return node


def _fresh(draw: DrawFn) -> Any:
    # A copy: a later mutation may change the value in place, and the constants must stay
    # as they are or the next draws (and the corpus) would depend on earlier ones.
    return copy.deepcopy(draw(st.sampled_from(SWAP_VALUES)))


@st.composite
def _structural(draw: DrawFn, document: Node) -> Node:
    """One structural mutation of a parsed document (in place where it can be)."""
    positions = list(_paths(document))
    at = draw(st.sampled_from(positions))
    kind = draw(st.sampled_from(["swap", "remove", "extra", "repeat", "number"]))
    if kind == "swap":
        return _replace(document, at, _fresh(draw))
    if kind == "number":
        return _replace(document, at, Raw(draw(st.sampled_from(NUMBER_EDGES))))
    if kind == "remove" and at:
        parent = _get(document, at[:-1])
        del parent[at[-1]]
        return document
    objects = [p for p in positions if isinstance(_get(document, p), dict)]
    if not objects:
        return document
    where = draw(st.sampled_from(objects))
    obj = _get(document, where)
    if kind == "extra" or not obj:
        name = draw(st.sampled_from(EXTRA_NAMES))
        number = draw(st.booleans())
        obj[name] = Raw(draw(st.sampled_from(NUMBER_EDGES))) if number else _fresh(draw)
        return document
    # A repeated member name: the first value differs, the last one wins (§3.2 step 5).
    members = list(obj.items())
    index = draw(st.integers(0, len(members) - 1))
    name = members[index][0]
    earlier = _fresh(draw)
    repeated = Pairs(((name, earlier), *members))
    return _replace(document, where, repeated)


def _dumps(draw: DrawFn, document: Node) -> bytes:
    """``document`` serialised with a drawn variant: the kit's writer (which can spell raw
    numbers and repeated names) or ``json.dumps`` with drawn indent, separators, key order
    and escaping; lone surrogates unescaped become CESU-8 bytes, which are not UTF-8."""
    special = any(isinstance(_get(document, p), Raw | Pairs) for p in _safe_paths(document))
    if special:
        return encode_document(
            document,
            indent=draw(st.sampled_from([None, 2, 4])),
            ascii_only=draw(st.booleans()),
        )
    text = json.dumps(
        document,
        indent=draw(st.sampled_from([None, 0, 2, "\t"])),
        separators=draw(st.sampled_from([None, (",", ":"), (" , ", " : ")])),
        sort_keys=draw(st.booleans()),
        ensure_ascii=draw(st.booleans()),
    )
    return text.encode("utf-8", "surrogatepass")


def _safe_paths(node: Node) -> Iterator[Path_]:
    """``_paths`` that stops at ``Raw`` and ``Pairs`` (they are leaves to the writer)."""
    yield ()
    if isinstance(node, dict):
        for name, value in node.items():
            for rest in _safe_paths(value):
                yield (name, *rest)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            for rest in _safe_paths(value):
                yield (index, *rest)


@st.composite
def _bytewise(draw: DrawFn, raw: bytes) -> bytes:
    """One byte-level mutation: truncate, flip a bit, insert or remove a structural byte."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "remove"]))
    if not raw:
        return draw(st.sampled_from([b"{", b'"', b"\x00"]))
    at = draw(st.integers(0, len(raw) - 1))
    if kind == "truncate":
        return raw[:at]
    if kind == "flip":
        return raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[at + 1 :]
    if kind == "insert":
        return raw[:at] + bytes([draw(st.sampled_from(STRUCTURAL))]) + raw[at:]
    spots = [i for i, byte in enumerate(raw) if byte in STRUCTURAL]
    if not spots:
        return raw[:at] + raw[at + 1 :]
    gone = draw(st.sampled_from(spots))
    return raw[:gone] + raw[gone + 1 :]


def _parse(raw: bytes) -> Node | None:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


@st.composite
def hostile_files(draw: DrawFn, bases: tuple[bytes, ...]) -> tuple[str, bytes]:
    """(kind, bytes): a base file, then up to three structural mutations, then up to two
    byte-level ones. ``kind`` says which of them happened."""
    source, raw = draw(
        st.one_of(
            st.tuples(st.just("save"), st.sampled_from(bases)),
            st.tuples(st.just("kit"), mutated_documents(NOW)),
            st.tuples(st.just("schema"), schema_documents(NOW)),
            st.tuples(st.just("vector"), vector_files()),
        )
    )
    steps = []
    structural = draw(st.integers(0, 3))
    document = _parse(raw) if structural else None
    if document is not None:
        for _ in range(structural):
            document = draw(_structural(document))
        raw = _dumps(draw, document)
        steps.append("struct")
    # Half the files keep their bytes: damage mostly ends in a move aside, and loads with
    # skips and backups deserve as many files.
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        raw = draw(_bytewise(raw))
        if "bytes" not in steps:
            steps.append("bytes")
    return "generated/" + "+".join([source, *steps]), raw


def generate(
    count: int, bases: tuple[bytes, ...], seed_value: int = SEED
) -> list[tuple[str, bytes]]:
    """``count`` distinct hostile files, the same ones for the same seed and Hypothesis."""
    drawn: dict[bytes, str] = {}

    # Twice the count: duplicates (a mutation can undo another) are dropped below.
    @settings(
        max_examples=2 * count,
        database=None,
        derandomize=False,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(hostile_files(bases))
    def collect(file: tuple[str, bytes]) -> None:
        kind, raw = file
        if len(drawn) < count:
            drawn.setdefault(raw, kind)

    collect()
    return [(kind, raw) for raw, kind in drawn.items()]


# -- hand-picked -------------------------------------------------------------------------------

T = format_timestamp(NOW - timedelta(minutes=5))


def _session(session_id: str, turns: str = "[]", extra: str = "") -> str:
    return (
        f'{{"id": "{session_id}", "createdAt": "{T}", "lastAccessedAt": "{T}", '
        f'"turns": {turns}{extra}}}'
    )


def _turn(prompt: str = '"hi"', response: str = '"hello"', extra: str = "") -> str:
    return f'{{"prompt": {prompt}, "response": {response}, "timestamp": "{T}"{extra}}}'


def _file(*sessions: str, version: str = "1", extra: str = "") -> bytes:
    return f'{{"version": {version}, "sessions": [{", ".join(sessions)}]{extra}}}'.encode()


ONE = _file(_session("one", f"[{_turn()}]"))
DEEP = 100_000
HUGE_DIGITS = "1" + "0" * 5000  # beyond int()'s 4300-digit limit


def _huge_string(size: Size) -> bytes:
    # A prompt of plain ASCII: the decoder's fast path, so size is what costs.
    prompt = '"' + "a" * HUGE_STRING[size] + '"'
    return _file(_session("huge", f"[{_turn(prompt=prompt)}]"))


def _many_sessions(_: Size) -> bytes:
    # 10,000 live sessions, one millisecond apart: all load, the cap keeps the 100 most
    # recent and the rest are evicted (B18), so the load is lossy.
    sessions = []
    for n in range(10_000):
        at = format_timestamp(NOW - timedelta(milliseconds=n + 1))
        sessions.append(
            f'{{"id": "s{n}", "createdAt": "{at}", "lastAccessedAt": "{at}", "turns": []}}'
        )
    return _file(*sessions)


def _many_turns(size: Size) -> bytes:
    turns = ", ".join([_turn(f'"p{n}"', f'"r{n}"') for n in range(MANY_TURNS[size])])
    return _file(_session("many", f"[{turns}]"))


HandPicked = Callable[[Size], bytes]

#: name -> (the outcomes SPEC.md §3.2 allows, the bytes at a size). Names are file-name safe.
HAND_PICKED: Final[dict[str, tuple[frozenset[str], HandPicked]]] = {}


def _case(name: str, *expect: str) -> Callable[[HandPicked], HandPicked]:
    def register(make: HandPicked) -> HandPicked:
        HAND_PICKED[name] = (frozenset(expect), make)
        return make

    return register


def _fixed(name: str, data: bytes, *expect: str) -> None:
    HAND_PICKED[name] = (frozenset(expect), lambda _: data)


# Step 2: not one JSON text. A recursive parser overflows its stack on these; unclosed, they
# are not JSON whatever the parser's depth limit.
_fixed("deep-arrays-unclosed", b"[" * DEEP, MOVED_ASIDE)
_fixed("deep-objects-unclosed", b'{"a":' * DEEP, MOVED_ASIDE)
# Closed, the nesting is valid JSON (a skipped record or an unknown member, lossy) that a
# reader may still refuse for its depth: RFC 8259 §9 lets parsers limit nesting. Either way
# the bytes are kept.
_fixed(
    "deep-arrays-as-record",
    _file(("[" * DEEP) + ("]" * DEEP)),
    MOVED_ASIDE,
    LOADED_BACKUP,
)
_fixed(
    "deep-arrays-as-unknown-member",
    _file(extra=', "x": ' + "[" * DEEP + "]" * DEEP),
    MOVED_ASIDE,
    LOADED_BACKUP,
)
_case("huge-string-prompt", LOADED)(_huge_string)
_case("huge-string-unterminated", MOVED_ASIDE)(lambda size: _huge_string(size)[:-20])
_fixed("nan-version", _file(version="NaN"), MOVED_ASIDE)
_fixed("infinity-in-turn", _file(_session("inf", f"[{_turn(prompt='Infinity')}]")), MOVED_ASIDE)
_fixed("minus-infinity-unknown-member", _file(extra=', "x": -Infinity'), MOVED_ASIDE)
# Step 5: a repeated member name reads as its last value and makes the load lossy.
_fixed(
    "duplicate-key-envelope-sessions",
    b'{"version": 1, "sessions": [' + _session("lost").encode() + b'], "sessions": []}',
    LOADED_BACKUP,
)
_fixed("duplicate-key-envelope-version", _file(version='2, "version": 1'), LOADED_BACKUP)
_fixed(
    "duplicate-key-record-id",
    _file(_session("first", extra=', "id": "second"')),
    LOADED_BACKUP,
)
_fixed(
    "duplicate-key-turn-prompt",
    _file(_session("t", "[" + _turn(extra=', "prompt": "again"') + "]")),
    LOADED_BACKUP,
)
# Raw control characters are not allowed in JSON strings; NUL between tokens is not JSON.
_fixed("nul-raw-in-string", _file(_session("n", "[" + _turn(prompt='"a\x00b"') + "]")), MOVED_ASIDE)
_fixed(
    "nul-escaped-in-string", _file(_session("n", "[" + _turn(prompt='"a\\u0000b"') + "]")), LOADED
)
_fixed("nul-between-tokens", ONE.replace(b", ", b",\x00 ", 1), MOVED_ASIDE)
_fixed("nul-padding-after-document", ONE + b"\x00" * 4096, MOVED_ASIDE)
_fixed("nul-only", b"\x00" * 4096, MOVED_ASIDE)
_fixed("invalid-utf8-in-string", ONE.replace(b'"hi"', b'"h\xffi"'), MOVED_ASIDE)
_fixed("invalid-utf8-cesu-surrogate", ONE.replace(b'"hi"', b'"\xed\xa0\x80"'), MOVED_ASIDE)
_fixed("invalid-utf8-overlong", ONE.replace(b'"hi"', b'"\xc0\xaf"'), MOVED_ASIDE)
_fixed("utf8-bom", codecs.BOM_UTF8 + ONE, MOVED_ASIDE)
_fixed("utf16-le-bom", codecs.BOM_UTF16_LE + ONE.decode().encode("utf-16-le"), MOVED_ASIDE)
_fixed("utf16-be-bom", codecs.BOM_UTF16_BE + ONE.decode().encode("utf-16-be"), MOVED_ASIDE)
# Step 3: version is the double the number reads as: inf, 0, or 1 after rounding.
_fixed("huge-int-version", _file(version=HUGE_DIGITS), MOVED_ASIDE)
_fixed("huge-negative-int-version", _file(version="-" + HUGE_DIGITS), MOVED_ASIDE)
_fixed("huge-fraction-version-rounds-to-1", _file(version="1." + "0" * 5000 + "1"), LOADED)
_fixed("huge-nines-version-rounds-to-1", _file(version="0." + "9" * 5000), LOADED)
_fixed("huge-exponent-version", _file(version="1e99999999999999999999"), MOVED_ASIDE)
_fixed("huge-negative-exponent-version", _file(version="1e-99999999999999999999"), MOVED_ASIDE)
# Step 5: a number where a timestamp or a string must be skips the record.
_fixed(
    "huge-int-as-created-at",
    _file(
        _session("h").replace(f'"createdAt": "{T}"', f'"createdAt": {HUGE_DIGITS}'), _session("ok")
    ),
    LOADED_BACKUP,
)
_fixed(
    "huge-int-as-turn-prompt", _file(_session("h", f"[{_turn(prompt=HUGE_DIGITS)}]")), LOADED_BACKUP
)
_fixed(
    "huge-int-as-turn-unknown-member",
    _file(_session("h", "[" + _turn(extra=', "n": ' + HUGE_DIGITS) + "]")),
    LOADED_BACKUP,
)
_fixed(
    "huge-exponent-as-turn-unknown-member",
    _file(_session("h", "[" + _turn(extra=', "n": 1e99999999999999999999') + "]")),
    LOADED_BACKUP,
)
_fixed("empty-file", b"", MOVED_ASIDE)
_fixed("whitespace-only", b" \t\r\n" * 64, MOVED_ASIDE)
_fixed("null", b"null", MOVED_ASIDE)
_fixed("top-level-array", b"[" + ONE + b"]", MOVED_ASIDE)
# Lone surrogates escaped are valid JSON that upstream writes; readers must load them.
_fixed(
    "lone-surrogates-escaped",
    _file(_session("s", "[" + _turn(prompt='"\\ud800"', response='"x\\udfff\\ud83d"') + "]")),
    LOADED,
)
_fixed("lone-surrogate-in-id", _file(_session("\\ud800"), _session("ok")), LOADED_BACKUP)
_case("ten-thousand-sessions", LOADED_BACKUP)(_many_sessions)
_case("many-turns", LOADED)(_many_turns)
_fixed(
    "zero-byte-turns",
    _file(_session("empty"), _session("blank", "[" + _turn(prompt='""', response='""') + "]")),
    LOADED,
)
_fixed("trailing-garbage", ONE + b"\ngarbage", MOVED_ASIDE)
_fixed("two-documents", ONE + b"\n" + ONE, MOVED_ASIDE)
_fixed(
    "crlf-line-endings",
    json.dumps(json.loads(ONE), indent=2).replace("\n", "\r\n").encode(),
    LOADED,
)
_fixed("future-version", _file(_session("future"), version="2"), MOVED_ASIDE)
_fixed("version-1.0", _file(_session("one"), version="1.0"), LOADED)
_fixed("version-string-1", _file(_session("one"), version='"1"'), MOVED_ASIDE)


# -- the corpus -----------------------------------------------------------------------------------


def write_file(
    directory: Path, name: str, kind: str, raw: bytes, expect: frozenset[str]
) -> CorpusFile:
    path = directory / name
    path.write_bytes(raw)
    return CorpusFile(name, kind, path, len(raw), hashlib.sha256(raw).hexdigest(), expect)


def write_corpus(directory: Path, size: Size, *, seed_value: int = SEED) -> list[CorpusFile]:
    """Write the corpus of ``size`` into ``directory`` (which must exist); hand-picked files
    first, in the order above, then the generated ones."""
    files = []
    for name, (expect, make) in HAND_PICKED.items():
        files.append(write_file(directory, f"hand-{name}", f"hand/{name}", make(size), expect))
    for n, (kind, raw) in enumerate(generate(GENERATED[size], real_saves(), seed_value)):
        files.append(write_file(directory, f"gen-{n:04d}", kind, raw, oracle_outcome(raw)))
    return files
