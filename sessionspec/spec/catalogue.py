"""The behaviour catalogue (behaviours.toml), loaded once; the only list of behaviours (B01-B33).

``python -m sessionspec.spec --write-spec`` regenerates the "Behaviours" section of SPEC.md;
``--check-spec`` exits 1 when that section is out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from sessionspec.spec.model import Level

SPEC_BEGIN = (
    "<!-- BEGIN BEHAVIOURS: generated from sessionspec/spec/behaviours.toml; do not edit here -->"
)
SPEC_END = "<!-- END BEHAVIOURS -->"
_ID = re.compile(r"\AB[0-9]{2}\Z")
_SLUG = re.compile(r"\A[a-z0-9]+(?:-[a-z0-9]+)*\Z")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One numbered behaviour of the spec."""

    id: str
    slug: str
    title: str
    level: Level
    rule: str
    intent: str
    upstream: str | None = None

    @property
    def label(self) -> str:
        """``B01 create-session``: how reports and test names refer to it."""
        return f"{self.id} {self.slug}"


def _clean(text: str) -> str:
    return " ".join(text.split())


def parse_catalogue(text: str) -> tuple[Behaviour, ...]:
    """Parse and check catalogue TOML: IDs unique, well formed and in order, levels known."""
    behaviours = []
    for raw in tomllib.loads(text)["behaviour"]:
        unknown = set(raw) - {"id", "slug", "title", "level", "rule", "intent", "upstream"}
        if unknown:
            raise ValueError(f"{raw.get('id')}: unknown keys {sorted(unknown)}")
        item = Behaviour(
            id=raw["id"],
            slug=raw["slug"],
            title=_clean(raw["title"]),
            level=Level(raw["level"]),
            rule=_clean(raw["rule"]),
            intent=_clean(raw["intent"]),
            upstream=_clean(raw["upstream"]) if "upstream" in raw else None,
        )
        if not _ID.match(item.id) or not _SLUG.match(item.slug):
            raise ValueError(f"malformed id or slug: {item.id} {item.slug}")
        behaviours.append(item)
    ids = [b.id for b in behaviours]
    if ids != sorted(set(ids)):
        raise ValueError(f"behaviour IDs must be unique and in order: {ids}")
    return tuple(behaviours)


@cache
def behaviours() -> tuple[Behaviour, ...]:
    """Every behaviour, in ID order."""
    text = (
        resources.files("sessionspec.spec").joinpath("behaviours.toml").read_text(encoding="utf-8")
    )
    return parse_catalogue(text)


def behaviour(behaviour_id: str) -> Behaviour:
    """Look one behaviour up by ID (``"B07"``) or slug (``"ensure-session"``)."""
    for item in behaviours():
        if behaviour_id in (item.id, item.slug):
            return item
    raise KeyError(f"no behaviour {behaviour_id!r} in the catalogue")


def render_spec_section() -> str:
    """The Markdown of SPEC.md's behaviour section, between its markers."""
    parts = [SPEC_BEGIN, ""]
    for item in behaviours():
        parts += [
            f"### {item.id} {item.slug} — {item.title}",
            "",
            f"- **Level:** {item.level.value}",
            f"- **Rule:** {item.rule}",
            f"- **Intent:** {item.intent}",
        ]
        if item.upstream:
            parts.append(f"- **Differs from upstream:** {item.upstream}")
        parts.append("")
    parts.append(SPEC_END)
    return "\n".join(parts)


def spec_path() -> Path:
    return Path(str(resources.files("sessionspec.spec").joinpath("SPEC.md")))


def _replace_section(document: str) -> str:
    start, end = document.index(SPEC_BEGIN), document.index(SPEC_END) + len(SPEC_END)
    return document[:start] + render_spec_section() + document[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write-spec", action="store_true", help="regenerate SPEC.md's section")
    group.add_argument("--check-spec", action="store_true", help="fail if SPEC.md is stale")
    args = parser.parse_args(argv)
    if args.write_spec or args.check_spec:
        path = spec_path()
        current = path.read_text(encoding="utf-8")
        wanted = _replace_section(current)
        if args.check_spec:
            if current != wanted:
                print(f"{path}: behaviour section is stale; run --write-spec", file=sys.stderr)
                return 1
            return 0
        path.write_text(wanted, encoding="utf-8")
        return 0
    for item in behaviours():
        print(f"{item.id}  {item.level.value:<8} {item.slug:<24} {item.title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
