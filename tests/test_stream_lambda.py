"""`adyn.lambda_records` and `adyn.batch_failures` on the event shapes AWS documents.

The first event is the example of the Lambda developer guide ("Using AWS Lambda with Amazon
DynamoDB"), the TTL deletion is the record of the DynamoDB developer guide ("DynamoDB Streams
and Time to Live"): Lambda spells `userIdentity` with `type` / `principalId`, names the stream
with `eventSourceARN`, and sends no shard id.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Annotated, Any

import pytest

import adyn
from adyn import (
    Engine,
    HashKey,
    InvalidArgument,
    InvalidItem,
    Model,
    batch_failures,
    lambda_records,
)
from test_examples import load_example

ARN = "arn:aws:dynamodb:us-west-2:111122223333:table/TestTable/stream/2015-05-11T21:21:33.291"

DOCUMENTED_EVENT: dict[str, Any] = {
    "Records": [
        {
            "eventID": "1",
            "eventVersion": "1.0",
            "dynamodb": {
                "Keys": {"Id": {"N": "101"}},
                "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                "StreamViewType": "NEW_AND_OLD_IMAGES",
                "SequenceNumber": "111",
                "SizeBytes": 26,
            },
            "awsRegion": "us-west-2",
            "eventName": "INSERT",
            "eventSourceARN": ARN,
            "eventSource": "aws:dynamodb",
        },
        {
            "eventID": "2",
            "eventVersion": "1.0",
            "dynamodb": {
                "OldImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                "SequenceNumber": "222",
                "Keys": {"Id": {"N": "101"}},
                "SizeBytes": 59,
                "NewImage": {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}},
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "awsRegion": "us-west-2",
            "eventName": "MODIFY",
            "eventSourceARN": ARN,
            "eventSource": "aws:dynamodb",
        },
        {
            "eventID": "3",
            "eventVersion": "1.0",
            "dynamodb": {
                "Keys": {"Id": {"N": "101"}},
                "SizeBytes": 38,
                "SequenceNumber": "333",
                "OldImage": {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}},
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "awsRegion": "us-west-2",
            "eventName": "REMOVE",
            "eventSourceARN": ARN,
            "eventSource": "aws:dynamodb",
        },
    ]
}

TTL_DELETION: dict[str, Any] = {
    "eventID": "4",
    "eventName": "REMOVE",
    "eventVersion": "1.1",
    "eventSource": "aws:dynamodb",
    "awsRegion": "us-west-2",
    "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    "dynamodb": {
        "ApproximateCreationDateTime": 1700000000.0,
        "Keys": {"Id": {"N": "102"}},
        "OldImage": {"Message": {"S": "expiring"}, "Id": {"N": "102"}, "Blob": {"B": "AAH/"}},
        "SequenceNumber": "444",
        "SizeBytes": 40,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    },
    "eventSourceARN": ARN,
}


class TestItem(Model):
    __test__ = False  # not a pytest test class

    class Meta:
        table_name = "TestTable"
        stream = "new_and_old"

    Id: Annotated[int, HashKey()]
    Message: str
    Blob: bytes = b""


class Other(Model):
    class Meta:
        table_name = "Other"

    name: Annotated[str, HashKey()]


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [copy.deepcopy(r) for r in records]}


def test_the_documented_event_becomes_records_of_the_model() -> None:
    insert, modify, remove = lambda_records(DOCUMENTED_EVENT, TestItem)
    assert [r.event for r in (insert, modify, remove)] == ["insert", "modify", "remove"]
    assert insert.key == {"Id": 101} and insert.model is TestItem
    assert insert.new == TestItem(Id=101, Message="New item!") and insert.old is None
    assert (modify.old, modify.new) == (
        TestItem(Id=101, Message="New item!"),
        TestItem(Id=101, Message="This item has changed"),
    )
    assert remove.new is None and remove.old is not None
    assert [r.sequence_number for r in (insert, modify, remove)] == ["111", "222", "333"]
    assert not any(r.expired for r in (insert, modify, remove))
    assert insert.lease_epoch is None


def test_a_ttl_deletion_is_marked_expired_and_binary_values_decode() -> None:
    (record,) = lambda_records(event(TTL_DELETION), TestItem)
    assert record.event == "remove" and record.expired
    assert record.old == TestItem(Id=102, Message="expiring", Blob=base64.b64decode("AAH/"))
    assert record.created_at == datetime.fromtimestamp(1700000000, UTC)


def test_batch_failures_name_the_first_record_not_done_per_stream() -> None:
    other_stream = ARN.replace("2015-05-11", "2016-01-01")
    later = copy.deepcopy(TTL_DELETION)
    later["eventSourceARN"] = other_stream
    records = lambda_records(event(*DOCUMENTED_EVENT["Records"], later), TestItem)
    assert batch_failures(records) == {
        "batchItemFailures": [{"itemIdentifier": "111"}, {"itemIdentifier": "444"}]
    }
    records[0].done()
    records[2].done()  # done out of order: 222 is still the first not done
    assert batch_failures(records) == {
        "batchItemFailures": [{"itemIdentifier": "222"}, {"itemIdentifier": "444"}]
    }
    for record in records:
        record.done()
    assert batch_failures(records) == {"batchItemFailures": []}


def test_models_are_picked_by_the_events_table() -> None:
    other = {
        "eventID": "9",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"name": {"S": "x"}},
            "NewImage": {"name": {"S": "x"}},
            "SequenceNumber": "999",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-west-2:111122223333:table/prod-Other/stream/1",
    }
    records = lambda_records(
        event(DOCUMENTED_EVENT["Records"][0], {**other}),
        Other,
        TestItem,
        table_name_template=lambda model: "prod-Other" if model is Other else "TestTable",
    )
    assert [r.model for r in records] == [TestItem, Other]
    with pytest.raises(InvalidArgument, match="prod-Other"):
        lambda_records(event(other), TestItem, Other)


def test_bad_events_are_refused_clearly() -> None:
    with pytest.raises(InvalidArgument):
        lambda_records({"body": "{}"}, TestItem)
    with pytest.raises(InvalidArgument):
        lambda_records(DOCUMENTED_EVENT)
    kinesis = {"eventSource": "aws:kinesis", "kinesis": {}}
    with pytest.raises(InvalidArgument, match="aws:kinesis"):
        lambda_records(event(kinesis), TestItem)
    broken = copy.deepcopy(DOCUMENTED_EVENT["Records"][0])
    broken["dynamodb"]["NewImage"]["Id"] = {"S": "not a number"}
    with pytest.raises(InvalidItem, match="stream record 111"):
        lambda_records(event(broken), TestItem)
    with pytest.raises(InvalidArgument):
        batch_failures([object()])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument):
        batch_failures(None)  # type: ignore[arg-type]
    no_body = {k: v for k, v in DOCUMENTED_EVENT["Records"][0].items() if k != "dynamodb"}
    with pytest.raises(InvalidArgument, match="not a DynamoDB-stream record"):
        lambda_records(event(no_body), TestItem)
    assert adyn.lambda_records is lambda_records


# ---------------------------------------------------------------- the example handler


@pytest.fixture
def handler_example() -> Iterator[ModuleType]:
    yield from load_example("lambda_handler")


async def test_the_example_handler_retries_from_the_first_failure(
    handler_example: ModuleType, moto_endpoint: str
) -> None:
    Count = handler_example.Count
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/posts"
    async with Engine(endpoint_url=moto_endpoint, table_name_template="lambda-{table_name}") as e:
        await e.bind(Count)
        calls = 0
        original = handler_example.apply

        async def flaky(engine: Engine, record: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise RuntimeError("the index is briefly down")
            await original(engine, record)

        handler_example.apply = flaky
        try:
            first = await handler_example.handle(e, handler_example.sample_event(arn))
            assert first == {"batchItemFailures": [{"itemIdentifier": "200"}]}
            # Lambda sends the batch again from the failed record on.
            retry = handler_example.sample_event(arn)
            retry["Records"] = retry["Records"][1:]
            assert await handler_example.handle(e, retry) == {"batchItemFailures": []}
        finally:
            handler_example.apply = original
        count = await e.get(Count, author="ada")
    assert count is not None and count.posts == 1  # +1 +1 -1, each applied once


def test_a_shared_tables_records_come_as_their_entities() -> None:
    from test_entities_stream import Buyer, Sale

    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/stream_store/stream/1"

    def insert(seq: str, image: dict[str, Any]) -> dict[str, Any]:
        keys = {"pk": image["pk"], "sk": image["sk"]}
        return {
            "eventID": seq,
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "eventSourceARN": arn,
            "dynamodb": {
                "Keys": keys,
                "NewImage": image,
                "SequenceNumber": seq,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        }

    buyer = {"pk": {"S": "BUYER#b1"}, "sk": {"S": "PROFILE"}, "kind": {"S": "Buyer"}}
    buyer |= {"id": {"S": "b1"}, "name": {"S": "Bo"}}
    sale = {"pk": {"S": "BUYER#b1"}, "sk": {"S": "SALE#0001"}, "kind": {"S": "Sale"}}
    sale |= {"buyer": {"S": "b1"}, "n": {"N": "1"}, "amount": {"N": "5"}}
    event = {"Records": [insert("1", buyer), insert("2", sale)]}
    records = lambda_records(event, Buyer, Sale)
    assert [r.model for r in records] == [Buyer, Sale]
    assert records[1].new == Sale(buyer="b1", n=1, amount=5)
    only_sales = lambda_records(event, Sale)  # the entities not asked for are passed over
    assert [r.sequence_number for r in only_sales] == ["2"]
