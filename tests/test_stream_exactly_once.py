"""`tx.checkpoint(record)`: effects and the group's checkpoint in one transaction, so each record's
effects are applied exactly once across crashes and owner changes.

Engines run on the fake through the transport seam (`Engine(transport=...)`), on virtual time:
the streams, the lease table and the effects table all live in the fake.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import pytest

from adyn import Engine, HashKey, Model, TransactionCanceled
from adyn.errors import DynamoError, InvalidArgument
from adyn.stream import Pacing, Record
from adyn.testing import FakeStreams, VirtualClock

PACING = Pacing(page_size=4, buffer=40, max_idle_interval=5.0)


class Order(Model):
    class Meta:
        table_name = "orders"
        stream = "new_and_old"

    id: Annotated[str, HashKey()]
    amount: int = 0


class Total(Model):
    """An effect that must not be applied twice: a running sum."""

    class Meta:
        table_name = "totals"

    id: Annotated[str, HashKey()]
    count: int = 0
    records: int = 0


class Line:
    """An engine's own line to the fake: a test cuts it to kill that process."""

    def __init__(self, fake: FakeStreams) -> None:
        self.fake = fake
        self.dead = False

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        if self.dead:
            raise DynamoError("ConnectionFailed", "this process is gone", operation)
        return await self.fake.call(service, operation, request, idempotent=idempotent)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeStreams:
    return FakeStreams(clock, shards=3)


async def apply(engine: Engine, record: Record[Order]) -> None:
    """Count the order into its total and checkpoint it, in one transaction."""
    async with engine.transaction() as tx:
        tx.update(Total, key={"id": "all"}, actions=[Total.count.add(1)])
        tx.checkpoint(record)


async def test_effects_are_applied_once_across_a_crash_and_a_takeover(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    first_line, second_line = Line(fake), Line(fake)
    async with Engine(transport=fake) as setup:
        await setup.bind(Order, Total)
        await setup.save(Total(id="all"))
        for i in range(30):
            await setup.save(Order(id=f"o{i}", amount=i))
    applied: Counter[str] = Counter()
    async with clock.autojump():
        first = Engine(transport=first_line)
        await first.open()
        await first.bind(Order, Total)
        stream = first.stream(
            Order, group="billing", position="trim_horizon", clock=clock, pacing=PACING
        )
        await stream.__aenter__()
        for _ in range(12):
            record = await stream.next(timeout=60)
            assert record is not None
            await apply(first, record)
            applied[record.sequence_number] += 1
        extra = await stream.next(timeout=60)  # taken, and its effects never written
        assert extra is not None
        first_line.dead = True  # the process dies here: no release, no goodbye
        async with Engine(transport=second_line) as second:
            await second.bind(Order, Total)
            async with second.stream(
                Order, group="billing", position="trim_horizon", clock=clock, pacing=PACING
            ) as takeover:
                while sum(applied.values()) < 30:
                    record = await takeover.next(timeout=120)
                    assert record is not None, "the survivor stopped before taking over"
                    await apply(second, record)
                    applied[record.sequence_number] += 1
        await stream.__aexit__(None, None, None)  # what is left of the dead process stops
        await first.close()
    assert len(applied) == 30 and set(applied.values()) == {1}
    async with Engine(transport=fake) as check:
        await check.bind(Total)
        total = await check.get(Total, id="all")
    assert total is not None and total.count == 30  # every order counted once


async def test_a_member_that_lost_its_lease_cannot_commit_effects(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    async with Engine(transport=fake) as engine:
        await engine.bind(Order, Total)
        await engine.save(Total(id="all"))
        await engine.save(Order(id="o1"))
        async with clock.autojump():
            stream = engine.stream(Order, group="g", position="trim_horizon", clock=clock)
            async with stream:
                record = await stream.next(timeout=60)
                assert record is not None
                member = stream.member
                assert member is not None
                lease = member.held[next(k for k in member.held if record.shard_id in k)]
                # Another member takes the lease over (as after this one's long pause).
                raw = fake.items.tables["adyn-leases"]
                for stored in raw.items.values():
                    if stored["key"]["S"] == lease.key:
                        stored["owner"] = {"S": "someone-else"}
                        stored["epoch"] = {"N": str(lease.epoch + 1)}
                with pytest.raises(TransactionCanceled) as caught:
                    await apply(engine, record)
                reason = caught.value.reasons[-1]  # the checkpoint's, after the effects'
                assert reason.code == "ConditionalCheckFailed" and reason.obj is record
                assert "no longer this member's" in (reason.message or "")
                assert stream.stats.leases_lost == 1
                with pytest.raises(TransactionCanceled):  # known lost now: refused at once
                    async with engine.transaction() as tx:
                        tx.checkpoint(record)
        total = await engine.get(Total, id="all")
        assert total is not None and total.count == 0  # the effect was not written


async def test_out_of_order_workers_keep_exactly_once(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    """With partitions, a record checkpointed past an unfinished one is remembered in the
    lease (skip), so the next owner redelivers the unfinished one and not the other."""
    async with Engine(transport=fake) as engine:
        await engine.bind(Order, Total)
        await engine.save(Total(id="all"))
    one_shard = FakeStreams(clock, shards=1)
    async with Engine(transport=one_shard) as engine:
        await engine.bind(Order, Total)
        await engine.save(Total(id="all"))
        for i in range(8):
            await engine.save(Order(id=f"o{i}"))
        async with clock.autojump():
            async with engine.stream(
                Order, group="g", position="trim_horizon", clock=clock
            ) as stream:
                parts = stream.partitions(2)
                first = await parts[0].__anext__()
                second = await parts[1].__anext__()
                # The later record's effects are committed; the earlier one stays unfinished.
                later, earlier = sorted([first, second], key=lambda r: -int(r.sequence_number))
                await apply(engine, later)
            async with engine.stream(
                Order, group="g", position="trim_horizon", clock=clock
            ) as again:
                seen = []
                while (record := await again.next(timeout=60)) is not None:
                    seen.append(record.sequence_number)
        assert earlier.sequence_number in seen
        assert later.sequence_number not in seen


async def test_tx_checkpoint_needs_a_group_record(fake: FakeStreams, clock: VirtualClock) -> None:
    async with Engine(transport=fake) as engine:
        await engine.bind(Order)
        await engine.save(Order(id="o1"))
        async with (
            clock.autojump(),
            engine.stream(Order, position="trim_horizon", clock=clock) as stream,
        ):
            record = await stream.next(timeout=60)
            assert record is not None
            with pytest.raises(InvalidArgument, match="consumer group"):
                async with engine.transaction() as tx:
                    tx.checkpoint(record)
            with pytest.raises(InvalidArgument, match="consumer groups"):
                await stream.commit()
