"""Guard items that make DynamoDB enforce `Unique()` fields.

For each unique value an item holds, the table also holds a guard item whose key is made of the
model, the field and the value (`adyn#unique#Customer#email#ada@example.com`) and whose `adyn:owner`
attribute is the owning item's key. A save that sets a unique value puts its guard, in the same
transaction as the item's own update, on condition that no guard exists or that it is the item's
own: a second item with that value is refused by DynamoDB itself. Changing the value deletes the
old guard and puts the new one in that transaction; deleting the item deletes its guards. The item's
own write carries the condition that its stored unique values are the ones the object last knew,
so guards never drift from their items. Guards carry the `adyn:unique` attribute, by which reads
leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._entities import GUARD_ATTRIBUTE  # names "Model.attribute" on every guard item
from .codecs import DYNAMIC, b64_text
from .errors import InvalidItem
from .expressions import Compare, Condition, Function, Path, Renderer, _Value, all_of
from .schema import FieldSpec, ModelSchema

if TYPE_CHECKING:
    from .errors import ConstraintViolation, UniqueViolation

__all__ = [
    "GUARD_ATTRIBUTE",
    "Guard",
    "guard_filter",
    "guard_writes",
    "is_guard",
    "known_condition",
]

Wire = dict[str, Any]

OWNER_ATTRIBUTE = "adyn:owner"  # the owning item's key (a map)
_PREFIX = "adyn#unique#"
_RANGE_TEXT = "adyn#unique"
_PREFIX_B64 = b64_text(_PREFIX.encode())
_MAX_HASH_BYTES = 2048


@dataclass(frozen=True)
class Guard:
    """One guard write of a save or delete: what it is for, to name it when it fails."""

    kind: str  # "Put" | "Delete"
    request: Wire
    key: Wire  # the guard item's key
    schema: ModelSchema
    field: FieldSpec
    value: Any  # the unique value, as a Python value

    def violation(self, obj: Any) -> UniqueViolation | ConstraintViolation:
        """The error of this guard write's failed condition."""
        from .errors import ConstraintViolation, UniqueViolation

        if self.kind == "Put":
            return UniqueViolation(self.schema.name, self.field.name, self.value, obj)
        return ConstraintViolation(
            f"{self.schema.name}.{self.field.name}: the guard of {self.value!r} belongs to "
            "another item; the stored item changed since it was loaded",
            obj,
        )

    def reason(self) -> str:
        """Why this write failed, for a cancelled transaction's reasons."""
        if self.kind == "Put":
            return f"{self.schema.name}.{self.field.name}: {self.value!r} is already taken"
        return f"{self.schema.name}.{self.field.name}: the guard of {self.value!r} is another's"


def _value_text(wire: Wire) -> str:
    ((tag, raw),) = wire.items()
    if tag == "N":  # one text per number: 1.50 and 1.5 are one value
        return format(Decimal(raw).normalize(), "f")
    return str(raw)  # S: the text; B: its base64 text


def guard_key(schema: ModelSchema, spec: FieldSpec, wire: Wire, obj: Any = None) -> Wire:
    """The key of the guard of one unique value."""
    text = f"{_PREFIX}{schema.name}#{spec.wire}#{_value_text(wire)}"
    if len(text.encode()) > _MAX_HASH_BYTES:
        raise InvalidItem(
            schema.name, spec.name, "the value is too long to be guarded as unique", obj
        )
    hash_spec = schema.hash_key
    key: Wire = {
        hash_spec.wire: (
            {"S": text} if hash_spec.codec.wire_type == "S" else {"B": b64_text(text.encode())}
        )
    }
    range_spec = schema.range_key
    if range_spec is not None:
        tag = range_spec.codec.wire_type
        key[range_spec.wire] = {
            "S": {"S": _RANGE_TEXT},
            "N": {"N": "0"},
            "B": {"B": b64_text(_RANGE_TEXT.encode())},
        }[tag]
    return key


def is_guard(item: Wire) -> bool:
    """True for a guard item (as a read or a stream image returns it)."""
    return GUARD_ATTRIBUTE in item


def is_guard_key(schema: ModelSchema, key: Wire) -> bool:
    """True for the key of a guard item (a stream record without images has only its key)."""
    av = key.get(schema.hash_key.wire)
    if not av:
        return False
    text = av.get("S")
    if text is not None:
        return isinstance(text, str) and text.startswith(_PREFIX)
    raw = av.get("B")
    # the prefix is 12 bytes: its base64 text begins the base64 text of every guard key
    return isinstance(raw, str) and raw.startswith(_PREFIX_B64)


def guard_filter(schema: ModelSchema) -> Condition:
    """`attribute_not_exists(adyn:unique)`: leaves guard items out of a query or scan."""
    return Function("attribute_not_exists", Path(schema.model, None, (GUARD_ATTRIBUTE,), DYNAMIC))


def _owned(schema: ModelSchema, owner: Wire, r: Renderer) -> str:
    """`attribute_not_exists(hash) OR adyn:owner = :me`, rendered into `r`."""
    hash_name = r.name(schema.hash_key.wire)
    return (
        f"attribute_not_exists({hash_name}) OR {r.name(OWNER_ATTRIBUTE)} = {r.value({'M': owner})}"
    )


def _put(
    schema: ModelSchema, table: str, spec: FieldSpec, wire: Wire, owner: Wire, obj: Any
) -> Guard:
    key = guard_key(schema, spec, wire, obj)
    r = Renderer()
    condition = _owned(schema, owner, r)
    item = {
        **key,
        GUARD_ATTRIBUTE: {"S": f"{schema.name}.{spec.wire}"},
        OWNER_ATTRIBUTE: {"M": owner},
    }
    request = r.into({"TableName": table, "Item": item, "ConditionExpression": condition})
    return Guard("Put", request, key, schema, spec, spec.codec.decode(wire))


def _delete(
    schema: ModelSchema, table: str, spec: FieldSpec, wire: Wire, owner: Wire, obj: Any
) -> Guard:
    r = Renderer()
    condition = _owned(schema, owner, r)
    key = guard_key(schema, spec, wire, obj)
    request = r.into({"TableName": table, "Key": key, "ConditionExpression": condition})
    return Guard("Delete", request, key, schema, spec, spec.codec.decode(wire))


def guard_writes(
    schema: ModelSchema,
    table: str,
    owner: Wire,
    changes: list[tuple[FieldSpec, Wire | None, Wire | None]],
    obj: Any,
) -> list[Guard]:
    """The guard writes of `(field, old wire value, new wire value)` changes: delete the old
    value's guard, put the new one's."""
    writes: list[Guard] = []
    for spec, old, new in changes:
        if old is not None:
            writes.append(_delete(schema, table, spec, old, owner, obj))
        if new is not None:
            writes.append(_put(schema, table, spec, new, owner, obj))
    return writes


def known_condition(
    schema: ModelSchema,
    known: list[tuple[FieldSpec, Wire | None]],
    or_already: dict[str, Wire] | None = None,
) -> Condition:
    """The item's stored unique values are the ones the object knows (None: absent).

    `or_already`: for an object never loaded, the values it writes, which may be stored
    already (its guard is then the item's own); any other stored value would lose its guard.
    """
    parts: list[Condition] = []
    for spec, wire in known:
        path = schema.paths[spec.name]
        if wire is None:
            part: Condition = Function("attribute_not_exists", path)
            also = (or_already or {}).get(spec.name)
            if also is not None:
                part = part | Compare("=", path, _Value(also))
            parts.append(part)
        else:
            parts.append(Compare("=", path, _Value(wire)))
    condition = all_of(parts)
    assert condition is not None
    return condition
