"""Typed attribute paths: what a type checker knows about `Post.views`, and `F(...)`.

At run time every attribute path is one class, `adyn.expressions.Path`, which checks each
operator against the field's DynamoDB type when an expression is built. The protocols here are
the static description of that same object, one per kind of field, so a type checker can tell
`Post.views.add(1)` (a number) from `Post.views.begins_with("a")` (a type error):

- `bool`: `ValuePath[bool]`, the common operations only;
- `int`, `float`, `Decimal`: `NumberPath[T]`: ordering (`< <= > >=`, `between`), `+ -`, `add`;
- `str`, `UUID`, `datetime`, `date`, str enums and literals (stored as strings):
  `StringPath[T]`: ordering, `begins_with`, `contains`, `size`;
- `bytes`: `BytesPath`: ordering, `begins_with`, `size`;
- `set[T]`, `frozenset[T]`: `SetPath[T]`: `add`, `delete`, `contains`, `size`, typed by member;
- `list[T]`, `tuple[T, ...]`: `ListPath[T]`: `[i]` (the element's path), `append`, `prepend`,
  `contains`, `size`;
- `dict[str, V]`: `MapPath[V]`: `["key"]` (the value's path), `size`;
- a nested pydantic model: `ModelPath[M]`: its fields as attributes, `size`;
- other enums: `OrderedPath[E]`; anything else: `DynamicPath`, every operation, checked at run
  time only.

Every path has `==`, `!=`, `in_`, `exists`, `not_exists`, `is_`, `is_not`, `is_type`, `set`,
`set_if_missing` and `remove`.

With the mypy plugin (`plugins = ["pydantic.mypy", "adyn.mypy"]`) `Post.views` itself has its
path type. Other checkers see `Post.views` as an `int`; `F(Post.views)` is then the same path
with its path type, for any checker. `F` returns its argument unchanged.
"""

# The overloads of F overlap only in `None` (an optional field); the first match is meant.
# mypy: disable-error-code="overload-overlap"
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, overload
from uuid import UUID

from pydantic import BaseModel

from .errors import InvalidArgument
from .expressions import Action, Arithmetic, Condition, Path

__all__ = [
    "BytesPath",
    "DynamicPath",
    "F",
    "ListPath",
    "MapPath",
    "ModelPath",
    "NumberPath",
    "OrderedPath",
    "SetPath",
    "SizeOf",
    "StringPath",
    "TypeName",
    "ValuePath",
]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
K_contra = TypeVar("K_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)
N = TypeVar("N", bound="int | float | Decimal")
S = TypeVar("S", bound="str | UUID | date")
E = TypeVar("E", bound=Enum)
M = TypeVar("M", bound=BaseModel)
M_contra = TypeVar("M_contra", bound=BaseModel, contravariant=True)
P = TypeVar("P", bound="ValuePath[Any]")

TypeName: TypeAlias = Literal["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"]
"""The DynamoDB type names `is_type` takes."""


class ValuePath(Protocol[T_contra]):
    """A path to a value of type `T`: the operations every attribute has."""

    def __eq__(self, other: T_contra | ValuePath[Any] | None) -> Condition:  # type: ignore[override]
        """Equal (`== None` means the attribute does not exist)."""

    def __ne__(self, other: T_contra | ValuePath[Any] | None) -> Condition:  # type: ignore[override]
        """Not equal (`!= None` means the attribute exists)."""

    def in_(self, values: Iterable[T_contra]) -> Condition:
        """Equal to one of up to 100 values."""

    def exists(self) -> Condition:
        """The attribute is present."""

    def not_exists(self) -> Condition:
        """The attribute is absent."""

    def is_(self, value: None) -> Condition:
        """`is_(None)`: the attribute is absent."""

    def is_not(self, value: None) -> Condition:
        """`is_not(None)`: the attribute is present."""

    def is_type(self, type_name: TypeName) -> Condition:
        """The attribute is stored with this DynamoDB type."""

    def set(self, value: T_contra | ValuePath[Any] | Arithmetic | None) -> Action:
        """SET to a value, another path or arithmetic; `None` removes the attribute."""

    def set_if_missing(self, value: T_contra) -> Action:
        """SET only when the attribute is absent."""

    def remove(self) -> Action:
        """REMOVE the attribute (or list element)."""


class SizeOf(Protocol):
    """`path.size()`: the length of a string, binary value, set, list or map, as a number."""

    def __eq__(self, other: int | ValuePath[Any]) -> Condition:  # type: ignore[override]
        """Equal."""

    def __ne__(self, other: int | ValuePath[Any]) -> Condition:  # type: ignore[override]
        """Not equal."""

    def __lt__(self, other: int | ValuePath[Any]) -> Condition:
        """Less than."""

    def __le__(self, other: int | ValuePath[Any]) -> Condition:
        """Less than or equal."""

    def __gt__(self, other: int | ValuePath[Any]) -> Condition:
        """Greater than."""

    def __ge__(self, other: int | ValuePath[Any]) -> Condition:
        """Greater than or equal."""

    def between(self, low: int, high: int) -> Condition:
        """From `low` to `high`, both included."""


class _Sized(Protocol):
    def size(self) -> SizeOf:
        """The length, compared like a number: `Post.tags.size() > 3`."""


class OrderedPath(ValuePath[T_contra], Protocol[T_contra]):
    """A path whose values are ordered (DynamoDB's S, N and B)."""

    def __lt__(self, other: T_contra | ValuePath[Any]) -> Condition:
        """Less than."""

    def __le__(self, other: T_contra | ValuePath[Any]) -> Condition:
        """Less than or equal."""

    def __gt__(self, other: T_contra | ValuePath[Any]) -> Condition:
        """Greater than."""

    def __ge__(self, other: T_contra | ValuePath[Any]) -> Condition:
        """Greater than or equal."""

    def between(self, low: T_contra, high: T_contra) -> Condition:
        """From `low` to `high`, both included."""


class NumberPath(OrderedPath[T_contra], Protocol[T_contra]):
    """A number (`int`, `float`, `Decimal`): ordering, arithmetic and `add`."""

    def __add__(self, other: T_contra | int | NumberPath[Any]) -> Arithmetic:
        """`Post.views + 1`, for `set(...)`."""

    def __radd__(self, other: T_contra | int) -> Arithmetic:
        """`1 + Post.views`, for `set(...)`."""

    def __sub__(self, other: T_contra | int | NumberPath[Any]) -> Arithmetic:
        """`Post.views - 1`, for `set(...)`."""

    def __rsub__(self, other: T_contra | int) -> Arithmetic:
        """`10 - Post.views`, for `set(...)`."""

    def add(self, value: T_contra | int) -> Action:
        """ADD to the number (a missing number counts as 0)."""


class StringPath(OrderedPath[T_contra], _Sized, Protocol[T_contra]):
    """A value stored as a string (`str`, `UUID`, `datetime`, `date`, str enums and literals)."""

    def begins_with(self, prefix: str) -> Condition:
        """The stored text starts with `prefix` (a text prefix also for UUIDs and dates)."""

    def contains(self, substring: str) -> Condition:
        """The stored text contains `substring`."""


class BytesPath(OrderedPath[bytes], _Sized, Protocol):
    """A binary value."""

    def begins_with(self, prefix: bytes) -> Condition:
        """The stored bytes start with `prefix`."""


class SetPath(ValuePath[AbstractSet[T_contra]], _Sized, Protocol[T_contra]):
    """A set of strings, numbers or bytes, typed by its members."""

    def add(self, members: AbstractSet[T_contra]) -> Action:
        """ADD members to the set."""

    def delete(self, members: AbstractSet[T_contra]) -> Action:
        """DELETE members from the set."""

    def contains(self, member: T_contra) -> Condition:
        """The set has this member."""


class _Elements(Protocol[K_contra, T_co]):
    """Subscripting a list or a map gives the path of its element type."""

    @overload
    def __getitem__(self: _Elements[K_contra, bool], key: K_contra) -> ValuePath[bool]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, int], key: K_contra) -> NumberPath[int]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, float], key: K_contra) -> NumberPath[float]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, Decimal], key: K_contra) -> NumberPath[Decimal]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, str], key: K_contra) -> StringPath[str]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, UUID], key: K_contra) -> StringPath[UUID]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, datetime], key: K_contra) -> StringPath[datetime]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, date], key: K_contra) -> StringPath[date]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, bytes], key: K_contra) -> BytesPath: ...
    @overload
    def __getitem__(self: _Elements[K_contra, AbstractSet[T]], key: K_contra) -> SetPath[T]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, list[T]], key: K_contra) -> ListPath[T]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, tuple[T, ...]], key: K_contra) -> ListPath[T]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, Mapping[str, T]], key: K_contra) -> MapPath[T]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, M], key: K_contra) -> ModelPath[M]: ...
    @overload
    def __getitem__(self: _Elements[K_contra, E], key: K_contra) -> OrderedPath[E]: ...
    @overload
    def __getitem__(self, key: K_contra) -> DynamicPath: ...


# Invariant: an element path is covariant in T, `append` contravariant (mypy does not count
# the self-typed overloads of _Elements, so it asks for contravariance).
class ListPath(  # type: ignore[misc]
    ValuePath[Sequence[T]], _Elements[int, T], _Sized, Protocol[T]
):
    """A list: `[i]` gives the element's path; `append`, `prepend`, `contains`."""

    def append(self, values: Sequence[T]) -> Action:
        """Append elements (a missing list counts as empty)."""

    def prepend(self, values: Sequence[T]) -> Action:
        """Prepend elements (a missing list counts as empty)."""

    def contains(self, member: T) -> Condition:
        """The list has this element."""


class MapPath(  # type: ignore[misc]
    ValuePath[Mapping[str, T]], _Elements[str, T], _Sized, Protocol[T]
):
    """A map with string keys: `["key"]` gives the value's path."""


class ModelPath(ValuePath[M_contra], _Sized, Protocol[M_contra]):
    """A nested pydantic model: its fields are attributes (typed with the mypy plugin)."""

    def __getattr__(self, name: str) -> DynamicPath:
        """The path of a field of the nested model."""

    def __getitem__(self, name: str) -> DynamicPath:
        """The path of a field, for names that clash with a path method (`["size"]`)."""


class DynamicPath(Protocol):
    """A path whose type is not known statically: every operation, checked at run time."""

    def __eq__(self, other: Any) -> Condition:  # type: ignore[override]
        """Equal."""

    def __ne__(self, other: Any) -> Condition:  # type: ignore[override]
        """Not equal."""

    def __lt__(self, other: Any) -> Condition:
        """Less than."""

    def __le__(self, other: Any) -> Condition:
        """Less than or equal."""

    def __gt__(self, other: Any) -> Condition:
        """Greater than."""

    def __ge__(self, other: Any) -> Condition:
        """Greater than or equal."""

    def __add__(self, other: Any) -> Arithmetic:
        """Arithmetic for `set(...)`."""

    def __radd__(self, other: Any) -> Arithmetic:
        """Arithmetic for `set(...)`."""

    def __sub__(self, other: Any) -> Arithmetic:
        """Arithmetic for `set(...)`."""

    def __rsub__(self, other: Any) -> Arithmetic:
        """Arithmetic for `set(...)`."""

    def __getattr__(self, name: str) -> DynamicPath:
        """A nested field or map key."""

    def __getitem__(self, key: str | int) -> DynamicPath:
        """A map key or list element."""

    def between(self, low: Any, high: Any) -> Condition:
        """From `low` to `high`, both included."""

    def begins_with(self, prefix: Any) -> Condition:
        """A prefix."""

    def contains(self, member: Any) -> Condition:
        """A substring, set member or list element."""

    def in_(self, values: Iterable[Any]) -> Condition:
        """Equal to one of up to 100 values."""

    def exists(self) -> Condition:
        """The attribute is present."""

    def not_exists(self) -> Condition:
        """The attribute is absent."""

    def is_(self, value: None) -> Condition:
        """`is_(None)`: the attribute is absent."""

    def is_not(self, value: None) -> Condition:
        """`is_not(None)`: the attribute is present."""

    def is_type(self, type_name: TypeName) -> Condition:
        """The attribute is stored with this DynamoDB type."""

    def size(self) -> SizeOf:
        """The length, compared like a number."""

    def set(self, value: Any) -> Action:
        """SET to a value, another path or arithmetic."""

    def set_if_missing(self, value: Any) -> Action:
        """SET only when the attribute is absent."""

    def remove(self) -> Action:
        """REMOVE the attribute."""

    def add(self, value: Any) -> Action:
        """ADD to a number or a set."""

    def delete(self, members: Any) -> Action:
        """DELETE members from a set."""

    def append(self, values: Sequence[Any]) -> Action:
        """Append to a list."""

    def prepend(self, values: Sequence[Any]) -> Action:
        """Prepend to a list."""


# F: the path type of a field, chosen by the field's static type. The order matters: bool
# before numbers (bool is an int), str before sequences, BaseModel and Enum before the rest.
@overload
def F(path: P) -> P: ...
@overload
def F(path: bool | None) -> ValuePath[bool]: ...
@overload
def F(path: N | None) -> NumberPath[N]: ...
@overload
def F(path: S | None) -> StringPath[S]: ...
@overload
def F(path: bytes | None) -> BytesPath: ...
@overload
def F(path: AbstractSet[T] | None) -> SetPath[T]: ...
@overload
def F(path: list[T] | tuple[T, ...] | None) -> ListPath[T]: ...
@overload
def F(path: Mapping[str, T] | None) -> MapPath[T]: ...
@overload
def F(path: M | None) -> ModelPath[M]: ...
@overload
def F(path: E | None) -> OrderedPath[E]: ...
@overload
def F(path: object) -> DynamicPath: ...
def F(path: object) -> Any:
    """The typed path of a class attribute: `F(Post.views).add(1)`, `F(Post.tags).contains("x")`.

    For type checkers that see `Post.views` as an `int` (pyright, or mypy without adyn's
    plugin): the result's static type offers exactly the operations the field's type allows.
    At run time `F` returns the path itself; anything that is not a path is refused.
    """
    if not isinstance(path, Path):
        raise InvalidArgument(
            f"F() takes an attribute path such as F(Post.views), not {path!r}; "
            "read the attribute on the model class, not on an object"
        )
    return path
