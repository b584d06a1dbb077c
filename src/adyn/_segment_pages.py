"""The pages of one scan segment, for long jobs (backfills, exports) that must not stop early.

`segment_pages` reads segment `i` of `n` from a position (a token of that segment) and yields
`SegmentPage`s: the objects of each page and the token that resumes after it. Two things that
would end a plain scan are handled here:

- a page holding an item the model cannot load: the same stretch is read again as keys only and
  each item fetched on its own, so every good object is still yielded and each bad one is named
  (`page.broken`: key and error) instead of failing the whole page;
- throttling that outlasted the engine's retries: `on_throttle()` is called, the job waits a
  backoff and the scan resumes from the last page it yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidItem, Throttled
from .retry import RetryPolicy
from .schema import schema_of

if TYPE_CHECKING:
    from .engine import Engine
    from .model import Model

# How long a job keeps going while every scan call is throttled (the engine retries each call
# first): about a minute of waiting, in growing steps.
SCAN_PATIENCE = RetryPolicy(max_attempts=12, base=0.5, cap=10.0)


@dataclass
class SegmentPage:
    """One page of a segment: `items`, `token` (None after the segment's last page), and the
    items that could not be loaded as `(key, error)` pairs."""

    items: list[Any]
    token: str | None
    broken: list[tuple[dict[str, Any], InvalidItem]] = field(default_factory=list)


async def segment_pages(
    engine: Engine,
    model: type[Model],
    segment: tuple[int, int],
    start: str | None,
    *,
    page_size: int,
    on_throttle: Callable[[], None] = lambda: None,
    patience: RetryPolicy = SCAN_PATIENCE,
) -> AsyncIterator[SegmentPage]:
    """Yield every page of `segment` (i, n) from `start`, ending with a page whose token is None."""
    attempts = patience.attempts()
    position = start
    while True:
        try:
            pages = engine.scan(model, segment=segment, start=position, page_size=page_size)
            yielded = False
            async for page in _pages_or_broken(engine, model, pages, segment, position, page_size):
                yield page
                yielded = True
                attempts.reset()
                if page.token is None:
                    return
                position = page.token
            if not yielded:
                return
            # only a salvaged page ends the iteration early: go on with a fresh scan after it
        except Throttled:
            on_throttle()
            if not await attempts.next():
                raise


async def _pages_or_broken(
    engine: Engine,
    model: type[Model],
    pages: Any,
    segment: tuple[int, int],
    position: str | None,
    page_size: int,
) -> AsyncIterator[SegmentPage]:
    iterator = pages.pages()
    while True:
        try:
            page = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except InvalidItem:
            # The page is lost with the iterator; read the same stretch as keys, one by one.
            yield await _salvage(engine, model, segment, position, page_size)
            return  # the caller resumes a fresh scan from the salvaged page's token
        yield SegmentPage(page.items, page.token)
        position = page.token


async def _salvage(
    engine: Engine,
    model: type[Model],
    segment: tuple[int, int],
    position: str | None,
    page_size: int,
) -> SegmentPage:
    keys = engine.scan(
        model, segment=segment, start=position, page_size=page_size, projection="keys"
    )
    if schema_of(model).family is not None:
        return await _salvage_shared(engine, model, keys)
    async for page in keys.pages():
        good: list[Any] = []
        broken: list[tuple[dict[str, Any], InvalidItem]] = []
        for stub in page.items:
            key = {name: getattr(stub, name) for name in _key_names(model)}
            try:
                obj = await engine.get(model, consistent=True, **key)
            except InvalidItem as exc:
                broken.append((key, exc))
                continue
            if obj is not None:  # deleted since the scan read it: nothing to do
                good.append(obj)
        return SegmentPage(good, page.token, broken)
    return SegmentPage([], None)


async def _salvage_shared(engine: Engine, model: type[Model], keys: Any) -> SegmentPage:
    """`_salvage` on a shared table: the keys are read as DynamoDB sends them (read through the
    model, an item naming no known entity would fail this page too); each item is then got on
    its own, so one of another entity is left out, a guard item is passed over (a get through
    the table model returns None for it) and one naming no known entity is named as broken."""
    from .query import encode_token

    schema = schema_of(model)
    start = keys._start[0] if keys._start else None
    response = await keys._fetch(0, start)
    good: list[Any] = []
    broken: list[tuple[dict[str, Any], InvalidItem]] = []
    for item in response.get("Items") or []:
        key = schema.decode_key(item)
        try:
            obj = await engine.get(model, consistent=True, **key)
        except InvalidItem as exc:
            family = schema.family
            if (  # a callable discriminator: the server could not leave other entities out
                schema.entity is not None
                and family is not None
                and family.function is not None
                and family.name_of(item, schema) not in family.names_for(schema)
            ):
                continue
            broken.append((key, exc))
            continue
        if obj is not None:
            good.append(obj)
    last = response.get("LastEvaluatedKey")
    return SegmentPage(good, encode_token([last], keys._share) if last else None, broken)


def _key_names(model: type[Model]) -> list[str]:
    return [spec.name for spec in schema_of(model).key_fields]
