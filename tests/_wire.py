"""Raw DynamoDB calls for tests that look at (or set up) what the server really holds."""

from __future__ import annotations

from typing import Any

from adyn import Engine, Model


async def raw_call(
    engine: Engine, operation: str, request: dict[str, Any], service: str = "dynamodb"
) -> dict[str, Any]:
    """One call through the engine's transport, around adyn's models (no retries)."""
    response = await engine.transport.call(service, operation, request, idempotent=True)
    response.pop("ResponseMetadata", None)
    return response


async def raw_item(engine: Engine, model: type[Model], key: dict[str, Any]) -> dict[str, Any]:
    """The stored item as DynamoDB has it (a consistent read), around adyn's decoding."""
    response = await raw_call(
        engine,
        "GetItem",
        {"TableName": engine.table_name(model), "Key": key, "ConsistentRead": True},
    )
    return response.get("Item", {})  # type: ignore[no-any-return]
