"""What a contender is: a client library driven through the same operations as every other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

STATIC_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
REGION = "us-east-1"


class NotApplicable(Exception):
    """This contender cannot run this case; the message says why (shown as "n/a: why")."""


@dataclass(frozen=True)
class Endpoints:
    """The stub server's two addresses: one answering at once, one after a fixed latency."""

    url: str
    latency_url: str


class Contender:
    """Base of every contender.

    A contender implements any of these (sync or async), each doing exactly one operation:

    - `get_one()`: get the item `data.GET_KEY` into the contender's result type;
    - `prepare_put(n) -> list` and `put_one(obj)`: build `n` objects to write (not timed), then
      encode and write one;
    - `query_100()`, `query_1000()`: query the partition of that page size to the end;
    - `decode_1000(body)`: turn the raw 1,000-item Query response body into results, with no I/O;
    - `concurrent_get()`: get one item from the latency endpoint (called from 64 tasks at once).

    `unsupported` maps a case it does not run to the reason.
    """

    key: ClassVar[str]
    label: ClassVar[str]
    unsupported: ClassVar[dict[str, str]] = {}

    async def open(self, endpoints: Endpoints) -> None:
        """Create clients and bind what needs binding (not timed)."""

    async def close(self) -> None:
        """Release clients."""

    def prepare_put(self, n: int) -> list[Any]:
        raise NotApplicable("no put")
