"""``python -m sessionspec.spec``: print the catalogue, or regenerate/check SPEC.md's section."""

from sessionspec.spec.catalogue import main

raise SystemExit(main())
