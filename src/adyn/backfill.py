"""What `engine.backfill(...)` reports: `BackfillReport` at the end, `BackfillProgress` as it goes.

```python
def add_slug(post: Post) -> Post | None:
    if post.slug:                      # already done (a resumed run sees such items again)
        return None
    post.slug = post.title.lower().replace(" ", "-")
    return post

report = await engine.backfill(Post, add_slug, checkpoint="add-slug.json")
report.scanned, report.changed, report.conflicts, report.failed
```

The machinery (parallel segment workers, conditional saves, the adaptive rate limit and the
checkpoint file) lives in `adyn._backfill`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BackfillProgress", "BackfillReport", "FailedItem"]


@dataclass(frozen=True)
class FailedItem:
    """An item the backfill could not transform: its key and why.

    `key` maps key field names to Python values. `error` is the error's type and message;
    `exception` is the exception itself, in the run that met it (None when the failure was read
    back from a checkpoint file).
    """

    key: dict[str, Any]
    error: str
    exception: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BackfillProgress:
    """Counts so far, passed to `backfill(progress=...)` as the run goes.

    `scanned`: objects read and handed to the function; `changed`: objects saved;
    `conflicts`: saves refused because the item changed after it was read (each one is read
    again and retried); `failed`: items given up; `throttled`: times the run slowed down because
    DynamoDB throttled it; `segments_done` of `segments`: the scan segments this run owns.
    Counts include what a resumed run's checkpoint had already counted.
    """

    scanned: int
    changed: int
    conflicts: int
    failed: int
    throttled: int
    segments_done: int
    segments: int


@dataclass(frozen=True)
class BackfillReport:
    """The outcome of a finished backfill (including what earlier runs of its checkpoint did).

    `scanned`, `changed`, `conflicts` and `throttled` as in `BackfillProgress`; `failed` lists
    every item given up, with its key and error; `segments` are the segment numbers this run
    owned, of `total_segments`. `unchanged` is the number of objects the function left alone.
    """

    scanned: int
    changed: int
    conflicts: int
    throttled: int
    failed: tuple[FailedItem, ...]
    segments: tuple[int, ...]
    total_segments: int

    @property
    def unchanged(self) -> int:
        return self.scanned - self.changed - len(self.failed)
