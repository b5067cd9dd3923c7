"""A pytest plugin for mutation runs only (``run.sh`` loads it with ``-p mutation_plugin``).

Two things, for every target:

- The same hypothesis examples on every run. A mutant's fate must depend on the mutant alone,
  so the property tests of the selected suites (tests/test_oracle.py, ...) draw the same
  examples every time (``derandomize``), share no example database between mutants
  (``database=None``: a failure found under one mutant would otherwise be replayed under the
  next) and fail for no reason of time (``deadline=None``; ``too_slow`` suppressed: mutmut's
  trampolines and two busy cores slow every call). The kit's own state machine sets these
  itself and is unaffected.
- A limit per test (``SESSIONSPEC_MUTATION_TEST_SECONDS``, default 180; 0 turns it off). A
  mutant that makes a loop endless (``self.at += 1`` -> ``self.at = 1`` in the oracle's
  scanner) would otherwise run until mutmut's own limit, four times the summed duration of
  every test covering the function: 15 minutes and more for the kit's oracle. When one test
  runs past the limit the worker exits with mutmut's exit code for "timeout" (36), so the
  mutant is counted as timed out, as it would have been, only sooner. No assertion depends on
  time: the limit only ends a run that hangs; the slowest test takes about 15 s unmutated, and
  the clean run (every test, unmutated) would stop on this limit first if it were too tight.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Generator
from types import FrameType

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "sessionspec-mutation",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("sessionspec-mutation")

#: mutmut's exit code for a mutant that timed out (mutmut.stats.status_by_exit_code).
MUTMUT_TIMEOUT = 36
LIMIT = float(os.environ.get("SESSIONSPEC_MUTATION_TEST_SECONDS", "180"))


def _expired(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write(f"mutation_plugin: a test ran past {LIMIT:g} s: timeout\n")
    sys.stderr.flush()
    os._exit(MUTMUT_TIMEOUT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    if LIMIT <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
