"""What every command shares: global settings, exit codes, errors, the engine and the runner."""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import anyio
import click

if TYPE_CHECKING:
    from adyn import Engine, Model

EXIT_OK = 0
EXIT_FINDING = 1  # the command ran and found something: drift, items that failed
EXIT_ERROR = 2  # the command could not do its job: usage, imports, tables, DynamoDB refusing
EXIT_BUG = 3  # an unexpected exception inside adyn (printed with its traceback)
EXIT_INTERRUPTED = 130

_BULLET = re.compile(r"^\s*- ")


def one_line(text: str) -> str:
    """A message as one line (multi-line errors such as TableMismatch are joined)."""
    parts = (_BULLET.sub("", line).strip() for line in str(text).splitlines())
    return "; ".join(part for part in parts if part)


class CommandError(click.ClickException):
    """A user-facing failure: printed as one line, exit code 2."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"adyn: error: {one_line(self.message)}", err=True)


class Interrupted(Exception):
    """The command was stopped by SIGINT (Ctrl-C) or SIGTERM after cleaning up."""


@dataclass(frozen=True)
class Settings:
    """The global options, passed to every command through click's context."""

    endpoint_url: str | None
    region: str | None
    table_template: str

    @asynccontextmanager
    async def engine(self) -> AsyncIterator[Engine]:
        from adyn import Engine
        from adyn.errors import InvalidArgument

        if "{table_name}" not in self.table_template:
            raise InvalidArgument(
                f"--table-template {self.table_template!r} must contain {{table_name}}"
            )
        async with Engine(
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            table_name_template=self.table_template,
        ) as engine:
            yield engine


def settings() -> Settings:
    found = click.get_current_context().find_object(Settings)
    assert found is not None
    return found


async def bind_existing(engine: Engine, models: Sequence[type[Model]]) -> None:
    """Bind models to tables that must exist and match (commands that read or write items).

    A shared table's model is bound with its whole family (bind does that): the table must fit
    the table model and every entity."""
    from adyn import TableMismatch

    from ._targets import describe

    try:
        await engine.bind(*models, create=False)
    except TableMismatch as exc:
        names = describe(models)
        if any("does not exist" in d for d in exc.differences):
            raise CommandError(
                f"table {exc.table!r} ({names}) does not exist; `adyn tables create` makes it"
            ) from None
        raise CommandError(
            f"table {exc.table!r} does not match {names}: {'; '.join(exc.differences)} "
            "(`adyn tables check` lists every difference)"
        ) from None


def run(main: Callable[[], Awaitable[int]], *, interrupt_ends: bool = False) -> int:
    """Run an async command to its end and return its exit code.

    SIGINT (Ctrl-C) and SIGTERM cancel it, so its cleanup (`finally`, `async with`) runs; then
    the exit code is 0 for commands whose normal end is an interrupt (`interrupt_ends`: tail,
    local), else `Interrupted` is raised (exit code 130).
    """
    outcome: dict[str, Any] = {"code": EXIT_OK, "interrupted": False, "error": None}

    async def runner() -> None:
        async with anyio.create_task_group() as tg:

            async def watch_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        outcome["interrupted"] = True
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch_signals)
            try:
                outcome["code"] = await main()
            except Exception as exc:  # re-raised below, outside the task group
                outcome["error"] = exc
            finally:
                tg.cancel_scope.cancel()

    anyio.run(runner)
    if outcome["error"] is not None:
        raise outcome["error"]
    if outcome["interrupted"]:
        if interrupt_ends:
            return EXIT_OK
        raise Interrupted()
    code: int = outcome["code"]
    return code
