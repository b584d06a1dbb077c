"""`adyn import MODEL FILE`: JSON lines validated through the model and written in batches.

On a shared table each line is validated as the entity it names (see _lines.py); objects with
`Unique()` fields are not batched but put with their guards, a transaction each (_guarded.py).

The file is read a chunk of lines at a time; each line is validated (`model_validate_json`),
the valid objects of a chunk are written with one `engine.batch(progress=...)` and the lines
that failed are appended to the failures file (line number, reason, pydantic's details). Only
then is the state file (`FILE.adyn-state`) replaced: it records the byte offset and line number
after the chunk, the counts, and the failures file's length. `--resume` starts right after the
last chunk a previous run recorded; a chunk in flight at a crash is written again, which full-item
puts make harmless.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import click
import orjson

from ._common import EXIT_FINDING, EXIT_OK, CommandError, bind_existing, run, settings
from ._lines import LineError, Lines
from ._state import ResumeState, model_identity, require_state, state_path
from ._targets import load_model

if TYPE_CHECKING:
    from adyn import BatchProgress, Engine, Model

CHUNK_LINES = 1000
SHOWN_FAILURES = 10  # failures also printed on stderr (all of them are in the failures file)
GUARDED_CONCURRENCY = 16  # puts with guards (transactions) in flight at once


@click.command("import")
@click.argument("model", metavar="MODEL")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--resume",
    is_flag=True,
    help="Carry on an interrupted import of FILE: skip the lines its state file records as "
    "written or failed.",
)
@click.option(
    "--failures",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Where the lines that could not be imported go, as JSON lines {line, error, details} "
    "(default: FILE.failures.jsonl).",
)
def import_(model: str, file: Path, resume: bool, failures: Path | None) -> int:
    """Validate each line of FILE (one JSON object per line) through MODEL and write it.

    Writes are full-item puts (BatchWriteItem, 25 a request). Exit 1 when some lines could not
    be imported; each is named, with its line number and reason, in the failures file.

    On a shared table, a table model rebuilds each line as the entity it names, and an entity
    refuses lines of another. Objects with Unique() fields are put together with their guards,
    one transaction each, so DynamoDB refuses a value another item holds (reported per line).
    """
    target = load_model(model)
    if resume:
        require_state(file)
    failures = failures or file.with_name(file.name + ".failures.jsonl")
    config = settings()

    async def main() -> int:
        async with config.engine() as engine:
            await bind_existing(engine, [target])
            return await _Import(engine, target, file, failures, resume).run()

    return run(main)


class _Import:
    def __init__(
        self, engine: Engine, model: type[Model], path: Path, failures: Path, resume: bool
    ) -> None:
        self.engine = engine
        self.model = model
        self.path = path
        self.failures_path = failures
        self.resume = resume
        self.state = ResumeState(
            state_path(path),
            "adyn-import/1",
            {"model": model_identity(model), "table": engine.table_name(model)},
        )
        self.lines = Lines(model)
        self.offset = self.line = self.written = self.failed = self.failures_offset = 0
        self.shown = 0

    async def run(self) -> int:
        from ._progress import Bar

        if self.resume:
            saved = await anyio.to_thread.run_sync(self.state.load)
            for name in ("offset", "line", "written", "failed", "failures_offset"):
                setattr(self, name, saved[name])
            if saved.get("complete"):
                click.echo(f"adyn: the import of {self.path} is already complete", err=True)
                return self._summary()
        total = await anyio.to_thread.run_sync(_count_lines, self.path)
        source, bad = await anyio.to_thread.run_sync(self._open)
        try:
            with Bar(f"import {self.model.__name__}", total=total, unit="lines") as bar:
                bar.update(completed=self.line)
                while True:
                    chunk = await anyio.to_thread.run_sync(_read_lines, source, CHUNK_LINES)
                    if not chunk:
                        break
                    await self._chunk(chunk, bad, bar)
            await self._save(complete=True, bad=bad)
        finally:
            await anyio.to_thread.run_sync(_close, source, bad)
        return self._summary()

    def _open(self) -> tuple[IO[bytes], IO[bytes]]:
        source = open(self.path, "rb")  # noqa: SIM115
        size = os.fstat(source.fileno()).st_size
        if self.offset > size:
            source.close()
            raise CommandError(
                f"--resume: {self.path} is shorter than where the import stopped; "
                "it changed since, so the import must start over"
            )
        source.seek(self.offset)
        bad: IO[bytes]
        if self.failures_offset:
            bad = open(self.failures_path, "r+b")  # noqa: SIM115
            bad.truncate(self.failures_offset)
            bad.seek(self.failures_offset)
        else:
            bad = open(self.failures_path, "wb")  # noqa: SIM115
        return source, bad

    async def _chunk(self, chunk: list[bytes], bad: IO[bytes], bar: Any) -> None:
        from pydantic import ValidationError

        from adyn import AdynError, BatchIncomplete
        from adyn.schema import schema_of

        from ._guarded import guarded

        failures: list[dict[str, Any]] = []
        lines_of: dict[int, int] = {}  # id(object) -> line number
        first_line = self.line + 1
        handled = [0]
        unwritten = 0
        plain: list[tuple[int, Any]] = []
        unique: list[tuple[int, Any]] = []  # objects with Unique() fields: put with guards
        for number, raw in enumerate(chunk, start=first_line):
            if not raw.strip():
                handled[0] += 1
                continue
            try:
                model = self.lines.model_of(raw)
                obj = model.model_validate_json(raw)
            except LineError as exc:
                failures.append(_failed(number, str(exc)))
                handled[0] += 1
                continue
            except ValidationError as exc:
                failures.append(_invalid(number, exc))
                handled[0] += 1
                continue
            (unique if guarded(schema_of(type(obj))) else plain).append((number, obj))

        def moved(progress: BatchProgress) -> None:
            bar.update(completed=first_line - 1 + handled[0] + progress.written + progress.failed)

        try:
            async with self.engine.batch(progress=moved) as batch:
                for number, obj in plain:
                    try:
                        batch.save(obj)
                    except AdynError as exc:  # InvalidItem: valid, yet not storable
                        failures.append(_failed(number, f"{type(exc).__name__}: {exc}"))
                        handled[0] += 1
                        continue
                    lines_of[id(obj)] = number
        except BatchIncomplete as exc:
            unwritten = len(exc.objects)
            for obj in exc.objects:
                number = lines_of[id(obj)]
                reason = "not written: DynamoDB kept it unprocessed or throttled after every retry"
                failures.append(_failed(number, reason))
        written = len(lines_of) - unwritten
        if unique:
            handled[0] += len(lines_of)
            written += await self._guarded(unique, failures, handled, first_line, bar)
        failures.sort(key=lambda f: int(f["line"]))
        self.written += written
        self.failed += len(failures)
        self.line += len(chunk)
        self.offset += sum(len(raw) for raw in chunk)
        await anyio.to_thread.run_sync(self._append_failures, bad, failures)
        await self._save(complete=False, bad=bad)
        bar.update(completed=self.line)
        self._show(failures)

    async def _guarded(
        self,
        objects: list[tuple[int, Any]],
        failures: list[dict[str, Any]],
        handled: list[int],
        first_line: int,
        bar: Any,
    ) -> int:
        """Write objects with Unique fields, each as a put with its guards (see _guarded.py).

        They go concurrently, in waves: a wave never holds two objects sharing a unique value,
        so of two lines with one value the earlier is always written first and the later one
        is refused (UniqueViolation), whatever the timing. Returns how many were written.
        """
        from adyn import AdynError

        from ._guarded import put_with_guards, unique_values

        written = [0]
        limit = anyio.Semaphore(GUARDED_CONCURRENCY)

        async def one(number: int, obj: Any) -> None:
            async with limit:
                try:
                    await put_with_guards(self.engine, obj)
                    written[0] += 1
                except AdynError as exc:
                    failures.append(_failed(number, f"{type(exc).__name__}: {exc}"))
                handled[0] += 1
                bar.update(completed=first_line - 1 + handled[0])

        pending = objects
        while pending:
            wave: list[tuple[int, Any]] = []
            later: list[tuple[int, Any]] = []
            taken: set[str] = set()
            for number, obj in pending:
                values = unique_values(self.engine, obj)
                if taken.intersection(values):
                    later.append((number, obj))
                    continue
                taken.update(values)
                wave.append((number, obj))
            async with anyio.create_task_group() as tg:
                for number, obj in wave:
                    tg.start_soon(one, number, obj)
            pending = later
        return written[0]

    def _append_failures(self, bad: IO[bytes], failures: list[dict[str, Any]]) -> None:
        data = b"".join(orjson.dumps(f) + b"\n" for f in failures)
        bad.write(data)
        self.failures_offset += len(data)

    async def _save(self, complete: bool, bad: IO[bytes]) -> None:
        def sync_then_save() -> None:
            bad.flush()
            os.fsync(bad.fileno())  # the failures first, then the state that counts them
            self.state.save(
                {
                    "offset": self.offset,
                    "line": self.line,
                    "written": self.written,
                    "failed": self.failed,
                    "failures_offset": self.failures_offset,
                    "complete": complete,
                }
            )

        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(sync_then_save)

    def _show(self, failures: list[dict[str, Any]]) -> None:
        for failure in failures:
            if self.shown < SHOWN_FAILURES:
                click.echo(f"adyn: line {failure['line']}: {failure['error']}", err=True)
            self.shown += 1

    def _summary(self) -> int:
        text = (
            f"adyn: imported {self.written:,} {self.model.__name__} item(s) from "
            f"{self.line:,} line(s) of {self.path}"
        )
        if self.failed:
            click.echo(
                f"{text}; {self.failed:,} line(s) failed: see {self.failures_path}", err=True
            )
            return EXIT_FINDING
        click.echo(text, err=True)
        return EXIT_OK


def _invalid(number: int, exc: Any) -> dict[str, Any]:
    details = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{'.'.join(map(str, d['loc'])) or '(line)'}: {d['msg']}" for d in details)
    return {"line": number, "error": f"invalid: {summary}", "details": details}


def _failed(number: int, reason: str) -> dict[str, Any]:
    return {"line": number, "error": reason, "details": []}


def _count_lines(path: Path) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _read_lines(source: IO[bytes], n: int) -> list[bytes]:
    lines = []
    for _ in range(n):
        line = source.readline()
        if not line:
            break
        lines.append(line)
    return lines


def _close(*files: IO[bytes]) -> None:
    for file in files:
        file.close()
