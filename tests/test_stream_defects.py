"""The defects issue 12 lists (D1-D7 and two more), each shown by what a consumer would see.

Every test here failed on the coordinator before the fix it names.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import pytest

from _streams import PACING, Post, Table, drain, image, key, open_stream, seqs
from adyn.errors import InvalidItem, RecordsExpired
from adyn.stream import Pacing, Record, Stream, StreamSource
from adyn.stream._partitions import _partition
from adyn.testing.fakes import FakeStreams, VirtualClock, plain_source

Wire = dict[str, Any]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeStreams:
    return FakeStreams(clock)


def keys_in(partition: int, n: int, workers: int = 2) -> list[str]:
    """`n` item names whose records go to `partition` of `workers`."""
    names = [f"k{i}" for i in range(200)]
    return [k for k in names if _partition(Post, key(k), workers) == partition][:n]


# ---------------------------------------------------------------- D1


async def test_d1_a_token_never_skips_unfinished_records_of_a_parent_shard(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    """With partitions, a child's finished record used to make the parent's entry read as
    fully read, dropping the parent's records a worker had not finished."""
    arn = fake.create_stream()
    table = Table(fake, arn)
    (slow,) = keys_in(0, 1)
    (fast,) = keys_in(1, 1)
    unfinished = table.write(slow)  # in the parent; worker 0 will hold it
    finished_after_it = table.write(fast)
    fake.split(arn, children=1)  # a rollover: the child takes later writes
    table.write(fast)
    async with clock.autojump():
        async with open_stream(fake, arn) as stream:
            held, quick = stream.partitions(2)
            first = await held.__anext__()  # taken, never finished
            assert first.sequence_number == unfinished
            for _ in range(2):
                (await quick.__anext__()).done()  # the parent's, then the child's record
            token = stream.token
        async with open_stream(fake, arn, position=token) as stream:
            again = await drain(stream)
    # The parent's unfinished record comes again (and the one finished after it, which a
    # token cannot tell apart); the child's finished record does not.
    assert seqs(again) == [unfinished, finished_after_it]


# ---------------------------------------------------------------- D2


async def test_d2_a_token_reads_a_tables_previous_stream_before_its_new_one(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    """After a table's stream was disabled and enabled again, resuming from a token dropped
    the old stream's unread records (DynamoDB keeps them 24 hours)."""
    old = fake.create_stream("posts")
    table = Table(fake, old)
    written = table.fill(4)
    async with clock.autojump():
        async with open_stream(fake, old, tables=["posts"]) as stream:
            first = await drain(stream, limit=1)
            token = stream.token
        fake.disable(old)
        new = fake.enable("posts")
        table.arn = new
        later = table.fill(3)
        async with open_stream(fake, new, position=token, tables=["posts"]) as stream:
            rest = await drain(stream)
    assert seqs(first) == written[:1]
    assert seqs(rest) == written[1:] + later  # the old stream's rest first


async def test_d2_trim_horizon_and_a_running_stream_follow_the_re_enabled_stream(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    old = fake.create_stream("posts", shards=2)
    table = Table(fake, old)
    written = table.fill(6)
    async with clock.autojump(), open_stream(fake, old, tables=["posts"]) as running:
        seen = await drain(running, limit=2)
        fake.disable(old)
        new = fake.enable("posts")
        table.arn = new
        written += table.fill(4)
        seen += await drain(running, wait=900)
        async with open_stream(fake, new, tables=["posts"]) as from_start:
            everything = await drain(from_start)
    for records in (seen, everything):
        assert sorted(seqs(records), key=int) == sorted(written, key=int)
        boundary = max(i for i, r in enumerate(records) if r.sequence_number in written[:6])
        assert {r.sequence_number for r in records[: boundary + 1]} == set(written[:6])


# ---------------------------------------------------------------- D3


async def test_d3_a_caught_up_token_on_a_table_idle_for_days_is_caught_up(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    """DynamoDB refuses an iterator for a sequence number older than its trim point even when
    nothing after it was trimmed; that used to raise RecordsExpired."""
    arn = fake.create_stream()
    table = Table(fake, arn)
    table.fill(3)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        await drain(stream)  # caught up: the shard was polled at its head since
        token = stream.token
    await clock.jump(3 * 24 * 3600)  # the table is idle for three days
    later = table.fill(2)
    async with clock.autojump(), open_stream(fake, arn, position=token) as stream:
        assert seqs(await drain(stream)) == later
    assert fake.errors["TrimmedDataAccessException"] >= 1  # DynamoDB did refuse the position


async def test_d3_a_token_behind_trimmed_records_still_raises(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    Table(fake, arn).fill(3)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        await drain(stream, limit=1)  # records 2 and 3 unread
        token = stream.token
    await clock.jump(25 * 3600)
    async with clock.autojump(), open_stream(fake, arn, position=token) as stream:
        with pytest.raises(RecordsExpired):
            await stream.next(timeout=60)


# ---------------------------------------------------------------- D4


async def test_d4_a_record_that_fails_to_decode_is_never_counted_as_delivered(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    """A record that failed to decode was counted as delivered, so the next token skipped it."""
    arn = fake.create_stream()
    table = Table(fake, arn)
    good = table.write("a")
    bad = fake.put(arn, key("b"), new={"id": {"S": "b"}, "n": {"S": "not a number"}})
    after = table.write("c")
    strict = StreamSource(arn, Post, "NEW_AND_OLD_IMAGES", _strict_decode, _strict_decode)

    async def sources() -> list[StreamSource]:
        return [strict]

    def make(position: str) -> Stream[Any]:
        return Stream(call=fake, sources=sources, position=position, clock=clock, pacing=PACING)

    async with clock.autojump():
        async with make("trim_horizon") as stream:
            first = await stream.next(timeout=60)
            assert first is not None and first.sequence_number == good
            with pytest.raises(InvalidItem):
                await stream.next(timeout=60)
            token = stream.token  # must not pass the record that failed
        async with make(token) as stream:
            with pytest.raises(InvalidItem) as caught:  # it comes again, not the one after it
                await stream.next(timeout=60)
    assert f"stream record {bad} of shard" in str(caught.value)
    assert after


def _strict_decode(item: Wire) -> dict[str, Any]:
    values = {name: next(iter(v.values())) for name, v in item.items()}
    if "n" in values and not str(values["n"]).isdigit():
        raise InvalidItem("Post", "n", "stored value is not a number")
    return values


# ---------------------------------------------------------------- D5


async def test_d5_records_held_stay_within_the_buffer_however_many_shards(
    clock: VirtualClock,
) -> None:
    """64 shards with records waiting used to hold a page each (19,199 records against a
    bound of 4,000)."""
    fake = FakeStreams(clock, rate_limit=0)
    arn = fake.create_stream(shards=64)
    for i in range(64 * 60):
        fake.put(arn, key(f"k{i}"), new=image(f"k{i}", i))
    pacing = Pacing(buffer=400)
    async with open_stream(fake, arn, pacing=pacing) as stream:
        async with clock.autojump():
            taken = await drain(stream, limit=10)
        await clock.advance(600)  # the consumer stops taking records for ten minutes
        held = fake.served_records - len(taken)
    assert held <= 400
    assert stream.stats.peak_held <= 400


# ---------------------------------------------------------------- D6


@pytest.mark.parametrize(("stalled", "flowing", "shards"), [(300, 300, 2), (700, 600, 1)])
async def test_d6_a_stalled_worker_does_not_stop_the_others(
    fake: FakeStreams, clock: VirtualClock, stalled: int, flowing: int, shards: int
) -> None:
    """The dispatcher waited for the stalled worker's queue: every worker stopped after 256
    records. (700: the stalled worker holds most of the budget of 1,000, and the others'
    records come after its own.)"""
    arn = fake.create_stream(shards=shards)
    table = Table(fake, arn)
    stalled_keys = keys_in(0, 5)
    busy_keys = keys_in(1, 5)
    for i in range(stalled):
        table.write(stalled_keys[i % 5])
    busy = [table.write(busy_keys[i % 5]) for i in range(flowing)]
    got: list[Record[Any]] = []
    async with clock.autojump(), open_stream(fake, arn, pacing=Pacing(buffer=1000)) as stream:
        _, worker = stream.partitions(2)  # the first worker never reads
        with anyio.fail_after(10):
            while len(got) < len(busy):
                record = await worker.__anext__()
                record.done()
                got.append(record)
    assert seqs(got) == busy or sorted(seqs(got), key=int) == sorted(busy, key=int)


# ---------------------------------------------------------------- D7


async def test_d7_listing_a_wide_stream_stays_within_describe_streams_rate(
    clock: VirtualClock,
) -> None:
    """A full listing sent DescribeStream faster than 10 calls a second (throttled at open on
    1,000 shards)."""
    fake = FakeStreams(clock, describe_page_size=25)
    arn = fake.create_stream(shards=400)  # 16 pages
    async with clock.autojump(), open_stream(fake, arn, pacing=Pacing()) as stream:
        assert await stream.next(timeout=1) is None
    assert fake.requests["DescribeStream"] >= 16
    assert fake.peak_rate("DescribeStream") <= 10
    assert fake.errors["LimitExceededException"] == 0


async def test_d7_children_are_found_with_a_shard_filter_not_a_full_listing(
    clock: VirtualClock,
) -> None:
    fake = FakeStreams(clock)
    arn = fake.create_stream(shards=50)
    table = Table(fake, arn)
    async with clock.autojump(), open_stream(fake, arn, pacing=Pacing()) as stream:
        await drain(stream, wait=5)
        listings = fake.requests["DescribeStream"]
        parent = fake.shard_for(arn, key("x")).shard_id
        fake.split(arn, parent, children=2)
        seq = fake.put(arn, key("x"), new=image("x", 1))
        record = await stream.next(timeout=60)
        assert record is not None and record.sequence_number == seq
    lookups = [r for _, op, r in fake.calls if op == "DescribeStream" and "ShardFilter" in r]
    assert lookups and lookups[0]["ShardFilter"] == {"Type": "CHILD_SHARDS", "ShardId": parent}
    assert fake.requests["DescribeStream"] - listings == len(lookups)  # no full listing
    assert table


async def test_d7_idle_shards_share_one_rate_of_get_records(clock: VirtualClock) -> None:
    """Idle polling of 1,000 shards cost 840 GetRecords a second from one process."""
    fake = FakeStreams(clock)
    arn = fake.create_stream(shards=300)
    async with open_stream(fake, arn, pacing=Pacing(), position="latest"):
        await clock.advance(10)
        before = fake.requests["GetRecords"]
        await clock.advance(20)
        calls = fake.requests["GetRecords"] - before
    # Pacing.idle_poll_rate (100 a second), give or take its jitter; each shard's own cap
    # (2 s between polls) would allow 150 a second.
    assert calls <= 20 * 100 * 1.12


# ---------------------------------------------------------------- the other two


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
async def test_base_exceptions_from_the_block_come_out_unchanged(
    fake: FakeStreams, clock: VirtualClock, error: BaseException
) -> None:
    """`sys.exit(3)` inside the block came out as a BaseExceptionGroup (exit code lost)."""
    arn = fake.create_stream()
    Table(fake, arn).fill(2)
    with pytest.raises(type(error)) as caught:
        async with clock.autojump(), open_stream(fake, arn) as stream:
            await stream.next(timeout=10)
            raise error
    assert caught.value is error
    assert clock.next_deadline() is None  # and every task stopped


def test_sys_exit_in_a_stream_block_exits_with_its_code(fake: FakeStreams) -> None:
    arn = fake.create_stream()

    async def main() -> None:
        async with open_stream(fake, arn, position="latest"):
            sys.exit(3)

    with pytest.raises(SystemExit) as caught:
        anyio.run(main)
    assert caught.value.code == 3


async def test_records_expired_says_where_the_position_was(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    """Resuming after a sequence number, the message said "at its start"."""
    arn = fake.create_stream()
    written = Table(fake, arn).fill(3)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        await drain(stream, limit=1)
        token = stream.token
    await clock.jump(25 * 3600)
    async with clock.autojump(), open_stream(fake, arn, position=token) as stream:
        with pytest.raises(RecordsExpired, match=f"after sequence number {written[0]}"):
            await stream.next(timeout=60)


def test_plain_source_is_enough_for_these_tests() -> None:
    assert plain_source("arn:x").decode_item({"n": {"N": "1"}}) == {"n": 1}
