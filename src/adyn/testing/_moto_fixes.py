"""The corrections the embedded moto server runs with, so that it behaves as DynamoDB does.

`install()` checks that the installed moto is one of the supported releases and that every piece
it replaces still exists with the shape it expects (`IncompatibleMoto` otherwise: the server then
refuses to start rather than run half-corrected), then:

- wraps moto's DynamoDB write handlers (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
  TransactWriteItems) in a `Journal`: a failed request leaves no trace, and a successful one
  records exactly one stream record per changed item (one INSERT with the full image for an
  UpdateItem that creates an item, nothing for a write that changes nothing);
- replaces moto's TransactWriteItems: all conditions are checked before anything is written,
  no table is copied (moto deep-copies every table a transaction names, and restores the copies
  on failure, losing concurrent writes), apply-time errors are `ValidationError` cancellation
  reasons, and `ClientRequestToken` makes a resent transaction succeed without applying it twice;
- checks numbers in every request (38 digits, DynamoDB's range, stored canonically), makes
  number arithmetic exact, compares binary values by their bytes, and counts item sizes DynamoDB's
  way (400 KB);

The server itself (`_moto_server`) runs one request at a time, which makes conditional writes and
transactions isolated from each other.
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib
import inspect
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from . import _moto_types as types
from ._moto_journal import Journal, member, stored_item

__all__ = ["SUPPORTED", "IncompatibleMoto", "install", "supported_range"]

# The moto releases these corrections were written against and tried with: [first, end).
SUPPORTED = ((5, 1), (5, 3))
IDEMPOTENCY_WINDOW = 600.0  # seconds DynamoDB remembers a ClientRequestToken
TRANSACTION_LIMIT = 100


class IncompatibleMoto(RuntimeError):
    """The installed moto is not one these corrections know how to correct."""


def supported_range() -> str:
    (a, b), (c, d) = SUPPORTED
    return f"moto[server]>={a}.{b},<{c}.{d}"


def install() -> str:
    """Check the installed moto and correct it in this process; returns moto's version."""
    moto = importlib.import_module("moto")
    version = str(getattr(moto, "__version__", "unknown"))
    _check_version(version)
    parts = _Parts.load()
    parts.check()
    _correct_values(parts)
    _correct_transactions(parts)
    _correct_handlers(parts)
    return version


def _check_version(version: str) -> None:
    try:
        release = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        release = ()
    if len(release) != 2 or not SUPPORTED[0] <= release < SUPPORTED[1]:
        raise IncompatibleMoto(
            f"moto {version} is not a release adyn.testing can correct "
            f"(supported: {supported_range()})"
        )


class _Parts:
    """The pieces of moto the corrections use or replace."""

    def __init__(self, modules: dict[str, Any]) -> None:
        self.exceptions = modules["moto.dynamodb.exceptions"]
        self.comparisons = modules["moto.dynamodb.comparisons"]
        self.dynamo_type = modules["moto.dynamodb.models.dynamo_type"]
        self.models = modules["moto.dynamodb.models"]
        self.table = modules["moto.dynamodb.models.table"]
        self.responses = modules["moto.dynamodb.responses"]
        self.DynamoType = self.dynamo_type.DynamoType
        self.Backend = self.models.DynamoDBBackend
        self.Handler = self.responses.DynamoHandler

    @classmethod
    def load(cls) -> _Parts:
        names = [
            "moto.dynamodb.exceptions",
            "moto.dynamodb.comparisons",
            "moto.dynamodb.models.dynamo_type",
            "moto.dynamodb.models",
            "moto.dynamodb.models.table",
            "moto.dynamodb.responses",
        ]
        modules: dict[str, Any] = {}
        for name in names:
            try:
                modules[name] = importlib.import_module(name)
            except ImportError as exc:
                raise IncompatibleMoto(f"moto has no module {name} ({exc})") from exc
        try:
            return cls(modules)
        except AttributeError as exc:
            raise IncompatibleMoto(f"moto lacks a class the corrections need: {exc}") from exc

    def error(self, name: str, *args: Any, **kwargs: Any) -> Exception:
        error: Exception = getattr(self.exceptions, name)(*args, **kwargs)
        return error

    def check(self) -> None:
        """Fail with IncompatibleMoto unless everything used has the expected shape."""
        for name in (
            "ConditionalCheckFailed",
            "DynamodbException",
            "ItemSizeTooLarge",
            "ItemSizeToUpdateTooLarge",
            "MockValidationException",
            "MultipleTransactionsException",
            "TooManyTransactionsException",
            "TransactionCanceledException",
            "TransactWriteSingleOpException",
        ):
            _require(self.exceptions, name)
        _require(self.exceptions, "TransactionCanceledException.__init__", ["errors"])
        _require(self.comparisons, "get_filter_expression", [None, None, None])
        _require(self.comparisons, "AttributeValue.expr", ["item"])
        _require(self.comparisons, "FuncBeginsWith.expr", ["item"])
        _require(self.dynamo_type, "LimitedSizeDict.__setitem__", ["key", "value"])
        for name in ("__add__", "__sub__"):
            _require(self.dynamo_type, f"DynamoType.{name}", ["other"])
        if not isinstance(inspect.getattr_static(self.DynamoType, "cast_value"), property):
            raise IncompatibleMoto("moto's DynamoType.cast_value is no longer a property")
        _require(self.models, "DynamoDBBackend.transact_write_items", ["transact_items"])
        _require(self.models, "DynamoDBBackend.get_table", [None])
        _require(self.models, "DynamoDBBackend.get_item", [None, None])
        _require(self.models, "DynamoDBBackend.put_item", [None, None])
        _require(self.models, "DynamoDBBackend.delete_item", [None, None])
        _require(
            self.models,
            "DynamoDBBackend.update_item",
            [
                None,
                None,
                "update_expression",
                "expression_attribute_names",
                "expression_attribute_values",
            ],
        )
        for operation in (*_WRITES, *_READS):
            _require(self.responses, f"DynamoHandler.{operation}", [])
        self._probe()

    def _probe(self) -> None:
        """Build a table and an item the way moto does and look at the attributes used."""
        try:
            table = self.table.Table(
                "adyn-probe",
                account_id="123456789012",
                region="us-east-1",
                schema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                attr=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"},
                ],
                streams={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            table.put_item({"pk": {"S": "a"}, "sk": {"N": "1"}, "b": {"B": "AAE="}})
            hash_key, range_key = self.DynamoType({"S": "a"}), self.DynamoType({"N": "1"})
            item = stored_item(table, hash_key, range_key)
            shapes_ok = (
                table.hash_key_attr == "pk"
                and table.range_key_attr == "sk"
                and list(table.table_key_attrs) == ["pk", "sk"]
                and table.region_name == "us-east-1"
                and item is not None
                and item.attrs["b"].type == "B"
                and "Attributes" in item.to_json()
                and isinstance(table.stream_shard.items, list)
                and len(table.stream_shard.items) == 1
                and isinstance(table.stream_shard.starting_sequence_number, int)
                and table.stream_specification["StreamViewType"] == "NEW_AND_OLD_IMAGES"
                and isinstance(table.ttl, dict)
                and member(item.attrs["pk"]) == ("S", "a")
            )
        except Exception as exc:
            raise IncompatibleMoto(f"moto's tables and items have changed shape: {exc!r}") from exc
        if not shapes_ok:
            raise IncompatibleMoto("moto's tables and items no longer have the expected shape")


def _require(module: Any, path: str, parameters: list[str | None] | None = None) -> None:
    """`module.path` exists and is callable, with at least these parameters after `self`.

    A None in `parameters` asks only for a positional parameter at that place.
    """
    target = module
    for part in path.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise IncompatibleMoto(f"moto no longer has {module.__name__}.{path}")
    if parameters is None:
        return
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError) as exc:
        raise IncompatibleMoto(f"cannot read the signature of moto's {path}: {exc}") from exc
    names = [p.name for p in signature.parameters.values()]
    if names and names[0] == "self":
        names = names[1:]
    positional = [
        p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_POSITIONAL
    ]
    for index, wanted in enumerate(parameters):
        if wanted is None:
            if len(positional) <= index:
                raise IncompatibleMoto(f"moto's {path} takes fewer arguments than expected")
        elif wanted not in names:
            raise IncompatibleMoto(f"moto's {path} no longer takes {wanted!r}")


# ---------------------------------------------------------------------------- values


def _correct_values(parts: _Parts) -> None:
    DynamoType = parts.DynamoType
    add, subtract = DynamoType.__add__, DynamoType.__sub__
    cast_value = inspect.getattr_static(DynamoType, "cast_value").fget

    def arithmetic(operation: str, fallback: Callable[[Any, Any], Any]) -> Callable[..., Any]:
        def run(self: Any, other: Any) -> Any:
            if self.type == "N" and getattr(other, "type", None) == "N":
                try:
                    return DynamoType({"N": types.exact(self.value, other.value, operation)})
                except types.NumberError as exc:
                    raise parts.error("MockValidationException", str(exc)) from None
            return fallback(self, other)

        return run

    def exact_value(self: Any) -> Any:
        # Numbers as Decimal (moto before 5.2 compares them as floats), binary as bytes.
        if self.type == "N":
            return Decimal(self.value)
        if self.type == "B":
            return types.raw_bytes(self.value)
        if self.type == "BS":
            return {types.raw_bytes(v) for v in self.value}
        return cast_value(self)

    def equal(self: Any, other: Any) -> bool:
        # By value, as DynamoDB compares: sets in any order (moto before 5.2 compares raw lists).
        return bool(self.type == other.type and self.cast_value == other.cast_value)

    DynamoType.__add__ = arithmetic("add", add)
    DynamoType.__sub__ = arithmetic("subtract", subtract)
    DynamoType.cast_value = property(exact_value)
    DynamoType.__eq__ = equal
    DynamoType.__ne__ = lambda self, other: not equal(self, other)
    DynamoType.__hash__ = lambda self: hash((self.type, self.cast_value))

    # Sizes are checked once per write, DynamoDB's way (see _check_sizes); moto's own check
    # counts base64 text and costs O(attributes) on every attribute set.
    parts.dynamo_type.LimitedSizeDict.__setitem__ = dict.__setitem__

    attribute_value = parts.comparisons.AttributeValue
    value_expr = attribute_value.expr

    def operand(self: Any, item: Any) -> Any:
        if self.type == "B":
            return types.raw_bytes(self.value)
        if self.type == "BS":
            return {types.raw_bytes(v) for v in self.value}
        return value_expr(self, item)

    attribute_value.expr = operand
    begins_with = parts.comparisons.FuncBeginsWith

    def starts(self: Any, item: Any) -> bool:
        kind = self.attr.get_type(item)
        if kind not in ("S", "B") or self.substr.get_type(item) != kind:
            return False
        return bool(self.attr.expr(item).startswith(self.substr.expr(item)))

    begins_with.expr = starts


def _canonicalise(parts: _Parts, body: Any) -> None:
    try:
        types.canonicalise(body)
    except types.NumberError as exc:
        raise parts.error("MockValidationException", str(exc)) from None


def _check_sizes(parts: _Parts, journal: Journal, error: str) -> None:
    for _table, _before, after in journal.changed():
        if after is not None and types.item_size(after.attrs, member) > types.ITEM_SIZE_LIMIT:
            raise parts.error(error)


# ---------------------------------------------------------------------------- transactions


def _correct_transactions(parts: _Parts) -> None:
    Backend = parts.Backend

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > TRANSACTION_LIMIT:
            raise parts.error("TooManyTransactionsException")
        plan: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        reasons: list[tuple[Any, Any, Any]] = []
        seen: set[tuple[str, str]] = set()
        for entry in transact_items:
            if len(entry) != 1:
                raise parts.error("TransactWriteSingleOpException")
            ((kind, op),) = entry.items()
            if kind not in ("ConditionCheck", "Put", "Delete", "Update"):
                raise parts.error("MockValidationException", f"Unsupported operation: {kind}")
            table = self.get_table(op["TableName"])
            key = _transaction_key(parts, table, kind, op)
            unique = (table.name, json.dumps(key, sort_keys=True, default=str))
            if unique in seen:
                raise parts.error("MultipleTransactionsException")
            seen.add(unique)
            current = self.get_item(table.name, key)
            reasons.append(_condition(parts, op, current))
            plan.append((kind, op, key))
        if any(code is not None for code, _, _ in reasons):
            raise parts.error("TransactionCanceledException", reasons)
        for index, (kind, op, key) in enumerate(plan):
            try:
                _apply(self, kind, op, key)
                _check_transaction_size(parts, self, kind, op, key)
            except parts.exceptions.MockValidationException as exc:
                message = getattr(exc, "exception_msg", None) or getattr(exc, "message", "")
                failed: list[tuple[Any, Any, Any]] = [(None, None, None)] * len(plan)
                failed[index] = ("ValidationError", message, None)
                raise parts.error("TransactionCanceledException", failed) from None

    Backend.transact_write_items = transact_write_items


def _transaction_key(parts: _Parts, table: Any, kind: str, op: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    attributes = op["Item"]
    key = {}
    for name in table.table_key_attrs:
        if name not in attributes:
            raise parts.error(
                "MockValidationException",
                f"One or more parameter values were invalid: Missing the key {name} in the item",
            )
        key[name] = attributes[name]
    return key


def _condition(parts: _Parts, op: dict[str, Any], current: Any) -> tuple[Any, Any, Any]:
    expression = op.get("ConditionExpression")
    if expression is None:
        return (None, None, None)
    condition = parts.comparisons.get_filter_expression(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", "The conditional request failed", old)


def _apply(backend: Any, kind: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    if kind == "Put":
        backend.put_item(op["TableName"], op["Item"])
    elif kind == "Delete":
        backend.delete_item(op["TableName"], key)
    elif kind == "Update":
        backend.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names or {},
            expression_attribute_values=values or {},
        )


def _check_transaction_size(
    parts: _Parts, backend: Any, kind: str, op: dict[str, Any], key: dict[str, Any]
) -> None:
    if kind not in ("Put", "Update"):
        return
    item = backend.get_item(op["TableName"], key)
    if item is not None and types.item_size(item.attrs, member) > types.ITEM_SIZE_LIMIT:
        name = "ItemSizeTooLarge" if kind == "Put" else "ItemSizeToUpdateTooLarge"
        raise parts.error(name)


# ---------------------------------------------------------------------------- handlers

Keys = Callable[[Any, dict[str, Any]], Iterator[tuple[Any, Any, Any]]]
_READS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")


def _key_of(parts: _Parts, backend: Any, table_name: Any, attributes: Any) -> Any:
    """(table, hash key, range key) as moto indexes them, or None if moto will refuse them."""
    if not isinstance(table_name, str) or not isinstance(attributes, dict):
        return None
    try:
        table = backend.get_table(table_name)
    except Exception:
        return None
    values: list[Any] = []
    for name in (table.hash_key_attr, table.range_key_attr):
        if name is None:
            values.append(None)
            continue
        value = attributes.get(name)
        if not isinstance(value, dict) or len(value) != 1:
            return None
        values.append(parts.DynamoType(value))
    return table, values[0], values[1]


def _single(field: str) -> Callable[[_Parts], Keys]:
    def keys(parts: _Parts) -> Keys:
        def of(backend: Any, body: dict[str, Any]) -> Iterator[tuple[Any, Any, Any]]:
            found = _key_of(parts, backend, body.get("TableName"), body.get(field))
            if found is not None:
                yield found

        return of

    return keys


def _batch(parts: _Parts) -> Keys:
    def of(backend: Any, body: dict[str, Any]) -> Iterator[tuple[Any, Any, Any]]:
        for table_name, requests in (body.get("RequestItems") or {}).items():
            for request in requests or ():
                put = request.get("PutRequest") or {}
                delete = request.get("DeleteRequest") or {}
                attributes = put.get("Item") if put else delete.get("Key")
                found = _key_of(parts, backend, table_name, attributes)
                if found is not None:
                    yield found

    return of


def _transaction(parts: _Parts) -> Keys:
    def of(backend: Any, body: dict[str, Any]) -> Iterator[tuple[Any, Any, Any]]:
        for entry in body.get("TransactItems") or ():
            for kind, op in entry.items():
                if kind == "ConditionCheck" or not isinstance(op, dict):
                    continue
                attributes = op.get("Item") if kind == "Put" else op.get("Key")
                found = _key_of(parts, backend, op.get("TableName"), attributes)
                if found is not None:
                    yield found

    return of


BATCH_WRITE_LIMIT = 25


def _check_batch(parts: _Parts, backend: Any, body: dict[str, Any]) -> None:
    """At most 25 requests, and no key twice (moto compares whole items, and puts apart from
    deletes, so it lets a put and a delete of one key, or two puts of it, through)."""
    requests = body.get("RequestItems") or {}
    count = sum(len(r or ()) for r in requests.values())
    if count > BATCH_WRITE_LIMIT:
        raise parts.error(
            "MockValidationException",
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: "
            "Map value must satisfy constraint: [Member must have length less than or equal to "
            f"{BATCH_WRITE_LIMIT}, Member must have length greater than or equal to 1]",
        )
    keys = list(_batch(parts)(backend, body))
    if len({(id(t), h, r) for t, h, r in keys}) != len(keys):
        raise parts.error(
            "MockValidationException", "Provided list of item keys contains duplicates"
        )


# operation: (the items it may touch, the error for an item that grows too large)
_WRITES: dict[str, tuple[Callable[[_Parts], Keys], str]] = {
    "put_item": (_single("Item"), "ItemSizeTooLarge"),
    "update_item": (_single("Key"), "ItemSizeToUpdateTooLarge"),
    "delete_item": (_single("Key"), "ItemSizeTooLarge"),
    "batch_write_item": (_batch, "ItemSizeTooLarge"),
    "transact_write_items": (_transaction, "ItemSizeTooLarge"),
}


def _canonical_json(value: Any) -> Any:
    """JSON for what canonicalising a request body leaves in it (binary values, sets)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    return repr(value)


class _Tokens:
    """ClientRequestTokens of successful transactions, remembered for DynamoDB's window."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], tuple[str, float, Any]] = {}

    def replay(self, parts: _Parts, handler: Any, body: dict[str, Any]) -> tuple[Any, ...]:
        token = body.get("ClientRequestToken")
        if not isinstance(token, str):
            return ()
        now = time.monotonic()
        for slot in [s for s, (_, at, _) in self._seen.items() if now - at > IDEMPOTENCY_WINDOW]:
            del self._seen[slot]
        slot = (str(handler.current_account), str(handler.region), token)
        request = json.dumps(
            {k: v for k, v in body.items() if k != "ClientRequestToken"},
            sort_keys=True,
            default=_canonical_json,
        )
        seen = self._seen.get(slot)
        if seen is None:
            return (slot, request)
        if seen[0] != request:
            raise parts.error(
                "DynamodbException",
                parts.exceptions.ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                "The request uses the same client token as a previous, but non-identical request",
            )
        return (copy.deepcopy(seen[2]),)  # serialising a result may consume it

    def remember(self, slot: Any, request: str, result: Any) -> None:
        self._seen[slot] = (request, time.monotonic(), copy.deepcopy(result))


def _correct_handlers(parts: _Parts) -> None:
    Handler = parts.Handler
    tokens = _Tokens()
    for operation in _READS:
        setattr(Handler, operation, _reading(parts, getattr(Handler, operation)))
    for operation, (keys, too_large) in _WRITES.items():
        method = getattr(Handler, operation)
        wrapped = _writing(parts, method, keys(parts), too_large)
        if operation == "transact_write_items":
            wrapped = _idempotent(parts, wrapped, tokens)
        setattr(Handler, operation, wrapped)


def _reading(parts: _Parts, method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(method)
    def run(handler: Any) -> Any:
        _canonicalise(parts, handler.body)
        return method(handler)

    return run


def _writing(
    parts: _Parts, method: Callable[[Any], Any], keys: Keys, too_large: str
) -> Callable[[Any], Any]:
    @functools.wraps(method)
    def run(handler: Any) -> Any:
        body = handler.body
        _canonicalise(parts, body)
        if method.__name__ == "batch_write_item":
            _check_batch(parts, handler.dynamodb_backend, body)
        journal = Journal()
        for table, hash_key, range_key in keys(handler.dynamodb_backend, body):
            journal.touch(table, hash_key, range_key)
        try:
            result = method(handler)
            _check_sizes(parts, journal, too_large)
        except BaseException:
            journal.rollback()
            raise
        journal.commit()
        return result

    return run


def _idempotent(
    parts: _Parts, method: Callable[[Any], Any], tokens: _Tokens
) -> Callable[[Any], Any]:
    @functools.wraps(method)
    def run(handler: Any) -> Any:
        found = tokens.replay(parts, handler, handler.body)
        if len(found) == 1:
            return found[0]
        result = method(handler)
        if found:
            tokens.remember(found[0], found[1], result)
        return result

    return run
