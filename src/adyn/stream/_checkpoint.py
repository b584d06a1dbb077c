"""`tx.checkpoint(record)`: a group's checkpoint written in the same transaction as the effects.

Inside `engine.transaction()`, `tx.checkpoint(record)` adds, to the transaction, an update of the
lease of the record's shard: its checkpoint moves to where it would be with the record done, and
the condition is that this member still owns the lease at the epoch the record was read under.
So either the effects and the checkpoint are both written, or neither is: a record whose effects
are in DynamoDB is never handed out again, by this member or by the next owner (exactly once).

When earlier records of the same shard are not done yet (`partitions(n)` workers finish out of
order), the checkpoint cannot pass them; the record's sequence number is then kept in the
lease's `skip` set, which the next owner honours, until the checkpoint passes it.

While the transaction is sent, the lease's writes wait (a periodic commit computed before it
could otherwise undo its `skip`); once it is committed the record counts as done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import CancellationReason, DynamoError, InvalidArgument, TransactionCanceled
from ._leases import DONE
from ._position import parse_entry

if TYPE_CHECKING:
    from ._group import GroupMember, Lease
    from ._record import Record

__all__ = ["TxCheckpoints"]

Wire = dict[str, Any]


class TxCheckpoints:
    """The records one write transaction checkpoints (see the module docstring)."""

    def __init__(self) -> None:
        self._records: list[Record[Any]] = []
        self._leases: dict[str, tuple[GroupMember, Lease, list[Record[Any]]]] = {}
        self._states: list[tuple[Lease, tuple[str | None, frozenset[str]], list[Record[Any]]]] = []

    def __bool__(self) -> bool:
        return bool(self._records)

    def add(self, record: Record[Any]) -> bool:
        """Checkpoint `record` in the transaction; True when that adds a transaction item (the
        first record of its shard)."""
        ledger = record._ledger
        lease = getattr(ledger, "lease", None)
        if lease is None:
            raise InvalidArgument(
                "tx.checkpoint(record) needs a record of a consumer group's stream "
                "(engine.stream(..., group=...)); outside a group, store stream.token"
            )
        member = lease.member
        if lease.lost or ledger.revoked:
            raise TransactionCanceled(
                f"the lease of shard {record.shard_id} is no longer this member's (another "
                "member reads it now): the record will be handed to that member"
            )
        new = lease.key not in self._leases
        entry = self._leases.setdefault(lease.key, (member, lease, []))
        if any(r.sequence_number == record.sequence_number for r in entry[2]):
            return False
        entry[2].append(record)
        self._records.append(record)
        return new

    @asynccontextmanager
    async def prepared(self) -> AsyncIterator[list[Wire]]:
        """Hold the leases' write locks and yield the transaction items to add."""
        async with AsyncExitStack() as stack:
            items = []
            self._states = []
            for key in sorted(self._leases):
                member, lease, records = self._leases[key]
                await stack.enter_async_context(lease.lock)
                if lease.lost:
                    raise TransactionCanceled(
                        f"the lease of shard {lease.item.shard} was taken over by another member"
                    )
                state = _state_with(lease, {r.sequence_number for r in records})
                items.append(
                    {
                        "Update": member.table.checkpoint_request(
                            lease.key, member.id, lease.epoch, state[0], state[1]
                        )
                    }
                )
                self._states.append((lease, state, records))
            yield items

    def applied(self) -> None:
        """The transaction was committed: the records are done, their checkpoints written."""
        for lease, state, records in self._states:
            for record in records:
                lease.ledger.tx_done.add(record.sequence_number)
                record.done()
            lease.written = state
            lease.member.stream.stats.lease_writes += 1

    def reasons(self, exc: DynamoError, offset: int) -> list[CancellationReason]:
        """Why each of our items was cancelled (they follow the first `offset` items); a
        failed condition means that lease is no longer this member's."""
        raw = (exc.response.get("CancellationReasons") or [])[offset:]
        reasons = []
        for (lease, _, records), entry in zip(self._states, raw, strict=False):
            code = entry.get("Code")
            code = None if code in (None, "None") else code
            message = entry.get("Message")
            if code == "ConditionalCheckFailed":
                lease.member._revoke(lease)
                message = (
                    f"the lease of shard {lease.item.shard} is no longer this member's (another "
                    "member took it over): its records will be handed to that member"
                )
            reasons.append(CancellationReason(code, message, records[0], None))
        return reasons


def _state_with(lease: Lease, finished: set[str]) -> tuple[str | None, frozenset[str]]:
    """The checkpoint of `lease` as it will be once `finished` are done too."""
    ledger = lease.ledger
    mark = ledger.mark
    for seq, done in ledger._pending:
        if done or seq in finished:
            mark = seq
        else:
            break
    blocked = ledger.first_unfinished_except(finished)
    if blocked is None and ledger.ended:
        return DONE, frozenset()
    if mark is None:
        start = ledger.start
        entry = start.entry() if start is not None else None
        if entry is None and blocked is not None:
            entry = f"at:{blocked}"
    else:
        entry = f"after:{mark}"
    base = None if entry is None else parse_entry(entry).seq
    skip = set(ledger.skip | ledger.tx_done | finished)
    if base is not None:
        skip = {s for s in skip if int(s) > int(base)}
    return entry, frozenset(skip)
