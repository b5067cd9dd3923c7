"""The sessionspec conformance kit: plug in a backend, get a verdict per behaviour.

Three ways in, one engine: ``sessionspec verify TARGET``, the pytest plugin
(``pytest --sessionspec-backend module:attr``) and :func:`verify` for notebooks and scripts.
"""

from sessionspec.conformance.engine import Verification, verify
from sessionspec.conformance.registry import BehaviourViolation, Check, check, expect
from sessionspec.conformance.report import BehaviourResult, CheckResult, Report, Status

__all__ = [
    "BehaviourResult",
    "BehaviourViolation",
    "Check",
    "CheckResult",
    "Report",
    "Status",
    "Verification",
    "check",
    "expect",
    "verify",
]
