"""The registry of seeded faults: each a kit factory with a stable name, a target, a story."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sessionspec.spec import behaviour, declared_levels

F = TypeVar("F", bound=type[Any])

_NAME = re.compile(r"\A[a-z0-9]+(?:-[a-z0-9]+)*\Z")


@dataclass(frozen=True)
class Fault:
    """One seeded fault: ``factory(path, *, clock)`` breaks exactly one rule of ``target``."""

    name: str
    target: str
    description: str
    factory: Callable[..., Any]
    #: Other behaviours this one bug also breaks, by rule, each with the reason: the gate
    #: expects exactly ``{target} | also`` to fail (one root cause, one FAIL otherwise).
    also: tuple[tuple[str, str], ...] = ()

    @property
    def levels(self) -> list[str]:
        return sorted(level.value for level in declared_levels(self.factory) or ())


REGISTRY: list[Fault] = []


def fault(
    target: str, name: str, description: str, *, also: dict[str, str] | None = None
) -> Callable[[F], F]:
    """Register a faulty backend class (the class is the factory) for behaviour ``target``;
    ``also`` names other behaviours the same bug breaks by their own rules, with why."""
    behaviour(target)  # raises for an unknown behaviour ID
    for other in also or {}:
        behaviour(other)
    if not _NAME.match(name):
        raise ValueError(f"fault names are kebab-case: {name!r}")
    if any(item.name == name for item in REGISTRY):
        raise ValueError(f"duplicate fault name {name!r}")

    def register(cls: F) -> F:
        if declared_levels(cls) is None:
            raise TypeError(f"{cls.__name__} declares no sessionspec_levels")
        cls.fault_name = name
        cls.fault_target = target
        cls.fault_description = description
        REGISTRY.append(Fault(name, target, description, cls, tuple((also or {}).items())))
        return cls

    return register
