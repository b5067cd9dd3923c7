"""Small deterministic checks of the core behaviours (and B09), complementing the machine.

Each one pins a single rule with a fixed scenario, so a failure reads as a one-line story.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta, timezone

from sessionspec.conformance.context import CheckContext
from sessionspec.conformance.fsutil import document, record, write_bytes
from sessionspec.conformance.oracle import MAX_SESSIONS, SESSION_TTL, to_millis
from sessionspec.conformance.registry import check
from sessionspec.conformance.strategies import SPECIAL_CHARACTERS
from sessionspec.spec import ConversationTurn, Level, SessionStorage, ValidationError

UUID4 = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
MS = timedelta(milliseconds=1)

# -- how a ValidationError states the id rule (SPEC.md §1.1, B08) -----------------------------

#: The length: "1 to 256", "1-256", "{1,256}", "between 1 and 256" (a 1, then a 256 a few
#: characters on), or a 256 with "non-empty" or "at least one" for the lower bound.
_LENGTH_RANGE = re.compile(r"(?<![0-9])1(?![0-9])[^0-9]{1,12}?(?<![0-9])256(?![0-9])")
_MAXIMUM = re.compile(r"(?<![0-9])256(?![0-9])")
_NON_EMPTY = re.compile(r"non-?empty|not (?:be )?empty|at least (?:1|one)\b", re.IGNORECASE)
#: A character class as in the pattern, ``[A-Za-z0-9_-]``; its ranges are removed before
#: looking for "_" and "-", so the "-" of "A-Z" does not count as stating the hyphen.
_CLASS = re.compile(r"\[([^\]]*)\]")
_RANGE = re.compile(r"[^\\]-[^\]]")
_QUOTED = re.compile(r"""(['"`])([_-])\1""")


def _class_members(message: str) -> str:
    """The single characters named in the message's character classes (ranges left out)."""
    return "".join(_RANGE.sub("", found) for found in _CLASS.findall(message))


def states_id_rule(message: str) -> bool:
    """True when ``message`` (a ValidationError's) states the session-id rule of SPEC.md §1.1
    that B08 requires it to state: the length, 1 to 256, and the characters allowed, ASCII
    letters, digits, ``_`` and ``-``, and nothing else.

    Each part may be written as the pattern (``^[A-Za-z0-9_-]{1,256}$``) or in words: the
    length as "1 to 256" (any few characters between the numbers) or "256" with "non-empty";
    letters as ``A-Z`` and ``a-z``, or "ASCII letters"; digits as ``0-9``, or "ASCII ...
    digits"; the underscore and the hyphen in a character class, quoted (``'_'``, ``"-"``) or
    named ("underscore", "hyphen", "dash"). The spec's own ``SESSION_ID_RULE`` passes; a
    message that gives only the length ("at most 256 characters") or only the characters does
    not. Used by B08's deterministic check and by the state machine's ``ensure_invalid``.
    """
    lowered = message.lower()
    length = bool(_LENGTH_RANGE.search(message)) or (
        bool(_MAXIMUM.search(message)) and bool(_NON_EMPTY.search(message))
    )
    ascii_words = "ascii" in lowered
    letters = ("A-Z" in message and "a-z" in message) or (ascii_words and "letter" in lowered)
    digits = "0-9" in message or (ascii_words and "digit" in lowered)
    named = _class_members(message) + "".join(m[2] for m in _QUOTED.finditer(message))
    underscore = "_" in named or "underscore" in lowered
    hyphen = "-" in named or "hyphen" in lowered or "dash" in lowered
    return length and letters and digits and underscore and hyphen


def _ids(storage: SessionStorage) -> list[str]:
    return [s.id for s in storage.list_sessions()]


def _reopen(ctx: CheckContext, storage: SessionStorage) -> SessionStorage:
    return ctx.reopen(storage)


@check("B01")
def fresh_uuid4_each_time(ctx: CheckContext) -> None:
    """Every create returns a new canonical UUID4 for an empty session stamped now."""
    storage = ctx.open()
    seen = set()
    for _ in range(MAX_SESSIONS + 20):
        session_id = storage.create_session()
        ctx.expect(UUID4.match(session_id), "not a canonical UUID4", actual=session_id)
        ctx.expect(session_id not in seen, "an id repeated", actual=session_id)
        seen.add(session_id)
        data = storage.get_session(session_id)
        now = to_millis(ctx.clock())
        ctx.expect(
            data is not None
            and data.turns == ()
            and data.codex_conversation_id is None
            and data.created_at == data.last_accessed_at == now,
            "a new session must exist at once, empty, with created_at == last_accessed_at == now",
            expected=now,
            actual=data,
        )
        ctx.clock.advance(timedelta(microseconds=300))


@check("B02")
def appends_in_order_and_touches(ctx: CheckContext) -> None:
    """Turns append in call order with their own timestamps (UTC ms), and touch."""
    storage = ctx.open()
    first, other = storage.create_session(), storage.create_session()
    ctx.clock.advance(5 * MS)
    offset = timezone(timedelta(hours=5, minutes=45))
    turns = [
        ConversationTurn("one", "1", ctx.clock() - timedelta(days=3)),
        ConversationTurn(
            "two", "2", (ctx.clock() + timedelta(microseconds=999)).astimezone(offset)
        ),
    ]
    for item in turns:
        storage.add_turn(first, item)
    data = storage.get_session(first)
    ctx.expect_equal(data.turns if data else None, tuple(turns), "turns after two add_turn calls")
    ctx.expect(
        data is not None and all(t.timestamp.utcoffset() == timedelta(0) for t in data.turns),
        "turn timestamps must be UTC",
        actual=data,
    )
    ctx.expect_equal(data.last_accessed_at if data else None, to_millis(ctx.clock()), "touch")
    ctx.expect_equal(_ids(storage), [first, other], "add_turn must make the session most recent")
    replacement = [ConversationTurn("three", "3", ctx.clock())]
    storage.update_session(first, turns=replacement)
    replaced = storage.get_session(first)
    ctx.expect_equal(
        replaced.turns if replaced else None,
        tuple(replacement),
        "update_session(turns=) must replace existing turns, not append",
    )


@check("B02")
def unknown_id_conjures_nothing(ctx: CheckContext) -> None:
    """add_turn and update_session on an unknown id create and change nothing."""
    storage = ctx.open()
    known = storage.create_session()
    before = storage.list_sessions()
    storage.add_turn("nobody", ConversationTurn("p", "r", ctx.clock()))
    storage.update_session("nobody", turns=[], codex_conversation_id="c")
    ctx.expect(storage.get_session("nobody") is None, "a session was conjured")
    ctx.expect_equal(storage.list_sessions(), before, "the store changed")
    ctx.expect(storage.get_session(known) is not None, "the known session vanished")


@check("B03")
def reset_keeps_identity(ctx: CheckContext) -> None:
    """reset clears turns and conversation id, keeps id and created_at, and touches."""
    storage = ctx.open()
    session_id = storage.create_session()
    created = to_millis(ctx.clock())
    storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
    storage.set_codex_conversation_id(session_id, "conv")
    ctx.clock.advance(timedelta(minutes=1))
    storage.reset_session(session_id)
    data = storage.get_session(session_id)
    ctx.expect(
        data is not None
        and data.turns == ()
        and data.codex_conversation_id is None
        and data.created_at == created
        and data.last_accessed_at == to_millis(ctx.clock()),
        "after reset: no turns, no conversation id, same created_at, touched",
        actual=data,
    )
    storage.reset_session("nobody")
    ctx.expect(storage.get_session("nobody") is None, "reset of an unknown id created it")


@check("B04")
def ties_ordered_by_access(ctx: CheckContext) -> None:
    """Equal timestamps list latest access first, and the order survives reopen."""
    # The tie order below rests on ensure_session touching (B07's rule): probed first on a
    # store of its own, where a touch shows in the timestamp.
    probe = ctx.open(ctx.dir / "probe" / "sessions.json")
    probe_id = probe.create_session()
    ctx.clock.advance(MS)
    probe.ensure_session(probe_id)
    _require_touched(ctx, probe, probe_id, "B07", "ensure_session on a live session")
    storage = ctx.open()
    a, b, c = (storage.create_session() for _ in range(3))
    storage.ensure_session(a)  # same millisecond: only the access order changes
    ctx.expect_equal(_ids(storage), [a, c, b], "tie order must follow access order")
    if ctx.claims(Level.DURABLE):
        ctx.expect_equal(_ids(_reopen(ctx, storage)), [a, c, b], "tie order after reopen")


@check("B04")
def order_follows_last_access(ctx: CheckContext) -> None:
    """List order follows last access, not creation."""
    storage = ctx.open()
    first = storage.create_session()
    ctx.clock.advance(MS)
    second = storage.create_session()
    ctx.clock.advance(MS)
    storage.add_turn(first, ConversationTurn("p", "r", ctx.clock()))
    _require_touched(ctx, storage, first, "B02", "add_turn")
    ctx.expect_equal(_ids(storage), [first, second], "the session touched last comes first")
    ctx.clock.advance(MS)
    storage.set_codex_conversation_id(second, "c")
    _require_touched(ctx, storage, second, "B06", "set_codex_conversation_id")
    ctx.expect_equal(_ids(storage), [second, first], "the session touched last comes first")


def _require_touched(
    ctx: CheckContext, storage: SessionStorage, session_id: str, owner: str, call: str
) -> None:
    """An order check needs the call to have touched the session (``owner``'s rule): if it
    did not, the order is that behaviour's failure, not the list's (B04)."""
    data = storage.get_session(session_id)
    ctx.require(
        owner,
        data is not None and data.last_accessed_at == to_millis(ctx.clock()),
        f"{call} did not touch the session, so list order cannot be judged",
    )


@check("B05")
def delete_then_recreate(ctx: CheckContext) -> None:
    """delete returns True once, then False; ensure afterwards makes a new empty session."""
    storage = ctx.open()
    session_id = storage.create_session()
    storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
    storage.set_codex_conversation_id(session_id, "conv")
    ctx.expect(storage.delete_session(session_id) is True, "first delete must return True")
    ctx.expect(storage.delete_session(session_id) is False, "second delete must return False")
    ctx.expect(storage.delete_session("never-existed") is False, "unknown id must give False")
    ctx.expect(storage.get_session(session_id) is None, "a deleted session is still there")
    storage.ensure_session(session_id)
    data = storage.get_session(session_id)
    ctx.expect(
        data is not None and data.turns == () and data.codex_conversation_id is None,
        "ensure after delete must create a new empty session",
        actual=data,
    )


@check("B05")
def delete_of_expired_returns_false(ctx: CheckContext) -> None:
    """delete_session of an expired (not yet purged) session returns False."""
    storage = ctx.open()
    session_id = storage.create_session()
    ctx.clock.advance(SESSION_TTL + MS)
    ctx.expect(storage.delete_session(session_id) is False, "delete of an expired session")


@check("B05", requires=Level.DURABLE)
def deleted_stays_gone_after_reopen(ctx: CheckContext) -> None:
    """A session deleted after it was saved does not come back after reopen."""
    storage = ctx.open()
    gone, kept = storage.create_session(), storage.create_session()
    storage.add_turn(gone, ConversationTurn("p", "r", ctx.clock()))
    storage.flush()  # the session is on disk before it is deleted
    storage.delete_session(gone)
    storage.flush()
    storage = _reopen(ctx, storage)
    ctx.expect(storage.get_session(gone) is None, "a deleted session came back after reopen")
    ctx.expect_equal(_ids(storage), [kept], "sessions after reopen")


@check("B06")
def empty_string_round_trips(ctx: CheckContext) -> None:
    """The empty string is a conversation id, in memory and after reopen; None clears it.

    (That reading it does not touch is B23's, checked in checks_reads.)
    """
    storage = ctx.open()
    first = storage.create_session()
    storage.set_codex_conversation_id(first, "")
    ctx.clock.advance(MS)
    ctx.expect_equal(storage.get_codex_conversation_id(first), "", "empty conversation id")
    if ctx.claims(Level.DURABLE):
        storage = _reopen(ctx, storage)
        ctx.expect_equal(
            storage.get_codex_conversation_id(first), "", "empty conversation id after reopen"
        )
    storage.update_session(first, codex_conversation_id=None)
    ctx.expect_equal(storage.get_codex_conversation_id(first), None, "update with None clears")


@check("B07")
def touches_existing(ctx: CheckContext) -> None:
    """ensure_session on a live session keeps turns and conversation id and touches it."""
    storage = ctx.open()
    storage.ensure_session("client-id")
    storage.add_turn("client-id", ConversationTurn("p", "r", ctx.clock()))
    storage.set_codex_conversation_id("client-id", "conv")
    other = storage.create_session()
    ctx.clock.advance(timedelta(seconds=2))
    storage.ensure_session("client-id")
    data = storage.get_session("client-id")
    ctx.expect(
        data is not None
        and len(data.turns) == 1
        and data.codex_conversation_id == "conv"
        and data.last_accessed_at == to_millis(ctx.clock()),
        "ensure_session must keep turns and conversation id and touch",
        actual=data,
    )
    ctx.expect_equal(_ids(storage), ["client-id", other], "the ensured session comes first")


@check("B07")
def creates_absent(ctx: CheckContext) -> None:
    """ensure_session on an absent id creates an empty session stamped now."""
    storage = ctx.open()
    storage.ensure_session("a" * 256)
    data = storage.get_session("a" * 256)
    now = to_millis(ctx.clock())
    ctx.expect(
        data is not None and data.turns == () and data.created_at == data.last_accessed_at == now,
        "ensure_session must create an empty session with created_at == last_accessed_at == now",
        actual=data,
    )


GRAMMAR_EDGES: list[object] = [
    "",
    "a" * 257,
    "abc\n",
    "a b",
    "a/b",
    "a.b",
    "é",
    "\x00",
    "tab\t",
    7,
    None,
    b"bytes",
]


@check("B08")
def rejects_grammar_edges(ctx: CheckContext) -> None:
    """ensure_session rejects every value outside the grammar with a ValidationError whose
    message states the rule (``states_id_rule``), and changes nothing (B08)."""
    storage = ctx.open()
    for value in GRAMMAR_EDGES:
        try:
            storage.ensure_session(value)  # type: ignore[arg-type]
        except ValidationError as exc:
            ctx.expect(
                states_id_rule(str(exc)),
                f"ensure_session({value!r:.30}): the ValidationError must state the rule: 1 to"
                " 256 characters, ASCII letters, digits, '_' and '-' only (SPEC.md §1.1)",
                actual=str(exc),
            )
        except Exception as exc:
            ctx.expect(False, f"{value!r:.30}: wrong exception", actual=repr(exc))
        else:
            ctx.expect(False, f"ensure_session({value!r:.30}) was accepted")
        ctx.expect(storage.get_session(value) is None, f"{value!r:.30}: get_session not None")  # type: ignore[arg-type]
        ctx.expect(storage.delete_session(value) is False, f"{value!r:.30}: delete not False")  # type: ignore[arg-type]
    ctx.expect_equal(_ids(storage), [], "rejected ids must change nothing")
    for value in ("a", "Z" * 256, "_-09azAZ"):
        storage.ensure_session(value)
    ctx.expect_equal(len(_ids(storage)), 3, "valid edge ids must be accepted")


@check("B09")
def round_trip_exact(ctx: CheckContext) -> None:
    """Hostile text, offsets, sub-millisecond digits and ties survive close() and reopen."""
    storage = ctx.open()
    offset = timezone(timedelta(hours=-3, minutes=-30))
    ids = []
    for index, text in enumerate(["plain", *SPECIAL_CHARACTERS, "\x00\udfff\ud800"]):
        session_id = storage.create_session()
        ids.append(session_id)
        stamp = (ctx.clock() + timedelta(microseconds=123 * index)).astimezone(offset)
        storage.add_turn(session_id, ConversationTurn(text, text * 2, stamp))
        storage.set_codex_conversation_id(session_id, text)
        if index % 3 == 0:
            ctx.clock.advance(timedelta(microseconds=700))
    before = storage.list_sessions()
    after = _reopen(ctx, storage).list_sessions()
    ctx.expect_same_store(after, before, "the state after reopen must equal the state before")
    for data in after:
        for moment in (data.created_at, data.last_accessed_at, *(t.timestamp for t in data.turns)):
            ctx.expect(
                moment.tzinfo is not None and moment.utcoffset() == timedelta(0),
                "timestamps must be aware UTC datetimes after reopen",
                actual=repr(moment),
            )


@check("B09")
def touch_only_changes_survive_reopen(ctx: CheckContext) -> None:
    """A session changed only by a touch (ensure) keeps its new last access and order."""
    storage = ctx.open()
    first, second = storage.create_session(), storage.create_session()
    storage.flush()
    ctx.clock.advance(5 * MS)
    storage.ensure_session(first)  # nothing but last access and access order change
    before = storage.list_sessions()
    after = _reopen(ctx, storage).list_sessions()
    ctx.expect_equal(
        [(s.id, s.last_accessed_at) for s in after],
        [(s.id, s.last_accessed_at) for s in before],
        "a touch alone must be saved like any other change",
    )
    ctx.expect_equal([s.id for s in after], [first, second], "the touched session comes first")


@check("B17")
def expiry_boundary_is_exact(ctx: CheckContext) -> None:
    """Live at exactly 24 h; at 24 h + 1 ms invisible to every read."""
    storage = ctx.open()
    # Two sessions stamped alike: one is read at the boundary, the other just after it, so a
    # read that touches (B23's fault) cannot keep the second one alive.
    at_boundary, session_id = storage.create_session(), storage.create_session()
    storage.add_turn(at_boundary, ConversationTurn("p", "r", ctx.clock()))
    storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
    ctx.clock.set(to_millis(ctx.clock()) + SESSION_TTL)
    ctx.expect(storage.get_session(at_boundary) is not None, "at exactly 24 h a session is live")
    ctx.clock.advance(MS)
    ctx.expect(storage.get_session(session_id) is None, "after 24 h + 1 ms it must be gone")
    ctx.expect(storage.get_codex_conversation_id(session_id) is None, "expired: no conversation id")
    ctx.expect(session_id not in _ids(storage), "list_sessions must not show an expired session")


@check("B17")
def mutations_do_not_revive(ctx: CheckContext) -> None:
    """Mutations on an expired (not yet purged) session do nothing; ensure starts afresh."""
    storage = ctx.open()
    ids = [storage.create_session() for _ in range(5)]
    for session_id in ids:
        storage.add_turn(session_id, ConversationTurn("p", "r", ctx.clock()))
    ctx.clock.advance(SESSION_TTL + MS)
    storage.add_turn(ids[0], ConversationTurn("p", "r", ctx.clock()))
    storage.set_codex_conversation_id(ids[1], "c")
    storage.reset_session(ids[2])
    storage.update_session(ids[3], turns=[])
    for session_id in ids[:4]:
        ctx.expect(storage.get_session(session_id) is None, "a mutation revived an expired session")
    storage.ensure_session(ids[4])
    data = storage.get_session(ids[4])
    now = to_millis(ctx.clock())
    ctx.expect(
        data is not None and data.turns == () and data.created_at == now,
        "ensure on an expired id must create a fresh empty session",
        actual=data,
    )
    ctx.expect_equal(_ids(storage), [ids[4]], "only the ensured session is live")


@check("B17", requires=Level.FILE_V1)
def expired_sessions_leave_the_file(ctx: CheckContext) -> None:
    """At the next save the file holds no session that has expired."""
    storage = ctx.open()
    old = storage.create_session()
    storage.flush()
    ctx.clock.advance(timedelta(hours=23))
    young = storage.create_session()
    ctx.clock.advance(timedelta(hours=1) + MS)
    storage.add_turn(young, ConversationTurn("p", "r", ctx.clock()))
    storage.flush()
    document = json.loads(ctx.path.read_bytes())
    ids = [item.get("id") for item in document.get("sessions", [])]
    ctx.expect_equal(ids, [young], f"the expired session {old!r} must leave the file")


@check("B18")
def evicts_least_recently_accessed(ctx: CheckContext) -> None:
    """At the cap, the least recently accessed session goes; the new one survives."""
    storage = ctx.open()
    ids = []
    for _ in range(MAX_SESSIONS):
        ids.append(storage.create_session())
        ctx.clock.advance(MS)
    storage.ensure_session(ids[0])  # now the most recent: ids[1] is the least recent
    _require_touched(ctx, storage, ids[0], "B07", "ensure_session on a live session")
    order = _ids(storage)
    ctx.require(
        "B04",
        order[:1] == [ids[0]] and order[-1:] == [ids[1]],
        "list order does not follow last access, so which session is least recent is moot",
    )
    newest = storage.create_session()
    listed = _ids(storage)
    ctx.expect_equal(len(listed), MAX_SESSIONS, "the store must hold exactly 100 sessions")
    ctx.expect(ids[1] not in listed, "the least recently accessed session must be evicted")
    ctx.expect(newest in listed and ids[0] in listed, "the new and the touched must survive")
    storage.ensure_session("brand-new")
    ctx.expect(storage.get_session("brand-new") is not None, "an ensured session must survive")
    ctx.expect(ids[2] not in _ids(storage), "ensure at the cap evicts the least recent")


@check("B18")
def new_session_survives_a_tie_at_the_cap(ctx: CheckContext) -> None:
    """101 sessions created in one millisecond: the first goes, the one just created stays
    (a tie is broken by access order, B04; found in codex-mcp-server 1.4.10, which evicts
    the new one)."""
    storage = ctx.open()
    for _ in range(MAX_SESSIONS):
        storage.create_session()
    # Which of the others is last in list order is B04's business: B18 evicts that one.
    order = _ids(storage)
    newest = storage.create_session()
    listed = _ids(storage)
    ctx.expect(newest in listed, "the session just created must survive the cap", actual=listed)
    ctx.expect_equal(
        sorted(listed), sorted([newest, *order[:-1]]), "the last in list order must go"
    )
    order = _ids(storage)
    storage.ensure_session("ensured-in-a-tie")
    listed = _ids(storage)
    ctx.expect("ensured-in-a-tie" in listed, "the session just ensured must survive the cap")
    ctx.expect_equal(
        sorted(listed), sorted(["ensured-in-a-tie", *order[:-1]]), "the last in list order must go"
    )


@check("B18", requires=Level.FILE_V1)
def new_session_survives_sessions_ahead_of_the_clock(ctx: CheckContext) -> None:
    """Loaded sessions a day ahead of now: at the cap the others go, never the new one."""
    ahead = to_millis(ctx.clock()) + timedelta(days=1)
    # File order = list order: distinct last-access times, newest first.
    loaded = [f"ahead-{i:03d}" for i in range(MAX_SESSIONS)]
    records = [record(sid, ahead - i * MS) for i, sid in enumerate(loaded)]
    write_bytes(ctx.path, document(records), 0o600)
    storage = ctx.open()
    ctx.expect_equal(_ids(storage), loaded, "sessions ahead of the clock load in list order")
    created = storage.create_session()
    listed = _ids(storage)
    ctx.expect(created in listed, "the session just created must survive the cap", actual=listed)
    ctx.expect_equal(
        listed,
        [*loaded[:-1], created],
        "the others last in list order are evicted; the new one keeps its place by timestamp",
    )
    storage.ensure_session("ensured-now")
    # Now the created session is the last of the others in list order: it goes.
    ctx.expect_equal(
        _ids(storage),
        [*loaded[:-1], "ensured-now"],
        "the session just ensured must survive; the last of the others in list order goes",
    )
