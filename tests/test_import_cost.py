"""`import adyn` stays light: the tools, the test helpers and telemetry load only when used."""

from __future__ import annotations

import subprocess
import sys

import adyn

HEAVY = ("click", "rich", "opentelemetry", "adyn.testing", "adyn.cli", "moto", "hypothesis")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_import_adyn_loads_no_tooling() -> None:
    modules = _modules_after("import adyn")
    assert [name for name in HEAVY if _loaded(modules, name)] == []


def test_every_public_name_still_imports() -> None:
    modules = _modules_after(f"from adyn import {', '.join(adyn.__all__)}")
    assert "adyn.engine" in modules
    assert [
        name for name in ("click", "rich", "adyn.testing", "moto") if _loaded(modules, name)
    ] == []


def test_an_engine_at_work_loads_no_http_library(moto_endpoint: str) -> None:
    # adyn's own HTTP/1.1 client carries the calls; aiohttp serves routes through a proxy only
    code = f"""
import asyncio
from typing import Annotated
from adyn import Engine, HashKey, Model

class Note(Model):
    class Meta:
        table_name = "adyn-import-cost"
    id: Annotated[str, HashKey()]

async def main():
    async with Engine(endpoint_url={moto_endpoint!r}, region_name="us-east-1",
                      aws_access_key_id="k", aws_secret_access_key="s") as engine:
        await engine.bind(Note)
        await engine.save(Note(id="a"))
        assert await engine.get(Note, id="a") is not None

asyncio.run(main())
"""
    modules = _modules_after(code)
    assert [name for name in ("aiohttp", "aiobotocore", "httpx") if _loaded(modules, name)] == []
