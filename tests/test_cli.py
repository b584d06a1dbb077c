"""The `adyn` command as a child process: global options, exit codes, errors, tables, local."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from adyn import Engine
from harness.cli import Lines, Project, stop


@pytest.fixture
def shop(
    tmp_path: Path, moto_endpoint: str, child_env: dict[str, str], request: pytest.FixtureRequest
) -> Project:
    return Project.create(tmp_path, moto_endpoint, child_env, request.node.name)


def test_the_console_script_and_python_m_are_the_same_command(shop: Project) -> None:
    script = Path(sys.executable).parent / "adyn"
    assert script.exists(), "pip install adyn must install the `adyn` console script"
    by_script = shop.run("--version", globals_=False, argv0=[str(script)])
    by_module = shop.run("--version", globals_=False)
    assert by_script == by_module and by_module.code == 0
    assert by_module.out.strip() == "adyn 0.1.0"
    help_text = shop.run("--help", globals_=False).out
    for command in ("tables", "tail", "export", "import", "backfill", "local"):
        assert command in help_text
    for option in ("--endpoint-url", "--region", "--table-template"):
        assert option in help_text


@pytest.mark.parametrize(
    "command",
    [
        ["tables", "check"],
        ["tables", "create"],
        ["tail"],
        ["export"],
        ["import"],
        ["backfill"],
        ["local"],
    ],
)
def test_every_command_explains_itself(shop: Project, command: list[str]) -> None:
    result = shop.run(*command, "--help", globals_=False)
    assert result.code == 0 and "Usage: adyn " + " ".join(command) in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tables", "check"], "Missing argument 'MODELS...'"),
        (["tables", "check", "shop", "--nope"], "No such option '--nope'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["backfill", "shop:Product", "shop:add_slug", "--segments", "0"], "--segments"),
        (["backfill", "shop:Product", "shop:add_slug", "--rate", "-1"], "--rate"),
        (["backfill", "shop:Product", "shop:add_slug", "--segment", "3/3"], "not I/N"),
        (["local", "--port", "70000"], "--port"),
        (["import", "shop:Product", "no-such-file.jsonl"], "does not exist"),
    ],
)
def test_usage_errors_exit_2_with_one_line(shop: Project, args: list[str], message: str) -> None:
    result = shop.run(*args)
    assert result.code == 2, result
    assert message in result.error_line
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchmodule:Product", "there is no module 'nosuchmodule'"),
        ("shop:Nope", "shop has no 'Nope'"),
        ("shop:slug_of", "is a function, not a concrete adyn Model"),
        ("shop:Base", "is the class Base, not a concrete adyn Model"),
        ("anyio", "module 'anyio' holds no concrete adyn Model"),
        ("broken:Product", "importing broken failed: RuntimeError: the settings file is missing"),
    ],
)
def test_a_model_path_that_does_not_resolve_is_one_line_and_exit_2(
    shop: Project, spec: str, message: str
) -> None:
    result = shop.run("tables", "check", spec)
    assert result.code == 2, result
    assert message in result.error_line


def test_tables_check_finds_missing_tables_create_makes_them_then_check_passes(
    shop: Project,
) -> None:
    missing = shop.run("tables", "check", "shop")  # every model of the module
    assert missing.code == 1, missing
    table = shop.template.format(table_name="products")
    assert f"missing  {table}  (Product)" in missing.out
    assert f"missing  {shop.template.format(table_name='orders')}  (Order)" in missing.out
    assert "2 of 2 table(s) are missing or differ" in missing.err

    created = shop.run("-v", "tables", "create", "shop:Product", "shop:Order")
    assert created.code == 0, created
    assert f"created  {table}  (Product)" in created.out
    assert f"adyn: INFO adyn.bind: created table {table}" in created.err  # -v: adyn's log

    again = shop.run("tables", "create", "shop")
    assert again.code == 0 and f"ok       {table}  (Product)" in again.out
    check = shop.run("tables", "check", "shop")
    assert check.code == 0 and check.err == "", check
    assert check.out.count("ok ") == 2


def test_tables_check_prints_every_difference_of_a_drifted_table(shop: Project) -> None:
    assert shop.run("tables", "create", "shop:Product").code == 0
    drift = shop.run("tables", "check", "drifted:Product", "shop:Order")
    assert drift.code == 1, drift
    table = shop.template.format(table_name="products")
    assert f"DRIFT    {table}  (Product)" in drift.out
    assert "- " in drift.out and "by_name" in drift.out
    assert "missing" in drift.out  # orders: never created
    create = shop.run("tables", "create", "drifted:Product")  # never alters a live table
    assert create.code == 1 and "DRIFT" in create.out


def test_the_table_template_option_and_its_environment_variable(shop: Project) -> None:
    assert shop.run("tables", "create", "shop:Order").code == 0
    other = shop.template.replace("{table_name}", "{table_name}-other")
    elsewhere = shop.run("--table-template", other, "tables", "check", "shop:Order")
    # a later --table-template wins over the project's: the other name is missing
    assert elsewhere.code == 1 and other.format(table_name="orders") in elsewhere.out
    argv = [sys.executable, "-m", "adyn", "--endpoint-url", shop.endpoint]
    by_env = subprocess.run(
        [*argv, "tables", "check", "shop:Order"],
        cwd=shop.root,
        env={**shop.env, "ADYN_TABLE_TEMPLATE": shop.template},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert by_env.returncode == 0 and shop.template.format(table_name="orders") in by_env.stdout
    bad = shop.run("--table-template", "prod", "tables", "check", "shop:Order")
    assert bad.code == 2 and "must contain {table_name}" in bad.error_line


def test_the_region_option_picks_the_region(shop: Project) -> None:
    # moto keeps each region's tables apart
    assert shop.run("--region", "eu-west-1", "tables", "create", "shop:Order").code == 0
    assert shop.run("--region", "eu-west-1", "tables", "check", "shop:Order").code == 0
    assert shop.run("--region", "us-east-1", "tables", "check", "shop:Order").code == 1


def test_an_endpoint_nobody_listens_on_is_one_line_and_exit_2(shop: Project) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        result = shop.run("tables", "check", "shop:Order", endpoint=f"http://127.0.0.1:{port}")
    assert result.code == 2, result
    assert "Could not connect" in result.error_line or "Connect" in result.error_line


async def test_local_serves_on_a_port_until_interrupted(shop: Project) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await shop.start("local", "--port", str(port))
    try:
        (url,) = await Lines(process).next(1, timeout=90)
        assert url == f"http://127.0.0.1:{port}"
        created = await shop.run_async("tables", "create", "shop:Order", endpoint=url)
        assert created.code == 0, created
        async with Engine(
            endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x"
        ) as engine:
            order = shop.shop().Order
            engine.table_name_template = shop.template
            await engine.bind(order, create=False)
            await engine.save(order(customer="c1", number=1))
            assert await engine.get(order, customer="c1", number=1) is not None
        taken = await shop.run_async("local", "--port", str(port))
        assert taken.code == 2 and f"port {port}" in taken.error_line
    finally:
        code, err = await stop(process, signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))  # the server went with it


async def test_local_picks_a_free_port_and_stops_on_sigterm(shop: Project) -> None:
    process = await shop.start("local")
    try:
        (url,) = await Lines(process).next(1, timeout=90)
        assert url.startswith("http://127.0.0.1:")
        with anyio.fail_after(30):
            stream = await anyio.connect_tcp("127.0.0.1", int(url.rsplit(":", 1)[1]))
            await stream.aclose()
    finally:
        code, err = await stop(process, signal.SIGTERM)
    assert code == 0, err


def modules_loaded(env: dict[str, str], statement: str, wanted: str) -> list[str]:
    """The modules a fresh interpreter holds after `statement` that `wanted(name)` picks."""
    probe = f"import sys; {statement}; print(sorted(m for m in sys.modules if {wanted}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = eval(done.stdout)  # a list literal printed by the probe
    return loaded


def test_import_adyn_loads_none_of_the_command(child_env: dict[str, str]) -> None:
    command = "m.split('.')[0] in ('click', 'rich') or m.startswith('adyn.cli')"
    statement = "import adyn; adyn.Engine; adyn.Model; adyn.BackfillReport; adyn.BatchProgress"
    assert modules_loaded(child_env, statement, command) == []
