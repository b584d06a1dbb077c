"""`adyn import` of objects with `Unique()` fields: a full put and its guards, in one transaction.

A batch cannot write them (`batch.save` refuses: a batch cannot be conditional), and a save
(`engine.save`) would not copy the item as the file has it (a `Version` is checked and
incremented). So each such object is written as what an import means, a full-item put, together
with a guard put for each unique value (see adyn._unique), in one TransactWriteItems:

- a guard put succeeds when no guard exists or it is this item's own: a value another item holds
  is refused by DynamoDB (`UniqueViolation`, naming model, field and value);
- the item's put is conditioned on its stored unique values being absent or the ones written, so
  replacing a stored item never leaves the guard of an old value behind (`ConstraintViolation`).

Writing the same line again (a resumed import) is harmless: the guard is the item's own.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adyn import Engine
    from adyn.schema import FieldSpec, ModelSchema

Wire = dict[str, Any]

# Cancellations that mean "try again" (another transaction touched the item, or throttling).
_RETRYABLE = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def guarded(schema: ModelSchema) -> bool:
    """Whether objects of this model need the guarded put (it has Unique fields)."""
    return bool(schema.unique)


def unique_values(engine: Engine, obj: Any) -> list[str]:
    """The guard keys (as text) of an object's unique values: two objects sharing one cannot
    both be written."""
    from adyn._unique import guard_key
    from adyn.errors import AdynError

    schema, _ = engine._ctx.bound(type(obj))
    found: list[str] = []
    for spec in schema.unique:
        value = obj.__dict__.get(spec.name)
        if value is None:
            continue
        try:
            wire = schema.encode_value(spec, value, obj)
            if wire is not None:
                found.append(repr(sorted(guard_key(schema, spec, wire, obj).items())))
        except AdynError:
            continue  # the put names the problem
    return found


async def put_with_guards(engine: Engine, obj: Any) -> None:
    """Put `obj`'s whole item and the guards of its unique values in one transaction."""
    from adyn._unique import guard_writes, known_condition
    from adyn._writes import check_size
    from adyn.errors import ConstraintViolation, TransactionCanceled, TransactionCanceledError
    from adyn.expressions import Renderer, render_condition

    ctx = engine._ctx
    schema, table = ctx.bound(type(obj))
    item = schema.encode_item(obj)
    check_size(schema, item, obj)
    key = {s.wire: item[s.wire] for s in schema.key_fields}
    written = {s.name: item[s.wire] for s in schema.unique if s.wire in item}
    r = Renderer()
    condition = known_condition(schema, [(s, None) for s in schema.unique], written)
    put = r.into(
        {"TableName": table, "Item": item, "ConditionExpression": render_condition(condition, r)}
    )
    changes: list[tuple[FieldSpec, Wire | None, Wire | None]] = [
        (s, None, written[s.name]) for s in schema.unique if s.name in written
    ]
    guards = guard_writes(schema, table, key, changes, obj)
    items = [{"Put": put}, *({g.kind: g.request} for g in guards)]
    attempts = ctx.retry.attempts(ctx.sleep)
    token = str(uuid.uuid4())  # one token for every attempt: a resend is applied once
    while True:
        try:
            await ctx.call(
                "TransactWriteItems",
                {"TransactItems": items, "ClientRequestToken": token},
                idempotent=True,
            )
            return
        except TransactionCanceledError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            codes = [None if r.get("Code") in (None, "None") else r.get("Code") for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                fields = ", ".join(s.name for s in schema.unique)
                described = ", ".join(f"{k}={v!r}" for k, v in schema.decode_key(key).items())
                raise ConstraintViolation(
                    f"{schema.name}: the stored item {described} holds other values of its "
                    f"unique field(s) ({fields}); an import replaces an item only when they are "
                    "the same or absent (its old guards would be left behind)",
                    obj,
                ) from None
            for code, guard in zip(codes[1:], guards, strict=False):
                if code == "ConditionalCheckFailed":
                    raise guard.violation(obj) from None
            failing = {c for c in codes if c}
            if failing and failing <= _RETRYABLE and await attempts.next():
                continue
            detail = "; ".join(f"item {i}: {c}" for i, c in enumerate(codes) if c) or exc.message
            raise TransactionCanceled(f"transaction cancelled ({detail})") from None
