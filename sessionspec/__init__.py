"""sessionspec: the reference specification and conformance kit for persistent session storage.

One import package, read top to bottom like the repository:

- ``sessionspec.spec`` — SPEC.md, the schemas, the behaviour catalogue, the file vectors and
  the Python interface (``SessionStorage``, ``SessionData``, ...);
- ``sessionspec.reference`` — ``FileSessionStorage`` and ``InMemorySessionStorage``;
- ``sessionspec.conformance`` — the kit: ``verify(factory)`` and the ``sessionspec`` command.

Importing this package imports none of them, so ``import sessionspec`` stays cheap.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("sessionspec")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
