"""``python -m spec``: print the behaviour catalogue, or regenerate/check SPEC.md's section."""

from spec.catalogue import main

raise SystemExit(main())
