"""A Lambda function on a DynamoDB stream: keep per-author post counts, with partial batch
responses.

Deploy it with an event source mapping on the `posts` table's stream whose
`FunctionResponseTypes` include `ReportBatchItemFailures`. Each invocation decodes the batch
into `Record`s of `Post`, applies them in order, and stops at the first failure: the response
names the first record not done, so Lambda retries from exactly there (records before it are
not applied twice, records after it are not skipped).

The counts live in DynamoDB (`Count`), updated with `add`, which is not idempotent: a record
applied twice would count twice. Stopping at the first failure keeps each record applied once
as long as each update either happens or raises; for a guarantee across timeouts too, put a
per-record marker in the same transaction (see docs/streams.md, "Exactly once").

    python examples/lambda_handler.py       # runs one invocation against an embedded DynamoDB
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio

from adyn import Engine, F, HashKey, Model, RangeKey, batch_failures, lambda_records
from adyn.stream import Record
from adyn.testing import local_dynamodb


class Post(Model):
    class Meta:
        table_name = "posts"
        stream = "new_and_old"

    author: Annotated[str, HashKey()]
    id: Annotated[int, RangeKey()]
    title: str = ""


class Count(Model):
    class Meta:
        table_name = "post_counts"

    author: Annotated[str, HashKey()]
    posts: int = 0


async def apply(engine: Engine, record: Record[Post]) -> None:
    """One change of a post, as a change of its author's count."""
    delta = {"insert": 1, "remove": -1}.get(record.event, 0)
    if delta:
        author = record.key["author"]
        await engine.update(Count, key={"author": author}, actions=[F(Count.posts).add(delta)])


async def handle(engine: Engine, event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    records = lambda_records(event, Post)
    for record in records:
        try:
            await apply(engine, record)
        except Exception:
            break  # the rest of the batch comes again, from this record on
        record.done()
    return batch_failures(records)


_engine: Engine | None = None


def handler(event: dict[str, Any], context: object) -> dict[str, list[dict[str, str]]]:
    """The Lambda entry point: one engine per execution environment, reused across calls."""

    async def run() -> dict[str, list[dict[str, str]]]:
        global _engine
        if _engine is None:
            _engine = Engine()
            await _engine.open()
            await _engine.bind(Count, create=False)
        return await handle(_engine, event)

    return anyio.run(run)


def sample_event(table_arn: str) -> dict[str, Any]:
    """An event as Lambda delivers it: two new posts and one removal."""

    def record(seq: str, event: str, author: str, post: int) -> dict[str, Any]:
        image = {"author": {"S": author}, "id": {"N": str(post)}, "title": {"S": f"post {post}"}}
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": 1700000000,
            "Keys": {"author": {"S": author}, "id": {"N": str(post)}},
            "SequenceNumber": seq,
            "SizeBytes": 60,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        body["OldImage" if event == "REMOVE" else "NewImage"] = image
        return {
            "eventID": seq,
            "eventName": event,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": body,
            "eventSourceARN": f"{table_arn}/stream/2024-01-01T00:00:00.000",
        }

    return {
        "Records": [
            record("100", "INSERT", "ada", 1),
            record("200", "INSERT", "ada", 2),
            record("300", "REMOVE", "ada", 1),
        ]
    }


async def main() -> None:
    async with local_dynamodb() as endpoint_url, Engine(endpoint_url=endpoint_url) as engine:
        await engine.bind(Count)
        event = sample_event("arn:aws:dynamodb:eu-west-1:123456789012:table/posts")
        print(await handle(engine, event))
        print(await engine.get(Count, author="ada"))


if __name__ == "__main__":
    anyio.run(main)
