"""Where a stream starts and how far its consumer got: positions, ledgers and tokens.

A token records, per stream and per shard, what the consumer has received:

- `"after:<seq>"`: every record up to `seq` was received; resume after it;
- `"at:<seq>"`: nothing of this shard was received yet, and its reading began at `seq`;
- `"done"`: the shard was read to its end.

A shard the token does not name is read from its trim horizon when its turn comes, except that
an ancestor of a named shard is done. Done shards whose children are named are left out, which
keeps tokens to about one entry per open shard. The token also carries the `floor`: records
created before it are skipped (positions given as a datetime, and "latest").
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

__all__ = [
    "Ledger",
    "Origin",
    "ShardInfo",
    "Start",
    "decode_token",
    "encode_token",
    "initial_ledgers",
    "parse_position",
]

TOKEN_VERSION = 1


@dataclass(frozen=True)
class Start:
    """Where reading of one shard begins."""

    kind: Literal["trim_horizon", "latest", "at", "after"]
    seq: str | None = None


@dataclass(frozen=True)
class ShardInfo:
    """One shard as DescribeStream lists it."""

    shard_id: str
    parent_id: str | None
    closed: bool

    @classmethod
    def from_wire(cls, shard: Mapping[str, Any]) -> ShardInfo:
        numbers = shard.get("SequenceNumberRange") or {}
        return cls(
            shard_id=shard["ShardId"],
            parent_id=shard.get("ParentShardId") or None,
            closed=bool(numbers.get("EndingSequenceNumber")),
        )


class Ledger:
    """What the consumer has received of one shard (and, with partitions, finished)."""

    __slots__ = ("_pending", "ended", "mark", "start")

    def __init__(self, start: Start | None = None, *, done: bool = False) -> None:
        self.start = start
        self.mark: str | None = None  # every record up to here is received (and finished)
        self.ended = done  # the shard's end marker was received
        self._pending: deque[list[Any]] = deque()  # [seq, finished] in delivery order

    def deliver(self, seq: str, tracked: bool) -> Callable[[], None] | None:
        """Count `seq` as received; with `tracked`, only once its ack is called."""
        if not tracked and not self._pending:
            self.mark = seq
            return None
        entry = [seq, False]
        self._pending.append(entry)

        def ack() -> None:
            entry[1] = True
            pending = self._pending
            while pending and pending[0][1]:
                self.mark = pending.popleft()[0]

        return ack

    @property
    def done(self) -> bool:
        return self.ended and not self._pending

    def entry(self) -> str | None:
        """This shard's token entry, or None when the default (trim horizon) says it all."""
        if self.ended and not self._pending:
            return "done"
        if self.mark is not None:
            return f"after:{self.mark}"
        start = self.start
        if start is not None and start.seq is not None:
            return f"{start.kind}:{start.seq}"
        return None

    @classmethod
    def from_entry(cls, entry: str) -> Ledger:
        if entry == "done":
            return cls(done=True)
        kind, _, seq = entry.partition(":")
        if kind not in ("after", "at") or not seq.isdigit():
            raise ValueError(f"bad shard entry {entry!r}")
        return cls(Start("after" if kind == "after" else "at", seq))


@dataclass(frozen=True)
class Origin:
    """A parsed starting position."""

    kind: Literal["trim_horizon", "latest", "time", "token"]
    floor: float | None = None
    streams: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def parse_position(position: object) -> Origin:
    """`"trim_horizon"`, `"latest"`, an aware datetime, or a token string."""
    if isinstance(position, datetime):
        if position.tzinfo is None:
            raise ValueError("a stream position datetime must be timezone-aware")
        # DynamoDB rounds creation times down to the second: compare at that precision.
        return Origin("time", floor=float(int(position.timestamp())))
    if not isinstance(position, str):
        raise TypeError(
            "position must be 'trim_horizon', 'latest', a datetime or a stream token, "
            f"not {type(position).__name__}"
        )
    if position in ("trim_horizon", "latest"):
        return Origin(position)  # type: ignore[arg-type]
    return decode_token(position)


def encode_token(floor: float | None, streams: Mapping[str, Mapping[str, str]]) -> str:
    body = {"v": TOKEN_VERSION, "floor": floor, "streams": streams}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode("ascii").rstrip("=")


def decode_token(token: str) -> Origin:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a stream position or token: {token[:40]!r}") from exc
    if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION:
        raise ValueError("not a stream token of this adyn version")
    floor = body.get("floor")
    streams = body.get("streams")
    if not (floor is None or isinstance(floor, int | float)) or not isinstance(streams, dict):
        raise ValueError("malformed stream token")
    checked: dict[str, dict[str, str]] = {}
    for arn, shards in streams.items():
        if not isinstance(shards, dict):
            raise ValueError("malformed stream token")
        for entry in shards.values():
            if not isinstance(entry, str):
                raise ValueError("malformed stream token")
            Ledger.from_entry(entry)  # validates
        checked[arn] = dict(shards)
    return Origin("token", floor=None if floor is None else float(floor), streams=checked)


def initial_ledgers(
    origin: Origin, arn: str, listing: Iterable[ShardInfo]
) -> tuple[dict[str, Ledger], list[str]]:
    """Ledgers for one stream's listed shards at the start, and the token's shards that are gone.

    A gone shard is one the token positions but DynamoDB no longer lists: its remaining records
    were trimmed away.
    """
    shards = {info.shard_id: info for info in listing}
    ledgers: dict[str, Ledger] = {}
    if origin.kind == "latest":
        for info in shards.values():
            ledgers[info.shard_id] = Ledger(done=True) if info.closed else Ledger(Start("latest"))
        return ledgers, []
    entries = origin.streams.get(arn) if origin.kind == "token" else None
    if not entries:
        return ledgers, []
    lost = []
    for shard_id, entry in entries.items():
        if shard_id in shards:
            ledgers[shard_id] = Ledger.from_entry(entry)
        elif entry != "done":
            lost.append(shard_id)
    for shard_id in list(ledgers):
        parent = shards[shard_id].parent_id
        while parent is not None and parent in shards:
            if parent not in ledgers:
                ledgers[parent] = Ledger(done=True)
            parent = shards[parent].parent_id
    return ledgers, lost
