"""Build write requests (save, delete, update, check) for one object.

Single-item calls and transactions share these builders: a `WritePlan` holds the request body
(without the table name's call wrapper), whether resending it is harmless, and what to record on
the object once the write succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ._encoder import MAX_ITEM_BYTES, fast_encoder, too_large
from ._save_new import plan_new
from ._tracking import LOADED, TAGGED, State, slot_absent, slot_of, slot_same, slot_wire
from ._unique import Guard, guard_writes, known_condition
from .errors import InvalidCondition, InvalidItem
from .expressions import (
    Action,
    Arithmetic,
    Condition,
    Function,
    Path,
    Renderer,
    _Value,
    all_of,
    render_actions,
    render_condition,
)
from .model import Model
from .schema import FieldSpec, ItemState, ModelSchema

Wire = dict[str, Any]

# An attribute name no model can declare (":" is not a valid Python identifier).
NO_SUCH_ATTRIBUTE = "adyn:none"

# DynamoDB's item size limit; counted the way DynamoDB counts (names + values, UTF-8).


@dataclass(slots=True)
class WritePlan:
    request: Wire
    idempotent: bool
    done: Callable[[], None]
    obj: Any = None
    # guard writes that go in the same transaction (`Unique()` fields; see _unique.py)
    guards: Sequence[Guard] = ()
    guard: Guard | None = None  # set on the plan of a guard write itself


def guard_plan(guard: Guard, obj: Any) -> WritePlan:
    """A guard write as a plan of its own (an entry of a transaction)."""
    return WritePlan(guard.request, False, _nothing, obj, guard=guard)


def _nothing() -> None:
    return None


# The slot itself: a new object's unset slot raises AttributeError at once, where
# `getattr(obj, name, None)` would first run pydantic's __getattr__ (three times as long).
_read_state = Model.__dict__["__adyn_state__"].__get__


def state_of(obj: Any) -> State | ItemState | None:
    """An object's state as it is held (compact or wire form; `ModelSchema.state_of` gives the
    compact form): to move it from one object to another."""
    try:
        return _read_state(obj)  # type: ignore[no-any-return]
    except AttributeError:
        return None


def set_state(obj: Any, state: State | ItemState | None) -> None:
    object.__setattr__(obj, "__adyn_state__", state)


def _same(spec: FieldSpec, old: Any, value: Any, new: Wire | None) -> bool:
    """Whether a field is unchanged: `old` is its slot in the object's state, `new` the wire
    form of its value now (None: absent)."""
    if slot_absent(old):
        return new is None
    if new is None:
        return False
    return slot_same(spec, old, value)


def item_size(item: Wire) -> int:
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def _value_size(av: Wire) -> int:
    ((tag, value),) = av.items()
    if tag == "S":
        return len(value) if value.isascii() else len(value.encode())
    if tag == "N":
        return len(value) // 2 + 2
    if tag == "B":
        return _b64_size(value)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(v) if v.isascii() else len(v.encode()) for v in value)
    if tag == "BS":
        return sum(_b64_size(v) for v in value)
    if tag == "NS":
        return sum(len(v) // 2 + 2 for v in value)
    if tag == "L":
        return 3 + sum(1 + _value_size(v) for v in value)
    if tag == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in value.items())
    return 0


def _b64_size(text: str) -> int:
    """The number of bytes a base64 wire value holds."""
    return len(text) * 3 // 4 - (text[-2:].count("=") if text else 0)


def _whole_item(schema: ModelSchema, obj: Any) -> tuple[Wire, int] | None:
    """The generated encoder's item and size as `plan_save` counts it (without the version,
    which the save writes itself), or None: an unusual value, a partial object (a projection),
    a component changed since the load: the field-by-field path decides."""
    fast = fast_encoder(schema)
    if fast is None:
        return None
    try:
        item, size = fast(obj.__dict__)
    except Exception:
        return None
    version = schema.version
    if version is not None and version.wire in item:
        size -= len(version.wire.encode()) + _value_size(item[version.wire])
    return item, size


def check_size(schema: ModelSchema, item: Wire, obj: Any) -> None:
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise too_large(schema, size, obj)


def _version_parts(
    schema: ModelSchema, obj: Any
) -> tuple[Condition | None, tuple[FieldSpec, int] | None]:
    spec = schema.version
    if spec is None:
        return None, None
    current = obj.__dict__.get(spec.name)
    if current is None:
        current = 0
    if not isinstance(current, int) or isinstance(current, bool):
        raise InvalidItem(schema.name, spec.name, "a Version field must hold an int", obj)
    path: Path = schema.paths[spec.name]
    # version 0 is an object never written by a versioned save (a batch put may store 0)
    expected = (Path.not_exists(path) | (path == 0)) if current == 0 else (path == current)
    return expected, (spec, current + 1)


def _atomic_condition(schema: ModelSchema, obj: Any, state: State | None) -> Condition:
    if state is None:
        return Path.not_exists(schema.paths[schema.hash_key.name])
    parts: list[Condition] = [Path.exists(schema.paths[schema.hash_key.name])]
    loaded = state[LOADED]
    for spec in schema.fields.values():
        if spec.key or (loaded is not None and spec.name not in loaded):
            continue
        path: Path = schema.paths[spec.name]
        old = slot_wire(spec, state[spec.slot])
        if old is None:
            parts.append(Path.not_exists(path))
        else:
            parts.append(Function("attribute_exists", path) & _eq(path, old))
    combined = all_of(parts)
    assert combined is not None
    return combined


def _eq(path: Path, wire: Wire) -> Condition:
    from .expressions import Compare

    return Compare("=", path, _Value(wire))


def _user_condition(condition: Any) -> Condition | None:
    if condition is None:
        return None
    if not isinstance(condition, Condition):
        raise InvalidCondition(
            f"condition= takes a condition such as Model.f == v, got {condition!r}"
        )
    return condition


def _key_changed(schema: ModelSchema, state: State, key: Wire, obj: Any) -> bool:
    """Whether the object's key differs from the stored item's (so a save writes another)."""
    data = obj.__dict__
    for spec in schema.key_fields:
        old = state[spec.slot]
        if old is not None and old is data.get(spec.name):
            continue
        try:
            if slot_wire(spec, old) != key[spec.wire]:
                return True
        except Exception:
            return True
    return False


def plan_save(
    schema: ModelSchema, table: str, obj: Any, condition: Any = None, atomic: bool = False
) -> WritePlan:
    """UpdateItem that sets what changed since the object was loaded (new: every field)."""
    if state_of(obj) is None and (new := plan_new(schema, table, obj, condition, atomic)):
        return new  # never loaded nor saved: no diff (see _save_new.py)
    schema.check_writable(obj)
    encoded: dict[str, Wire | None] | None = None
    whole = _whole_item(schema, obj)  # the item and its size in one pass, when it can
    if whole is not None:
        key = {s.wire: whole[0][s.wire] for s in schema.key_fields}
    elif schema.templates:  # each field encoded once: the key templates reuse the text
        key, encoded = schema.encode_fields(obj)
    else:
        key = schema.key_of(obj)
    original = state = schema.state_of(obj)
    loaded = state[LOADED] if state is not None else None
    if state is not None and _key_changed(schema, state, key, obj):
        state = None  # a key field changed: this writes another item, every field of it
        loaded = None
    data = obj.__dict__
    sets: list[tuple[FieldSpec, Wire]] = []
    written: list[Any] = []  # the values of `sets`, as they are now
    removes: list[FieldSpec] = []
    full: Wire = dict(key)
    required = schema.required
    for spec in schema.fields.values():
        if spec.key or spec.version:
            continue
        read = loaded is None or spec.name in loaded
        known = state is not None and read
        old = state[spec.slot] if known else None  # type: ignore[index]
        if spec.name not in data:
            # `del obj.field`: the attribute goes, as with None (fields a projection did not
            # read are not in `data` either, and stay as stored)
            if state is None or known:
                if spec.name in required:
                    raise schema.unset_required(spec, obj)
                if known and old is not None:
                    removes.append(spec)
            continue
        value = data[spec.name]
        if whole is not None:  # encoded and checked: an empty set has no attribute
            wire = None if value is None else whole[0].get(spec.wire)
        elif encoded is not None:  # encoded, and checked, once for the key templates
            wire = encoded[spec.name]
        elif value is None:
            if spec.name in required:
                raise schema.unset_required(spec, obj)
            wire = None
        else:
            wire = schema.encode_value(spec, value, obj)
        if wire is not None and whole is None:
            if spec.index_key:
                schema.check_index_value(spec, wire, obj)
            full[spec.wire] = wire
        if known and _same(spec, old, value, wire):
            continue
        if wire is None:
            if state is None or old is not None or not read:
                removes.append(spec)
        else:
            sets.append((spec, wire))
            written.append(value)
    tag = _discriminator(schema, state)
    if whole is not None:
        if whole[1] > MAX_ITEM_BYTES:
            raise too_large(schema, whole[1], obj)
    else:
        if schema.entity_wire is not None and schema.family is not None:
            full[schema.family.attribute or ""] = schema.entity_wire
        check_size(schema, full, obj)

    version_cond, bump = _version_parts(schema, obj)
    user_cond = _user_condition(condition)
    atomic_cond = _atomic_condition(schema, obj, original) if atomic else None
    unique_cond, guards = (
        _unique_moves(schema, table, key, obj, state, sets, removes)
        if schema.unique
        else (None, [])
    )
    wires = [w for _, w in sets]
    if bump is not None:
        wires.append({"N": str(bump[1])})
    if tag is not None:
        assert schema.entity_wire is not None
        wires.append(schema.entity_wire)
    expression, names, refs = _save_template(
        schema,
        tuple(s.name for s, _ in sets),
        tuple(s.name for s in removes),
        None if bump is None else bump[0].name,
        tag,
    )
    r = Renderer.resume(names, dict(zip(refs, wires, strict=True)))
    request: Wire = {"TableName": table, "Key": key, "UpdateExpression": expression}
    cond = all_of([user_cond, atomic_cond, version_cond, unique_cond])
    if cond is not None:
        _add_condition(request, cond, r)
    r.into(request)
    keys = [(s, data.get(s.name), key[s.wire]) for s in schema.key_fields]

    def done() -> None:
        slots: list[Any] = (
            list(state) if state is not None else [loaded, False, *[None] * len(schema.fields)]
        )
        for s, value, w in keys:
            slots[s.slot] = slot_of(s, value, w)
        for (s, w), value in zip(sets, written, strict=True):
            slots[s.slot] = slot_of(s, value, w)
        for s in removes:
            slots[s.slot] = None
        if bump is not None:
            spec, new_version = bump
            data[spec.name] = new_version
            slots[spec.slot] = new_version
        if tag is not None:
            slots[TAGGED] = True
        schema.keep_state(obj, slots)

    nothing_to_send = not (sets or removes or bump or tag) and cond is None and state is not None
    if nothing_to_send:
        request = {}
    return WritePlan(request, cond is None, done, obj, guards)


def _unique_moves(
    schema: ModelSchema,
    table: str,
    key: Wire,
    obj: Any,
    state: State | None,
    sets: list[tuple[FieldSpec, Wire]],
    removes: list[FieldSpec],
) -> tuple[Condition | None, list[Guard]]:
    """For the Unique fields a save changes: the condition that the item still holds the values
    the object knows, and the guard writes that move their guards."""
    new_of = {s.name: w for s, w in sets}
    removed = {s.name for s in removes}
    known: list[tuple[FieldSpec, Wire | None]] = []
    changes: list[tuple[FieldSpec, Wire | None, Wire | None]] = []
    loaded = state[LOADED] if state is not None else None
    for spec in schema.unique:
        if spec.name not in new_of and spec.name not in removed:
            continue
        if state is not None and loaded is not None and spec.name not in loaded:
            raise InvalidItem(
                schema.name,
                spec.name,
                "a Unique field of a partial object cannot change: its stored value names the "
                "guard to move; load the object with the field first",
                obj,
            )
        old = slot_wire(spec, state[spec.slot]) if state is not None else None
        known.append((spec, old))
        changes.append((spec, old, new_of.get(spec.name)))
    if not changes:
        return None, []
    condition = known_condition(schema, known, new_of if state is None else None)
    return condition, guard_writes(schema, table, key, changes, obj)


def unique_known(schema: ModelSchema, obj: Any) -> list[tuple[FieldSpec, Wire | None]] | None:
    """The stored values of an object's Unique fields as it last read or wrote them (None when
    the object did not read them all)."""
    state = schema.state_of(obj)
    if state is None:
        return None
    loaded = state[LOADED]
    if loaded is not None and any(s.name not in loaded for s in schema.unique):
        return None
    return [(s, slot_wire(s, state[s.slot])) for s in schema.unique]


def _discriminator(schema: ModelSchema, state: State | None) -> str | None:
    """The discriminator attribute a save must set: an entity's, unless stored already."""
    if schema.entity_wire is None:
        return None
    assert schema.family is not None and schema.family.attribute is not None
    if state is not None and state[TAGGED]:
        return None
    return schema.family.attribute


@lru_cache(maxsize=1024)
def _save_template(
    schema: ModelSchema,
    set_names: tuple[str, ...],
    remove_names: tuple[str, ...],
    version_name: str | None,
    discriminator: str | None = None,
) -> tuple[str, dict[str, str], tuple[str, ...]]:
    """The UpdateExpression of a save, its names and its value placeholders, in order.

    Saves of one model mostly change the same fields, so the text is rendered once per shape.
    """
    r = Renderer()
    paths = schema.paths
    settable = [*set_names] if version_name is None else [*set_names, version_name]
    clauses = [f"{r.path(paths[name])} = {r.value({})}" for name in settable]
    if discriminator is not None:
        clauses.append(f"{r.name(discriminator)} = {r.value({})}")
    expression = "SET " + ", ".join(clauses) if clauses else ""
    if remove_names:
        removed = ", ".join(r.path(paths[name]) for name in remove_names)
        expression += (" " if expression else "") + "REMOVE " + removed
    if not expression:
        # Every field is unset: still send an expression (moto answers 500 without one, and
        # transactions require one). Removing a name no model uses changes nothing.
        expression = f"REMOVE {r.name(NO_SUCH_ATTRIBUTE)}"
    return expression, r.names, tuple(r.values)


def plan_delete(
    schema: ModelSchema,
    table: str,
    obj: Any,
    condition: Any = None,
    atomic: bool = False,
    known: list[tuple[FieldSpec, Wire | None]] | None = None,
) -> WritePlan:
    """DeleteItem; with Unique fields, also the deletes of the item's guards (`known`: the
    stored unique values, else the object's own record of them)."""
    key = schema.key_of(obj)
    state = schema.state_of(obj)
    version_cond, _ = _version_parts(schema, obj)
    atomic_cond = _atomic_condition(schema, obj, state) if atomic else None
    unique_cond = None
    guards: list[Guard] = []
    if schema.unique:
        known = known if known is not None else unique_known(schema, obj)
        if known is None:
            raise InvalidItem(
                schema.name,
                schema.unique[0].name,
                "the stored values of its Unique fields are not known, and they name the guard "
                "items to delete: load the object first",
                obj,
            )
        unique_cond = known_condition(schema, known)
        guards = guard_writes(schema, table, key, [(s, w, None) for s, w in known], obj)
    cond = all_of([_user_condition(condition), atomic_cond, version_cond, unique_cond])
    request: Wire = {"TableName": table, "Key": key}
    if cond is not None:
        r = Renderer()
        _add_condition(request, cond, r)
        r.into(request)

    def done() -> None:
        set_state(obj, None)

    return WritePlan(request, cond is None, done, obj, guards)


def plan_check(schema: ModelSchema, table: str, obj: Any, condition: Any) -> WritePlan:
    cond = _user_condition(condition)
    if cond is None:
        raise InvalidCondition(f"{schema.name}: check() needs a condition")
    r = Renderer()
    request: Wire = {"TableName": table, "Key": schema.key_of(obj)}
    _add_condition(request, cond, r)
    r.into(request)
    return WritePlan(request, True, lambda: None, obj)


def _add_condition(request: Wire, cond: Condition, r: Renderer) -> None:
    request["ConditionExpression"] = render_condition(cond, r)
    # When it fails, DynamoDB returns the stored item with the error: ConstraintViolation.item
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"


def _check_overlaps(schema: ModelSchema, actions: Sequence[Action]) -> None:
    seen: list[tuple[str | int, ...]] = []
    for action in actions:
        segments = action.path._segments
        for other in seen:
            shorter = min(len(other), len(segments))
            if other[:shorter] == segments[:shorter]:
                raise InvalidCondition(
                    f"{schema.name}: two update actions touch overlapping paths "
                    f"({action.path} and {'.'.join(map(str, other))}); DynamoDB refuses that"
                )
        seen.append(segments)


def plan_update(
    schema: ModelSchema,
    table: str,
    key: dict[str, Any] | None,
    actions: Sequence[Action],
    condition: Any = None,
    obj: Any = None,
) -> WritePlan:
    """UpdateItem of update actions, by key (`key`) or for a loaded object (`obj`).

    For an object, the item must exist and a `Version` field is checked against the object's
    and incremented; without one (the key form), a version is incremented unchecked.
    """
    wire_key = schema.key_of(obj) if obj is not None else schema.key_from_values(key or {})
    actions = list(actions)
    if not actions:
        raise InvalidCondition(f"{schema.name}: update() needs at least one action")
    for action in actions:
        if not isinstance(action, Action):
            raise InvalidCondition(
                f"expected an update action such as Model.f.set(v), got {action!r}"
            )
        if action.path._model is not schema.model and not issubclass(
            schema.model, action.path._model
        ):
            raise InvalidCondition(f"{action.path} is not a field of {schema.name}")
        if action.path._field is not None and action.path._field.key:
            raise InvalidCondition(f"{action.path}: key attributes cannot be updated")
        if action.path._field is not None and action.path._field.unique:
            raise InvalidCondition(
                f"{action.path}: a Unique field changes only through save, which moves its "
                "guard item with it"
            )
    if schema.templates:  # the fields known besides the actions: the key's, or the object's
        known = dict(obj.__dict__) if obj is not None else dict(key or {})
        actions.extend(_template_actions(schema, known, wire_key, actions, obj is None))
    entity_cond = None
    if schema.entity_wire is not None:
        # Stamp the item with its entity, and never touch an item of another entity.
        family = schema.family
        assert family is not None and family.path is not None
        actions.append(Action("SET", family.path, _Value(schema.entity_wire)))
        hash_path: Path = schema.paths[schema.hash_key.name]
        entity_cond = Path.not_exists(hash_path) | _eq(family.path, schema.entity_wire)
    touches_version = any(a.path._field is schema.version for a in actions)
    checks: list[Condition | None] = [_user_condition(condition)]
    if obj is not None:
        if touches_version:
            raise InvalidCondition(
                f"{schema.name}: update(obj) checks and increments the Version field itself; "
                "leave it out of the actions"
            )
        checks.append(Path.exists(schema.paths[schema.hash_key.name]))
        version_cond, bump = _version_parts(schema, obj)
        if bump is not None:
            checks.append(version_cond)
            actions.append(Action("SET", schema.paths[bump[0].name], _Value({"N": str(bump[1])})))
    elif schema.version is not None and not touches_version:
        path = schema.paths[schema.version.name]
        actions.append(
            Action("SET", path, Arithmetic(_IfMissingZero(path), "+", _Value({"N": "1"})))
        )
    _check_overlaps(schema, actions)
    r = Renderer()
    request: Wire = {
        "TableName": table,
        "Key": wire_key,
        "UpdateExpression": render_actions(actions, r),
    }
    cond = all_of(checks)
    # the entity's own condition holds again on a resend: it leaves a plain update idempotent
    idempotent = cond is None and all(
        a.kind == "REMOVE" or (a.kind == "SET" and isinstance(a.value, _Value)) for a in actions
    )
    cond = all_of([cond, entity_cond])
    if cond is not None:
        _add_condition(request, cond, r)
    r.into(request)
    return WritePlan(request, idempotent, lambda: None, obj)


def _template_actions(
    schema: ModelSchema,
    key: dict[str, Any],
    wire_key: Wire,
    actions: Sequence[Action],
    key_form: bool,
) -> list[Action]:
    """The SET/REMOVE of every templated index key an update of its components changes.

    A component's new value must be known: set in this update (a plain value) or part of the
    item's key. Templated attributes themselves cannot be updated, nor key components. By key
    (`key_form`), the fields of the table key's templates are set too: an update that creates
    the item stores them, as a save would.
    """
    known: dict[str, Any] = dict(key)
    for spec in schema.key_fields:  # a key given by its attributes: read its components back
        template = schema.templates.get(spec.name)
        if template is not None and spec.name in key:
            known.update(template.parse(wire_key[spec.wire]["S"]) or {})
    changed: set[str] = set()
    for action in actions:
        field = action.path._field
        if field is None:
            continue
        if field.name in schema.templates:
            raise InvalidItem(
                schema.name,
                field.name,
                f"is computed from the key template {schema.templates[field.name].text!r}; "
                "update the fields it uses instead",
            )
        if not any(field in t.components for t in schema.templates.values()):
            continue
        changed.add(field.name)
        if len(action.path._segments) == 1 and action.kind == "REMOVE":
            known[field.name] = None
        elif (
            len(action.path._segments) == 1
            and action.kind == "SET"
            and type(action.value) is _Value
        ):
            known[field.name] = field.codec.decode(action.value.wire)
        else:
            known.pop(field.name, None)
    extra: list[Action] = []
    if key_form:
        for spec in schema.key_fields:
            template = schema.templates.get(spec.name)
            for component in template.components if template is not None else ():
                value = known.get(component.name)
                wire = None if value is None else schema.encode_value(component, value)
                if wire is not None:
                    extra.append(Action("SET", schema.paths[component.name], _Value(wire)))
    for name, template in schema.templates.items():
        uses = [c.name for c in template.components if c.name in changed]
        if not uses:
            continue
        if template.attr.key is not None:
            raise InvalidCondition(
                f"{schema.name}.{uses[0]}: it is part of the key {name} ({template.text!r}); "
                "a key cannot change: save a new object and delete the old one"
            )
        unknown = [c.name for c in template.components if c.name not in known]
        if unknown:
            raise InvalidCondition(
                f"{schema.name}.{uses[0]}: changing it changes {name} ({template.text!r}), "
                f"which also uses {unknown[0]}: set {unknown[0]} in the same update, or load "
                "the object and save it"
            )
        text = template.render(known)
        path: Path = schema.paths[name]
        if text is None:
            extra.append(Action("REMOVE", path, None))
        else:
            extra.append(Action("SET", path, _Value({"S": text})))
    return extra


class _IfMissingZero(_Value):
    """`if_not_exists(path, 0)`: lets a version counter start from a missing attribute."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        super().__init__({"N": "0"})
        self.path = path

    def _render(self, r: Renderer) -> str:
        return f"if_not_exists({r.path(self.path)}, {r.value(self.wire)})"
