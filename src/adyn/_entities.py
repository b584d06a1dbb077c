"""Entities on a shared table: the discriminator, the registry, and reads that never lie.

A model whose `Meta` names a `discriminator` is a table model; its concrete subclasses are its
entities, registered here by name when their classes are created. One `Family` per table model
answers which entity an item is (from its discriminator attribute, or from a callable over its
key values) and turns items into the right objects:

- through an entity, a page was already filtered by the server (attribute discriminator) or is
  filtered here (callable); a single item (get, load, transaction read) is checked;
- through the table model, each item becomes the entity its discriminator names.

This is a thin layer above each model's own decoder (`ModelSchema.decode_item`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._gc import build_paused
from .errors import InvalidItem, InvalidModel

if TYPE_CHECKING:
    from .expressions import Condition, Path
    from .schema import ModelSchema

__all__ = ["Family", "family_for"]

log = logging.getLogger("adyn.entities")

Wire = dict[str, Any]
Pairs = list[tuple[Wire, "ModelSchema"]]

_UNKNOWN_RULES = ("raise", "skip")
# The attribute every guard item of a `Unique()` field carries (see _unique.py), defined here,
# below both modules, so reads and guards share one name. Guards are no entity's items: reads
# through a table model pass over them silently.
GUARD_ATTRIBUTE = "adyn:unique"


class Family:
    """The table model of a shared table and its entities."""

    __slots__ = ("attribute", "by_name", "function", "owner", "path", "table_schema", "unknown")

    def __init__(
        self,
        owner: type,
        attribute: str | None,
        function: Callable[[dict[str, Any]], Any] | None,
        unknown: str,
    ) -> None:
        self.owner = owner
        self.attribute = attribute
        self.function = function
        self.unknown = unknown
        self.by_name: dict[str, ModelSchema] = {}
        self.table_schema: ModelSchema | None = None
        self.path: Path | None = None
        if attribute is not None:
            from .codecs import STR
            from .expressions import Path

            self.path = Path(owner, None, (attribute,), STR)

    def __repr__(self) -> str:
        return f"<Family {self.owner.__name__}: {sorted(self.by_name)}>"

    @property
    def members(self) -> list[ModelSchema]:
        """The table model (when concrete) and every entity."""
        found = [] if self.table_schema is None else [self.table_schema]
        return found + list(self.by_name.values())

    def register(self, schema: ModelSchema, name: str) -> None:
        existing = self.by_name.get(name)
        if existing is not None and not _same_class(existing.model, schema.model):
            raise InvalidModel(
                schema.name,
                None,
                f"entity name {name!r} of table model {self.owner.__name__} is already taken "
                f"by {existing.name}; set Meta.entity to tell them apart",
            )
        self.by_name[name] = schema

    # ------------------------------------------------------------ which entity

    def name_of(self, item: Wire, key_schema: ModelSchema) -> Any:
        """The entity name an item carries (None when it names none)."""
        if self.attribute is not None:
            av = item.get(self.attribute)
            return None if av is None else av.get("S")
        assert self.function is not None
        values = key_schema.decode_key(item)
        try:
            return self.function(values)
        except Exception as exc:
            raise InvalidItem(
                self.owner.__name__,
                None,
                f"the discriminator function raised {exc!r} for the item with key {values}",
            ) from None

    def names_for(self, schema: ModelSchema) -> list[str]:
        """The entity names a read through `schema` accepts: its own and its subclasses'."""
        return [n for n, s in self.by_name.items() if issubclass(s.model, schema.model)]

    def server_filter(self, schema: ModelSchema) -> Condition | None:
        """The filter that keeps a search through an entity to its own items (None: no
        attribute to filter on, or a read through the table model)."""
        if self.path is None or schema.entity is None:
            return None
        names = self.names_for(schema)
        return self.path == names[0] if len(names) == 1 else self.path.in_(names)

    def unknown_item(self, item: Wire, name: Any, table: str, key_schema: ModelSchema) -> None:
        """Raise for an item naming no known entity, or log it when the rule is "skip"."""
        key = _key_text(key_schema, item)
        known = sorted(self.by_name)
        if self.unknown == "skip":
            log.warning(
                "skipped an item of table %s with key %s: its entity %r is none of %s",
                table,
                key,
                name,
                known,
            )
            return
        raise InvalidItem(
            self.owner.__name__,
            self.attribute,
            f"the item of table {table!r} with key {key} names entity {name!r}, which is "
            f"none of {known} (Meta.unknown_entities = 'skip' passes such items over)",
        )

    # ------------------------------------------------------------ reading

    def classify(self, reader: ModelSchema, items: list[Wire], table: str) -> Pairs:
        """Each item with the schema it decodes as, for a page read through `reader`.

        Through the table model every known entity is kept; through an entity, only its own
        (and its subclasses') items. Items naming no known entity raise or are skipped.
        """
        by_name = self.by_name
        through_entity = reader.entity is not None
        attribute = self.attribute
        out: Pairs = []
        for item in items:
            if attribute is not None:  # inlined name_of: this loop runs for every item read
                av = item.get(attribute)
                name = None if av is None else av.get("S")
            else:
                name = self.name_of(item, reader)
            schema = by_name.get(name) if isinstance(name, str) else None
            if schema is None:
                if GUARD_ATTRIBUTE not in item:
                    self.unknown_item(item, name, table, reader)
                continue
            if through_entity and not issubclass(schema.model, reader.model):
                continue
            out.append((item, schema))
        return out

    def read(self, reader: ModelSchema, item: Wire, table: str) -> Any:
        """One stored item read through `reader` (get, load, transaction read).

        InvalidItem when it is another entity (naming both); None when it names no known entity
        and the rule is "skip".
        """
        wanted = reader.entity_wire
        if wanted is not None and item.get(self.attribute or "") == wanted:
            return reader.decode_item(item)  # the common case: the entity asked for
        name = self.name_of(item, reader)
        schema = self.by_name.get(name) if isinstance(name, str) else None
        if schema is None:
            if GUARD_ATTRIBUTE not in item:
                self.unknown_item(item, name, table, reader)
            return None
        if reader.entity is not None and not issubclass(schema.model, reader.model):
            raise InvalidItem(
                reader.name,
                None,
                f"the item of table {table!r} with key {_key_text(reader, item)} is a "
                f"{schema.name} (entity {name!r}), not a {reader.name}",
            )
        return schema.decode_item(item)


def stream_router(
    family: Family, wanted: list[ModelSchema], table: str, view_type: str
) -> Callable[[Wire], ModelSchema | None]:
    """Which schema decodes each stream record of a shared table (None: not wanted).

    Through the table model every record is wanted, each as its entity; through entities, only
    theirs. The entity is read from the record's image (attribute discriminator) or its keys
    (callable). InvalidArgument when a keys-only stream cannot tell entities apart.
    """
    from .errors import InvalidArgument

    table_wide = any(s.entity is None for s in wanted)
    models = tuple(s.model for s in wanted)
    base = family.table_schema or wanted[0]
    if family.attribute is not None and view_type == "KEYS_ONLY":
        if not table_wide:
            raise InvalidArgument(
                f"the stream of table {table!r} has keys only (Meta.stream = 'keys'): it cannot "
                f"tell the entities {[s.name for s in wanted]} apart by their "
                f"{family.attribute!r} attribute; stream the table model, or use a view with "
                "images"
            )
        return lambda raw: base  # every record, as the table model (keys only)

    def route(raw: Wire) -> ModelSchema | None:
        body = raw.get("dynamodb") or {}
        if family.attribute is not None:
            item = body.get("NewImage") or body.get("OldImage") or {}
        else:
            item = body.get("Keys") or {}
        name = family.name_of(item, base)
        schema = family.by_name.get(name) if isinstance(name, str) else None
        if schema is None:
            if GUARD_ATTRIBUTE not in item:
                family.unknown_item(item or body.get("Keys") or {}, name, table, base)
            return None
        if table_wide or issubclass(schema.model, models):
            return schema
        return None

    return route


def decode_pairs(pairs: Pairs, projected: frozenset[str] | None) -> list[Any]:
    """Decode classified items; a large page without the collector walking it (as decode_page)."""
    if len(pairs) < 64:
        return [schema.decode_item(item, projected) for item, schema in pairs]
    return build_paused(lambda: [schema.decode_item(item, projected) for item, schema in pairs])


def _same_class(a: type, b: type) -> bool:
    """The same class defined again (a module reloaded, a notebook cell run twice)."""
    return a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


def _key_text(schema: ModelSchema, item: Wire) -> str:
    try:
        values = schema.decode_key(item)
    except Exception:
        values = {s.wire: item.get(s.wire) for s in schema.key_fields}
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def family_for(cls: type, options: dict[str, Any]) -> tuple[Family | None, bool]:
    """The family a model class belongs to, and whether it is the table model itself.

    The table model is the nearest class whose own `Meta` names the discriminator; the family
    lives on it and is made when it (or, if it is abstract, its first entity) is compiled.
    """
    if "discriminator" not in options:
        if "unknown_entities" in options:
            raise InvalidModel(
                cls.__name__, None, "Meta.unknown_entities needs a Meta.discriminator"
            )
        return None, False
    owner = cls
    for klass in cls.__mro__:
        meta = klass.__dict__.get("Meta")
        if meta is not None and "discriminator" in vars(meta):
            owner = klass
            break
    family = owner.__dict__.get("__adyn_family__")
    if family is None:
        family = _make_family(owner, options)
        type.__setattr__(owner, "__adyn_family__", family)
    return family, owner is cls


def _make_family(owner: type, options: dict[str, Any]) -> Family:
    name = owner.__name__
    discriminator = options["discriminator"]
    unknown = options.get("unknown_entities", "raise")
    if unknown not in _UNKNOWN_RULES:
        raise InvalidModel(
            name, None, f"Meta.unknown_entities is {unknown!r}; use 'raise' or 'skip'"
        )
    if isinstance(discriminator, str):
        if not discriminator:
            raise InvalidModel(name, None, "Meta.discriminator names no attribute")
        return Family(owner, discriminator, None, unknown)
    if callable(discriminator):
        return Family(owner, None, discriminator, unknown)
    raise InvalidModel(
        name,
        None,
        f"Meta.discriminator is {discriminator!r}: name an attribute (a str) or give a callable "
        "taking the item's key values (a dict) and returning the entity name",
    )
