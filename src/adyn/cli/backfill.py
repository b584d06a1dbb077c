"""`adyn backfill MODEL package.module:function`: `engine.backfill` with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click
import orjson

from ._common import EXIT_FINDING, EXIT_OK, CommandError, bind_existing, run, settings
from ._targets import load_function, load_model

if TYPE_CHECKING:
    from adyn import BackfillProgress, BackfillReport

SHOWN_FAILURES = 10


def _share(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    i, slash, n = value.partition("/")
    try:
        share = (int(i), int(n))
    except ValueError:
        share = (-1, -1)
    if not slash or not 0 <= share[0] < share[1]:
        raise click.BadParameter(f"{value!r} is not I/N with 0 <= I < N (e.g. 0/4)")
    return share


@click.command()
@click.argument("model", metavar="MODEL")
@click.argument("function", metavar="package.module:function")
@click.option(
    "--segments",
    type=click.IntRange(1, 1_000_000),
    default=8,
    show_default=True,
    metavar="N",
    help="Scan segments worked on in parallel by this process.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="W",
    help="At most W writes per second (it also slows down by itself when throttled).",
)
@click.option(
    "--resume",
    "checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="A checkpoint file: created when missing, resumed from when present, marked complete "
    "at the end (a complete one runs nothing).",
)
@click.option(
    "--segment",
    "share",
    metavar="I/N",
    help="Run share I of N processes (each with the same --segments).",
)
@click.option(
    "--failures",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the items that failed as JSON lines {key, error}.",
)
def backfill(
    model: str,
    function: str,
    segments: int,
    rate: float | None,
    checkpoint: Path | None,
    share: str | None,
    failures: Path | None,
) -> int:
    """Call FUNCTION on every MODEL object and save what it returns (None: leave it).

    Each save is conditioned on the item being unchanged since it was read; a conflict reads
    the item again and calls FUNCTION again. FUNCTION may be sync or async. Exit 1 when some
    items failed (each is listed with its key and error).

    On a shared table, a table model hands FUNCTION every entity's objects (each as its
    entity) and an entity only its own; guard items of Unique() fields are never passed.
    """
    target = load_model(model)
    fn = load_function(function)
    segment = _share(share)
    config = settings()

    async def main() -> int:
        from ._progress import Bar

        async with config.engine() as engine:
            await bind_existing(engine, [target])
            with Bar(f"backfill {target.__name__}", total=segments, unit="segments") as bar:

                def moved(p: BackfillProgress) -> None:
                    bar.update(
                        completed=p.segments_done,
                        detail=f"{p.scanned:,} scanned, {p.changed:,} changed, "
                        f"{p.conflicts:,} conflicts, {p.failed:,} failed",
                    )

                report = await engine.backfill(
                    target,
                    fn,
                    segments=segments,
                    max_writes_per_second=rate,
                    checkpoint=checkpoint,
                    progress=moved,
                    segment=segment,
                )
            if failures is not None:
                await anyio.to_thread.run_sync(_write_failures, failures, report)
        return _summary(target.__name__, report, failures)

    return run(main)


def _write_failures(path: Path, report: BackfillReport) -> None:
    from pydantic_core import to_jsonable_python

    if not path.parent.is_dir():
        raise CommandError(f"--failures {path}: the folder {path.parent} does not exist")
    lines = (
        orjson.dumps({"key": to_jsonable_python(f.key), "error": f.error}) + b"\n"
        for f in report.failed
    )
    path.write_bytes(b"".join(lines))


def _summary(name: str, report: BackfillReport, failures: Path | None) -> int:
    click.echo(
        f"adyn: backfill of {name}: {report.scanned:,} scanned, {report.changed:,} changed, "
        f"{report.conflicts:,} conflicts retried, {report.throttled:,} throttled, "
        f"{len(report.failed):,} failed",
        err=True,
    )
    for failure in sorted(report.failed, key=lambda f: repr(f.key))[:SHOWN_FAILURES]:
        click.echo(f"adyn: failed {failure.key}: {failure.error}", err=True)
    if len(report.failed) > SHOWN_FAILURES:
        more = len(report.failed) - SHOWN_FAILURES
        where = f" (all in {failures})" if failures else " (--failures FILE lists them all)"
        click.echo(f"adyn: ... and {more:,} more{where}", err=True)
    return EXIT_FINDING if report.failed else EXIT_OK
