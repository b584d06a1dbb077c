"""Read and write transactions (TransactGetItems / TransactWriteItems)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._context import Context
from ._unique import Guard
from ._writes import WritePlan, guard_plan, plan_check, plan_delete, plan_save, plan_update
from .batch import fill, identity
from .errors import (
    CancellationReason,
    ConstraintViolation,
    DynamoError,
    InvalidArgument,
    InvalidItem,
    MissingObjects,
    TransactionCanceled,
    TransactionCanceledError,
)
from .expressions import Action, Condition
from .schema import ModelSchema

if TYPE_CHECKING:
    from .model import Model
    from .stream import Record
    from .stream._checkpoint import TxCheckpoints

__all__ = ["ReadTransaction", "WriteTransaction"]

Wire = dict[str, Any]

MAX_ITEMS = 100
# Cancellation reasons after which nothing was applied and a new attempt may well succeed.
_RETRYABLE_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


class _Transaction:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._keys: set[Any] = set()
        self._count = 0

    def _claim(self, schema: ModelSchema, table: str, key: Wire) -> None:
        if self._count >= MAX_ITEMS:
            raise InvalidItem(schema.name, None, f"a transaction holds at most {MAX_ITEMS} items")
        ident = identity(table, key)
        if ident in self._keys:
            raise InvalidItem(
                schema.name,
                None,
                f"two operations on one item ({schema.decode_key(key)}) in one transaction; "
                "DynamoDB refuses that",
            )
        self._keys.add(ident)
        self._count += 1


class WriteTransaction(_Transaction):
    """Collects writes and commits them atomically on exit (TransactWriteItems).

    Every entry is checked when it is added. An exception inside the block sends nothing.
    The commit carries an idempotency token (the caller's `token=`, else a fresh one), so adyn
    may resend it after a dropped connection without applying it twice; cancellations caused
    only by conflicts or throttling are retried.
    """

    def __init__(self, ctx: Context, token: str | None = None) -> None:
        super().__init__(ctx)
        if token is not None and (
            not isinstance(token, str) or not 1 <= len(token) <= 36 or not token.isprintable()
        ):
            raise InvalidArgument(
                f"a transaction token is 1 to 36 printable characters, not {token!r}"
            )
        self._token = token
        self._entries: list[tuple[str, WritePlan, ModelSchema]] = []
        self._sent: list[tuple[str, WritePlan, ModelSchema]] = []  # the last commit's entries
        self._checkpoints: TxCheckpoints | None = None

    def _add(self, kind: str, plan: WritePlan, schema: ModelSchema) -> None:
        request = plan.request
        table = request["TableName"]
        self._claim(schema, table, request["Key"])
        self._entries.append((kind, plan, schema))
        for guard in plan.guards:  # Unique fields: their guard items move in the same commit
            if identity(table, guard.key) in self._keys:
                raise InvalidItem(
                    schema.name,
                    guard.field.name,
                    f"two writes of this transaction touch the guard of {guard.value!r} (two "
                    "objects taking or releasing one unique value); DynamoDB refuses that",
                    plan.obj,
                )
            self._claim(schema, table, guard.key)
            self._entries.append((guard.kind, guard_plan(guard, plan.obj), schema))

    def save(
        self, obj: Model, *, condition: Condition | bool | None = None, atomic: bool = False
    ) -> None:
        """Write what changed on `obj` (as `engine.save`), within the transaction."""
        schema, table = self._ctx.bound(type(obj))
        plan = plan_save(schema, table, obj, condition, atomic)
        if not plan.request:  # nothing changed and nothing to check: still claim the key
            self._claim(schema, table, schema.key_of(obj))
            return
        self._add("Update", plan, schema)

    def delete(
        self, obj: Model, *, condition: Condition | bool | None = None, atomic: bool = False
    ) -> None:
        """Delete `obj`'s item within the transaction."""
        schema, table = self._ctx.bound(type(obj))
        self._add("Delete", plan_delete(schema, table, obj, condition, atomic), schema)

    def check(self, obj: Model, condition: Condition | bool) -> None:
        """Require `condition` of `obj`'s stored item for the transaction to commit."""
        schema, table = self._ctx.bound(type(obj))
        self._add("ConditionCheck", plan_check(schema, table, obj, condition), schema)

    def update(
        self,
        model: type[Model],
        key: dict[str, Any],
        actions: Sequence[Action],
        condition: Condition | bool | None = None,
    ) -> None:
        """Apply update actions to one item within the transaction."""
        schema, table = self._ctx.bound(model)
        self._add("Update", plan_update(schema, table, key, actions, condition), schema)

    def checkpoint(self, record: Record[Any]) -> None:
        """Mark a consumer group's `record` done and write its shard's checkpoint in this
        transaction, conditioned on this member still holding the lease: the effects and the
        checkpoint are written together or not at all (exactly once; see docs/streams.md)."""
        from .stream._checkpoint import TxCheckpoints

        if self._checkpoints is None:
            self._checkpoints = TxCheckpoints()
        if self._count >= MAX_ITEMS:
            raise InvalidArgument(f"a transaction holds at most {MAX_ITEMS} items")
        if self._checkpoints.add(record):
            self._count += 1

    async def __aenter__(self) -> WriteTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None or not (self._entries or self._checkpoints):
            self._entries.clear()
            self._checkpoints = None
            return
        await self.commit()

    async def commit(self) -> None:
        entries, self._entries = self._entries, []
        self._sent = entries
        checkpoints, self._checkpoints = self._checkpoints, None
        items = [{kind: plan.request} for kind, plan, _ in entries]
        if checkpoints:
            async with checkpoints.prepared() as extra:
                await self._send(items + extra, entries, checkpoints)
                checkpoints.applied()
        else:
            await self._send(items, entries, None)
        for _, plan, _ in entries:
            plan.done()

    async def _send(
        self,
        items: list[Wire],
        entries: list[tuple[str, WritePlan, ModelSchema]],
        checkpoints: TxCheckpoints | None,
    ) -> None:
        ctx = self._ctx
        attempts = ctx.retry.attempts(ctx.sleep)
        while True:
            token = self._token or str(uuid.uuid4())
            request = {"TransactItems": items, "ClientRequestToken": token}
            try:
                await ctx.call("TransactWriteItems", request, idempotent=True)
                break
            except TransactionCanceledError as exc:
                reasons = _reasons(
                    exc, [(plan.obj, schema, plan.guard) for _, plan, schema in entries]
                )
                if checkpoints:
                    reasons += checkpoints.reasons(exc, len(entries))
                codes = {r.code for r in reasons if r.code}
                if codes and codes <= _RETRYABLE_REASONS and await attempts.next():
                    continue
                raise TransactionCanceled(_cancel_message(exc, reasons), reasons) from None


def _reasons(
    exc: DynamoError, entries: Sequence[tuple[Any, ModelSchema, Guard | None]]
) -> list[CancellationReason]:
    raw = exc.response.get("CancellationReasons") or []
    reasons = []
    for entry, (obj, schema, guard) in zip(raw, entries, strict=False):
        code = None if entry.get("Code") in (None, "None") else entry.get("Code")
        if guard is not None:  # a guard item is no model object; say what it guards
            message = guard.reason() if code == "ConditionalCheckFailed" else entry.get("Message")
            reasons.append(CancellationReason(code, message, obj, None))
            continue
        reasons.append(
            CancellationReason(
                code, entry.get("Message"), obj, schema.decode_returned(entry.get("Item"))
            )
        )
    return reasons


def _cancel_message(exc: DynamoError, reasons: Sequence[CancellationReason]) -> str:
    failing = [f"item {i}: {r.code}" for i, r in enumerate(reasons) if r.code]
    detail = "; ".join(failing) if failing else exc.message
    return f"transaction cancelled ({detail})"


class ReadTransaction(_Transaction):
    """Reads objects atomically on exit (TransactGetItems); they are filled in place."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._objs: list[tuple[Any, ModelSchema, str, Wire]] = []

    def load(self, *objs: Model) -> None:
        """Queue objects to be filled by key when the block exits."""
        for obj in objs:
            schema, table = self._ctx.bound(type(obj))
            key = schema.key_of(obj)
            self._claim(schema, table, key)
            self._objs.append((obj, schema, table, key))

    async def __aenter__(self) -> ReadTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None or not self._objs:
            return
        entries, self._objs = self._objs, []
        request = {"TransactItems": [{"Get": {"TableName": t, "Key": k}} for _, _, t, k in entries]}
        try:
            response = await self._ctx.call("TransactGetItems", request)
        except TransactionCanceledError as error:
            reasons = _reasons(error, [(o, s, None) for o, s, _, _ in entries])
            raise TransactionCanceled(_cancel_message(error, reasons), reasons) from None
        missing = []
        for (obj, schema, table, _), result in zip(
            entries, response.get("Responses", []), strict=False
        ):
            item = result.get("Item")
            if item is None or not fill(obj, schema, item, table):
                missing.append(obj)
        if missing:
            raise MissingObjects(f"{len(missing)} object(s) have no stored item", missing)


async def write_with_guards(ctx: Context, kind: str, plan: WritePlan, schema: ModelSchema) -> None:
    """One object's save or delete together with its guard writes (`Unique()` fields), as a
    transaction of its own; a failed condition is reported as the write's own would be:
    `UniqueViolation` for a taken value, `ConstraintViolation` for the item's condition."""
    tx = WriteTransaction(ctx)
    tx._add(kind, plan, schema)
    try:
        await tx.commit()
    except TransactionCanceled as exc:
        for reason, (_, entry, _) in zip(exc.reasons, tx._sent, strict=False):
            if reason.code != "ConditionalCheckFailed":
                continue
            if entry.guard is not None:
                raise entry.guard.violation(entry.obj) from None
            key = ", ".join(
                f"{k}={v!r}" for k, v in schema.decode_key(entry.request["Key"]).items()
            )
            operation = "UpdateItem" if kind == "Update" else "DeleteItem"
            raise ConstraintViolation(
                f"{schema.name}: the condition of {operation} failed for {key}",
                entry.obj,
                reason._item,
            ) from None
        raise
