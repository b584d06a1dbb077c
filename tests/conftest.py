"""Fixtures for adyn's own suite: every integration test runs on every DynamoDB at hand.

- `backend`: the endpoint URL of one DynamoDB implementation, started once per session: "moto"
  and "dynalite" always, "env" too when `ADYN_TEST_ENDPOINT` is set (DynamoDB Local, real AWS;
  `ADYN_TEST_REGION` names its region).
- `engine`: an open `Engine` on a backend with table names unique to the test. Every test that
  uses it runs as `moto`, `dynalite` (and `env`). Tests marked `moto_only` are not generated for
  dynalite at all.
- `moto_endpoint`: the session's moto server, for tests that always use moto.
- `child_env`: the environment for a child Python process that must import this same adyn.

Blocking calls made by adyn inside the event loop fail every test that uses an engine.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "tests" / "servers"

if importlib.util.find_spec("adyn") is None:  # running from a checkout without installing adyn
    sys.path.insert(0, str(ROOT / "src"))

from adyn.testing import plugin  # noqa: E402
from adyn.testing.server import (  # noqa: E402
    LocalServerError,
    local_dynalite,
    local_dynamodb,
    serve_in_thread,
)

if TYPE_CHECKING:
    from adyn import Engine

ENV_ENDPOINT = "ADYN_TEST_ENDPOINT"
ENV_REGION = "ADYN_TEST_REGION"


def pytest_configure(config: pytest.Config) -> None:
    # Installed adyn registers its plugin through the `pytest11` entry point; a bare checkout
    # has no entry point, so register it here.
    manager = config.pluginmanager
    if not (manager.has_plugin("adyn") or manager.has_plugin("adyn.testing.plugin")):
        manager.register(plugin, "adyn")
    manager.import_plugin("pytester")  # tests/test_testing.py runs pytest on a user's suite


def backend_names(*, moto_only: bool) -> list[str]:
    names = ["moto"] if moto_only else ["moto", "dynalite"]
    if os.environ.get(ENV_ENDPOINT):
        names.append("env")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    moto_only = metafunc.definition.get_closest_marker("moto_only") is not None
    names = backend_names(moto_only=moto_only)
    if "backend" in metafunc.fixturenames or "engine" in metafunc.fixturenames:
        metafunc.parametrize("backend", names, indirect=True, scope="session")


class Servers:
    """Starts each backend's server on first use and keeps it until the session ends."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._urls: dict[str, str] = {}
        self._errors: dict[str, str] = {}

    def url(self, name: str) -> str:
        if name == "env":
            return os.environ[ENV_ENDPOINT]
        if name in self._errors:  # fail fast: do not retry a broken server for every test
            pytest.fail(self._errors[name], pytrace=False)
        if name not in self._urls:
            server = local_dynamodb() if name == "moto" else local_dynalite(self._dynalite_path())
            try:
                self._urls[name] = self._stack.enter_context(serve_in_thread(server))
            except LocalServerError as exc:
                self._errors[name] = f"{name} backend unavailable: {exc}"
                pytest.fail(self._errors[name], pytrace=False)
        return self._urls[name]

    @staticmethod
    def _dynalite_path() -> str:
        return os.environ.get("ADYN_DYNALITE") or str(SERVERS)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(stack)


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest, servers: Servers) -> str:
    """The endpoint URL of the backend this test runs on (parametrized per test)."""
    return servers.url(request.param)


@pytest.fixture(scope="session")
def moto_endpoint(servers: Servers) -> str:
    """The endpoint URL of the session's moto server."""
    return servers.url("moto")


@pytest.fixture(scope="session")
def dynamodb_endpoint(moto_endpoint: str) -> str:
    """The plugin's fixture, pointed at the suite's moto server so one moto serves all."""
    return moto_endpoint


@pytest.fixture(scope="session")
def child_env() -> dict[str, str]:
    """The environment for a child Python that imports the same adyn as this process."""
    import adyn

    source = str(Path(adyn.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture
async def engine(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    """An open engine on this test's backend, with table names unique to the test."""
    from adyn import Engine

    on_env = request.node.callspec.params.get("backend") == "env"
    region = os.environ.get(ENV_REGION) if on_env else None
    template = plugin.unique_table_template(request.node.name)
    async with Engine(
        endpoint_url=backend,
        region_name=region,
        table_name_template=template,
    ) as engine:
        yield engine
    if on_env:  # a real service keeps (and bills) tables: drop the ones this test made
        await drop_tables(backend, region, suffix=template.removeprefix("{table_name}"))


async def drop_tables(endpoint_url: str, region: str | None, *, suffix: str) -> None:
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region
    ) as client:
        async for page in client.get_paginator("list_tables").paginate():
            for name in page.get("TableNames", []):
                if name.endswith(suffix):
                    await client.delete_table(TableName=name)


@pytest.fixture(autouse=True)
def no_blocking_calls(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose adyn code blocks the event loop (file, socket, sleep, lock calls).

    Watches the test body only: the engine is opened first, and its close runs after.
    """
    engines = [name for name in ("engine", "adyn_engine") if name in request.fixturenames]
    if not engines:
        yield
        return
    from blockbuster import blockbuster_ctx

    for name in engines:
        request.getfixturevalue(name)
    with blockbuster_ctx("adyn"):
        yield
