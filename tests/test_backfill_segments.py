"""What backfills and exports stand on, on every backend: segment scans and batch progress."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from _models import Post
from adyn import BatchProgress, Engine, InvalidQuery

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def posts(n: int, forum: str = "f") -> list[Post]:
    return [
        Post(forum=forum, id=uuid4(), user=uuid4(), date=NOW + timedelta(seconds=i), views=i)
        for i in range(n)
    ]


@pytest.fixture
async def table(engine: Engine) -> Engine:
    """A bound Post table holding 40 posts in 20 forums (servers split segments by hash key)."""
    await engine.bind(Post)
    async with engine.batch() as batch:
        for forum in range(20):
            batch.save(*posts(2, f"forum-{forum}"))
    return engine


async def test_segments_of_n_processes_cover_the_table_exactly_once(table: Engine) -> None:
    everything = {p.id for p in await table.scan(Post).all()}
    shares = [await table.scan(Post, segment=(i, 3)).all() for i in range(3)]
    seen = [p.id for share in shares for p in share]
    assert len(seen) == len(set(seen)) == 40 and set(seen) == everything
    counts = [await table.scan(Post, segment=(i, 3)).count() for i in range(3)]
    assert counts == [len(share) for share in shares]


async def test_a_segment_token_resumes_that_segment_only(table: Engine) -> None:
    whole = [p.id for p in await table.scan(Post, segment=(1, 2)).all()]
    pages = [page async for page in table.scan(Post, segment=(1, 2), page_size=3).pages()]
    assert pages[-1].token is None
    token = pages[0].token
    assert token is not None
    rest = [p.id for p in await table.scan(Post, segment=(1, 2), page_size=3, start=token).all()]
    assert [p.id for p in pages[0].items] + rest == whole
    assert json.loads(token)["s"] == [1, 2]  # the token says which segment it belongs to
    with pytest.raises(InvalidQuery, match="segment 1 of 2, not segment 0 of 2"):
        table.scan(Post, segment=(0, 2), start=token)
    with pytest.raises(InvalidQuery, match="not a whole scan"):
        table.scan(Post, start=token)
    whole_scan = (await anext(table.scan(Post, page_size=5).pages())).token
    assert whole_scan is not None
    with pytest.raises(InvalidQuery, match="a whole scan, not segment 1 of 2"):
        table.scan(Post, segment=(1, 2), start=whole_scan)


async def test_a_filtered_segment_scan_with_a_limit(table: Engine) -> None:
    matching = await table.scan(Post, filter=Post.views >= 5).all()
    share = [await table.scan(Post, segment=(i, 2), filter=Post.views >= 5).all() for i in (0, 1)]
    assert sorted(p.id.hex for s in share for p in s) == sorted(p.id.hex for p in matching)
    assert len(await table.scan(Post, segment=(0, 1), limit=7).all()) == 7


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"segment": (2, 2)}, r"0 <= i < n"),
        ({"segment": (-1, 2)}, r"0 <= i < n"),
        ({"segment": (0, 0)}, r"0 <= i < n"),
        ({"segment": (0, 1_000_001)}, r"1,000,000"),
        ({"segment": [0, 2]}, r"tuple \(i, n\)"),
        ({"segment": (0, 2, 3)}, r"tuple \(i, n\)"),
        ({"segment": (True, 2)}, r"tuple \(i, n\)"),
        ({"segment": (0.0, 2)}, r"tuple \(i, n\)"),
        ({"segment": (0, 2), "segments": 2}, "cannot be combined"),
    ],
)
async def test_bad_segments_are_refused_when_the_scan_is_built(
    table: Engine, arguments: dict[str, Any], message: str
) -> None:
    # scan() is synchronous and sends nothing: refusing here is refusing before sending
    with pytest.raises(InvalidQuery, match=message):
        table.scan(Post, **arguments)


async def test_batch_progress_reports_written_counts_as_requests_complete(
    engine: Engine,
) -> None:
    await engine.bind(Post)
    seen: list[BatchProgress] = []
    async with engine.batch(progress=seen.append) as batch:
        batch.save(*posts(60))
        await batch.flush()
        assert seen[-1] == BatchProgress(written=60, failed=0, unknown=0, total=60)
        batch.save(*posts(10, "g"))
        batch.delete(*(await engine.scan(Post, limit=5).all()))
    assert seen[-1] == BatchProgress(written=75, failed=0, unknown=0, total=75)
    # one call per request (25 + 25 + 10, then 15 writes), counts only growing
    written = [p.written for p in seen]
    steps = sorted(b - a for a, b in zip([0, *written], written, strict=False))
    assert steps == [10, 15, 25, 25]
    assert all(p.written <= p.total for p in seen)
    assert await engine.scan(Post).count() == 65


async def test_a_failing_progress_callback_never_stops_the_batch(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    await engine.bind(Post)

    def broken(progress: BatchProgress) -> None:
        raise RuntimeError("progress bar fell over")

    async with engine.batch(progress=broken) as batch:
        batch.save(*posts(30))
    assert await engine.scan(Post).count() == 30
    assert "progress callback failed" in caplog.text
