"""The machine's report names the ids the backend made up (``m.created[i]``) before it diffs,
so a FAIL's diff is the same on every run of the same program (issue 11: same report)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sessionspec.conformance.diff import structural_diff
from sessionspec.conformance.machine import with_named_ids
from sessionspec.spec import ConversationTurn, SessionData

NOW = datetime(2031, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)


def diff_for(created: list[str]) -> list[str]:
    """The diff a wrong-order FAIL shows, for one draw of the backend's random ids."""
    expected = [SessionData(created[0], NOW, NOW), SessionData(created[1], NOW, NOW)]
    actual = [
        SessionData(created[1], NOW, NOW),
        SessionData(created[0], NOW, NOW, (ConversationTurn("p", "r", NOW),)),
    ]
    return [
        *structural_diff(with_named_ids(created[0], created), with_named_ids(created[1], created)),
        *structural_diff(with_named_ids(expected, created), with_named_ids(actual, created)),
    ]


def test_the_diff_does_not_depend_on_the_ids_the_backend_drew() -> None:
    # Ids sharing a long prefix and ids differing at their first character once gave
    # "differ at index 0" and "differ at index 9" for the same program.
    draws = [
        ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"],
        ["10000000-0000-4000-8000-000000000000", "f0000000-0000-4000-8000-000000000000"],
        *([str(uuid.uuid4()), str(uuid.uuid4())] for _ in range(20)),
    ]
    diffs = {tuple(diff_for(created)) for created in draws}
    assert len(diffs) == 1, diffs
    (only,) = diffs
    assert any("m.created[0]" in line and "m.created[1]" in line for line in only), only
    assert not any("-4000-" in line for line in only), only


def test_naming_reaches_inside_containers_and_keeps_their_types() -> None:
    created = [str(uuid.uuid4())]
    named = with_named_ids(
        {created[0]: (SessionData(created[0], NOW, NOW), [f"id {created[0]}"])}, created
    )
    assert named == {"m.created[0]": (SessionData("m.created[0]", NOW, NOW), ["id m.created[0]"])}
    assert with_named_ids(7, created) == 7
