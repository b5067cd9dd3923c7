"""``python -m sessionspec``: the ``sessionspec`` command."""

from sessionspec.conformance.cli import main

raise SystemExit(main())
