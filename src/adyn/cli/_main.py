"""The `adyn` group (global options) and `main()`, which turns every outcome into an exit code."""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

import click

from ._common import (
    EXIT_BUG,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    CommandError,
    Interrupted,
    Settings,
    one_line,
)
from .backfill import backfill
from .export import export
from .imports import import_
from .local import local
from .tables import tables
from .tail import tail


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="DynamoDB's endpoint (default: the AWS configuration, AWS_ENDPOINT_URL_DYNAMODB).",
)
@click.option("--region", metavar="REGION", help="The AWS region (default: the AWS config).")
@click.option(
    "--table-template",
    default="{table_name}",
    show_default=True,
    envvar="ADYN_TABLE_TEMPLATE",
    metavar="TEMPLATE",
    help="Table names, as the engine's table_name_template: e.g. 'prod-{table_name}' "
    "(env: ADYN_TABLE_TEMPLATE).",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Show adyn's log: -v its progress notes, -vv every call (credentials never appear).",
)
@click.version_option(package_name="adyn", message="adyn %(version)s")
@click.pass_context
def app(
    ctx: click.Context,
    endpoint_url: str | None,
    region: str | None,
    table_template: str,
    verbose: int,
) -> None:
    """adyn: operate DynamoDB tables through your adyn models.

    Models are named package.module:Model, or package.module for every concrete model in it;
    the current folder is importable. Exit codes: 0 done, 1 a finding (drift, failed items),
    2 an error, 3 a bug in adyn.
    """
    _log_to_stderr(verbose)
    ctx.obj = Settings(endpoint_url=endpoint_url, region=region, table_template=table_template)


def _log_to_stderr(verbose: int) -> None:
    """adyn's log on stderr: errors only by default (the commands report what went wrong
    themselves, warnings included), more with -v."""
    import logging

    level = {0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("adyn: %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("adyn")
    logger.addHandler(handler)
    logger.setLevel(level)


app.add_command(tables)
app.add_command(tail)
app.add_command(export)
app.add_command(import_)
app.add_command(backfill)
app.add_command(local)


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: run the command line and exit with its code."""
    sys.exit(run_command(argv))


def run_command(argv: list[str] | None = None) -> int:
    """Run `adyn` with `argv` (default: sys.argv[1:]) and return the exit code."""
    try:
        result = app.main(args=argv, prog_name="adyn", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "adyn"
        _error(f"{one_line(exc.format_message())} (see `{where} --help`)")
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (Interrupted, click.Abort, KeyboardInterrupt):
        _error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        leaf = _leaf(exc)
        if _users_to_fix(leaf):
            _error(one_line(f"{_label(leaf)}{leaf}"))
            return EXIT_ERROR
        traceback.print_exception(exc)
        _error(f"internal error ({type(leaf).__name__}); this is a bug in adyn, please report it")
        return EXIT_BUG
    return result if isinstance(result, int) else 0


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _users_to_fix(exc: BaseException) -> bool:
    """Errors of the user's setup or data, as opposed to bugs: one line, exit code 2."""
    from adyn import AdynError

    if isinstance(exc, AdynError | OSError | CommandError):
        return True
    botocore = sys.modules.get("botocore.exceptions")
    return botocore is not None and isinstance(exc, botocore.BotoCoreError)


def _label(exc: BaseException) -> str:
    from adyn import DynamoError

    if isinstance(exc, DynamoError | OSError | CommandError):
        return ""
    return f"{type(exc).__name__}: "


def _error(message: str) -> None:
    click.echo(f"adyn: error: {message}", err=True)
