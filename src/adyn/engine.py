"""`Engine`: the async entry point. Lifecycle, bind, and single-item reads and writes."""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from . import _bind
from ._calls import Caller
from ._concurrency import run_bounded
from ._context import Context
from ._entities import stream_router
from ._http import DEFAULT_MAX_CONNECTIONS, HTTPTransport
from ._unique import is_guard, is_guard_key
from ._writes import WritePlan, plan_delete, plan_save, plan_update, unique_known
from .batch import Batch, fill, load_objects
from .errors import (
    ConditionalCheckFailedError,
    ConstraintViolation,
    EngineClosed,
    InvalidArgument,
    InvalidModel,
    NotBound,
    StreamNotEnabled,
)
from .events import CallEvent, ConsumedCapacity
from .expressions import Action, Condition, Renderer, render_projection
from .model import Model, _Index
from .query import Query, Scan
from .retry import RetryPolicy
from .schema import FieldSpec, ModelSchema, schema_of
from .transactions import ReadTransaction, WriteTransaction, write_with_guards
from .transport import Transport

if TYPE_CHECKING:
    from os import PathLike

    from aiobotocore.session import AioSession

    from .backfill import BackfillProgress, BackfillReport
    from .batch import BatchProgress
    from .stream import Clock, Pacing, Stream

__all__ = ["Engine"]

M = TypeVar("M", bound=Model)
Wire = dict[str, Any]
Projection = Literal["all", "keys", "count"] | Sequence[Any]
Listener = Callable[[CallEvent], object]


class Engine:
    """Talks to DynamoDB for your models. Open it with `async with Engine(...) as engine`.

    - `region_name`, `endpoint_url`, `session` (an aiobotocore session): where and as whom to
      connect; otherwise the standard AWS environment and config files decide (including
      `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`); `aws_access_key_id`,
      `aws_secret_access_key`, `aws_session_token`: static credentials that win over the
      session's chain. A loopback `endpoint_url` with no credentials configured uses
      placeholder credentials, as local servers accept any.
    - `table_name_template`: a format string with `{table_name}` (e.g. "prod-{table_name}") or a
      callable taking the model class and returning the table name.
    - `transport`: any `adyn.Transport` (one attempt per call); without one the engine builds
      its default from the options above.
    - `retry`: a `RetryPolicy` for throttling, 5xx answers and dropped connections.
    - `connect_timeout` / `read_timeout`: seconds the default transport waits for a connection
      and for an answer (an answer that does not come in time may still have been applied).
    - `max_connections` (128): the one concurrency limit: calls in flight at once (first come, first
      served beyond it), the HTTP connection pool, and the requests one `save(*objs)`,
      `load(...)`, batch or parallel scan sends at once.
    - `listeners`: callables receiving a `CallEvent` after every call (`engine.listeners` is the
      live list); `consumed_capacity=True` asks DynamoDB for consumed capacity on every call
      that supports it (`engine.consumed()`).

    One engine is meant to be shared by every task of a service.
    """

    def __init__(
        self,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        session: AioSession | None = None,
        table_name_template: str | Callable[[type[Model]], str] = "{table_name}",
        *,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        listeners: Sequence[Listener] = (),
        consumed_capacity: bool = False,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
    ) -> None:
        _check_template(table_name_template)
        if (
            not isinstance(max_connections, int)
            or isinstance(max_connections, bool)
            or (max_connections < 1)
        ):
            raise InvalidArgument(f"max_connections must be an int >= 1, not {max_connections!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidArgument(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        if transport is not None and not callable(getattr(transport, "call", None)):
            raise InvalidArgument(
                f"transport must have an async call(service, operation, request, *, idempotent)"
                f" method; {type(transport).__name__} has none"
            )
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidArgument(f"{name} must be a number of seconds > 0, not {value!r}")
        if not isinstance(listeners, list | tuple):
            raise InvalidArgument(f"listeners must be a list of callables, not {listeners!r}")
        for listener in listeners:
            if not callable(listener):
                raise InvalidArgument(f"listeners must be callables, not {listener!r}")
        if transport is None:
            transport = HTTPTransport(
                region_name=region_name,
                endpoint_url=endpoint_url,
                session=session,
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
                max_connections=max_connections,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            )
        self._transport: Transport = transport
        self.endpoint_url = endpoint_url
        self.table_name_template = table_name_template
        self.max_connections = max_connections
        self.listeners: list[Listener] = list(listeners)
        self._caller = Caller(
            transport,
            retry=retry or RetryPolicy(),
            limit=max_connections,
            listeners=self.listeners,
            consumed_capacity=bool(consumed_capacity),
        )
        self._ctx = Context(
            bound=self._bound,
            caller=self._caller,
            limit=max_connections,
            table_name=self.table_name,
        )
        self._tables: dict[type[Model], str] = {}
        self._state: Literal["new", "open", "closed"] = "new"
        # set by adyn.telemetry: told the creation time of every stream record delivered
        self._on_record: Callable[[datetime], None] | None = None

    def __repr__(self) -> str:
        return f"<Engine endpoint={self.endpoint_url!r} {self._state}>"

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
        """Open the transport (`async with` does this for you)."""
        if self._state == "closed":
            raise EngineClosed("this engine was closed; create a new Engine")
        if self._state == "open":
            return
        opener = getattr(self._transport, "open", None)
        if opener is not None:
            await opener()
        self._state = "open"

    async def close(self) -> None:
        """Close the engine: calls in flight run to their end (each reports its true outcome),
        no new call or retry starts, then the transport closes."""
        if self._state == "closed":
            return
        was_open = self._state == "open"
        self._state = "closed"
        await self._caller.close()
        closer = getattr(self._transport, "close", None)
        if closer is not None and was_open:
            await closer()

    @property
    def transport(self) -> Transport:
        """The transport this engine sends through (one attempt per call, no retries)."""
        return self._transport

    @property
    def retry(self) -> RetryPolicy:
        """The engine's retry policy."""
        return self._caller.retry

    def consumed(self) -> Mapping[str, ConsumedCapacity]:
        """Capacity consumed so far, per table name (needs `consumed_capacity=True`)."""
        return self._caller.consumed()

    def _check_open(self) -> None:
        if self._state == "closed":
            raise EngineClosed("the engine is closed; open a new one with `async with Engine(...)`")
        if self._state == "new":
            raise EngineClosed("the engine is not open; use `async with Engine(...) as engine`")

    # ------------------------------------------------------------------ tables

    def table_name(self, model: type[Model]) -> str:
        """The table name this engine uses for a model (after the template)."""
        schema = _schema(model)
        template = self.table_name_template
        if callable(template):
            name = template(model)
            if not isinstance(name, str) or not name:
                raise InvalidArgument(
                    f"table_name_template returned {name!r} for {schema.name}; it must return a"
                    " table name (str)"
                )
            return name
        return template.format(table_name=schema.table_name)

    async def bind(self, *models: type[Model], create: bool = True) -> None:
        """Create each model's table when missing (and wait until it is ACTIVE, then enable
        TTL), or verify the live table; raise `TableMismatch` listing every difference."""
        self._check_open()
        if not models:
            raise InvalidArgument("bind() needs at least one model")
        by_table: dict[str, list[ModelSchema]] = defaultdict(list)
        for model in models:
            schema = _schema(model)
            # a shared table's models are bound together: the table model and every entity
            members = [schema] if schema.family is None else schema.family.members
            for member in members:
                table = self.table_name(member.model)
                if member not in by_table[table]:
                    by_table[table].append(member)
        for table, schemas in by_table.items():
            bound = [schema_of(m) for m, t in self._tables.items() if t == table]
            _check_shared_table(table, [*schemas, *(s for s in bound if s not in schemas)])

        async def one(entry: tuple[str, list[ModelSchema]]) -> None:
            table, schemas = entry
            await _bind.bind_table(self._ctx, table, schemas, create)
            for schema in schemas:
                self._tables[schema.model] = table

        await run_bounded(list(by_table.items()), one, 8)

    def _bound(self, model: Any) -> tuple[ModelSchema, str]:
        self._check_open()
        schema = _schema(model)
        table = self._tables.get(schema.model)
        if table is None and schema.family is not None:  # an entity made after its table's bind
            for member in schema.family.members:
                table = self._tables.get(member.model)
                if table is not None:
                    self._tables[schema.model] = table
                    break
        if table is None:
            name = schema.name
            raise NotBound(f"{name} is not bound to this engine: call `await engine.bind({name})`")
        return schema, table

    # ------------------------------------------------------------------ items

    async def _send_write(self, operation: str, plan: WritePlan, schema: ModelSchema) -> Wire:
        if not plan.request:  # nothing changed: nothing to send
            return {}
        try:
            response = await self._caller.call(
                operation,
                plan.request,
                idempotent=plan.idempotent,
                model=schema.model,
                table=plan.request.get("TableName"),
            )
        except ConditionalCheckFailedError as exc:
            what = plan.obj
            if what is None:  # update(): name the item by its key, as Python values
                what = schema.decode_key(plan.request.get("Key") or {})
            key = _describe_key(schema, plan.request.get("Key"))
            raise ConstraintViolation(
                f"{schema.name}: the condition of {operation} failed for {key}",
                what,
                schema.decode_returned(exc.response.get("Item")),
            ) from None
        plan.done()
        return response

    async def save(
        self, *objs: Model, condition: Condition | bool | None = None, atomic: bool = False
    ) -> None:
        """Write objects (UpdateItem of the fields that changed); several are sent concurrently.

        `condition`: a condition the stored item must meet. `atomic=True`: only if the stored
        item is unchanged since it was loaded (new objects: only if none exists). Every object
        is checked before anything is sent.
        """
        plans = []
        for obj in objs:
            schema, table = self._bound(_model_of(obj, "save"))
            plans.append((schema, plan_save(schema, table, obj, condition, atomic)))

        async def one(entry: tuple[ModelSchema, WritePlan]) -> None:
            schema, plan = entry
            if plan.guards:  # Unique fields: the item and its guards in one transaction
                await write_with_guards(self._ctx, "Update", plan, schema)
            else:
                await self._send_write("UpdateItem", plan, schema)

        await run_bounded(plans, one, self.max_connections)

    async def delete(
        self, *objs: Model, condition: Condition | bool | None = None, atomic: bool = False
    ) -> None:
        """Delete the items of objects (by key); several are sent concurrently.

        An object with `Unique()` fields also deletes their guard items, in one transaction;
        when the object did not read those fields, their stored values are read first.
        """
        plans: list[tuple[ModelSchema, str, Model, WritePlan | None]] = []
        for obj in objs:
            schema, table = self._bound(_model_of(obj, "delete"))
            if schema.unique and unique_known(schema, obj) is None:
                schema.key_of(obj)  # a bad key is refused before anything is sent
                plans.append((schema, table, obj, None))
            else:
                plans.append(
                    (schema, table, obj, plan_delete(schema, table, obj, condition, atomic))
                )

        async def one(entry: tuple[ModelSchema, str, Model, WritePlan | None]) -> None:
            schema, table, obj, plan = entry
            if plan is None:
                known = await self._stored_unique(schema, table, obj)
                plan = plan_delete(schema, table, obj, condition, atomic, known)
            if plan.guards:
                await write_with_guards(self._ctx, "Delete", plan, schema)
            else:
                await self._send_write("DeleteItem", plan, schema)

        await run_bounded(plans, one, self.max_connections)

    async def _stored_unique(
        self, schema: ModelSchema, table: str, obj: Model
    ) -> list[tuple[FieldSpec, Wire | None]]:
        """The stored values of an item's Unique fields (a consistent read of them only)."""
        r = Renderer()
        request: Wire = {
            "TableName": table,
            "Key": schema.key_of(obj),
            "ConsistentRead": True,
            "ProjectionExpression": render_projection(
                [schema.paths[s.name] for s in schema.unique], r
            ),
        }
        response = await self._caller.call(
            "GetItem", r.into(request), model=schema.model, table=table
        )
        item = response.get("Item") or {}
        return [(s, item.get(s.wire)) for s in schema.unique]

    async def get(self, model: type[M], *, consistent: bool = False, **key: Any) -> M | None:
        """The object stored under a key, or None: `await engine.get(Post, forum=..., id=...)`."""
        schema, table = self._bound(model)
        request: Wire = {"TableName": table, "Key": schema.key_from_values(key)}
        if consistent:
            request["ConsistentRead"] = True
        response = await self._caller.call("GetItem", request, model=schema.model, table=table)
        item = response.get("Item")
        if item is None or is_guard(item):  # a guard of a Unique field is no object
            return None
        obj: M | None = schema.read(item, table)
        return obj

    @overload
    async def update(
        self,
        target: M,
        key: None = None,
        actions: Sequence[Action] = (),
        condition: Condition | bool | None = None,
    ) -> M: ...

    @overload
    async def update(
        self,
        target: type[M],
        key: dict[str, Any],
        actions: Sequence[Action],
        condition: Condition | bool | None = None,
    ) -> M: ...

    async def update(
        self,
        target: Any,
        key: Any = None,
        actions: Sequence[Action] = (),
        condition: Condition | bool | None = None,
    ) -> Any:
        """Apply update actions to one item and return the item as it is afterwards.

        - `await engine.update(Post, {"forum": f, "id": i}, [Post.views.add(1)])`: by key; a
          new object of the stored item is returned.
        - `await engine.update(post, actions=[Post.views.add(1)])`: for a loaded object: the
          item must exist, a `Version` field is checked and incremented, and `post` is refreshed
          in place from the stored result and returned.
        """
        if not isinstance(actions, list | tuple):
            raise InvalidArgument(
                f"update() takes its actions as a list, such as [Post.views.add(1)], not "
                f"{actions!r}"
            )
        if isinstance(target, Model):
            if key is not None:
                raise InvalidArgument(
                    "update(obj, ...) takes the key from the object: pass the actions as "
                    "actions=[...]"
                )
            schema, table = self._bound(type(target))
            plan = plan_update(schema, table, None, actions, condition, obj=target)
        else:
            if not isinstance(key, Mapping):
                raise InvalidArgument(
                    "update(Model, key, actions) needs the key as a dict of key fields, or pass "
                    f"a loaded object: update(obj, actions=[...]); got key={key!r}"
                )
            schema, table = self._bound(target)
            plan = plan_update(schema, table, dict(key), actions, condition)
        plan.request["ReturnValues"] = "ALL_NEW"
        response = await self._send_write("UpdateItem", plan, schema)
        stored = response.get("Attributes") or {}
        if isinstance(target, Model):
            fill(target, schema, stored, table)
            return target
        return schema.read(stored, table)

    async def load(self, *objs: Model, consistent: bool = False) -> None:
        """Fill objects from their stored items by key (BatchGetItem, 100 keys a request).

        Raises `MissingObjects` naming every object that has no item.
        """
        await load_objects(self._ctx, objs, consistent)

    # ------------------------------------------------------------------ searches

    def query(
        self,
        model: type[M] | _Index[M],
        key: Condition | bool | Mapping[str, Any],
        *,
        filter: Condition | bool | None = None,
        projection: Projection = "all",
        consistent: bool = False,
        forward: bool = True,
        limit: int | None = None,
        page_size: int | None = None,
        start: str | None = None,
    ) -> Query[M]:
        """A lazy query on a table or an index (`Post.by_user`); iterate it with `async for`.

        `key`: a condition (`Post.forum == "x"`), or a dict of fields: key attributes, or the
        fields of their key templates (`{"customer_id": c}`: the hash key's template complete,
        the range key's matched up to the first field not given).
        """
        return Query(
            self._ctx,
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
        model: type[M] | _Index[M],
        *,
        filter: Condition | bool | None = None,
        projection: Projection = "all",
        consistent: bool = False,
        limit: int | None = None,
        page_size: int | None = None,
        start: str | None = None,
        segments: int | None = None,
        segment: tuple[int, int] | None = None,
    ) -> Scan[M]:
        """A lazy scan; `segments=N` runs a parallel scan merged into one iterator, and
        `segment=(i, n)` reads only segment `i` of `n` (for `n` processes sharing one scan)."""
        return Scan(
            self._ctx,
            model,
            filter=filter,
            projection=projection,
            consistent=consistent,
            limit=limit,
            page_size=page_size,
            start=start,
            segments=segments,
            segment=segment,
        )

    async def backfill(
        self,
        model: type[M],
        fn: Callable[[M], M | Awaitable[M | None] | None],
        *,
        segments: int = 8,
        max_writes_per_second: float | None = None,
        checkpoint: str | PathLike[str] | None = None,
        progress: Callable[[BackfillProgress], object] | None = None,
        segment: tuple[int, int] | None = None,
    ) -> BackfillReport:
        """Call `fn(obj)` (sync or async) on every object of a parallel scan and save what it
        returns (None: leave the object), each save only if the item is unchanged since it was
        read (a refused save reads the item again and calls `fn` again).

        `max_writes_per_second` caps the rate (it also backs off when DynamoDB throttles);
        `checkpoint` (a path) makes the run resumable; `segment=(i, n)` runs share `i` of `n`
        (each of `n` processes runs `segments` of the scan's `n * segments` segments);
        `progress` receives a `BackfillProgress` as the run goes. Returns a `BackfillReport`.
        """
        from ._backfill import run_backfill

        if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
            raise InvalidArgument(
                f"checkpoint must be a file path (a str or Path), not {checkpoint!r}"
            )

        return await run_backfill(
            self,
            model,
            fn,
            segments=segments,
            max_writes_per_second=max_writes_per_second,
            checkpoint=checkpoint,
            progress=progress,
            segment=segment,
        )

    # ------------------------------------------------------------------ batches, transactions

    def batch(self, progress: Callable[[BatchProgress], object] | None = None) -> Batch:
        """`async with engine.batch() as b: b.save(x); b.delete(y)`: BatchWriteItem.

        `progress`: called with a `BatchProgress` (written, failed, unknown, total) as each
        request's entries are settled.
        """
        self._check_open()
        return Batch(self._ctx, progress)

    @overload
    def transaction(
        self, mode: Literal["w"] = "w", *, token: str | None = None
    ) -> WriteTransaction: ...
    @overload
    def transaction(self, mode: Literal["r"]) -> ReadTransaction: ...
    def transaction(
        self, mode: Literal["w", "r"] = "w", *, token: str | None = None
    ) -> WriteTransaction | ReadTransaction:
        """`async with engine.transaction() as tx:` (writes) or `transaction(mode="r")` (reads).

        `token`: the idempotency token of a write transaction (1 to 36 characters), so that a
        retry of the same work, even from another process after a crash, applies it at most
        once within DynamoDB's 10-minute window; by default each commit gets a fresh one.
        """
        self._check_open()
        if mode == "w":
            return WriteTransaction(self._ctx, token)
        if mode == "r":
            if token is not None:
                raise InvalidArgument("token= applies to write transactions only")
            return ReadTransaction(self._ctx)
        raise InvalidArgument(f"transaction mode must be 'w' or 'r', not {mode!r}")

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
        from .stream import StreamSource
        from .stream._open import open_stream

        if not models:
            raise InvalidArgument("stream() needs at least one model")
        bound = [self._bound(m) for m in models]
        ctx = self._ctx

        by_table: dict[str, list[ModelSchema]] = {}
        for schema, table in bound:  # a shared table has one stream, whatever reads it
            schemas = by_table.setdefault(table, [])
            if schema not in schemas:
                schemas.append(schema)

        def source_of(schema: ModelSchema, arn: str, view: str, table: str) -> StreamSource:
            # a shared table's guards (Unique fields of any entity) are passed over by key
            guarded = schema
            if schema.family is not None:
                guarded = next((m for m in schema.family.members if m.unique), schema)
            return StreamSource(
                stream_arn=arn,
                model=schema.model,
                view_type=view,
                decode_item=schema.decode_item,
                decode_key=schema.decode_key,
                table=table,
                skip=partial(is_guard_key, guarded) if guarded.unique else None,
            )

        async def sources() -> list[StreamSource]:
            result = []
            for table, schemas in by_table.items():
                description = await _bind.describe(ctx, table)
                arn = (description or {}).get("LatestStreamArn")
                view = ((description or {}).get("StreamSpecification") or {}).get("StreamViewType")
                if not arn or not view:
                    raise StreamNotEnabled(
                        f"table {table!r} of {schemas[0].name} has no stream; set Meta.stream"
                    )
                family = schemas[0].family
                if family is None:
                    result.append(source_of(schemas[0], arn, view, table))
                    continue
                # each record as the entity it is; only those of the entities asked for
                router = stream_router(family, schemas, table, view)
                per_schema = {id(s): source_of(s, arn, view, table) for s in family.members}
                base = family.table_schema or schemas[0]

                def route(
                    raw: Wire,
                    router: Callable[[Wire], ModelSchema | None] = router,
                    per_schema: dict[int, StreamSource] = per_schema,
                ) -> StreamSource | None:
                    schema = router(raw)
                    return None if schema is None else per_schema[id(schema)]

                result.append(dataclasses.replace(source_of(base, arn, view, table), route=route))
            return result

        def delivered(created_at: datetime) -> None:
            hook = self._on_record
            if hook is not None:
                hook(created_at)

        return open_stream(
            sources=sources,
            call=self._caller.call,
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
            observe=delivered,
        )


def _schema(model: Any) -> ModelSchema:
    try:
        return schema_of(model)
    except TypeError:
        raise InvalidArgument(f"{model!r} is not a concrete adyn Model class") from None


def _check_shared_table(table: str, schemas: Sequence[ModelSchema]) -> None:
    """Models on one table must be one family (a table model and its entities): otherwise
    no read could tell their items apart."""
    families = {id(s.family) if s.family is not None else id(s): s for s in schemas}
    if len(families) < 2:
        return
    first, second = list(families.values())[:2]
    raise InvalidModel(
        first.name,
        None,
        f"shares table {table!r} with {second.name}, and they have no common discriminator, so "
        "no read could tell their items apart: give them a common base model whose Meta names "
        'a discriminator attribute (discriminator = "type"), or a callable discriminator '
        "(taking an item's key values as a dict and returning its entity name) for tables "
        "written by other code; or give each its own table",
    )


def _model_of(obj: Any, what: str) -> type[Model]:
    if not isinstance(obj, Model):
        raise InvalidArgument(f"{what}() takes model objects, not {type(obj).__name__}")
    return type(obj)


def _check_template(template: Any) -> None:
    if callable(template):
        return
    if not isinstance(template, str):
        raise InvalidArgument(
            "table_name_template must be a format string with {table_name} or a callable, not "
            f"{type(template).__name__}"
        )
    try:
        template.format(table_name="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidArgument(
            f"table_name_template {template!r} is not a format string with only "
            f"{{table_name}}: {exc!r}"
        ) from None


def _describe_key(schema: ModelSchema, key: Wire | None) -> str:
    if not key:
        return "(no key)"
    try:
        values = schema.decode_key(key)
    except Exception:
        return "(key)"
    return ", ".join(f"{k}={v!r}" for k, v in values.items())
