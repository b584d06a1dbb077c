"""A page of items nobody but adyn holds is let go while it is decoded; one a transport kept is
left exactly as it was.

Decoding a page drops each wire item once its object is built when the response and its list
of items are adyn's alone (see adyn/_owned.py): the page's memory then serves for the objects.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Annotated, Any

import orjson
import pytest

from adyn import Engine, HashKey, Model, RangeKey, _decoder, _owned
from adyn import query as query_module


class Reading(Model):
    class Meta:
        table_name = "page_memory"

    pk: Annotated[str, HashKey()]
    sk: Annotated[str, RangeKey()]
    name: str
    count: int
    tags: set[str]
    blob: bytes
    note: str


def _item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": "p"},
        "sk": {"S": f"{i:05d}"},
        "name": {"S": f"reading number {i} of the page"},
        "count": {"N": str(i * 7)},
        "tags": {"SS": ["alpha", "beta", f"t{i % 7}"]},
        "blob": {"B": "AAECAwQFBgcICQoLDA0ODw=="},
        "note": {"S": "a note long enough to take some memory " * 2},
    }


BODY = orjson.dumps({"Items": [_item(i) for i in range(2000)], "Count": 2000})


class CannedQueries:
    """A user's transport: the engine's own for everything but Query, which it answers from
    BODY, keeping the response, its items, or nothing."""

    def __init__(self, inner: Any, keep: str) -> None:
        self.inner, self.keep = inner, keep
        self.kept: list[Any] = []

    async def call(
        self, service: str, operation: str, request: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        if operation != "Query":
            return await self.inner.call(service, operation, request, idempotent=idempotent)  # type: ignore[no-any-return]
        response: dict[str, Any] = orjson.loads(BODY)
        if tracemalloc.is_tracing():  # the parse's own peak (orjson's document) is not adyn's
            tracemalloc.reset_peak()
        if self.keep == "response":
            self.kept.append(response)
        elif self.keep == "items":
            self.kept.append(response["Items"])
        return response


async def _query_all(engine: Engine, keep: str) -> tuple[CannedQueries, list[Reading], int]:
    """(the transport, what the query gave, the peak of traced memory from the end of the
    parse to the end of the query)."""
    transport = CannedQueries(engine.transport, keep)
    async with Engine(
        transport=transport, table_name_template=engine.table_name_template
    ) as canned:
        await canned.bind(Reading)
        await canned.query(Reading, key=Reading.pk == "p").all()  # warm: codecs, caches
        transport.kept.clear()
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            loaded = await canned.query(Reading, key=Reading.pk == "p").all()
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    return transport, loaded, peak


@pytest.mark.parametrize("keep", ["response", "items"])
async def test_a_response_its_transport_kept_is_left_as_it_was(engine: Engine, keep: str) -> None:
    transport, loaded, _ = await _query_all(engine, keep)
    assert [r.sk for r in loaded] == [f"{i:05d}" for i in range(2000)]
    (kept,) = transport.kept
    fresh = orjson.loads(BODY)
    assert kept == (fresh if keep == "response" else fresh["Items"])


async def test_a_page_nobody_else_holds_is_let_go_while_it_is_decoded(engine: Engine) -> None:
    _, alone, peak_alone = await _query_all(engine, "nothing")
    _, shared, peak_shared = await _query_all(engine, "response")
    assert [r.model_dump() for r in alone] == [r.model_dump() for r in shared]
    if _owned.EXACT_COUNTS and _decoder.NATIVE:
        # the wire items (about half of the peak) go while the objects are built
        assert peak_alone < 0.8 * peak_shared, (peak_alone, peak_shared)
    else:  # no exact reference counts, or no compiled decoder: nothing is let go
        assert peak_alone > 0.9 * peak_shared, (peak_alone, peak_shared)


async def test_pages_read_through_adyns_own_transport_are_adyns_alone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[bool]] = []
    sole_pages = _owned.sole_pages

    def recording(responses: list[Any]) -> list[bool]:
        found = sole_pages(responses)
        seen.append(found)
        return found

    await engine.bind(Reading)
    async with engine.batch() as batch:
        batch.save(*(Reading(**{k: v for k, v in _plain(i).items()}) for i in range(30)))
    monkeypatch.setattr(query_module, "sole_pages", recording)
    loaded = await engine.query(Reading, key=Reading.pk == "p", consistent=True, page_size=10).all()
    scanned = [r async for r in engine.scan(Reading, segments=2)]
    assert len(loaded) == len(scanned) == 30
    assert seen and all(found == [_owned.EXACT_COUNTS] * len(found) for found in seen)


def _plain(i: int) -> dict[str, Any]:
    return {
        "pk": "p",
        "sk": f"{i:05d}",
        "name": f"r{i}",
        "count": i,
        "tags": {"a"},
        "blob": b"\x00",
        "note": "n",
    }
