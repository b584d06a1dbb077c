"""Raw DynamoDB calls for tests that look at (or set up) what the server really holds."""

from __future__ import annotations

from typing import Any

from adyn import Engine


async def raw_call(
    engine: Engine, operation: str, request: dict[str, Any], service: str = "dynamodb"
) -> dict[str, Any]:
    """One call through the engine's transport, around adyn's models (no retries)."""
    response = await engine.transport.call(service, operation, request, idempotent=True)
    response.pop("ResponseMetadata", None)
    return response
