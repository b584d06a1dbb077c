"""The lease table of consumer groups: what is stored, and every conditional write on it.

One DynamoDB table (`lease_table`, created when missing, named through the engine's
`table_name_template`) holds every group: its hash key `group` is the group's name, its range
key `key` tells the items apart:

- `#group`: the group itself: when it was created, and its `floor` (records created before it
  are skipped: positions "latest" and a datetime);
- `@<member>`: one member: `counter`, which the member adds to every `failover / 3` seconds
  (its heartbeat), and a readable `name` (host, process);
- `L<stream arn>|<shard id>`: one shard's lease: `owner` (a member, absent when free), `epoch`
  (the fencing number, one more at every change of owner), `checkpoint` (a token entry: every
  record up to there is done, or "done"), `skip` (records past the checkpoint done exactly once
  by `tx.checkpoint`), `parent` (the parent shard's lease), `after` (the table's earlier streams,
  to finish first).

Every write of a lease is conditioned on what the writer believes: a take on the epoch (and
owner) it saw, a checkpoint or release on being the owner at its epoch. So a member that lost a
lease, however late it wakes up, can never move its checkpoint: its write fails, and it learns
that the lease is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConditionalCheckFailedError, DynamoError, ResourceNotFoundError
from ._clock import Clock, RateLimiter

__all__ = ["DbCall", "LeaseItem", "LeaseTable", "MemberItem", "lease_key"]

log = logging.getLogger("adyn.stream.group")

Wire = dict[str, Any]
DbCall = Callable[[str, Wire, bool], Awaitable[Wire]]  # (operation, request, idempotent)

GROUP = "group"
KEY = "key"
META_KEY = "#group"
MEMBER_PREFIX = "@"
LEASE_PREFIX = "L"
DONE = "done"


def lease_key(arn: str, shard_id: str) -> str:
    return f"{LEASE_PREFIX}{arn}|{shard_id}"


@dataclass
class LeaseItem:
    """One shard's lease as the table holds it."""

    key: str
    stream: str
    shard: str
    parent: str | None = None
    after: tuple[str, ...] = ()
    owner: str | None = None
    epoch: int = 0
    checkpoint: str | None = None
    skip: frozenset[str] = field(default_factory=frozenset)

    @property
    def done(self) -> bool:
        return self.checkpoint == DONE

    def wire(self, group: str) -> Wire:
        item: Wire = {
            GROUP: {"S": group},
            KEY: {"S": self.key},
            "stream": {"S": self.stream},
            "shard": {"S": self.shard},
            "epoch": {"N": str(self.epoch)},
        }
        if self.parent:
            item["parent"] = {"S": self.parent}
        if self.after:
            item["after"] = {"L": [{"S": arn} for arn in self.after]}
        if self.owner:
            item["owner"] = {"S": self.owner}
        if self.checkpoint:
            item["checkpoint"] = {"S": self.checkpoint}
        if self.skip:
            item["skip"] = {"SS": sorted(self.skip)}
        return item

    @classmethod
    def from_wire(cls, item: Wire) -> LeaseItem:
        def text(name: str) -> str | None:
            value = item.get(name)
            return None if value is None else str(value.get("S"))

        after = tuple(v["S"] for v in (item.get("after") or {}).get("L", ()))
        return cls(
            key=str(item[KEY]["S"]),
            stream=text("stream") or "",
            shard=text("shard") or "",
            parent=text("parent"),
            after=after,
            owner=text("owner"),
            epoch=int((item.get("epoch") or {"N": "0"})["N"]),
            checkpoint=text("checkpoint"),
            skip=frozenset((item.get("skip") or {}).get("SS", ())),
        )


@dataclass
class MemberItem:
    """One member's heartbeat."""

    id: str
    counter: int
    name: str = ""


@dataclass
class GroupItem:
    """The group itself."""

    created: float
    floor: float | None


@dataclass
class TableView:
    """Everything one read of the lease table found for a group."""

    group: GroupItem | None
    members: dict[str, MemberItem]
    leases: dict[str, LeaseItem]


class LeaseTable:
    """The lease table as one group's members use it (see the module docstring).

    `call` sends one DynamoDB call (with the engine's retries); `writes` caps this member's
    writes per second (a group's items share one partition, which takes 1,000 writes a second).
    """

    def __init__(
        self, call: DbCall, table: str, group: str, clock: Clock, writes_per_second: float = 100
    ) -> None:
        self.call = call
        self.table = table
        self.group = group
        self.writes = 0
        self._limit = RateLimiter(clock, writes_per_second)
        self._clock = clock

    def _key(self, key: str) -> Wire:
        return {GROUP: {"S": self.group}, KEY: {"S": key}}

    async def _write(self, operation: str, request: Wire, idempotent: bool) -> Wire:
        await self._limit.acquire()
        self.writes += 1
        return await self.call(operation, request, idempotent)

    async def _conditional(self, operation: str, request: Wire, idempotent: bool) -> bool:
        """A conditional write: False when its condition failed (someone else wrote first)."""
        try:
            await self._write(operation, request, idempotent)
        except ConditionalCheckFailedError:
            return False
        return True

    async def _put_new(self, item: Wire) -> bool:
        """Put an item that must not exist yet; False when it does."""
        request = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(#k)",
            "ExpressionAttributeNames": {"#k": KEY},
        }
        return await self._conditional("PutItem", request, False)

    # ------------------------------------------------------------ the table

    async def ensure(self) -> None:
        """Create the lease table when it is missing, and wait until it is ACTIVE."""
        try:
            description = await self.call("DescribeTable", {"TableName": self.table}, True)
        except ResourceNotFoundError:
            description = None
        if description is None:
            request = {
                "TableName": self.table,
                "KeySchema": [
                    {"AttributeName": GROUP, "KeyType": "HASH"},
                    {"AttributeName": KEY, "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": GROUP, "AttributeType": "S"},
                    {"AttributeName": KEY, "AttributeType": "S"},
                ],
                "BillingMode": "PAY_PER_REQUEST",
            }
            try:
                await self.call("CreateTable", request, False)
            except DynamoError as exc:
                if exc.code != "ResourceInUseException":
                    raise
        delay = 0.05
        while True:
            response = await self.call("DescribeTable", {"TableName": self.table}, True)
            if (response.get("Table") or {}).get("TableStatus") == "ACTIVE":
                return
            await self._clock.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def read(self) -> TableView:
        """Every item of the group (a strongly consistent Query, every page)."""
        request: Wire = {
            "TableName": self.table,
            "KeyConditionExpression": "#g = :g",
            "ExpressionAttributeNames": {"#g": GROUP},
            "ExpressionAttributeValues": {":g": {"S": self.group}},
            "ConsistentRead": True,
        }
        group: GroupItem | None = None
        members: dict[str, MemberItem] = {}
        leases: dict[str, LeaseItem] = {}
        while True:
            response = await self.call("Query", request, True)
            for item in response.get("Items") or ():
                key = str(item[KEY]["S"])
                if key == META_KEY:
                    floor = item.get("floor")
                    group = GroupItem(
                        float(item.get("created", {"N": "0"})["N"]),
                        None if floor is None else float(floor["N"]),
                    )
                elif key.startswith(MEMBER_PREFIX):
                    member = key[len(MEMBER_PREFIX) :]
                    members[member] = MemberItem(
                        member,
                        int(item.get("counter", {"N": "0"})["N"]),
                        str(item.get("name", {"S": ""})["S"]),
                    )
                elif key.startswith(LEASE_PREFIX):
                    leases[key] = LeaseItem.from_wire(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return TableView(group, members, leases)
            request = {**request, "ExclusiveStartKey": last}

    async def create_group(self, created: float, floor: float | None) -> bool:
        """Create the group's item; False when another member created it first."""
        item: Wire = {**self._key(META_KEY), "created": {"N": repr(created)}}
        if floor is not None:
            item["floor"] = {"N": repr(floor)}
        return await self._put_new(item)

    # ------------------------------------------------------------ members

    async def heartbeat(self, member: str, name: str) -> None:
        request = {
            "TableName": self.table,
            "Key": self._key(MEMBER_PREFIX + member),
            "UpdateExpression": "ADD #n :one SET #m = :m",
            "ExpressionAttributeNames": {"#n": "counter", "#m": "name"},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":m": {"S": name}},
        }
        # Sent twice, it adds two: still a change of the counter, which is all that counts.
        await self._write("UpdateItem", request, True)

    async def leave(self, member: str) -> None:
        request = {"TableName": self.table, "Key": self._key(MEMBER_PREFIX + member)}
        await self._write("DeleteItem", request, True)

    # ------------------------------------------------------------ leases

    async def create_lease(self, lease: LeaseItem) -> bool:
        """Create a lease; False when it exists already."""
        return await self._put_new(lease.wire(self.group))

    async def take(self, lease: LeaseItem, member: str) -> int | None:
        """Become the owner of a lease seen free or held by a dead member: the new epoch, or
        None when someone else changed it first."""
        epoch = lease.epoch + 1
        values: Wire = {":seen": {"N": str(lease.epoch)}, ":me": {"S": member}}
        values[":epoch"] = {"N": str(epoch)}
        if lease.owner is None:
            condition = "#e = :seen AND attribute_not_exists(#o)"
        else:
            condition = "#e = :seen AND #o = :old"
            values[":old"] = {"S": lease.owner}
        request = {
            "TableName": self.table,
            "Key": self._key(lease.key),
            "UpdateExpression": "SET #o = :me, #e = :epoch",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#o": "owner", "#e": "epoch"},
            "ExpressionAttributeValues": values,
        }
        return epoch if await self._conditional("UpdateItem", request, False) else None

    def checkpoint_request(
        self,
        key: str,
        member: str,
        epoch: int,
        entry: str | None,
        skip: frozenset[str],
        *,
        release: bool = False,
    ) -> Wire:
        """The UpdateItem (or transaction Update) that writes a checkpoint, conditioned on
        `member` still owning the lease at `epoch`."""
        sets = []
        removes = ["#o"] if release else []
        values: Wire = {":me": {"S": member}, ":epoch": {"N": str(epoch)}}
        if entry is None:
            removes.append("#c")
        else:
            sets.append("#c = :c")
            values[":c"] = {"S": entry}
        if skip:
            sets.append("#s = :s")
            values[":s"] = {"SS": sorted(skip)}
        else:
            removes.append("#s")
        parts = []
        if sets:
            parts.append("SET " + ", ".join(sets))
        if removes:
            parts.append("REMOVE " + ", ".join(removes))
        names = {"#o": "owner", "#e": "epoch", "#c": "checkpoint", "#s": "skip"}
        return {
            "TableName": self.table,
            "Key": self._key(key),
            "UpdateExpression": " ".join(parts),
            "ConditionExpression": "#o = :me AND #e = :epoch",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    async def checkpoint(
        self,
        key: str,
        member: str,
        epoch: int,
        entry: str | None,
        skip: frozenset[str],
        *,
        release: bool = False,
    ) -> bool:
        """Write a checkpoint (and with `release`, give the lease up); False when the lease is
        no longer this member's at this epoch."""
        request = self.checkpoint_request(key, member, epoch, entry, skip, release=release)
        return await self._conditional("UpdateItem", request, True)

    async def delete(self, key: str) -> None:
        """Forget a finished lease (only while it still says "done")."""
        request = {
            "TableName": self.table,
            "Key": self._key(key),
            "ConditionExpression": "#c = :done",
            "ExpressionAttributeNames": {"#c": "checkpoint"},
            "ExpressionAttributeValues": {":done": {"S": DONE}},
        }
        if not await self._conditional("DeleteItem", request, True):
            log.debug("lease %s was not done any more; kept", key)
