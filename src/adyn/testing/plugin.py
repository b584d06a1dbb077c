"""The pytest plugin that installing adyn registers (entry point `pytest11`, name `adyn`).

Fixtures:

- `dynamodb_endpoint`: the URL of one embedded moto server for the whole test session;
- `adyn_engine`: an open `Engine` on that server whose tables get a name unique to the test, so
  tests never see each other's tables.

Importing this module is cheap and needs neither moto nor pytest-asyncio: the server and the
engine are imported only when a test asks for a fixture.
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from adyn import Engine

__all__ = ["adyn_engine", "dynamodb_endpoint", "unique_table_template"]


def _async_fixture(function: Callable[..., Any]) -> Any:
    """`pytest_asyncio.fixture` when pytest-asyncio is installed (strict mode needs it)."""
    try:
        pytest_asyncio = importlib.import_module("pytest_asyncio")
    except ImportError:  # e.g. anyio's pytest plugin drives async fixtures instead
        return pytest.fixture(function)
    return pytest_asyncio.fixture(function)


def unique_table_template(test_name: str) -> str:
    """A `table_name_template` that gives each table a suffix unique to one test.

    DynamoDB allows `[A-Za-z0-9_.-]` in table names; the test name is reduced to those so a
    table in a listing tells which test made it.
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-")[:40]
    return f"{{table_name}}-{slug}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """The endpoint URL of an embedded DynamoDB (moto) shared by the test session."""
    from .server import local_dynamodb, serve_in_thread

    # The server runs in its own event-loop thread so that this fixture works with any
    # event-loop scope, in sync tests, and with or without pytest-asyncio.
    with serve_in_thread(local_dynamodb()) as url:
        yield url


@_async_fixture
async def adyn_engine(
    dynamodb_endpoint: str, request: pytest.FixtureRequest
) -> AsyncIterator[Engine]:
    """An open `Engine` on `dynamodb_endpoint`, with table names unique to this test."""
    from adyn import Engine

    template = unique_table_template(request.node.name)
    async with Engine(endpoint_url=dynamodb_endpoint, table_name_template=template) as engine:
        yield engine
