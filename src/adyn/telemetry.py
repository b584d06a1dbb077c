"""OpenTelemetry for adyn: a CLIENT span per call and the client metrics (`pip install adyn[otel]`).

```python
from adyn import telemetry

engine = Engine(...)
telemetry.instrument(engine)          # the global tracer and meter providers, or pass your own
```

Spans follow OpenTelemetry's semantic conventions for AWS DynamoDB: named `DynamoDB.<Operation>`,
kind CLIENT, children of the span current where the call was made, with `db.system.name`
("aws.dynamodb"), `db.operation.name`, `rpc.*`, `aws.dynamodb.table_names`, the request's index,
limit, projection, consistency and segment attributes, `aws.dynamodb.consumed_capacity`,
`count` / `scanned_count`, `aws.request_id`, and `error.type` with an error status when the call
failed. Metrics: `db.client.operation.duration` (seconds, a histogram per operation and outcome)
and `adyn.stream.lag` (seconds between a stream record's creation and its delivery).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from .errors import InvalidArgument

if TYPE_CHECKING:
    from .engine import Engine
    from .events import CallEvent

__all__ = ["instrument", "uninstrument"]

Wire = dict[str, Any]

_SCOPE = "adyn"
_SYSTEM = "aws.dynamodb"
_SERVICES = {"dynamodb": "DynamoDB", "dynamodbstreams": "DynamoDB Streams"}
# request field -> span attribute, for the fields the conventions name
_REQUEST_ATTRIBUTES = {
    "IndexName": "aws.dynamodb.index_name",
    "Limit": "aws.dynamodb.limit",
    "ProjectionExpression": "aws.dynamodb.projection",
    "ConsistentRead": "aws.dynamodb.consistent_read",
    "ScanIndexForward": "aws.dynamodb.scan_forward",
    "Segment": "aws.dynamodb.segment",
    "TotalSegments": "aws.dynamodb.total_segments",
    "Select": "aws.dynamodb.select",
}


def instrument(engine: Engine, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Emit a span per call and the duration and stream-lag metrics for `engine`.

    `tracer_provider` / `meter_provider`: OpenTelemetry providers; None uses the global ones.
    Calling it again replaces the previous instrumentation of that engine.
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        raise InvalidArgument(
            "adyn.telemetry needs the OpenTelemetry API: pip install 'adyn[otel]'"
        ) from None
    from .engine import Engine

    if not isinstance(engine, Engine):
        raise InvalidArgument(f"instrument() takes an adyn Engine, not {type(engine).__name__}")
    from . import __version__

    tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
    meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
    duration = meter.create_histogram(
        "db.client.operation.duration",
        unit="s",
        description="Duration of database client operations.",
    )
    lag = meter.create_histogram(
        "adyn.stream.lag",
        unit="s",
        description="Seconds between a stream record's creation and its delivery to the consumer.",
    )
    kind = trace.SpanKind.CLIENT
    status_error = trace.StatusCode.ERROR

    @contextmanager
    def span(service: str, operation: str, request: Wire) -> Iterator[Callable[..., None]]:
        attributes: dict[str, Any] = {
            "db.system.name": _SYSTEM,
            "db.system": "dynamodb",
            "db.operation.name": operation,
            "rpc.system": "aws-api",
            "rpc.service": _SERVICES.get(service, service),
            "rpc.method": operation,
        }
        tables = _table_names(request)
        if tables:
            attributes["aws.dynamodb.table_names"] = tables
        for field, name in _REQUEST_ATTRIBUTES.items():
            value = request.get(field)
            if value is not None:
                attributes[name] = value
        with tracer.start_as_current_span(
            f"DynamoDB.{operation}", kind=kind, attributes=attributes, record_exception=False
        ) as current:

            def finish(event: CallEvent, response: Wire | None) -> None:
                if event.request_id:
                    current.set_attribute("aws.request_id", event.request_id)
                if response is not None:
                    _response_attributes(current, response)
                outcome: dict[str, Any] = {
                    "db.system.name": _SYSTEM,
                    "db.operation.name": operation,
                }
                if event.error is not None:
                    error_type = getattr(event.error, "code", None) or type(event.error).__name__
                    current.set_attribute("error.type", error_type)
                    current.set_status(status_error, str(event.error)[:200])
                    outcome["error.type"] = error_type
                duration.record(event.duration, outcome)

            yield finish

    def delivered(created_at: datetime) -> None:
        lag.record(max(0.0, (datetime.now(UTC) - created_at).total_seconds()))

    engine._caller.tracer = span
    engine._on_record = delivered


def uninstrument(engine: Engine) -> None:
    """Stop emitting spans and metrics for `engine`."""
    engine._caller.tracer = None
    engine._on_record = None


def _table_names(request: Wire) -> list[str]:
    name = request.get("TableName")
    if name is not None:
        return [str(name)]
    items = request.get("RequestItems")
    if isinstance(items, dict):
        return sorted(items)
    transact = request.get("TransactItems")
    if isinstance(transact, list):
        names = {
            str(body.get("TableName"))
            for entry in transact
            for body in entry.values()
            if isinstance(body, dict) and body.get("TableName")
        }
        return sorted(names)
    return []


def _response_attributes(span: Any, response: Wire) -> None:
    consumed = response.get("ConsumedCapacity")
    if consumed is not None:
        entries = consumed if isinstance(consumed, list) else [consumed]
        span.set_attribute(
            "aws.dynamodb.consumed_capacity", [orjson.dumps(e).decode() for e in entries]
        )
    for field, name in (
        ("Count", "aws.dynamodb.count"),
        ("ScannedCount", "aws.dynamodb.scanned_count"),
    ):
        value = response.get(field)
        if value is not None:
            span.set_attribute(name, value)
