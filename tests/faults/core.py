"""Seeded faults in the session logic: ids, turns, order, delete, expiry, the cap (B01-B09,
B17, B18). Most live in a ``SessionTable`` subclass, the way such a bug would be written."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sessionspec.reference import sessionfile
from sessionspec.reference.sessionfile import Decoded, SessionEncoder, _session_bytes
from sessionspec.reference.table import SessionTable, Snapshot, _checked_turns
from sessionspec.spec import (
    SESSION_TTL,
    UNSET,
    ConversationTurn,
    SessionData,
    Unset,
    ValidationError,
    check_session_id,
    is_valid_session_id,
)

from ._base import HookedFileStorage, HookedMemoryStorage
from ._registry import fault

# -- B01 create-session ----------------------------------------------------------------------


class _Uuid1Table(SessionTable):
    def create(self) -> tuple[str, int]:
        with self._lock:
            now = self._now()
            self._purge(now)
            session_id = str(uuid.uuid1())
            return session_id, self._insert(SessionData(session_id, now, now))


@fault("B01", "uuid1-ids", "create_session returns time-based UUID1 ids instead of random UUID4")
class Uuid1Ids(HookedFileStorage):
    table_class = _Uuid1Table


class _UppercaseTable(SessionTable):
    def create(self) -> tuple[str, int]:
        with self._lock:
            now = self._now()
            self._purge(now)
            session_id = str(uuid.uuid4()).upper()
            return session_id, self._insert(SessionData(session_id, now, now))


@fault("B01", "uppercase-ids", "create_session returns the UUID4 in upper case (not canonical)")
class UppercaseIds(HookedMemoryStorage):
    table_class = _UppercaseTable


class _HexTable(SessionTable):
    def create(self) -> tuple[str, int]:
        with self._lock:
            now = self._now()
            self._purge(now)
            session_id = uuid.uuid4().hex
            return session_id, self._insert(SessionData(session_id, now, now))


@fault("B01", "hex-ids", "create_session returns uuid4().hex: 32 digits without the hyphens")
class HexIds(HookedFileStorage):
    table_class = _HexTable


# -- B02 add-turn ----------------------------------------------------------------------------


class _PrependTable(SessionTable):
    def add_turn(self, session_id: str, turn: ConversationTurn) -> int | None:
        (checked,) = _checked_turns([turn])
        with self._lock:
            now = self._now()
            current = self._live(session_id, now)
            if current is None:
                return None
            return self._put(
                replace(current, last_accessed_at=now, turns=(checked, *current.turns))
            )


@fault("B02", "add-turn-prepends", "add_turn inserts the new turn before the existing ones")
class AddTurnPrepends(HookedFileStorage):
    table_class = _PrependTable


class _NoTouchAddTable(SessionTable):
    def add_turn(self, session_id: str, turn: ConversationTurn) -> int | None:
        (checked,) = _checked_turns([turn])
        with self._lock:
            current = self._live(session_id, self._now())
            if current is None:
                return None
            # The bug: stores the new turns without a touch (no new time, no new access).
            self._sessions[session_id] = replace(current, turns=(*current.turns, checked))
            self._revision += 1
            return self._revision


@fault("B02", "add-turn-no-touch", "add_turn appends but neither stamps nor reorders the session")
class AddTurnNoTouch(HookedMemoryStorage):
    table_class = _NoTouchAddTable


class _RestampTable(SessionTable):
    def add_turn(self, session_id: str, turn: ConversationTurn) -> int | None:
        (checked,) = _checked_turns([turn])
        with self._lock:
            now = self._now()
            current = self._live(session_id, now)
            if current is None:
                return None
            stamped = replace(checked, timestamp=now)  # the bug: the turn's own time is lost
            return self._put(
                replace(current, last_accessed_at=now, turns=(*current.turns, stamped))
            )


@fault("B02", "add-turn-restamps", "add_turn replaces the turn's own timestamp with now")
class AddTurnRestamps(HookedFileStorage):
    table_class = _RestampTable


class _UpdateAppendsTable(SessionTable):
    def update(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> int | None:
        new_turns = None if isinstance(turns, Unset) else _checked_turns(turns)
        with self._lock:
            now = self._now()
            current = self._live(session_id, now)
            if current is None:
                return None
            updated = replace(current, last_accessed_at=now)
            if new_turns:
                updated = replace(updated, turns=current.turns + new_turns)  # the bug
            elif new_turns is not None:
                # reset_session (turns=()) is a separate path in a real backend: it clears.
                updated = replace(updated, turns=())
            if not isinstance(codex_conversation_id, Unset):
                updated = replace(updated, codex_conversation_id=codex_conversation_id)
            return self._put(updated)


@fault("B02", "update-turns-appends", "update_session(turns=...) appends instead of replacing")
class UpdateTurnsAppends(HookedFileStorage):
    table_class = _UpdateAppendsTable


class _ConjuringTable(SessionTable):
    def add_turn(self, session_id: str, turn: ConversationTurn) -> int | None:
        (checked,) = _checked_turns([turn])
        with self._lock:
            now = self._now()
            current = self._live(session_id, now)
            if current is None:
                if session_id in self._sessions or not isinstance(session_id, str):
                    return None
                try:
                    check_session_id(session_id)
                except ValidationError:
                    return None
                current = SessionData(session_id, now, now)  # the bug: get-or-create
            return self._put(
                replace(current, last_accessed_at=now, turns=(*current.turns, checked))
            )


@fault("B02", "add-turn-conjures", "add_turn on an unknown (valid) id creates the session")
class AddTurnConjures(HookedMemoryStorage):
    table_class = _ConjuringTable


# -- B03 reset-session -----------------------------------------------------------------------


@fault("B03", "reset-keeps-conversation-id", "reset_session clears the turns only")
class ResetKeepsConversationId(HookedFileStorage):
    def reset_session(self, session_id: str) -> None:
        self.update_session(session_id, turns=())


class _ResetRecreatesTable(SessionTable):
    def update(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> int | None:
        if turns == () and codex_conversation_id is None:
            with self._lock:
                now = self._now()
                if self._live(session_id, now) is None:
                    return None
                return self._put(SessionData(session_id, now, now))  # the bug: a new created_at
        return super().update(session_id, turns=turns, codex_conversation_id=codex_conversation_id)


@fault("B03", "reset-restamps-created-at", "reset_session recreates the session: created_at = now")
class ResetRestampsCreatedAt(HookedFileStorage):
    table_class = _ResetRecreatesTable


# -- B04 list-sessions -----------------------------------------------------------------------


class _TimestampOnlyOrderTable(SessionTable):
    def _in_list_order(self, sessions: Iterable[SessionData]) -> list[SessionData]:
        return sorted(sessions, key=lambda s: s.last_accessed_at, reverse=True)


@fault("B04", "ties-in-creation-order", "list order ignores access order: ties stay in dict order")
class TiesInCreationOrder(HookedMemoryStorage):
    table_class = _TimestampOnlyOrderTable


class _CreatedOrderTable(SessionTable):
    def _in_list_order(self, sessions: Iterable[SessionData]) -> list[SessionData]:
        return sorted(sessions, key=lambda s: (s.created_at, self._access[s.id]), reverse=True)


@fault("B04", "list-by-created-at", "list_sessions sorts by created_at instead of last access")
class ListByCreatedAt(HookedMemoryStorage):
    table_class = _CreatedOrderTable


class _UnsortedSnapshotTable(SessionTable):
    def snapshot(self) -> Snapshot:
        with self._lock:
            now = self._now()
            self._fold_all()
            revision, sessions = self._revision, dict(self._sessions)
        # The bug: the file gets the sessions in insertion (creation) order.
        return Snapshot(revision, tuple(s for s in sessions.values() if not self._expired(s, now)))


@fault("B04", "file-in-creation-order", "the writer saves sessions in creation, not list, order")
class FileInCreationOrder(HookedFileStorage):
    table_class = _UnsortedSnapshotTable


class _ReversedLoadTable(SessionTable):
    def __init__(self, sessions: Iterable[SessionData] = (), **kwargs: object) -> None:
        loaded = list(sessions)
        super().__init__(loaded, **kwargs)  # type: ignore[arg-type]
        # The bug: file position read as "earlier = accessed earlier" among equal timestamps.
        for index, session in enumerate(loaded):
            if session.id in self._access:
                self._access[session.id] = index + 1


@fault("B04", "reload-ties-reversed", "the reader takes an earlier file position as older access")
class ReloadTiesReversed(HookedFileStorage):
    table_class = _ReversedLoadTable


# -- B05 delete-session ----------------------------------------------------------------------


class _DeleteExpiredTable(SessionTable):
    def delete(self, session_id: str) -> int | None:
        if not is_valid_session_id(session_id):
            return None
        with self._lock:
            if session_id not in self._sessions:  # the bug: no expiry check
                return None
            self._remove(session_id)
            return self._revision


@fault("B05", "delete-expired-returns-true", "delete_session returns True for an expired session")
class DeleteExpiredReturnsTrue(HookedMemoryStorage):
    table_class = _DeleteExpiredTable


class _SoftDeleteTable(SessionTable):
    """Deletes hide the session behind a tombstone; ensure lifts the tombstone."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._tombstones: dict[str, SessionData] = {}

    def delete(self, session_id: str) -> int | None:
        with self._lock:
            current = self._live(session_id, self._now())
            if current is None:
                return None
            self._tombstones[session_id] = current
            self._remove(session_id)
            return self._revision

    def ensure(self, session_id: str) -> int:
        check_session_id(session_id)
        with self._lock:
            now = self._now()
            self._purge(now)
            current = self._folded(session_id) or self._tombstones.pop(session_id, None)
            if current is None:
                return self._insert(SessionData(session_id, now, now))
            if session_id not in self._sessions:  # the bug: the old turns come back
                return self._insert(replace(current, last_accessed_at=now))
            return self._put(replace(current, last_accessed_at=now))


@fault("B05", "delete-then-ensure-revives", "ensure after delete brings back the old turns")
class DeleteThenEnsureRevives(HookedFileStorage):
    table_class = _SoftDeleteTable


class _MergingEncoder(SessionEncoder):
    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        for session in sessions:
            self._last[session.id] = (session, _session_bytes(session))
        given = [session.id for session in sessions]
        # The bug: the cache is the content; a session it once wrote is never dropped from it
        # (the live ones keep their list order, the dropped ones follow).
        stale = [key for key in self._last if key not in given]
        from sessionspec.reference.sessionfile import _document

        return _document([self._last[key][1] for key in [*given, *stale]])


@fault(
    "B05",
    "deleted-stays-in-file",
    "the encoder's cache keeps deleted sessions in the file",
    also={
        "B17": "the cache drops nothing, so expired sessions stay in the file too",
        "B21": "a fresh process then sees the deleted sessions: not the state flush() wrote",
    },
)
class DeletedStaysInFile(HookedFileStorage):
    encoder_class = _MergingEncoder


# -- B06 conversation-id ---------------------------------------------------------------------


class _NoEmptyCidEncoder(SessionEncoder):
    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        # The bug (as upstream): a falsy conversation id is treated as absent.
        return super().encode(
            replace(s, codex_conversation_id=s.codex_conversation_id or None) for s in sessions
        )


@fault("B06", "empty-conversation-id-dropped", "an empty-string conversation id is not saved")
class EmptyConversationIdDropped(HookedFileStorage):
    encoder_class = _NoEmptyCidEncoder


class _CidOnlyWithTurnsEncoder(SessionEncoder):
    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        # The bug: the conversation id is written in the turns branch of the template only.
        return super().encode(
            s if s.turns else replace(s, codex_conversation_id=None) for s in sessions
        )


@fault(
    "B06",
    "cid-lost-without-turns",
    "a session without turns loses its conversation id on save",
    also={"B21": "the saved file lacks a conversation id set before flush(): a lost update"},
)
class CidLostWithoutTurns(HookedFileStorage):
    encoder_class = _CidOnlyWithTurnsEncoder


@fault("B06", "update-none-ignored", "update_session(codex_conversation_id=None) does not clear it")
class UpdateNoneIgnored(HookedFileStorage):
    def update_session(
        self,
        session_id: str,
        *,
        turns: Sequence[ConversationTurn] | Unset = UNSET,
        codex_conversation_id: str | Unset | None = UNSET,
    ) -> None:
        if codex_conversation_id is None:  # the bug: None read as "not given"
            codex_conversation_id = UNSET
        super().update_session(session_id, turns=turns, codex_conversation_id=codex_conversation_id)

    def reset_session(self, session_id: str) -> None:
        revision = self._table.update(session_id, turns=(), codex_conversation_id=None)
        if revision is not None:
            self._changed(revision)


# -- B07 ensure-session ----------------------------------------------------------------------


class _EnsureNoTouchTable(SessionTable):
    def ensure(self, session_id: str) -> int:
        check_session_id(session_id)
        with self._lock:
            now = self._now()
            self._purge(now)
            if session_id in self._sessions:
                return self._revision  # the bug (upstream's in-memory backend): no touch
            return self._insert(SessionData(session_id, now, now))


@fault("B07", "ensure-no-touch", "ensure_session on a live session leaves it untouched")
class EnsureNoTouch(HookedMemoryStorage):
    table_class = _EnsureNoTouchTable


class _EnsureRecreatesTable(SessionTable):
    def ensure(self, session_id: str) -> int:
        check_session_id(session_id)
        with self._lock:
            now = self._now()
            self._purge(now)
            return self._insert(SessionData(session_id, now, now))  # the bug: always new


@fault("B07", "ensure-recreates", "ensure_session on a live session replaces it with an empty one")
class EnsureRecreates(HookedFileStorage):
    table_class = _EnsureRecreatesTable


# -- B08 session-id-grammar ------------------------------------------------------------------


def _ensure_with(table: SessionTable, session_id: str) -> int:
    with table._lock:
        now = table._now()
        table._purge(now)
        current = table._folded(session_id)
        if current is None:
            return table._insert(SessionData(session_id, now, now))
        return table._put(replace(current, last_accessed_at=now))


class _DollarTable(SessionTable):
    def ensure(self, session_id: str) -> int:
        if not isinstance(session_id, str) or not re.match(r"^[A-Za-z0-9_-]{1,256}$", session_id):
            raise ValidationError(
                "session ID must be a string of 1 to 256 characters from A-Z, a-z, 0-9, '_', '-'"
            )
        return _ensure_with(self, session_id)


@fault("B08", "dollar-accepts-newline", "ids checked with re.match('^...$'): 'abc\\n' is accepted")
class DollarAcceptsNewline(HookedFileStorage):
    table_class = _DollarTable


class _LenientTable(SessionTable):
    def ensure(self, session_id: str) -> int:
        if (
            not isinstance(session_id, str)
            or not 1 <= len(session_id) <= 256
            or any(ord(c) < 32 or ord(c) == 127 for c in session_id)
        ):
            raise ValidationError("session ID must be 1 to 256 characters without control chars")
        return _ensure_with(self, session_id)


@fault("B08", "lenient-grammar", "ensure_session accepts any id without control characters")
class LenientGrammar(HookedMemoryStorage):
    table_class = _LenientTable


class _TypeErrorTable(SessionTable):
    def ensure(self, session_id: str) -> int:
        from sessionspec.spec import SESSION_ID_PATTERN, SESSION_ID_RULE

        if not SESSION_ID_PATTERN.match(session_id):  # the bug: TypeError for a non-str
            raise ValidationError(SESSION_ID_RULE)
        return _ensure_with(self, session_id)


@fault("B08", "non-str-type-error", "ensure_session(7) raises TypeError, not ValidationError")
class NonStrTypeError(HookedFileStorage):
    table_class = _TypeErrorTable


class _VagueMessageTable(SessionTable):
    def ensure(self, session_id: str) -> int:

        if not is_valid_session_id(session_id):
            raise ValidationError(f"invalid session id {session_id!r:.40}")  # the bug
        return _ensure_with(self, session_id)


@fault("B08", "message-without-rule", "the ValidationError does not state the id rule")
class MessageWithoutRule(HookedMemoryStorage):
    table_class = _VagueMessageTable


class _LengthOnlyMessageTable(SessionTable):
    def ensure(self, session_id: str) -> int:
        if not is_valid_session_id(session_id):
            # The bug: the message of the first version, when only the length was checked;
            # the characters allowed were added to the check but never to the message.
            raise ValidationError("session ID must be 1 to 256 characters long")
        return _ensure_with(self, session_id)


@fault(
    "B08", "message-states-length-only", "the ValidationError states the length, not the characters"
)
class MessageStatesLengthOnly(HookedMemoryStorage):
    table_class = _LengthOnlyMessageTable


# -- B09 round-trip --------------------------------------------------------------------------


def _naive(session: SessionData) -> SessionData:
    def strip(moment: object) -> object:
        return moment.replace(tzinfo=None)  # type: ignore[attr-defined]

    return SessionData(
        session.id,
        strip(session.created_at),  # type: ignore[arg-type]
        strip(session.last_accessed_at),  # type: ignore[arg-type]
        session.turns,
        session.codex_conversation_id,
    )


_CRASHES_ON_LOAD = (
    "the backend then crashes (TypeError: naive minus aware datetimes) in every load of a"
    " non-empty file: each check that opens a file fails with that crash"
)


@fault(
    "B09",
    "naive-timestamps-on-load",
    "the reader returns naive datetimes (tzinfo dropped)",
    also=dict.fromkeys(
        [f"B{n:02d}" for n in (4, 5, 6, 11, 13, 14, 15, 17, 18, 20, 21, 22, 23, 32, 33)],
        _CRASHES_ON_LOAD,
    ),
)
class NaiveTimestampsOnLoad(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        decoded = super()._decode(data)
        return replace(decoded, sessions=tuple(_naive(s) for s in decoded.sessions))


@fault("B09", "created-from-last-accessed", "the reader fills created_at from lastAccessedAt")
class CreatedFromLastAccessed(HookedFileStorage):
    def _decode(self, data: bytes) -> Decoded:
        decoded = super()._decode(data)
        return replace(
            decoded,
            sessions=tuple(replace(s, created_at=s.last_accessed_at) for s in decoded.sessions),
        )


class _ContentKeyedEncoder(SessionEncoder):
    """Caches each session's bytes by its content, forgetting that a touch changes the times."""

    def __init__(self) -> None:
        super().__init__()
        self._by_content: dict[str, tuple[tuple[object, ...], bytes]] = {}

    def encode(self, sessions: Iterable[SessionData]) -> bytes:
        from sessionspec.reference.sessionfile import _document

        pieces = []
        current = {}
        for session in sessions:
            key = (session.turns, session.codex_conversation_id)
            cached = self._by_content.get(session.id)
            if cached is None or cached[0] != key:
                cached = (key, _session_bytes(session))
            current[session.id] = cached
            pieces.append(cached[1])
        self._by_content = current
        return _document(pieces)


@fault("B09", "touched-only-not-saved", "a session only touched keeps its old times in the file")
class TouchedOnlyNotSaved(HookedFileStorage):
    encoder_class = _ContentKeyedEncoder


_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})\Z")


class _WallClockTurnReader(sessionfile._RecordReader):
    """Reads a turn's timestamp by its wall-clock digits: the offset is dropped."""

    def _turn(self, record: object) -> ConversationTurn:
        turn = super()._turn(record)  # valid, or _Skipped was raised
        assert isinstance(record, dict)
        match = _OFFSET.search(record["timestamp"])
        if match is None:
            return turn
        offset = timedelta(hours=int(match[2]), minutes=int(match[3]))
        # The bug: "the turn's local time, in UTC" -- 21:00+09:00 becomes 21:00Z, not 12:00Z.
        return replace(turn, timestamp=turn.timestamp + (offset if match[1] == "+" else -offset))


def _decode_with(reader: sessionfile._RecordReader, data: bytes) -> Decoded:
    """``sessionfile.decode`` with another record reader (same statements, same order)."""
    document, repeated_names = sessionfile._parse_json(data)
    if not isinstance(document, dict):
        raise sessionfile.CorruptFileError("the top level is not a JSON object")
    if not sessionfile._is_version_1(document.get("version")):
        raise sessionfile.UnsupportedVersionError(
            f"unsupported version {sessionfile._as_json(document, 'version')}"
        )
    records = document.get("sessions")
    if not isinstance(records, list):
        raise sessionfile.CorruptFileError("'sessions' is absent or not an array")
    reader.lossy = repeated_names or bool(document.keys() - sessionfile.ENVELOPE_MEMBERS)
    sessions: dict[str, SessionData] = {}
    for index, record in enumerate(records):
        session = reader.session(f"sessions[{index}]", record, sessions)
        if session is not None:
            sessions[session.id] = session
    return Decoded(tuple(sessions.values()), tuple(reader.skipped), reader.lossy)


@fault("B09", "turn-times-drop-offset", "a turn's timestamp is read without its offset, as UTC")
class TurnTimesDropOffset(HookedFileStorage):
    # Its own files always say Z, so only a file another writer made (upstream's JS, a user's
    # edit, a vector) shows the bug; the session times are read right, the turns are wrong.
    def _decode(self, data: bytes) -> Decoded:
        return _decode_with(_WallClockTurnReader(), data)


# -- B17 ttl-expiry --------------------------------------------------------------------------


class _InclusiveTtlTable(SessionTable):
    def _expired(self, session: SessionData, now: object) -> bool:
        return now - session.last_accessed_at >= self._ttl  # type: ignore[operator, no-any-return]


@fault("B17", "ttl-inclusive", "expiry compares with >= : a session expires at exactly 24 h")
class TtlInclusive(HookedFileStorage):
    table_class = _InclusiveTtlTable


class _GetSeesExpiredTable(SessionTable):
    def get(self, session_id: str) -> SessionData | None:

        if not is_valid_session_id(session_id):
            return None
        with self._lock:
            return self._folded(session_id)  # the bug: not purged yet = still there


@fault("B17", "get-returns-expired", "get_session returns an expired session until a purge")
class GetReturnsExpired(HookedMemoryStorage):
    table_class = _GetSeesExpiredTable


class _RevivingTable(SessionTable):
    def add_turn(self, session_id: str, turn: ConversationTurn) -> int | None:
        (checked,) = _checked_turns([turn])
        with self._lock:
            now = self._now()
            current = self._folded(session_id) if isinstance(session_id, str) else None
            if current is None:  # the bug: an expired but unpurged session is revived
                return None
            return self._put(
                replace(current, last_accessed_at=now, turns=(*current.turns, checked))
            )


@fault("B17", "add-turn-revives-expired", "add_turn on an expired, unpurged session revives it")
class AddTurnRevivesExpired(HookedFileStorage):
    table_class = _RevivingTable


class _ExpiredSavedTable(SessionTable):
    def snapshot(self) -> Snapshot:
        with self._lock:
            self._fold_all()
            revision, sessions, access = self._revision, dict(self._sessions), dict(self._access)
        # The bug: no expiry filter; expired sessions stay in the file until purged.
        ordered = sorted(
            sessions.values(), key=lambda s: (s.last_accessed_at, access[s.id]), reverse=True
        )
        return Snapshot(revision, tuple(ordered))


@fault("B17", "expired-kept-in-file", "the writer saves expired sessions that are not purged yet")
class ExpiredKeptInFile(HookedFileStorage):
    table_class = _ExpiredSavedTable


# Its rule is B15's ("expired sessions lose nothing": a load that is not lossy makes no
# backup); it sits here because it is about expired sessions.
@fault(
    "B15",
    "expired-sessions-lossy",
    "sessions expired in the file count as lost: each open backs up",
)
class ExpiredSessionsLossy(HookedFileStorage):
    def _load(self, now: datetime) -> tuple[bytes, Decoded] | None:
        loaded = super()._load(now)
        if loaded is None:
            return None
        data, decoded = loaded
        if any(now - s.last_accessed_at > SESSION_TTL for s in decoded.sessions):
            # The bug: expired sessions leave the file at the next save, so "they are lost":
            # every open of a file with an old session makes one more copy of it.
            return data, replace(decoded, lossy=True)
        return loaded


# -- B18 lru-cap -----------------------------------------------------------------------------


class _WrongTieEvictionTable(SessionTable):
    def _insert(self, session: SessionData) -> int:
        self._put(session)
        if len(self._sessions) > self._max_sessions:
            # The bug: oldest first, ties by access ascending... then the tail is cut from the
            # wrong end, and the new session is not protected.
            ordered = sorted(
                self._sessions.values(),
                key=lambda s: (s.last_accessed_at, -self._access[s.id]),
                reverse=True,
            )
            for victim in ordered[self._max_sessions :]:
                self._remove(victim.id)
        return self._revision


@fault("B18", "lru-tie-evicts-newest", "LRU ties broken the wrong way: the new session is evicted")
class LruTieEvictsNewest(HookedFileStorage):
    table_class = _WrongTieEvictionTable


class _OffByOneCapTable(SessionTable):
    def _insert(self, session: SessionData) -> int:
        self._put(session)
        if len(self._sessions) > self._max_sessions:
            ordered = self._in_list_order(self._sessions.values())
            victims = [s.id for s in ordered if s.id != session.id]
            for session_id in victims[self._max_sessions :]:  # the bug: should be max - 1
                self._remove(session_id)
        return self._revision


@fault("B18", "cap-off-by-one", "the cap keeps 101 sessions (victims sliced one too late)")
class CapOffByOne(HookedMemoryStorage):
    table_class = _OffByOneCapTable


class _EnsureIgnoresCapTable(SessionTable):
    def ensure(self, session_id: str) -> int:
        check_session_id(session_id)
        with self._lock:
            now = self._now()
            self._purge(now)
            current = self._folded(session_id)
            if current is None:
                return self._put(SessionData(session_id, now, now))  # the bug: no eviction
            return self._put(replace(current, last_accessed_at=now))


@fault("B18", "ensure-ignores-cap", "ensure_session creates past the cap without evicting")
class EnsureIgnoresCap(HookedFileStorage):
    table_class = _EnsureIgnoresCapTable


class _NoCapAtLoadTable(SessionTable):
    def __init__(self, sessions: Iterable[SessionData] = (), **kwargs: object) -> None:
        loaded = list(sessions)
        super().__init__((), **kwargs)  # type: ignore[arg-type]
        # The bug: the loaded sessions are taken as they are, over the cap too.
        self._sessions = {s.id: s for s in loaded}
        self._access = {s.id: len(loaded) - i for i, s in enumerate(loaded)}
        self._next_access = len(loaded) + 1


@fault("B18", "no-cap-at-load", "a file with more than 100 live sessions loads them all")
class NoCapAtLoad(HookedFileStorage):
    table_class = _NoCapAtLoadTable
