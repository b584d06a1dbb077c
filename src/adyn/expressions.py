"""Attribute paths, conditions, update actions, and the renderer that allocates placeholders.

Expressions are immutable values built from class attributes (`Post.views > 3`). Rendering is a
separate pass: a `Renderer` walks them and writes DynamoDB expression text in which every name is
a `#nN` placeholder and every value a `:vN` placeholder, so user data never becomes expression
text. Operators are checked against the field's DynamoDB type when the expression is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .codecs import DYNAMIC, INT, CodecError, FieldCodec, b64_text, check_text, number_text
from .errors import InvalidCondition, InvalidItem

if TYPE_CHECKING:
    from .schema import FieldSpec

__all__ = [
    "Action",
    "Condition",
    "Path",
    "Renderer",
    "render_actions",
    "render_condition",
    "render_projection",
]

Wire = dict[str, Any]

_ORDERED = frozenset({"S", "N", "B", ""})
_SIZED = frozenset({"S", "B", "SS", "NS", "BS", "L", "M", ""})
_CONTAINS = frozenset({"S", "SS", "NS", "BS", "L", ""})
_BEGINS = frozenset({"S", "B", ""})
_ADDABLE = frozenset({"N", "SS", "NS", "BS", ""})
_SETS = frozenset({"SS", "NS", "BS", ""})
_TYPE_NAMES = frozenset({"S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"})


class Renderer:
    """Collects `ExpressionAttributeNames` and `ExpressionAttributeValues` while rendering."""

    __slots__ = ("_name_of", "names", "values")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Wire] = {}
        self._name_of: dict[str, str] = {}

    @classmethod
    def resume(cls, names: dict[str, str], values: dict[str, Wire]) -> Renderer:
        """A renderer that goes on after a cached rendering (names are copied, not shared)."""
        r = cls()
        r.names = dict(names)
        r.values = values
        r._name_of = {name: ref for ref, name in names.items()}
        return r

    def name(self, name: str) -> str:
        ref = self._name_of.get(name)
        if ref is None:
            ref = f"#n{len(self._name_of)}"
            self._name_of[name] = ref
            self.names[ref] = name
        return ref

    def value(self, wire: Wire) -> str:
        ref = f":v{len(self.values)}"
        self.values[ref] = wire
        return ref

    def path(self, path: Path) -> str:
        parts: list[str] = []
        for segment in path._segments:
            if isinstance(segment, int):
                parts.append(f"[{segment}]")
            else:
                parts.append(("." if parts else "") + self.name(segment))
        return "".join(parts)

    def into(self, request: dict[str, Any]) -> dict[str, Any]:
        """Add the collected names and values to a request (only when there are any)."""
        if self.names:
            request["ExpressionAttributeNames"] = self.names
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


# ---------------------------------------------------------------- operands


class Operand:
    """Something that renders to a value position: a path, a value, `size()` or arithmetic."""

    __slots__ = ()

    def _render(self, r: Renderer) -> str:
        raise NotImplementedError

    def _paths(self) -> Iterator[Path]:
        return iter(())


class _Value(Operand):
    __slots__ = ("wire",)

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def _render(self, r: Renderer) -> str:
        return r.value(self.wire)

    def __repr__(self) -> str:
        return f"<value {self.wire!r}>"


class _Size(Operand):
    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def _render(self, r: Renderer) -> str:
        return f"size({r.path(self.path)})"

    def _paths(self) -> Iterator[Path]:
        yield self.path

    def _cmp(self, op: str, other: Any) -> Condition:
        return Compare(op, self, _as_operand(other, INT, f"size({self.path})"))

    def __eq__(self, other: object) -> Condition:  # type: ignore[override]
        return self._cmp("=", other)

    def __ne__(self, other: object) -> Condition:  # type: ignore[override]
        return self._cmp("<>", other)

    def __lt__(self, other: Any) -> Condition:
        return self._cmp("<", other)

    def __le__(self, other: Any) -> Condition:
        return self._cmp("<=", other)

    def __gt__(self, other: Any) -> Condition:
        return self._cmp(">", other)

    def __ge__(self, other: Any) -> Condition:
        return self._cmp(">=", other)

    def between(self, low: Any, high: Any) -> Condition:
        return Between(self, _as_operand(low, INT, "size"), _as_operand(high, INT, "size"))

    __hash__ = object.__hash__


class Arithmetic(Operand):
    """`Post.views + 1`: usable as the value of `set(...)`."""

    __slots__ = ("left", "op", "right")

    def __init__(self, left: Operand, op: str, right: Operand) -> None:
        self.left, self.op, self.right = left, op, right

    def _render(self, r: Renderer) -> str:
        return f"{self.left._render(r)} {self.op} {self.right._render(r)}"

    def _paths(self) -> Iterator[Path]:
        yield from self.left._paths()
        yield from self.right._paths()


def _encode(codec: FieldCodec, value: Any, where: str) -> Wire:
    try:
        wire = codec.encode(value)
    except CodecError as exc:
        raise InvalidCondition(f"{where}: {exc}") from None
    if wire is None:
        raise InvalidCondition(f"{where}: an empty set cannot be used as a value")
    return wire


def _as_operand(value: Any, codec: FieldCodec, where: str) -> Operand:
    if isinstance(value, Operand):
        return value
    return _Value(_encode(codec, value, where))


# ---------------------------------------------------------------- paths


class Path(Operand):
    """An attribute path such as `Post.views`, `Post.address.city` or `Post.history[0]`.

    Every field name works as a path, whatever it is called: `Car.info.model`, `Car.info.field`.
    Where a nested model has a field named like one of the path methods (`size`, `contains`,
    `set`, ...), attribute access gives the field (`Car.info.size == 3`); the method stays
    reachable as `Path.size(Car.info)`. `Car.info["size"]` is always the field.
    """

    __slots__ = ("_codec", "_field", "_model", "_segments")

    def __new__(
        cls,
        model: type,
        field: FieldSpec | None,
        segments: tuple[str | int, ...],
        codec: FieldCodec,
    ) -> Path:
        klass = _path_class(codec) if cls is Path else cls
        return object.__new__(klass)

    def __init__(
        self,
        model: type,
        field: FieldSpec | None,
        segments: tuple[str | int, ...],
        codec: FieldCodec,
    ) -> None:
        self._model = model
        self._field = field  # the model field the path starts at (None for raw paths)
        self._segments = segments
        self._codec = codec

    def __repr__(self) -> str:
        text = ""
        for s in self._segments:
            text += f"[{s}]" if isinstance(s, int) else (f".{s}" if text else s)
        return f"{getattr(self._model, '__name__', '?')}.{text}"

    __str__ = __repr__

    def __hash__(self) -> int:
        return hash((self._model, self._segments))

    def _render(self, r: Renderer) -> str:
        return r.path(self)

    def _paths(self) -> Iterator[Path]:
        yield self

    # navigation ----------------------------------------------------------

    def __getattr__(self, name: str) -> Path:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, key: str | int) -> Path:
        codec = self._codec
        if isinstance(key, int):
            if codec.wire_type not in ("L", ""):
                raise InvalidCondition(f"{self} is not a list; [{key}] cannot index it")
            return Path(self._model, self._field, (*self._segments, key), codec.element or DYNAMIC)
        try:
            check_text(key)
        except (CodecError, AttributeError, TypeError):
            raise InvalidCondition(f"{self}: {key!r} cannot name an attribute") from None
        if codec.fields is not None:
            entry = codec.fields.get(key)
            if entry is None:
                wanted = {wire: (wire, c) for wire, c in codec.fields.values()}.get(key)
                if wanted is None:
                    raise InvalidCondition(
                        f"{self} has no field {key!r} (fields: {sorted(codec.fields)})"
                    )
                entry = wanted
            wire, sub = entry
            return Path(self._model, self._field, (*self._segments, wire), sub)
        if codec.wire_type in ("M", ""):
            return Path(self._model, self._field, (*self._segments, key), codec.element or DYNAMIC)
        raise InvalidCondition(f"{self} is not a map; {key!r} cannot be looked up in it")

    def _check(self, allowed: frozenset[str], what: str) -> None:
        if self._codec.wire_type not in allowed:
            raise InvalidCondition(
                f"{self}: {what} does not apply to a field stored as "
                f"{self._codec.wire_type} ({self._codec.python_type!r})"
            )

    def _value(self, value: Any) -> Operand:
        """A value to store in the field: exactly the field's type."""
        return _as_operand(value, self._codec, str(self))

    def _compared(self, value: Any) -> Operand:
        """A value to compare the field with: an int field compares with any number."""
        if self._codec is INT and isinstance(value, float | Decimal):
            try:
                return _Value({"N": number_text(value)})
            except CodecError as exc:
                raise InvalidCondition(f"{self}: {exc}") from None
        return _as_operand(value, self._codec, str(self))

    def _empty(self, value: Any) -> bool:
        """True when `value` is an empty value the field stores as no attribute (an empty set;
        on a set field also `[]` and `{}`)."""
        if not isinstance(value, set | frozenset | list | tuple | dict) or value:
            return False
        if self._codec.wire_type in ("SS", "NS", "BS"):
            return True
        try:
            return self._codec.encode(value) is None
        except CodecError:
            return False

    # conditions -----------------------------------------------------------

    def __eq__(self, other: object) -> Condition:  # type: ignore[override]
        if other is None or self._empty(other):
            return Path.not_exists(self)
        return Compare("=", self, self._compared(other))

    def __ne__(self, other: object) -> Condition:  # type: ignore[override]
        if other is None or self._empty(other):
            return Path.exists(self)
        return Compare("<>", self, self._compared(other))

    def __lt__(self, other: Any) -> Condition:
        self._check(_ORDERED, "<")
        return Compare("<", self, self._compared(other))

    def __le__(self, other: Any) -> Condition:
        self._check(_ORDERED, "<=")
        return Compare("<=", self, self._compared(other))

    def __gt__(self, other: Any) -> Condition:
        self._check(_ORDERED, ">")
        return Compare(">", self, self._compared(other))

    def __ge__(self, other: Any) -> Condition:
        self._check(_ORDERED, ">=")
        return Compare(">=", self, self._compared(other))

    def between(self, low: Any, high: Any) -> Condition:
        self._check(_ORDERED, "between")
        return Between(self, self._compared(low), self._compared(high))

    def _prefix(self, value: Any) -> Operand:
        # A prefix of a UUID or datetime stored as text is text, not a whole UUID/datetime.
        if self._codec.wire_type == "S" and isinstance(value, str):
            try:
                return _Value({"S": check_text(value)})
            except CodecError as exc:
                raise InvalidCondition(f"{self}: {exc}") from None
        if self._codec.wire_type == "B" and isinstance(value, bytes):
            return _Value({"B": b64_text(value)})
        return self._value(value)

    def begins_with(self, prefix: Any) -> Condition:
        self._check(_BEGINS, "begins_with")
        return Function("begins_with", self, self._prefix(prefix))

    def contains(self, member: Any) -> Condition:
        self._check(_CONTAINS, "contains")
        codec = self._codec.element if self._codec.wire_type in ("SS", "NS", "BS", "L") else None
        if codec is None:
            return Function("contains", self, self._prefix(member))
        operand = _as_operand(member, codec, str(self))
        return Function("contains", self, operand)

    def in_(self, values: Iterable[Any]) -> Condition:
        operands = [self._compared(v) for v in values]
        if not operands:
            raise InvalidCondition(f"{self}: in_() needs at least one value")
        if len(operands) > 100:
            raise InvalidCondition(f"{self}: in_() takes at most 100 values (DynamoDB's limit)")
        return In(self, operands)

    def exists(self) -> Condition:
        return Function("attribute_exists", self)

    def not_exists(self) -> Condition:
        return Function("attribute_not_exists", self)

    def is_(self, value: None) -> Condition:
        if value is not None:
            raise InvalidCondition(f"{self}: is_() only takes None; use == for values")
        return Path.not_exists(self)

    def is_not(self, value: None) -> Condition:
        if value is not None:
            raise InvalidCondition(f"{self}: is_not() only takes None; use != for values")
        return Path.exists(self)

    def is_type(self, type_name: str) -> Condition:
        if type_name not in _TYPE_NAMES:
            raise InvalidCondition(f"{self}: is_type() takes one of {sorted(_TYPE_NAMES)}")
        return Function("attribute_type", self, _Value({"S": type_name}))

    def size(self) -> _Size:
        self._check(_SIZED, "size()")
        return _Size(self)

    # arithmetic -----------------------------------------------------------

    def __add__(self, other: Any) -> Arithmetic:
        self._check(frozenset({"N", ""}), "+")
        return Arithmetic(self, "+", self._value(other))

    def __radd__(self, other: Any) -> Arithmetic:
        self._check(frozenset({"N", ""}), "+")
        return Arithmetic(self._value(other), "+", self)

    def __sub__(self, other: Any) -> Arithmetic:
        self._check(frozenset({"N", ""}), "-")
        return Arithmetic(self, "-", self._value(other))

    def __rsub__(self, other: Any) -> Arithmetic:
        self._check(frozenset({"N", ""}), "-")
        return Arithmetic(self._value(other), "-", self)

    # actions --------------------------------------------------------------

    def set(self, value: Any) -> Action:
        """SET the attribute to a value, another path or arithmetic (None removes it)."""
        if value is None:
            return Path.remove(self)
        if isinstance(value, Operand):
            return Action("SET", self, value)
        try:
            wire = self._codec.encode(value)
        except CodecError as exc:
            raise InvalidCondition(f"{self}: {exc}") from None
        if wire is None:  # an empty set is stored as no attribute
            return Path.remove(self)
        field = self._field
        if field is not None and field.index_key and len(self._segments) == 1:
            ((tag, raw),) = wire.items()
            if tag in ("S", "B") and not raw:
                raise InvalidItem(
                    getattr(self._model, "__name__", "?"),
                    field.name,
                    "an index key value cannot be empty (set None to leave the index)",
                )
        return Action("SET", self, _Value(wire))

    def set_if_missing(self, value: Any) -> Action:
        """SET the attribute only when it does not exist yet."""
        return Action("SET", self, _IfNotExists(self, self._value(value)))

    def remove(self) -> Action:
        """REMOVE the attribute (or list element)."""
        if self._field is not None and self._field.key and len(self._segments) == 1:
            raise InvalidCondition(f"{self}: a key attribute cannot be removed")
        return Action("REMOVE", self, None)

    def add(self, value: Any) -> Action:
        """ADD a number to a number, or members to a set."""
        self._check(_ADDABLE, "add()")
        return Action("ADD", self, self._value(value))

    def delete(self, subset: Any) -> Action:
        """DELETE members from a set."""
        self._check(_SETS, "delete()")
        return Action("DELETE", self, self._value(subset))

    def append(self, values: Sequence[Any]) -> Action:
        """Append to a list (a missing list is treated as empty)."""
        self._check(frozenset({"L", ""}), "append()")
        return Action("SET", self, _ListAppend(self, self._value(list(values)), prepend=False))

    def prepend(self, values: Sequence[Any]) -> Action:
        """Prepend to a list (a missing list is treated as empty)."""
        self._check(frozenset({"L", ""}), "prepend()")
        return Action("SET", self, _ListAppend(self, self._value(list(values)), prepend=True))


_PATH_CLASSES: dict[FieldCodec, type[Path]] = {}
_PATH_NAMES = frozenset(n for n in dir(Path) if not n.startswith("_"))


def _field_getter(name: str) -> Callable[[Path], Path]:
    def field(path: Path) -> Path:
        return path[name]

    return field


def _path_class(codec: FieldCodec) -> type[Path]:
    """`Path`, or for a nested model with fields named like path methods, a subclass in which
    those names give the fields (made once per nested model)."""
    fields = codec.fields
    if not fields:
        return Path
    klass = _PATH_CLASSES.get(codec)
    if klass is None:
        shadowed = sorted(_PATH_NAMES & set(fields))
        if not shadowed:
            klass = Path
        else:
            namespace: dict[str, Any] = {"__slots__": ()}
            for name in shadowed:
                namespace[name] = property(_field_getter(name))
            klass = type("Path", (Path,), namespace)
            klass.__qualname__ = "Path"
        _PATH_CLASSES[codec] = klass
    return klass


class _IfNotExists(Operand):
    __slots__ = ("path", "value")

    def __init__(self, path: Path, value: Operand) -> None:
        self.path, self.value = path, value

    def _render(self, r: Renderer) -> str:
        return f"if_not_exists({r.path(self.path)}, {self.value._render(r)})"


class _ListAppend(Operand):
    __slots__ = ("path", "prepend", "value")

    def __init__(self, path: Path, value: Operand, prepend: bool) -> None:
        self.path, self.value, self.prepend = path, value, prepend

    def _render(self, r: Renderer) -> str:
        current = f"if_not_exists({r.path(self.path)}, {r.value({'L': []})})"
        new = self.value._render(r)
        first, second = (new, current) if self.prepend else (current, new)
        return f"list_append({first}, {second})"


# ---------------------------------------------------------------- conditions


class Condition:
    """A condition expression; combine with `&`, `|` and `~`."""

    __slots__ = ()

    # `bool` in the signatures: without adyn's mypy plugin a type checker sees a comparison
    # such as `Post.views > 3` as a bool (see adyn.paths); at run time only conditions combine.
    def __and__(self, other: Condition | bool) -> Condition:
        if not isinstance(other, Condition):
            return NotImplemented
        return And((*_flatten(self, And), *_flatten(other, And)))

    def __rand__(self, other: Condition | bool) -> Condition:
        return NotImplemented  # only reached when the left side is not a condition

    def __or__(self, other: Condition | bool) -> Condition:
        if not isinstance(other, Condition):
            return NotImplemented
        return Or((*_flatten(self, Or), *_flatten(other, Or)))

    def __ror__(self, other: Condition | bool) -> Condition:
        return NotImplemented  # only reached when the left side is not a condition

    def __invert__(self) -> Condition:
        return Not(self)

    def __bool__(self) -> bool:
        raise InvalidCondition(
            "a condition has no truth value: combine conditions with & | ~, not and/or/not"
        )

    def _render(self, r: Renderer) -> str:
        raise NotImplementedError

    def _paths(self) -> Iterator[Path]:
        raise NotImplementedError

    def render(self, r: Renderer) -> str:
        """The condition's expression text, its names and values collected into `r`."""
        return self._render(r)

    def paths(self) -> Iterator[Path]:
        """Every attribute path the condition reads."""
        return self._paths()

    def __repr__(self) -> str:
        r = Renderer()
        text = self._render(r)
        for ref, name in r.names.items():
            text = text.replace(ref, name)
        return f"<Condition {text}>"


def _flatten(c: Condition, kind: type[And] | type[Or]) -> tuple[Condition, ...]:
    return c.parts if isinstance(c, kind) else (c,)


class Compare(Condition):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Operand, right: Operand) -> None:
        self.op, self.left, self.right = op, left, right

    def _render(self, r: Renderer) -> str:
        return f"{self.left._render(r)} {self.op} {self.right._render(r)}"

    def _paths(self) -> Iterator[Path]:
        yield from self.left._paths()
        yield from self.right._paths()


class Between(Condition):
    __slots__ = ("high", "low", "subject")

    def __init__(self, subject: Operand, low: Operand, high: Operand) -> None:
        self.subject, self.low, self.high = subject, low, high

    def _render(self, r: Renderer) -> str:
        return f"{self.subject._render(r)} BETWEEN {self.low._render(r)} AND {self.high._render(r)}"

    def _paths(self) -> Iterator[Path]:
        yield from self.subject._paths()
        yield from self.low._paths()
        yield from self.high._paths()


class In(Condition):
    __slots__ = ("options", "subject")

    def __init__(self, subject: Path, options: list[Operand]) -> None:
        self.subject, self.options = subject, options

    def _render(self, r: Renderer) -> str:
        inner = ", ".join(o._render(r) for o in self.options)
        return f"{self.subject._render(r)} IN ({inner})"

    def _paths(self) -> Iterator[Path]:
        yield self.subject
        for o in self.options:
            yield from o._paths()


class Function(Condition):
    __slots__ = ("argument", "name", "subject")

    def __init__(self, name: str, subject: Path, argument: Operand | None = None) -> None:
        self.name, self.subject, self.argument = name, subject, argument

    def _render(self, r: Renderer) -> str:
        if self.argument is None:
            return f"{self.name}({self.subject._render(r)})"
        return f"{self.name}({self.subject._render(r)}, {self.argument._render(r)})"

    def _paths(self) -> Iterator[Path]:
        yield self.subject
        if self.argument is not None:
            yield from self.argument._paths()


class And(Condition):
    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Condition, ...]) -> None:
        self.parts = parts

    def _render(self, r: Renderer) -> str:
        return " AND ".join(f"({p._render(r)})" for p in self.parts)

    def _paths(self) -> Iterator[Path]:
        for p in self.parts:
            yield from p._paths()


class Or(Condition):
    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Condition, ...]) -> None:
        self.parts = parts

    def _render(self, r: Renderer) -> str:
        return " OR ".join(f"({p._render(r)})" for p in self.parts)

    def _paths(self) -> Iterator[Path]:
        for p in self.parts:
            yield from p._paths()


class Not(Condition):
    __slots__ = ("part",)

    def __init__(self, part: Condition) -> None:
        self.part = part

    def _render(self, r: Renderer) -> str:
        return f"NOT ({self.part._render(r)})"

    def _paths(self) -> Iterator[Path]:
        yield from self.part._paths()


def all_of(conditions: Iterable[Condition | None]) -> Condition | None:
    """AND together the conditions that are not None (None when there are none)."""
    present = [c for c in conditions if c is not None]
    if not present:
        return None
    result = present[0]
    for c in present[1:]:
        result = result & c
    return result


def render_condition(condition: Condition, r: Renderer) -> str:
    if not isinstance(condition, Condition):
        raise InvalidCondition(
            f"expected a condition such as Model.field == value, got {condition!r}"
        )
    return condition._render(r)


# ---------------------------------------------------------------- actions


class Action:
    """One clause of an update expression (SET, REMOVE, ADD or DELETE)."""

    __slots__ = ("kind", "path", "value")

    def __init__(self, kind: str, path: Path, value: Operand | None) -> None:
        self.kind, self.path, self.value = kind, path, value

    def __repr__(self) -> str:
        return f"<Action {self.kind} {self.path}>"


def render_actions(actions: Iterable[Action], r: Renderer) -> str:
    clauses: dict[str, list[str]] = {"SET": [], "REMOVE": [], "ADD": [], "DELETE": []}
    for a in actions:
        if not isinstance(a, Action):
            raise InvalidCondition(f"expected an update action such as Model.f.set(v), got {a!r}")
        target = r.path(a.path)
        if a.kind == "SET":
            assert a.value is not None
            clauses["SET"].append(f"{target} = {a.value._render(r)}")
        elif a.kind == "REMOVE":
            clauses["REMOVE"].append(target)
        else:
            assert a.value is not None
            clauses[a.kind].append(f"{target} {a.value._render(r)}")
    return " ".join(f"{kind} {', '.join(parts)}" for kind, parts in clauses.items() if parts)


def render_projection(paths: Iterable[Path], r: Renderer) -> str:
    return ", ".join(r.path(p) for p in paths)
