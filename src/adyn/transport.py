"""`Transport`: the one seam between adyn and the network.

A transport sends one attempt of one DynamoDB (or DynamoDB Streams) call and returns the
response, in DynamoDB's own JSON: base64 text for binary values, numbers as strings, epoch
seconds for times. It never retries: the engine's `RetryPolicy` wraps whatever transport it has,
and decides from the error's code whether a resend is safe.

```python
class Recording:
    def __init__(self, inner: Transport) -> None:
        self.inner, self.calls = inner, []

    async def call(self, service, operation, request, *, idempotent):
        self.calls.append(operation)
        return await self.inner.call(service, operation, request, idempotent=idempotent)
```

A service error is raised as `adyn.DynamoError(code, message, operation, status=...,
request_id=...)`; connection failures use the codes in `adyn.errors` (`ConnectionFailed`,
`ConnectTimeout` when nothing was sent; `ConnectionLost`, `ReadTimeout`, `MalformedResponse`,
`CRC32CheckFailed` when the request may have reached the server). A successful response may
carry `"ResponseMetadata": {"RequestId": ...}`, which the engine reads and removes.
Any other exception escaping a transport counts as `ConnectionLost`.

A transport may also define `async def open()` and `async def close()`; the engine calls them
when it opens and closes.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Transport"]


@runtime_checkable
class Transport(Protocol):
    """Sends one attempt of a DynamoDB call: DynamoDB's JSON in, DynamoDB's JSON out."""

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        """One attempt of `operation` on `service` ("dynamodb" or "dynamodbstreams").

        `idempotent` tells whether sending the same request twice is harmless (the transport
        may use it, e.g. to choose a connection, but never retries on its own).
        """
        ...
