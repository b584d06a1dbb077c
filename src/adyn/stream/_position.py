"""Where a stream starts and how far its consumer got: positions, ledgers and tokens.

A token (and a consumer group's checkpoint) records, per stream and per shard, what the consumer
has:

- `"after:<seq>"`: every record up to `seq` was received (with partitions or a group: finished);
  resume after it. `"after:<seq>@<epoch>"` adds that the shard held nothing after `seq` when it
  was polled at that wall-clock time: the consumer was caught up;
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

from ..errors import InvalidArgument

__all__ = [
    "Ledger",
    "Origin",
    "ShardInfo",
    "Start",
    "decode_token",
    "encode_token",
    "initial_ledgers",
    "parse_position",
    "seq_key",
]

TOKEN_VERSION = 1


def seq_key(seq: str) -> int:
    """Sequence numbers are strings of digits whose length grows: compare them as numbers."""
    return int(seq)


@dataclass(frozen=True)
class Start:
    """Where reading of one shard begins (`caught_at`: see "after:<seq>@<epoch>" above)."""

    kind: Literal["trim_horizon", "latest", "at", "after"]
    seq: str | None = None
    caught_at: float | None = None

    def entry(self) -> str | None:
        if self.seq is None:
            return None
        entry = f"{self.kind}:{self.seq}"
        if self.caught_at is not None:
            entry += f"@{int(self.caught_at)}"
        return entry


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
    """What the consumer has of one shard, and where its poller stands.

    The consumer side: `mark` (every record up to here received, or with `tracked` delivery,
    finished), `ended` (the end marker reached the consumer) and the records delivered but not
    finished yet. The poller side: `fetched` (last sequence number read), `sent` (last one put
    in the buffer: records below the floor are read but not sent), `head_at` (wall-clock time of
    the last poll that found nothing after `fetched`). `skip` holds sequence numbers never to
    deliver (finished exactly once in an earlier tenure, see `tx.checkpoint`).
    """

    __slots__ = (
        "_pending",
        "ended",
        "fetched",
        "head_at",
        "lease",
        "mark",
        "revoked",
        "sent",
        "skip",
        "start",
        "tx_done",
    )

    def __init__(self, start: Start | None = None, *, done: bool = False) -> None:
        self.start = start
        self.mark: str | None = None
        self.ended = done
        self.fetched: str | None = None
        self.sent: str | None = None
        self.head_at: float | None = None
        self.skip: frozenset[str] = frozenset()
        self.tx_done: set[str] = set()  # finished through tx.checkpoint, beyond the mark
        self.lease: Any = None  # the group lease this shard is read under (None: no group)
        self.revoked = False  # the lease was lost: nothing more of it goes to the consumer
        self._pending: deque[list[Any]] = deque()  # [seq, finished] in delivery order

    def __repr__(self) -> str:
        return f"<Ledger {self.entry()!r} pending={len(self._pending)}>"

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

    def block(self, seq: str) -> None:
        """`seq` was not delivered (it failed to decode): no token or checkpoint passes it."""
        self._pending.append([seq, False])

    @property
    def done(self) -> bool:
        return self.ended and not self._pending

    @property
    def pending(self) -> int:
        return len(self._pending)

    def first_unfinished_except(self, finished: set[str] | frozenset[str]) -> str | None:
        """The first delivered record not finished (and not in `finished`)."""
        for seq, done in self._pending:
            if not done and seq not in finished:
                return str(seq)
        return None

    def entry(self) -> str | None:
        """This shard's token entry, or None when the default (trim horizon) says it all."""
        if self.ended and not self._pending:
            return "done"
        if self._pending:
            if self.mark is not None:
                return f"after:{self.mark}"
            start = self.start
            if start is not None and start.seq is not None:
                return f"{start.kind}:{start.seq}"
            # Nothing finished yet: resume at the first record delivered, never at the trim
            # horizon, which would make a named child imply that this shard is done.
            return f"at:{self._pending[0][0]}"
        if self.fetched is not None and self.mark == self.sent:
            # The consumer has every record sent; those read past it were below the floor.
            entry = f"after:{self.fetched}"
            if self.head_at is not None:
                entry += f"@{int(self.head_at)}"
            return entry
        if self.mark is not None:
            return f"after:{self.mark}"
        start = self.start
        return start.entry() if start is not None else None

    @classmethod
    def from_entry(cls, entry: str) -> Ledger:
        if entry == "done":
            return cls(done=True)
        return cls(parse_entry(entry))


def parse_entry(entry: str) -> Start:
    """The `Start` of a token entry other than "done" (ValueError when malformed)."""
    kind, _, rest = entry.partition(":")
    seq, _, caught = rest.partition("@")
    if kind not in ("after", "at") or not seq.isdigit() or (caught and not caught.isdigit()):
        raise ValueError(f"bad shard entry {entry!r}")
    caught_at = float(caught) if caught and kind == "after" else None
    return Start("after" if kind == "after" else "at", seq, caught_at)


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
            raise InvalidArgument("a stream position datetime must be timezone-aware")
        # DynamoDB rounds creation times down to the second: compare at that precision.
        return Origin("time", floor=float(int(position.timestamp())))
    if not isinstance(position, str):
        raise InvalidArgument(
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
        raise InvalidArgument(f"not a stream position or token: {token[:40]!r}") from exc
    if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION:
        raise InvalidArgument("not a stream token of this adyn version")
    floor = body.get("floor")
    streams = body.get("streams")
    if not (floor is None or isinstance(floor, int | float)) or not isinstance(streams, dict):
        raise InvalidArgument("malformed stream token")
    checked: dict[str, dict[str, str]] = {}
    for arn, shards in streams.items():
        if not isinstance(shards, dict):
            raise InvalidArgument("malformed stream token")
        for entry in shards.values():
            if not isinstance(entry, str):
                raise InvalidArgument("malformed stream token")
            try:
                Ledger.from_entry(entry)
            except ValueError as exc:
                raise InvalidArgument(f"malformed stream token: {exc}") from None
        checked[arn] = dict(shards)
    return Origin("token", floor=None if floor is None else float(floor), streams=checked)


def caught_up(entry: str) -> bool:
    """True for an entry that says nothing followed its position when it was taken."""
    return entry == "done" or (entry.startswith("after:") and "@" in entry)


def initial_ledgers(
    entries: Mapping[str, str] | None, listing: Iterable[ShardInfo], *, latest: bool = False
) -> tuple[dict[str, Ledger], list[str]]:
    """Ledgers for one stream's listed shards at the start, and the named shards that are gone.

    `entries` are the token's (or checkpoints') entries for this stream. A gone shard is one
    they position but DynamoDB no longer lists: its remaining records were trimmed away, unless
    the entry says the consumer had caught up (then there is nothing to say it missed).
    """
    shards = {info.shard_id: info for info in listing}
    ledgers: dict[str, Ledger] = {}
    if latest:
        for info in shards.values():
            ledgers[info.shard_id] = Ledger(done=True) if info.closed else Ledger(Start("latest"))
        return ledgers, []
    if not entries:
        return ledgers, []
    lost = []
    for shard_id, entry in entries.items():
        if shard_id in shards:
            ledgers[shard_id] = Ledger.from_entry(entry)
        elif not caught_up(entry):
            lost.append(shard_id)
    for shard_id in list(ledgers):
        parent = shards[shard_id].parent_id
        while parent is not None and parent in shards:
            if parent not in ledgers:
                ledgers[parent] = Ledger(done=True)
            parent = shards[parent].parent_id
    return ledgers, lost
