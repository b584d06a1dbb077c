"""Progress bars on stderr (rich), so stdout stays for data (`export` without -o, `tail`)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Bar:
    """One progress bar: `with Bar("export Post", total=4, unit="segments") as bar:`.

    `bar.update(completed=..., detail="1,234 items")` moves it; on a terminal it animates, in
    a log (stderr not a terminal) only its final state is printed.
    """

    def __init__(self, description: str, *, total: int | None, unit: str) -> None:
        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task: TaskID = self._progress.add_task(description, total=total, detail="")

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, **changes: Any) -> None:
        self._progress.update(self._task, **changes)
