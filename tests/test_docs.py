"""Every ```python block in docs/*.md and README.md runs, so the documentation cannot rot.

The blocks of one file run in order in one module namespace and one event loop, as they would in
`python -m asyncio`: top-level `await`, `async with` and `async for` are allowed. A block right
after the line `<!-- no-run -->` is shown but not run (keep that rare: only for code that cannot
run here, such as a server that never returns).

The environment points every AWS client at an embedded moto server (`AWS_ENDPOINT_URL`), with
test credentials, so a page can show production code (`Engine(region_name="eu-west-1")`). Each
file starts from an empty server. `$ADYN_DYNALITE` names the suite's dynalite.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
import textwrap
import types
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from adyn.testing import local_dynamodb
from adyn.testing.server import serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
SERVERS = ROOT / "tests" / "servers"
NO_RUN = "<!-- no-run -->"
OPENING = re.compile(r"^(?P<indent>[ \t]*)```python\s*$")
CLOSING = re.compile(r"^[ \t]*```\s*$")
HANG_GUARD = 120.0  # seconds; a page whose code never finishes fails instead of hanging CI


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the block's first code line in the page
    code: str
    runs: bool


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown page, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    previous = ""  # the last non-blank line before the current one
    index = 0
    while index < len(lines):
        opening = OPENING.match(lines[index])
        if opening is None:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        start = index + 1
        end = start
        while end < len(lines) and not CLOSING.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"the ```python block at line {index + 1} is never closed")
        code = textwrap.dedent("\n".join(lines[start:end]))
        blocks.append(Block(line=start + 1, code=code, runs=previous != NO_RUN))
        previous = ""
        index = end + 1
    return blocks


def pages_with_code() -> list[Path]:
    return [page for page in PAGES if page.is_file() and python_blocks(page.read_text())]


def test_blocks_are_found_in_order_and_no_run_is_honoured() -> None:
    page = textwrap.dedent(
        """\
        # Title

        ```python
        x = 1
        ```

        <!-- no-run -->

        ```python
        serve_forever()
        ```

        1. A step:

           ```python
           y = x + 1
           ```
        ```bash
        echo not python
        ```
        """
    )
    assert python_blocks(page) == [
        Block(line=4, code="x = 1", runs=True),
        Block(line=10, code="serve_forever()", runs=False),
        Block(line=16, code="y = x + 1", runs=True),
    ]


@pytest.fixture(scope="module")
def docs_endpoint() -> Iterator[str]:
    with serve_in_thread(local_dynamodb()) as url:
        yield url


@pytest.fixture
def aws_env(docs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # moto's own endpoint empties every service: each page starts from a clean server.
    request = urllib.request.Request(f"{docs_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", docs_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", docs_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "docs")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "docs")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # local_dynalite() in a page finds the suite's dynalite.
    monkeypatch.setenv("ADYN_DYNALITE", os.environ.get("ADYN_DYNALITE") or str(SERVERS))
    return docs_endpoint


@pytest.mark.parametrize("page", pages_with_code(), ids=lambda page: page.name)
def test_page_code_runs(page: Path, aws_env: str) -> None:
    # In a thread with an event loop of its own, the page's code runs as a user's script
    # would, apart from the suite's loop; a block may even call asyncio.run() itself.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(run_page, page).result()


def run_page(page: Path) -> None:
    name = f"adyn_docs_{page.stem.replace('-', '_')}"
    module = types.ModuleType(name)
    module.__file__ = str(page)
    sys.modules[name] = module  # pydantic resolves a model's annotations through its module
    try:
        with asyncio.Runner() as runner:
            for block in python_blocks(page.read_text()):
                if block.runs:
                    run_block(runner, block, page, module.__dict__)
    finally:
        del sys.modules[name]


def run_block(
    runner: asyncio.Runner, block: Block, page: Path, namespace: dict[str, object]
) -> None:
    # Leading newlines make tracebacks point at the page's own line numbers.
    source = "\n" * (block.line - 1) + block.code
    code = compile(source, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # the project's own documentation
    if inspect.iscoroutine(result):
        runner.run(asyncio.wait_for(result, HANG_GUARD))
