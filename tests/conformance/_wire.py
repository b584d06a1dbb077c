"""A raw DynamoDB JSON client for the conformance suite: what goes over the wire, untouched.

Requests are signed with botocore's SigV4 (real credentials on a real endpoint, placeholders on
the embedded servers) and sent with aiohttp; responses come back as parsed JSON, binary values
as base64 text and times as epoch numbers, exactly as the service wrote them.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session

TARGETS = {"dynamodb": "DynamoDB_20120810", "dynamodbstreams": "DynamoDBStreams_20120810"}
LOCAL = ("http://127.0.0.1", "http://localhost")


class WireError(Exception):
    """The service refused a request: `code` is the short error type, `body` the parsed body."""

    def __init__(self, operation: str, status: int, body: dict[str, Any]) -> None:
        self.operation = operation
        self.status = status
        self.body = body
        self.code = str(body.get("__type", "")).rsplit("#", 1)[-1]
        self.message = str(body.get("message", body.get("Message", "")))
        super().__init__(f"{operation}: {status} {self.code}: {self.message}")


class Wire:
    """`await wire("PutItem", {...})` sends one request and returns the parsed response."""

    def __init__(self, endpoint: str, region: str, session: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self._session = session
        credentials = None
        if not endpoint.startswith(LOCAL):
            credentials = get_session().get_credentials()
        if credentials is None:
            credentials = Credentials("testing", "testing")
        self._credentials = credentials

    async def __call__(
        self, operation: str, body: dict[str, Any], *, service: str = "dynamodb"
    ) -> dict[str, Any]:
        data = orjson.dumps(body)
        request = AWSRequest(
            method="POST",
            url=self.endpoint + "/",
            data=data,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"{TARGETS[service]}.{operation}",
            },
        )
        SigV4Auth(self._credentials, "dynamodb", self.region).add_auth(request)
        async with self._session.post(
            self.endpoint + "/", data=data, headers=dict(request.headers.items())
        ) as response:
            raw = await response.read()
            status = response.status
        try:
            parsed = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:  # e.g. an HTML page with an HTTP 500
            parsed = {"__type": f"HTTP{status}", "message": raw[:200].decode(errors="replace")}
        if status >= 300:
            raise WireError(operation, status, parsed if isinstance(parsed, dict) else {})
        result: dict[str, Any] = parsed
        return result

    async def streams(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self(operation, body, service="dynamodbstreams")


def s(value: str) -> dict[str, str]:
    """A string AttributeValue."""
    return {"S": value}


def n(value: int | str) -> dict[str, str]:
    """A number AttributeValue."""
    return {"N": str(value)}


async def get(wire: Wire, table: str, pk: str) -> dict[str, Any] | None:
    """The item under partition key `pk` (a consistent read), or None."""
    got = await wire("GetItem", {"TableName": table, "Key": {"pk": s(pk)}, "ConsistentRead": True})
    item: dict[str, Any] | None = got.get("Item")
    return item
