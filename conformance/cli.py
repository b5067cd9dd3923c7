"""The ``sessionspec`` command."""

from __future__ import annotations

import sys

from spec.catalogue import main as catalogue_main


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Until the kit lands, every command prints the behaviour catalogue.
    return catalogue_main([a for a in args if a.startswith("--")])


if __name__ == "__main__":
    raise SystemExit(main())
