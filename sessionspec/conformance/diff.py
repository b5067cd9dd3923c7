"""Structural diff of an expected and an actual value, for conformance failure reports.

Printing both values whole buries the difference: a lone surrogate replaced by '?' in one
prompt among 60 sessions is invisible in two 60-line dumps. :func:`structural_diff` names
where the values differ (``session '3f2a…' turns[0].prompt``) and how (the first differing
character with a short ``repr`` window on both sides), in a bounded number of short lines.

It understands the spec's types (:class:`~sessionspec.spec.SessionData`,
:class:`~sessionspec.spec.ConversationTurn`), lists of sessions as ``list_sessions`` returns
them (matched by id), parsed JSON documents (dicts and lists), strings, bytes and datetimes.
Output is deterministic: no set iteration order, no object addresses.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import datetime
from typing import Final

from sessionspec.conformance.oracle import is_valid_session_id
from sessionspec.spec import SessionData

__all__ = ["LINE_WIDTH", "format_diff", "structural_diff"]

#: No line of a diff is longer than this many characters.
LINE_WIDTH: Final = 160
_VALUE_WIDTH: Final = 80  # a repr shown whole is cut to this width (around the difference)
_PATH_WIDTH: Final = 56
_KEY_WIDTH: Final = 24  # a dict key inside a path
_SESSION_ID_WIDTH: Final = 12
_ORDER_ID_WIDTH: Final = 8
_MAX_ID_WIDTH: Final = 40  # ids are lengthened up to this to tell them apart
_MAX_DEPTH: Final = 64  # below this, fall back to comparing reprs (guards cycles)
_ELLIPSIS: Final = "…"
_ADDRESS: Final = re.compile(r" at 0x[0-9A-Fa-f]+")
_NO_DIFFERENCE: Final = "(no difference)"

#: One step of a path: ("name", "turns"), ("index", "3"), ("session", "'3f2a…'").
_Step = tuple[str, str]
_Path = tuple[_Step, ...]
_Message = str | Callable[[int], str]


def structural_diff(expected: object, actual: object, *, limit: int = 10) -> list[str]:
    """List where and how ``actual`` differs from ``expected``, one difference a line.

    Returns an empty list when the values are equal. At most ``limit`` difference lines are
    returned, followed by ``... and N more differences`` when some were left out; no line is
    longer than :data:`LINE_WIDTH`. Containers are compared by content: a list of turns equals
    the same turns in a tuple.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    differ = _Differ()
    differ.diff((), expected, actual, 0)
    lines = differ.lines
    if len(lines) <= limit:
        return lines
    rest = len(lines) - limit
    return [*lines[:limit], f"... and {rest} more difference{'s' if rest != 1 else ''}"]


def format_diff(expected: object, actual: object, *, limit: int = 10) -> str:
    """The lines of :func:`structural_diff` joined by newlines, or ``(no difference)``."""
    lines = structural_diff(expected, actual, limit=limit)
    return "\n".join(lines) if lines else _NO_DIFFERENCE


def _kind(value: object) -> str:
    """The comparison category of a value: values of different kinds are a type mismatch."""
    if value is None:
        return "none"
    if isinstance(value, bool):  # before int: JSON true and 1 are different values
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    if isinstance(value, datetime):
        return "datetime"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "dataclass"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "sequence"
    if isinstance(value, Set):
        return "set"
    return "other"


def _type_name(value: object) -> str:
    return type(value).__name__


def _clean_repr(value: object) -> str:
    """``repr`` without object addresses, which would make the output nondeterministic.

    A set is shown with its elements sorted by repr: its own iteration order of strings
    changes from run to run (hash randomisation).
    """
    try:
        if isinstance(value, Set):
            body = ", ".join(sorted(_clean_repr(item) for item in value))
            name = _type_name(value)
            if not body:
                text = f"{name}()"
            else:
                text = f"{{{body}}}" if type(value) is set else f"{name}({{{body}}})"
        else:
            text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the rest of the diff
        text = f"<{_type_name(value)}: repr raised {_type_name(exc)}>"
    return _ADDRESS.sub("", text)


def _cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the cut marked with an ellipsis."""
    width = max(width, 2)
    return text if len(text) <= width else text[: width - 1] + _ELLIPSIS


def _short(value: object, width: int = _VALUE_WIDTH) -> str:
    return _cut(_clean_repr(value), width)


def _plural(count: int, noun: str) -> str:
    """``1 turn``, ``2 turns``: ``noun`` is given in the plural."""
    return f"{count} {noun if count != 1 else noun.removesuffix('s')}"


def _first_difference(a: Sequence[object], b: Sequence[object]) -> int:
    """Index of the first differing element, or the shorter length if one is a prefix."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def _render_path(path: _Path) -> str:
    """``session '3f2a…' turns[0].prompt``; long paths keep their head and their tail."""
    out = ""
    previous = ""
    for kind, text in path:
        if kind == "index":
            out += f"[{text}]"
        elif kind == "session":
            out += f"{' ' if out else ''}session {text}"
        else:
            out += (" " if previous == "session" else "." if out else "") + text
        previous = kind
    if len(out) > _PATH_WIDTH:
        head = _PATH_WIDTH // 3
        out = out[:head] + _ELLIPSIS + out[-(_PATH_WIDTH - head - 1) :]
    return out


def _key_step(key: object) -> _Step:
    """A dict key as a path step: ``.name`` for identifiers, ``['a b']`` otherwise."""
    if isinstance(key, str) and key.isidentifier() and key.isascii():
        return ("name", _cut(key, _KEY_WIDTH))
    return ("index", _short(key, _KEY_WIDTH))


def _escaped_width(piece: str | bytes) -> int:
    """How many characters ``piece`` (one character or byte) takes inside its repr."""
    return len(repr(piece)) - (3 if isinstance(piece, bytes) else 2)


def _window(text: str | bytes, index: int, width: int) -> str:
    """A ``repr`` of ``text`` around ``index``, about ``width`` characters, cuts marked "…".

    The window starts a few characters before ``index`` (the common prefix, same on both
    sides) and always includes the character at ``index`` when there is one.
    """
    before = max(width // 3, 1)
    start = index
    used = 0
    while start > 0 and used + _escaped_width(text[start - 1 : start]) <= before:
        start -= 1
        used += _escaped_width(text[start : start + 1])
    end = index
    while end < len(text) and (end == index or used + _escaped_width(text[end : end + 1]) <= width):
        used += _escaped_width(text[end : end + 1])
        end += 1
    head = _ELLIPSIS if start > 0 else ""
    tail = _ELLIPSIS if end < len(text) else ""
    return f"{head}{text[start:end]!r}{tail}"


def _plain_window(text: str, start: int, width: int) -> str:
    """``text[start:]`` cut to ``width`` characters, cuts on either side marked "…"."""
    head = _ELLIPSIS if start > 0 else ""
    body = text[start : start + width]
    tail = _ELLIPSIS if start + width < len(text) else ""
    return head + body + tail


def _id_labels(keys: Sequence[str], width: int, *, quoted: bool) -> dict[str, str]:
    """Short, distinct labels for session ids: cut to ``width``, longer where cuts collide.

    Ids that still collide when cut to :data:`_MAX_ID_WIDTH` get their position (``#3``)
    appended, so two different sessions never carry the same label.
    """
    unique = list(dict.fromkeys(keys))
    labels: dict[str, str] = {}
    for cut in range(width, _MAX_ID_WIDTH + 1):
        labels = {key: _id_label(key, cut, quoted=quoted) for key in unique}
        if len(set(labels.values())) == len(unique):
            return labels
    seen = Counter(labels.values())
    return {
        key: label if seen[label] == 1 else f"{label}#{position}"
        for position, (key, label) in enumerate(labels.items())
    }


def _id_label(key: str, width: int, *, quoted: bool) -> str:
    cut = key[:width]
    if not quoted and is_valid_session_id(key):
        # Grammar ids need no quotes (no spaces, commas or brackets); in the compact order
        # lists the cut goes unmarked, to fit more ids on the line.
        return cut
    mark = _ELLIPSIS if len(key) > width else ""
    text = repr(cut)
    return text[:-1] + mark + text[-1]


def _session_key(session: SessionData) -> str:
    """The id a session is matched by; a non-str id (a backend bug) by its repr."""
    return session.id if isinstance(session.id, str) else _clean_repr(session.id)


def _fit_items(items: Sequence[str], width: int, *, start: int = 0) -> str:
    """``items[start:]`` joined by ", " within about ``width`` characters, the rest counted.

    At least one item is always shown; the "… (+N more)" tail is counted in the width.
    """
    shown: list[str] = [_ELLIPSIS] if start > 0 else []
    used = sum(len(item) + 2 for item in shown)
    for position in range(start, len(items)):
        item = items[position]
        left_after = len(items) - position - 1
        tail = len(f", {_ELLIPSIS} (+{left_after} more)") if left_after else 0
        if position > start and used + len(item) + tail > width:
            shown.append(f"{_ELLIPSIS} (+{len(items) - position} more)")
            break
        shown.append(item)
        used += len(item) + 2
    return ", ".join(shown)


def _is_session_list(expected: Sequence[object], actual: Sequence[object]) -> bool:
    """Both sides hold only sessions (and at least one side holds one): match them by id."""
    both = [*expected, *actual]
    return bool(both) and all(isinstance(item, SessionData) for item in both)


def _noun(path: _Path) -> str:
    """What a sequence holds, for ``expected 3 turns, actual 2``."""
    if path and path[-1][1] in ("turns", "sessions"):
        return path[-1][1]
    return "items"


class _Differ:
    """Walks two values side by side and collects every difference as a finished line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, path: _Path, message: _Message) -> None:
        """Add one line; a callable message is given the width left after the path."""
        where = _render_path(path)
        prefix = f"{where}: " if where else ""
        text = message(LINE_WIDTH - len(prefix)) if callable(message) else message
        self.lines.append(_cut(prefix + text, LINE_WIDTH))

    def diff(self, path: _Path, expected: object, actual: object, depth: int) -> None:
        """Record the differences between two values found at ``path``."""
        if expected is actual:
            return
        kind = _kind(expected)
        if kind != _kind(actual):
            self.emit(path, lambda width: _type_mismatch(expected, actual, width))
        elif depth > _MAX_DEPTH:
            self.other(path, expected, actual)
        elif kind == "none":
            return
        elif kind in ("bool", "number"):
            self.number(path, expected, actual)
        elif kind == "str":
            assert isinstance(expected, str)
            assert isinstance(actual, str)
            self.text(path, expected, actual, "strings", "index")
        elif kind == "bytes":
            assert isinstance(expected, bytes | bytearray)
            assert isinstance(actual, bytes | bytearray)
            self.text(path, bytes(expected), bytes(actual), "bytes", "offset")
        elif kind == "datetime":
            assert isinstance(expected, datetime)
            assert isinstance(actual, datetime)
            self.moment(path, expected, actual)
        elif kind == "dataclass":
            self.record(path, expected, actual, depth)
        elif kind == "mapping":
            assert isinstance(expected, Mapping)
            assert isinstance(actual, Mapping)
            self.mapping(path, expected, actual, depth)
        elif kind == "sequence":
            assert isinstance(expected, list | tuple)
            assert isinstance(actual, list | tuple)
            if _is_session_list(expected, actual):
                self.sessions(path, expected, actual, depth)
            else:
                self.sequence(path, expected, actual, depth)
        elif kind == "set":
            assert isinstance(expected, Set)
            assert isinstance(actual, Set)
            self.set(path, expected, actual)
        else:
            self.other(path, expected, actual)

    def number(self, path: _Path, expected: object, actual: object) -> None:
        """Numbers and booleans: by value (1 == 1.0); two NaNs count as equal."""
        both_nan = (
            isinstance(expected, float)
            and isinstance(actual, float)
            and math.isnan(expected)
            and math.isnan(actual)
        )
        if not both_nan and expected != actual:
            self.emit(path, f"expected {_short(expected, 60)}, actual {_short(actual, 60)}")

    def text(
        self, path: _Path, expected: str | bytes, actual: str | bytes, what: str, unit: str
    ) -> None:
        """Strings and bytes: first differing position, a repr window, lengths if unequal."""
        if expected == actual:
            return
        index = _first_difference(expected, actual)
        lengths = ""
        if len(expected) != len(actual):
            lengths = f" (lengths {len(expected)} vs {len(actual)})"
        head = f"{what} differ at {unit} {index}{lengths}: expected "

        def message(width: int) -> str:
            # Each window gets half of what the fixed words leave; never less than a few
            # characters, so the differing character itself is always shown.
            side = max((width - len(head) - len(", actual ")) // 2 - 4, 8)
            return f"{head}{_window(expected, index, side)}, actual {_window(actual, index, side)}"

        self.emit(path, message)

    def moment(self, path: _Path, expected: datetime, actual: datetime) -> None:
        """Datetimes: ISO form with milliseconds and zone; naive ones are called naive."""
        if expected == actual:  # never true between a naive and an aware datetime
            return
        # Milliseconds, as the spec stores them; digits below that only when there are any,
        # since a cut would hide or misstate a sub-millisecond difference.
        exact = expected.microsecond % 1000 == 0 and actual.microsecond % 1000 == 0
        spec = "milliseconds" if exact else "microseconds"
        sides = (("expected", expected), ("actual", actual))
        notes = [f"{side} is naive" for side, value in sides if _is_naive(value)]
        if not notes:
            delta = actual - expected
            later = "later" if delta.total_seconds() > 0 else "earlier"
            notes.append(f"actual is {abs(delta)} {later}")
        shown = (expected.isoformat(timespec=spec), actual.isoformat(timespec=spec))
        self.emit(path, f"expected {shown[0]}, actual {shown[1]} ({'; '.join(notes)})")

    def record(self, path: _Path, expected: object, actual: object, depth: int) -> None:
        """Dataclasses (sessions, turns): field by field, if both are of the same class."""
        if type(expected) is not type(actual) or not dataclasses.is_dataclass(expected):
            self.emit(path, lambda width: _type_mismatch(expected, actual, width))
            return
        for field in dataclasses.fields(expected):
            self.diff(
                (*path, ("name", field.name)),
                getattr(expected, field.name),
                getattr(actual, field.name),
                depth + 1,
            )

    def mapping(
        self,
        path: _Path,
        expected: Mapping[object, object],
        actual: Mapping[object, object],
        depth: int,
    ) -> None:
        """Dicts (JSON objects): missing keys, unexpected keys, then common keys in order."""
        for key, value in expected.items():
            if key not in actual:
                self.emit(
                    (*path, _key_step(key)), _shown("key missing from actual; expected", value)
                )
        for key, value in actual.items():
            if key not in expected:
                self.emit((*path, _key_step(key)), _shown("unexpected key; actual", value))
        for key, value in expected.items():
            if key in actual:
                self.diff((*path, _key_step(key)), value, actual[key], depth + 1)

    def sequence(
        self, path: _Path, expected: Sequence[object], actual: Sequence[object], depth: int
    ) -> None:
        """Lists and tuples, by index and content only (a list equals a tuple).

        With equal lengths every differing element is reported. With different lengths
        later elements are usually just shifted, so only the first differing one is.
        """
        if len(expected) == len(actual):
            for index, (x, y) in enumerate(zip(expected, actual, strict=True)):
                self.diff((*path, ("index", str(index))), x, y, depth + 1)
            return
        noun = _noun(path)
        counts = f"expected {_plural(len(expected), noun)}, actual {len(actual)}"
        for index, (x, y) in enumerate(zip(expected, actual, strict=False)):
            inner = _Differ()
            inner.diff((*path, ("index", str(index))), x, y, depth + 1)
            if inner.lines:
                self.emit(path, counts)
                self.lines.extend(inner.lines)
                return
        # One is a prefix of the other: name the first element the shorter one lacks.
        common = min(len(expected), len(actual))
        longer, side = (expected, "missing") if len(expected) > len(actual) else (actual, "extra")
        name = path[-1][1] if path and path[-1][0] == "name" else ""
        self.emit(path, _shown(f"{counts}; first {side} {name}[{common}]:", longer[common]))

    def sessions(
        self,
        path: _Path,
        expected: Sequence[SessionData],
        actual: Sequence[SessionData],
        depth: int,
    ) -> None:
        """Lists of sessions: missing and unexpected ids, order, then each session's fields."""
        expected_keys = [_session_key(s) for s in expected]
        actual_keys = [_session_key(s) for s in actual]
        expected_at = {key: i for i, key in reversed(list(enumerate(expected_keys)))}
        actual_at = {key: i for i, key in reversed(list(enumerate(actual_keys)))}
        # Keep first-occurrence order: dict.fromkeys is ordered, unlike a set.
        expected_unique = list(dict.fromkeys(expected_keys))
        actual_unique = list(dict.fromkeys(actual_keys))
        labels = _id_labels([*expected_unique, *actual_unique], _SESSION_ID_WIDTH, quoted=True)
        totals = f"expected {len(expected)}, actual {len(actual)}"

        missing = [key for key in expected_unique if key not in actual_at]
        if missing:
            head = f"{_plural(len(missing), 'sessions')} missing from actual ({totals}): "
            self.emit(path, _listing(head, [labels[key] for key in missing]))
        extra = [key for key in actual_unique if key not in expected_at]
        if extra:
            head = f"{_plural(len(extra), 'sessions')} unexpected in actual ({totals}): "
            self.emit(path, _listing(head, [labels[key] for key in extra]))
        for side, keys in (("expected", expected_keys), ("actual", actual_keys)):
            for key, count in Counter(keys).items():
                if count > 1:
                    self.emit((*path, ("session", labels[key])), f"listed {count} times in {side}")

        shared_expected = [key for key in expected_unique if key in actual_at]
        shared_actual = [key for key in actual_unique if key in expected_at]
        if shared_expected != shared_actual:
            partial = bool(missing or extra)
            self.emit(
                path,
                lambda width: _order_message(
                    shared_expected, shared_actual, width, partial=partial
                ),
            )

        for key in shared_expected:
            self.diff(
                (*path, ("session", labels[key])),
                expected[expected_at[key]],
                actual[actual_at[key]],
                depth + 1,
            )

    def set(self, path: _Path, expected: Set[object], actual: Set[object]) -> None:
        """Sets: the elements missing and the elements unexpected, each sorted by repr."""
        for words, elements in (
            ("missing from actual", expected - actual),
            ("unexpected in actual", actual - expected),
        ):
            if elements:
                head = f"{_plural(len(elements), 'elements')} {words}: "
                self.emit(path, _listing(head, sorted(_short(item, 40) for item in elements)))

    def other(self, path: _Path, expected: object, actual: object) -> None:
        """Anything else: by ``==``, shown as reprs cut around their first difference."""
        try:
            if expected == actual:
                return
        except Exception:  # an __eq__ that raises (arrays, ...) counts as a difference
            pass
        left, right = _clean_repr(expected), _clean_repr(actual)
        if left == right:
            self.emit(path, f"unequal {_type_name(expected)} values with the same repr {left}")
            return
        index = _first_difference(left, right)

        def message(width: int) -> str:
            side = min(_VALUE_WIDTH, max((width - len("expected , actual ")) // 2 - 2, 20))
            # Start a little before the first difference, unless both reprs fit whole.
            fits = max(len(left), len(right)) <= side
            start = 0 if fits else max(index - side // 4, 0)
            return (
                f"expected {_plain_window(left, start, side)}, "
                f"actual {_plain_window(right, start, side)}"
            )

        self.emit(path, message)


def _is_naive(moment: datetime) -> bool:
    return moment.tzinfo is None or moment.utcoffset() is None


def _shown(words: str, value: object) -> Callable[[int], str]:
    """A message of ``words`` followed by the repr of ``value``, cut to the width left."""
    return lambda width: f"{words} {_short(value, width - len(words) - 1)}"


def _listing(head: str, items: Sequence[str]) -> Callable[[int], str]:
    """A message of ``head`` followed by as many of ``items`` as fit in the width left."""
    return lambda width: head + _fit_items(items, width - len(head))


def _type_mismatch(expected: object, actual: object, width: int) -> str:
    """``expected SessionData (…), actual dict (…)``; None is shown as just None."""
    side = max(width // 2 - 24, 16)

    def show(value: object) -> str:
        if value is None:
            return "None"
        return f"{_type_name(value)} ({_short(value, side)})"

    return f"expected {show(expected)}, actual {show(actual)}"


def _order_message(expected: list[str], actual: list[str], width: int, *, partial: bool) -> str:
    """The two id orders from just before their first difference, ids cut short."""
    position = _first_difference(expected, actual)
    labels = _id_labels(expected, _ORDER_ID_WIDTH, quoted=False)
    what = "order of the shared sessions" if partial else "order"
    head = f"{what} differs at position {position}: expected ["
    side = max((width - len(head) - len("], actual []")) // 2, 24)
    start = max(position - 1, 0)
    return (
        f"{head}{_fit_items([labels[k] for k in expected], side, start=start)}], "
        f"actual [{_fit_items([labels[k] for k in actual], side, start=start)}]"
    )
