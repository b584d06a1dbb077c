"""Queries and scans on real servers: lazy pages, tokens, limits, projections, indexes, segments."""

from __future__ import annotations

import json
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _models import Post
from adyn import (
    CallEvent,
    Engine,
    InvalidCondition,
    InvalidQuery,
    MultipleResults,
    NotFound,
)
from adyn.query import decode_token, encode_token
from adyn.schema import schema_of

NOW = datetime(2024, 6, 1, tzinfo=UTC)
USER = uuid4()


class CountingCalls:
    """Counts the calls the engine sends, by operation (through a listener)."""

    def __init__(self, engine: Engine) -> None:
        self.counts: dict[str, int] = {}
        self._waiting: dict[tuple[str, int], anyio.Event] = {}
        engine.listeners.append(self._count)

    def _count(self, event: CallEvent) -> None:
        n = self.counts[event.operation] = self.counts.get(event.operation, 0) + 1
        waiting = self._waiting.pop((event.operation, n), None)
        if waiting is not None:
            waiting.set()

    async def reach(self, operation: str, n: int) -> None:
        """Wait until `n` calls of `operation` have ended."""
        if self.counts.get(operation, 0) < n:
            await self._waiting.setdefault((operation, n), anyio.Event()).wait()


@pytest.fixture
async def forum(engine: Engine) -> Engine:
    """A bound Post table holding 30 posts in forum "f" (views 0..29) and 5 in "g"."""
    await engine.bind(Post)
    posts = [
        Post(
            forum="f",
            id=uuid4(),
            user=USER if i % 3 == 0 else uuid4(),
            date=NOW + timedelta(minutes=i),
            views=i,
            content=f"c{i}",
            tags={f"t{i % 2}"},
        )
        for i in range(30)
    ]
    posts += [Post(forum="g", id=uuid4(), user=uuid4(), date=NOW) for _ in range(5)]
    async with engine.batch() as batch:
        batch.save(*posts)
    return engine


async def test_iteration_results_and_helpers(forum: Engine) -> None:
    q = forum.query(Post, key=Post.forum == "f", consistent=True)
    posts = [p async for p in q]
    assert len(posts) == 30 and all(p.forum == "f" for p in posts)
    assert sorted(p.views for p in await q.all()) == list(range(30))
    assert await q.count() == 30
    assert (await q.first()) is not None
    with pytest.raises(MultipleResults):
        await q.one()
    with pytest.raises(NotFound):
        await forum.query(Post, key=Post.forum == "nobody").one()
    assert await forum.query(Post, key=Post.forum == "nobody").first() is None
    only = await forum.query(Post, key=Post.forum == "f", filter=Post.views == 7).one()
    assert only.views == 7


async def test_filters_key_conditions_and_order(forum: Engine) -> None:
    q = forum.query(
        Post, key=Post.forum == "f", filter=(Post.views > 10) & Post.tags.contains("t1")
    )
    assert sorted(p.views for p in await q.all()) == [v for v in range(11, 30) if v % 2]
    assert await q.count() == len([v for v in range(11, 30) if v % 2])
    by_views = forum.query(Post.by_views, key=(Post.forum == "f") & Post.views.between(5, 9))
    assert [p.views for p in await by_views.all()] == [5, 6, 7, 8, 9]
    backwards = forum.query(
        Post.by_views, key=(Post.forum == "f") & (Post.views >= 25), forward=False
    )
    assert [p.views for p in await backwards.all()] == [29, 28, 27, 26, 25]


async def test_pages_are_fetched_lazily(forum: Engine) -> None:
    calls = CountingCalls(forum)
    q = forum.query(Post, key=Post.forum == "f", page_size=5)
    assert calls.counts.get("Query", 0) == 0  # building a query sends nothing
    first = await q.first()
    assert first is not None and calls.counts["Query"] == 1  # first(): one page, no read-ahead
    seen = 0
    async with aclosing(q.__aiter__()) as items:  # type: ignore[type-var]
        async for _ in items:
            seen += 1
            if seen == 5:  # the last item of page 1: page 2 is read ahead while we work
                with anyio.fail_after(10):
                    await calls.reach("Query", 3)
            if seen == 6:
                break
    # page 3's read-ahead started with page 2 and ended, unsent, when iteration stopped
    assert calls.counts["Query"] == 3


async def test_tokens_resume_exactly_after_a_page(forum: Engine) -> None:
    q = forum.query(Post, key=Post.forum == "f", page_size=7, consistent=True)
    pages = [page async for page in q.pages()]
    assert pages[-1].token is None
    ids = [p.id for page in pages for p in page.items]
    assert len(ids) == len(set(ids)) == 30
    token = pages[1].token
    assert isinstance(token, str) and json.loads(token)  # JSON-safe
    rest = forum.query(Post, key=Post.forum == "f", page_size=7, consistent=True, start=token)
    assert [p.id for p in await rest.all()] == ids[14:]
    with pytest.raises(InvalidQuery, match="token"):
        forum.query(Post, key=Post.forum == "f", start="not a token")


async def test_limit_caps_items_and_its_token_resumes_after_the_last_one(forum: Engine) -> None:
    q = forum.query(Post, key=Post.forum == "f", limit=12, page_size=5, consistent=True)
    got = await q.all()
    assert len(got) == 12
    pages = [page async for page in q.pages()]
    assert sum(len(p.items) for p in pages) == 12
    rest = await forum.query(
        Post, key=Post.forum == "f", start=pages[-1].token, consistent=True
    ).all()
    every = await forum.query(Post, key=Post.forum == "f", consistent=True).all()
    assert [p.id for p in got + rest] == [p.id for p in every]
    assert await forum.query(Post, key=Post.forum == "f", limit=4).count() == 4


async def test_projections_load_partial_objects_that_save_never_empties(forum: Engine) -> None:
    partial = await forum.query(
        Post, key=Post.forum == "f", filter=Post.views == 3, projection=[Post.views]
    ).one()
    assert partial.views == 3 and partial.forum == "f"
    with pytest.raises(AttributeError):
        _ = partial.content
    partial.views = 300
    await forum.save(partial)
    full = await forum.get(Post, forum="f", id=partial.id, consistent=True)
    assert full is not None and full.views == 300 and full.content == "c3" and full.tags == {"t1"}
    keys_only = await forum.query(Post, key=Post.forum == "g", projection="keys").first()
    assert keys_only is not None
    with pytest.raises(AttributeError):
        _ = keys_only.user


async def test_index_queries_project_what_the_index_holds(forum: Engine) -> None:
    mine = await forum.query(Post.by_user, key=Post.user == USER).all()
    assert sorted(p.views for p in mine) == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]
    assert all(p.content for p in mine)  # projection="all" index: whole items
    keys = await forum.query(Post.by_score, key=Post.forum == "g").all()
    assert len(keys) == 5
    with pytest.raises(AttributeError):  # a keys-only index: "all" means what it projects
        _ = keys[0].content
    with pytest.raises(InvalidQuery, match="does not project"):
        forum.query(Post.by_score, key=Post.forum == "g", projection=["content"])
    with pytest.raises(InvalidQuery, match="consistent"):
        forum.query(Post.by_user, key=Post.user == USER, consistent=True)


async def test_parallel_scan_merges_every_segment(forum: Engine) -> None:
    everything = await forum.scan(Post, segments=4, consistent=True).all()
    assert len(everything) == 35 and len({p.id for p in everything}) == 35
    assert await forum.scan(Post, segments=3).count() == 35
    filtered = await forum.scan(Post, filter=Post.tags.contains("t0"), segments=2).all()
    assert sorted(p.views for p in filtered) == list(range(0, 30, 2))
    pages = [page async for page in forum.scan(Post, segments=3, page_size=4).pages()]
    resumed = await forum.scan(Post, segments=3, page_size=4, start=pages[2].token).all()
    first_three = [p.id for page in pages[:3] for p in page.items]
    assert sorted(map(str, first_three + [p.id for p in resumed])) == sorted(
        str(p.id) for p in everything
    )
    assert await forum.scan(Post, limit=10).count() == 10


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda e: e.query(Post, key=Post.views == 1), "not a key"),
        (lambda e: e.query(Post, key=Post.forum > "a"), "hash key forum takes == only"),
        (lambda e: e.query(Post, key=Post.id.begins_with("a")), "exactly one =="),
        (lambda e: e.query(Post, key=(Post.forum == "f") & (Post.id != uuid4())), "!="),
        (lambda e: e.query(Post, key=(Post.forum == "f") | (Post.forum == "g")), "not allowed"),
        (
            lambda e: e.query(Post, key=Post.forum == "f", filter=Post.id == uuid4()),
            "key attribute",
        ),
        (lambda e: e.query(Post, key=Post.forum == "f", limit=0), "limit"),
        (lambda e: e.query(Post, key=Post.forum == "f", projection=["nope"]), "nope"),
        (lambda e: e.scan(Post, segments=0), "segments"),
        (lambda e: e.query(Post, key=None), "a query needs a key condition"),
        (lambda e: e.query(Post.by_user, key=None), "needs a key condition"),
    ],
)
async def test_malformed_searches_are_refused_before_sending(
    forum: Engine, build: Any, message: str
) -> None:
    calls = CountingCalls(forum)
    with pytest.raises(InvalidQuery, match=message):
        build(forum)
    assert calls.counts == {}


async def test_operators_a_field_cannot_take_are_refused(forum: Engine) -> None:
    with pytest.raises(InvalidCondition):
        forum.query(Post, key=Post.forum == "f", filter=Post.views.begins_with("1"))


async def test_begins_with_takes_a_text_prefix_of_a_uuid_key(forum: Engine) -> None:
    every = await forum.query(Post, key=Post.forum == "f").all()
    prefix = str(every[0].id)[:2]
    matching = await forum.query(Post, key=(Post.forum == "f") & Post.id.begins_with(prefix)).all()
    assert matching and {p.id for p in matching} == {
        p.id for p in every if str(p.id).startswith(prefix)
    }


async def test_malformed_start_tokens_are_refused_before_sending(forum: Engine) -> None:
    page = await anext(aiter(forum.query(Post, key=Post.forum == "f", page_size=2).pages()))
    assert page.token is not None
    good = json.loads(page.token)
    (position,) = good["p"]
    assert set(position) == {"forum", "id"}
    index_page = await anext(
        aiter(forum.query(Post.by_user, key=Post.user == USER, page_size=1).pages())
    )
    assert index_page.token is not None

    def token(*positions: Any) -> str:
        return json.dumps({"v": good["v"], "p": list(positions)})

    bad = [
        token({**position, "nope": {"S": "x"}}),  # a key name the search does not have
        token({"forum": position["forum"]}),  # a key attribute missing
        token({"forum": position["forum"], "ID": position["id"]}),
        token({**position, "forum": {"N": "1"}}),  # the wrong DynamoDB type
        token({**position, "forum": {"S": ""}}),  # no value DynamoDB could have returned
        token({**position, "forum": {"S": 7}}),
        token({**position, "forum": {"S": "a", "N": "1"}}),
        token(position, position),  # two segments for a one-segment search
        token([position]),
        json.dumps({"v": 99, "p": [position]}),
        json.dumps([position]),
        "not json",
        index_page.token,  # a token of another search (an index: other key attributes)
    ]
    calls = CountingCalls(forum)
    for start in bad:
        with pytest.raises(InvalidQuery, match="start= is not a token of this search"):
            forum.query(Post, key=Post.forum == "f", start=start)
    with pytest.raises(InvalidQuery):
        forum.query(Post, key=Post.forum == "f", start={"p": [position]})  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery):  # a number key of an index, wrong in form
        forum.scan(Post.by_views, start=token({**position, "views": {"N": "1e999"}}))
    assert calls.counts == {}

    rest = await forum.query(Post, key=Post.forum == "f", start=page.token).all()
    assert len(rest) == 28  # the genuine token still resumes where it left off


POST_KEYS = schema_of(Post).key_fields
TOKEN_VERSION = json.loads(encode_token([]))["v"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
attribute_values = st.dictionaries(
    st.sampled_from(["S", "N", "B", "SS", "NULL"]), json_values | st.text(max_size=8), max_size=2
)
positions = json_values | st.dictionaries(
    st.sampled_from(["forum", "id", "views", "Forum"]), attribute_values, max_size=3
)


@settings(max_examples=300, deadline=None)
@given(position=positions)
def test_a_start_token_holds_only_positions_of_its_search(position: Any) -> None:
    try:
        (accepted,) = decode_token(json.dumps({"v": TOKEN_VERSION, "p": [position]}), 1, POST_KEYS)
    except InvalidQuery:
        return
    if accepted is None or accepted == "done":
        return
    assert set(accepted) == {"forum", "id"}
    for av in accepted.values():
        ((tag, raw),) = av.items()
        assert tag == "S" and isinstance(raw, str) and raw


@settings(max_examples=100, deadline=None)
@given(forum=st.text(min_size=1, max_size=20), id=st.uuids())
def test_every_position_dynamodb_can_return_is_accepted(forum: str, id: Any) -> None:
    position = {"forum": {"S": forum}, "id": {"S": str(id)}}
    assert decode_token(encode_token([position, None, "done"]), 3, POST_KEYS) == [
        position,
        None,
        "done",
    ]
