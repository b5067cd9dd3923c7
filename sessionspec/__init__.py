"""sessionspec: the reference specification and conformance kit for persistent session storage.

One import package, read top to bottom like the repository:

- ``sessionspec.spec`` — SPEC.md, the schemas, the behaviour catalogue, the file vectors and
  the Python interface (``SessionStorage``, ``SessionData``, ...);
- ``sessionspec.reference`` — ``FileSessionStorage`` and ``InMemorySessionStorage``;
- ``sessionspec.conformance`` — the kit: ``verify(factory)`` and the ``sessionspec`` command.

Three versions travel together (:func:`versions`): the spec's (``SPEC_VERSION``), the kit's
(this distribution's, ``__version__``) and the file vectors' (``version`` of
``spec/vectors/manifest.json``).

Importing this package imports none of them, so ``import sessionspec`` stays cheap: even
``__version__`` is looked up on first use.
"""

from __future__ import annotations

import json
from functools import cache

__all__ = ["__version__", "version_line", "versions"]

#: What a version that cannot be found reads as (a source tree that was never installed, or
#: a checkout whose vectors were not generated yet).
UNKNOWN = "0+unknown"


@cache
def _kit_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("sessionspec")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return UNKNOWN


@cache
def _vectors_version() -> str:
    from importlib import resources

    try:
        text = resources.files("sessionspec.spec").joinpath("vectors", "manifest.json")
        data = json.loads(text.read_text("utf-8"))
    except (OSError, ValueError):
        return UNKNOWN
    version = data.get("vectors_version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else UNKNOWN


def versions() -> dict[str, str]:
    """The three versions of this installation, as ``{"spec", "kit", "vectors"}`` strings.

    - ``spec``: the SPEC.md version the package implements (``sessionspec.spec.SPEC_VERSION``);
    - ``kit``: the installed distribution (``importlib.metadata.version("sessionspec")``);
    - ``vectors``: the ``version`` member of ``sessionspec/spec/vectors/manifest.json``, read
      lazily with ``importlib.resources``; its major.minor is the spec version the vectors
      encode.

    A version that cannot be found reads ``"0+unknown"``. Every report of the kit carries this
    mapping (JSON ``versions``, the terminal and Markdown headers, JUnit properties).
    """
    from sessionspec.spec.model import SPEC_VERSION

    return {"spec": SPEC_VERSION, "kit": _kit_version(), "vectors": _vectors_version()}


def version_line() -> str:
    """The one-line form of :func:`versions`, what ``sessionspec --version`` prints.

    For example ``sessionspec 0.2.0 (spec 1.1, vectors 1.1.0)``: the kit first, as
    ``--version`` names the program's own version.
    """
    found = versions()
    return f"sessionspec {found['kit']} (spec {found['spec']}, vectors {found['vectors']})"


def __getattr__(name: str) -> str:
    """``sessionspec.__version__``: the kit's version, looked up on first use."""
    if name == "__version__":
        return _kit_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
