"""Generate a model's item encoder once: straight-line code that also counts the item's size.

The mirror of `_decoder.py`. Writing a batch of items spent most of its time calling one codec
function per attribute and then walking every attribute again to count DynamoDB's item size.
The generated function reads each field once, encodes the common types inline (the exact wire
form the codecs give) and adds each attribute's size as it goes, DynamoDB's way (name length plus
value size, see `_writes.item_size`).

It is only the fast way: on anything unusual (a subclass, a value out of range, a missing or empty
key, a lone surrogate, an unset required field) it raises, and the caller takes the careful path
(`ModelSchema.encode_item`, `item_size`), which names model, field and rule in its error. So the
generated code may be stricter than the codecs, never more lenient. Names embedded in the code are
`repr()` literals: no user text becomes code.
"""

# pyright: reportPrivateUsage=false
# (the companion of _writes, schema and codecs: it uses their private helpers by design)

from __future__ import annotations

import binascii
import datetime as dt
import enum
import itertools
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from . import codecs as c
from ._templates import _overlaps
from .errors import InvalidItem

if TYPE_CHECKING:
    from ._templates import KeyTemplate
    from .schema import FieldSpec, ModelSchema

__all__ = [
    "MAX_ITEM_BYTES",
    "Encoder",
    "SaveEncoder",
    "encode_checked",
    "encoder_of",
    "key_limit",
    "too_large",
]

Wire = dict[str, Any]
Encoder = Callable[[dict[str, Any]], tuple[Wire, int]]
# (item without the version attribute, its size, mask of fields set, mask of fields removed)
SaveEncoder = Callable[[dict[str, Any]], tuple[Wire, int, int, int]]

MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit
_LIMIT = 10**38  # numbers below this magnitude need no range check (as codecs._INT_FAST)


class Slow(Exception):
    """The generated code cannot decide: the careful path must."""


def _decimal_text(value: Decimal) -> str:
    """`number_text` of an exact Decimal, skipping `normalize` when the digits are few."""
    if value.is_finite():
        if not value:
            return "0"
        if len(value.as_tuple()[1]) <= 38 and -130 <= value.adjusted() <= 125:
            return str(value)
    return c.number_text(value)


class _Gen:
    """Writes the code of one model's encoder; `emit` inlines one codec."""

    def __init__(self) -> None:
        from ._writes import _value_size  # _writes builds on this module: import when used

        self.ns: dict[str, Any] = {
            "Slow": Slow,
            "UTC": dt.UTC,
            "datetime": dt.datetime,
            "date": dt.date,
            "UUID": uuid.UUID,
            "b2a": binascii.b2a_base64,
            "utc_text": c._utc_text,
            "number_text": c.number_text,
            "dec_text": _decimal_text,
            "Decimal": Decimal,
            "value_size": _value_size,
            "L": _LIMIT,
            "overlaps": _overlaps,
        }
        self.counter = itertools.count()

    def const(self, value: Any, prefix: str = "k") -> str:
        name = f"{prefix}{next(self.counter)}"
        self.ns[name] = value
        return name

    def var(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def emit(
        self, codec: c.FieldCodec, v: str, w: str, z: str, ind: str, stack: tuple[Any, ...]
    ) -> tuple[list[str], bool]:
        """Lines that set `w` to the wire value of `v` (not None) and `z` to its size; the flag
        says whether `w` may be None (an empty set: no attribute)."""
        text = f"{ind}{z} = len({v}) if {v}.isascii() else len({v}.encode())"
        if codec is c.STR:
            return [
                f"{ind}if type({v}) is not str: raise Slow",
                f"{ind}{w} = {{'S': {v}}}",
                text,
            ], False
        if codec is c.INT:
            t = self.var("t")
            return [
                f"{ind}if type({v}) is not int or not -L < {v} < L: raise Slow",
                f"{ind}{t} = str({v})",
                f"{ind}{w} = {{'N': {t}}}",
                f"{ind}{z} = len({t}) // 2 + 2",
            ], False
        if codec is c.DECIMAL or codec is c.FLOAT:
            t = self.var("t")
            return [
                f"{ind}{t} = dec_text({v}) if type({v}) is Decimal else number_text({v})",
                f"{ind}{w} = {{'N': {t}}}",
                f"{ind}{z} = len({t}) // 2 + 2",
            ], False
        if codec is c.BOOL:
            return [
                f"{ind}if {v} is not True and {v} is not False: raise Slow",
                f"{ind}{w} = {{'BOOL': {v}}}",
                f"{ind}{z} = 1",
            ], False
        if codec is c.BYTES:
            return [
                f"{ind}if type({v}) is not bytes: raise Slow",
                f"{ind}{w} = {{'B': b2a({v}, newline=False).decode('ascii')}}",
                f"{ind}{z} = len({v})",  # what the base64 text holds: _b64_size
            ], False
        if codec is c.UUID_:
            return [
                f"{ind}if type({v}) is not UUID: raise Slow",
                f"{ind}{w} = {{'S': str({v})}}",
                f"{ind}{z} = 36",
            ], False
        if codec is c.DATETIME:
            t = self.var("t")
            return [
                f"{ind}if type({v}) is datetime and {v}.tzinfo is UTC:",
                f"{ind}    {t} = {v}.isoformat(timespec='microseconds')",
                f"{ind}else:",
                f"{ind}    {t} = utc_text({v})",
                f"{ind}{w} = {{'S': {t}}}",
                f"{ind}{z} = len({t})",
            ], False
        if codec is c.DATE:
            t = self.var("t")
            return [
                f"{ind}if type({v}) is not date: raise Slow",
                f"{ind}{t} = {v}.isoformat()",
                f"{ind}{w} = {{'S': {t}}}",
                f"{ind}{z} = len({t})",
            ], False
        python_type = codec.python_type
        if codec.custom is None and isinstance(python_type, type):
            if issubclass(python_type, enum.Enum) and codec.wire_type in ("S", "N"):
                e, t = self.const(python_type, "enum"), self.var("t")
                lines = [f"{ind}if type({v}) is not {e}: raise Slow"]
                if codec.wire_type == "S":
                    return [
                        *lines,
                        f"{ind}{t} = {v}._value_",
                        f"{ind}{w} = {{'S': {t}}}",
                        f"{ind}{z} = len({t}) if {t}.isascii() else len({t}.encode())",
                    ], False
                return [
                    *lines,
                    f"{ind}{t} = str({v}._value_)",
                    f"{ind}{w} = {{'N': {t}}}",
                    f"{ind}{z} = len({t}) // 2 + 2",
                ], False
            if (
                issubclass(python_type, BaseModel)
                and codec.fields is not None
                and python_type not in stack
            ):
                return self._model(codec, python_type, v, w, z, ind, stack)
        if codec.custom is None and get_origin(python_type) is Literal:
            options = get_args(python_type)
            allowed = self.const(frozenset(options), "lit")
            if codec.wire_type == "S" and all(type(o) is str for o in options):
                return [
                    f"{ind}if type({v}) is not str or {v} not in {allowed}: raise Slow",
                    f"{ind}{w} = {{'S': {v}}}",
                    text,
                ], False
            if codec.wire_type == "N" and all(type(o) is int for o in options):
                t = self.var("t")
                return [
                    f"{ind}if type({v}) is not int or {v} not in {allowed}: raise Slow",
                    f"{ind}{t} = str({v})",
                    f"{ind}{w} = {{'N': {t}}}",
                    f"{ind}{z} = len({t}) // 2 + 2",
                ], False
        if codec.custom is None and codec.wire_type in ("SS", "NS") and codec.element is not None:
            found = self._set(codec, v, w, z, ind)
            if found is not None:
                return found, True
        if codec.custom is None and codec.wire_type == "L" and codec.element is not None:
            found = self._members(codec.element, v, w, z, ind, stack, "L")
            if found is not None:
                return found, False
        if (
            codec.custom is None
            and codec.wire_type == "M"
            and codec.fields is None
            and codec.element is not None
        ):
            found = self._members(codec.element, v, w, z, ind, stack, "M")
            if found is not None:
                return found, False
        # the rest: the codec's own function, then the size walk of what it gave
        enc = self.const(codec.encode, "enc")
        return [
            f"{ind}{w} = {enc}({v})",
            f"{ind}if {w} is not None: {z} = value_size({w})",
        ], True

    def _set(self, codec: c.FieldCodec, v: str, w: str, z: str, ind: str) -> list[str] | None:
        element = codec.element
        x, t = self.var("x"), self.var("t")
        head = [
            f"{ind}if type({v}) is not set and type({v}) is not frozenset: raise Slow",
            f"{ind}if not {v}:",
            f"{ind}    {w} = None",
            f"{ind}else:",
            f"{ind}    {z} = 0",
        ]
        if element is c.STR:
            return [
                *head,
                f"{ind}    {t} = list({v})",
                f"{ind}    for {x} in {t}:",
                f"{ind}        if type({x}) is not str: raise Slow",
                f"{ind}        {z} += len({x}) if {x}.isascii() else len({x}.encode())",
                f"{ind}    {w} = {{'SS': {t}}}",
            ]
        if element is c.INT:
            s = self.var("s")
            return [
                *head,
                f"{ind}    {t} = []",
                f"{ind}    for {x} in {v}:",
                f"{ind}        if type({x}) is not int or not -L < {x} < L: raise Slow",
                f"{ind}        {s} = str({x})",
                f"{ind}        {t}.append({s})",
                f"{ind}        {z} += len({s}) // 2 + 2",
                f"{ind}    {w} = {{'NS': {t}}}",
            ]
        return None

    def _members(
        self,
        element: c.FieldCodec,
        v: str,
        w: str,
        z: str,
        ind: str,
        stack: tuple[Any, ...],
        tag: str,
    ) -> list[str] | None:
        """A list or a map whose members the generated code can encode itself."""
        x, a, za, t = self.var("x"), self.var("a"), self.var("za"), self.var("t")
        inner = ind + "        "
        lines, may_be_none = self.emit(element, x, a, za, inner, stack)
        if any("value_size(" in line for line in lines):
            return None  # members through their codec: the codec's own loop is as fast
        body = [
            f"{ind}    if {x} is None:",
            f"{ind}        {a} = {{'NULL': True}}",
            f"{ind}        {za} = 1",
            f"{ind}    else:",
            *lines,
        ]
        if may_be_none:  # an empty set inside a list or a map is stored as NULL
            body += [
                f"{inner}if {a} is None:",
                f"{inner}    {a} = {{'NULL': True}}",
                f"{inner}    {za} = 1",
            ]
        if tag == "L":
            return [
                f"{ind}if type({v}) is not list and type({v}) is not tuple: raise Slow",
                f"{ind}{t} = []",
                f"{ind}{z} = 3",
                f"{ind}for {x} in {v}:",
                *body,
                f"{ind}    {t}.append({a})",
                f"{ind}    {z} += 1 + {za}",
                f"{ind}{w} = {{'L': {t}}}",
            ]
        k = self.var("key")
        return [
            f"{ind}if type({v}) is not dict: raise Slow",
            f"{ind}{t} = {{}}",
            f"{ind}{z} = 3",
            f"{ind}for {k}, {x} in {v}.items():",
            f"{ind}    if type({k}) is not str or not {k}: raise Slow",
            *body,
            f"{ind}    {t}[{k}] = {a}",
            f"{ind}    {z} += 1 + (len({k}) if {k}.isascii() else len({k}.encode())) + {za}",
            f"{ind}{w} = {{'M': {t}}}",
        ]

    def _model(
        self,
        codec: c.FieldCodec,
        model: type[BaseModel],
        v: str,
        w: str,
        z: str,
        ind: str,
        stack: tuple[Any, ...],
    ) -> tuple[list[str], bool]:
        assert codec.fields is not None
        m, d, t = self.const(model, "model"), self.var("d"), self.var("t")
        lines = [
            f"{ind}if type({v}) is not {m}: raise Slow",
            f"{ind}{d} = {v}.__dict__",
            f"{ind}{t} = {{}}",
            f"{ind}{z} = 3",
        ]
        for name, (wire, member) in codec.fields.items():
            x, a, za = self.var("x"), self.var("a"), self.var("za")
            body, may_be_none = self.emit(member, x, a, za, ind + "    ", (*stack, model))
            store = [f"{t}[{wire!r}] = {a}", f"{z} += {1 + len(wire.encode())} + {za}"]
            lines += [f"{ind}{x} = {d}.get({name!r})", f"{ind}if {x} is not None:", *body]
            if may_be_none:
                lines.append(f"{ind}    if {a} is not None:")
                lines += [f"{ind}        {s}" for s in store]
            else:
                lines += [f"{ind}    {s}" for s in store]
        lines.append(f"{ind}{w} = {{'M': {t}}}")
        return lines, False


def key_limit(spec: FieldSpec) -> int:
    """The longest S or B value DynamoDB takes for a table key (the hash key, the range key)."""
    return 2048 if spec.key == "hash" else 1024


def _key_check(w: str, limit: int, ind: str) -> list[str]:
    """What `_check_key` refuses: no value, an empty value, a value too long."""
    return [
        f"{ind}if {w} is None: raise Slow",
        f"{ind}(tg, r), = {w}.items()",
        f"{ind}if tg in ('S', 'B') and (not r or len(r) > {limit}): raise Slow",
    ]


def _index_check(w: str, ind: str) -> list[str]:
    """What `check_index_value` refuses: an empty S or B value."""
    return [f"{ind}(tg, r), = {w}.items()", f"{ind}if tg in ('S', 'B') and not r: raise Slow"]


def compile_encoder(schema: ModelSchema, save: bool) -> Callable[..., Any]:
    """The generated function of a model: `encode_item` and `item_size` at once.

    `save`: the form `plan_save` wants for a new object: the version field left out (the save
    sets it itself), and masks of the fields it sets and removes (see `field_bits`).
    A templated model's key attributes are rendered from the text its components encode to,
    after the fields (the order `encode_fields` fills an item in), and stored in the object.
    """
    gen = _Gen()
    lines = ["def encode(data):", "    get = data.get", "    item = {}", "    size = 0"]
    if save:
        lines.append("    sm = rm = 0")
    # each template component's text, in a local of its own (None: the component is None)
    raws = {c.name: gen.var("c") for t in schema.templates.values() for c in t.components}
    if schema.templates:
        order = list(schema._untemplated)
    else:
        order = [*schema.key_fields, *(s for s in schema.fields.values() if s.key is None)]
    bits = field_bits(schema)
    for spec in order:
        raw = raws.get(spec.name)
        capture = [] if raw is None else [f"{raw} = w[{spec.codec.wire_type!r}]"]
        if spec.key is not None:
            body, _ = gen.emit(spec.codec, "v", "w", "z", "    ", ())
            limit = key_limit(spec)
            lines += [
                f"    v = get({spec.name!r})",
                "    if v is None: raise Slow",
                *body,
                *_key_check("w", limit, "    "),
                f"    item[{spec.wire!r}] = w",
                f"    size += {len(spec.wire.encode())} + z",
                *(f"    {s}" for s in capture),
            ]
            continue
        if save and spec.version:  # the save writes it; the careful path names a bad one
            lines += [
                f"    v = get({spec.name!r})",
                "    if v is not None and (type(v) is not int or not -L < v < L): raise Slow",
            ]
            continue
        body, may_be_none = gen.emit(spec.codec, "v", "w", "z", "        ", ())
        store = [f"item[{spec.wire!r}] = w", f"size += {len(spec.wire.encode())} + z"]
        if spec.index_key:
            store = [*(s.strip() for s in _index_check("w", "")), *store]
        if save:
            store.append(f"sm |= {bits[spec.name]}")
        lines += [f"    v = get({spec.name!r})", "    if v is not None:", *body]
        if may_be_none:
            lines.append("        if w is not None:")
            lines += [f"            {s}" for s in store]
            if save:
                lines += ["        else:", f"            rm |= {bits[spec.name]}"]
        else:
            lines += [f"        {s}" for s in store]
        lines += [f"        {s}" for s in capture]
        if spec.name in schema.required:
            lines += ["    else:", "        raise Slow"]
        elif save or raw is not None:
            lines.append(f"    elif {spec.name!r} in data:")
            if save:
                lines.append(f"        rm |= {bits[spec.name]}")
            if raw is not None:
                # unset (deleted, or not loaded): only the careful path knows what to keep
                lines += [f"        {raw} = None", "    else:", "        raise Slow"]
    for template in schema.templates.values():
        lines += _template_lines(gen, template, raws, bits, save)
    if schema.entity_wire is not None:
        assert schema.family is not None and schema.family.attribute is not None
        attribute = schema.family.attribute
        ew = gen.const(schema.entity_wire, "entity")
        size = len(attribute.encode()) + gen.ns["value_size"](schema.entity_wire)
        lines += [f"    item[{attribute!r}] = {ew}", f"    size += {size}"]
    lines.append("    return item, size, sm, rm" if save else "    return item, size")
    exec("\n".join(lines), gen.ns)
    function: Callable[..., Any] = gen.ns["encode"]
    return function


def _template_lines(
    gen: _Gen, template: KeyTemplate, raws: dict[str, str], bits: dict[str, int], save: bool
) -> list[str]:
    """Render one key template from its components' texts, as `encode_fields` does: None at
    the first component that is None; a component holding the text after it, a format spec
    that does not read back, a value set by hand: the careful path decides (and names it)."""
    lines: list[str] = []
    ind = "    "
    pieces = [repr(template.head)] if template.head else []
    final = len(template.slots) - 1
    for i, slot in enumerate(template.slots):
        c = raws[slot.field.name]
        lines += [f"{ind}if {c} is None:", f"{ind}    t = None", f"{ind}else:"]
        ind += "    "
        if slot.spec:  # formats and checks the separator, or raises
            fmt, sl, p = gen.const(template._text, "fmt"), gen.const(slot, "slot"), gen.var("p")
            tag = slot.field.codec.wire_type
            lines.append(f"{ind}{p} = {fmt}({sl}, {tag!r}, {c}, None, {i == final})")
            pieces.append(p)
        else:
            after = slot.after
            if after and i != final:
                test = f"{after!r} in {c}" if len(after) == 1 else f"overlaps({c}, {after!r})"
                lines.append(f"{ind}if {test}: raise Slow")
            pieces.append(c)
        if slot.after:
            pieces.append(repr(slot.after))
    lines.append(f"{ind}t = {' + '.join(pieces) or repr('')}")
    attr = template.attr
    name = attr.name
    default = gen.const(template.default, "default")
    lines += [
        f"    cur = get({name!r})",
        f"    if cur is not None and cur != t and cur != {default}: raise Slow",
        "    if t is None:",
    ]
    if attr.key is not None:
        lines.append("        raise Slow")  # a missing key value
    else:
        lines.append(f"        data[{name!r}] = None")  # leaves the sparse index
        if save:
            lines.append(f"        rm |= {bits[name]}")
    lines.append("    else:")
    if attr.key is not None:
        lines.append(f"        if not t or len(t) > {key_limit(attr)}: raise Slow")
    elif attr.index_key:
        lines.append("        if not t: raise Slow")
    lines += [
        f"        data[{name!r}] = t",
        f"        item[{attr.wire!r}] = {{'S': t}}",
        f"        size += {len(attr.wire.encode())} + (len(t) if t.isascii() else len(t.encode()))",
    ]
    if save and attr.key is None:
        lines.append(f"        sm |= {bits[name]}")
    return lines


def field_bits(schema: ModelSchema) -> dict[str, int]:
    """The bit of each field a save may set or remove (not keys, not the version)."""
    names = [s.name for s in schema.fields.values() if s.key is None and not s.version]
    return {name: 1 << i for i, name in enumerate(names)}


def fast_encoder(schema: ModelSchema) -> Encoder | None:
    """The generated encoder of a model (built once, kept on the schema); None for a shared
    table's table model (its objects cannot be written)."""
    found = schema._encoders
    if found is None:
        found = schema._encoders = _build(schema)
    return found[0]  # type: ignore[no-any-return]


def save_encoder(schema: ModelSchema) -> SaveEncoder | None:
    """The generated encoder a new object's save uses (see `compile_encoder`), or None."""
    found = schema._encoders
    if found is None:
        found = schema._encoders = _build(schema)
    return found[1]  # type: ignore[no-any-return]


def _build(schema: ModelSchema) -> tuple[Encoder | None, SaveEncoder | None]:
    if schema.family is not None and schema.entity is None:
        return None, None
    return compile_encoder(schema, False), compile_encoder(schema, True)


def encoder_of(schema: ModelSchema) -> Callable[[Any], tuple[Wire, int]]:
    """obj -> (its wire item, the item's DynamoDB size): fast, or careful on any doubt."""
    fast = fast_encoder(schema)

    def encode(obj: Any) -> tuple[Wire, int]:
        if fast is not None:
            try:
                return fast(obj.__dict__)
            except Exception:
                pass
        from ._writes import item_size

        item = schema.encode_item(obj)  # raises what it always raised
        return item, item_size(item)

    return encode


def encode_checked(schema: ModelSchema, obj: Any) -> tuple[Wire, int]:
    """An object's wire item and size, InvalidItem (as `check_size`) when it is too large."""
    encode = schema._encode
    if encode is None:
        encode = schema._encode = encoder_of(schema)
    item, size = encode(obj)
    if size > MAX_ITEM_BYTES:
        raise too_large(schema, size, obj)
    return item, size


def too_large(schema: ModelSchema, size: int, obj: Any) -> InvalidItem:
    """The error for an item over DynamoDB's 400 KB limit."""
    return InvalidItem(
        schema.name,
        None,
        f"item is {size} bytes; DynamoDB's limit is 400 KB ({MAX_ITEM_BYTES})",
        obj,
    )
