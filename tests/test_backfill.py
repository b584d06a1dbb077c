"""`engine.backfill(...)` on every backend: transforms, reports, checkpoints, shares, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.lowlevel
import pytest

from _wire import raw_call
from adyn import (
    BackfillProgress,
    BackfillReport,
    Engine,
    FailedItem,
    HashKey,
    InvalidArgument,
    Model,
    NotBound,
    Version,
)
from adyn.schema import schema_of


class Article(Model):
    class Meta:
        table_name = "articles"

    id: Annotated[str, HashKey()]
    title: str
    slug: str | None = None
    edits: int = 0
    version: Annotated[int, Version()] = 0


class Draft(Model):
    """Another writer of the articles table, whose titles are numbers."""

    class Meta:
        table_name = "articles"

    id: Annotated[str, HashKey()]
    title: int = 0


N = 40


def add_slug(article: Article) -> Article | None:
    """The backfill function of the docs: idempotent, it leaves a done article alone."""
    if article.slug is not None:
        return None
    article.slug = article.title.lower().replace(" ", "-")
    return article


@pytest.fixture
async def articles(engine: Engine) -> Engine:
    await engine.bind(Article)
    async with engine.batch() as batch:  # batch puts store version 0
        batch.save(*(Article(id=f"a{i:03d}", title=f"Title {i}") for i in range(N)))
    return engine


async def stored(engine: Engine) -> dict[str, Article]:
    return {a.id: a async for a in engine.scan(Article, consistent=True)}


async def test_every_object_is_transformed_and_saved_once(articles: Engine) -> None:
    report = await articles.backfill(Article, add_slug, segments=4)
    assert isinstance(report, BackfillReport)
    assert (report.scanned, report.changed, report.conflicts, report.failed) == (N, N, 0, ())
    assert report.segments == (0, 1, 2, 3) and report.total_segments == 4
    after = await stored(articles)
    assert {a.slug for a in after.values()} == {f"title-{i}" for i in range(N)}
    assert {a.version for a in after.values()} == {1}  # one save each (versions count them)

    again = await articles.backfill(Article, add_slug)
    assert (again.scanned, again.changed, again.unchanged) == (N, 0, N)
    assert {a.version for a in (await stored(articles)).values()} == {1}  # nothing was sent


async def test_async_functions_and_new_objects_for_the_same_item(articles: Engine) -> None:
    async def retitle(article: Article) -> Article:
        await anyio.lowlevel.checkpoint()
        return Article(id=article.id, title=article.title.upper(), version=article.version)

    report = await articles.backfill(Article, retitle, segments=2)
    assert report.changed == N and report.conflicts == 0
    assert all(a.title.startswith("TITLE") for a in (await stored(articles)).values())


async def test_an_object_returned_unchanged_is_not_written(articles: Engine) -> None:
    report = await articles.backfill(Article, lambda article: article)
    assert (report.scanned, report.changed, report.unchanged) == (N, 0, N)
    assert {a.version for a in (await stored(articles)).values()} == {0}


async def test_shares_of_several_machines_cover_every_item_once(articles: Engine) -> None:
    calls: list[str] = []

    def count(article: Article) -> Article:
        calls.append(article.id)
        article.edits += 1
        return article

    reports = [
        await articles.backfill(Article, count, segments=3, segment=(i, 2)) for i in range(2)
    ]
    assert [r.segments for r in reports] == [(0, 1, 2), (3, 4, 5)]
    assert {r.total_segments for r in reports} == {6}
    assert sorted(calls) == sorted(f"a{i:03d}" for i in range(N))
    assert sum(r.changed for r in reports) == N
    assert {a.edits for a in (await stored(articles)).values()} == {1}


async def test_a_finished_checkpoint_is_marked_complete_and_not_run_again(
    articles: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "slug.json"
    first = await articles.backfill(Article, add_slug, checkpoint=path)
    state = json.loads(path.read_text())
    assert state["complete"] is True
    assert state["counts"] == {"scanned": N, "changed": N, "conflicts": 0, "throttled": 0}
    assert set(state["positions"].values()) == {"done"}

    def never(article: Article) -> None:
        raise AssertionError("a complete backfill runs nothing")

    again = await articles.backfill(Article, never, checkpoint=path)
    assert again == first


async def test_an_interrupted_run_resumes_from_its_checkpoint(
    articles: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adyn._backfill.PAGE_SIZE", 4)  # so positions fall inside segments
    path = tmp_path / "slug.json"
    seen: list[str] = []
    with anyio.CancelScope() as scope:

        async def slug_then_stop(article: Article) -> Article | None:
            seen.append(article.id)
            if len(seen) == 25:
                scope.cancel()  # as Ctrl-C would, in the middle of a page
            await anyio.lowlevel.checkpoint()
            return add_slug(article)

        await articles.backfill(Article, slug_then_stop, segments=2, checkpoint=path)
    assert scope.cancelled_caught
    state = json.loads(path.read_text())
    assert state["complete"] is False and 0 < state["counts"]["scanned"] < 25
    assert any(p not in (None, "done") for p in state["positions"].values())

    resumed: list[str] = []

    def slug_again(article: Article) -> Article | None:
        resumed.append(article.id)
        return add_slug(article)

    report = await articles.backfill(Article, slug_again, segments=2, checkpoint=path)
    assert len(set(resumed)) == N - state["counts"]["scanned"]  # finished pages are not read again
    # an item is transformed twice only after a conflict: a write the interrupted run had sent
    # may reach the server after this run read the item
    assert len(resumed) == len(set(resumed)) + report.conflicts - state["counts"]["conflicts"]
    after = await stored(articles)
    assert {a.slug for a in after.values()} == {f"title-{i}" for i in range(N)}
    assert {a.version for a in after.values()} == {1}  # each item written exactly once
    assert report.scanned == N  # exact: counts only cover pages that were finished
    assert json.loads(path.read_text())["complete"] is True


async def test_a_checkpoint_of_another_backfill_is_refused(
    articles: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "slug.json"
    await articles.backfill(Article, add_slug, segments=2, checkpoint=path)
    with pytest.raises(InvalidArgument, match=r"belongs to another backfill: total_segments 2"):
        await articles.backfill(Article, add_slug, segments=3, checkpoint=path)
    path.write_text("{not json")
    with pytest.raises(InvalidArgument, match=r"slug\.json"):
        await articles.backfill(Article, add_slug, checkpoint=path)
    with pytest.raises(InvalidArgument, match="does not exist"):
        await articles.backfill(Article, add_slug, checkpoint=tmp_path / "no" / "such.json")


async def test_failures_are_reported_by_key_and_the_rest_goes_on(
    articles: Engine, tmp_path: Path
) -> None:
    def picky(article: Article) -> Article | None:
        if article.id.endswith("7"):
            raise ValueError(f"cannot slug {article.id}")
        if article.id == "a010":
            return Draft(id=article.id, title=10)  # type: ignore[return-value]
        if article.id == "a020":
            article.id = "elsewhere"
            return article
        return add_slug(article)

    path = tmp_path / "picky.json"
    report = await articles.backfill(Article, picky, checkpoint=path)
    failed = {f.key["id"]: f for f in report.failed}
    assert set(failed) == {f"a{i:03d}" for i in range(N) if i % 10 == 7} | {"a010", "a020"}
    assert failed["a017"].error == "ValueError: cannot slug a017"
    assert isinstance(failed["a017"].exception, ValueError)
    assert "returned Draft" in failed["a010"].error
    assert "changed the object's key" in failed["a020"].error
    assert report.changed == N - len(failed) and report.unchanged == 0
    # read back from the checkpoint: the same keys and errors
    again = await articles.backfill(Article, add_slug, checkpoint=path)
    assert again.failed == report.failed
    assert again.failed[0] == FailedItem(again.failed[0].key, again.failed[0].error)


async def test_items_the_model_cannot_load_are_named_and_the_rest_done(
    articles: Engine,
) -> None:
    # another writer's items, put on the wire (one engine refuses two models on one table)
    for draft in (Draft(id="untitled-1", title=1), Draft(id="untitled-2", title=2)):
        item = schema_of(Draft).encode_item(draft)
        await raw_call(
            articles, "PutItem", {"TableName": articles.table_name(Article), "Item": item}
        )
    report = await articles.backfill(Article, add_slug, segments=1)
    assert sorted(f.key["id"] for f in report.failed) == ["untitled-1", "untitled-2"]
    assert all("title" in f.error and "InvalidItem" in f.error for f in report.failed)
    assert report.scanned == N + 2 and report.changed == N


async def test_a_concurrent_change_is_never_overwritten(articles: Engine) -> None:
    calls: dict[str, int] = {}

    async def slug_racing_an_editor(article: Article) -> Article | None:
        calls[article.id] = calls.get(article.id, 0) + 1
        if article.id < "a010" and calls[article.id] == 1:
            # another writer edits the item after the backfill read it
            await articles.update(Article, key={"id": article.id}, actions=[Article.edits.add(1)])
        return add_slug(article)

    report = await articles.backfill(Article, slug_racing_an_editor, segments=2)
    assert report.conflicts == 10 and report.changed == N and report.failed == ()
    assert {k: v for k, v in calls.items() if v > 1} == {f"a{i:03d}": 2 for i in range(10)}
    after = await stored(articles)
    assert all(a.slug == add_slug(Article(id="x", title=a.title)).slug for a in after.values())  # type: ignore[union-attr]
    assert sorted(a.id for a in after.values() if a.edits == 1) == [f"a{i:03d}" for i in range(10)]


async def test_an_item_that_never_stops_changing_is_given_up(articles: Engine) -> None:
    async def always_racing(article: Article) -> Article | None:
        if article.id == "a001":
            await articles.update(Article, key={"id": article.id}, actions=[Article.edits.add(1)])
        return add_slug(article)

    report = await articles.backfill(Article, always_racing)
    assert [f.key for f in report.failed] == [{"id": "a001"}]
    assert "changed 9 times" in report.failed[0].error
    assert report.conflicts == 9
    assert (await articles.get(Article, id="a001")).edits == 9  # type: ignore[union-attr]


async def test_an_item_deleted_after_it_was_read_is_left_deleted(articles: Engine) -> None:
    async def delete_then_slug(article: Article) -> Article | None:
        if article.id == "a005":
            await articles.delete(article.model_copy())  # by another writer
        return add_slug(article)

    report = await articles.backfill(Article, delete_then_slug)
    assert report.conflicts == 1 and report.failed == () and report.changed == N - 1
    assert await articles.get(Article, id="a005") is None


async def test_progress_reports_growing_counts_up_to_the_report(articles: Engine) -> None:
    seen: list[BackfillProgress] = []
    report = await articles.backfill(Article, add_slug, segments=3, progress=seen.append)
    assert seen, "progress was never reported"
    last = seen[-1]
    assert last == BackfillProgress(
        scanned=N, changed=N, conflicts=0, failed=0, throttled=0, segments_done=3, segments=3
    )
    assert (report.scanned, report.changed) == (last.scanned, last.changed)
    for field in ("scanned", "changed", "segments_done"):
        values = [getattr(p, field) for p in seen]
        assert values == sorted(values)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"segments": 0}, "segments must be an int"),
        ({"segments": True}, "segments must be an int"),
        ({"max_writes_per_second": 0}, "max_writes_per_second must be a positive number"),
        ({"max_writes_per_second": float("inf")}, "max_writes_per_second"),
        ({"segment": (2, 2)}, r"segment must be a tuple \(i, n\)"),
        ({"segment": (0, 2_000), "segments": 1_000}, "1,000,000"),
        ({"fn": "add_slug"}, "takes a function"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_read(
    articles: Engine, arguments: dict[str, Any], message: str
) -> None:
    arguments = dict(arguments)
    fn = arguments.pop("fn", add_slug)
    with pytest.raises(InvalidArgument, match=message):
        await articles.backfill(Article, fn, **arguments)


async def test_an_unbound_model_is_refused(engine: Engine) -> None:
    with pytest.raises(NotBound, match="Article"):
        await engine.backfill(Article, add_slug)
