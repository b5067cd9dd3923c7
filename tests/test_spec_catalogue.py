"""The behaviour catalogue is the one list of B01-B33, and SPEC.md documents each."""

from __future__ import annotations

import re

import pytest

from sessionspec.spec import Level, behaviour, behaviours
from sessionspec.spec.catalogue import (
    SPEC_BEGIN,
    SPEC_END,
    parse_catalogue,
    render_spec_section,
    spec_path,
)


def test_catalogue_holds_exactly_b01_to_b33_each_once() -> None:
    # Spec 1.1 added B23 and B24 after B22, spec 1.2 the shared level's B25-B30,
    # spec 1.3 crashes, hostile paths and exits (B31-B33); earlier ids
    # and slugs never change.
    ids = [item.id for item in behaviours()]
    assert ids == [f"B{n:02d}" for n in range(1, 34)]
    assert len({item.slug for item in behaviours()}) == 33
    assert behaviour("B23").slug == "pure-reads"
    assert behaviour("B24").slug == "snapshot-isolation"
    assert behaviour("B25").slug == "shared-keeps-others"
    assert behaviour("B30").slug == "shared-file-lock"
    assert behaviour("B31").slug == "crash-safe"
    assert behaviour("B33").slug == "exit-saves"


def test_levels_match_the_issue() -> None:
    by_level = {level: [b.id for b in behaviours() if b.level is level] for level in Level}
    assert by_level[Level.DURABLE] == ["B09", "B21", "B33"]
    assert by_level[Level.SHARED] == [f"B{n}" for n in range(25, 31)]
    assert by_level[Level.CORE] == [f"B{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 17, 18, 23, 24)]


def test_spec_documents_every_behaviour_with_its_rule() -> None:
    text = spec_path().read_text(encoding="utf-8")
    for item in behaviours():
        headings = re.findall(rf"^### {item.id} {re.escape(item.slug)} — ", text, re.MULTILINE)
        assert len(headings) == 1, item.id
        assert item.rule in text, f"{item.id}: rule text missing from SPEC.md"


def test_spec_behaviour_section_is_generated_from_the_catalogue() -> None:
    text = spec_path().read_text(encoding="utf-8")
    section = text[text.index(SPEC_BEGIN) : text.index(SPEC_END) + len(SPEC_END)]
    assert section == render_spec_section(), "run: python -m sessionspec.spec --write-spec"


def test_lookup_by_id_and_slug() -> None:
    assert behaviour("B13") is behaviour("corrupt-file-backup")
    with pytest.raises(KeyError):
        behaviour("B34")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[behaviour]]\nid="B1"\nslug="x"\ntitle="t"\nlevel="core"\nrule="r"\nintent="i"',
            "malformed",
        ),
        (
            '[[behaviour]]\nid="B01"\nslug="x"\ntitle="t"\nlevel="core"\nrule="r"\nintent="i"\n'
            * 2,
            "unique",
        ),
        (
            '[[behaviour]]\nid="B01"\nslug="x"\ntitle="t"\nlevel="core"\nrule="r"\nintent="i"\nx=1',
            "unknown",
        ),
    ],
)
def test_malformed_catalogues_are_rejected(toml: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_catalogue(toml)


def test_spec_version_is_the_one_spec_md_states() -> None:
    from sessionspec import spec

    text = spec_path().read_text(encoding="utf-8")
    assert text.startswith(f"# sessionspec {spec.SPEC_VERSION} — ")
    assert f"### {spec.SPEC_VERSION} (" in text, "SPEC.md's changelog has an entry for it"
