"""adyn.testing: the embedded servers and the pytest plugin users test their code with."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from aiobotocore.session import get_session
from blockbuster import blockbuster_ctx

from adyn import InvalidArgument
from adyn.testing import LocalServerError, local_dynalite, local_dynamodb
from adyn.testing.plugin import unique_table_template
from adyn.testing.server import DYNALITE_INSTALL, _serve

SERVERS = Path(__file__).parent / "servers"


async def list_tables(endpoint_url: str) -> list[str]:
    async with get_session().create_client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as client:
        response: dict[str, Any] = await client.list_tables()
        names: list[str] = response["TableNames"]
        return names


async def assert_closed(endpoint_url: str) -> None:
    parts = urlsplit(endpoint_url)
    assert parts.hostname is not None and parts.port is not None
    with pytest.raises(OSError):
        stream = await anyio.connect_tcp(parts.hostname, parts.port)
        await stream.aclose()


async def test_local_dynamodb_serves_dynamodb_without_blocking_and_stops_on_exit() -> None:
    with blockbuster_ctx("adyn"):  # starting and stopping never blocks the event loop
        async with local_dynamodb() as endpoint_url:
            assert urlsplit(endpoint_url).hostname == "127.0.0.1"
            assert await list_tables(endpoint_url) == []
    await assert_closed(endpoint_url)


async def test_local_dynamodb_stops_when_cancelled() -> None:
    urls: list[str] = []
    with anyio.CancelScope() as scope:
        async with local_dynamodb() as endpoint_url:
            urls.append(endpoint_url)
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    await assert_closed(urls[0])


async def test_local_dynalite_serves_dynamodb_and_stops_on_exit() -> None:
    async with local_dynalite(os.environ.get("ADYN_DYNALITE") or SERVERS) as endpoint_url:
        assert await list_tables(endpoint_url) == []
    await assert_closed(endpoint_url)


async def test_missing_moto_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "moto" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(LocalServerError, match=re.escape("pip install 'adyn[testing]'")):
        async with local_dynamodb():
            pass


async def test_a_moto_it_cannot_correct_is_refused_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "moto"
    fake.mkdir()
    (fake / "__init__.py").write_text('__version__ = "99.0.0"\n')
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the server's child finds this moto first
    with pytest.raises(LocalServerError) as raised:
        async with local_dynamodb():
            pass
    message = str(raised.value)
    assert "exited with status 3" in message
    assert "moto 99.0.0 is not a release adyn.testing can correct" in message
    assert "moto[server]>=5.1,<5.3" in message and "corrected=False" in message


async def test_an_uncorrected_moto_is_there_on_request() -> None:
    async with local_dynamodb(corrected=False) as endpoint_url:
        assert await list_tables(endpoint_url) == []
    await assert_closed(endpoint_url)


async def test_missing_dynalite_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(LocalServerError, match=re.escape(DYNALITE_INSTALL)):
        async with local_dynalite(tmp_path):
            pass


async def test_a_port_that_is_no_port_is_refused_before_starting() -> None:
    for port in ("8000", -1, 70000, True):
        with pytest.raises(InvalidArgument, match="port"):
            async with local_dynamodb(port=port):  # type: ignore[arg-type]
                pass


async def test_a_server_that_dies_at_startup_reports_its_output() -> None:
    def command(port: int) -> list[str]:
        return [sys.executable, "-c", f"raise SystemExit('cannot serve on {port}')"]

    with pytest.raises(LocalServerError, match=r"exited with status 1:\ncannot serve on \d+"):
        async with _serve("doomed", command, 30):
            pass


def test_unique_table_template_is_unique_and_a_valid_table_name() -> None:
    first = unique_table_template("test_save[moto-fast]")
    second = unique_table_template("test_save[moto-fast]")
    assert first != second
    name = first.format(table_name="posts")
    assert re.fullmatch(r"posts-test_save-moto-fast-[0-9a-f]{8}", name)


def test_the_plugin_imports_without_moto(child_env: dict[str, str]) -> None:
    # moto is the `testing` extra: users without it must still be able to run pytest.
    code = "import sys; sys.modules['moto'] = None; import adyn.testing.plugin"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env
    )
    assert result.returncode == 0, result.stderr


PLUGIN_TESTS = textwrap.dedent(
    """
    from typing import Annotated

    import boto3
    import pytest

    from adyn import HashKey, Model


    class Note(Model):
        id: Annotated[str, HashKey()]
        text: str = ""


    @pytest.mark.asyncio
    @pytest.mark.parametrize("key", ["one", "two"])
    async def test_each_test_has_its_own_tables(adyn_engine, key):
        await adyn_engine.bind(Note)
        await adyn_engine.save(Note(id=key, text=f"from {key}"))
        notes = await adyn_engine.scan(Note).all()
        assert [note.id for note in notes] == [key]


    def test_both_tables_live_on_the_one_session_server(dynamodb_endpoint):
        client = boto3.client(
            "dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        )
        names = client.list_tables()["TableNames"]
        assert len(names) == 2
        assert all(name.startswith("Note-test_each_test_has_its_own_tables-") for name in names)
    """
)


def test_plugin_fixtures_in_a_users_test_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, child_env: dict[str, str]
) -> None:
    monkeypatch.setenv("PYTHONPATH", child_env["PYTHONPATH"])
    pytester.makepyfile(test_notes=PLUGIN_TESTS)
    args = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
    if not entry_point_registered():
        args += ["-p", "adyn.testing.plugin"]  # a checkout that was never pip-installed
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=3)


def entry_point_registered() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value == "adyn.testing.plugin" for ep in entry_points(group="pytest11"))
