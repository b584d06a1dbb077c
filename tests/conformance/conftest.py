"""Fixtures of the conformance suite: a raw wire client and throwaway tables on each backend.

Each test runs on every backend of tests/conftest.py: the corrected moto, dynalite, and the
endpoint in `ADYN_TEST_ENDPOINT` when it is set (DynamoDB itself, or plain moto to see what the
corrections correct). Two markers say where a backend cannot show a behaviour:

- `dynalite_gap(reason)`: dynalite lacks the feature named in `reason`. The test still runs on
  dynalite, as a strict xfail: it must fail there, so the day dynalite gains the feature the
  marker has to go.
- `embedded_only(reason)`: DynamoDB shows the behaviour only on a time scale no test run can wait
  for (TTL deletions take up to days); the test runs on the embedded servers only.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from ._wire import Wire, WireError

DEFAULT_REGION = "us-east-1"
WAIT = 15.0  # seconds a table may take to become ACTIVE, or a record to show up


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        gap = item.get_closest_marker("dynalite_gap")
        if gap is not None and backend == "dynalite":
            reason = f"dynalite lacks {gap.args[0]}"
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
        only = item.get_closest_marker("embedded_only")
        if only is not None and backend == "env":
            item.add_marker(pytest.mark.skip(reason=f"not on a real endpoint: {only.args[0]}"))


@pytest.fixture
async def wire(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Wire]:
    on_env = request.node.callspec.params.get("backend") == "env"
    region = (os.environ.get("ADYN_TEST_REGION") if on_env else None) or DEFAULT_REGION
    async with aiohttp.ClientSession() as session:
        yield Wire(backend, region, session)


class Tables:
    """Creates tables with names unique to the test, and drops them afterwards."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.made: list[str] = []

    async def create(
        self,
        *,
        hash_key: tuple[str, str] = ("pk", "S"),
        range_key: tuple[str, str] | None = None,
        stream: str | None = None,
        indexes: dict[str, tuple[tuple[str, str], tuple[str, str] | None]] | None = None,
    ) -> str:
        """A new table; `stream` is a StreamViewType; `indexes`: GSI name -> (hash, range)."""
        name = f"conformance-{uuid.uuid4().hex[:12]}"
        attributes = {hash_key[0]: hash_key[1]}
        schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
        if range_key is not None:
            attributes[range_key[0]] = range_key[1]
            schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
        body: dict[str, Any] = {"TableName": name, "BillingMode": "PAY_PER_REQUEST"}
        gsis = []
        for index, (index_hash, index_range) in (indexes or {}).items():
            attributes[index_hash[0]] = index_hash[1]
            index_schema = [{"AttributeName": index_hash[0], "KeyType": "HASH"}]
            if index_range is not None:
                attributes[index_range[0]] = index_range[1]
                index_schema.append({"AttributeName": index_range[0], "KeyType": "RANGE"})
            gsis.append(
                {
                    "IndexName": index,
                    "KeySchema": index_schema,
                    "Projection": {"ProjectionType": "ALL"},
                }
            )
        if gsis:
            body["GlobalSecondaryIndexes"] = gsis
        if stream is not None:
            body["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
        body["KeySchema"] = schema
        body["AttributeDefinitions"] = [
            {"AttributeName": n, "AttributeType": t} for n, t in attributes.items()
        ]
        await self.wire("CreateTable", body)
        self.made.append(name)
        await self.active(name)
        return name

    async def active(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT * 4
        while True:
            table: dict[str, Any] = (await self.wire("DescribeTable", {"TableName": name}))["Table"]
            indexes = table.get("GlobalSecondaryIndexes", [])
            if table["TableStatus"] == "ACTIVE" and all(
                i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes
            ):
                return table
            assert time.monotonic() < deadline, f"table {name} did not become ACTIVE"
            await anyio.sleep(0.2)

    async def drop(self) -> None:
        for name in self.made:
            with contextlib.suppress(WireError):
                await self.wire("DeleteTable", {"TableName": name})


@pytest.fixture
async def tables(wire: Wire, request: pytest.FixtureRequest) -> AsyncIterator[Tables]:
    made = Tables(wire)
    yield made
    if request.node.callspec.params.get("backend") == "env":
        await made.drop()  # a real service keeps (and bills) tables


class StreamReader:
    """Reads every record of a table's stream from the trim horizon, across all shards."""

    def __init__(self, wire: Wire, stream_arn: str) -> None:
        self.wire = wire
        self.arn = stream_arn
        self._iterators: dict[str, str | None] = {}
        self.records: list[dict[str, Any]] = []

    @classmethod
    async def of(cls, wire: Wire, table: str) -> StreamReader:
        described = await wire("DescribeTable", {"TableName": table})
        return cls(wire, described["Table"]["LatestStreamArn"])

    async def _poll(self) -> None:
        stream = await self.wire.streams("DescribeStream", {"StreamArn": self.arn})
        for shard in stream["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                got = await self.wire.streams(
                    "GetShardIterator",
                    {
                        "StreamArn": self.arn,
                        "ShardId": shard_id,
                        "ShardIteratorType": "TRIM_HORIZON",
                    },
                )
                self._iterators[shard_id] = got["ShardIterator"]
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            page = await self.wire.streams("GetRecords", {"ShardIterator": iterator})
            self.records.extend(page["Records"])
            self._iterators[shard_id] = page.get("NextShardIterator")

    async def until(self, count: int) -> list[dict[str, Any]]:
        """All records so far, once there are at least `count` (fails after WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        await self._poll()
        while len(self.records) < count:
            assert time.monotonic() < deadline, (
                f"only {len(self.records)} of {count} stream records arrived: {self.records}"
            )
            await anyio.sleep(0.1)
            await self._poll()
        return self.records
