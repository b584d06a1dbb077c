"""`adyn tail` as a child process against moto: records as JSON lines, tokens kept on exit."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from harness.cli import Lines, Project, stop


@pytest.fixture
def shop(
    tmp_path: Path, moto_endpoint: str, child_env: dict[str, str], request: pytest.FixtureRequest
) -> Project:
    return Project.create(tmp_path, moto_endpoint, child_env, request.node.name)


async def test_records_are_json_lines_through_the_model_and_the_token_resumes(
    shop: Project, tmp_path: Path
) -> None:
    models = shop.shop()
    product = models.Product
    async with shop.engine() as engine:
        await engine.bind(product)
        # puts (one record each on every server), then an update and a delete
        async with engine.batch() as batch:
            batch.save(product(sku="p1", name="Blue Mug", price=7, tags={"kitchen"}, version=1))
        async with engine.batch() as batch:
            batch.save(product(sku="p2", name="Red Mug", version=1))
        await engine.update(product, key={"sku": "p1"}, actions=[product.price.set(9)])
        await engine.delete(product.model_construct(sku="p2", version=1))

        token = tmp_path / "products.token"
        process = await shop.start(
            "tail", "shop:Product", "--from", "trim_horizon", "--save", str(token)
        )
        lines = [json.loads(line) for line in await Lines(process).next(4)]
        code, err = await stop(process, signal.SIGINT)
        assert code == 0, err
        assert "Traceback" not in err and "tailing Product from trim_horizon" in err
        assert [(r["event"], r["key"]) for r in lines] == [
            ("insert", {"sku": "p1"}),
            ("insert", {"sku": "p2"}),
            ("modify", {"sku": "p1"}),
            ("remove", {"sku": "p2"}),
        ]
        insert, _, modify, remove = lines
        assert insert["model"] == "Product" and insert["old"] is None
        assert sorted(insert["new"].items()) == [
            ("name", "Blue Mug"),
            ("price", 7),
            ("sku", "p1"),
            ("slug", None),
            ("tags", ["kitchen"]),
            ("version", 1),
        ]
        assert product.model_validate(insert["new"]).tags == {"kitchen"}  # round-trips
        assert (modify["old"]["price"], modify["new"]["price"]) == (7, 9)
        assert modify["new"]["version"] == 2  # update() counts versions too
        assert remove["new"] is None and remove["old"]["name"] == "Red Mug"
        for record in lines:
            assert record["sequence_number"] and record["shard_id"]
            assert record["created_at"].endswith("+00:00") and record["expired"] is False
        saved = token.read_text()
        assert saved.endswith("\n") and len(saved) > 20

        # more changes, then a tail from the saved token: only those, nothing repeated
        async with engine.batch() as batch:
            batch.save(product(sku="p3", name="Green Mug"))
        second = await shop.start(
            "tail", "shop:Product", "--from", str(token), "--save", str(token)
        )
        reader = Lines(second)
        (line,) = await reader.next(1)
        assert json.loads(line)["key"] == {"sku": "p3"}
        assert await reader.quiet(2.0) == []
        code, err = await stop(second, signal.SIGTERM)  # SIGTERM keeps the token too
        assert code == 0, err
        assert token.read_text() != saved

        third = await shop.start("tail", "shop:Product", "--from", str(token))
        await Lines(third, stderr=True).next(1)  # the stream is open
        assert await Lines(third).quiet(2.0) == []  # caught up: nothing old comes back
        code, err = await stop(third, signal.SIGINT)
        assert code == 0, err


async def test_latest_shows_only_what_is_written_after_the_tail_started(shop: Project) -> None:
    product = shop.shop().Product
    async with shop.engine() as engine:
        await engine.bind(product)
        await engine.save(product(sku="old", name="Old"))
        process = await shop.start("tail", "shop:Product")  # --from latest is the default
        await Lines(process, stderr=True).next(1)  # "adyn: tailing ..." once the stream is open
        async with engine.batch() as batch:
            batch.save(product(sku="new", name="New"))
        (line,) = await Lines(process).next(1)
        assert json.loads(line)["key"] == {"sku": "new"}
        code, err = await stop(process, signal.SIGINT)
        assert code == 0, err


async def test_tail_refuses_what_it_cannot_tail_in_one_line(shop: Project) -> None:
    models = shop.shop()
    missing = await shop.run_async("tail", "shop:Product")
    assert missing.code == 2 and "does not exist" in missing.error_line
    async with shop.engine() as engine:
        await engine.bind(models.Order)
    no_stream = await shop.run_async("tail", "shop:Order")
    assert no_stream.code == 2 and "has no stream" in no_stream.error_line
    no_file = await shop.run_async("tail", "shop:Order", "--from", "nowhere.token")
    assert no_file.code == 2 and "--from nowhere.token: no such file" in no_file.error_line
    no_folder = await shop.run_async("tail", "shop:Order", "--save", "no/such/dir/token")
    assert no_folder.code == 2 and "does not exist" in no_folder.error_line
