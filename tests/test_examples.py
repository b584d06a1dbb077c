"""The examples run for real: the web apps over HTTP against moto, and the quickstart demo."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import anyio
import httpx
import pytest
import uvicorn
from aiohttp.test_utils import TestClient, TestServer

from adyn.testing.plugin import unique_table_template

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location(f"adyn_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic and FastAPI resolve annotations through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.fixture(scope="module")
def fastapi_app() -> Iterator[ModuleType]:
    yield from load_example("fastapi_app")


@pytest.fixture(scope="module")
def aiohttp_app() -> Iterator[ModuleType]:
    yield from load_example("aiohttp_app")


@pytest.fixture(scope="module")
def shop_service() -> Iterator[ModuleType]:
    yield from load_example("shop_service")


@pytest.fixture
def engine_options(moto_endpoint: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        "endpoint_url": moto_endpoint,
        "table_name_template": unique_table_template(request.node.name),
    }


class Server(uvicorn.Server):
    """uvicorn's server, telling when it listens (a failed startup raises SystemExit instead)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app (lifespan included) on a free loopback port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    server = Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        await server.listening.wait()
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


async def test_fastapi_app_saves_gets_and_queries_notes(
    fastapi_app: ModuleType, engine_options: dict[str, Any]
) -> None:
    app = fastapi_app.create_app(**engine_options)
    async with uvicorn_serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        first = await http.post("/users/ada/notes", json={"text": "hello", "tags": ["a", "b"]})
        assert first.status_code == 201
        note = first.json()
        assert note["owner"] == "ada" and note["text"] == "hello"
        assert sorted(note["tags"]) == ["a", "b"]
        UUID(note["id"])
        second = await http.post("/users/ada/notes", json={"text": "again", "tags": ["b"]})
        assert second.status_code == 201
        await http.post("/users/bob/notes", json={"text": "not ada's"})

        got = await http.get(f"/users/ada/notes/{note['id']}")
        assert got.status_code == 200
        fetched = got.json()
        # a set travels as a JSON list whose order is the set's iteration order: compare as sets
        assert set(fetched.pop("tags")) == set(note.pop("tags"))
        assert fetched == note

        listed = await http.get("/users/ada/notes")
        assert sorted(n["text"] for n in listed.json()) == ["again", "hello"]
        tagged = await http.get("/users/ada/notes", params={"tag": "a"})
        assert [n["text"] for n in tagged.json()] == ["hello"]

        missing = await http.get("/users/ada/notes/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404
        invalid = await http.post("/users/ada/notes", json={"text": ""})
        assert invalid.status_code == 422


def test_fastapi_response_model_is_the_adyn_model(fastapi_app: ModuleType) -> None:
    schema = fastapi_app.create_app().openapi()["components"]["schemas"]["Note"]
    assert set(schema["required"]) == {"owner", "id", "created", "text"}


async def test_shop_service_keeps_customers_orders_and_lines_on_one_table(
    shop_service: ModuleType, engine_options: dict[str, Any]
) -> None:
    app = shop_service.create_app(**engine_options)
    async with uvicorn_serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        made = await http.post("/customers", json={"email": "ada@example.com", "name": "Ada"})
        assert made.status_code == 201
        ada = made.json()
        assert set(ada) == {"id", "email", "name"}  # no key attributes leak out
        taken = await http.post("/customers", json={"email": "ada@example.com", "name": "A"})
        assert taken.status_code == 409
        bob = await http.post("/customers", json={"email": "bob@example.com", "name": "Bob"})
        assert (await http.get("/customers/by-email/ada@example.com")).json() == ada

        lines = [
            {"sku": "book", "quantity": 2, "price": "12.50"},
            {"sku": "pen", "quantity": 1, "price": "3"},
        ]
        placed = await http.post(f"/customers/{ada['id']}/orders", json={"lines": lines})
        assert placed.status_code == 201
        first = placed.json()
        assert first["status"] == "open" and first["total"] == "28.00"
        second = (
            await http.post(
                f"/customers/{ada['id']}/orders",
                json={"lines": [{"sku": "ink", "quantity": 1, "price": "5"}]},
            )
        ).json()
        await http.post(
            f"/customers/{bob.json()['id']}/orders",
            json={"lines": [{"sku": "cap", "quantity": 1, "price": "9"}]},
        )

        # the item collection: the customer and both orders in one query
        account = (await http.get(f"/customers/{ada['id']}")).json()
        assert account["customer"] == ada
        assert [o["id"] for o in account["orders"]] == [first["id"], second["id"]]
        assert [o["id"] for o in (await http.get(f"/customers/{ada['id']}/orders")).json()] == [
            first["id"],
            second["id"],
        ]
        got = (await http.get(f"/customers/{ada['id']}/orders/{first['id']}/lines")).json()
        assert [(x["n"], x["sku"], x["quantity"]) for x in got] == [(1, "book", 2), (2, "pen", 1)]

        # paying moves the order from STATUS#open to STATUS#paid in the overloaded index
        assert len((await http.get("/orders", params={"status": "open"})).json()) == 3
        paid = await http.post(f"/customers/{ada['id']}/orders/{first['id']}/pay")
        assert paid.status_code == 200 and paid.json()["status"] == "paid"
        assert [o["id"] for o in (await http.get("/orders", params={"status": "paid"})).json()] == [
            first["id"]
        ]
        assert len((await http.get("/orders", params={"status": "open"})).json()) == 2
        again = await http.post(f"/customers/{ada['id']}/orders/{first['id']}/pay")
        assert again.status_code == 409

        nobody = "00000000-0000-0000-0000-000000000000"
        assert (await http.get(f"/customers/{nobody}")).status_code == 404
        assert (
            await http.post(f"/customers/{nobody}/orders", json={"lines": lines})
        ).status_code == 404
        assert (
            await http.post(f"/customers/{ada['id']}/orders", json={"lines": []})
        ).status_code == 422


async def test_aiohttp_app_saves_gets_and_updates_counters(
    aiohttp_app: ModuleType, engine_options: dict[str, Any]
) -> None:
    app = aiohttp_app.create_app(**engine_options)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        created = await client.put("/counters/visits", json={"value": 41, "note": "home"})
        assert created.status == 201
        assert await created.json() == {"name": "visits", "value": 41, "note": "home", "version": 1}

        bumped = await client.post("/counters/visits/increment")
        assert bumped.status == 200
        assert (await bumped.json())["value"] == 42

        got = await client.get("/counters/visits")
        assert (await got.json())["value"] == 42

        assert (await client.get("/counters/nothing")).status == 404
        assert (await client.post("/counters/nothing/increment")).status == 404
        assert (await client.put("/counters/bad", json={"value": "many"})).status == 422


def test_quickstart_runs_and_shows_each_step(child_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("== bind", "== save", "== get", "== query", "== scan", "== stream"):
        assert text in out
    assert "p1 now has 11 views" in out
    assert "tagged asyncio: ['p1', 'p3', 'p5']" in out
    assert "  modify p2: views 20 -> 25\n  remove p5: views 50 -> None\n" in out
    assert "posts left: 0" in out


# ---------------------------------------------------------------- the group indexer


@pytest.fixture
def indexer() -> Iterator[ModuleType]:
    yield from load_example("indexer")


async def test_the_indexer_group_counts_every_change_once_across_a_handover(
    indexer: ModuleType, engine_options: dict[str, Any]
) -> None:
    from adyn import Engine
    from adyn.stream import Pacing

    Post, WordCount = indexer.Post, indexer.WordCount
    fast = Pacing(idle_interval=0.05, max_idle_interval=0.2, min_interval=0.05, backoff=0.05)
    options = {
        "position": "trim_horizon",
        "failover": 1.5,
        "commit_interval": 0.2,
        "pacing": fast,
    }
    async with Engine(**engine_options) as first, Engine(**engine_options) as second:
        await first.bind(Post, WordCount)
        await second.bind(Post, WordCount)
        posts = {
            str(i): f"post number {i} about {'streams' if i % 2 else 'groups'}" for i in range(8)
        }
        stop_first, stop_second = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: indexer.run_member(second, stop_second, **options))
            tg.start_soon(lambda: indexer.run_member(first, stop_first, **options))
            for i, title in posts.items():
                await first.save(Post(id=i, title=title))
            await anyio.sleep(1.5)
            stop_first.set()  # one member leaves: the other takes its shards over at once
            posts["1"] = "post number 1 renamed"
            await first.save(Post(id="1", title=posts["1"]))
            del posts["2"]
            await first.delete(Post(id="2"))
            expected: dict[str, int] = {}
            for title in posts.values():
                for word in {w.lower() for w in title.split()}:
                    expected[word] = expected.get(word, 0) + 1

            async def counts() -> dict[str, int]:
                return {c.word: c.posts async for c in second.scan(WordCount) if c.posts}

            with anyio.fail_after(20):
                while await counts() != expected:  # noqa: ASYNC110 (the table is polled)
                    await anyio.sleep(0.2)
            stop_second.set()
        await anyio.sleep(0.5)  # nothing more may come: every change was counted once
        assert await counts() == expected
