"""Why a run cannot judge a backend: exit status 2, one clear message, never conformance FAILs.

Exit statuses of ``sessionspec verify`` (the same meaning everywhere the kit runs):

* 0 every behaviour of the claimed levels passed;
* 1 a behaviour failed, or a check could not finish (a hung call, an interrupted run);
* 2 the run could not start: the TARGET cannot be loaded (:class:`TargetError`), the levels
  are not declared or the selection verifies nothing (:class:`LevelsError`), the backend
  cannot be constructed, used once and closed on a fresh path (:class:`PreflightError`), or
  the arguments are wrong.
"""

from __future__ import annotations


class KitError(ValueError):
    """The run cannot judge the backend (exit status 2); ``str()`` is the whole message."""

    exit_status = 2


class TargetError(KitError):
    """The TARGET string does not name a loadable factory."""


class LevelsError(KitError):
    """No levels to verify: none declared (``sessionspec_levels``) nor given (``--level``),
    or the selection (``--only``) names only behaviours of levels not claimed."""


class PreflightError(KitError):
    """The factory could not construct a backend on a fresh path, call it once and close it."""


class ExpectedFailuresError(KitError):
    """The implementation's list of expected failures (PROTOCOL.md §4) names a behaviour the
    catalogue does not have, or one of a level it does not claim."""
