"""`Query` and `Scan`: validated and rendered once, then paged lazily.

A search is prepared when it is created: the key condition, filter and projection are checked
(`InvalidQuery` / `InvalidCondition` before anything is sent) and rendered into a request.
Iteration requests a page only when the items of the previous one are used up. A parallel scan
(`segments=N`) fetches the next page of every live segment at once inside one iteration step,
so no task outlives that step. `segment=(i, n)` reads only segment `i` of `n`, so `n` processes
share one scan; its tokens name that segment and resume only it.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson

from ._concurrency import Ahead, run_bounded
from ._context import Context
from ._entities import decode_pairs
from ._owned import sole_pages
from ._unique import guard_filter
from .codecs import CodecError, check_text, number_text
from .errors import InvalidQuery, MultipleResults, NotFound
from .events import ConsumedCapacity, consumed_by_table, total
from .expressions import (
    Between,
    Compare,
    Condition,
    Function,
    Path,
    Renderer,
    all_of,
    render_condition,
    render_projection,
)
from .schema import FieldSpec, IndexSpec, ModelSchema, wire_fields

__all__ = ["Page", "Query", "Scan"]

M = TypeVar("M")
Wire = dict[str, Any]

_DONE = "done"
_TOKEN_VERSION = 1
# Segments of a parallel scan read at once: enough to overlap their latency, few enough that
# decoding keeps up (1 MB pages are CPU-bound) and memory stays bounded whatever `segments` is.
SEGMENTS_IN_FLIGHT = 4


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of results: `items`, the `token` that resumes after it (None at the end), and
    `consumed`, the capacity its request(s) consumed (with `consumed_capacity=True`)."""

    items: list[M]
    token: str | None
    consumed: ConsumedCapacity | None = None


# ---------------------------------------------------------------- tokens


def encode_token(
    positions: Sequence[Wire | str | None], share: tuple[int, int] | None = None
) -> str:
    data: Wire = {"v": _TOKEN_VERSION, "p": list(positions)}
    if share is not None:
        data["s"] = list(share)
    return orjson.dumps(data).decode()


def decode_token(
    token: Any,
    segments: int,
    key_specs: Sequence[FieldSpec] = (),
    share: tuple[int, int] | None = None,
) -> list[Wire | str | None]:
    """The positions of a `start=` token, checked against the search before anything is sent:
    one per segment, each a key holding exactly the search's key attributes (`key_specs`), each
    of its DynamoDB type and a value DynamoDB could have returned; a token of one segment of a
    distributed scan (`share`) resumes only that segment."""
    try:
        if not isinstance(token, str):
            raise TypeError(f"a token is a str, not {type(token).__name__}")
        data = orjson.loads(token)
        if not isinstance(data, dict) or data.get("v") != _TOKEN_VERSION:
            raise ValueError("unknown token version")
        positions = data["p"]
        if not isinstance(positions, list) or len(positions) != segments:
            raise ValueError(f"token is not for {segments} segment(s)")
        shared = data.get("s")
        if shared != (list(share) if share else None):
            made = (
                f"segment {shared[0]} of {shared[1]}"
                if isinstance(shared, list) and len(shared) == 2
                else "a whole scan"
            )
            wanted = f"segment {share[0]} of {share[1]}" if share else "a whole scan"
            raise ValueError(f"token is for {made}, not {wanted}")
        for p in positions:
            if not (p is None or p == _DONE or _is_position(p, key_specs)):
                raise ValueError(f"not a position of this search: {p!r}")
        return list(positions)
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InvalidQuery(f"start= is not a token of this search: {exc}") from None


def _is_position(value: Any, key_specs: Sequence[FieldSpec]) -> bool:
    """A wire key of exactly the search's key attributes, each a valid value of its type."""
    if not isinstance(value, dict) or len(value) != len(key_specs):
        return False
    for spec in key_specs:
        av = value.get(spec.wire)
        if not isinstance(av, dict) or len(av) != 1:
            return False
        ((tag, raw),) = av.items()
        if tag != spec.codec.wire_type or not isinstance(raw, str) or not raw:
            return False
        try:
            if tag == "S":
                check_text(raw)
            elif tag == "N":
                number_text(Decimal(raw))
            else:
                binascii.a2b_base64(raw, strict_mode=True)
        except (CodecError, ArithmeticError, ValueError):
            return False
    return True


# ---------------------------------------------------------------- preparation


def _model_and_index(target: Any) -> tuple[Any, IndexSpec | None]:
    from .model import _Index
    from .schema import schema_of

    if isinstance(target, _Index):
        if target.model is None:
            raise InvalidQuery(f"{target!r} is not attached to a model")
        schema = schema_of(target.model)
        return target.model, schema.indexes[target.name or ""]
    return target, None


def _check_paths(schema: ModelSchema, condition: Condition, what: str) -> list[Path]:
    paths = list(condition.paths())
    for path in paths:
        if not (path._model is schema.model or issubclass(schema.model, path._model)):
            raise InvalidQuery(f"{what} uses {path}, which is not a field of {schema.name}")
    return paths


def _key_condition(
    schema: ModelSchema,
    condition: Any,
    hash_spec: FieldSpec,
    range_spec: FieldSpec | None,
    where: str,
) -> Condition:
    if not isinstance(condition, Condition):
        raise InvalidQuery(
            f"key= takes a condition such as {schema.name}.{hash_spec.name} == value"
        )
    _check_paths(schema, condition, "the key condition")
    from .expressions import And

    parts = condition.parts if isinstance(condition, And) else (condition,)
    hash_parts, range_parts = [], []
    for part in parts:
        subject = _subject(part)
        if subject is None or len(subject._segments) != 1 or subject._field is None:
            raise InvalidQuery(
                f"key condition on {where}: {part!r} is not allowed; use == on the hash key "
                f"({hash_spec.name}) and optionally one of == < <= > >= between begins_with on "
                f"the range key" + (f" ({range_spec.name})" if range_spec else "")
            )
        # by stored name: a base model's path (Shop.pk) names its entities' attribute too
        if subject._field.wire == hash_spec.wire:
            if not (isinstance(part, Compare) and part.op == "=") or _has_path_value(part):
                raise InvalidQuery(
                    f"key condition on {where}: the hash key {hash_spec.name} takes == only"
                )
            hash_parts.append(part)
        elif range_spec is not None and subject._field.wire == range_spec.wire:
            if isinstance(part, Compare) and part.op == "<>":
                raise InvalidQuery(f"key condition on {where}: != is not allowed on the range key")
            if _has_path_value(part):
                raise InvalidQuery(f"key condition on {where}: compare the range key with values")
            range_parts.append(part)
        else:
            raise InvalidQuery(
                f"key condition on {where}: {subject._field.name} is not a key of {where}; "
                "put it in filter="
            )
    if len(hash_parts) != 1:
        raise InvalidQuery(
            f"key condition on {where} needs exactly one == on the hash key {hash_spec.name}"
        )
    if len(range_parts) > 1:
        raise InvalidQuery(f"key condition on {where}: at most one condition on the range key")
    return condition


def _guards_filter(schema: ModelSchema, index: IndexSpec | None) -> Condition | None:
    """A filter leaving out the guard items of `Unique()` fields, where they can be: in the table,
    and in an index keyed on table key attributes only (guards hold no other attributes)."""
    if not schema.unique:
        return None
    if index is not None:
        table_keys = {s.wire for s in schema.key_fields}
        if not {s.wire for s in index.key_fields} <= table_keys:
            return None
    return guard_filter(schema)


def _subject(part: Condition) -> Path | None:
    if isinstance(part, Compare) and isinstance(part.left, Path):
        return part.left
    if isinstance(part, Between) and isinstance(part.subject, Path):
        return part.subject
    if isinstance(part, Function) and part.name == "begins_with":
        return part.subject
    return None


def _has_path_value(part: Condition) -> bool:
    return len(list(part.paths())) > 1


def key_from_fields(
    schema: ModelSchema,
    values: Mapping[str, Any],
    hash_spec: FieldSpec,
    range_spec: FieldSpec | None,
    where: str,
) -> Condition:
    """`key={"customer_id": c}`: the key condition that a dict of fields names.

    A key attribute is given by itself, or (when templated) by its template's fields: the hash
    key's template must be complete; the range key is matched with `begins_with` its template's
    text up to the first field not given (`==` when all are given).
    """
    templates = schema.templates
    used: set[str] = set()

    def attribute(spec: FieldSpec, required: bool) -> Condition | None:
        path: Path = schema.paths[spec.name]
        if spec.name in values:
            used.add(spec.name)
            condition: Condition = path == values[spec.name]
            return condition
        template = templates.get(spec.name)
        if template is None:
            if required:
                raise InvalidQuery(
                    f"key condition on {where}: the dict gives no {spec.name} (the hash key)"
                )
            return None
        text, complete = template.prefix(values, where)
        given = [c.name for c in template.components if c.name in values]
        used.update(given)
        if required and not complete:
            missing = next(c.name for c in template.components if c.name not in values)
            raise InvalidQuery(
                f"key condition on {where}: the hash key {spec.name} ({template.text!r}) needs "
                f"{missing} too; a hash key is matched whole"
            )
        if complete:
            return path == text
        return path.begins_with(text) if text else None

    parts = [attribute(hash_spec, True)]
    if range_spec is not None:
        parts.append(attribute(range_spec, False))
    extra = sorted(set(values) - used)
    if extra:
        raise InvalidQuery(
            f"key condition on {where}: {extra[0]} is not a key attribute of {where} or a field "
            "of its key templates; put it in filter="
        )
    condition = all_of(parts)
    assert condition is not None
    return condition


class _Search(Generic[M]):
    """What `Query` and `Scan` share: preparation, paging, tokens and the result helpers."""

    operation = ""

    def __init__(
        self,
        ctx: Context,
        target: Any,
        *,
        key: Any = None,
        filter: Any = None,
        projection: Any = "all",
        consistent: bool = False,
        forward: bool = True,
        limit: int | None = None,
        page_size: int | None = None,
        start: str | None = None,
        segments: int | None = None,
        segment: tuple[int, int] | None = None,
    ) -> None:
        model, index = _model_and_index(target)
        schema, table = ctx.bound(model)
        self._ctx = ctx
        self._table = table
        self._schema = schema
        self._index = index
        where = f"{schema.name}.{index.index.attr_name}" if index else schema.name
        self._where = where
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidQuery(f"{where}: limit must be a positive int or None, not {limit!r}")
        if page_size is not None and (not isinstance(page_size, int) or page_size < 1):
            raise InvalidQuery(
                f"{where}: page_size must be a positive int or None, not {page_size!r}"
            )
        if segments is not None and (
            not isinstance(segments, int) or not 1 <= segments <= 1_000_000
        ):
            raise InvalidQuery(f"{where}: segments must be an int from 1 to 1,000,000")
        self._share = _segment_share(where, segment, segments)
        if consistent and index is not None and index.kind == "global":
            raise InvalidQuery(f"{where}: global indexes do not support consistent reads")
        self._limit = limit
        self._segments = segments or 1

        r = Renderer()
        request: Wire = {"TableName": table}
        if index is not None:
            request["IndexName"] = index.name
        hash_spec = index.hash_key if index else schema.hash_key
        range_spec = index.range_key if index else schema.range_key
        self._key_specs = self._position_specs(schema, index)
        if isinstance(key, Mapping):
            key = key_from_fields(schema, key, hash_spec, range_spec, where)
        if key is None and self.operation == "Query":
            raise InvalidQuery(
                f"{where}: a query needs a key condition (key={schema.name}."
                f"{hash_spec.name} == value); scan() reads without one"
            )
        if key is not None:
            condition = _key_condition(schema, key, hash_spec, range_spec, where)
            request["KeyConditionExpression"] = render_condition(condition, r)
        if filter is not None:
            if not isinstance(filter, Condition):
                raise InvalidQuery(f"{where}: filter= takes a condition, got {filter!r}")
            paths = _check_paths(schema, filter, "the filter")
            key_wires = {s.wire for s in (hash_spec, range_spec) if s is not None}
            if key is not None:
                for path in paths:
                    if path._field is not None and path._field.wire in key_wires:
                        raise InvalidQuery(
                            f"{where}: the filter uses key attribute {path._field.name}; "
                            "key attributes belong in key="
                        )
        family = schema.family
        # Through an entity, the server keeps only its items (so limit and count hold);
        # otherwise each item's entity is found here, page by page.
        own = family.server_filter(schema) if family is not None else None
        guarded = schema
        if family is not None and own is None:  # the table model: any entity's guards
            guarded = next((m for m in family.members if m.unique), schema)
        combined = all_of([filter, own, _guards_filter(guarded, index)])
        if combined is not None:
            request["FilterExpression"] = render_condition(combined, r)
        self._family = family if family is not None and own is None else None
        self._projected, self._counting = self._projection(projection, request, r)
        if consistent:
            request["ConsistentRead"] = True
        if not forward:
            request["ScanIndexForward"] = False
        if page_size is not None:
            request["Limit"] = page_size
        r.into(request)
        self._request = request
        self._start = (
            None
            if start is None or start == ""
            else decode_token(start, self._segments, self._key_specs, self._share)
        )

    @staticmethod
    def _position_specs(schema: ModelSchema, index: IndexSpec | None) -> list[FieldSpec]:
        specs = list(schema.key_fields)
        if index is not None:
            for s in index.key_fields:
                if s not in specs:
                    specs.append(s)
        return specs

    def _projection(
        self, projection: Any, request: Wire, r: Renderer
    ) -> tuple[frozenset[str] | None, bool]:
        schema, index, where = self._schema, self._index, self._where
        if projection == "count":
            return None, True
        if projection == "all":
            if index is None or index.projected is None:
                return None, False
            request["Select"] = "ALL_PROJECTED_ATTRIBUTES"
            return wire_fields(schema, index.projected), False
        if projection == "keys":
            names = [s.name for s in self._key_specs]
        elif isinstance(projection, str) or not isinstance(projection, Sequence):
            raise InvalidQuery(
                f"{where}: projection is 'all', 'keys', 'count' or a list, not {projection!r}"
            )
        else:
            names = [s.name for s in self._key_specs]
            for entry in projection:
                spec = self._projected_field(entry)
                if spec.name not in names:
                    names.append(spec.name)
        if index is not None and index.kind == "global" and index.projected is not None:
            missing = [n for n in names if schema.fields[n].wire not in index.projected]
            if missing:
                raise InvalidQuery(
                    f"{where}: the index does not project {missing}; it projects "
                    f"{sorted(wire_fields(schema, index.projected))}"
                )
        paths = [schema.paths[n] for n in names]
        family = schema.family
        if family is not None and family.path is not None and family.server_filter(schema) is None:
            paths.append(family.path)  # the entity of each item must be read to decode it
        request["ProjectionExpression"] = render_projection(paths, r)
        return frozenset(names), False

    def _projected_field(self, entry: Any) -> FieldSpec:
        schema = self._schema
        if isinstance(entry, Path):
            if (
                entry._field is None
                or len(entry._segments) != 1
                or (entry._model is not schema.model and not issubclass(schema.model, entry._model))
            ):
                raise InvalidQuery(
                    f"{self._where}: projection takes fields of {schema.name}, not {entry}"
                )
            return entry._field
        if isinstance(entry, str):
            spec = schema.fields.get(entry) or schema.by_wire.get(entry)
            if spec is None:
                raise InvalidQuery(
                    f"{self._where}: projection names {entry!r}, not a field of {schema.name}"
                )
            return spec
        raise InvalidQuery(f"{self._where}: projection entries are fields or names, not {entry!r}")

    # ------------------------------------------------------------ paging

    def _request_for(self, segment: int, start: Wire | None) -> Wire:
        request = dict(self._request)
        self._add_segment(request, segment)
        if start is not None:
            request["ExclusiveStartKey"] = start
        return request

    def _add_segment(self, request: Wire, index: int) -> None:
        if self._share is not None:
            request["Segment"], request["TotalSegments"] = self._share
        elif self._segments > 1:
            request["Segment"] = index
            request["TotalSegments"] = self._segments

    def _position_of(self, item: Wire) -> Wire:
        return {s.wire: item[s.wire] for s in self._key_specs if s.wire in item}

    async def _fetch(self, segment: int, start: Wire | None) -> Wire:
        return await self._ctx.call(
            self.operation,
            self._request_for(segment, start),
            model=self._schema.model,
            table=self._table,
        )

    def pages(self) -> AsyncGenerator[Page[M], None]:
        """Iterate whole pages: `page.items` and `page.token` (None after the last page)."""
        if self._counting:
            raise InvalidQuery(
                f"{self._where}: a projection='count' search has no items; use count()"
            )
        return self._pages()

    def _decode(
        self, kept: list[Any], plain: bool, projected: frozenset[str] | None, sole: bool = False
    ) -> list[Any]:
        if plain:
            return self._schema.decode_page(kept, projected, consume=sole)
        return decode_pairs(kept, projected)

    async def _pages(self, read_ahead: bool = True) -> AsyncGenerator[Page[M], None]:
        """Pages in order; with `read_ahead`, the next request goes out while the caller works
        on the current page. A parallel scan reads up to `SEGMENTS_IN_FLIGHT` segments at a
        time, in turns, so a wide scan neither floods memory nor starves the decoder."""
        schema, projected, family = self._schema, self._projected, self._family
        positions: list[Wire | str | None] = (
            list(self._start) if self._start else [None] * self._segments
        )
        remaining = self._limit
        window = min(self._segments, SEGMENTS_IN_FLIGHT, self._ctx.limit)
        turn = 0  # where the round over live segments starts next
        ahead: tuple[list[int], Ahead[list[Wire]]] | None = None
        try:
            while True:
                live = [i for i, p in enumerate(positions) if p != _DONE]
                if not live:
                    return
                batch = _turn_of(live, turn, window)
                if ahead is not None and ahead[0] == batch:
                    responses = await ahead[1].result()
                else:
                    if ahead is not None:
                        await ahead[1].aclose()
                    responses = await self._fetch_all(batch, positions)
                ahead = None
                sole = sole_pages(responses)  # before anything else refers to a response
                turn = batch[-1] + 1
                consumed = _consumed(self.operation, responses)
                if read_ahead:
                    upcoming = list(positions)
                    left = remaining
                    for i, response in zip(batch, responses, strict=True):
                        upcoming[i] = response.get("LastEvaluatedKey") or _DONE
                        if left is not None:
                            left -= len(response.get("Items") or ())
                    pending = [i for i, p in enumerate(upcoming) if p != _DONE]
                    if pending and (left is None or left > 0):
                        nxt = _turn_of(pending, turn, window)
                        ahead = (nxt, Ahead(self._fetch_all(nxt, upcoming)))
                for i, response, alone in zip(batch, responses, sole, strict=True):
                    raw = response.get("Items", [])
                    last = response.get("LastEvaluatedKey")
                    # the entity of each item, when the server did not filter by it
                    pairs = None if family is None else family.classify(schema, raw, self._table)
                    kept: list[Any] = raw if pairs is None else pairs
                    if remaining is not None and len(kept) >= remaining:
                        if len(kept) > remaining:
                            kept = kept[:remaining]
                            last = self._position_of(kept[-1] if pairs is None else kept[-1][0])
                        positions[i] = last if last else _DONE
                        items = self._decode(kept, pairs is None, projected)
                        finished = all(p == _DONE for p in positions)
                        token = None if finished else encode_token(positions, self._share)
                        yield Page(items, token, consumed)
                        return
                    positions[i] = last if last else _DONE
                    if remaining is not None:
                        remaining -= len(kept)
                    items = self._decode(kept, pairs is None, projected, alone and kept is raw)
                    finished = all(p == _DONE for p in positions)
                    yield Page(
                        items, None if finished else encode_token(positions, self._share), consumed
                    )
                    consumed = None  # a parallel scan's capacity goes on its first page
        finally:
            if ahead is not None:
                await ahead[1].aclose()

    async def _fetch_all(self, batch: list[int], positions: list[Wire | str | None]) -> list[Wire]:
        starts = [p if isinstance(p, dict) else None for p in (positions[i] for i in batch)]

        async def fetch(k: int) -> Wire:
            return await self._fetch(batch[k], starts[k])

        return await run_bounded(range(len(batch)), fetch, len(batch))

    def __aiter__(self) -> AsyncIterator[M]:
        return self._items()

    async def _items(self) -> AsyncIterator[M]:
        async with aclosing(self.pages()) as pages:  # stopping early ends the read-ahead
            async for page in pages:
                for item in page.items:
                    yield item

    async def first(self) -> M | None:
        """The first result, or None (fetches only the pages it needs, without read-ahead)."""
        if self._counting:
            raise InvalidQuery(
                f"{self._where}: a projection='count' search has no items; use count()"
            )
        async with aclosing(self._pages(read_ahead=False)) as pages:
            async for page in pages:
                if page.items:
                    return page.items[0]
        return None

    async def one(self) -> M:
        """The only result: `NotFound` if there is none, `MultipleResults` if there are more."""
        found: list[M] = []
        async for item in self:
            found.append(item)
            if len(found) > 1:
                raise MultipleResults(f"{self._where}: more than one result")
        if not found:
            raise NotFound(f"{self._where}: no result")
        return found[0]

    async def all(self) -> list[M]:
        """Every result, in order, as a list."""
        found: list[M] = []
        async with aclosing(self.pages()) as pages:  # whole pages: no step per item
            async for page in pages:
                found += page.items
        return found

    async def count(self) -> int:
        """How many items match (Select=COUNT over every page; `limit` caps the answer).

        When the entity of each item must be found here (a callable discriminator, or a table
        model that skips unknown entities), the keys are read and the items counted here.
        """
        base = {
            k: v for k, v in self._request.items() if k not in ("ProjectionExpression", "Select")
        }
        family, schema = self._family, self._schema
        classify = family is not None and (schema.entity is not None or family.unknown == "skip")
        if family is not None and classify:
            r = Renderer.resume(
                dict(base.get("ExpressionAttributeNames") or {}),
                dict(base.get("ExpressionAttributeValues") or {}),
            )
            paths = [schema.paths[s.name] for s in self._key_specs]
            if family.path is not None:
                paths.append(family.path)
            base["ProjectionExpression"] = render_projection(paths, r)
            r.into(base)
        else:
            base["Select"] = "COUNT"
        names = base.get("ExpressionAttributeNames")
        if names is not None:
            # names used only by the projection must go: DynamoDB refuses unused names
            text = " ".join(
                str(base.get(k, ""))
                for k in ("KeyConditionExpression", "FilterExpression", "ProjectionExpression")
            )
            used = set(re.findall(r"#n\d+", text))
            kept = {k: v for k, v in names.items() if k in used}
            if kept:
                base["ExpressionAttributeNames"] = kept
            else:
                base.pop("ExpressionAttributeNames")
        positions: list[Wire | str | None] = (
            list(self._start) if self._start else [None] * self._segments
        )
        total = 0
        while True:
            live = [i for i, p in enumerate(positions) if p != _DONE]
            if not live or (self._limit is not None and total >= self._limit):
                break

            async def fetch(i: int) -> Wire:
                request = dict(base)
                self._add_segment(request, i)
                p = positions[i]
                if isinstance(p, dict):
                    request["ExclusiveStartKey"] = p
                return await self._ctx.call(
                    self.operation, request, model=self._schema.model, table=self._table
                )

            responses = await run_bounded(live, fetch, self._ctx.limit)
            for i, response in zip(live, responses, strict=True):
                if family is not None and classify:
                    total += len(family.classify(schema, response.get("Items", []), self._table))
                else:
                    total += int(response.get("Count", 0))
                positions[i] = response.get("LastEvaluatedKey") or _DONE
        return total if self._limit is None else min(total, self._limit)


def _segment_share(where: str, segment: Any, segments: int | None) -> tuple[int, int] | None:
    """`segment=(i, n)` checked: two ints, `0 <= i < n <= 1,000,000`, not with `segments=`."""
    if segment is None:
        return None
    if segments is not None:
        raise InvalidQuery(
            f"{where}: segment= and segments= cannot be combined; segment=(i, n) reads one "
            "segment of a scan that n processes share, segments=N reads all N here"
        )
    ok = (
        isinstance(segment, tuple)
        and len(segment) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in segment)
    )
    if not ok or not (1 <= segment[1] <= 1_000_000 and 0 <= segment[0] < segment[1]):
        raise InvalidQuery(
            f"{where}: segment must be a tuple (i, n) of ints with 0 <= i < n <= 1,000,000, "
            f"not {segment!r}"
        )
    return segment[0], segment[1]


def _turn_of(live: list[int], start: int, size: int) -> list[int]:
    """Up to `size` of the live segments, going round from segment `start`."""
    after = [i for i in live if i >= start]
    return (after + [i for i in live if i < start])[:size]


def _consumed(operation: str, responses: list[Wire]) -> ConsumedCapacity | None:
    by_table: dict[str, ConsumedCapacity] = {}
    for response in responses:
        if "ConsumedCapacity" in response:
            for name, capacity in consumed_by_table(operation, response).items():
                by_table[name] = by_table[name] + capacity if name in by_table else capacity
    return total(by_table)


class Query(_Search[M]):
    """A query on a table or index; built by `engine.query(...)`."""

    operation = "Query"


class Scan(_Search[M]):
    """A scan of a table or index; built by `engine.scan(...)`."""

    operation = "Scan"
