"""`Engine`: the async entry point. Lifecycle, bind, and single-item reads and writes."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from . import _bind
from ._concurrency import run_bounded
from ._transport import RetryPolicy, Transport
from ._writes import WritePlan, plan_delete, plan_save, plan_update, set_state
from .errors import ConstraintViolation, DynamoError, EngineClosed, NotBound
from .expressions import Action, Condition
from .model import Model, _Index
from .schema import ItemState, ModelSchema, schema_of

if TYPE_CHECKING:
    from .batch import Batch
    from .query import Query, Scan
    from .stream import Clock, Pacing, Stream
    from .transactions import ReadTransaction, WriteTransaction

__all__ = ["Engine"]

M = TypeVar("M", bound=Model)
Wire = dict[str, Any]
Projection = Literal["all", "keys", "count"] | Sequence[Any]


class Engine:
    """Talks to DynamoDB for your models. Open it with `async with Engine(...) as engine`.

    - `region_name`, `endpoint_url`, `session` (an aiobotocore session): where and as whom to
      connect; otherwise the standard AWS environment and config files decide (including
      `AWS_ENDPOINT_URL_DYNAMODB`). A loopback `endpoint_url` with no credentials configured
      uses placeholder credentials, as local servers accept any.
    - `table_name_template`: a format string with `{table_name}` (e.g. "prod-{table_name}") or a
      callable taking the model class and returning the table name.
    - `retry`: a `RetryPolicy` for throttling, 5xx answers and dropped connections.
    - `fast_path`: send data-plane calls without botocore's serialisation and parsing (default).
    - `max_connections`: the HTTP connection pool, and the bound on concurrent calls a single
      `save(*objs)`, `load(...)` or batch sends at once.

    One engine is meant to be shared by every task of a service.
    """

    def __init__(
        self,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        session: AioSession | None = None,
        table_name_template: str | Callable[[type[Model]], str] = "{table_name}",
        *,
        retry: RetryPolicy | None = None,
        fast_path: bool = True,
        max_connections: int = 64,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        config: AioConfig | None = None,
    ) -> None:
        credentials = {
            k: v
            for k, v in {
                "aws_access_key_id": aws_access_key_id,
                "aws_secret_access_key": aws_secret_access_key,
                "aws_session_token": aws_session_token,
            }.items()
            if v is not None
        }
        if endpoint_url is None:
            endpoint_url = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get(
                "AWS_ENDPOINT_URL"
            )
        self._transport = Transport(
            region_name=region_name,
            endpoint_url=endpoint_url,
            session=session,
            retry=retry,
            fast_path=fast_path,
            max_connections=max_connections,
            credentials=credentials,
            config=config,
        )
        self.endpoint_url = endpoint_url
        self.table_name_template = table_name_template
        self.max_connections = max_connections
        self._tables: dict[type[Model], str] = {}
        self._opened = False

    def __repr__(self) -> str:
        state = "closed" if self._transport.closed else ("open" if self._opened else "new")
        return f"<Engine endpoint={self.endpoint_url!r} {state}>"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the aiobotocore clients (`async with` does this for you)."""
        if self._transport.closed:
            raise EngineClosed("this engine was closed; create a new Engine")
        await self._transport.open()
        self._opened = True

    async def close(self) -> None:
        """Close every client; the engine cannot be used afterwards."""
        await self._transport.close()

    @property
    def transport(self) -> Transport:
        return self._transport

    def _check_open(self) -> None:
        if self._transport.closed:
            raise EngineClosed("the engine is closed; open a new one with `async with Engine(...)`")
        if not self._opened:
            raise EngineClosed("the engine is not open; use `async with Engine(...) as engine`")

    # ------------------------------------------------------------------ tables

    def table_name(self, model: type[Model]) -> str:
        """The table name this engine uses for a model (after the template)."""
        schema = schema_of(model)
        template = self.table_name_template
        if callable(template):
            return template(model)
        return template.format(table_name=schema.table_name)

    async def bind(self, *models: type[Model], create: bool = True) -> None:
        """Create each model's table when missing (and wait until it is ACTIVE, then enable
        TTL), or verify the live table; raise `TableMismatch` listing every difference."""
        self._check_open()
        by_table: dict[str, list[ModelSchema]] = defaultdict(list)
        for model in models:
            schema = schema_of(model)
            by_table[self.table_name(model)].append(schema)

        async def one(entry: tuple[str, list[ModelSchema]]) -> None:
            table, schemas = entry
            await _bind.bind_table(self._transport, table, schemas, create)
            for schema in schemas:
                self._tables[schema.model] = table

        await run_bounded(list(by_table.items()), one, 8)

    def _bound(self, model: Any) -> tuple[ModelSchema, str]:
        self._check_open()
        try:
            schema = schema_of(model)
        except TypeError:
            raise TypeError(f"{model!r} is not a concrete adyn Model class") from None
        table = self._tables.get(schema.model)
        if table is None:
            name = schema.name
            raise NotBound(f"{name} is not bound to this engine: call `await engine.bind({name})`")
        return schema, table

    # ------------------------------------------------------------------ items

    async def _send_write(self, operation: str, plan: WritePlan, schema: ModelSchema) -> Wire:
        if not plan.request:  # nothing changed: nothing to send
            return {}
        try:
            response = await self._transport.call(
                operation, plan.request, idempotent=plan.idempotent
            )
        except DynamoError as exc:
            if exc.code == "ConditionalCheckFailedException":
                what = plan.obj
                if what is None:  # update(): name the item by its key, as Python values
                    what = schema.decode_key(plan.request.get("Key") or {})
                key = _describe_key(schema, plan.request.get("Key"))
                raise ConstraintViolation(
                    f"{schema.name}: the condition of {operation} failed for {key}",
                    what,
                    schema.decode_returned(exc.response.get("Item")),
                ) from None
            raise
        plan.done()
        return response

    async def save(
        self, *objs: Model, condition: Condition | None = None, atomic: bool = False
    ) -> None:
        """Write objects (UpdateItem of the fields that changed); several are sent concurrently.

        `condition`: a condition the stored item must meet. `atomic=True`: only if the stored
        item is unchanged since it was loaded (new objects: only if none exists). Every object
        is checked before anything is sent.
        """
        plans = []
        for obj in objs:
            schema, table = self._bound(type(obj))
            plans.append((schema, plan_save(schema, table, obj, condition, atomic)))

        async def one(entry: tuple[ModelSchema, WritePlan]) -> None:
            schema, plan = entry
            await self._send_write("UpdateItem", plan, schema)

        await run_bounded(plans, one, self.max_connections)

    async def delete(
        self, *objs: Model, condition: Condition | None = None, atomic: bool = False
    ) -> None:
        """Delete the items of objects (by key); several are sent concurrently."""
        plans = []
        for obj in objs:
            schema, table = self._bound(type(obj))
            plans.append((schema, plan_delete(schema, table, obj, condition, atomic)))

        async def one(entry: tuple[ModelSchema, WritePlan]) -> None:
            schema, plan = entry
            await self._send_write("DeleteItem", plan, schema)

        await run_bounded(plans, one, self.max_connections)

    async def get(self, model: type[M], *, consistent: bool = False, **key: Any) -> M | None:
        """The object stored under a key, or None: `await engine.get(Post, forum=..., id=...)`."""
        schema, table = self._bound(model)
        request: Wire = {"TableName": table, "Key": schema.key_from_values(key)}
        if consistent:
            request["ConsistentRead"] = True
        response = await self._transport.call("GetItem", request)
        item = response.get("Item")
        if item is None:
            return None
        obj: M = schema.decode_item(item)
        return obj

    async def update(
        self,
        model: type[M],
        key: dict[str, Any],
        actions: Sequence[Action],
        condition: Condition | None = None,
    ) -> M:
        """Apply update actions to one item and return the item as it is afterwards."""
        schema, table = self._bound(model)
        plan = plan_update(schema, table, key, actions, condition)
        plan.request["ReturnValues"] = "ALL_NEW"
        response = await self._send_write("UpdateItem", plan, schema)
        obj: M = schema.decode_item(response.get("Attributes") or {})
        return obj

    async def load(self, *objs: Model, consistent: bool = False) -> None:
        """Fill objects from their stored items by key (BatchGetItem, 100 keys a request).

        Raises `MissingObjects` naming every object that has no item.
        """
        from .batch import load_objects

        await load_objects(self, objs, consistent)

    # ------------------------------------------------------------------ searches

    def query(
        self,
        model: type[M] | _Index,
        key: Condition,
        *,
        filter: Condition | None = None,
        projection: Projection = "all",
        consistent: bool = False,
        forward: bool = True,
        limit: int | None = None,
        page_size: int | None = None,
        start: str | None = None,
    ) -> Query[M]:
        """A lazy query on a table or an index (`Post.by_user`); iterate it with `async for`."""
        from .query import Query

        return Query(
            self,
            model,
            key=key,
            filter=filter,
            projection=projection,
            consistent=consistent,
            forward=forward,
            limit=limit,
            page_size=page_size,
            start=start,
        )

    def scan(
        self,
        model: type[M] | _Index,
        *,
        filter: Condition | None = None,
        projection: Projection = "all",
        consistent: bool = False,
        limit: int | None = None,
        page_size: int | None = None,
        start: str | None = None,
        segments: int | None = None,
    ) -> Scan[M]:
        """A lazy scan; `segments=N` runs a parallel scan merged into one iterator."""
        from .query import Scan

        return Scan(
            self,
            model,
            filter=filter,
            projection=projection,
            consistent=consistent,
            limit=limit,
            page_size=page_size,
            start=start,
            segments=segments,
        )

    # ------------------------------------------------------------------ batches, transactions

    def batch(self) -> Batch:
        """`async with engine.batch() as b: b.save(x); b.delete(y)`: BatchWriteItem."""
        from .batch import Batch

        self._check_open()
        return Batch(self)

    def transaction(self, mode: Literal["w", "r"] = "w") -> WriteTransaction | ReadTransaction:
        """`async with engine.transaction() as tx:` (writes) or `transaction(mode="r")` (reads)."""
        from .transactions import ReadTransaction, WriteTransaction

        self._check_open()
        if mode == "w":
            return WriteTransaction(self)
        if mode == "r":
            return ReadTransaction(self)
        raise ValueError(f"transaction mode must be 'w' or 'r', not {mode!r}")

    # ------------------------------------------------------------------ streams

    def stream(
        self,
        *models: type[M],
        position: str | datetime = "latest",
        on_trim: Literal["raise", "skip"] = "raise",
        group: str | None = None,
        lease_table: str = "adyn-leases",
        failover: float = 30.0,
        commit_interval: float = 10.0,
        clock: Clock | None = None,
        pacing: Pacing | None = None,
    ) -> Stream[M]:
        """`async with engine.stream(Post, position="trim_horizon") as stream:` (see docs).

        With `group=`, the stream is one member of a consumer group whose leases and
        checkpoints live in `lease_table` (created when missing); `clock` and `pacing` are for
        tests (`adyn.testing.VirtualClock`) and tuning.
        """
        from .stream._open import open_stream

        if not models:
            raise TypeError("stream() needs at least one model")
        transport = self._transport

        async def describe(table: str) -> Wire | None:
            return await _bind.describe(transport, table)

        async def dynamodb(operation: str, request: Wire, idempotent: bool) -> Wire:
            return await transport.call(operation, request, idempotent=idempotent)

        return open_stream(
            bound=[self._bound(m) for m in models],
            describe=describe,
            streams=transport.streams,
            dynamodb=dynamodb,
            table_name=self.table_name,
            bind=self.bind,
            position=position,
            on_trim=on_trim,
            group=group,
            lease_table=lease_table,
            failover=failover,
            commit_interval=commit_interval,
            clock=clock,
            pacing=pacing,
        )


def _describe_key(schema: ModelSchema, key: Wire | None) -> str:
    if not key:
        return "(no key)"
    try:
        values = schema.decode_key(key)
    except Exception:
        return "(key)"
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def mark_loaded(obj: Model, item: Wire) -> None:
    set_state(obj, ItemState(item, None))
