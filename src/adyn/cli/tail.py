"""`adyn tail MODEL`: a table's stream, decoded through the model, as JSON lines on stdout."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import click
import orjson

from ._common import EXIT_OK, CommandError, bind_existing, run, settings
from ._targets import collapse_family, load_models

if TYPE_CHECKING:
    from adyn import Record

SAVE_INTERVAL = 1.0  # seconds between token saves while records arrive


@click.command()
@click.argument("model", metavar="MODEL")
@click.option(
    "--from",
    "start",
    default="latest",
    show_default=True,
    metavar="trim_horizon|latest|FILE",
    help="Where to start: the oldest record kept, new records only, or the token in FILE "
    "(as --save writes it).",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Keep the token of the last record printed in FILE: every second, and on exit "
    "(Ctrl-C included). `--from FILE` resumes right after it.",
)
def tail(model: str, start: str, save: Path | None) -> int:
    """Print every change to MODEL's table as a JSON line, until interrupted.

    Each line holds model, entity, event (insert, modify, remove), key, new and old (the
    images the stream provides, through the model in pydantic's JSON mode, or null),
    sequence_number, created_at, shard_id and expired (a TTL deletion).

    On a shared table, a table model tails every entity's records (model and entity name the
    entity of each) and an entity only its own; entity is null off a shared table.
    """
    models = collapse_family(load_models([model]))
    position = _position(start)
    if save is not None and not save.parent.is_dir():
        raise CommandError(f"--save {save}: the folder {save.parent} does not exist")
    config = settings()

    async def main() -> int:
        async with config.engine() as engine:
            await bind_existing(engine, models)
            async with engine.stream(*models, position=position) as stream:
                names = ", ".join(m.__name__ for m in models)
                start_text = (
                    start if start in ("trim_horizon", "latest") else f"the token in {start}"
                )
                click.echo(f"adyn: tailing {names} from {start_text}; Ctrl-C stops", err=True)
                saved = None

                async def keep(token: str) -> None:
                    nonlocal saved
                    if save is not None and token != saved:
                        await anyio.to_thread.run_sync(_write_token, save, token)
                        saved = token

                last_save = anyio.current_time()
                try:
                    async for record in stream:
                        if not _emit(record):
                            break  # the reader went away (a closed pipe)
                        if anyio.current_time() - last_save >= SAVE_INTERVAL:
                            await keep(stream.token)
                            last_save = anyio.current_time()
                finally:
                    with anyio.CancelScope(shield=True):
                        await keep(stream.token)
        return EXIT_OK

    return run(main, interrupt_ends=True)


def _position(start: str) -> str:
    if start in ("trim_horizon", "latest"):
        return start
    path = Path(start)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CommandError(
            f"--from {start}: no such file (give trim_horizon, latest, or a file --save wrote)"
        ) from None
    if not token:
        raise CommandError(f"--from {start}: the file is empty")
    return token


def _write_token(path: Path, token: str) -> None:
    from adyn._files import write_atomically

    write_atomically(path, token.encode() + b"\n")


def _json(obj: Any) -> Any:
    return None if obj is None else obj.model_dump(mode="json")


def _emit(record: Record[Any]) -> bool:
    from pydantic_core import to_jsonable_python

    from adyn.schema import schema_of

    line = orjson.dumps(
        {
            "model": record.model.__name__,
            "entity": schema_of(record.model).entity,
            "event": record.event,
            "key": to_jsonable_python(record.key),
            "new": _json(record.new),
            "old": _json(record.old),
            "sequence_number": record.sequence_number,
            "created_at": record.created_at.isoformat(),
            "shard_id": record.shard_id,
            "expired": record.expired,
        }
    )
    try:
        sys.stdout.buffer.write(line + b"\n")
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # Python's advice: point stdout at devnull so the interpreter's exit flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return False
    return True
