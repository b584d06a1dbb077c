"""Test harnesses for adyn's own suite (see docs/contributing.md, "Fault injection")."""

from .faultproxy import (
    BadCrc,
    DropAfter,
    DropBefore,
    Exchange,
    Fault,
    FaultProxy,
    Latency,
    Malformed,
    Rule,
    ServerError,
    Stall,
    Throttle,
    Unprocessed,
)

__all__ = [
    "BadCrc",
    "DropAfter",
    "DropBefore",
    "Exchange",
    "Fault",
    "FaultProxy",
    "Latency",
    "Malformed",
    "Rule",
    "ServerError",
    "Stall",
    "Throttle",
    "Unprocessed",
]
