"""`adyn tables check|create MODELS...`: the live tables against the models (a CI drift check)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import anyio
import click

from ._common import EXIT_FINDING, EXIT_OK, run, settings
from ._targets import describe, load_models

if TYPE_CHECKING:
    from adyn import Engine, Model


@click.group()
def tables() -> None:
    """Check or create the tables of models."""


@tables.command()
@click.argument("models", nargs=-1, required=True, metavar="MODELS...")
def check(models: tuple[str, ...]) -> int:
    """Verify each model's live table (keys, indexes, stream, TTL); exit 1 on any difference.

    Nothing is created or changed. Every difference of every table is printed. A shared
    table's table model and entities (any one of them names them all) are one table, checked
    against the union of their indexes.
    """
    return _tables(models, create=False)


@tables.command()
@click.argument("models", nargs=-1, required=True, metavar="MODELS...")
def create(models: tuple[str, ...]) -> int:
    """Create each model's table when missing (and wait until it is ready); verify the others.

    Exit 1 when an existing table differs from its model (nothing is changed on it).
    """
    return _tables(models, create=True)


def _tables(specs: tuple[str, ...], *, create: bool) -> int:
    found = load_models(specs)
    config = settings()

    async def main() -> int:
        async with config.engine() as engine:
            by_table: dict[str, list[type[Model]]] = defaultdict(list)
            for model in found:
                by_table[engine.table_name(model)].append(model)
            outcomes: dict[str, list[str]] = {}
            existed: dict[str, bool] = {}
            async with anyio.create_task_group() as tg:
                for table, models in by_table.items():
                    tg.start_soon(_one, engine, table, models, create, outcomes, existed)
        drift = 0
        for table, models in by_table.items():
            names = describe(models)
            differences = outcomes[table]
            if not differences:
                state = "created" if create and not existed[table] else "ok"
                click.echo(f"{state:<8} {table}  ({names})")
                continue
            drift += 1
            missing = any("does not exist" in d for d in differences)
            click.echo(f"{'missing' if missing else 'DRIFT':<8} {table}  ({names})")
            if missing:
                differences = ["the table does not exist (`adyn tables create` makes it)"]
            for difference in differences:
                click.echo(f"         - {difference}")
        if drift:
            what = "is missing or differs" if drift == 1 else "are missing or differ"
            click.echo(f"{drift} of {len(by_table)} table(s) {what} from the models", err=True)
            return EXIT_FINDING
        return EXIT_OK

    return run(main)


async def _one(
    engine: Engine,
    table: str,
    models: list[type[Model]],
    create: bool,
    outcomes: dict[str, list[str]],
    existed: dict[str, bool],
) -> None:
    from adyn import TableMismatch

    if create:  # only to say "created" or "ok": bind itself decides what to do
        try:
            await engine.bind(*models, create=False)
            existed[table] = True
        except TableMismatch as exc:
            existed[table] = not any("does not exist" in d for d in exc.differences)
    try:
        await engine.bind(*models, create=create)
        outcomes[table] = []
    except TableMismatch as exc:
        outcomes[table] = exc.differences
