"""`Record`, one change of one item, and the decoding of DynamoDB Streams records into it.

Records come in DynamoDB's own JSON (`ApproximateCreationDateTime` in epoch seconds, binary
values as base64 text); images go to the model's own decoder. Lambda events spell a few fields
differently (see `_lambda.py`); `is_ttl_deletion` accepts both spellings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ..errors import InvalidItem

if TYPE_CHECKING:
    from ._source import StreamSource

__all__ = ["Event", "Record", "created_epoch", "decode_record", "is_ttl_deletion"]

Event = Literal["insert", "modify", "remove"]
Wire = dict[str, Any]
M = TypeVar("M", covariant=True)

_EVENTS: dict[str, Event] = {"INSERT": "insert", "MODIFY": "modify", "REMOVE": "remove"}
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"


@dataclass(frozen=True, slots=True, eq=False)
class Record(Generic[M]):
    """One change to one item, as a stream delivers it.

    - `event`: "insert", "modify" or "remove"; `expired` is True when the removal was a TTL
      deletion by DynamoDB itself.
    - `key`: `{key field: value}`; `new` / `old`: model objects for the images the table's stream
      view provides (None otherwise, and `new` is None on removal, `old` on insertion).
    - `sequence_number`, `created_at` (DynamoDB's approximate time, to the second), `shard_id`,
      `model` (the model class of the table the record came from), `raw` (the wire record).
    - `lease_epoch`: in a consumer group, the fencing number of the lease this record was read
      under (None outside a group).
    """

    event: Event
    key: dict[str, Any]
    new: M | None
    old: M | None
    sequence_number: str
    created_at: datetime
    shard_id: str
    expired: bool
    model: type[M]
    raw: Wire = field(repr=False)
    lease_epoch: int | None = None
    _ack: Callable[[], None] | None = field(default=None, repr=False)
    _ledger: Any = field(default=None, repr=False)

    def done(self) -> None:
        """Say that this record's work is finished: what `stream.token` counts with partitions,
        and what a consumer group checkpoints.

        Calling it more than once, or on a stream without partitions or group, is harmless.
        """
        if self._ack is not None:
            self._ack()


def created_epoch(raw: Wire) -> float:
    """`ApproximateCreationDateTime` of a wire record as epoch seconds."""
    value = raw["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if value is None:
        return 0.0
    return float(value)


def _created_at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value is None:
        return datetime.fromtimestamp(0, UTC)
    return datetime.fromtimestamp(float(value), UTC)


def is_ttl_deletion(raw: Wire) -> bool:
    """True when DynamoDB's TTL process (not a user) removed the item."""
    identity = raw.get("userIdentity")
    if not isinstance(identity, dict):
        return False
    # The Streams API spells these "Type"/"PrincipalId"; Lambda events "type"/"principalId".
    kind = identity.get("Type", identity.get("type"))
    principal = identity.get("PrincipalId", identity.get("principalId"))
    return kind == "Service" and principal == _TTL_PRINCIPAL


def decode_record(
    raw: Wire,
    source: StreamSource,
    shard_id: str,
    ack: Callable[[], None] | None = None,
    *,
    lease_epoch: int | None = None,
    ledger: Any = None,
) -> Record[Any]:
    """Build a `Record` from one wire record of `source`'s stream.

    A record whose images or keys do not decode raises `InvalidItem` naming the record.
    """
    body = raw["dynamodb"]
    seq = body["SequenceNumber"]
    event_name = raw.get("eventName", "")
    event = _EVENTS.get(event_name)
    name = getattr(source.model, "__name__", "record")
    if event is None:
        raise InvalidItem(name, None, f"stream record {seq}: unknown event name {event_name!r}")
    new = body.get("NewImage")
    old = body.get("OldImage")
    key: dict[str, Any] | None = None
    try:
        key = source.decode_key(body["Keys"])
        new_obj = None if new is None else source.decode_item(new)
        old_obj = None if old is None else source.decode_item(old)
    except InvalidItem as exc:
        raise InvalidItem(
            exc.model,
            exc.field,
            f"stream record {seq} of shard {shard_id}: {exc.rule}",
            exc.obj,
            key=exc.key if exc.key is not None else key,
        ) from exc
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise InvalidItem(
            name,
            None,
            f"stream record {seq} of shard {shard_id} does not decode: {exc!r}",
            key=key,
        ) from exc
    return Record(
        event=event,
        key=key,
        new=new_obj,
        old=old_obj,
        sequence_number=seq,
        created_at=_created_at(body.get("ApproximateCreationDateTime")),
        shard_id=shard_id,
        expired=event == "remove" and is_ttl_deletion(raw),
        model=source.model,
        raw=raw,
        lease_epoch=lease_epoch,
        _ack=ack,
        _ledger=ledger,
    )
