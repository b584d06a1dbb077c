"""Change tracking: what a loaded object remembers of its stored item, compactly.

`save` sends only what changed since an object was read, `atomic=True` conditions a write on
the item being unchanged, and `Unique()` guards move when a value changes: all three need the
values the stored item held. Keeping the wire item itself for that made a loaded object cost
four times its own size (measured), so an object keeps a *snapshot* instead: one plain tuple

    (loaded, tagged, slot for field 0, slot for field 1, ...)

in the schema's field order (`FieldSpec.slot` is the index). `loaded` is the set of field names
that were read (None: all); `tagged` says whether the stored item holds this entity's
discriminator value. A field's slot is None when the stored item has no such attribute, and
otherwise, by the field's `Tracker`:

- "atom": the decoded value itself (str, int, Decimal, datetime, UUID, enum members, bytes,
  frozensets and tuples of those...). The object holds the same reference until the field is
  reassigned, so the slot costs eight bytes.
- "frozen": a tuple made from a mutable value (set, list, dict, nested model) whose leaves are
  the object's own references: `obj.tags.add(...)` in place does not change it. `thaw` gives
  back what decoding the stored attribute gives.
- "wire": the stored attribute value itself (DynamoDB JSON), for what adyn cannot freeze (custom
  `Codec` types, unions, `Any`).

A slot of a "atom" or "frozen" field may also hold a wire value (a dict: neither form is ever
one) when the value saved was not of the declared type. Tuples holding only immutable values are
untracked by the garbage collector after its first pass over them; the snapshot of a typical
object is, so a page of loaded objects adds no work to later collections. A frozen slot holds its
own tuple: building one flat tuple with the members of every frozen value at its end saved a
tuple header per mutable field but cost a list and a copy per object to build (measured: ~0.2 ms
of a 1,000-item page).

Old wire values (atomic conditions, unique guards) are encoded again from a snapshot only on the
paths that need them; numbers come out in adyn's own form, as the former `_normalized` gave.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, get_origin

from pydantic import BaseModel

from .codecs import (
    BOOL,
    BYTES,
    DATE,
    DATETIME,
    DECIMAL,
    FLOAT,
    INT,
    STR,
    TIMESTAMP,
    UUID_,
    FieldCodec,
    constructor,
)

if TYPE_CHECKING:
    from .schema import FieldSpec

Wire = dict[str, Any]
State = tuple[Any, ...]

LOADED = 0  # state[LOADED]: frozenset of the field names read, or None (all of them)
TAGGED = 1  # state[TAGGED]: the stored item holds the entity's discriminator value
FIRST = 2  # state[FIRST + i]: the slot of field i

ATOM, FROZEN, WIRE = "atom", "frozen", "wire"

# The inline freezes of sets and lists, of dicts, and of nested models of immutable values.
SEQUENCE_INLINE, MAP_INLINE, MODEL_INLINE = (
    "tuple(@)",
    "(*@, *@.values())",
    ("(*@.__dict__, *@.__dict__.values())"),
)

# Types whose instances never change (exact types; enum members are checked apart).
ATOM_TYPES = frozenset(
    {str, int, float, bool, bytes, Decimal, uuid.UUID, dt.datetime, dt.date, type(None)}
)
_ATOM_CODECS = (STR, BOOL, BYTES, UUID_, DATETIME, TIMESTAMP, DATE, INT, FLOAT, DECIMAL)


def is_atom(value: Any) -> bool:
    """Whether a value can never change in place (so a reference to it is a snapshot)."""
    kind = type(value)
    if kind in ATOM_TYPES or isinstance(value, enum.Enum):
        return True
    if kind is tuple or kind is frozenset:
        return all(is_atom(v) for v in value)
    return False


class Tracker:
    """How one field (or member) is remembered: `kind`, and for "frozen" values `freeze` (a
    decoded value -> its snapshot), `thaw` (snapshot -> what decoding gives) and `fits` (whether
    a value of any origin can be frozen: the declared type all the way down). `inline`: the
    freeze as a Python expression over `@`, for the generated snapshot function."""

    __slots__ = ("fits", "freeze", "inline", "kind", "thaw")

    def __init__(
        self,
        kind: str,
        freeze: Callable[[Any], Any] = lambda v: v,
        thaw: Callable[[Any], Any] = lambda f: f,
        fits: Callable[[Any], bool] = is_atom,
        inline: str = "",
    ) -> None:
        self.kind = kind
        self.freeze = freeze
        self.thaw = thaw
        self.fits = fits
        self.inline = inline


ATOM_TRACKER = Tracker(ATOM)
WIRE_TRACKER = Tracker(WIRE, fits=lambda v: False, inline="")


def compile_tracker(codec: FieldCodec, seen: frozenset[int] = frozenset()) -> Tracker:
    """The tracker of a codec's values (recursive models and the dynamic kinds: "wire")."""
    if codec.custom is not None or id(codec) in seen:
        return WIRE_TRACKER
    if any(codec is c for c in _ATOM_CODECS):
        return ATOM_TRACKER
    python_type = codec.python_type
    origin = get_origin(python_type)
    if origin is Literal or (isinstance(python_type, type) and issubclass(python_type, enum.Enum)):
        return ATOM_TRACKER
    seen = seen | {id(codec)}
    element = compile_tracker(codec.element, seen) if codec.element is not None else None
    tag = codec.wire_type
    if tag in ("SS", "NS", "BS") and element is ATOM_TRACKER:
        if origin is frozenset:
            return ATOM_TRACKER
        return Tracker(FROZEN, tuple, set, _fits_set, SEQUENCE_INLINE)
    if tag == "L" and element is not None and element.kind != WIRE:
        return _list_tracker(element, origin is tuple or python_type is tuple)
    if tag == "M" and codec.fields is not None:
        return _model_tracker(codec, seen)
    if tag == "M" and element is not None and element.kind != WIRE:
        return _dict_tracker(element)
    return WIRE_TRACKER


def _fits_set(value: Any) -> bool:
    return type(value) in (set, frozenset) and all(is_atom(v) for v in value)


def _member_freeze(tracker: Tracker) -> Callable[[Any], Any]:
    freeze = tracker.freeze
    return lambda v: None if v is None else freeze(v)


def _member_thaw(tracker: Tracker) -> Callable[[Any], Any]:
    thaw = tracker.thaw
    return lambda f: None if f is None else thaw(f)


def _member_fits(tracker: Tracker) -> Callable[[Any], bool]:
    fits = tracker.fits
    return lambda v: v is None or fits(v)


def _list_tracker(element: Tracker, as_tuple: bool) -> Tracker:
    made = tuple if as_tuple else list
    if element.kind == ATOM:

        def fits(value: Any) -> bool:
            return type(value) is made and all(is_atom(v) for v in value)

        if as_tuple:
            return Tracker(ATOM, fits=fits)
        return Tracker(FROZEN, tuple, list, fits, SEQUENCE_INLINE)
    freeze, thaw, member_fits = (
        _member_freeze(element),
        _member_thaw(element),
        _member_fits(element),
    )

    def fits_members(value: Any) -> bool:
        return type(value) is made and all(member_fits(v) for v in value)

    return Tracker(
        FROZEN,
        lambda v: tuple(map(freeze, v)),
        lambda f: made(map(thaw, f)),
        fits_members,
    )


def _dict_tracker(element: Tracker) -> Tracker:
    """A dict as one flat tuple: its keys, then its values (frozen)."""
    if element.kind == ATOM:

        def thaw(f: Any) -> Any:
            n = len(f) // 2
            return dict(zip(f[:n], f[n:], strict=True))

        def fits(value: Any) -> bool:
            return type(value) is dict and all(is_atom(v) for v in value.values())

        return Tracker(FROZEN, lambda d: (*d, *d.values()), thaw, fits, MAP_INLINE)
    freeze, thaw_member, member_fits = (
        _member_freeze(element),
        _member_thaw(element),
        _member_fits(element),
    )

    def thaw_members(f: Any) -> Any:
        n = len(f) // 2
        return dict(zip(f[:n], map(thaw_member, f[n:]), strict=True))

    def fits_members(value: Any) -> bool:
        return type(value) is dict and all(member_fits(v) for v in value.values())

    return Tracker(FROZEN, lambda d: (*d, *map(freeze, d.values())), thaw_members, fits_members)


def _model_tracker(codec: FieldCodec, seen: frozenset[int]) -> Tracker:
    """A nested model as one flat tuple of its `__dict__`: names, then values (frozen); thawed
    into an object built the way decoding builds it."""
    assert codec.fields is not None
    model = codec.python_type
    members = {name: compile_tracker(c, seen) for name, (_, c) in codec.fields.items()}
    if any(t.kind == WIRE for t in members.values()):
        return WIRE_TRACKER
    build = constructor(model, codec.fields)
    atoms = all(t.kind == ATOM for t in members.values())
    freezes = {name: _member_freeze(t) for name, t in members.items() if t.kind != ATOM}
    thaws = {name: _member_thaw(t) for name, t in members.items() if t.kind != ATOM}
    fits_of = {name: _member_fits(t) for name, t in members.items()}

    def freeze(m: Any) -> Any:
        d = m.__dict__
        if atoms:
            return (*d, *d.values())
        return (*d, *[freezes[k](v) if k in freezes else v for k, v in d.items()])

    def thaw(f: Any) -> Any:
        n = len(f) // 2
        names = f[:n]
        values = {k: (thaws[k](v) if k in thaws else v) for k, v in zip(names, f[n:], strict=True)}
        return build(values)

    def fits(value: Any) -> bool:
        if type(value) is not model:
            return False
        return all(k in fits_of and fits_of[k](v) for k, v in value.__dict__.items())

    inline = MODEL_INLINE if atoms else ""
    return Tracker(FROZEN, freeze, thaw, fits, inline)


# ---------------------------------------------------------------- the set of fields set

# pydantic's own slot for `model_fields_set`, read and written under Model's property
_FIELDS_SET_SLOT = BaseModel.__dict__["__pydantic_fields_set__"]
set_fields_set = _FIELDS_SET_SLOT.__set__


def _fields_set(obj: Any) -> set[str]:
    # A decoded object that holds every field starts with its schema's frozenset of field
    # names in the slot and gets its own set when something first asks for it: a set of 20
    # names is 1.2 KB, a third of a loaded object, and most are never looked at.
    names: Any = _FIELDS_SET_SLOT.__get__(obj)
    if type(names) is frozenset:
        names = set(names)
        set_fields_set(obj, names)
    fields_set: set[str] = names
    return fields_set


# `Model.__pydantic_fields_set__`: what pydantic and users read is always a set of their own.
LAZY_FIELDS_SET = property(_fields_set, set_fields_set)


# ---------------------------------------------------------------- using a snapshot


def slot_same(spec: FieldSpec, old: Any, value: Any) -> bool:
    """Whether a field's value equals what its (present) slot remembers, by Python equality
    with the decoded stored value (what the stored item gives when read)."""
    try:
        if type(old) is dict:
            return bool(spec.codec.decode(old) == value)
        if spec.tracker.kind == ATOM:
            return value is old or bool(value == old)
        return bool(spec.tracker.thaw(old) == value)
    except Exception:
        return False


def slot_absent(old: Any) -> bool:
    return old is None or (type(old) is dict and "NULL" in old)


def slot_wire(spec: FieldSpec, old: Any) -> Wire | None:
    """The stored attribute value a slot remembers, in adyn's own wire form; None if absent."""
    if slot_absent(old):
        return None
    codec = spec.codec
    if type(old) is dict:
        old = codec.decode(old)
    elif spec.tracker.kind == FROZEN:
        old = spec.tracker.thaw(old)
    return codec.encode(old)


def slot_value(spec: FieldSpec, old: Any) -> Any:
    """The decoded value a present slot remembers (a new object each call, for mutables)."""
    if type(old) is dict:
        return spec.codec.decode(old)
    if spec.tracker.kind == FROZEN:
        return spec.tracker.thaw(old)
    return old


def slot_of(spec: FieldSpec, value: Any, wire: Wire | None) -> Any:
    """The slot for a value just written as `wire` (None: the attribute is absent now)."""
    if wire is None or value is None:
        return None
    tracker = spec.tracker
    if tracker.kind == WIRE or not tracker.fits(value):
        return wire
    return tracker.freeze(value)


def pack(slots: list[Any], frozen: Sequence[int]) -> State:
    """A state to keep: the slots as one tuple, each frozen slot holding its own tuple."""
    return tuple(slots)


def expand(state: State, frozen: Sequence[int], count: int) -> State:
    """A kept state with every frozen slot holding its tuple (what the readers use).

    States are kept that way; a state packed the former way (each frozen tuple's members at
    the end, its slot holding their count), as an object pickled by an earlier version holds,
    is unpacked here.
    """
    end = FIRST + count
    if not frozen or len(state) == end:
        return state
    slots = list(state[:end])
    at = end
    for i in frozen:
        n = slots[i]
        if type(n) is int:
            slots[i] = state[at : at + n]
            at += n
    return tuple(slots)


def compile_snapshot(
    specs: Sequence[FieldSpec], discriminator: tuple[str, Wire] | None
) -> Callable[[dict[str, Any], Wire, frozenset[str] | None], State]:
    """Generate `snapshot(values, item, loaded)`: the state of an object just decoded from
    `item` into `values` (before defaults are added).

    Straight-line code for the common case (every field present, every mutable type with an
    inline freeze); anything else goes through the per-field loop.
    """
    namespace: dict[str, Any] = {"careful": None}
    tagged = "False"
    if discriminator is not None:
        namespace["attr"], namespace["entity_wire"] = discriminator
        tagged = "item.get(attr) == entity_wire"
    parts = ["loaded", tagged]
    for i, spec in enumerate(specs):
        tracker = spec.tracker
        value = f"values[{spec.name!r}]"
        if tracker.kind == WIRE:
            parts.append(f"item[{spec.wire!r}]")
        elif tracker.kind == ATOM:
            parts.append(value)
        elif tracker.inline:
            parts.append(tracker.inline.replace("@", value))
        else:
            namespace[f"fz{i}"] = tracker.freeze
            parts.append(f"fz{i}({value})")
    # repr() of a str is an inert literal: no field or attribute name becomes code
    lines = [
        "def snapshot(values, item, loaded):",
        "    if len(values) == count:",
        "        try:",
        "            return (" + ", ".join(parts) + ",)",
        "        except Exception:",
        "            pass",
        "    return careful(values, item, loaded)",
    ]
    namespace["count"] = len(specs)
    plan = [(spec.name, spec.wire, spec.tracker) for spec in specs]

    def careful(values: dict[str, Any], item: Wire, loaded: frozenset[str] | None) -> State:
        slots: list[Any] = [loaded, False]
        if discriminator is not None:
            slots[TAGGED] = item.get(discriminator[0]) == discriminator[1]
        for name, wire, tracker in plan:
            value = values.get(name)
            if value is None:
                slots.append(None)
            elif tracker.kind == WIRE:
                slots.append(item.get(wire))
            elif tracker.kind == ATOM:
                slots.append(value)
            else:
                slots.append(tracker.freeze(value))
        return pack(slots, frozen_slots)

    frozen_slots = [spec.slot for spec in specs if spec.tracker.kind == FROZEN]
    namespace["careful"] = careful
    exec("\n".join(lines), namespace)
    function: Callable[[dict[str, Any], Wire, frozenset[str] | None], State] = namespace["snapshot"]
    return function
