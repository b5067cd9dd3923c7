"""The three-way merge of the shared level (SPEC.md §8.2, B25-B28).

An instance that saves, or that sees the file changed, merges three states of the store, each
a mapping from id to session: the **base** (what it last loaded or saved), **local** (what it
holds now) and **disk** (what the file holds now). Everything here is a pure function of
those three, so every instance, in any process or language, merges the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sessionspec.spec import ConversationTurn, SessionData

Store = Mapping[str, SessionData]


def merge_stores(base: Store, local: Store, disk: Store) -> dict[str, SessionData]:
    """Merge every id of the three states (B25 creates kept, B26 deletes stick, B27, B28).

    Per id: unchanged locally since the base → the disk's; unchanged on disk → the local one;
    deleted on one side and changed on the other → the changed one (nothing typed is lost);
    changed on both → field by field (``merge_session``). The result is unordered and not yet
    purged or capped: the caller applies TTL and the cap (B17, B18) and list order (B04).
    """
    merged: dict[str, SessionData] = {}
    for session_id in local.keys() | disk.keys():
        result = merge_session(base.get(session_id), local.get(session_id), disk.get(session_id))
        if result is not None:
            merged[session_id] = result
    return merged


def merge_session(
    base: SessionData | None, local: SessionData | None, disk: SessionData | None
) -> SessionData | None:
    """One id's merge (SPEC.md §8.2); None means the session is gone."""
    if same_session(local, base):
        return disk
    if same_session(disk, base) or same_session(
        local, disk
    ):  # equal on both sides: one, not merged twice
        return local
    if local is None or disk is None:  # deleted on one side, changed on the other
        return disk if local is None else local
    later_is_local = local.last_accessed_at >= disk.last_accessed_at  # a tie: this save's
    return SessionData(
        id=local.id,
        created_at=min(local.created_at, disk.created_at),
        last_accessed_at=max(local.last_accessed_at, disk.last_accessed_at),
        turns=merge_turns(
            () if base is None else base.turns, local.turns, disk.turns, later_is_local
        ),
        codex_conversation_id=_merge_field(
            None if base is None else base.codex_conversation_id,
            local.codex_conversation_id,
            disk.codex_conversation_id,
            later_is_local,
        ),
    )


def merge_turns(
    base: Sequence[ConversationTurn],
    local: Sequence[ConversationTurn],
    disk: Sequence[ConversationTurn],
    later_is_local: bool,
) -> tuple[ConversationTurn, ...]:
    """Turns changed on both sides (B27).

    A side **kept** the base's turns when they are a subsequence of its turns (in order, not
    necessarily together); what is left of its turns once one such occurrence (the leftmost)
    is taken out are its **added** turns. The **spine** is the disk's turns, unless only this
    instance dropped or reordered base turns (reset, update with turns): then it is the local
    turns. When both did, the later touch's turns win whole (a tie: the local ones). The result
    is the spine with the other side's added turns merged in by timestamp: walk both, take the
    earlier head, and on equal timestamps the spine's first.
    """
    local_added = _added(base, local)
    if local_added is not None:  # we only added: our turns go into the disk's list
        return _merge_by_timestamp(disk, local_added)
    disk_added = _added(base, disk)
    if disk_added is not None:  # only we replaced: the disk's added turns go into ours
        return _merge_by_timestamp(local, disk_added)
    return tuple(local if later_is_local else disk)


def _added(
    base: Sequence[ConversationTurn], turns: Sequence[ConversationTurn]
) -> list[ConversationTurn] | None:
    """``turns`` without the leftmost occurrence of ``base`` as a subsequence; None if
    ``base`` is not a subsequence of ``turns`` (this side dropped or reordered some)."""
    if len(base) <= len(turns) and tuple(turns[: len(base)]) == tuple(base):
        return list(turns[len(base) :])  # the common case: only appended, cheap
    added: list[ConversationTurn] = []
    position = 0
    for turn in turns:
        if position < len(base) and turn == base[position]:
            position += 1
        else:
            added.append(turn)
    return added if position == len(base) else None


def _merge_by_timestamp(
    spine: Sequence[ConversationTurn], added: Sequence[ConversationTurn]
) -> tuple[ConversationTurn, ...]:
    if not added:
        return tuple(spine)
    merged: list[ConversationTurn] = []
    i = 0
    for turn in added:
        while i < len(spine) and spine[i].timestamp <= turn.timestamp:
            merged.append(spine[i])
            i += 1
        merged.append(turn)
    merged.extend(spine[i:])
    return tuple(merged)


def _merge_field(
    base: str | None, local: str | None, disk: str | None, later_is_local: bool
) -> str | None:
    """The conversation id (B28): the side that changed it; both did → the later touch's."""
    if local == base:
        return disk
    if disk == base:
        return local
    return local if later_is_local else disk


def same_session(a: SessionData | None, b: SessionData | None) -> bool:
    """Unchanged (SPEC.md §8.1): the same session, field for field, or both absent."""
    return a is b or (a is not None and b is not None and a == b)


__all__ = ["Store", "merge_session", "merge_stores", "merge_turns", "same_session"]
