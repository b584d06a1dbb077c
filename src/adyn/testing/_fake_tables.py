"""In-memory DynamoDB tables for `FakeStreams` (when it has no inner transport).

Enough of DynamoDB for what a consumer test needs beside its stream: a consumer group's lease
table, a table that `tx.checkpoint` writes effects to, items a test reads back. Supported:
GetItem, PutItem, UpdateItem, DeleteItem, Query and Scan (no indexes), BatchGetItem,
BatchWriteItem, TransactGetItems and TransactWriteItems, with condition, key-condition, filter,
projection and update expressions (SET with `+`, `-`, `if_not_exists` and `list_append`,
REMOVE, ADD, DELETE; comparisons, BETWEEN, IN, AND/OR/NOT, `attribute_exists`,
`attribute_not_exists`, `attribute_type`, `begins_with`, `contains`, `size`). Anything else is
refused with a `ValidationException` that says so. Every write is atomic and isolated (the event
loop runs one call at a time), and a write to a table with a stream records exactly what
DynamoDB records: one record per change, none for a write that changes nothing.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any

from ..errors import DynamoError, service_error

__all__ = ["Table", "Tables", "ValidationError"]

Wire = dict[str, Any]
Item = dict[str, Wire]
_NUMBERS = Context(prec=38)


def ValidationError(message: str, operation: str | None = None) -> DynamoError:
    return service_error("ValidationException", message, operation, status=400)


# ---------------------------------------------------------------- values


def _number(value: Wire) -> Decimal:
    return _NUMBERS.create_decimal(value["N"])


def _format(number: Decimal) -> str:
    text = format(number.normalize(_NUMBERS), "f")
    return "0" if text in ("-0", "") else text


def _comparable(value: Wire) -> tuple[str, Any]:
    ((kind, inner),) = value.items()
    if kind == "N":
        return kind, _number(value)
    if kind == "B":
        return kind, base64.b64decode(inner) if isinstance(inner, str) else bytes(inner)
    return kind, inner


def _equal(a: Wire | None, b: Wire | None) -> bool:
    if a is None or b is None:
        return False
    ka, va = _comparable(a)
    kb, vb = _comparable(b)
    if ka != kb:
        return False
    if ka in ("SS", "NS", "BS"):
        return (
            {str(x) for x in va} == {str(x) for x in vb}
            if ka != "NS"
            else {_NUMBERS.create_decimal(x) for x in va}
            == {_NUMBERS.create_decimal(x) for x in vb}
        )
    return bool(va == vb)


def _order(a: Wire | None, b: Wire | None) -> int | None:
    if a is None or b is None:
        return None
    ka, va = _comparable(a)
    kb, vb = _comparable(b)
    if ka != kb or ka not in ("N", "S", "B"):
        return None
    return int((va > vb) - (va < vb))


# ---------------------------------------------------------------- expressions

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<ph>[#:][A-Za-z0-9_]+)"
    r"|(?P<op><>|<=|>=|[=<>(),.\[\]+-]))"
)
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}


class _Parser:
    def __init__(self, text: str, names: Wire | None, values: Wire | None, operation: str):
        self.tokens: list[str] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise ValidationError(f"cannot parse expression near {text[pos : pos + 20]!r}")
            self.tokens.append(match.group().strip())
            pos = match.end()
        self.i = 0
        self.names = names or {}
        self.values = values or {}
        self.operation = operation

    def peek(self, offset: int = 0) -> str | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise ValidationError(f"expected {expected or 'more'} in expression, got {token!r}")
        self.i += 1
        return token

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def name(self, token: str) -> str:
        if token.startswith("#"):
            if token not in self.names:
                raise ValidationError(f"expression attribute name {token} is not defined")
            return str(self.names[token])
        if token.upper() in _KEYWORDS or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token):
            raise ValidationError(f"not an attribute name: {token!r}")
        return token

    def path(self) -> list[str | int]:
        parts: list[str | int] = [self.name(self.take())]
        while self.peek() in (".", "["):
            if self.take() == ".":
                parts.append(self.name(self.take()))
            else:
                parts.append(int(self.take()))
                self.take("]")
        return parts

    def value(self, token: str) -> Wire:
        if token not in self.values:
            raise ValidationError(f"expression attribute value {token} is not defined")
        return dict(self.values[token])


Getter = Callable[[Item], Wire | None]
Test = Callable[[Item], bool]


def _get(item: Item, path: list[str | int]) -> Wire | None:
    current: Any = item.get(path[0]) if isinstance(path[0], str) else None
    for part in path[1:]:
        if current is None:
            return None
        if isinstance(part, int):
            items = current.get("L")
            current = items[part] if items is not None and part < len(items) else None
        else:
            members = current.get("M")
            current = members.get(part) if members is not None else None
    return current  # type: ignore[no-any-return]


def _operand(p: _Parser) -> Getter:
    token = p.take()
    if token.startswith(":"):
        value = p.value(token)
        return lambda item: value
    if token == "size" and p.peek() == "(":
        p.take("(")
        path = p.path()
        p.take(")")

        def size(item: Item) -> Wire | None:
            found = _get(item, path)
            if found is None:
                return None
            ((kind, inner),) = found.items()
            length = len(base64.b64decode(inner)) if kind == "B" else len(inner)
            return {"N": str(length)}

        return size
    p.i -= 1
    path = p.path()
    return lambda item: _get(item, path)


def parse_condition(text: str, names: Wire | None, values: Wire | None, op: str) -> Test:
    p = _Parser(text, names, values, op)
    test = _or(p)
    if not p.done():
        raise ValidationError(f"unexpected {p.peek()!r} in condition")
    return test


def _or(p: _Parser) -> Test:
    tests = [_and(p)]
    while (p.peek() or "").upper() == "OR":
        p.take()
        tests.append(_and(p))
    return tests[0] if len(tests) == 1 else lambda item: any(t(item) for t in tests)


def _and(p: _Parser) -> Test:
    tests = [_not(p)]
    while (p.peek() or "").upper() == "AND":
        p.take()
        tests.append(_not(p))
    return tests[0] if len(tests) == 1 else lambda item: all(t(item) for t in tests)


def _not(p: _Parser) -> Test:
    if (p.peek() or "").upper() == "NOT":
        p.take()
        inner = _not(p)
        return lambda item: not inner(item)
    return _primary(p)


_FUNCTIONS = {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with"}


def _primary(p: _Parser) -> Test:
    token = p.peek()
    if token == "(":
        p.take()
        test = _or(p)
        p.take(")")
        return test
    if token in _FUNCTIONS | {"contains"} and p.peek(1) == "(":
        return _function(p, p.take())
    left = _operand(p)
    op = (p.take() or "").upper()
    if op == "BETWEEN":
        low = _operand(p)
        p.take("AND")
        high = _operand(p)

        def between(item: Item) -> bool:
            a, b = _order(left(item), low(item)), _order(left(item), high(item))
            return a is not None and b is not None and a >= 0 and b <= 0

        return between
    if op == "IN":
        p.take("(")
        options = [_operand(p)]
        while p.peek() == ",":
            p.take()
            options.append(_operand(p))
        p.take(")")
        return lambda item: any(_equal(left(item), o(item)) for o in options)
    right = _operand(p)
    if op == "=":
        return lambda item: _equal(left(item), right(item))
    if op == "<>":
        return lambda item: left(item) is not None and not _equal(left(item), right(item))
    checks: dict[str, Callable[[int], bool]] = {
        "<": lambda c: c < 0,
        "<=": lambda c: c <= 0,
        ">": lambda c: c > 0,
        ">=": lambda c: c >= 0,
    }
    if op not in checks:
        raise ValidationError(f"unsupported comparator {op!r}")
    check = checks[op]

    def compare(item: Item) -> bool:
        order = _order(left(item), right(item))
        return order is not None and check(order)

    return compare


def _function(p: _Parser, name: str) -> Test:
    p.take("(")
    path = p.path()
    arg: Getter | None = None
    if p.peek() == ",":
        p.take()
        arg = _operand(p)
    p.take(")")
    if name == "attribute_exists":
        return lambda item: _get(item, path) is not None
    if name == "attribute_not_exists":
        return lambda item: _get(item, path) is None
    assert arg is not None
    operand = arg
    if name == "attribute_type":

        def type_is(item: Item) -> bool:
            found, wanted = _get(item, path), operand(item)
            return found is not None and wanted is not None and next(iter(found)) == wanted["S"]

        return type_is
    if name == "begins_with":

        def begins(item: Item) -> bool:
            found, prefix = _get(item, path), operand(item)
            if found is None or prefix is None:
                return False
            ka, va = _comparable(found)
            kb, vb = _comparable(prefix)
            return ka == kb and ka in ("S", "B") and va.startswith(vb)

        return begins

    def contains(item: Item) -> bool:
        found, wanted = _get(item, path), operand(item)
        if found is None or wanted is None:
            return False
        ((kind, inner),) = found.items()
        if kind == "S":
            return "S" in wanted and wanted["S"] in inner
        if kind in ("SS", "NS", "BS"):
            return any(_equal({kind[0]: x}, wanted) for x in inner)
        if kind == "L":
            return any(_equal(x, wanted) for x in inner)
        return False

    return contains


def apply_update(text: str, names: Wire | None, values: Wire | None, item: Item, op: str) -> Item:
    """`item` after the update expression (a new dict; `item` is left as it was)."""
    p = _Parser(text, names, values, op)
    new = copy.deepcopy(item)
    actions: list[Callable[[Item], None]] = []
    while not p.done():
        clause = p.take().upper()
        while True:
            if clause == "SET":
                path = p.path()
                p.take("=")
                actions.append(_setter(path, _value_expr(p), item))
            elif clause == "REMOVE":
                actions.append(_remover(p.path()))
            elif clause in ("ADD", "DELETE"):
                path = p.path()
                operand = _operand(p)
                actions.append(_adder(clause, path, operand, item))
            else:
                raise ValidationError(f"unknown update clause {clause!r}")
            if p.peek() != ",":
                break
            p.take()
    for action in actions:
        action(new)
    return new


def _value_expr(p: _Parser) -> Getter:
    left = _function_value(p)
    if p.peek() in ("+", "-"):
        sign = p.take()
        right = _function_value(p)

        def arithmetic(item: Item) -> Wire | None:
            a, b = left(item), right(item)
            if a is None or b is None or "N" not in a or "N" not in b:
                raise ValidationError("an operand in the update expression is not a number")
            total = _number(a) + _number(b) if sign == "+" else _number(a) - _number(b)
            return {"N": _format(total)}

        return arithmetic
    return left


def _function_value(p: _Parser) -> Getter:
    token = p.peek()
    if token in ("if_not_exists", "list_append") and p.peek(1) == "(":
        p.take()
        p.take("(")
        first = _function_value(p) if token == "list_append" else None
        path = p.path() if token == "if_not_exists" else None
        p.take(",")
        second = _function_value(p)
        p.take(")")
        if path is not None:
            where = path
            return lambda item: _get(item, where) or second(item)
        assert first is not None
        head = first

        def append(item: Item) -> Wire | None:
            a, b = head(item), second(item)
            if a is None or b is None or "L" not in a or "L" not in b:
                raise ValidationError("list_append needs two lists")
            return {"L": [*a["L"], *b["L"]]}

        return append
    return _operand(p)


def _remover(path: list[str | int]) -> Callable[[Item], None]:
    return lambda target: _remove(target, path)


def _setter(path: list[str | int], value: Getter, old: Item) -> Callable[[Item], None]:
    def run(target: Item) -> None:
        computed = value(old)
        if computed is None:
            raise ValidationError("the update expression reads an attribute that is missing")
        _put(target, path, copy.deepcopy(computed))

    return run


def _adder(
    clause: str, path: list[str | int], operand: Getter, old: Item
) -> Callable[[Item], None]:
    def run(target: Item) -> None:
        given = operand(old)
        current = _get(old, path)
        if given is None:
            raise ValidationError(f"{clause} needs a value")
        ((kind, inner),) = given.items()
        if kind == "N" and clause == "ADD":
            base = _number(current) if current is not None else Decimal(0)
            _put(target, path, {"N": _format(base + _number(given))})
            return
        if kind not in ("SS", "NS", "BS"):
            raise ValidationError(f"{clause} works on numbers and sets")
        members = list(current[kind]) if current is not None and kind in current else []
        if clause == "ADD":
            members += [x for x in inner if x not in members]
        else:
            members = [x for x in members if x not in inner]
        if members:
            _put(target, path, {kind: members})
        else:
            _remove(target, path)

    return run


def _put(target: Item, path: list[str | int], value: Wire) -> None:
    if len(path) == 1:
        assert isinstance(path[0], str)
        target[path[0]] = value
        return
    parent = _get(target, path[:-1])
    last = path[-1]
    if parent is None:
        raise ValidationError("the document path to update does not exist")
    if isinstance(last, int):
        items = parent.get("L")
        if items is None:
            raise ValidationError("the document path to update is not a list")
        if last < len(items):
            items[last] = value
        else:
            items.append(value)
    else:
        members = parent.get("M")
        if members is None:
            raise ValidationError("the document path to update is not a map")
        members[last] = value


def _remove(target: Item, path: list[str | int]) -> None:
    if len(path) == 1:
        assert isinstance(path[0], str)
        target.pop(path[0], None)
        return
    parent = _get(target, path[:-1])
    last = path[-1]
    if parent is None:
        return
    if isinstance(last, int):
        items = parent.get("L")
        if items is not None and last < len(items):
            del items[last]
    else:
        members = parent.get("M")
        if members is not None:
            members.pop(last, None)


def project(item: Item, text: str | None, names: Wire | None) -> Item:
    if not text:
        return copy.deepcopy(item)
    p = _Parser(text, names, None, "projection")
    out: Item = {}
    while not p.done():
        path = p.path()
        found = _get(item, path)
        if found is not None and isinstance(path[0], str):
            if len(path) == 1:
                out[path[0]] = copy.deepcopy(found)
            else:
                top = item.get(path[0])
                if top is not None:
                    out[path[0]] = copy.deepcopy(top)
        if p.peek() == ",":
            p.take()
    return out


# ---------------------------------------------------------------- tables


@dataclass
class Table:
    """One in-memory table: its description and its items by key."""

    name: str
    description: Wire
    hash_key: str
    range_key: str | None
    items: dict[tuple[Any, ...], Item] = field(default_factory=dict)
    on_change: Callable[[Item, Item | None, Item | None], None] | None = None

    def key_of(self, item: Item, operation: str) -> tuple[Any, ...]:
        names = [self.hash_key] + ([self.range_key] if self.range_key else [])
        key = []
        for name in names:
            value = item.get(name)
            if value is None:
                raise ValidationError(f"the key attribute {name!r} is missing", operation)
            key.append(_comparable(value))
        return tuple(key)

    def key_only(self, item: Item) -> Item:
        names = [self.hash_key] + ([self.range_key] if self.range_key else [])
        return {name: item[name] for name in names if name in item}

    def write(self, key: tuple[Any, ...], new: Item | None) -> None:
        old = self.items.get(key)
        if new is None:
            self.items.pop(key, None)
        else:
            self.items[key] = new
        if self.on_change is not None and old != new:
            self.on_change(self.key_only(new or old or {}), old, new)

    def sorted_items(self) -> Iterator[Item]:
        def order(entry: tuple[tuple[Any, ...], Item]) -> tuple[Any, ...]:
            return tuple(part[1] for part in entry[0])

        for _, item in sorted(self.items.items(), key=order):
            yield item


class Tables:
    """The fake's in-memory tables and the item operations on them."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}

    def table(self, name: str | None, operation: str) -> Table:
        table = self.tables.get(name or "")
        if table is None:
            raise service_error(
                "ResourceNotFoundException", f"Requested resource not found: {name}", operation
            )
        return table

    def add(self, name: str, description: Wire) -> Table:
        keys = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
        table = Table(name, description, keys["HASH"], keys.get("RANGE"))
        self.tables[name] = table
        return table

    def handle(self, operation: str, request: Wire) -> Wire | None:
        """Answer an item operation, or None if it is not one."""
        handler = getattr(self, "_" + operation, None)
        if handler is None or operation.startswith("_"):
            return None
        result: Wire = handler(request)
        return result

    # ---------------------------------------------------------- single items

    def _check(self, table: Table, request: Wire, old: Item | None, operation: str) -> None:
        text = request.get("ConditionExpression")
        if not text:
            return
        test = parse_condition(
            text,
            request.get("ExpressionAttributeNames"),
            request.get("ExpressionAttributeValues"),
            operation,
        )
        if not test(old or {}):
            response: Wire = {}
            if old is not None and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                response["Item"] = copy.deepcopy(old)
            raise service_error(
                "ConditionalCheckFailedException",
                "The conditional request failed",
                operation,
                response,
                status=400,
            )

    def _GetItem(self, request: Wire) -> Wire:
        table = self.table(request.get("TableName"), "GetItem")
        item = table.items.get(table.key_of(request.get("Key") or {}, "GetItem"))
        if item is None:
            return {}
        return {
            "Item": project(
                item, request.get("ProjectionExpression"), request.get("ExpressionAttributeNames")
            )
        }

    def _PutItem(self, request: Wire) -> Wire:
        table = self.table(request.get("TableName"), "PutItem")
        item = copy.deepcopy(request.get("Item") or {})
        key = table.key_of(item, "PutItem")
        old = table.items.get(key)
        self._check(table, request, old, "PutItem")
        table.write(key, item)
        if old is not None and request.get("ReturnValues") == "ALL_OLD":
            return {"Attributes": copy.deepcopy(old)}
        return {}

    def _DeleteItem(self, request: Wire) -> Wire:
        table = self.table(request.get("TableName"), "DeleteItem")
        key = table.key_of(request.get("Key") or {}, "DeleteItem")
        old = table.items.get(key)
        self._check(table, request, old, "DeleteItem")
        if old is not None:
            table.write(key, None)
        if old is not None and request.get("ReturnValues") == "ALL_OLD":
            return {"Attributes": copy.deepcopy(old)}
        return {}

    def _UpdateItem(self, request: Wire) -> Wire:
        table = self.table(request.get("TableName"), "UpdateItem")
        key_item = request.get("Key") or {}
        key = table.key_of(key_item, "UpdateItem")
        old = table.items.get(key)
        self._check(table, request, old, "UpdateItem")
        base = copy.deepcopy(old) if old is not None else copy.deepcopy(key_item)
        text = request.get("UpdateExpression")
        new = base
        if text:
            new = apply_update(
                text,
                request.get("ExpressionAttributeNames"),
                request.get("ExpressionAttributeValues"),
                base,
                "UpdateItem",
            )
        for name, value in key_item.items():
            if new.get(name) != value:
                raise ValidationError("an update expression cannot change a key", "UpdateItem")
        table.write(key, new)
        returned = request.get("ReturnValues", "NONE")
        if returned == "ALL_NEW":
            return {"Attributes": copy.deepcopy(new)}
        if returned == "ALL_OLD" and old is not None:
            return {"Attributes": copy.deepcopy(old)}
        if returned in ("UPDATED_NEW", "UPDATED_OLD"):
            source = new if returned == "UPDATED_NEW" else (old or {})
            changed = {
                k: copy.deepcopy(v)
                for k, v in source.items()
                if (old or {}).get(k) != new.get(k) and k not in key_item
            }
            return {"Attributes": changed} if changed else {}
        return {}

    # ---------------------------------------------------------- many items

    def _matching(self, request: Wire, operation: str) -> list[Item]:
        if request.get("IndexName"):
            raise ValidationError("FakeStreams' tables have no secondary indexes", operation)
        table = self.table(request.get("TableName"), operation)
        names = request.get("ExpressionAttributeNames")
        values = request.get("ExpressionAttributeValues")
        key_test = filter_test = None
        if request.get("KeyConditionExpression"):
            key_test = parse_condition(request["KeyConditionExpression"], names, values, operation)
        elif operation == "Query":
            raise ValidationError("Query needs a KeyConditionExpression", operation)
        if request.get("FilterExpression"):
            filter_test = parse_condition(request["FilterExpression"], names, values, operation)
        items = [item for item in table.sorted_items() if key_test is None or key_test(item)]
        if request.get("ScanIndexForward") is False:
            items.reverse()
        start = request.get("ExclusiveStartKey")
        if start:
            wanted = table.key_of(start, operation)
            for i, item in enumerate(items):
                if table.key_of(item, operation) == wanted:
                    items = items[i + 1 :]
                    break
        limit = request.get("Limit")
        more = limit is not None and len(items) > int(limit)
        if limit is not None:
            items = items[: int(limit)]
        last = table.key_only(items[-1]) if more and items else None
        kept = [item for item in items if filter_test is None or filter_test(item)]
        self._last = last
        self._scanned = len(items)
        return kept

    def _read_many(self, request: Wire, operation: str) -> Wire:
        items = self._matching(request, operation)
        response: Wire = {"Count": len(items), "ScannedCount": self._scanned}
        if request.get("Select") != "COUNT":
            text = request.get("ProjectionExpression")
            names = request.get("ExpressionAttributeNames")
            response["Items"] = [project(item, text, names) for item in items]
        if self._last is not None:
            response["LastEvaluatedKey"] = self._last
        return response

    def _Query(self, request: Wire) -> Wire:
        return self._read_many(request, "Query")

    def _Scan(self, request: Wire) -> Wire:
        return self._read_many(request, "Scan")

    def _BatchGetItem(self, request: Wire) -> Wire:
        responses: dict[str, list[Item]] = {}
        for name, spec in (request.get("RequestItems") or {}).items():
            found = responses.setdefault(name, [])
            for key in spec.get("Keys", []):
                got = self._GetItem(
                    {
                        "TableName": name,
                        "Key": key,
                        "ProjectionExpression": spec.get("ProjectionExpression"),
                        "ExpressionAttributeNames": spec.get("ExpressionAttributeNames"),
                    }
                )
                if "Item" in got:
                    found.append(got["Item"])
        return {"Responses": responses, "UnprocessedKeys": {}}

    def _BatchWriteItem(self, request: Wire) -> Wire:
        for name, writes in (request.get("RequestItems") or {}).items():
            for write in writes:
                if "PutRequest" in write:
                    self._PutItem({"TableName": name, "Item": write["PutRequest"]["Item"]})
                else:
                    self._DeleteItem({"TableName": name, "Key": write["DeleteRequest"]["Key"]})
        return {"UnprocessedItems": {}}

    def _TransactGetItems(self, request: Wire) -> Wire:
        responses = []
        for entry in request.get("TransactItems") or []:
            responses.append(self._GetItem(entry["Get"]))
        return {"Responses": responses}

    def _TransactWriteItems(self, request: Wire) -> Wire:
        operation = "TransactWriteItems"
        entries = request.get("TransactItems") or []
        if not 1 <= len(entries) <= 100:
            raise ValidationError("a transaction holds 1 to 100 items", operation)
        plans = []
        seen = set()
        reasons = []
        failed = False
        for entry in entries:
            ((kind, body),) = entry.items()
            table = self.table(body.get("TableName"), operation)
            key_item = body.get("Item") if kind == "Put" else body.get("Key")
            key = table.key_of(key_item or {}, operation)
            if (table.name, key) in seen:
                raise ValidationError(
                    "Transaction request cannot include multiple operations on one item",
                    operation,
                )
            seen.add((table.name, key))
            old = table.items.get(key)
            try:
                self._check(table, body, old, operation)
            except DynamoError as exc:
                failed = True
                reason: Wire = {"Code": "ConditionalCheckFailed", "Message": exc.message}
                if "Item" in exc.response:
                    reason["Item"] = exc.response["Item"]
                reasons.append(reason)
                continue
            reasons.append({"Code": "None"})
            plans.append((kind, body, table, key))
        if failed:
            raise service_error(
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons",
                operation,
                {"CancellationReasons": reasons},
                status=400,
            )
        for kind, body, table, key in plans:
            if kind == "Put":
                table.write(key, copy.deepcopy(body["Item"]))
            elif kind == "Delete":
                if key in table.items:
                    table.write(key, None)
            elif kind == "Update":
                old = table.items.get(key)
                base = copy.deepcopy(old) if old is not None else copy.deepcopy(body["Key"])
                new = apply_update(
                    body["UpdateExpression"],
                    body.get("ExpressionAttributeNames"),
                    body.get("ExpressionAttributeValues"),
                    base,
                    operation,
                )
                table.write(key, new)
        return {}
