"""What a contender is: a client library driven through the same operations as every other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

STATIC_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
REGION = "us-east-1"
NO_BODY_DECODE = "its Rust core parses the HTTP body itself; no public call takes a body in memory"


class NotApplicable(Exception):
    """This contender cannot run this case; the message says why (shown as "n/a: why")."""


@dataclass(frozen=True)
class Endpoints:
    """The stub server's addresses: one answering at once, one after 5 ms, one after 2 ms.

    A cold-start process gets only `url`: a contender opens clients for the others only when
    they are given.
    """

    url: str
    latency_url: str | None = None
    page_url: str | None = None


class Contender:
    """Base of every contender.

    A contender implements any of these (sync or async), each doing exactly one operation:

    - `build(item) -> object`: the contender's object for one `data.plain_item` dict (not
      timed; the write cases build their objects with it beforehand);
    - `get_one()`: get the item `data.GET_KEY` into the contender's result type;
    - `put_one(obj)`: encode and write one object;
    - `query_100()`, `query_1000()`: query the partition of that page size to the end, results
      in a list;
    - `decode_1000(body)`: turn the raw 1,000-item Query response body into results, no I/O;
    - `batch_write(objs)`: write the objects with BatchWriteItem (25 a request, unprocessed
      items resent);
    - `transaction_25(objs)`: write the 25 objects in one TransactWriteItems;
    - `scan_1mb()`, `scan_paged()`: scan the stub's table to its end (the second on the 2 ms
      server, 100 items a page), handling every item, and return how many were read;
    - `concurrent_get()`: get one item from the 5 ms endpoint (called from many tasks at once).

    `unsupported` maps a case it does not run to the reason.
    """

    key: ClassVar[str]
    label: ClassVar[str]
    unsupported: ClassVar[dict[str, str]] = {}

    async def open(self, endpoints: Endpoints) -> None:
        """Create clients and bind what needs binding (not timed)."""

    async def close(self) -> None:
        """Release clients."""

    def build(self, item: dict[str, Any]) -> Any:
        raise NotApplicable("no writes")
