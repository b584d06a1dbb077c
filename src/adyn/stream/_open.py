"""How `engine.stream(...)` becomes a `Stream`: the engine's sources and calls, and a group's
lease table.

The engine hands over what it has (its calls, its bound tables, its table names, `bind`), so
this room never imports the engine. The lease table is an adyn model made for its name, so the
engine's `table_name_template` (a format string or a callable taking the model) names it like
any table, and `engine.bind` creates it when it is missing.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from ..errors import InvalidArgument
from ._clock import Clock
from ._group import GroupSpec
from ._leases import GROUP, KEY
from ._pacing import Pacing
from ._source import StreamSource
from ._stream import Stream

__all__ = ["lease_model", "open_stream"]

Wire = dict[str, Any]
# The engine's call: `call(operation, request, *, service=, idempotent=, sleep=)`, retried.
EngineCall = Callable[..., Awaitable[Wire]]


@functools.cache
def lease_model(table_name: str) -> type[Any]:
    """The adyn model of a lease table named `table_name` (made once per name)."""
    from ..model import HashKey, Model, RangeKey

    # An inner class, as pydantic recognises one (same module, qualified under the model).
    meta = type(
        "Meta",
        (),
        {"table_name": table_name, "__module__": __name__, "__qualname__": "LeaseTable.Meta"},
    )
    namespace = {
        "__module__": __name__,
        "__qualname__": "LeaseTable",
        "__doc__": f"The consumer-group lease table {table_name!r} (see adyn.stream._leases).",
        "__annotations__": {GROUP: Annotated[str, HashKey()], KEY: Annotated[str, RangeKey()]},
        "Meta": meta,
    }
    return type("LeaseTable", (Model,), namespace)


def open_stream(
    *,
    sources: Callable[[], Awaitable[Sequence[StreamSource]]],
    call: EngineCall,
    table_name: Callable[[type[Any]], str],
    bind: Callable[[type[Any]], Awaitable[None]],
    position: str | datetime,
    on_trim: Literal["raise", "skip"],
    group: str | None,
    lease_table: str,
    failover: float,
    commit_interval: float,
    clock: Clock | None,
    pacing: Pacing | None,
    observe: Callable[[datetime], None] | None = None,
    rng: random.Random | None = None,
) -> Stream[Any]:
    """The `Stream` of `engine.stream(...)`, over the tables' `sources`.

    Every call waits out its retries on the stream's clock (a test's virtual one too).
    """
    sleep = clock.sleep if clock is not None else None

    async def streams(operation: str, request: Wire) -> Wire:
        return await call(operation, request, service="dynamodbstreams", sleep=sleep)

    async def dynamodb(operation: str, request: Wire, idempotent: bool) -> Wire:
        return await call(operation, request, idempotent=idempotent, sleep=sleep)

    spec = None
    if group is not None:
        if not isinstance(lease_table, str) or not lease_table:
            raise InvalidArgument("lease_table must be a non-empty table name")
        model = lease_model(lease_table)
        spec = GroupSpec(
            name=group,
            table=table_name(model),
            call=dynamodb,
            ensure=lambda: bind(model),
            failover=failover,
            commit_interval=commit_interval,
        )
    return Stream(
        call=streams,
        sources=sources,
        position=position,
        on_trim=on_trim,
        clock=clock,
        pacing=pacing,
        rng=rng,
        group=spec,
        observe=observe,
    )
