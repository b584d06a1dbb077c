"""What a model compiles to: fields and codecs, keys, indexes, table options, paths.

`compile_model` runs once per concrete model class, at class creation. The result answers every
question the engine asks about a model without reflection: how to encode an object, decode an
item, build a key, create the table, and check that a live table fits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from ._decoder import NATIVE, compile_object_decoder, compile_values_decoder
from ._encoder import key_limit
from ._entities import Family, family_for
from ._gc import build_paused
from ._templates import SLOW, KeyTemplate, compile_templates
from ._tracking import (
    ATOM_TRACKER,
    FIRST,
    LOADED,
    State,
    Tracker,
    compile_snapshot,
    compile_tracker,
    expand,
    pack,
    set_fields_set,
    slot_absent,
    slot_value,
)
from .codecs import (
    TIMESTAMP,
    CodecError,
    FieldCodec,
    compile_codec,
    missing_factory,
    unwrap_optional,
)
from .errors import InvalidItem, InvalidModel
from .expressions import Path

if TYPE_CHECKING:
    from .model import Model, _Index

__all__ = ["FieldSpec", "IndexSpec", "ItemState", "ModelSchema", "compile_model", "schema_of"]

Wire = dict[str, Any]

_META_OPTIONS = frozenset(
    {
        "table_name",
        "billing",
        "read_units",
        "write_units",
        "stream",
        "ttl",
        "abstract",
        "discriminator",
        "entity",
        "keys",
        "unknown_entities",
        "validate_on_load",
    }
)
_OWN_OPTIONS = frozenset({"abstract", "entity"})  # not inherited by subclasses
_STREAM_VIEWS = {
    None: None,
    "keys": "KEYS_ONLY",
    "new": "NEW_IMAGE",
    "old": "OLD_IMAGE",
    "new_and_old": "NEW_AND_OLD_IMAGES",
}
_KEY_TYPES = frozenset({"S", "N", "B"})


# private attribute defaults that loaded objects may share (never changed in place)
_IMMUTABLE = frozenset({type(None), str, int, float, bool, bytes, tuple, frozenset, Decimal})


@dataclass(eq=False)
class FieldSpec:
    """One model field: its Python name, its DynamoDB attribute name and its codec."""

    name: str
    wire: str
    codec: FieldCodec
    nullable: bool
    key: str | None = None  # "hash" | "range" | None
    version: bool = False
    missing: Callable[[], Any] | None = None  # value for a field absent from a stored item
    index_key: bool = False  # a key of a secondary index (and not of the table)
    unique: bool = False  # `Unique()`: guarded by guard items (see _unique.py)
    # change tracking (see _tracking.py): the field's index in an object's state, and how
    # its stored value is remembered there
    slot: int = 0
    tracker: Tracker = ATOM_TRACKER


@dataclass(eq=False)
class IndexSpec:
    """One secondary index, resolved against the model's fields."""

    name: str
    kind: str  # "global" | "local"
    hash_key: FieldSpec
    range_key: FieldSpec | None
    projection: str  # "ALL" | "KEYS_ONLY" | "INCLUDE"
    include: tuple[str, ...]  # wire names of non-key attributes (INCLUDE only)
    projected: frozenset[str] | None  # wire names readable from the index; None: all
    read_units: int | None = None
    write_units: int | None = None
    index: Any = None  # the bound GlobalIndex/LocalIndex object

    @property
    def key_fields(self) -> tuple[FieldSpec, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)


class ItemState:
    """An object's stored item given in wire form (`stored`: the item, or its JSON as bytes;
    `loaded`: the field names read, None for all), as a write that sent a whole item records it.

    Loaded objects keep a compact state instead (a tuple: see _tracking.py); this form is
    turned into one the first time a write needs it (`ModelSchema.state_of`).
    """

    __slots__ = ("loaded", "stored")

    def __init__(self, stored: Wire | bytes | None, loaded: frozenset[str] | None = None) -> None:
        self.stored = stored
        self.loaded = loaded


@dataclass(eq=False)
class ModelSchema:
    model: type[Model]
    table_name: str
    billing: str
    read_units: int | None
    write_units: int | None
    stream_view: str | None
    ttl: FieldSpec | None
    fields: dict[str, FieldSpec]
    hash_key: FieldSpec
    range_key: FieldSpec | None
    version: FieldSpec | None
    indexes: dict[str, IndexSpec]
    paths: dict[str, Path] = field(default_factory=dict)
    by_wire: dict[str, FieldSpec] = field(default_factory=dict)
    validate_on_load: bool = False
    unique: tuple[FieldSpec, ...] = ()  # the `Unique()` fields
    # fields a stored item must hold (no default, not optional, not a set): strict loading
    required: frozenset[str] = frozenset()
    _required_in: dict[frozenset[str], frozenset[str]] = field(default_factory=dict)
    _decode_plan: list[tuple[str, str, Callable[[Wire], Any]]] = field(default_factory=list)
    _values_of: Callable[[Wire], dict[str, Any]] = field(default=dict)
    # (values, item, loaded) -> the state of an object just decoded (see _tracking.py)
    _snapshot: Callable[[dict[str, Any], Wire, frozenset[str] | None], State] = field(
        default=lambda values, item, loaded: (loaded, False)
    )
    # item -> object for a whole item (projected is None), the fast way (see _decoder.py)
    _decode_whole: Callable[[Wire], Any] | None = None
    # the compiled decoder's own loop over a page (items, consume) -> objects, or None
    _page_whole: Callable[[list[Wire], bool], list[Any]] | None = None
    # (discriminator attribute, this entity's wire value) on a shared table, else None
    _tag: tuple[str, Wire] | None = None
    _defaults: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)
    _private: dict[str, Any] = field(default_factory=dict)  # defaults of private attributes
    # private attributes with a factory or a mutable default: each object's own values
    _private_factory: Callable[[], dict[str, Any]] | None = None
    # shared tables: the family of the table model, this model's entity name (None for the
    # table model and plain models) and the discriminator attribute value it writes
    family: Family | None = None
    entity: str | None = None
    entity_wire: Wire | None = None
    # key templates (Meta.keys) by the field name of the key attribute they compute
    templates: dict[str, KeyTemplate] = field(default_factory=dict)
    _untemplated: list[FieldSpec] = field(default_factory=list)  # every other field
    frozen_slots: tuple[int, ...] = ()  # the state slots of "frozen" fields (_tracking.py)
    # generated encoders and a new object's save shapes, built on first use (see _encoder.py)
    _encoders: Any = None
    _encode: Any = None
    _save_shapes: dict[tuple[int, int], Any] = field(default_factory=dict)

    @property
    def key_fields(self) -> tuple[FieldSpec, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    @property
    def name(self) -> str:
        return self.model.__name__

    # ------------------------------------------------------------ encode

    def encode_value(self, spec: FieldSpec, value: Any, obj: Any = None) -> Wire | None:
        try:
            return spec.codec.encode(value)
        except CodecError as exc:
            raise InvalidItem(self.name, spec.name, str(exc), obj) from None

    def key_of(self, obj: Any) -> Wire:
        """The wire key of an object; InvalidItem if a key field is missing or empty."""
        if self.templates:
            return self.encode_fields(obj)[0]
        data = obj.__dict__
        return {s.wire: self._key_value(s, data.get(s.name), obj) for s in self.key_fields}

    def key_from_values(self, values: Mapping[str, Any], where: str = "key") -> Wire:
        """The wire key from `{field name: value}` (as `get` and `update` take it).

        A templated key attribute is given by itself or by the fields its template uses.
        """
        specs = self.key_fields
        if not self.templates and len(values) == len(specs):
            try:  # the usual get: exactly the key fields, by name (no set of names used)
                return {s.wire: self._key_value(s, values[s.name], None) for s in specs}
            except KeyError:
                pass  # another name given: the loop below says which
        key: Wire = {}
        used: set[str] = set()
        for spec in self.key_fields:
            template = self.templates.get(spec.name)
            if spec.name in values or template is None:
                used.add(spec.name)
                key[spec.wire] = self._key_value(spec, values.get(spec.name), None)
                continue
            for component in template.components:
                if values.get(component.name) is None:
                    raise InvalidItem(
                        self.name,
                        component.name,
                        f"missing key value: the {where} gives {spec.name} by itself or by the "
                        f"fields of its template {template.text!r}",
                    )
                used.add(component.name)
            key[spec.wire] = self._key_value(spec, template.render(values), None)
        extra = set(values) - used
        if extra:
            rule = (
                f"not a key field or a field of a key template; the {where} takes {sorted(used)}"
                if self.templates
                else f"not a key field; the {where} takes exactly {sorted(used)}"
            )
            raise InvalidItem(self.name, sorted(extra)[0], rule)
        return key

    def encode_fields(
        self, obj: Any, item: Wire | None = None
    ) -> tuple[Wire, dict[str, Wire | None]]:
        """A templated model's key and `{field name: wire value or None}` of every field the
        object holds, each encoded once; templated key attributes are computed from them.

        An index key whose components are None becomes None (the item leaves that sparse
        index). A templated attribute set by hand to something else is an InvalidItem; one
        that only kept its stored value while a component changed is recomputed.
        `item`: a dict to fill with the wire item as well (what `encode_item` returns).
        """
        data = obj.__dict__
        templates = self.templates
        wires: dict[str, Wire | None] = {}
        required = self.required
        for spec in self._untemplated:
            name = spec.name
            if name not in data:
                if item is not None and name in required:  # deleted: a full item needs it
                    raise self.unset_required(spec, obj)
                continue  # deleted, or not read (a projection): plan_save tells which
            value = data[name]
            if value is None:
                if name in required:
                    raise self.unset_required(spec, obj)
                wires[name] = None
                continue
            wire = wires[name] = self.encode_value(spec, value, obj)
            if wire is not None:
                if spec.index_key:
                    self.check_index_value(spec, wire, obj)
                if item is not None:
                    item[spec.wire] = wire
        for name, template in templates.items():
            current = data.get(name)
            text = template.fast(wires)
            if text is SLOW:
                if any(c.name not in wires for c in template.components):
                    self._keep_partial(obj, template, current, wires)
                    if current is not None:
                        wires[name] = av = {"S": current}
                        if item is not None:
                            item[template.attr.wire] = av
                    continue
                text = template.render_wires(wires, obj)
            if current is not None and current != text and current != template.default:
                self._check_by_hand(obj, template, current, text)
            if text is None:
                if template.attr.key is not None:
                    missing = next(c.name for c in template.components if wires[c.name] is None)
                    raise InvalidItem(
                        self.name,
                        missing,
                        f"missing key value: it is part of the key {name} ({template.text!r})",
                        obj,
                    )
                data[name] = wires[name] = None
            else:
                data[name] = text
                wires[name] = av = {"S": text}
                if template.attr.index_key:
                    self.check_index_value(template.attr, av, obj)
                if item is not None:
                    item[template.attr.wire] = av
        key = {s.wire: self._check_key(s, wires.get(s.name), obj) for s in self.key_fields}
        return key, wires

    def fill_templates(self, obj: Any) -> None:
        """Compute the templated key attributes a new object was not given (best effort: a
        component that cannot make a key leaves it for `save` to name the problem)."""
        data = obj.__dict__
        for name, template in self.templates.items():
            if data.get(name, template.default) != template.default:
                continue
            try:
                text = template.render(data, obj)
            except InvalidItem:
                continue
            if text is not None:
                data[name] = text

    def _keep_partial(
        self, obj: Any, template: KeyTemplate, current: Any, wires: dict[str, Wire | None]
    ) -> None:
        """A partial object (a projection) keeps its stored key, unless a component changed."""
        unset = [c.name for c in template.components if c.name not in wires]
        old = template.parse(current) if isinstance(current, str) else None
        data = obj.__dict__
        for c in template.components:
            if c.name in data and old is not None and old.get(c.name) != data[c.name]:
                raise InvalidItem(
                    self.name,
                    c.name,
                    f"changing it changes {template.attr.name} ({template.text!r}), which also "
                    f"uses {unset[0]}, not loaded: load the whole object to change it",
                    obj,
                )

    def _check_by_hand(self, obj: Any, template: KeyTemplate, current: Any, text: Any) -> None:
        """A templated attribute that differs from its template must have been computed (when
        the object was built) or be its stored value (a component changed since the load);
        anything else was set by hand."""
        if template.attr.name not in obj.__pydantic_fields_set__:
            return  # computed when the object was built, from fields that changed since
        state = self.state_of(obj)
        old = state[template.attr.slot] if state is not None else None
        if type(old) is dict:  # remembered in wire form
            old = old.get("S")
        if old is None or old != current:
            raise InvalidItem(
                self.name,
                template.attr.name,
                f"is computed from the key template {template.text!r} (giving {text!r}); "
                f"it cannot be set by hand (to {current!r})",
                obj,
            )

    def check_writable(self, obj: Any) -> None:
        """Objects of a table model cannot be written: only its entities can."""
        if self.family is not None and self.entity is None:
            raise InvalidItem(
                self.name,
                None,
                f"{self.name} is the table model of entities {sorted(self.family.by_name)}; "
                "write objects of one of them",
                obj,
            )

    def _key_value(self, spec: FieldSpec, value: Any, obj: Any) -> Wire:
        if value is None:
            raise InvalidItem(self.name, spec.name, "missing key value", obj)
        return self._check_key(spec, self.encode_value(spec, value, obj), obj)

    def _check_key(self, spec: FieldSpec, wire: Wire | None, obj: Any) -> Wire:
        if wire is None:
            raise InvalidItem(self.name, spec.name, "missing key value", obj)
        ((tag, raw),) = wire.items()
        if tag in ("S", "B") and len(raw) == 0:
            raise InvalidItem(self.name, spec.name, "a key value cannot be empty", obj)
        if tag in ("S", "B") and len(raw) > key_limit(spec):
            raise InvalidItem(self.name, spec.name, "key value too long for DynamoDB", obj)
        return wire

    def encode_item(self, obj: Any) -> Wire:
        """Every set, non-empty field of an object as a wire item."""
        self.check_writable(obj)
        if self.templates:
            item: Wire = {}
            self.encode_fields(obj, item)
            if self.entity_wire is not None:
                assert self.family is not None and self.family.attribute is not None
                item[self.family.attribute] = self.entity_wire
            return item
        item = self.key_of(obj)
        data = obj.__dict__
        for spec in self.fields.values():
            if spec.key is not None:
                continue
            value = data.get(spec.name)
            if value is None:
                if spec.name in self.required:
                    raise self.unset_required(spec, obj)
                continue
            wire = self.encode_value(spec, value, obj)
            if wire is not None:
                if spec.index_key:
                    self.check_index_value(spec, wire, obj)
                item[spec.wire] = wire
        if self.entity_wire is not None:
            assert self.family is not None and self.family.attribute is not None
            item[self.family.attribute] = self.entity_wire
        return item

    def unset_required(self, spec: FieldSpec, obj: Any) -> InvalidItem:
        """The error for a required field with no value (deleted, or set to None)."""
        return InvalidItem(
            self.name,
            spec.name,
            "a required field has no value (deleted or set to None); an item without it "
            "could not be loaded",
            obj,
        )

    def check_index_value(self, spec: FieldSpec, wire: Wire, obj: Any) -> None:
        """InvalidItem for an empty index key value (DynamoDB refuses it; None leaves the index)."""
        ((tag, raw),) = wire.items()
        if tag in ("S", "B") and not raw:
            raise InvalidItem(
                self.name,
                spec.name,
                "an index key value cannot be empty (set None to leave the index)",
                obj,
            )

    # ------------------------------------------------------------ decode

    def decode_item(self, item: Wire, projected: frozenset[str] | None = None) -> Any:
        """Build a model object from a wire item without re-validating it (unless
        `Meta.validate_on_load`).

        A stored item that lacks a required field, or holds an attribute of the wrong DynamoDB
        type, is an `InvalidItem` naming the model, the field and the key.
        `projected`: when only some fields were read, the names of those fields; the others
        stay unset (reading them raises AttributeError) and `save` never touches them.
        """
        if projected is None and self._decode_whole is not None:
            return self._decode_whole(item)
        return self._decode_carefully(item, projected)

    def _decode_carefully(self, item: Wire, projected: frozenset[str] | None = None) -> Any:
        """`decode_item` field by field: what the generated whole-item decoder falls back to."""
        try:
            values = self._values_of(item)
        except Exception:
            values = self._careful_values(item)
        # the happy path costs one comparison: every field is there
        if len(values) != len(self.fields):
            required = self.required if projected is None else self._required_of(projected)
            if not values.keys() >= required:
                missing = sorted(required - values.keys())[0]
                raise InvalidItem(
                    self.name,
                    missing,
                    f"the stored item {self.describe_key(item)} has no "
                    f"{self.fields[missing].wire!r} attribute, and the field is required",
                    key=self.item_key(item),
                )
        state = self._snapshot(values, item, projected)  # before defaults: not stored
        if self.validate_on_load and projected is None:
            return self._validated(item, values, state)
        fields_set = set(values)
        if projected is None:
            for name, make in self._defaults:
                if name not in values:
                    values[name] = make()
        else:
            for name, make in self._defaults:
                if name not in values and name in projected:
                    values[name] = make()
        obj = self.model.__new__(self.model)
        object.__setattr__(obj, "__dict__", values)
        set_fields_set(obj, fields_set)  # pydantic's slot itself, below Model's property
        object.__setattr__(obj, "__pydantic_extra__", None)
        fresh = self._private_factory
        object.__setattr__(
            obj,
            "__pydantic_private__",
            fresh() if fresh is not None else dict(self._private) if self._private else None,
        )
        object.__setattr__(obj, "__adyn_state__", state)
        return obj

    def _required_of(self, projected: frozenset[str]) -> frozenset[str]:
        required = self._required_in.get(projected)
        if required is None:
            required = self._required_in[projected] = self.required & projected
        return required

    def _validated(self, item: Wire, values: dict[str, Any], state: State) -> Any:
        """`Meta.validate_on_load`: the object as pydantic validates it (validators run)."""
        try:
            obj = self.model.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = first.get("loc") or ()
            name = str(loc[0]) if loc and str(loc[0]) in self.fields else None
            raise InvalidItem(
                self.name,
                name,
                f"the stored item {self.describe_key(item)} fails validation: {first['msg']}",
                key=self.item_key(item),
            ) from None
        object.__setattr__(obj, "__adyn_state__", state)
        return obj

    def state_of(self, obj: Any) -> State | None:
        """What the object knows of its stored item (None: a new object), compact: a state in
        wire form (`ItemState`) is turned into a snapshot and kept as one."""
        state = getattr(obj, "__adyn_state__", None)
        if state is None:
            return None
        if type(state) is not tuple:
            if not isinstance(state, ItemState) or state.stored is None:
                return None
            stored = state.stored
            item: Wire = orjson.loads(stored) if isinstance(stored, bytes) else stored
            try:
                values = self._values_of(item)
            except Exception:
                values = self._careful_values(item)
            state = self._snapshot(values, item, state.loaded)
            object.__setattr__(obj, "__adyn_state__", state)
        return expand(state, self.frozen_slots, len(self.fields))

    def keep_state(self, obj: Any, slots: list[Any]) -> None:
        """Record a state (expanded, as `state_of` gives it) on an object, packed."""
        object.__setattr__(obj, "__adyn_state__", pack(slots, self.frozen_slots))

    def stored_values(self, obj: Any) -> dict[str, Any] | None:
        """`{field: value}` of the stored item as the object last read or wrote it, as decoding
        that item gives them (defaults for absent fields); None for a new object."""
        state = self.state_of(obj)
        if state is None:
            return None
        loaded = state[LOADED]
        values: dict[str, Any] = {}
        for spec in self.fields.values():
            old = state[spec.slot]
            if slot_absent(old) or (loaded is not None and spec.name not in loaded):
                continue
            values[spec.name] = slot_value(spec, old)
        for name, make in self._defaults:
            if name not in values and (loaded is None or name in loaded):
                values[name] = make()
        return values

    def item_key(self, item: Wire) -> dict[str, Any] | None:
        """`{key field: value}` of a stored item, or None when its key does not decode."""
        try:
            return self.decode_key(item)
        except Exception:
            return None

    def describe_key(self, item: Wire) -> str:
        """A stored item's key as text for messages (`forum='f', id=...`)."""
        key = self.item_key(item)
        if key is None:
            key = {s.wire: item.get(s.wire) for s in self.key_fields}
        return "(" + ", ".join(f"{k}={v!r}" for k, v in key.items()) + ")"

    def _careful_values(self, item: Wire) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, wire, dec in self._decode_plan:
            av = item.get(wire)
            if av is None or "NULL" in av:
                continue
            try:
                values[name] = dec(av)
            except KeyError:
                codec = self.fields[name].codec if name in self.fields else None
                wanted = (codec.wire_type if codec else None) or "dynamic"
                raise InvalidItem(
                    self.name,
                    name,
                    f"the stored item {self.describe_key(item)} holds {av!r}, which is not of "
                    f"DynamoDB type {wanted}",
                    key=self.item_key(item),
                ) from None
            except (CodecError, ValueError, TypeError, ArithmeticError) as exc:
                raise InvalidItem(
                    self.name,
                    name,
                    f"the stored item {self.describe_key(item)} holds {av!r}, which does not "
                    f"fit the field: {exc}",
                    key=self.item_key(item),
                ) from None
        return values

    def read(self, item: Wire, table: str) -> Any:
        """A stored item read through this model (get, load, transaction read, update).

        On a shared table the family checks the item's entity: another entity's item is an
        InvalidItem naming both; one naming no known entity raises, or is None ("skip").
        """
        if self.family is None:
            return self.decode_item(item)
        return self.family.read(self, item, table)

    def decode_page(
        self, items: list[Wire], projected: frozenset[str] | None = None, consume: bool = False
    ) -> list[Any]:
        """Decode a page of items; a large page without the garbage collector walking it.

        Decoding allocates many objects that all survive; the collector would scan them again
        and again for nothing, and once more right after a plain pause (see `_gc`).
        `consume`: nothing else holds `items` (see `_owned`); the compiled decoder may replace
        each item with None once its object is built.
        """
        whole = self._decode_whole if projected is None else None
        if whole is not None:
            page = self._page_whole
            if page is not None and type(items) is list:
                if len(items) < 64:
                    return page(items, consume)
                return build_paused(lambda: page(items, consume))
            if len(items) < 64:
                return [whole(item) for item in items]
            return build_paused(lambda: [whole(item) for item in items])
        decode = self._decode_carefully
        if len(items) < 64:
            return [decode(item, projected) for item in items]
        return build_paused(lambda: [decode(item, projected) for item in items])

    def compile_whole_decoder(
        self, careful: Callable[[Wire], Any] | None = None, native: bool = NATIVE
    ) -> Callable[[Wire], Any]:
        """This schema's whole-item decoder (see `compile_object_decoder`), compiled in C
        (`native`) or generated; an item it does not expect goes to `careful` (by default the
        careful path)."""
        return compile_object_decoder(
            self.model,
            [(s.name, s.wire, s.codec, s.tracker) for s in self.fields.values()],
            self._tag,
            self._private,
            self._private_factory,
            self._decode_carefully if careful is None else careful,
            dict(self._defaults),
            native=native,
        )

    def decode_returned(self, item: Wire | None) -> Any:
        """The object of an item DynamoDB sent back with an error; None if none came back.

        A stored item that does not fit the model gives its `InvalidItem` instead: the error the
        item came with is raised as usual, and reading its `.item` raises this one.
        """
        if not item:
            return None
        schema: ModelSchema | None = self
        if self.family is not None:  # the entity the item is, whichever model asked
            name = self.family.name_of(item, self)
            schema = self.family.by_name.get(name) if isinstance(name, str) else None
        try:
            return None if schema is None else schema.decode_item(item)
        except InvalidItem as exc:
            return exc

    def decode_key(self, key: Wire) -> dict[str, Any]:
        """`{field name: Python value}` of a wire key."""
        return {s.name: s.codec.decode(key[s.wire]) for s in self.key_fields if s.wire in key}

    # ------------------------------------------------------------ tables

    def attribute_definitions(self) -> dict[str, str]:
        defs = {s.wire: s.codec.wire_type for s in self.key_fields}
        for index in self.indexes.values():
            for s in index.key_fields:
                defs[s.wire] = s.codec.wire_type
        return defs

    def create_table_request(self, table_name: str) -> Wire:
        request: Wire = {
            "TableName": table_name,
            "KeySchema": _key_schema(self.hash_key, self.range_key),
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": t}
                for n, t in self.attribute_definitions().items()
            ],
        }
        provisioned = self.billing == "provisioned"
        if provisioned:
            request["BillingMode"] = "PROVISIONED"
            request["ProvisionedThroughput"] = _throughput(self.read_units, self.write_units)
        else:
            request["BillingMode"] = "PAY_PER_REQUEST"
        gsis = [i for i in self.indexes.values() if i.kind == "global"]
        lsis = [i for i in self.indexes.values() if i.kind == "local"]
        if gsis:
            request["GlobalSecondaryIndexes"] = [
                _index_request(i, (self.read_units, self.write_units) if provisioned else None)
                for i in gsis
            ]
        if lsis:
            request["LocalSecondaryIndexes"] = [_index_request(i, None) for i in lsis]
        if self.stream_view:
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": self.stream_view,
            }
        return request

    def differences(self, table: Wire) -> list[str]:
        """Every way a live table description fails to fit this model."""
        diffs: list[str] = []
        live_keys = {k["AttributeName"]: k["KeyType"] for k in table.get("KeySchema", [])}
        want_keys = {
            k["AttributeName"]: k["KeyType"] for k in _key_schema(self.hash_key, self.range_key)
        }
        if live_keys != want_keys:
            diffs.append(
                f"key schema is {_fmt_keys(live_keys)}, the model needs {_fmt_keys(want_keys)}"
            )
        live_types = {
            d["AttributeName"]: d["AttributeType"] for d in table.get("AttributeDefinitions", [])
        }
        for wire, wanted in self.attribute_definitions().items():
            have = live_types.get(wire)
            if have is not None and have != wanted:
                diffs.append(f"attribute {wire!r} has type {have}, the model needs {wanted}")
        live_indexes = {
            i["IndexName"]: ("global", i) for i in table.get("GlobalSecondaryIndexes", []) or []
        }
        live_indexes.update(
            {i["IndexName"]: ("local", i) for i in table.get("LocalSecondaryIndexes", []) or []}
        )
        for index in self.indexes.values():
            found = live_indexes.get(index.name)
            if found is None:
                diffs.append(f"{index.kind} index {index.name!r} is missing")
                continue
            kind, live = found
            if kind != index.kind:
                diffs.append(f"index {index.name!r} is {kind}, the model declares it {index.kind}")
            keys = {k["AttributeName"]: k["KeyType"] for k in live.get("KeySchema", [])}
            want = {
                k["AttributeName"]: k["KeyType"]
                for k in _key_schema(index.hash_key, index.range_key)
            }
            if keys != want:
                diffs.append(
                    f"index {index.name!r} has key schema {_fmt_keys(keys)}, "
                    f"the model needs {_fmt_keys(want)}"
                )
            projection = live.get("Projection", {})
            live_type = projection.get("ProjectionType", "ALL")
            if index.projection == "ALL" and live_type != "ALL":
                diffs.append(f"index {index.name!r} projects {live_type}, the model needs ALL")
            elif index.projection == "INCLUDE" and live_type != "ALL":
                have_attrs = set(projection.get("NonKeyAttributes", []) or [])
                missing = sorted(set(index.include) - have_attrs)
                if live_type == "KEYS_ONLY" or missing:
                    diffs.append(
                        f"index {index.name!r} does not project {missing or list(index.include)}"
                    )
        if self.stream_view:
            spec = table.get("StreamSpecification") or {}
            if not spec.get("StreamEnabled"):
                diffs.append(f"stream is disabled, the model needs {self.stream_view}")
            elif spec.get("StreamViewType") != self.stream_view:
                have = spec.get("StreamViewType")
                diffs.append(f"stream view is {have}, the model needs {self.stream_view}")
        return diffs


def _fmt_keys(keys: Mapping[str, str]) -> str:
    return "(" + ", ".join(f"{n} {t}" for n, t in keys.items()) + ")"


def _key_schema(hash_key: FieldSpec, range_key: FieldSpec | None) -> list[Wire]:
    schema = [{"AttributeName": hash_key.wire, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key.wire, "KeyType": "RANGE"})
    return schema


def _throughput(read: int | None, write: int | None) -> Wire:
    return {"ReadCapacityUnits": read or 1, "WriteCapacityUnits": write or 1}


def _index_request(index: IndexSpec, table_units: tuple[int | None, int | None] | None) -> Wire:
    """An index of a CreateTable request; `table_units` (read, write) when provisioned."""
    projection: Wire = {"ProjectionType": index.projection}
    if index.projection == "INCLUDE":
        projection["NonKeyAttributes"] = list(index.include)
    request: Wire = {
        "IndexName": index.name,
        "KeySchema": _key_schema(index.hash_key, index.range_key),
        "Projection": projection,
    }
    if table_units is not None:
        read, write = table_units
        request["ProvisionedThroughput"] = _throughput(
            index.read_units or read, index.write_units or write
        )
    return request


def schema_of(model: Any) -> ModelSchema:
    """The compiled schema of a concrete model class (TypeError for anything else)."""
    schema = getattr(model, "__dict__", {}).get("__adyn_schema__")
    if schema is None:
        name = getattr(model, "__name__", repr(model))
        raise TypeError(f"{name} is not a concrete adyn Model (abstract, or not a Model)")
    return schema  # type: ignore[no-any-return]


# ---------------------------------------------------------------- compile


def _meta_options(cls: type) -> tuple[dict[str, Any], bool]:
    """Meta options, inherited from the nearest base that sets each; `abstract` is not."""
    options: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        meta = klass.__dict__.get("Meta")
        if meta is None:
            continue
        for key, value in vars(meta).items():
            if key.startswith("_"):
                continue
            if key not in _META_OPTIONS:
                raise InvalidModel(
                    cls.__name__,
                    None,
                    f"unknown Meta option {key!r} (known: {sorted(_META_OPTIONS)})",
                )
            if key not in _OWN_OPTIONS:
                options[key] = value
    own = cls.__dict__.get("Meta")
    abstract = bool(vars(own).get("abstract", False)) if own is not None else False
    if own is not None and "entity" in vars(own):
        options["entity"] = vars(own)["entity"]
    return options, abstract


def _markers(info: FieldInfo) -> tuple[list[Any], bool]:
    found = list(info.metadata)
    _, nullable, extra = unwrap_optional(info.annotation)
    found.extend(extra)
    return found, nullable


def compile_model(cls: type[Model]) -> ModelSchema | None:
    """Compile a model class; None for abstract models. InvalidModel names model and field."""
    from .model import HashKey, RangeKey, Unique, Version, _Index

    name = cls.__name__
    options, abstract = _meta_options(cls)
    if abstract:
        return None

    specs: dict[str, FieldSpec] = {}
    hash_key: FieldSpec | None = None
    range_key: FieldSpec | None = None
    version: FieldSpec | None = None
    ttl_name = options.get("ttl")
    if ttl_name is not None and not isinstance(ttl_name, str):
        raise InvalidModel(name, None, f"Meta.ttl is {ttl_name!r}; name a field (a str)")
    wires: dict[str, str] = {}
    for field_name, info in cls.model_fields.items():
        markers, nullable = _markers(info)
        wire = info.alias or field_name
        if wire in wires:
            raise InvalidModel(
                name, field_name, f"stored name {wire!r} is also used by {wires[wire]}"
            )
        wires[wire] = field_name
        try:
            codec = compile_codec(info.annotation, list(info.metadata))
        except TypeError as exc:
            raise InvalidModel(name, field_name, f"cannot be stored in DynamoDB: {exc}") from None
        spec = FieldSpec(field_name, wire, codec, nullable)
        if field_name == ttl_name:
            if codec.python_type is not dt.datetime or codec.custom is not None:
                raise InvalidModel(name, field_name, "the TTL field must be a datetime")
            spec.codec = TIMESTAMP  # DynamoDB only expires items with epoch seconds
        is_hash = any(isinstance(m, HashKey) for m in markers)
        is_range = any(isinstance(m, RangeKey) for m in markers)
        if is_hash and is_range:
            raise InvalidModel(name, field_name, "a field cannot be both HashKey and RangeKey")
        if is_hash or is_range:
            _check_key_field(name, field_name, spec, nullable)
            if is_hash:
                if hash_key is not None:
                    raise InvalidModel(
                        name, field_name, f"two hash keys ({hash_key.name} and {field_name})"
                    )
                spec.key, hash_key = "hash", spec
            else:
                if range_key is not None:
                    raise InvalidModel(
                        name, field_name, f"two range keys ({range_key.name} and {field_name})"
                    )
                spec.key, range_key = "range", spec
        if any(isinstance(m, Version) for m in markers):
            if codec.python_type is not int or nullable:
                raise InvalidModel(name, field_name, "a Version field must be a (non-optional) int")
            if version is not None:
                raise InvalidModel(name, field_name, f"two Version fields ({version.name})")
            spec.version, version = True, spec
        if any(isinstance(m, Unique) for m in markers):
            if spec.key is not None:
                raise InvalidModel(
                    name, field_name, "a key is unique already; Unique() is for other fields"
                )
            if spec.codec.wire_type not in _KEY_TYPES:
                raise InvalidModel(
                    name, field_name, "a Unique field must be stored as S, N or B (a scalar)"
                )
            spec.unique = True
        spec.missing = missing_factory(info, spec.codec)
        if spec.missing is None and nullable:
            spec.missing = _none  # stored as no attribute: loads as None
        specs[field_name] = spec

    if hash_key is None:
        raise InvalidModel(name, None, "no hash key: mark one field Annotated[..., HashKey()]")
    if ttl_name is not None and ttl_name not in specs:
        raise InvalidModel(name, str(ttl_name), "Meta.ttl names no field of the model")
    ttl = specs.get(ttl_name) if ttl_name else None
    if ttl is not None and ttl.key:
        raise InvalidModel(name, ttl.name, "the TTL field cannot be a key")

    billing = options.get("billing", "on_demand")
    if billing not in ("on_demand", "provisioned"):
        raise InvalidModel(
            name, None, f"Meta.billing is {billing!r}; use 'on_demand' or 'provisioned'"
        )
    stream = options.get("stream")
    if not isinstance(stream, str | None) or stream not in _STREAM_VIEWS:
        raise InvalidModel(
            name,
            None,
            f"Meta.stream is {stream!r}; use None, 'keys', 'new', 'old' or 'new_and_old'",
        )
    table_name = options.get("table_name") or name
    if not isinstance(table_name, str) or not 3 <= len(table_name) <= 255:
        raise InvalidModel(name, None, f"table name {table_name!r} must be 3 to 255 characters")

    schema = ModelSchema(
        model=cls,
        table_name=table_name,
        billing=billing,
        read_units=options.get("read_units"),
        write_units=options.get("write_units"),
        stream_view=_STREAM_VIEWS[stream],
        ttl=ttl,
        fields=specs,
        hash_key=hash_key,
        range_key=range_key,
        version=version,
        indexes={},
    )

    # indexes: found anywhere in the MRO, re-bound to this class. A class may redeclare an
    # inherited index (same DynamoDB name) under another attribute: the nearest declaration
    # wins, and the inherited attribute names the same index.
    seen: set[str] = set()
    inherited: list[tuple[str, str]] = []
    for klass in cls.__mro__:
        own: set[str] = set()
        for attr, value in list(vars(klass).items()):
            if attr in seen or not isinstance(value, _Index):
                continue
            seen.add(attr)
            index_name = value.name or attr
            if index_name in own:
                raise InvalidModel(name, attr, f"two indexes named {index_name!r}")
            own.add(index_name)
            if index_name in schema.indexes:
                inherited.append((attr, index_name))
                continue
            bound = value._bound(cls, attr)
            index = _compile_index(schema, bound)
            schema.indexes[index.name] = index
            type.__setattr__(cls, attr, bound)
    for attr, index_name in inherited:
        type.__setattr__(cls, attr, schema.indexes[index_name].index)
    if len([i for i in schema.indexes.values() if i.kind == "local"]) > 5:
        raise InvalidModel(name, None, "DynamoDB allows at most 5 local indexes")
    if len([i for i in schema.indexes.values() if i.kind == "global"]) > 20:
        raise InvalidModel(name, None, "DynamoDB allows at most 20 global indexes")

    schema.by_wire = {s.wire: s for s in specs.values()}
    schema.unique = tuple(s for s in specs.values() if s.unique)
    if schema.unique and hash_key.codec.wire_type not in ("S", "B"):
        raise InvalidModel(
            name,
            schema.unique[0].name,
            "Unique fields need a table whose hash key is stored as S or B (guard items are "
            "keyed by text)",
        )
    schema.required = frozenset(s.name for s in specs.values() if s.missing is None)
    validate_on_load = options.get("validate_on_load", False)
    if not isinstance(validate_on_load, bool):
        raise InvalidModel(name, None, "Meta.validate_on_load is True or False")
    schema.validate_on_load = validate_on_load
    schema.paths = {s.name: Path(cls, s, (s.wire,), s.codec) for s in specs.values()}
    schema._decode_plan = [(s.name, s.wire, s.codec.decode) for s in specs.values()]
    schema._values_of = compile_values_decoder([(s.name, s.wire, s.codec) for s in specs.values()])
    schema._defaults = [(s.name, s.missing) for s in specs.values() if s.missing is not None]
    private = {k: v for k, v in (cls.__private_attributes__ or {}).items() if k != "_adyn_state"}
    if all(v.default_factory is None and type(v.default) in _IMMUTABLE for v in private.values()):
        schema._private = {k: v.get_default() for k, v in private.items()}
    else:  # each loaded object its own values, as pydantic gives a constructed one
        schema._private_factory = lambda: {
            k: v.get_default(call_default_factory=True) for k, v in private.items()
        }
    _join_family(schema, options)
    if options.get("keys") is not None:
        key_attributes: dict[str, FieldSpec] = {}
        index_keys = [s for i in schema.indexes.values() for s in i.key_fields]
        for spec in (*schema.key_fields, *index_keys):
            key_attributes[spec.name] = key_attributes[spec.wire] = spec
        schema.templates = compile_templates(name, options["keys"], specs, key_attributes)
        schema._untemplated = [s for s in specs.values() if s.name not in schema.templates]
        for attr, template in schema.templates.items():
            info = cls.model_fields[attr]
            template.default = None if info.is_required() else info.default
    for i, spec in enumerate(specs.values()):
        spec.slot = FIRST + i
        spec.tracker = compile_tracker(spec.codec)
    if schema.entity_wire is not None and schema.family is not None:
        assert schema.family.attribute is not None
        schema._tag = (schema.family.attribute, schema.entity_wire)
    schema._snapshot = compile_snapshot(list(specs.values()), schema._tag)
    if not validate_on_load:
        whole = schema.compile_whole_decoder()
        schema._decode_whole = whole
        schema._page_whole = getattr(whole, "page", None)  # the compiled decoder's (_cdecode)
    schema.frozen_slots = tuple(s.slot for s in specs.values() if s.tracker.kind == "frozen")
    return schema


def _join_family(schema: ModelSchema, options: dict[str, Any]) -> None:
    """Make a model the table model or an entity of its family (shared tables)."""
    name = schema.name
    family, is_table_model = family_for(schema.model, options)
    entity = options.get("entity")
    if family is None:
        if entity is not None:
            raise InvalidModel(name, None, "Meta.entity needs a Meta.discriminator on a base model")
        return
    attribute = family.attribute
    if attribute is not None and attribute in schema.by_wire:
        raise InvalidModel(
            name,
            schema.by_wire[attribute].name,
            f"is stored as {attribute!r}, the discriminator attribute adyn writes itself; "
            "rename the field or the discriminator",
        )
    schema.family = family
    if is_table_model:
        if entity is not None:
            raise InvalidModel(
                name, None, "Meta.entity names an entity; the table model itself is none"
            )
        family.table_schema = schema
    else:
        entity = schema.model.__name__ if entity is None else entity
        if not isinstance(entity, str) or not entity:
            raise InvalidModel(name, None, f"Meta.entity is {entity!r}, not a non-empty str")
        schema.entity = entity
        if attribute is not None:
            schema.entity_wire = {"S": entity}
        family.register(schema, entity)
    if attribute is not None:  # every index projects the discriminator: reads must tell
        for index in schema.indexes.values():
            if index.projection != "ALL" and attribute not in index.include:
                index.include = (*index.include, attribute)
                index.projection = "INCLUDE"
                index.projected = (index.projected or frozenset()) | {attribute}


def _none() -> None:
    return None


def _check_key_field(model: str, field_name: str, spec: FieldSpec, nullable: bool) -> None:
    if nullable:
        raise InvalidModel(model, field_name, "a key field cannot be optional")
    if spec.codec.wire_type not in _KEY_TYPES:
        raise InvalidModel(
            model,
            field_name,
            f"a key must be stored as S, N or B; {spec.codec.python_type!r} is stored as "
            f"{spec.codec.wire_type or 'a dynamic type'}",
        )


def _compile_index(schema: ModelSchema, index: _Index[Any]) -> IndexSpec:
    model = schema.name
    attr = index.attr_name or "?"

    def resolve(field_name: str | None, role: str) -> FieldSpec:
        spec = schema.fields.get(field_name or "")
        if spec is None:
            raise InvalidModel(
                model, attr, f"index {role} {field_name!r} is not a field of {model}"
            )
        if spec.codec.wire_type not in _KEY_TYPES or (spec.nullable and spec.key):
            _check_key_field(model, spec.name, spec, False)
        return spec

    if index.kind == "local":
        if schema.range_key is None:
            raise InvalidModel(model, attr, "a LocalIndex needs a table with a range key")
        hash_spec = schema.hash_key
    else:
        hash_spec = resolve(index.hash_key, "hash_key")
    range_spec = resolve(index.range_key, "range_key") if index.range_key else None
    if index.kind == "local" and range_spec is None:
        raise InvalidModel(model, attr, "a LocalIndex needs a range_key")

    table_keys = {s.wire for s in schema.key_fields}
    index_keys = {hash_spec.wire} | ({range_spec.wire} if range_spec else set())
    for spec in (hash_spec, range_spec):
        if spec is not None and spec.key is None:
            spec.index_key = True
    keys = table_keys | index_keys
    projection = index.projection
    include: tuple[str, ...] = ()
    projected: frozenset[str] | None
    if projection == "all":
        kind, projected = "ALL", None
    elif projection == "keys":
        kind, projected = "KEYS_ONLY", frozenset(keys)
    elif isinstance(projection, str):
        raise InvalidModel(model, attr, f"projection {projection!r}: use 'all', 'keys' or a list")
    else:
        wires = []
        for field_name in projection:
            spec = schema.fields.get(field_name)
            if spec is None:
                raise InvalidModel(
                    model, attr, f"index projection names {field_name!r}, not a field of {model}"
                )
            if spec.wire not in keys:
                wires.append(spec.wire)
        include = tuple(wires)
        kind = "INCLUDE" if include else "KEYS_ONLY"
        projected = frozenset(keys) | frozenset(include)
    read_units = getattr(index, "read_units", None)
    write_units = getattr(index, "write_units", None)
    return IndexSpec(
        name=index.name or attr,
        kind=index.kind,
        hash_key=hash_spec,
        range_key=range_spec,
        projection=kind,
        include=include,
        projected=projected,
        read_units=read_units,
        write_units=write_units,
        index=index,
    )


def wire_fields(schema: ModelSchema, names: Iterable[str]) -> frozenset[str]:
    """Field names whose wire names are in `names`."""
    return frozenset(schema.by_wire[n].name for n in names if n in schema.by_wire)
