"""The save of an object never loaded nor saved: no diff, a precomputed update expression.

Such an object has no stored item to compare with: its save sets every field it holds and
removes the fields set to None. The generated encoder (`_encoder.py`) gives the item, its size and
which fields are set or removed in one pass; the UpdateExpression and its names are rendered once
per model and such shape, so a save builds only the values. On any doubt (an unusual value, a
templated key, a field unset) `plan_new` answers None and `plan_save` takes its careful path,
which raises what it always raised.
"""

# pyright: reportPrivateUsage=false
# (the companion of _writes, schema and codecs: it uses their private helpers by design)

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _writes
from ._encoder import MAX_ITEM_BYTES, field_bits, save_encoder
from .expressions import Renderer, all_of

if TYPE_CHECKING:
    from .schema import FieldSpec, ModelSchema

__all__ = ["plan_new"]

Wire = dict[str, Any]


class _Shape:
    """A save's update expression for one set of fields set and removed."""

    __slots__ = ("expression", "keys", "names", "pairs", "removes", "sets", "stored", "tail")

    def __init__(self, schema: ModelSchema, set_mask: int, remove_mask: int) -> None:
        bits = field_bits(schema)
        specs = schema.fields
        self.sets: list[FieldSpec] = [specs[n] for n, b in bits.items() if set_mask & b]
        self.removes: list[FieldSpec] = [specs[n] for n, b in bits.items() if remove_mask & b]
        version = schema.version
        tag = _writes._discriminator(schema, None)
        self.expression, self.names, refs = _writes._save_template(
            schema,
            tuple(s.name for s in self.sets),
            tuple(s.name for s in self.removes),
            None if version is None else version.name,
            tag,
        )
        n = len(self.sets)
        self.pairs = list(zip(refs[:n], [s.wire for s in self.sets], strict=True))
        self.tail = refs[n:]  # the version's, then the discriminator's
        self.keys = [s.wire for s in schema.key_fields]
        # the fields whose values the item holds (the version's is added when a save bumps it)
        self.stored = [s.name for s in schema.key_fields] + [s.name for s in self.sets]


def plan_new(
    schema: ModelSchema, table: str, obj: Any, condition: Any, atomic: bool
) -> _writes.WritePlan | None:
    """`plan_save` of a new object (no ItemState), or None: the careful path must decide."""
    encode = save_encoder(schema)
    if encode is None:
        return None
    try:
        item, size, set_mask, remove_mask = encode(obj.__dict__)
    except Exception:
        return None
    if size > MAX_ITEM_BYTES:
        return None  # plan_save names the size (after any field error it finds first)
    shape = schema._save_shapes.get((set_mask, remove_mask))
    if shape is None:
        shape = schema._save_shapes[set_mask, remove_mask] = _Shape(schema, set_mask, remove_mask)
    key = {wire: item[wire] for wire in shape.keys}

    version_cond, bump = _writes._version_parts(schema, obj)
    conditions = []
    if condition is not None:
        conditions.append(_writes._user_condition(condition))
    if atomic:
        conditions.append(_writes._atomic_condition(schema, obj, None))
    if version_cond is not None:
        conditions.append(version_cond)
    guards: list[Any] = []
    if schema.unique:
        sets = [(s, item[s.wire]) for s in shape.sets]
        unique_cond, guards = _writes._unique_moves(
            schema, table, key, obj, None, sets, shape.removes
        )
        conditions.append(unique_cond)
    values = {ref: item[wire] for ref, wire in shape.pairs}
    tail = iter(shape.tail)
    if bump is not None:
        values[next(tail)] = {"N": str(bump[1])}
    tag = None
    if schema.entity_wire is not None:
        assert schema.family is not None
        tag = schema.family.attribute
        values[next(tail)] = schema.entity_wire
    request: Wire = {"TableName": table, "Key": key, "UpdateExpression": shape.expression}
    cond = all_of(conditions) if conditions else None
    if cond is not None:
        r = Renderer.resume(shape.names, values)
        _writes._add_condition(request, cond, r)
        r.into(request)
    else:
        if shape.names:
            request["ExpressionAttributeNames"] = dict(shape.names)
        if values:
            request["ExpressionAttributeValues"] = values

    done = _Done(schema, shape, obj, item, bump, tag)
    return _writes.WritePlan(request, cond is None, done, obj, guards)


class _Done:
    """What a successful save of a new object records: the compact state of what was written
    (see _tracking), by the generated snapshot. An object rather than a closure: one tracked
    container instead of a function and a cell per variable."""

    __slots__ = ("bump", "item", "obj", "schema", "shape", "tag")

    def __init__(
        self,
        schema: ModelSchema,
        shape: _Shape,
        obj: Any,
        item: Wire,
        bump: tuple[FieldSpec, int] | None,
        tag: str | None,
    ) -> None:
        self.schema, self.shape, self.obj, self.item, self.bump, self.tag = (
            schema,
            shape,
            obj,
            item,
            bump,
            tag,
        )

    def __call__(self) -> None:
        schema, obj, bump, tag = self.schema, self.obj, self.bump, self.tag
        data = obj.__dict__
        written = self.item
        if bump is not None or tag is not None:
            written = dict(written)
            if bump is not None:
                spec, new_version = bump
                data[spec.name] = new_version
                written[spec.wire] = {"N": str(new_version)}
            if tag is not None:
                written[tag] = schema.entity_wire
        # only what is stored counts (a value stored as absent, such as an empty set, too)
        names = self.shape.stored if bump is None else [*self.shape.stored, bump[0].name]
        # every field stored: the object's own dict is that mapping (it holds just the fields)
        stored = data if len(names) == len(data) else {n: data[n] for n in names}
        _writes.set_state(obj, schema._snapshot(stored, written, None))
