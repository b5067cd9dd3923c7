"""Build the teaching notebooks from their readable sources.

Each notebook is written in ``notebooks/src/NAME.py`` in the "percent" format (the one
jupytext and VS Code understand): a line ``# %%`` starts a code cell, ``# %% [markdown]``
starts a Markdown cell whose lines are comments. This script turns every source into
``notebooks/NAME.ipynb`` with no outputs, no execution counts and stable cell ids, so the
committed notebooks are clean and a review reads the ``.py`` diff.

    python notebooks/build.py           # (re)write every .ipynb
    python notebooks/build.py --check   # exit 1 if an .ipynb is not what its source builds
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
MARKER = re.compile(r"^# %%(?P<kind> \[markdown\])?\s*$")


def cells_of(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into (kind, source) pairs."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = MARKER.match(line)
        if match:
            cells.append(("markdown" if match.group("kind") else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError("code before the first '# %%' marker")
    result = []
    for kind, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        result.append((kind, "\n".join(lines)))
    return result


def build(source: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, (kind, text) in enumerate(cells_of(source.read_text(encoding="utf-8"))):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = make(text)
        cell.id = f"cell-{index:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source in sorted(SRC.glob("*.py")):
        target = HERE / (source.stem + ".ipynb")
        text = render(build(source))
        if check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run python notebooks/build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
