"""The stream coordinator against the fake streams service, on virtual time."""

from __future__ import annotations

import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.abc
import pytest

from _streams import (
    Post,
    Table,
    User,
    assert_item_order,
    assert_lineage_order,
    drain,
    open_stream,
    seqs,
)
from adyn.errors import DynamoError, InvalidArgument, InvalidItem, InvalidState, RecordsExpired
from adyn.stream import Pacing, Record, StreamSource
from adyn.stream._partitions import partition_of
from adyn.stream._position import decode_token
from adyn.stream._record import decode_record
from adyn.testing.fakes import FakeStreams, VirtualClock

Wire = dict[str, Any]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeStreams:
    return FakeStreams(clock, describe_page_size=1, empty_every=4)


# ---------------------------------------------------------------- order and discovery


async def test_trim_horizon_delivers_everything_parents_first_in_write_order(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    written = table.fill(40, keys=6)  # a backlog: the parents are still being read...
    children = fake.split(arn, children=2)
    written += table.fill(12, keys=6)  # ...when their children already hold records
    fake.split(arn, children[0], children=1)
    written += table.fill(12, keys=6)

    async with clock.autojump(), open_stream(fake, arn) as stream:
        records = await drain(stream)

    assert sorted(seqs(records), key=int) == sorted(written, key=int)
    assert_lineage_order(fake, arn, records)
    assert_item_order(records)


async def test_a_parent_read_before_its_children_are_listed_keeps_its_lineage(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    table.fill(3)
    fake.split(arn, children=2, list_after=1200)  # listed 20 minutes late
    written = table.fill(6)

    async with clock.autojump(), open_stream(fake, arn) as stream:
        first = await drain(stream, limit=3)
        describes = fake.requests["DescribeStream"]
        rest = await drain(stream, wait=1800)

    assert sorted(seqs(rest)) == sorted(written)
    assert_lineage_order(fake, arn, first + rest)
    assert len(first) == 3
    assert fake.requests["DescribeStream"] > describes + 3  # listed again, with backoff


async def test_shards_split_while_streaming_are_followed(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    delivered: list[Record] = []
    async with clock.autojump(), open_stream(fake, arn, position="latest") as stream:
        for round_ in range(4):
            table.fill(5)
            shard = fake.open_shards(arn)[0].shard_id
            fake.split(arn, shard, children=2 if round_ % 2 else 1, list_after=round_ * 20)
            delivered += await drain(stream, wait=200)
    assert len(delivered) == 20
    assert_lineage_order(fake, arn, delivered)
    assert_item_order(delivered)


# ---------------------------------------------------------------- positions and tokens


async def test_latest_starts_after_what_was_written(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    table.fill(4)
    fake.split(arn, children=2)
    table.fill(4)
    await clock.advance(600)
    async with clock.autojump(), open_stream(fake, arn, position="latest") as stream:
        assert await stream.next(timeout=30) is None
        later = table.fill(5)
        records = await drain(stream)
    assert sorted(seqs(records)) == sorted(later)


async def test_datetime_seeks_by_creation_time(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    table.fill(3)
    await clock.advance(3600)
    since = clock.utcnow()
    later = table.fill(3)
    async with clock.autojump(), open_stream(fake, arn, position=since) as stream:
        assert seqs(await drain(stream)) == later
    with pytest.raises(ValueError):
        open_stream(fake, arn, position=datetime(2024, 1, 1))  # naive


async def test_token_resumes_exactly_after_the_last_record(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    written = table.fill(10)
    async with clock.autojump():
        async with open_stream(fake, arn) as stream:
            first = await drain(stream, limit=4)
            token = stream.token
            await drain(stream, limit=2)  # received, but the token was taken before
        fake.split(arn, children=2)
        written += table.fill(6)
        assert json.loads(json.dumps(token)) == token
        async with open_stream(fake, arn, position=token) as stream:
            rest = await drain(stream)
    assert sorted(seqs(first) + seqs(rest)) == sorted(written)
    assert_item_order(first + rest)


async def test_a_token_on_latest_before_the_consumer_saw_anything(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    table.fill(2)
    await clock.advance(3600)
    async with clock.autojump():
        async with open_stream(fake, arn, position="latest") as stream:
            untouched = stream.token  # no record fetched yet
            fetched_later = table.fill(3)
            await clock.advance(30)  # pollers fetch, the consumer takes nothing
            fetched = stream.token
        async with open_stream(fake, arn, position=untouched) as stream:
            assert seqs(await drain(stream)) == fetched_later
        async with open_stream(fake, arn, position=fetched) as stream:
            assert seqs(await drain(stream)) == fetched_later
    assert json.loads(json.dumps(fetched)) == fetched


async def test_a_token_names_only_open_lineages(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    for _ in range(5):
        table.fill(3)
        fake.split(arn, children=1)
    table.fill(3)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        await drain(stream)
        entries = decode_token(stream.token).streams[arn]
    (open_shard,) = fake.open_shards(arn)
    assert list(entries) == [open_shard.shard_id]


async def test_positions_are_checked_when_the_stream_is_made(fake: FakeStreams) -> None:
    arn = fake.create_stream()
    for position in ("earliest", "e30=", 42):
        with pytest.raises((ValueError, TypeError)):
            open_stream(fake, arn, position=position)
    with pytest.raises(ValueError):
        open_stream(fake, arn, on_trim="ignore")


# ---------------------------------------------------------------- expiry and heartbeat


async def test_an_expired_iterator_is_reacquired_after_the_last_sequence_number(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    written = table.fill(9)
    async with open_stream(fake, arn) as stream:
        async with clock.autojump():
            first = await drain(stream, limit=4)
        await clock.jump(20 * 60)  # suspended: no heartbeat ran
        async with clock.autojump():
            rest = await drain(stream)
    assert seqs(first + rest) == written
    # The poller saw its iterator's age and took a fresh one before DynamoDB could refuse it.
    assert stream.stats.iterators_acquired >= 2
    kinds = [r["ShardIteratorType"] for _, op, r in fake.calls if op == "GetShardIterator"]
    assert kinds[0] == "TRIM_HORIZON"
    assert set(kinds[1:]) == {"AFTER_SEQUENCE_NUMBER"}


async def test_heartbeats_keep_iterators_alive_however_slow_the_consumer(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=3)
    table = Table(fake, arn)
    written = table.fill(60, keys=12)
    records: list[Record] = []
    async with open_stream(fake, arn) as stream:
        for _ in range(8):
            async with clock.autojump():
                records += await drain(stream, limit=2)
            await clock.advance(16 * 60)  # the consumer thinks for 16 minutes
        async with clock.autojump():
            records += await drain(stream)
    assert sorted(seqs(records)) == sorted(written)
    assert fake.errors["ExpiredIteratorException"] == 0
    assert stream.stats.iterators_refreshed > 0
    assert_item_order(records)


# ---------------------------------------------------------------- trimming


async def test_a_token_into_trimmed_records_raises_records_expired(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    table.fill(4)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        await drain(stream, limit=1)
        token = stream.token
    await clock.jump(25 * 3600)
    kept = table.fill(2)
    async with clock.autojump(), open_stream(fake, arn, position=token) as stream:
        with pytest.raises(RecordsExpired):
            await stream.next(timeout=60)
        with pytest.raises(RecordsExpired):  # the stream stays failed
            await stream.next(timeout=60)

    async with clock.autojump(), open_stream(fake, arn, position=token, on_trim="skip") as stream:
        assert seqs(await drain(stream)) == kept
    assert stream.stats.trimmed_gaps == 1


async def test_a_token_into_a_shard_that_is_gone(
    fake: FakeStreams, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    table.fill(4)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        await drain(stream, limit=1)
        token = stream.token
    fake.split(arn, children=1)
    table.fill(1)  # in the child, and trimmed with the rest
    await clock.jump(24 * 3600 + 60)
    kept = table.fill(1)
    with pytest.raises(RecordsExpired, match="no longer keeps"):
        async with open_stream(fake, arn, position=token):
            pass
    caplog.set_level(logging.WARNING, logger="adyn.stream")
    async with clock.autojump(), open_stream(fake, arn, position=token, on_trim="skip") as stream:
        assert seqs(await drain(stream)) == kept
    assert "skipping a gap" in caplog.text


async def test_records_trimmed_while_the_consumer_lags_raise(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    table.fill(30)
    async with open_stream(fake, arn) as stream:
        async with clock.autojump():
            await drain(stream, limit=1)
        await clock.jump(25 * 3600)
        async with clock.autojump():
            with pytest.raises(RecordsExpired):
                await drain(stream)


# ---------------------------------------------------------------- limits and throttling


async def test_throttling_is_retried_with_backoff(clock: VirtualClock) -> None:
    fake = FakeStreams(clock, describe_page_size=1)
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    written = table.fill(20)
    fake.fail("DescribeStream", "ThrottlingException", times=2)
    fake.fail("GetShardIterator", "LimitExceededException")
    fake.fail_every("GetRecords", 3)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        records = await drain(stream)
    assert sorted(seqs(records)) == sorted(written)
    assert stream.stats.throttled >= 5


async def test_get_records_limits_are_respected(clock: VirtualClock) -> None:
    fake = FakeStreams(clock)  # refuses a sixth GetRecords per second on a shard
    arn = fake.create_stream()
    written = Table(fake, arn).fill(600)
    pacing = Pacing(page_size=7, buffer=28)
    async with clock.autojump(), open_stream(fake, arn, pacing=pacing) as stream:
        records = await drain(stream)
    assert seqs(records) == written
    assert fake.errors["LimitExceededException"] == 0
    limits = [r["Limit"] for _, op, r in fake.calls if op == "GetRecords"]
    assert max(limits) == 7 and min(limits) >= 1


async def test_empty_pages_on_open_shards_back_off(clock: VirtualClock) -> None:
    fake = FakeStreams(clock)
    arn = fake.create_stream()
    pacing = Pacing(idle_interval=0.5, max_idle_interval=8.0)
    async with open_stream(fake, arn, pacing=pacing, position="latest"):
        await clock.advance(600)
    times = [t for t, op, _ in fake.calls if op == "GetRecords"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(gaps) == 8.0
    assert len(times) < 600 / 8 + 6


async def test_a_slow_consumer_holds_memory_bounded(clock: VirtualClock) -> None:
    fake = FakeStreams(clock)
    arn = fake.create_stream(shards=3)
    Table(fake, arn).fill(3000, keys=30)
    pacing = Pacing(page_size=10, buffer=2)
    async with open_stream(fake, arn, pacing=pacing) as stream:
        async with clock.autojump():
            got = await drain(stream, limit=5)
        await clock.advance(3600)
        fetched = stream.stats.records
    # the buffer, one page in each poller's hands, and the page being consumed
    assert fetched <= len(got) + (2 + 3 + 1) * 10


# ---------------------------------------------------------------- lifecycle


async def test_leaving_the_block_stops_every_task(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream(shards=2)
    Table(fake, arn).fill(50)
    async with open_stream(fake, arn) as stream, clock.autojump():
        await drain(stream, limit=1)
    calls = len(fake.calls)
    await clock.advance(3600)
    assert len(fake.calls) == calls
    assert clock.next_deadline() is None  # nobody sleeps: no task outlived the block
    assert await stream.next(timeout=1) is None


async def test_a_failure_in_a_poller_reaches_the_consumer_unwrapped(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    Table(fake, arn).fill(5)
    fake.fail("GetRecords", "AccessDeniedException")
    with pytest.raises(DynamoError) as caught:
        async with clock.autojump(), open_stream(fake, arn) as stream:
            async for _ in stream:
                pass
    assert caught.value.code == "AccessDeniedException"
    assert clock.next_deadline() is None


async def test_errors_and_cancellation_of_the_body_pass_through(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    Table(fake, arn).fill(5)
    with pytest.raises(KeyError):
        async with clock.autojump(), open_stream(fake, arn) as stream:
            await stream.next(timeout=10)
            raise KeyError("mine")
    with anyio.CancelScope() as scope:
        async with clock.autojump(), open_stream(fake, arn) as stream:
            scope.cancel()
            await stream.next(timeout=10_000)
            pytest.fail("not cancelled")  # pragma: no cover
    assert scope.cancelled_caught
    assert clock.next_deadline() is None


async def test_an_opening_failure_leaves_nothing_behind(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    stream = open_stream(fake, "arn:aws:dynamodb:us-east-1:0:table/gone/stream/1")
    with pytest.raises(DynamoError) as caught:
        async with stream:
            pass
    assert caught.value.code == "ResourceNotFoundException"
    with pytest.raises(InvalidState):
        await stream.__aenter__()
    with pytest.raises(InvalidState):
        await open_stream(fake, arn).next()


async def test_next_returns_none_when_nothing_arrives_in_time(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    table = Table(fake, arn)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        before = clock.now()
        assert await stream.next(timeout=42) is None
        assert clock.now() - before == 42
        seq = table.write("a")
        record = await stream.next(timeout=42)
        assert record is not None and record.sequence_number == seq


async def test_iteration_ends_when_the_stream_is_disabled(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=2)
    written = Table(fake, arn).fill(7)
    fake.disable(arn)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        records = [record async for record in stream]
    assert sorted(seqs(records)) == sorted(written)


async def test_move_to_repositions(fake: FakeStreams, clock: VirtualClock) -> None:
    arn = fake.create_stream()
    written = Table(fake, arn).fill(6)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        first = await drain(stream, limit=2)
        token = stream.token
        await drain(stream)
        await stream.move_to("trim_horizon")
        assert seqs(await drain(stream)) == written
        await stream.move_to(token)
        assert seqs(await drain(stream)) == written[2:]
        assert seqs(first) == written[:2]


async def test_move_to_wakes_a_consumer_waiting_in_another_task(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    written = Table(fake, arn).fill(3)
    got: list[Record] = []
    async with clock.autojump(), open_stream(fake, arn, position="latest") as stream:

        async def consume() -> None:
            record = await stream.next()
            assert record is not None
            got.append(record)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await clock.sleep(30)
            await stream.move_to("trim_horizon")
    assert seqs(got) == written[:1]


# ---------------------------------------------------------------- many tables, partitions


async def test_many_tables_merge_into_one_stream(fake: FakeStreams, clock: VirtualClock) -> None:
    posts = fake.create_stream("posts")
    users = fake.create_stream("users", shards=2)
    written = Table(fake, posts).fill(5) + Table(fake, users).fill(7)
    async with clock.autojump():
        async with open_stream(fake, posts, users, models=(Post, User)) as stream:
            records = await drain(stream, limit=8)
            token = stream.token
        async with open_stream(fake, users, posts, models=(User, Post), position=token) as s2:
            rest = await drain(s2)
    assert sorted(seqs(records + rest)) == sorted(written)
    assert {r.model for r in records + rest} == {Post, User}
    for record in records + rest:
        assert (record.model is Post) == (record.sequence_number in written[:5])


async def test_partitions_keep_each_item_in_one_worker(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=2)
    table = Table(fake, arn)
    written = table.fill(40, keys=10)
    fake.split(arn, children=2)
    written += table.fill(20, keys=10)
    seen: dict[int, list[Record]] = {0: [], 1: [], 2: []}

    async with clock.autojump(), open_stream(fake, arn) as stream:
        parts = stream.partitions(3)
        with pytest.raises(InvalidState):
            await stream.next()

        async def work(i: int, tg: anyio.abc.TaskGroup) -> None:
            async for record in parts[i]:
                seen[i].append(record)
                record.done()
                if sum(len(r) for r in seen.values()) == len(written):
                    tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(work, i, tg)
        token = stream.token

    delivered = list(itertools.chain(*seen.values()))
    assert sorted(seqs(delivered)) == sorted(written)
    for i, records in seen.items():
        assert all(partition_of(r, 3) == i for r in records)
        assert_item_order(records)
    keys_by_part = [{r.key["id"] for r in records} for records in seen.values()]
    assert sum(len(k) for k in keys_by_part) == 10  # no item in two partitions
    entries = {e.split("@")[0] for e in decode_token(token).streams[arn].values()}
    assert entries <= {"done"} | {f"after:{s}" for s in written}


async def test_with_partitions_the_token_covers_only_finished_records(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream()
    written = Table(fake, arn).fill(6, keys=6)
    async with clock.autojump():
        async with open_stream(fake, arn) as stream:
            (part,) = stream.partitions(1)
            records = [await part.__anext__() for _ in range(6)]
            for record in records[:2] + records[3:]:
                record.done()
            token = stream.token
        async with open_stream(fake, arn, position=token) as stream:
            rest = await drain(stream)
    assert seqs(rest) == written[2:]  # the third record was never finished


# ---------------------------------------------------------------- records


async def test_records_carry_event_key_images_and_ttl_flag(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(view_type="NEW_AND_OLD_IMAGES")
    keys_arn = fake.create_stream("k", view_type="KEYS_ONLY")
    table = Table(fake, arn)
    table.write("a")
    table.write("a")
    table.remove("a")
    table.write("b")
    table.remove("b", ttl=True)
    Table(fake, keys_arn).fill(1)
    async with clock.autojump(), open_stream(fake, arn) as stream:
        records = await drain(stream)
    assert [(r.event, r.expired) for r in records] == [
        ("insert", False),
        ("modify", False),
        ("remove", False),
        ("insert", False),
        ("remove", True),
    ]
    insert, modify, remove = records[:3]
    assert insert.key == {"id": "a"} and insert.new == {"id": "a", "n": 1} and insert.old is None
    assert (modify.new["n"], modify.old["n"]) == (2, 1)
    assert remove.new is None and remove.old == {"id": "a", "n": 2}
    assert insert.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert insert.model is Post and insert.shard_id == fake.shards(arn)[0].shard_id
    async with clock.autojump(), open_stream(fake, keys_arn) as stream:
        (only,) = await drain(stream)
    assert only.new is None and only.old is None and only.key == {"id": "k0"}


def test_decoding_accepts_the_slow_paths_shapes() -> None:
    seen: list[Wire] = []

    def remember(item: Wire) -> Wire:
        seen.append(item)
        return item

    source = StreamSource("arn:x", Post, "NEW_IMAGE", remember, lambda k: {"id": k["id"]["B"]})
    created = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    for stamp in (created, created.replace(tzinfo=None), created.timestamp()):
        raw = {
            "eventName": "REMOVE",
            "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
            "dynamodb": {
                "ApproximateCreationDateTime": stamp,
                "Keys": {"id": {"B": b"\x00\x01"}},
                "NewImage": {"id": {"B": b"\x00\x01"}},
                "SequenceNumber": "7",
            },
        }
        record = decode_record(raw, source, "shard-1")
        assert record.created_at == created
        assert record.key == {"id": b"\x00\x01"}
        assert record.expired is True
        assert record.created_at - created == timedelta(0)
    assert seen[0] == {"id": {"B": b"\x00\x01"}}
    with pytest.raises(InvalidItem, match="event name"):
        decode_record({**raw, "eventName": "UPSERT"}, source, "shard-1")


def test_tokens_reject_what_they_did_not_make() -> None:
    for bad in ("bm90IGpzb24", "eyJ2IjoyfQ", "eyJ2IjoxLCJzdHJlYW1zIjp7ImEiOnsicyI6MX19fQ"):
        with pytest.raises(ValueError):
            decode_token(bad)


async def test_a_timeout_that_is_no_number_is_refused(
    fake: FakeStreams, clock: VirtualClock
) -> None:
    arn = fake.create_stream(shards=1)
    async with open_stream(fake, arn) as stream:
        for timeout in ("1", [], True, -1):
            with pytest.raises(InvalidArgument, match="timeout"):
                await stream.next(timeout=timeout)  # type: ignore[arg-type]
