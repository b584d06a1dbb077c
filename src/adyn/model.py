"""`Model`, the key and option markers, and index declarations.

A `Model` is a pydantic v2 model. When a concrete subclass is created it compiles once into a
`ModelSchema` (see `schema.py`); class attribute access then gives attribute paths for
expressions (`Post.views > 3`), and index attributes give the index bound to that model.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict
from pydantic._internal._model_construction import ModelMetaclass
from pydantic.fields import FieldInfo

from ._tracking import LAZY_FIELDS_SET
from .codecs import Timestamp

if TYPE_CHECKING:
    from .schema import ModelSchema

__all__ = [
    "GlobalIndex",
    "HashKey",
    "LocalIndex",
    "Model",
    "RangeKey",
    "Timestamp",
    "Unique",
    "Version",
]

Projection = Literal["all", "keys"] | Sequence[str]
M = TypeVar("M", bound="Model")
Owner = TypeVar("Owner", bound="Model")


class _Marker:
    __slots__ = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HashKey(_Marker):
    """Marks the partition key: `forum: Annotated[str, HashKey()]`."""

    __slots__ = ()


class RangeKey(_Marker):
    """Marks the sort key: `id: Annotated[UUID, RangeKey()]`."""

    __slots__ = ()


class Version(_Marker):
    """Marks an int field used for optimistic locking: every save and delete checks it."""

    __slots__ = ()


class Unique(_Marker):
    """Marks a non-key field whose values no two items may share: `email: Annotated[str,
    Unique()]`. DynamoDB enforces it through guard items written in the same transaction as the
    save (see the models page); a second item with a taken value raises `UniqueViolation`."""

    __slots__ = ()


class _Index(Generic[M]):
    """Common part of `GlobalIndex` and `LocalIndex`: `_Index[Post]` is an index of `Post`."""

    kind: ClassVar[str] = ""

    def __init__(
        self,
        *,
        hash_key: str | None,
        range_key: str | None,
        projection: Projection,
        name: str | None,
    ) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.projection: Projection = (
            projection if isinstance(projection, str) else tuple(projection)
        )
        self.name = name
        self.attr_name: str | None = None
        self.model: type[Model] | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr_name = name
        if self.name is None:
            self.name = name

    def _bound(self, model: type[Model], attr_name: str) -> _Index[Any]:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.model = model
        clone.attr_name = attr_name
        clone.name = self.name or attr_name
        return clone

    def __repr__(self) -> str:
        owner = self.model.__name__ if self.model else "?"
        return f"<{type(self).__name__} {owner}.{self.attr_name} ({self.name})>"


class GlobalIndex(_Index[M]):
    """A global secondary index: `by_user = GlobalIndex(hash_key="user", range_key="date")`.

    `projection` is "keys" (default), "all", or a list of field names to include.
    `read_units` / `write_units` apply to provisioned tables.
    """

    kind = "global"

    def __init__(
        self: GlobalIndex[Any],
        hash_key: str,
        range_key: str | None = None,
        projection: Projection = "keys",
        *,
        name: str | None = None,
        read_units: int | None = None,
        write_units: int | None = None,
    ) -> None:
        super().__init__(hash_key=hash_key, range_key=range_key, projection=projection, name=name)
        self.read_units = read_units
        self.write_units = write_units

    def __get__(self, obj: object, owner: type[Owner]) -> GlobalIndex[Owner]:
        # Each model class holds a copy bound to it (see schema.py), so the index read from a
        # class is that class's index; this only tells type checkers so.
        return cast("GlobalIndex[Owner]", self)


class LocalIndex(_Index[M]):
    """A local secondary index (same hash key as the table, another range key)."""

    kind = "local"

    def __init__(
        self: LocalIndex[Any],
        range_key: str,
        projection: Projection = "keys",
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(hash_key=None, range_key=range_key, projection=projection, name=name)

    def __get__(self, obj: object, owner: type[Owner]) -> LocalIndex[Owner]:
        return cast("LocalIndex[Owner]", self)


def _templated_names(cls: type) -> Any:
    """The key attributes `Meta.keys` computes, from the nearest Meta that sets them."""
    for klass in cls.__mro__:
        meta = klass.__dict__.get("Meta")
        if meta is not None and "keys" in vars(meta):
            return vars(meta)["keys"]
    return None


def _default_templated(cls: type) -> None:
    """Templated key attributes are computed on save, so constructors must not require them.

    Runs before pydantic collects the class's fields: each templated attribute (declared here
    or inherited) without a default gets a default of None.
    """
    keys = _templated_names(cls)
    if not isinstance(keys, Mapping):
        return  # compile_model names the mistake
    own = inspect.get_annotations(cls)
    for name in keys:
        if not isinstance(name, str) or name in cls.__dict__:
            continue
        if name in own:
            type.__setattr__(cls, name, None)
            continue
        for base in cls.__mro__[1:]:
            info = getattr(base, "__pydantic_fields__", {}).get(name)
            if info is not None:
                if info.is_required():
                    type.__setattr__(cls, name, FieldInfo.merge_field_infos(info, default=None))
                break


class _ModelMeta(ModelMetaclass):
    def __getattr__(cls, name: str) -> Any:
        # Only a class's own compiled schema answers, so a subclass under construction never
        # sees its parent's paths (pydantic probes attributes while collecting fields).
        schema = cls.__dict__.get("__adyn_schema__")
        if schema is not None:
            path = schema.paths.get(name)
            if path is not None:
                return path
        return super().__getattr__(name)  # type: ignore[misc]


class Model(BaseModel, metaclass=_ModelMeta):
    """Base class of DynamoDB models: a pydantic model with keys, indexes and a table.

    Declare options in an inner `class Meta` (`table_name`, `billing`, `read_units`,
    `write_units`, `stream`, `ttl`, `abstract`; for shared tables `discriminator`,
    `unknown_entities`, `entity`, and key templates in `keys`).
    """

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        ignored_types=(GlobalIndex, LocalIndex),
    )

    # What adyn knows of the stored item (see _tracking.py): a slot, not a private attribute,
    # so that a loaded object needs no `__pydantic_private__` dict (184 bytes each).
    __slots__ = ("__adyn_state__",)
    __adyn_schema__: ClassVar[ModelSchema | None] = None
    # A loaded object's set of fields set is made when first read (see _tracking.py).
    __pydantic_fields_set__ = LAZY_FIELDS_SET

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # called by type.__new__, before pydantic collects the fields
        super().__init_subclass__(**kwargs)
        _default_templated(cls)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        from .schema import compile_model

        type.__setattr__(cls, "__adyn_schema__", compile_model(cls))

    def model_post_init(self, context: Any, /) -> None:
        # an entity's templated key attributes, from the fields it was built with (a save
        # computes them again from the fields as they are then)
        schema = type(self).__dict__.get("__adyn_schema__")
        if schema is not None and schema.templates:
            schema.fill_templates(self)

    def __copy__(self) -> Any:
        new = super().__copy__()
        object.__setattr__(new, "__adyn_state__", getattr(self, "__adyn_state__", None))
        return new

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        new = super().__deepcopy__(memo)
        object.__setattr__(new, "__adyn_state__", getattr(self, "__adyn_state__", None))
        return new

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["__adyn_state__"] = getattr(self, "__adyn_state__", None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        state = dict(state)
        adyn = state.pop("__adyn_state__", None)
        super().__setstate__(state)
        object.__setattr__(self, "__adyn_state__", adyn)

    def __eq__(self, other: object) -> bool:
        # pydantic compares private attributes too; adyn's load state is not part of equality.
        if not isinstance(other, BaseModel):
            return NotImplemented
        if type(self) is not type(other):
            return False
        if self.__dict__ != other.__dict__ or self.__pydantic_extra__ != other.__pydantic_extra__:
            return False
        mine = {k: v for k, v in (self.__pydantic_private__ or {}).items() if k != "_adyn_state"}
        theirs = {k: v for k, v in (other.__pydantic_private__ or {}).items() if k != "_adyn_state"}
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]
