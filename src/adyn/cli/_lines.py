"""JSON lines of a model's objects, for export and import, on a table of its own or shared.

A line is the object in pydantic's JSON mode. On a shared table (single-table design) a line of
an entity also carries the discriminator attribute (`"type": "customer"`, first), as its stored
item does, so an import through the table model knows which entity to rebuild. With a callable
discriminator the key attributes on the line are enough: the function names the entity.

Importing a line through an entity accepts that entity's lines (and its subclasses'); a line
without the discriminator is taken as the entity itself (an export made before lines carried
it); a line of another entity is refused, naming both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._common import CommandError

if TYPE_CHECKING:
    from adyn import Model
    from adyn.schema import ModelSchema


class LineError(Exception):
    """A line this import cannot take (reported as a failure of that line)."""


class Lines:
    """Objects to lines and lines to the model (entity) each one is, for one target model."""

    def __init__(self, target: type[Model]) -> None:
        from adyn.schema import schema_of

        self.target = target
        self.schema = schema_of(target)
        self.family = self.schema.family
        self.attribute = self.family.attribute if self.family is not None else None
        self._prefix: dict[type, bytes] = {}
        self._key_adapters: dict[str, Any] = {}
        if self.family is not None and self.attribute is not None:
            for entity in self.family.by_name.values():
                if self.attribute in entity.model.model_fields:
                    raise CommandError(
                        f"{entity.name} has a field named {self.attribute!r}, the name of the "
                        f"discriminator of {self.family.owner.__name__}: its JSON lines could "
                        "not say which entity each is"
                    )

    @property
    def entity_names(self) -> list[str]:
        """The entity names the target's lines may carry (none off a shared table)."""
        if self.family is None:
            return []
        return self.family.names_for(self.schema)

    # -------------------------------------------------------------- export

    def to_json(self, obj: Any) -> bytes:
        """One line (with its newline) for an object read through the target."""
        cls = type(obj)
        body: bytes = cls.__pydantic_serializer__.to_json(obj)
        prefix = self._prefix.get(cls)
        if prefix is None:
            prefix = self._prefix[cls] = self._prefix_of(cls)
        if not prefix:
            return body + b"\n"
        if body == b"{}":
            return prefix[:-1] + b"}\n"
        return prefix + body[1:] + b"\n"

    def _prefix_of(self, cls: type) -> bytes:
        from adyn.schema import schema_of

        schema = schema_of(cls)
        if self.attribute is None or schema.entity is None:
            return b""
        return b"{" + orjson.dumps(self.attribute) + b":" + orjson.dumps(schema.entity) + b","

    # -------------------------------------------------------------- import

    def model_of(self, raw: bytes) -> type[Model]:
        """The model a line is to be validated through. LineError when it is none the target
        takes; a line that is not a JSON object goes to the target (whose validation says so)."""
        family = self.family
        if family is None:
            return self.target
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self.target
        if not isinstance(data, dict):
            return self.target
        if self.attribute is not None:
            if self.attribute not in data:
                if self.schema.entity is not None:
                    return self.target  # an entity's own line, from an older export
                raise LineError(
                    f"names no entity: it has no {self.attribute!r} (one of "
                    f"{sorted(family.by_name)})"
                )
            name = data[self.attribute]
        else:
            name = self._called(data)
        schema = family.by_name.get(name) if isinstance(name, str) else None
        if schema is None:
            raise LineError(
                f"names entity {name!r}, which is none of {sorted(family.by_name)} "
                f"(entities of {family.owner.__name__})"
            )
        if not issubclass(schema.model, self.target):
            raise LineError(
                f"is an item of {schema.name} (entity {name!r}), not of {self.schema.name}: "
                f"import it through {schema.name} or {family.owner.__name__}"
            )
        return schema.model

    def _called(self, data: dict[str, Any]) -> Any:
        """The entity a callable discriminator names for the key values on the line."""
        from pydantic import TypeAdapter, ValidationError

        family = self.family
        assert family is not None and family.function is not None
        key_schema: ModelSchema = family.table_schema or self.schema
        values: dict[str, Any] = {}
        for spec in key_schema.key_fields:
            if spec.name not in data:
                raise LineError(
                    f"has no {spec.name!r}: the key names its entity (the discriminator of "
                    f"{family.owner.__name__} reads the key)"
                )
            adapter = self._key_adapters.get(spec.name)
            if adapter is None:
                annotation = key_schema.model.model_fields[spec.name].annotation
                adapter = self._key_adapters[spec.name] = TypeAdapter(annotation or Any)
            try:
                values[spec.name] = adapter.validate_python(data[spec.name])
            except ValidationError as exc:
                raise LineError(f"{spec.name}: {exc.errors()[0].get('msg', exc)}") from None
        try:
            return family.function(values)
        except Exception as exc:
            raise LineError(
                f"the discriminator function raised {type(exc).__name__}: {exc} for the key "
                f"{values}"
            ) from None
