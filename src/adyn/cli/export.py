"""`adyn export MODEL [-o FILE]`: every item, through the model, as JSON lines.

Segments are read in parallel (segment scans); one writer appends each page's lines. With
`-o FILE` a state file (`FILE.adyn-state`) records, every second, each segment's scan position
together with the byte length of FILE (and of the failures file) that those positions account
for, after fsyncing both. `--resume` truncates the files back to those lengths and carries on
from the positions: no item is lost or written twice.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import click
import orjson

from ._common import EXIT_FINDING, EXIT_OK, CommandError, bind_existing, run, settings
from ._lines import Lines
from ._state import ResumeState, model_identity, require_state, state_path
from ._targets import load_model

if TYPE_CHECKING:
    from adyn import Engine, Model

PAGE_SIZE = 500
DEFAULT_SEGMENTS = 4
STATE_INTERVAL = 1.0
_DONE = "done"


@click.command()
@click.argument("model", metavar="MODEL")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write to FILE (and keep FILE.adyn-state for --resume) instead of stdout.",
)
@click.option(
    "--segments",
    type=click.IntRange(1, 1_000_000),
    metavar="N",
    help=f"Read N scan segments in parallel (default {DEFAULT_SEGMENTS}; a resumed export "
    "keeps its own).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Carry on an interrupted export to FILE: cut FILE back to the last position its "
    "state recorded and append from there.",
)
@click.option(
    "--failures",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Items that could not be exported, as JSON lines {key, error} (default: "
    "OUTPUT.failures.jsonl, or stderr when writing to stdout).",
)
def export(
    model: str, output: Path | None, segments: int | None, resume: bool, failures: Path | None
) -> int:
    """Write every item of MODEL's table as one JSON object per line (pydantic's JSON mode).

    On a shared table, a table model exports every entity's items (each through its entity)
    and an entity only its own; each line carries the discriminator attribute, for import.

    Exit 1 when some items could not be exported (each is named in the failures file).
    """
    target = load_model(model)
    if resume and output is None:
        raise CommandError("--resume needs -o FILE: an export to stdout cannot be resumed")
    if output is not None and not output.parent.is_dir():
        raise CommandError(f"-o {output}: the folder {output.parent} does not exist")
    if resume and output is not None:
        require_state(output)
    if failures is None and output is not None:
        failures = output.with_name(output.name + ".failures.jsonl")
    config = settings()

    async def main() -> int:
        async with config.engine() as engine:
            await bind_existing(engine, [target])
            job = _Export(engine, target, output, failures, segments, resume)
            return await job.run()

    return run(main)


class _Export:
    def __init__(
        self,
        engine: Engine,
        model: type[Model],
        output: Path | None,
        failures: Path | None,
        segments: int | None,
        resume: bool,
    ) -> None:
        self.engine = engine
        self.model = model
        self.output = output
        self.failures_path = failures
        self.requested = segments
        self.resume = resume
        self.lock = anyio.Lock()
        self.state: ResumeState | None = None
        if output is not None:
            self.state = ResumeState(
                state_path(output),
                "adyn-export/1",
                {"model": model_identity(model), "table": engine.table_name(model)},
            )
        self.lines = Lines(model)
        self.positions: dict[int, str | None] = {}
        self.items = self.failed = 0
        self.by_entity: dict[str, int] = {}  # items per entity class, on a shared table
        self.offset = self.failures_offset = 0
        self.out: IO[bytes] | None = None
        self.bad: IO[bytes] | None = None
        self.segments = 0
        self.bar: Any = None

    # -------------------------------------------------------------- files

    async def _open(self) -> int:
        segments = self.requested or DEFAULT_SEGMENTS
        if self.resume:
            assert self.state is not None
            saved = await anyio.to_thread.run_sync(self.state.load)
            if self.requested is not None and self.requested != saved["segments"]:
                raise CommandError(
                    f"--segments {self.requested}: the export being resumed reads "
                    f"{saved['segments']} segments (leave --segments out)"
                )
            segments = saved["segments"]
            self.positions = {int(k): v for k, v in saved["positions"].items()}
            self.items, self.failed = saved["items"], saved["failed"]
            self.by_entity = dict(saved.get("entities", {}))
            self.offset, self.failures_offset = saved["offset"], saved["failures_offset"]
            if saved.get("complete"):
                return -1
        else:
            self.positions = dict.fromkeys(range(segments))
        self.segments = segments
        await anyio.to_thread.run_sync(self._open_files)
        await self._save_state(complete=False)
        return segments

    def _open_files(self) -> None:
        if self.output is not None:
            self.out = _open_at(self.output, self.offset if self.resume else 0)
        if self.failures_path is not None:
            self.bad = _open_at(self.failures_path, self.failures_offset if self.resume else 0)

    def _close_files(self) -> None:
        for file in (self.out, self.bad):
            if file is not None:
                file.close()

    def _sync(self) -> None:
        for file in (self.out, self.bad):
            if file is not None:
                file.flush()
                _fsync(file)

    async def _save_state(self, complete: bool) -> None:
        if self.state is None:
            return
        async with self.lock:
            state = {
                "segments": self.segments,
                "positions": {str(k): v for k, v in self.positions.items()},
                "items": self.items,
                "failed": self.failed,
                "entities": self.by_entity,
                "offset": self.offset,
                "failures_offset": self.failures_offset,
                "complete": complete,
            }
            await anyio.to_thread.run_sync(self._sync)  # the data first, then what it counts
            await anyio.to_thread.run_sync(self.state.save, state)

    # -------------------------------------------------------------- the run

    async def run(self) -> int:
        from ._progress import Bar

        if await self._open() == -1:
            click.echo(f"adyn: export to {self.output} is already complete", err=True)
            return self._summary()
        done = sum(p == _DONE for p in self.positions.values())
        name = self.model.__name__
        try:
            with Bar(f"export {name}", total=self.segments, unit="segments") as bar:
                self.bar = bar
                bar.update(completed=done, detail=f"{self.items:,} items")
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._keep_state)
                    async with anyio.create_task_group() as workers:
                        for segment, position in self.positions.items():
                            if position != _DONE:
                                workers.start_soon(self._segment, segment)
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                finished = all(p == _DONE for p in self.positions.values())
                await self._save_state(complete=finished)
                await anyio.to_thread.run_sync(self._close_files)
        return self._summary()

    async def _keep_state(self) -> None:
        while True:
            await anyio.sleep(STATE_INTERVAL)
            await self._save_state(complete=False)

    async def _segment(self, segment: int) -> None:
        from adyn._segment_pages import segment_pages

        pages = segment_pages(
            self.engine,
            self.model,
            (segment, self.segments),
            self.positions[segment],
            page_size=PAGE_SIZE,
        )
        async for page in pages:
            lines: list[bytes] = []
            failures: list[bytes] = []
            kinds: list[str] = []
            for obj in page.items:
                try:
                    lines.append(self.lines.to_json(obj))
                except Exception as exc:  # a value pydantic cannot put in JSON
                    failures.append(self._failure(obj, f"{type(exc).__name__}: {exc}"))
                    continue
                kinds.append(type(obj).__name__)
            for key, error in page.broken:
                failures.append(_failure_line(key, f"{type(error).__name__}: {error}"))
            async with self.lock:
                position = page.token if page.token is not None else _DONE
                await anyio.to_thread.run_sync(
                    self._write, lines, failures, kinds, segment, position
                )
            done = sum(p == _DONE for p in self.positions.values())
            self.bar.update(completed=done, detail=f"{self.items:,} items")

    def _failure(self, obj: Any, error: str) -> bytes:
        from adyn.schema import schema_of

        key = {s.name: obj.__dict__.get(s.name) for s in schema_of(type(obj)).key_fields}
        return _failure_line(key, error)

    def _write(
        self,
        lines: list[bytes],
        failures: list[bytes],
        kinds: list[str],
        segment: int,
        position: str,
    ) -> None:
        """Append a page's lines and move its segment on, as one step (in a worker thread,
        under the lock: a cancelled caller still waits for it, so no state sees half of it)."""
        data = b"".join(lines)
        if self.out is not None:
            self.out.write(data)
            self.offset += len(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        if failures:
            text = b"".join(failures)
            if self.bad is not None:
                self.bad.write(text)
                self.failures_offset += len(text)
            else:
                for line in failures:
                    message = orjson.loads(line)
                    sys.stderr.write(f"adyn: not exported: {message['key']}: {message['error']}\n")
        self.items += len(lines)
        self.failed += len(failures)
        if self.lines.family is not None:
            for kind in kinds:
                self.by_entity[kind] = self.by_entity.get(kind, 0) + 1
        self.positions[segment] = position

    def _summary(self) -> int:
        where = f" to {self.output}" if self.output is not None else ""
        text = f"adyn: exported {self.items:,} {self.model.__name__} item(s){where}"
        if self.by_entity and set(self.by_entity) != {self.model.__name__}:
            counts = ", ".join(f"{n:,} {name}" for name, n in sorted(self.by_entity.items()))
            text += f" ({counts})"
        if self.failed:
            where_failed = f": see {self.failures_path}" if self.failures_path else ""
            click.echo(f"{text}; {self.failed:,} could not be exported{where_failed}", err=True)
            return EXIT_FINDING
        click.echo(text, err=True)
        return EXIT_OK


def _failure_line(key: dict[str, Any], error: str) -> bytes:
    from pydantic_core import to_jsonable_python

    return orjson.dumps({"key": to_jsonable_python(key), "error": error}) + b"\n"


def _open_at(path: Path, length: int) -> IO[bytes]:
    """`path` opened for appending after its first `length` bytes (the rest is cut off)."""
    if length:
        size = path.stat().st_size if path.exists() else 0
        if size < length:
            raise CommandError(
                f"--resume: {path} holds {size} bytes, fewer than the {length} its state "
                "accounts for; it was changed since, so the export must start over"
            )
    file = open(path, "r+b" if length else "wb")  # noqa: SIM115
    file.truncate(length)
    file.seek(length)
    return file


def _fsync(file: IO[bytes]) -> None:
    os.fsync(file.fileno())
