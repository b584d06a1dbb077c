"""Sources: which streams a `Stream` reads for each table, oldest first.

`engine.stream(Post)` resolves Post's table to a `StreamSource`: the model, its decoders, the
stream view and the table's latest stream. A table whose stream was disabled and enabled again
has more than one stream, and DynamoDB keeps a disabled stream readable for 24 hours:
`stream_chain` lists them (ListStreams) so that the coordinator reads the previous stream of a
table to its end before its new one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._position import Origin

__all__ = ["StreamCall", "StreamSource", "stream_chain"]

Wire = dict[str, Any]
StreamCall = Callable[[str, Wire], Awaitable[Wire]]


@dataclass(frozen=True)
class StreamSource:
    """One table's stream, as the engine resolves it for `engine.stream(Model, ...)`.

    `decode_item` turns a wire image into a model object; `decode_key` turns wire `Keys` into
    `{field name: Python value}`. `table` names the table (None: read `stream_arn` alone, as a
    test may); `stream_arn` is its latest stream. `skip`, given a record's wire `Keys`, says the
    record is of an item that is no model object (a guard item of a `Unique()` field): such
    records are passed over. `route`, on a table shared by several entities, gives the source
    each record decodes with (its entity's model and decoders), or None for a record of an
    entity nobody asked for (passed over too).
    """

    stream_arn: str
    model: type
    view_type: str
    decode_item: Callable[[Wire], Any]
    decode_key: Callable[[Wire], dict[str, Any]]
    table: str | None = None
    skip: Callable[[Wire], bool] | None = None
    route: Callable[[Wire], StreamSource | None] | None = None


async def list_streams(call: StreamCall, table: str) -> list[tuple[str, str]]:
    """Every stream DynamoDB still keeps for `table`, as (label, arn), oldest first."""
    found: list[tuple[str, str]] = []
    request: Wire = {"TableName": table, "Limit": 100}
    while True:
        response = await call("ListStreams", request)
        for entry in response.get("Streams") or ():
            if entry.get("TableName", table) == table and entry.get("StreamArn"):
                found.append((str(entry.get("StreamLabel") or ""), entry["StreamArn"]))
        last = response.get("LastEvaluatedStreamArn")
        if not last:
            break
        request = {**request, "ExclusiveStartStreamArn": last}
    found.sort()
    return found


async def stream_chain(
    call: StreamCall, source: StreamSource, origin: Origin
) -> tuple[list[str], list[str]]:
    """The streams of `source`'s table to read, oldest first, and those a token names that
    DynamoDB no longer keeps.

    - "latest": the latest stream only;
    - "trim_horizon" or a time: every stream DynamoDB keeps;
    - a token: from the oldest stream it names that is still kept, every later one.
    """
    latest = source.stream_arn
    if source.table is None or origin.kind == "latest":
        return [latest], []
    listed = [arn for _, arn in await list_streams(call, source.table)]
    if latest not in listed:
        listed.append(latest)
    named: Mapping[str, Mapping[str, str]] = origin.streams if origin.kind == "token" else {}
    if origin.kind != "token":
        return listed, []
    table_arns = [arn for arn in named if _same_table(arn, latest)]
    gone = [arn for arn in table_arns if arn not in listed]
    kept = [arn for arn in table_arns if arn in listed]
    if not kept:
        return (listed if gone else [latest]), gone
    first = min(listed.index(arn) for arn in kept)
    return listed[first:], gone


def _same_table(arn: str, other: str) -> bool:
    """Stream ARNs of one table share everything before "/stream/"."""
    return arn.split("/stream/", 1)[0] == other.split("/stream/", 1)[0]
