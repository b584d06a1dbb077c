"""Create or verify the tables of bound models."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio

from ._context import Context
from .errors import DynamoError, ResourceInUseError, ResourceNotFoundError, TableMismatch
from .retry import RetryPolicy
from .schema import ModelSchema

log = logging.getLogger("adyn.bind")

Wire = dict[str, Any]

WAIT_TIMEOUT = 600.0  # seconds a table may take to become ACTIVE before bind gives up
WAIT_POLICY = RetryPolicy(max_attempts=None, base=0.05, cap=2.0)  # polling DescribeTable


async def describe(ctx: Context, table: str) -> Wire | None:
    """The live table's description, or None when there is no such table."""
    try:
        response = await ctx.call("DescribeTable", {"TableName": table}, table=table)
    except ResourceNotFoundError:
        return None
    result = response.get("Table")
    if not isinstance(result, dict):
        raise DynamoError("MalformedResponse", "DescribeTable answered without a table", table)
    return result


def _merged_create_request(table: str, schemas: Sequence[ModelSchema]) -> Wire:
    """One CreateTable request for every model sharing a table (union of their indexes)."""
    request = schemas[0].create_table_request(table)
    for schema in schemas[1:]:
        other = schema.create_table_request(table)
        defs = {d["AttributeName"]: d for d in request["AttributeDefinitions"]}
        for d in other["AttributeDefinitions"]:
            defs.setdefault(d["AttributeName"], d)
        request["AttributeDefinitions"] = list(defs.values())
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            have = {i["IndexName"] for i in request.get(kind, [])}
            extra = [i for i in other.get(kind, []) if i["IndexName"] not in have]
            if extra:
                request[kind] = [*request.get(kind, []), *extra]
        if "StreamSpecification" in other and "StreamSpecification" not in request:
            request["StreamSpecification"] = other["StreamSpecification"]
    return request


def _ready(table: Wire) -> bool:
    if table.get("TableStatus") != "ACTIVE":
        return False
    return all(
        i.get("IndexStatus", "ACTIVE") == "ACTIVE"
        for i in table.get("GlobalSecondaryIndexes") or []
    )


async def wait_until_active(ctx: Context, table: str, patience: float = WAIT_TIMEOUT) -> Wire:
    """Poll DescribeTable with backoff until the table and its indexes are ACTIVE."""
    attempts = WAIT_POLICY.attempts(ctx.sleep)
    status = "missing"
    with anyio.move_on_after(patience):
        while True:
            description = await describe(ctx, table)
            if description is not None:
                if _ready(description):
                    return description
                status = str(description.get("TableStatus"))
            await attempts.next()
    raise DynamoError(
        "TableNotActive",
        f"table {table!r} (or one of its indexes) was still {status} after {patience:g} s; "
        "bind gave up waiting for it to become ACTIVE",
        "DescribeTable",
    )


async def ensure_ttl(ctx: Context, table: str, attribute: str, create: bool) -> list[str]:
    response = await ctx.call("DescribeTimeToLive", {"TableName": table}, table=table)
    ttl = response.get("TimeToLiveDescription", {})
    status = ttl.get("TimeToLiveStatus", "DISABLED")
    if status in ("ENABLED", "ENABLING"):
        if ttl.get("AttributeName") != attribute:
            return [
                f"TTL is on attribute {ttl.get('AttributeName')!r}, the model needs {attribute!r}"
            ]
        return []
    if not create:
        return [f"TTL is disabled, the model needs it on {attribute!r}"]
    await ctx.call(
        "UpdateTimeToLive",
        {
            "TableName": table,
            "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attribute},
        },
        table=table,
    )
    return []


async def bind_table(
    ctx: Context, table: str, schemas: Sequence[ModelSchema], create: bool
) -> None:
    """Create the table when missing (and allowed), else verify it against every model."""
    description = await describe(ctx, table)
    if description is None:
        if not create:
            raise TableMismatch(
                table, ["the table does not exist (bind was called with create=False)"]
            )
        request = _merged_create_request(table, schemas)
        try:
            await ctx.call("CreateTable", request, table=table)
            log.info("created table %s", table)
        except ResourceInUseError:
            pass  # created meanwhile by someone else
        description = await wait_until_active(ctx, table)
    elif not _ready(description):
        description = await wait_until_active(ctx, table)
    # A shared table's models inherit most of their indexes: a difference every model has is
    # said once; one only some models (entities with indexes of their own) have names them.
    needed_by: dict[str, list[str]] = {}
    for schema in schemas:
        for diff in schema.differences(description):
            names = needed_by.setdefault(diff, [])
            if schema.name not in names:
                names.append(schema.name)
    differences = [
        diff if len(names) == len(schemas) else f"{', '.join(names)}: {diff}"
        for diff, names in needed_by.items()
    ]
    ttl_fields = {s.ttl.wire for s in schemas if s.ttl is not None}
    for attribute in sorted(ttl_fields):
        differences.extend(await ensure_ttl(ctx, table, attribute, create))
    if differences:
        raise TableMismatch(table, differences)
