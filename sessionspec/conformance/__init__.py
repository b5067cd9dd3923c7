"""The sessionspec conformance kit: plug in a backend, get a verdict per behaviour.

Three ways in, one engine: ``sessionspec verify TARGET``, the pytest plugin
(``pytest --sessionspec-backend module:attr``) and :func:`verify` for notebooks and scripts.
A backend in another language is reached over stdio (PROTOCOL.md): ``--stdio COMMAND``,
``--sessionspec-stdio COMMAND``, or ``verify(StdioFactory(COMMAND))`` /
``verify("stdio:COMMAND")``.
"""

from sessionspec.conformance.engine import Verification, verify
from sessionspec.conformance.registry import BehaviourViolation, Check, check, expect
from sessionspec.conformance.report import BehaviourResult, CheckResult, Report, Status
from sessionspec.conformance.stdio import StdioFactory

__all__ = [
    "BehaviourResult",
    "BehaviourViolation",
    "Check",
    "CheckResult",
    "Report",
    "Status",
    "StdioFactory",
    "Verification",
    "check",
    "expect",
    "verify",
]
