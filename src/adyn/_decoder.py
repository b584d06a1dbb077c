"""Generate a model's item decoder once: straight-line code with common scalars inlined.

Decoding a page of items is the hottest path of the library. A loop over fields that calls one
codec function per attribute spends most of its time on the calls; the generated function reads
each attribute once and converts the common scalar types inline. It is only the fast way: any
exception sends the item through the careful per-field loop, which handles the rare forms
(numbers like "1E+2" in an int field, NULL attributes) and names the field in its error.
"""

from __future__ import annotations

import binascii
import datetime as dt
import itertools
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from ._tracking import (
    ATOM,
    LAZY_FIELDS_SET,
    MAP_INLINE,
    MODEL_INLINE,
    SEQUENCE_INLINE,
    WIRE,
    Tracker,
    set_fields_set,
)
from .codecs import BOOL, BYTES, DATETIME, DECIMAL, FLOAT, INLINE_NAMES, INT, STR, UUID_, FieldCodec

PLAN_VERSION = 1  # the plan format of native_plan, which _cdecode.VERSION must match

try:  # the compiled twin of the generated decoder (optional: see _cdecode.c)
    from . import _cdecode
except ImportError:  # a build without a C compiler: the generated decoder alone
    _cdecode = None  # type: ignore[assignment]
if _cdecode is not None and getattr(_cdecode, "VERSION", None) != PLAN_VERSION:
    _cdecode = None  # type: ignore[assignment]  # a stale build (an old editable install)

# ADYN_PURE_PYTHON=1: decode with the generated Python functions even where _cdecode is built
NATIVE = _cdecode is not None and os.environ.get("ADYN_PURE_PYTHON", "") in ("", "0")

Wire = dict[str, Any]


def compile_values_decoder(
    fields: Sequence[tuple[str, str, FieldCodec]],
) -> Callable[[Wire], dict[str, Any]]:
    """`(field name, wire name, codec)` -> a function from a wire item to `{field: value}`."""
    namespace: dict[str, Any] = dict(INLINE_NAMES)
    lines = ["def values_of(item):", "    values = {}", "    get = item.get"]
    for i, (name, wire, codec) in enumerate(fields):
        if codec.inline is not None:
            expression = codec.inline.replace("@", "av")
        else:
            namespace[f"dec{i}"] = codec.decode
            expression = f"dec{i}(av)"
        # repr() of a str is a valid, inert literal: no name or wire text becomes code
        lines += [
            f"    av = get({wire!r})",
            "    if av is not None:",
            f"        values[{name!r}] = {expression}",
        ]
    lines.append("    return values")
    exec("\n".join(lines), namespace)
    function: Callable[[Wire], dict[str, Any]] = namespace["values_of"]
    return function


def _plain_model(codec: FieldCodec) -> bool:
    """Whether a codec is a nested model's whose objects `constructor` builds by hand (no
    `model_post_init`, no extra fields, no private attributes)."""
    if codec.fields is None or codec.custom is not None:
        return False
    model = codec.python_type
    return (
        model.__pydantic_post_init__ is None
        and model.model_config.get("extra") != "allow"
        and not model.__private_attributes__
    )


def _shared_keys(names: Sequence[str]) -> Any:
    """An object whose `__dict__` holds `names` (None values, in order) and whose copies share
    one table of keys, or None where such a copy is not smaller than a dict of its own. (The
    object is kept with its dict: it keeps its class alive, which would otherwise be garbage
    for the collector to find.)

    An instance's `__dict__` is such a dict in CPython (a split table): a copy holds only the
    values, and a copy with each value then set is smaller than a dict display and quicker to
    build (measured: 296 bytes against 464 for 20 fields, ~0.5 ms of a 1,000-item page with
    its deallocation). Copies are plain dicts like any other.
    """
    holder = type("Keys", (), {})()  # a class of its own: its instances share one key table
    for name in names:
        setattr(holder, name, None)
    prototype: dict[str, Any] = holder.__dict__
    if list(prototype) != list(names):
        return None
    if sys.getsizeof(prototype.copy()) >= sys.getsizeof(dict.fromkeys(names)):
        return None
    return holder


def _data_descriptor(cls: type[Any], attribute: str) -> Any:
    """The data descriptor `object.__setattr__` finds first for `attribute` in `cls`'s MRO, or
    None (then it sets the attribute by name)."""
    found = next((k.__dict__[attribute] for k in cls.__mro__ if attribute in k.__dict__), None)
    return found if found is not None and hasattr(type(found), "__set__") else None


class _Source:
    """The text of a generated whole-item decoder, built up field by field."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = dict(INLINE_NAMES)
        self.namespace.update(
            fromisoformat=dt.datetime.fromisoformat, UTC=dt.UTC, set_attr=object.__setattr__
        )
        self.lines: list[str] = []
        self.names = itertools.count()

    def name(self, value: Any, prefix: str) -> str:
        key = f"{prefix}{next(self.names)}"
        self.namespace[key] = value
        return key

    def setter(self, cls: type[Any]) -> Callable[[str, str, str], str]:
        """`(attribute, object, value)` -> a statement doing `object.__setattr__` on `cls`'s
        objects: a call of the data descriptor that call finds first in the MRO, directly
        (which skips the lookup by name)."""

        def statement(attribute: str, target: str, value: str) -> str:
            found = _data_descriptor(cls, attribute)
            if found is None:
                return f"set_attr({target}, {attribute!r}, {value})"
            return f"{self.name(found.__set__, 'put')}({target}, {value})"

        return statement

    def fields_set(
        self, cls: type[Any], target: str, names: frozenset[str], read: str | None = None
    ) -> str:
        """A statement giving `target` (a `cls` object) its fields set: every field, as the
        shared frozenset itself where Model's property makes the set on first use; or, when
        the local `read` is not None, that set."""
        shared = self.name(names, "names")
        if getattr(cls, "__pydantic_fields_set__", None) is LAZY_FIELDS_SET:
            value = shared if read is None else f"{shared} if {read} is None else {read}"
            return f"{self.name(set_fields_set, 'put')}({target}, {value})"
        value = f"set({shared})" if read is None else f"set({shared}) if {read} is None else {read}"
        return self.setter(cls)("__pydantic_fields_set__", target, value)

    def dict_of(self, target: str, members: Sequence[tuple[str, str]]) -> str:
        """An expression for the dict `{name: local}` of `members`, in order; lines before it
        may set the local `target`."""
        holder = _shared_keys([name for name, _ in members])
        if holder is None:
            return "{" + ", ".join(f"{name!r}: {local}" for name, local in members) + "}"
        self.name(holder, "holder")
        self.lines.append(f"    {target} = {self.name(holder.__dict__, 'keys')}.copy()")
        self.lines += [f"    {target}[{name!r}] = {local}" for name, local in members]
        return target

    def value(self, codec: FieldCodec, av: str, target: str, seen: frozenset[int]) -> list[str]:
        """Lines setting local `target` to what `codec` decodes from the expression `av`; for a
        nested model built inline, the locals of its values (in field order)."""
        emit = self.lines.append
        if codec is DATETIME:  # `_dec_datetime` without its call
            emit(f"    {target} = fromisoformat({av}['S'])")
            emit(f"    if {target}.tzinfo is None:")
            emit(f"        {target} = {target}.replace(tzinfo=UTC)")
            return []
        if _plain_model(codec) and id(codec) not in seen and codec.fields is not None:
            # what the model codec's `decode` gives an item holding every field: values_of
            # reads each attribute, `constructor` builds the object (no defaults to add)
            seen = seen | {id(codec)}
            m = f"{target}m"
            emit(f"    {m} = {av}['M']")
            members = []
            for j, (name, (wire, member)) in enumerate(codec.fields.items()):
                local = f"{target}_{j}"
                self.value(member, f"{m}[{wire!r}]", local, seen)
                members.append((name, local))
            model = self.name(codec.python_type, "model")
            new = self.name(codec.python_type.__new__, "new")
            values = self.dict_of(f"{target}d", members)
            emit(f"    {target} = {new}({model})")
            setter = self.setter(codec.python_type)
            emit(f"    {setter('__dict__', target, values)}")
            emit(f"    {self.fields_set(codec.python_type, target, frozenset(codec.fields))}")
            emit(f"    {setter('__pydantic_extra__', target, 'None')}")
            emit(f"    {setter('__pydantic_private__', target, 'None')}")
            return [local for _, local in members]
        element = codec.element
        if codec.container is not None and element is not None and element.inline is not None:
            # the comprehension's loop written out: no function call and frame for it (~60-75
            # ns an item, measured on 3.11, where a comprehension is a function of its own)
            each = element.inline.replace("@", f"{target}x")
            if codec.container == "dict":
                emit(f"    {target} = {{}}")
                emit(f"    for {target}k, {target}x in {av}['M'].items():")
                emit(f"        {target}[{target}k] = {each}")
            else:
                emit(f"    {target} = []")
                emit(f"    for {target}x in {av}['L']:")
                emit(f"        {target}.append({each})")
        elif codec.inline is not None:
            emit(f"    {target} = {codec.inline.replace('@', av)}")
        else:
            emit(f"    {target} = {self.name(codec.decode, 'dec')}({av})")
        return []


def compile_object_decoder(
    model: type[Any],
    fields: Sequence[tuple[str, str, FieldCodec, Tracker]],
    discriminator: tuple[str, Wire] | None,
    private: dict[str, Any],
    private_factory: Callable[[], dict[str, Any]] | None,
    careful: Callable[[Wire], Any],
    defaults: dict[str, Callable[[], Any]] | None = None,
    native: bool = NATIVE,
) -> Callable[[Wire], Any]:
    """`(field name, wire name, codec, tracker)` -> a function from a stored item to the loaded
    object, its state (see _tracking.py) set.

    The fast way for an item that holds every field: one function reads each attribute once,
    builds the object's `__dict__` (a copy of a prototype, see `_shared_keys`) and its state as
    one tuple display from the same locals. It gives what `careful(item)`
    (`ModelSchema.decode_item`: the values decoder, the snapshot, the object) gives such an
    item; any exception (an absent attribute, a NULL, another type, a rare number form) sends
    the item to `careful`, which handles it or names the field in its error.

    A field with a default (`defaults`: field name -> what makes it) may be absent: its slot is
    None, it is left out of the fields set and its default goes at the end of `__dict__`, after
    the fields read, in field order, as `careful` puts it.

    With `native` (the default where adyn._cdecode is built), the decoder is the compiled
    `_cdecode.Decoder` of the same plan: it gives what the generated function gives, and has a
    `page(items)` method besides.
    """
    defaults = defaults or {}
    if native:
        plan = native_plan(
            model, fields, discriminator, private, private_factory, careful, defaults
        )
        decoder: Callable[[Wire], Any] = _cdecode.Decoder(plan)
        return decoder
    source = _Source()
    namespace, emit = source.namespace, source.lines.append
    emit("def decode(item):")
    emit("  try:")
    parts = ["None", "False"]
    optional: list[tuple[int, str]] = []  # (index, field name) of the fields that may be absent
    for i, (name, wire, codec, tracker) in enumerate(fields):
        target = f"v{i}"
        av = f"item[{wire!r}]"  # repr() of a str is an inert literal: no name becomes code
        may_lack = name in defaults
        if tracker.kind == WIRE or may_lack:
            emit(f"    a{i} = {av}" if not may_lack else f"    a{i} = item.get({wire!r})")
            av = f"a{i}"
        if may_lack:
            optional.append((i, name))
            emit(f"    if a{i} is None:")
            emit(f"        {target} = None")
            emit("    else:")
            start = len(source.lines)
        members = source.value(codec, av, target, frozenset())
        if may_lack:
            source.lines[start:] = ["    " + line for line in source.lines[start:]]
        if tracker.kind == WIRE:
            part = f"a{i}"
        elif tracker.kind == ATOM:
            part = target
        elif members and codec.fields is not None and tracker.inline == MODEL_INLINE:
            # a nested model of immutable values, built here: its names, then its values
            names = ", ".join(repr(name) for name in codec.fields)
            part = f"({names}, {', '.join(members)})"
        elif tracker.inline:  # frozen as `compile_snapshot` freezes it
            part = tracker.inline.replace("@", target)
        else:
            part = f"{source.name(tracker.freeze, 'freeze')}({target})"
        if may_lack and tracker.kind != ATOM and tracker.kind != WIRE:
            part = f"(None if a{i} is None else {part})"
        parts.append(part)
    if discriminator is not None:
        namespace["attribute"], namespace["entity_wire"] = discriminator
        parts[1] = "item.get(attribute) == entity_wire"
    namespace["model"], namespace["new"], namespace["careful"] = model, model.__new__, careful
    namespace["private"] = private
    namespace["fresh_private"] = private_factory
    values = source.dict_of("values", [(name, f"v{i}") for i, (name, *_) in enumerate(fields)])
    if values != "values":
        emit(f"    values = {values}")
    all_names = frozenset(name for name, *_ in fields)
    setter = source.setter(model)
    if optional:  # what `careful` does for the absent ones, in field order
        emit("    if " + " or ".join(f"a{i} is None" for i, _ in optional) + ":")
        emit(f"        read = set({source.name(all_names, 'names')})")
        for i, name in optional:
            make = source.name(defaults[name], "default")
            emit(f"        if a{i} is None:")
            emit(f"            del values[{name!r}]")
            emit(f"            values[{name!r}] = {make}()")
            emit(f"            read.discard({name!r})")
        emit("    else:")
        emit("        read = None")
    source.lines += [
        "    obj = new(model)",
        "    " + setter("__dict__", "obj", "values"),
        "    " + source.fields_set(model, "obj", all_names, "read" if optional else None),
        "    " + setter("__pydantic_extra__", "obj", "None"),
        "    "
        + setter(
            "__pydantic_private__",
            "obj",
            "fresh_private()" if private_factory else "dict(private)" if private else "None",
        ),
        "    " + setter("__adyn_state__", "obj", "(" + ", ".join(parts) + ",)"),
        "    return obj",
        "  except Exception:",
        "    pass",
        "  return careful(item)",
    ]
    exec("\n".join(source.lines), namespace)
    function: Callable[[Wire], Any] = namespace["decode"]
    return function


# ---------------------------------------------------------------- the compiled decoder's plan

# How _cdecode makes a value from its attribute `av` (keep in step with _cdecode.c)
K_TAKE, K_INT, K_FLOAT, K_CALL_TAG, K_DATETIME, K_SET, K_FROZENSET = range(7)
K_LIST, K_DICT, K_MODEL, K_DECODE = range(7, 11)
# ... and a field's part of the state
P_ATOM, P_WIRE, P_SEQ, P_MAP, P_MODEL, P_FREEZE = range(6)

# The codecs whose inline expression _cdecode does itself, as value specs
_SCALAR_SPECS: dict[int, tuple[Any, ...]] = {
    id(STR): (K_TAKE, "S"),
    id(BOOL): (K_TAKE, "BOOL"),
    id(INT): (K_INT, "N"),
    id(FLOAT): (K_FLOAT, "N"),
    id(DECIMAL): (K_CALL_TAG, "N", Decimal),
    id(BYTES): (K_CALL_TAG, "B", binascii.a2b_base64),
    id(UUID_): (K_CALL_TAG, "S", uuid.UUID),
    id(DATETIME): (K_DATETIME, "S", dt.datetime.fromisoformat, dt.UTC),
}
_SET_SPECS = {"set(@['SS'])": (K_SET, "SS"), "frozenset(@['SS'])": (K_FROZENSET, "SS")}


def _setter_spec(cls: type[Any], attribute: str) -> tuple[Any, str]:
    """(the data descriptor or None, the attribute's name): what `_Source.setter` calls, for
    _cdecode."""
    return _data_descriptor(cls, attribute), attribute


def _model_spec(cls: type[Any], members: tuple[Any, ...], names: frozenset[str]) -> Any:
    lazy = getattr(cls, "__pydantic_fields_set__", None) is LAZY_FIELDS_SET
    fields_setter = (set_fields_set.__self__, "__pydantic_fields_set__")
    setters = (
        _setter_spec(cls, "__dict__"),
        fields_setter if lazy else _setter_spec(cls, "__pydantic_fields_set__"),
        _setter_spec(cls, "__pydantic_extra__"),
        _setter_spec(cls, "__pydantic_private__"),
    )
    holder = _shared_keys([member[0] for member in members])
    keys = None if holder is None else holder.__dict__
    return (cls, cls.__new__, keys, members, names, lazy, setters), holder


def _value_spec(codec: FieldCodec, seen: frozenset[int], keep: list[Any]) -> tuple[Any, ...]:
    """What `_Source.value` writes for `codec`, as a value spec for _cdecode."""
    scalar = _SCALAR_SPECS.get(id(codec))
    if scalar is not None:
        return scalar
    if _plain_model(codec) and id(codec) not in seen and codec.fields is not None:
        seen = seen | {id(codec)}
        members = tuple(
            (name, wire, _value_spec(member, seen, keep), P_ATOM, None, None)
            for name, (wire, member) in codec.fields.items()
        )
        spec, holder = _model_spec(codec.python_type, members, frozenset(codec.fields))
        keep.append(holder)
        return (K_MODEL, "M", spec)
    element = codec.element
    if codec.container is not None and element is not None and element.inline is not None:
        each = _value_spec(element, seen, keep)
        if each[0] != K_DECODE:  # (a codec's decode may take a NULL member its inline refuses)
            return (K_LIST, "L", each) if codec.container == "list" else (K_DICT, "M", each)
    if codec.inline is not None and codec.inline in _SET_SPECS:
        return _SET_SPECS[codec.inline]
    return (K_DECODE, codec.decode)


def _part_spec(tracker: Tracker) -> tuple[int, Any]:
    """How `compile_object_decoder` makes a field's part of the state, for _cdecode."""
    if tracker.kind == WIRE:
        return P_WIRE, None
    if tracker.kind == ATOM:
        return P_ATOM, None
    inline = {SEQUENCE_INLINE: P_SEQ, MAP_INLINE: P_MAP, MODEL_INLINE: P_MODEL}.get(tracker.inline)
    return (P_FREEZE, tracker.freeze) if inline is None else (inline, None)


def native_plan(
    model: type[Any],
    fields: Sequence[tuple[str, str, FieldCodec, Tracker]],
    discriminator: tuple[str, Wire] | None,
    private: dict[str, Any],
    private_factory: Callable[[], dict[str, Any]] | None,
    careful: Callable[[Wire], Any],
    defaults: dict[str, Callable[[], Any]],
) -> tuple[Any, ...]:
    """`compile_object_decoder`'s decoder as the plan `_cdecode.Decoder` runs."""
    keep: list[Any] = []
    members = []
    for name, wire, codec, tracker in fields:
        part, freeze = _part_spec(tracker)
        value = _value_spec(codec, frozenset(), keep)
        members.append((name, wire, value, part, freeze, defaults.get(name)))
    spec, holder = _model_spec(model, tuple(members), frozenset(name for name, *_ in fields))
    keep.append(holder)
    private_value: Any = None  # private_kind 0: None; 1: a copy of private; 2: a factory's
    private_kind = 0
    if private_factory is not None:
        private_kind, private_value = 2, private_factory
    elif private:
        private_kind, private_value = 1, private
    attribute, entity_wire = discriminator if discriminator is not None else (None, None)
    state_setter = _setter_spec(model, "__adyn_state__")
    return (spec, state_setter, private_kind, private_value, attribute, entity_wire, careful, keep)
