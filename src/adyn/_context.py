"""What the rooms (queries, batches, transactions, bind, streams) get from the engine.

A narrow `Context` instead of the `Engine`: the bound tables, the call, the retry policy and the
one concurrency limit. Rooms import this module, never engine.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .retry import RetryPolicy

if TYPE_CHECKING:
    from ._calls import Caller
    from .schema import ModelSchema

__all__ = ["Context"]


@dataclass(frozen=True, slots=True)
class Context:
    """The engine as the rooms see it.

    - `bound(model)`: `(schema, table name)` of a bound model (NotBound / EngineClosed);
    - `caller`: sends calls with retries, limits and listeners (`await ctx.call(...)`);
    - `limit`: the one concurrency limit (requests in flight for one operation);
    - `table_name(model)`: the table name the engine's template gives a model (bound or not).
    """

    bound: Callable[[Any], tuple[ModelSchema, str]]
    caller: Caller
    limit: int
    table_name: Callable[[Any], str]

    @property
    def call(self) -> Callable[..., Awaitable[dict[str, Any]]]:
        return self.caller.call

    @property
    def accepts_fragments(self) -> bool:
        """Whether request values may be `orjson.Fragment`s (adyn's own transport)."""
        return self.caller.accepts_fragments

    @property
    def retry(self) -> RetryPolicy:
        return self.caller.retry

    @property
    def sleep(self) -> Callable[[float], Awaitable[None]]:
        return self.caller.sleep
