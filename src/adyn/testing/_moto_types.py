"""DynamoDB's rules for values, as the corrected moto server applies them (no moto import here).

- Numbers: up to 38 significant digits, magnitudes from 1E-130 to below 1E+126, stored and
  returned in plain notation without leading or trailing zeros ("1.50" is stored as "1.5",
  "1E+2" as "100"), and arithmetic that is exact (moto rounds to 28 digits, and fails with an
  HTTP 500 on an operand written with an exponent, such as "1E-37").
- Binary values compare, sort and match `begins_with` by their bytes, not by their base64 text.
- Item size is counted DynamoDB's way (names and values in bytes, binary values decoded, numbers
  by their digits, three bytes per list or map and one per element) against 400 KB.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ITEM_SIZE_LIMIT",
    "NumberError",
    "attribute_size",
    "canonical_number",
    "canonicalise",
    "exact",
    "item_size",
    "raw_bytes",
]

ITEM_SIZE_LIMIT = 400 * 1024
MAX_DIGITS = 38
MAX_EXPONENT = 125  # 9.99...E+125 is the largest magnitude
MIN_EXPONENT = -130  # 1E-130 the smallest

# Wide enough that adding or subtracting any two valid numbers is exact (their digits span at
# most 125 + 130 + 38 places); the result is then checked against DynamoDB's rules.
_EXACT = Context(prec=400, Emax=999_999, Emin=-999_999)

OVERFLOW = (
    "Number overflow. Attempting to store a number with magnitude larger than supported range"
)
UNDERFLOW = (
    "Number underflow. Attempting to store a number with magnitude smaller than supported range"
)
TOO_PRECISE = f"Attempting to store more than {MAX_DIGITS} significant digits in a Number"


class NumberError(ValueError):
    """A value DynamoDB refuses (a number, a set); the message is DynamoDB's own."""


def canonical_number(text: str) -> str:
    """`text` as DynamoDB stores it, or NumberError; text that is no number comes back as is."""
    if text != text.strip():
        return text  # moto refuses it with DynamoDB's message
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if not value.is_finite():
        return text
    return _canonical(value)


def _canonical(value: Decimal) -> str:
    if value.is_zero():
        return "0"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    significant = list(digits)
    while significant and significant[0] == 0:
        significant.pop(0)
    while significant[-1] == 0:
        significant.pop()
        exponent += 1
    magnitude = exponent + len(significant) - 1
    if magnitude > MAX_EXPONENT:
        raise NumberError(OVERFLOW)
    if magnitude < MIN_EXPONENT:
        raise NumberError(UNDERFLOW)
    if len(significant) > MAX_DIGITS:
        raise NumberError(TOO_PRECISE)
    return format(Decimal((sign, tuple(significant), exponent)), "f")


def exact(left: str, right: str, operation: str) -> str:
    """`left + right` ("add") or `left - right` ("subtract"), exactly, as DynamoDB stores it."""
    a, b = Decimal(left), Decimal(right)
    result = _EXACT.add(a, b) if operation == "add" else _EXACT.subtract(a, b)
    return _canonical(result)


_SET_NAMES = {"SS": "string", "NS": "number", "BS": "binary"}


def canonicalise(value: Any) -> None:
    """Check and rewrite the AttributeValues inside a request body in place (NumberError if bad).

    Numbers are stored canonically; sets must be neither empty nor hold a member twice. A dict
    whose only key is "N" with a string value, or a set type with a list, is an AttributeValue
    (attribute names only appear as keys of "M" maps and items, whose values are dicts).
    """
    if isinstance(value, dict):
        if len(value) == 1:
            ((type_, inner),) = value.items()
            if type_ == "N" and isinstance(inner, str):
                value["N"] = canonical_number(inner)
                return
            if type_ in _SET_NAMES and isinstance(inner, list):
                value[type_] = _checked_set(type_, inner)
                return
        for child in value.values():
            if isinstance(child, dict | list):
                canonicalise(child)
    elif isinstance(value, list):
        for child in value:
            if isinstance(child, dict | list):
                canonicalise(child)


def _checked_set(type_: str, members: list[Any]) -> list[Any]:
    if not members:
        raise NumberError(
            "One or more parameter values were invalid: "
            f"An {_SET_NAMES[type_]} set  may not be empty"
        )
    if type_ == "NS":
        members = [canonical_number(m) if isinstance(m, str) else m for m in members]
    try:
        distinct = {raw_bytes(m) for m in members} if type_ == "BS" else set(members)
    except (TypeError, ValueError):
        return members  # not a set moto accepts: its own validation answers
    if len(distinct) != len(members):
        shown = ", ".join(str(m) for m in members)
        raise NumberError(
            "One or more parameter values were invalid: "
            f"Input collection [{shown}] contains duplicates."
        )
    return members


def raw_bytes(value: str | bytes) -> bytes:
    """A binary value's bytes, whether moto holds it as base64 text or as bytes."""
    if isinstance(value, bytes):
        return value
    return base64.b64decode(value)


def _number_size(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return len(text)
    if not value.is_finite() or value.is_zero():
        return 1
    digits = value.normalize(_EXACT).as_tuple().digits
    return 1 + (len(digits) + 1) // 2 + (1 if value < 0 else 0)


def attribute_size(type_: str, value: Any, member: Callable[[Any], tuple[str, Any]]) -> int:
    """The size of one attribute value; `member` splits a list or map element into (type, value).

    Works on moto's values (`DynamoType` members) through `member`, and on wire JSON.
    """
    if type_ == "S":
        return len(value.encode()) if isinstance(value, str) else len(value)
    if type_ == "B":
        return len(raw_bytes(value))
    if type_ == "N":
        return _number_size(value)
    if type_ in ("BOOL", "NULL"):
        return 1
    if type_ == "SS":
        return sum(len(v.encode()) for v in value)
    if type_ == "BS":
        return sum(len(raw_bytes(v)) for v in value)
    if type_ == "NS":
        return sum(_number_size(v) for v in value)
    if type_ == "L":
        return 3 + sum(1 + attribute_size(*member(v), member) for v in value)
    if type_ == "M":
        return 3 + sum(
            1 + len(k.encode()) + attribute_size(*member(v), member) for k, v in value.items()
        )
    return len(str(value))


def item_size(attributes: dict[str, Any], member: Callable[[Any], tuple[str, Any]]) -> int:
    """The size DynamoDB counts for an item: each name in bytes plus its value's size."""
    return sum(
        len(name.encode()) + attribute_size(*member(value), member)
        for name, value in attributes.items()
    )
