"""Test harnesses for adyn's own suite (see docs/contributing.md, "Fault injection")."""

from .faultproxy import (
    DropAfter,
    DropBefore,
    Exchange,
    Fault,
    FaultProxy,
    Latency,
    Rule,
    ServerError,
    Throttle,
    Unprocessed,
)

__all__ = [
    "DropAfter",
    "DropBefore",
    "Exchange",
    "Fault",
    "FaultProxy",
    "Latency",
    "Rule",
    "ServerError",
    "Throttle",
    "Unprocessed",
]
