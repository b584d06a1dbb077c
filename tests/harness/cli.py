"""The `adyn` command as a user runs it: a project folder holding a models module, and the command
as a child process of this same adyn, pointed at a test server with table names unique to a test.

```python
shop = Project.create(tmp_path, moto_endpoint, child_env, "test-name")
result = shop.run("tables", "create", "shop")          # python -m adyn ..., in the project folder
assert result.code == 0, result.err
process = await shop.start("tail", "shop:Product")       # a running command (anyio Process)
async with shop.engine() as engine: ...                  # the same tables, from the test
```
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from adyn import Engine
from adyn.testing.plugin import unique_table_template

# The user's models and backfill functions (written into the project folder as shop.py).
SHOP = textwrap.dedent(
    '''
    """A user's models."""

    import time
    from decimal import Decimal
    from typing import Annotated

    import anyio

    from adyn import HashKey, Model, RangeKey, Version


    class Product(Model):
        class Meta:
            table_name = "products"
            stream = "new_and_old"

        sku: Annotated[str, HashKey()]
        name: str
        price: int = 0
        tags: set[str] = set()
        slug: str | None = None
        version: Annotated[int, Version()] = 0


    class Order(Model):
        class Meta:
            table_name = "orders"

        customer: Annotated[str, HashKey()]
        number: Annotated[int, RangeKey()]
        total: Decimal = Decimal("0")


    class Base(Model):
        class Meta:
            abstract = True

        id: Annotated[str, HashKey()]


    def slug_of(product: Product) -> str:
        return product.name.lower().replace(" ", "-")


    def add_slug(product: Product) -> Product | None:
        if product.slug is not None:
            return None
        product.slug = slug_of(product)
        return product


    async def add_slug_slowly(product: Product) -> Product | None:
        await anyio.sleep(0.05)
        return add_slug(product)


    def add_slug_logged(product: Product) -> Product | None:
        """Slow on purpose (it blocks), and it notes every call in calls.log."""
        with open("calls.log", "a") as log:
            log.write(product.sku + "\\n")
        time.sleep(0.01)
        return add_slug(product)


    def refuse_odd(product: Product) -> Product | None:
        if int(product.sku[1:]) % 2:
            raise ValueError(f"odd sku {product.sku}")
        return add_slug(product)
    '''
)

# Models whose table differs from the ones above (same table names): for drift checks.
DRIFTED = textwrap.dedent(
    """
    from typing import Annotated

    from adyn import GlobalIndex, HashKey, Model


    class Product(Model):
        class Meta:
            table_name = "products"
            stream = "new_and_old"

        sku: Annotated[str, HashKey()]
        name: str
        by_name = GlobalIndex(hash_key="name", projection="all")
    """
)

BROKEN = 'raise RuntimeError("the settings file is missing")\n'


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"

    @property
    def error_line(self) -> str:
        """The one `adyn: error:` line of a failed command (and no traceback anywhere)."""
        assert "Traceback" not in self.err, self.err
        lines = [line for line in self.err.splitlines() if line.startswith("adyn: error:")]
        assert len(lines) == 1, self.err
        return lines[0]


class Project:
    """A folder with the user's modules, and how to run `adyn` in it."""

    def __init__(self, root: Path, endpoint: str, env: dict[str, str], template: str) -> None:
        self.root = root
        self.endpoint = endpoint
        self.env = env
        self.template = template

    @classmethod
    def create(cls, root: Path, endpoint: str, child_env: dict[str, str], test: str) -> Project:
        root.mkdir(parents=True, exist_ok=True)
        (root / "shop.py").write_text(SHOP)
        (root / "drifted.py").write_text(DRIFTED)
        (root / "broken.py").write_text(BROKEN)
        env = {
            k: v
            for k, v in child_env.items()
            if not k.startswith(("AWS_", "ADYN_TABLE")) or k == "AWS_EC2_METADATA_DISABLED"
        }
        env.update(
            AWS_ACCESS_KEY_ID="cli-tests",
            AWS_SECRET_ACCESS_KEY="cli-tests",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            COLUMNS="200",  # progress lines unwrapped in the captured stderr
        )
        return cls(root, endpoint, env, unique_table_template(test))

    def argv(self, *args: str, endpoint: str | None = None, globals_: bool = True) -> list[str]:
        head = [sys.executable, "-m", "adyn"]
        if globals_:
            head += ["--endpoint-url", endpoint or self.endpoint, "--table-template", self.template]
        return [*head, *args]

    def run(
        self,
        *args: str,
        endpoint: str | None = None,
        globals_: bool = True,
        timeout: float = 180,
        env: dict[str, str] | None = None,
        argv0: list[str] | None = None,
    ) -> Result:
        """Run the command to its end (blocking: for tests without an event loop of their own)."""
        argv = self.argv(*args, endpoint=endpoint, globals_=globals_)
        if argv0 is not None:
            argv = [*argv0, *argv[3:]]
        done = subprocess.run(
            argv,
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    async def run_async(self, *args: str, endpoint: str | None = None) -> Result:
        """Run the command to its end without blocking this test's event loop."""
        done = await anyio.run_process(
            self.argv(*args, endpoint=endpoint), cwd=self.root, env=self.env, check=False
        )
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode())

    async def start(self, *args: str, endpoint: str | None = None) -> Process:
        """Start the command; the caller reads its output and stops it."""
        return await anyio.open_process(
            self.argv(*args, endpoint=endpoint), cwd=self.root, env=self.env
        )

    @asynccontextmanager
    async def engine(self, endpoint: str | None = None) -> AsyncIterator[Engine]:
        """An engine on the project's tables (same endpoint and table names as the command)."""
        async with Engine(
            endpoint_url=endpoint or self.endpoint,
            table_name_template=self.template,
            region_name="us-east-1",
            aws_access_key_id="cli-tests",
            aws_secret_access_key="cli-tests",
        ) as engine:
            yield engine

    def shop(self) -> Any:
        """The project's shop module, imported in this process (for its models)."""
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"shop_{id(self)}", self.root / "shop.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


class Lines:
    """A running command's stdout (or stderr), line by line."""

    def __init__(self, process: Process, stderr: bool = False) -> None:
        stream = process.stderr if stderr else process.stdout
        assert stream is not None
        self._stream = stream
        self._buffer = b""
        self._lines: list[str] = []

    async def next(self, count: int, timeout: float = 60) -> list[str]:  # noqa: ASYNC109
        """The next `count` lines (fails after `timeout` seconds without them)."""
        with anyio.fail_after(timeout):
            while len(self._lines) < count:
                try:
                    self._buffer += await self._stream.receive()
                except anyio.EndOfStream:
                    raise AssertionError(
                        f"the command ended after {self._lines} of {count} lines"
                    ) from None
                *complete, self._buffer = self._buffer.split(b"\n")
                self._lines.extend(line.decode() for line in complete)
        taken, self._lines = self._lines[:count], self._lines[count:]
        return taken

    async def quiet(self, seconds: float) -> list[str]:
        """Whatever lines arrive within `seconds` (to show that nothing more comes)."""
        with anyio.move_on_after(seconds):
            while True:
                try:
                    self._buffer += await self._stream.receive()
                except anyio.EndOfStream:
                    break
                *complete, self._buffer = self._buffer.split(b"\n")
                self._lines.extend(line.decode() for line in complete)
        taken, self._lines = self._lines, []
        return taken


async def stop(process: Process, sig: int) -> tuple[int, str]:
    """Send `sig`, wait for the exit; return the exit code and the rest of stderr."""
    process.send_signal(sig)
    return await finish(process)


async def finish(process: Process) -> tuple[int, str]:
    """Wait for the exit (a minute at most); return the exit code and the rest of stderr."""
    err = b""
    with anyio.fail_after(60):
        if process.stderr is not None:
            async for chunk in process.stderr:
                err += chunk
        code = await process.wait()
    return code, err.decode()


def kill_hard(process: Process) -> None:
    """SIGKILL: the command gets no chance to clean up (a crash, a lost machine)."""
    os.kill(process.pid, 9)
