"""Consumer groups over the fake streams service, with the lease table in the fake, on virtual
time: several members in one event loop."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import anyio
import pytest

from _groups import Link, Member, lease_items, member_stream, running
from _streams import Table, assert_item_order, drain, key, seqs
from _streams import open_stream as open_plain
from adyn.errors import InvalidArgument
from adyn.stream import Record
from adyn.stream._group import GroupSpec
from adyn.testing.fakes import FakeStreams, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeStreams:
    return FakeStreams(clock)


def make(fake: FakeStreams, arn: str, name: str, **options: Any) -> Member:
    link = Link(fake)
    return Member(name, member_stream(fake, [arn], link, name=name, **options), link)


async def until(clock: VirtualClock, condition: Any, limit: float = 600.0) -> None:
    """Let virtual time pass until `condition()` holds (at most `limit` seconds)."""
    waited = 0.0
    while not condition():
        assert waited < limit, "the condition never held"
        await clock.sleep(1)
        waited += 1


def delivered(*members: Member) -> list[str]:
    return [r.sequence_number for m in members for r in m.got]


# ---------------------------------------------------------------- sharing


async def test_members_share_the_shards_fairly_and_each_record_comes_once(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=12)
    table = Table(fake, arn)
    written = table.fill(120, keys=30)
    members = [make(fake, arn, name) for name in "abc"]
    async with clock.autojump(), running(members[0]), running(members[1]), running(members[2]):
        await until(clock, lambda: sorted(delivered(*members)) == sorted(written))
        await until(clock, lambda: [m.leases for m in members] == [4, 4, 4])
        later = table.fill(30, keys=30)
        await until(clock, lambda: len(delivered(*members)) == 150)
        await clock.sleep(60)
    got = delivered(*members)
    assert sorted(got, key=int) == sorted(written + later, key=int)  # once each: no owner change
    for member in members:
        assert_item_order(member.got)
        assert {r.lease_epoch for r in member.got} <= {1, 2}


async def test_a_member_that_joins_gets_its_share(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream(shards=6)
    table = Table(fake, arn)
    first, second = make(fake, arn, "a"), make(fake, arn, "b")
    async with clock.autojump(), running(first):
        await until(clock, lambda: first.leases == 6)
        written = table.fill(30, keys=12)
        await until(clock, lambda: len(first.got) == 30)
        async with running(second):
            await until(clock, lambda: (first.leases, second.leases) == (3, 3))
            later = table.fill(30, keys=12)
            await until(clock, lambda: set(delivered(first, second)) >= set(later))
            assert second.got, "the new member reads its share"
            assert {r.lease_epoch for r in second.got} == {2}  # taken over: one more epoch
    counts = Counter(delivered(first, second))
    assert set(counts) == set(written + later)
    # Every record was done before its lease changed hands: nothing came twice.
    assert max(counts.values()) == 1


async def test_a_member_that_leaves_hands_over_from_its_checkpoint(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=4)
    table = Table(fake, arn)
    written = table.fill(40, keys=10)
    leaving, staying = make(fake, arn, "a"), make(fake, arn, "b")
    async with clock.autojump(), running(staying):
        async with running(leaving):
            await until(clock, lambda: sorted(delivered(leaving, staying)) == sorted(written))
            await until(clock, lambda: (leaving.leases, staying.leases) == (2, 2))
        # Leaving checkpointed and released its leases at once: no waiting for failover.
        gone = leaving.stream.member
        assert gone is not None
        owners = {i.get("owner", {}).get("S") for i in lease_items(fake).values()}
        assert gone.id not in owners
        before = clock.now()
        await until(clock, lambda: staying.leases == 4)
        assert clock.now() - before < 30
        later = table.fill(20, keys=10)
        await until(clock, lambda: set(seqs(staying.got)) >= set(later))
    counts = Counter(delivered(leaving, staying))
    assert max(counts.values()) == 1


async def test_a_killed_member_loses_its_leases_after_failover(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=4)
    table = Table(fake, arn)
    victim, survivor = make(fake, arn, "a"), make(fake, arn, "b", failover=30.0)
    async with clock.autojump(), running(survivor):
        async with running(victim, finish=False):  # takes records, never finishes them
            await until(clock, lambda: (victim.leases, survivor.leases) == (2, 2))
            written = table.fill(40, keys=10)
            await until(clock, lambda: len(delivered(victim, survivor)) == 40)
            held = seqs(victim.got)
            assert held
            victim.link.cut()  # killed mid-batch: it cannot release anything
        killed_at = clock.now()
        await until(clock, lambda: survivor.leases == 4)
        assert clock.now() - killed_at >= 30 - 10  # judged dead after failover, not before
        await until(clock, lambda: set(seqs(survivor.got)) >= set(held))
    # At least once: what the victim held unfinished comes again, to the survivor.
    assert set(delivered(victim, survivor)) == set(written)
    victim_epochs = {r.sequence_number: r.lease_epoch for r in victim.got}
    for record in survivor.got:
        if record.sequence_number in victim_epochs:
            assert record.lease_epoch > victim_epochs[record.sequence_number]  # fenced


async def test_a_member_paused_past_failover_cannot_move_a_checkpoint(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    paused, other = make(fake, arn, "a"), make(fake, arn, "b")
    async with clock.autojump(), running(other):
        async with paused.stream:
            await until(clock, lambda: (paused.leases, other.leases) == (1, 1))
            assert paused.stream.member is not None
            mine = next(iter(paused.stream.member.held.values()))
            names = (f"k{i}" for i in range(40))
            keys = [k for k in names if fake.shard_for(arn, key(k)).shard_id == mine.item.shard]
            keys = keys[:3]
            for name in keys:
                table.write(name)
            record = await paused.stream.next(timeout=60)
            assert record is not None
            paused.link.pause()  # a long GC pause, a stopped VM: its heartbeats stop
            await until(clock, lambda: other.leases == 2)  # taken over after failover
            taken_over = lease_items(fake)[mine.key]
            assert record.lease_epoch is not None
            assert int(taken_over["epoch"]["N"]) > record.lease_epoch
            record.done()  # the paused member finishes its record late...
            paused.link.resume()
            await paused.stream.commit()  # ...and its checkpoint is refused
            assert lease_items(fake)[mine.key].get("checkpoint") == taken_over.get("checkpoint")
            assert paused.stream.stats.leases_lost == 1
            assert paused.leases == 0
            # It hands out nothing more of the lost shard.
            assert await paused.stream.next(timeout=30) is None
        await until(clock, lambda: set(keys) <= {r.key["id"] for r in other.got})


# ---------------------------------------------------------------- lineage, partitions


async def test_children_wait_until_their_parent_is_done_and_checkpointed(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    written = table.fill(20, keys=8)
    for shard in list(fake.open_shards(arn)):
        fake.split(arn, shard.shard_id, children=2)
    written += table.fill(20, keys=8)
    fake.split(arn, fake.open_shards(arn)[0].shard_id, children=1, list_after=30)
    written += table.fill(20, keys=8)
    members = [make(fake, arn, name) for name in "ab"]
    done_at: dict[str, int] = {}
    step = itertools.count()
    order: list[tuple[int, Record[Any]]] = []

    async def work(member: Member) -> None:
        async for record in member.stream:
            order.append((next(step), record))
            await clock.sleep(0.2)  # some work
            done_at[record.sequence_number] = next(step)
            record.done()

    async with (
        clock.autojump(),
        members[0].stream,
        members[1].stream,
        anyio.create_task_group() as tg,
    ):
        for member in members:
            tg.start_soon(work, member)
        await until(clock, lambda: set(done_at) >= set(written), limit=3600)
        tg.cancel_scope.cancel()
    parent_of = {s.shard_id: s.parent_id for s in fake.shards(arn)}
    for index, record in order:
        parent = parent_of[record.shard_id]
        for _, earlier in order:
            if earlier.shard_id == parent:
                assert done_at[earlier.sequence_number] < index, "a child read before its parent"


async def test_partitions_work_inside_a_member(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream(shards=3)
    table = Table(fake, arn)
    written = table.fill(60, keys=12)
    member = make(fake, arn, "a")
    seen: list[list[Record[Any]]] = [[], []]
    async with clock.autojump(), member.stream:
        parts = member.stream.partitions(2)

        async def work(i: int) -> None:
            async for record in parts[i]:
                seen[i].append(record)
                record.done()

        async with anyio.create_task_group() as tg:
            for i in range(2):
                tg.start_soon(work, i)
            await until(clock, lambda: sum(map(len, seen)) == len(written))
            tg.cancel_scope.cancel()
        await member.stream.commit()
    assert sorted(seqs(seen[0] + seen[1]), key=int) == sorted(written, key=int)
    checkpoints = {i.get("checkpoint", {}).get("S") for i in lease_items(fake).values()}
    assert all(c and c.startswith("after:") for c in checkpoints)


async def test_a_new_group_starts_at_its_position_and_keeps_it(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    table.fill(10)
    await clock.advance(3600)
    first = make(fake, arn, "a", position="latest")
    async with clock.autojump(), running(first):
        await clock.sleep(30)
        later = table.fill(5)
        await until(clock, lambda: len(first.got) == 5)
    assert seqs(first.got) == later or sorted(seqs(first.got), key=int) == sorted(later, key=int)
    # The group exists now: a member opened with another position resumes the group.
    again = make(fake, arn, "b", position="trim_horizon")
    async with clock.autojump(), running(again):
        await clock.sleep(60)
    assert again.got == []


async def test_group_arguments_are_checked() -> None:
    fake = FakeStreams()
    with pytest.raises(InvalidArgument):
        GroupSpec(name="", table="t", call=Link(fake))
    with pytest.raises(InvalidArgument):
        GroupSpec(name="g", table="t", call=Link(fake), failover=0)
    arn = fake.create_stream()
    member = make(fake, arn, "a")
    async with fake.clock.autojump(), member.stream:  # type: ignore[attr-defined]
        with pytest.raises(InvalidArgument):
            member.stream.token  # noqa: B018
        with pytest.raises(InvalidArgument):
            await member.stream.move_to("latest")
    assert await drain(member.stream, wait=1) == []


async def test_a_re_enabled_stream_is_read_after_the_previous_one(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    old = fake.create_stream("posts", shards=2)
    table = Table(fake, old)
    written = table.fill(20, keys=6)
    link_a, link_b = Link(fake), Link(fake)
    members = [
        Member("a", member_stream(fake, [old], link_a, name="a", tables=["posts"]), link_a),
        Member("b", member_stream(fake, [old], link_b, name="b", tables=["posts"]), link_b),
    ]
    async with clock.autojump(), running(members[0]), running(members[1]):
        await until(clock, lambda: len(delivered(*members)) == 20)
        fake.disable(old)
        table.arn = fake.enable("posts", shards=2)
        later = table.fill(10, keys=6)
        await until(clock, lambda: set(delivered(*members)) >= set(later), limit=1200)
    got = delivered(*members)
    assert sorted(got, key=int) == sorted(written + later, key=int)
    for member in members:  # within each member, the old stream's records come first
        seqs_in_order = [r.sequence_number for r in member.got]
        new_ones = [i for i, s in enumerate(seqs_in_order) if s in later]
        old_ones = [i for i, s in enumerate(seqs_in_order) if s in written]
        assert not new_ones or not old_ones or max(old_ones) < min(new_ones)


async def test_a_new_group_can_start_from_a_token(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    written = table.fill(10)
    async with clock.autojump(), open_plain(fake, arn) as stream:
        first = await drain(stream, limit=4)
        token = stream.token  # a consumer moves from its own token to a group
    member = make(fake, arn, "a", position=token)
    async with clock.autojump(), running(member):
        await until(clock, lambda: len(member.got) == 6)
        await clock.sleep(30)
    assert sorted(seqs(first) + seqs(member.got), key=int) == sorted(written, key=int)
