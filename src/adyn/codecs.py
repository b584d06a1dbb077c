"""Per-field codecs between Python values and DynamoDB wire values.

A codec is compiled once per field from its type annotation. Encoding checks DynamoDB's rules
(number range and precision, naive datetimes, mixed sets) and raises `CodecError`, which the caller
turns into `InvalidItem` naming the model and the field. Wire values are DynamoDB's own JSON:
numbers as text, binary values as base64 text (encoded exactly once, here).
"""

from __future__ import annotations

import binascii
import copy
import datetime as dt
import enum
import itertools
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic.errors import PydanticSchemaGenerationError
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

__all__ = ["Codec", "CodecError", "DynamoType", "FieldCodec", "Timestamp", "compile_codec"]

Wire = dict[str, Any]

# DynamoDB: up to 38 significant digits, magnitude between 1E-130 and 9.99...E+125.
_MAX_DIGITS = 38
_MIN_EXP = -130
_MAX_ADJ = 125
_INT_FAST = 10**38
_DECIMAL_CONTEXT = Context(prec=60)


class CodecError(Exception):
    """A value breaks a DynamoDB rule or does not fit the field's type."""


class Timestamp:
    """Marks a `datetime` field stored as epoch seconds (`N`), as TTL attributes must be."""

    def __repr__(self) -> str:
        return "Timestamp()"


T = TypeVar("T")

DynamoType = Literal["S", "N", "B", "BOOL", "L", "M", "SS", "NS", "BS"]
DYNAMO_TYPES: tuple[str, ...] = get_args(DynamoType)

_FORMS = {
    "S": "a str",
    "N": "an int, a Decimal or a str holding a number",
    "B": "bytes",
    "BOOL": "a bool",
    "L": "a list",
    "M": "a dict with str keys",
    "SS": "a set of str",
    "NS": "a set of numbers (int, Decimal or str)",
    "BS": "a set of bytes",
}


class Codec(Generic[T]):
    """Stores a custom type as a DynamoDB type: `Annotated[Money, Codec("S", encode=str,
    decode=Money.parse)]`.

    `dynamo_type` is the DynamoDB type tag: "S", "N", "B", "BOOL", "L", "M", "SS", "NS" or "BS".
    `encode` turns a value into the Python form of that type: a `str` for "S"; an `int`, a
    `Decimal` or a `str` holding a number for "N"; `bytes` for "B"; a `bool`; a `list` or a `dict`
    of plain values for "L" and "M"; a set of `str`, of numbers or of `bytes` for "SS", "NS" and
    "BS". `decode` is the inverse; it receives numbers as `int` when they are integral, else as
    `Decimal`. A field with a codec can be a key (S, N or B), and takes part in conditions (a
    condition's value goes through `encode`), queries and streams.

    For a type pydantic does not know, a model accepts instances of the type, or the stored form
    (which `decode` turns into one), and serializes to JSON through `encode`.
    """

    __slots__ = ("decode", "dynamo_type", "encode")

    def __init__(
        self,
        dynamo_type: DynamoType,
        *,
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
    ) -> None:
        self.dynamo_type = dynamo_type
        self.encode = encode
        self.decode = decode

    def __repr__(self) -> str:
        return f"Codec({self.dynamo_type!r})"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        try:
            return handler(source)
        except PydanticSchemaGenerationError:
            pass
        decode, form = self.decode, _FORM_CHECKS.get(self.dynamo_type)

        def validate(value: Any) -> Any:
            if isinstance(source, type) and isinstance(value, source):
                return value
            if form is not None and form(value):
                return decode(value)
            raise ValueError(f"expected {getattr(source, '__name__', source)}")

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                self.encode, when_used="json"
            ),
        )


class FieldCodec:
    """Encodes one Python type to a DynamoDB attribute value and back (compiled per field;
    users declare custom types with `Codec`).

    `wire_type` is the DynamoDB type tag ("S", "N", "B", "BOOL", "L", "M", "SS", "NS", "BS") or
    "" for codecs whose tag depends on the value. `element` is the codec of a set's, list's or
    map's members (used by paths such as `Post.history[0]` and by `contains`). `inline`, when
    set, is the decoder as a Python expression over `@` (the attribute value) using only the
    names of `INLINE_NAMES`; generated item decoders paste it in (see `_decoder.py`).
    `container` is "list" or "dict" for a list or dict codec whose members decode inline: a
    generated item decoder then writes the loop out instead of calling a comprehension.
    """

    __slots__ = (
        "container",
        "custom",
        "decode",
        "element",
        "encode",
        "fields",
        "inline",
        "python_type",
        "wire_type",
    )

    def __init__(
        self,
        wire_type: str,
        encode: Callable[[Any], Wire | None],
        decode: Callable[[Wire], Any],
        python_type: Any,
        element: FieldCodec | None = None,
        fields: Mapping[str, tuple[str, FieldCodec]] | None = None,
        inline: str | None = None,
        custom: Codec[Any] | None = None,
        container: str | None = None,
    ) -> None:
        self.wire_type = wire_type
        self.container = container
        self.custom = custom  # the user's `Codec` marker this codec applies, if any
        self.inline = inline
        self.encode = encode
        self.decode = decode
        self.python_type = python_type
        self.element = element
        # for nested models: attribute name in python -> (wire name, codec)
        self.fields = fields

    def __repr__(self) -> str:
        return f"FieldCodec({self.wire_type or 'dynamic'}, {self.python_type!r})"


# ---------------------------------------------------------------- numbers


def number_text(value: Any) -> str:
    """The exact DynamoDB text of a number, or CodecError if DynamoDB cannot store it."""
    if type(value) is int:
        if -_INT_FAST < value < _INT_FAST:
            return str(value)
        return _check_decimal(Decimal(value))
    if isinstance(value, bool):
        raise CodecError(f"expected a number, got bool {value!r}")
    if isinstance(value, int):  # int subclasses (IntEnum values are handled by their codec)
        return number_text(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CodecError(f"{value!r} cannot be stored: DynamoDB numbers are finite")
        return _check_decimal(Decimal(repr(value)))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CodecError(f"{value!r} cannot be stored: DynamoDB numbers are finite")
        return _check_decimal(value)
    raise CodecError(f"expected a number, got {type(value).__name__} {value!r}")


def _check_decimal(value: Decimal) -> str:
    if not value:
        return "0"
    _sign, digits, exponent = value.normalize(_DECIMAL_CONTEXT).as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > _MAX_DIGITS:
        raise CodecError(
            f"{value} has {len(digits)} significant digits; DynamoDB keeps at most {_MAX_DIGITS}"
        )
    adjusted = exponent + len(digits) - 1
    if adjusted > _MAX_ADJ or adjusted < _MIN_EXP:
        raise CodecError(f"{value} is out of DynamoDB's range (magnitude 1E-130 to 9.99...E+125)")
    return str(value)


def _decode_int(av: Wire) -> int:
    text = av["N"]
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)
        if number != number.to_integral_value():
            raise CodecError(f"stored number {text} is not an integer") from None
        return int(number)


# ---------------------------------------------------------------- scalars


def _b64(value: str) -> bytes:
    """The bytes of a base64 wire value (what base64.b64decode does, minus its wrappers)."""
    return binascii.a2b_base64(value)


def b64_text(value: bytes | bytearray | memoryview) -> str:
    """The base64 wire text of binary data."""
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def check_text(value: str) -> str:
    """`value`, or CodecError if it cannot be sent as UTF-8 (a lone surrogate)."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise CodecError(
                f"{value[:40]!r} holds a lone surrogate (at {exc.start}); DynamoDB text is UTF-8"
            ) from None
    return value


def _enc_str(value: Any) -> Wire:
    if type(value) is not str:
        if isinstance(value, str) and not isinstance(value, enum.Enum):
            return {"S": check_text(str(value))}
        raise CodecError(f"expected str, got {type(value).__name__} {value!r}")
    if not value.isascii():
        check_text(value)
    return {"S": value}


def _enc_int(value: Any) -> Wire:
    # pydantic does not validate assignments: a float set on an int field after construction
    # would be stored and then make the item unreadable as the model
    if type(value) is int:
        if -_INT_FAST < value < _INT_FAST:
            return {"N": str(value)}
        return {"N": number_text(value)}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"N": number_text(int(value))}
    raise CodecError(f"expected int, got {type(value).__name__} {value!r}")


def _enc_bool(value: Any) -> Wire:
    if value is True or value is False:
        return {"BOOL": value}
    raise CodecError(f"expected bool, got {type(value).__name__} {value!r}")


def _enc_bytes(value: Any) -> Wire:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": b64_text(value)}
    raise CodecError(f"expected bytes, got {type(value).__name__}")


def _enc_uuid(value: Any) -> Wire:
    if isinstance(value, uuid.UUID):
        return {"S": str(value)}
    raise CodecError(f"expected UUID, got {type(value).__name__} {value!r}")


def _utc_text(value: Any) -> str:
    if not isinstance(value, dt.datetime):
        raise CodecError(f"expected datetime, got {type(value).__name__} {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise CodecError(
            f"naive datetime {value.isoformat()} rejected: give it a timezone (e.g. UTC)"
        )
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _enc_datetime(value: Any) -> Wire:
    return {"S": _utc_text(value)}


def _dec_datetime(av: Wire) -> dt.datetime:
    value = dt.datetime.fromisoformat(av["S"])
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _enc_timestamp(value: Any) -> Wire:
    _utc_text(value)  # same checks: aware datetimes only
    return {"N": str(int(value.timestamp()))}


def _dec_timestamp(av: Wire) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(Decimal(av["N"])), dt.UTC)


def _enc_date(value: Any) -> Wire:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return {"S": value.isoformat()}
    raise CodecError(f"expected date, got {type(value).__name__} {value!r}")


def _scalar(
    wire_type: str, python_type: Any, encode: Any, decode: Any, inline: str | None = None
) -> FieldCodec:
    return FieldCodec(wire_type, encode, decode, python_type, inline=inline)


# What an `inline` expression may call. An inline expression must give the codec's own result or
# raise (the generated decoder then retries the item with the codecs themselves): `int("1E+2")`
# raises where `_decode_int` succeeds, which is fine; the reverse would not be.
INLINE_NAMES: dict[str, Any] = {
    "Decimal": Decimal,
    "UUID": uuid.UUID,
    "_b64": _b64,
    "_dec_datetime": _dec_datetime,
    "a2b_base64": binascii.a2b_base64,
}

STR = _scalar("S", str, _enc_str, lambda av: av["S"], "@['S']")
BOOL = _scalar("BOOL", bool, _enc_bool, lambda av: av["BOOL"], "@['BOOL']")
BYTES = _scalar("B", bytes, _enc_bytes, lambda av: _b64(av["B"]), "a2b_base64(@['B'])")
UUID_ = _scalar("S", uuid.UUID, _enc_uuid, lambda av: uuid.UUID(av["S"]), "UUID(@['S'])")
DATETIME = _scalar("S", dt.datetime, _enc_datetime, _dec_datetime, "_dec_datetime(@)")
TIMESTAMP = _scalar("N", dt.datetime, _enc_timestamp, _dec_timestamp)
DATE = _scalar("S", dt.date, _enc_date, lambda av: dt.date.fromisoformat(av["S"]))
INT = _scalar("N", int, _enc_int, _decode_int, "int(@['N'])")
FLOAT = _scalar(
    "N", float, lambda v: {"N": number_text(v)}, lambda av: float(av["N"]), "float(@['N'])"
)
DECIMAL = _scalar(
    "N", Decimal, lambda v: {"N": number_text(v)}, lambda av: Decimal(av["N"]), "Decimal(@['N'])"
)

_inline_names = itertools.count()


def _fresh_name() -> str:
    """A variable name for a comprehension in an inline expression, unique in the process."""
    return f"x{next(_inline_names)}"


def _number_for(annotation: Any) -> FieldCodec:
    if annotation is int:
        return INT
    if annotation is float:
        return FLOAT
    return DECIMAL


# ---------------------------------------------------------------- enums and literals


def _enum_codec(annotation: type[enum.Enum]) -> FieldCodec:
    values = [m.value for m in annotation]
    if all(isinstance(v, str) for v in values):
        wire = "S"
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        wire = "N"
    else:
        raise TypeError(f"Enum {annotation.__name__} must have only str or only int values")

    def encode(value: Any) -> Wire:
        if isinstance(value, annotation):
            raw = value.value
        else:
            try:
                raw = annotation(value).value
            except ValueError:
                raise CodecError(f"{value!r} is not a member of {annotation.__name__}") from None
        return {"S": raw} if wire == "S" else {"N": str(raw)}

    if wire == "S":

        def decode(av: Wire) -> Any:
            return annotation(av["S"])
    else:

        def decode(av: Wire) -> Any:
            return annotation(int(av["N"]))

    return FieldCodec(wire, encode, decode, annotation)


def _literal_codec(annotation: Any) -> FieldCodec:
    options = get_args(annotation)
    if all(isinstance(o, str) for o in options):
        allowed = frozenset(options)

        def encode(value: Any) -> Wire:
            if value not in allowed:
                raise CodecError(f"{value!r} is not one of {sorted(allowed)}")
            return {"S": value}

        return FieldCodec("S", encode, lambda av: av["S"], annotation)
    if all(isinstance(o, int) and not isinstance(o, bool) for o in options):
        allowed_n = frozenset(options)

        def encode_n(value: Any) -> Wire:
            if isinstance(value, bool) or value not in allowed_n:
                raise CodecError(f"{value!r} is not one of {sorted(allowed_n)}")
            return {"N": str(value)}

        return FieldCodec("N", encode_n, _decode_int, annotation)
    raise TypeError(f"Literal {options!r} must be all str or all int")


# ---------------------------------------------------------------- collections


def _set_codec(element: FieldCodec, annotation: Any, frozen: bool) -> FieldCodec:
    if element.wire_type not in ("S", "N", "B"):
        raise TypeError("sets hold only str, numbers or bytes (SS, NS, BS)")
    tag = element.wire_type + "S"
    make = frozenset if frozen else set
    enc = element.encode
    key = element.wire_type

    def member(v: Any) -> Any:
        wire = enc(v)
        if wire is None:
            raise CodecError(f"{v!r} cannot be a set member")
        return wire[key]

    def encode(value: Any) -> Wire | None:
        if not isinstance(value, set | frozenset):
            raise CodecError(f"expected a set, got {type(value).__name__}")
        if not value:
            return None
        try:
            return {tag: [member(v) for v in value]}
        except CodecError as exc:
            if str(exc).startswith("expected"):
                raise CodecError(f"mixed set: {exc}") from None
            raise

    def decode(av: Wire) -> Any:
        return make(element.decode({key: v}) for v in av[tag])

    inline = None
    if element is STR:
        inline = f"{make.__name__}(@['{tag}'])"
    elif element is INT:
        x = _fresh_name()
        inline = f"{make.__name__}(int({x}) for {x} in @['{tag}'])"
    return FieldCodec(tag, encode, decode, annotation, element=element, inline=inline)


def _list_codec(element: FieldCodec, annotation: Any, as_tuple: bool) -> FieldCodec:
    enc = _nullable_member(element)
    dec = element.decode

    def encode(value: Any) -> Wire:
        if not isinstance(value, list | tuple):
            raise CodecError(f"expected a list, got {type(value).__name__}")
        return {"L": [enc(v) for v in value]}

    def decode(av: Wire) -> Any:
        items = [None if "NULL" in v else dec(v) for v in av["L"]]
        return tuple(items) if as_tuple else items

    inline = None
    if element.inline is not None:  # a NULL member raises in it: the careful path takes over
        x = _fresh_name()
        inline = f"[{element.inline.replace('@', x)} for {x} in @['L']]"
        if as_tuple:
            inline = f"tuple({inline})"
    container = "list" if inline is not None and not as_tuple else None
    return FieldCodec(
        "L", encode, decode, annotation, element=element, inline=inline, container=container
    )


def _dict_codec(element: FieldCodec, annotation: Any) -> FieldCodec:
    enc = _nullable_member(element)
    dec = element.decode

    def encode(value: Any) -> Wire:
        if not isinstance(value, Mapping):
            raise CodecError(f"expected a dict, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            _check_map_key(k)
            out[k] = enc(v)
        return {"M": out}

    def decode(av: Wire) -> Any:
        return {k: (None if "NULL" in v else dec(v)) for k, v in av["M"].items()}

    inline = None
    if element.inline is not None:
        k, x = _fresh_name(), _fresh_name()
        inline = f"{{{k}: {element.inline.replace('@', x)} for {k}, {x} in @['M'].items()}}"
    container = "dict" if inline is not None else None
    return FieldCodec(
        "M", encode, decode, annotation, element=element, inline=inline, container=container
    )


def _check_map_key(key: Any) -> None:
    if not isinstance(key, str):
        raise CodecError(f"map keys must be str, got {type(key).__name__} {key!r}")
    if not key:
        raise CodecError("map keys cannot be empty (DynamoDB attribute names need a character)")
    check_text(key)


def _nullable_member(element: FieldCodec) -> Callable[[Any], Wire]:
    enc = element.encode

    def encode(value: Any) -> Wire:
        if value is None:
            return {"NULL": True}
        wire = enc(value)
        # an empty set inside a list or map cannot be stored as an attribute: store NULL
        return {"NULL": True} if wire is None else wire

    return encode


def model_codec(model: type[BaseModel], seen: dict[Any, FieldCodec] | None = None) -> FieldCodec:
    """A codec storing a plain pydantic model as a map of its fields (aliases as names)."""
    from ._decoder import compile_values_decoder  # _decoder builds on this module

    seen = {} if seen is None else seen
    if model in seen:
        return seen[model]
    fields: dict[str, tuple[str, FieldCodec]] = {}
    # A recursive model meets this codec before it is complete: what captures its functions
    # now gets ones that call through to the final functions, set at the end.
    codec = FieldCodec(
        "M", lambda value: codec.encode(value), lambda av: codec.decode(av), model, fields=fields
    )
    seen[model] = codec
    for name, info in model.model_fields.items():
        fields[name] = (info.alias or name, compile_codec(info.annotation, info.metadata, seen))
    plan = [(name, wire, c.encode, c.decode) for name, (wire, c) in fields.items()]
    values_of = compile_values_decoder([(name, wire, c) for name, (wire, c) in fields.items()])
    build = constructor(model, fields)

    def encode(value: Any) -> Wire:
        if not isinstance(value, model):
            if isinstance(value, Mapping):
                value = model.model_validate(value)
            else:
                raise CodecError(f"expected {model.__name__}, got {type(value).__name__}")
        out: dict[str, Any] = {}
        data = value.__dict__
        for name, wire, enc, _ in plan:
            v = data.get(name)
            if v is not None:
                w = enc(v)
                if w is not None:
                    out[wire] = w
        return {"M": out}

    def careful_values(m: Wire) -> dict[str, Any]:
        values = {}
        for name, wire, _, dec in plan:
            v = m.get(wire)
            if v is not None and "NULL" not in v:
                values[name] = dec(v)
        return values

    def decode(av: Wire) -> Any:
        m = av["M"]
        try:
            values = values_of(m)
        except Exception:
            values = careful_values(m)  # the rare forms, or the field's own error
        return build(values)

    codec.encode = encode
    codec.decode = decode
    return codec


def constructor(
    model: type[BaseModel], fields: Mapping[str, tuple[str, FieldCodec]]
) -> Callable[[dict[str, Any]], Any]:
    """Build objects of a plain pydantic model from decoded values, without re-validation.

    What `model_construct` does, minus its per-call reflection: fields absent from the item get
    their defaults (an empty set for a set without one: DynamoDB cannot store empty sets).
    """
    if model.__pydantic_post_init__ is not None or model.model_config.get("extra") == "allow":
        return lambda values: model.model_construct(**values)
    defaults = [
        (name, make)
        for name, (_, c) in fields.items()
        if (make := missing_factory(model.model_fields[name], c)) is not None
    ]
    private = {k: v.get_default() for k, v in (model.__private_attributes__ or {}).items()}
    new = model.__new__
    set_attr = object.__setattr__

    def build(values: dict[str, Any]) -> Any:
        fields_set = set(values)
        for name, make in defaults:
            if name not in values:
                values[name] = make()
        obj = new(model)
        set_attr(obj, "__dict__", values)
        set_attr(obj, "__pydantic_fields_set__", fields_set)
        set_attr(obj, "__pydantic_extra__", None)
        set_attr(obj, "__pydantic_private__", copy.deepcopy(private) if private else None)
        return obj

    return build


_IMMUTABLE = (str, int, float, bool, bytes, frozenset, tuple, type(None), dt.date)


def missing_factory(info: FieldInfo, codec: FieldCodec) -> Callable[[], Any] | None:
    """The value of a field its stored item lacks: its default, or an empty set; else None."""
    if info.default_factory is not None:
        factory = info.default_factory
        return factory  # type: ignore[return-value]
    if not info.is_required():
        default = info.default
        if isinstance(default, _IMMUTABLE):
            return lambda: default
        return lambda: copy.deepcopy(default)
    if codec.wire_type in ("SS", "NS", "BS"):
        if codec.custom is not None:
            empty = codec.custom.decode
            return lambda: empty(set())
        return frozenset if get_origin(codec.python_type) is frozenset else set
    return None


# ---------------------------------------------------------------- dynamic (Any, unions)


def _dynamic_encode(value: Any) -> Wire | None:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": check_text(value.value if isinstance(value, enum.Enum) else value)}
    if isinstance(value, int | float | Decimal):
        return {"N": number_text(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": b64_text(value)}
    if isinstance(value, uuid.UUID):
        return {"S": str(value)}
    if isinstance(value, dt.datetime):
        return {"S": _utc_text(value)}
    if isinstance(value, dt.date):
        return {"S": value.isoformat()}
    if isinstance(value, set | frozenset):
        if not value:
            return None
        members = [_dynamic_encode(v) for v in value]
        tags = {next(iter(m)) for m in members if m}
        if len(tags) != 1 or not tags <= {"S", "N", "B"}:
            raise CodecError(f"mixed set: members of DynamoDB types {sorted(tags)}")
        tag = tags.pop()
        return {tag + "S": [m[tag] for m in members if m]}
    if isinstance(value, list | tuple):
        return {"L": [_dynamic_encode(v) or {"NULL": True} for v in value]}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            _check_map_key(k)
            out[k] = _dynamic_encode(v) or {"NULL": True}
        return {"M": out}
    if isinstance(value, BaseModel):
        return _dynamic_encode(value.model_dump(by_alias=True, exclude_none=True))
    if isinstance(value, enum.Enum):
        return _dynamic_encode(value.value)
    raise CodecError(f"cannot store a {type(value).__name__}")


def _dynamic_number(text: str) -> int | Decimal:
    number = Decimal(text)
    if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
        return int(text)
    return number


def _dynamic_decode(av: Wire) -> Any:
    ((tag, value),) = av.items()
    if tag == "S":
        return value
    if tag == "N":
        return _dynamic_number(value)
    if tag == "BOOL":
        return value
    if tag == "NULL":
        return None
    if tag == "B":
        return _b64(value)
    if tag == "L":
        return [_dynamic_decode(v) for v in value]
    if tag == "M":
        return {k: _dynamic_decode(v) for k, v in value.items()}
    if tag == "SS":
        return set(value)
    if tag == "NS":
        return {_dynamic_number(v) for v in value}
    if tag == "BS":
        return {_b64(v) for v in value}
    raise CodecError(f"unknown DynamoDB type {tag}")


DYNAMIC = FieldCodec("", _dynamic_encode, _dynamic_decode, Any, element=None)


def _union_codec(members: list[FieldCodec], annotation: Any) -> FieldCodec:
    by_tag: dict[str, FieldCodec] = {}
    for m in members:
        by_tag.setdefault(m.wire_type or "*", m)

    def encode(value: Any) -> Wire | None:
        errors = []
        for m in members:
            try:
                return m.encode(value)
            except CodecError as exc:
                errors.append(str(exc))
        raise CodecError("; ".join(errors))

    def decode(av: Wire) -> Any:
        tag = next(iter(av))
        codec = by_tag.get(tag) or by_tag.get("*")
        if codec is None:
            raise CodecError(f"stored type {tag} fits no member of {annotation!r}")
        return codec.decode(av)

    tags = {m.wire_type for m in members}
    wire_type = tags.pop() if len(tags) == 1 else ""
    return FieldCodec(wire_type, encode, decode, annotation)


# ---------------------------------------------------------------- custom types (Codec)


def _form_number(value: Any) -> str:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return number_text(value)
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise CodecError(f"{value!r} is not a number") from None
        return number_text(number)
    raise _WrongForm


class _WrongForm(Exception):
    """A codec's `encode` returned something that is not the form of its DynamoDB type."""


def _form_set(tag: str, member: Callable[[Any], Any]) -> Callable[[Any], Wire | None]:
    def encode(value: Any) -> Wire | None:
        if not isinstance(value, set | frozenset):
            raise _WrongForm
        if not value:
            return None  # DynamoDB cannot store an empty set: the attribute is absent
        return {tag: [member(v) for v in value]}

    return encode


def _form_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _WrongForm
    return check_text(str(value))


def _form_bytes(value: Any) -> str:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _WrongForm
    return b64_text(value)


def _form_bool(value: Any) -> Wire:
    if value is True or value is False:
        return {"BOOL": value}
    raise _WrongForm


def _form_list(value: Any) -> Wire | None:
    if not isinstance(value, list | tuple):
        raise _WrongForm
    return _dynamic_encode(list(value))


def _form_map(value: Any) -> Wire | None:
    if not isinstance(value, Mapping):
        raise _WrongForm
    return _dynamic_encode(value)


# DynamoDB type -> (the Python form as a wire value, the wire value as the Python form)
_FORMS_CODED: dict[str, tuple[Callable[[Any], Wire | None], Callable[[Wire], Any]]] = {
    "S": (lambda v: {"S": _form_text(v)}, lambda av: av["S"]),
    "N": (lambda v: {"N": _form_number(v)}, lambda av: _dynamic_number(av["N"])),
    "B": (lambda v: {"B": _form_bytes(v)}, lambda av: _b64(av["B"])),
    "BOOL": (_form_bool, lambda av: av["BOOL"]),
    "L": (_form_list, lambda av: [_dynamic_decode(v) for v in av["L"]]),
    "M": (_form_map, lambda av: {k: _dynamic_decode(v) for k, v in av["M"].items()}),
    "SS": (_form_set("SS", _form_text), lambda av: set(av["SS"])),
    "NS": (_form_set("NS", _form_number), lambda av: {_dynamic_number(v) for v in av["NS"]}),
    "BS": (_form_set("BS", _form_bytes), lambda av: {_b64(v) for v in av["BS"]}),
}

# What a model accepts as "the stored form" of a type pydantic does not know (see Codec).
_FORM_CHECKS: dict[str, Callable[[Any], bool]] = {
    "S": lambda v: isinstance(v, str),
    "N": lambda v: isinstance(v, int | Decimal) and not isinstance(v, bool),
    "B": lambda v: isinstance(v, bytes),
    "BOOL": lambda v: isinstance(v, bool),
    "L": lambda v: isinstance(v, list),
    "M": lambda v: isinstance(v, dict),
    "SS": lambda v: isinstance(v, set | frozenset),
    "NS": lambda v: isinstance(v, set | frozenset),
    "BS": lambda v: isinstance(v, set | frozenset),
}


def _custom_codec(marker: Codec[Any], annotation: Any) -> FieldCodec:
    tag = marker.dynamo_type
    if tag not in _FORMS_CODED:
        raise TypeError(
            f"Codec({tag!r}): {tag!r} is not a DynamoDB type; use one of {', '.join(DYNAMO_TYPES)}"
        )
    if not callable(marker.encode) or not callable(marker.decode):
        raise TypeError(f"Codec({tag!r}) needs callables for encode= and decode=")
    user_encode, user_decode = marker.encode, marker.decode
    to_wire, from_wire = _FORMS_CODED[tag]

    def encode(value: Any) -> Wire | None:
        try:
            form = user_encode(value)
        except Exception as exc:
            raise CodecError(
                f"Codec({tag!r}) encode raised {type(exc).__name__}: {exc} (value {value!r})"
            ) from None
        try:
            return to_wire(form)
        except _WrongForm:
            raise CodecError(
                f"Codec({tag!r}) encode returned {type(form).__name__} {form!r} for {value!r};"
                f" a {tag} attribute needs {_FORMS[tag]}"
            ) from None

    def decode(av: Wire) -> Any:
        form = from_wire(av)  # KeyError: the stored attribute has another type
        try:
            return user_decode(form)
        except Exception as exc:
            raise CodecError(
                f"Codec({tag!r}) decode raised {type(exc).__name__}: {exc} (stored {form!r})"
            ) from None

    element = {"SS": STR, "NS": DECIMAL, "BS": BYTES, "L": DYNAMIC, "M": DYNAMIC}.get(tag)
    return FieldCodec(tag, encode, decode, annotation, element=element, custom=marker)


# ---------------------------------------------------------------- compile


def _strip_annotated(annotation: Any, metadata: list[Any]) -> Any:
    while get_origin(annotation) is typing.Annotated:
        args = get_args(annotation)
        metadata.extend(args[1:])
        annotation = args[0]
    return annotation


def unwrap_optional(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """Strip Annotated and `| None`: (inner type, nullable, metadata found on the way)."""
    metadata: list[Any] = []
    annotation = _strip_annotated(annotation, metadata)
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        if len(args) == 1:
            inner = _strip_annotated(args[0], metadata)
            return inner, nullable, metadata
        return annotation, nullable, metadata
    return annotation, False, metadata


def compile_codec(
    annotation: Any, metadata: list[Any] | None = None, seen: dict[Any, FieldCodec] | None = None
) -> FieldCodec:
    """Compile the codec for a field type; TypeError says why a type cannot be stored."""
    found: list[Any] = list(metadata or [])
    inner, _nullable, extra = unwrap_optional(annotation)
    found.extend(extra)
    customs = [m for m in found if isinstance(m, Codec)]
    if customs:
        if len(customs) > 1:
            raise TypeError(f"a field takes one Codec, not {len(customs)}")
        if any(isinstance(m, Timestamp) for m in found):
            raise TypeError("Timestamp() and Codec() cannot mark the same field")
        return _custom_codec(customs[0], inner)
    if any(isinstance(m, Timestamp) for m in found):
        if inner is not dt.datetime:
            raise TypeError("Timestamp() marks a datetime field")
        return TIMESTAMP
    return _codec_for(inner, seen if seen is not None else {})


def _codec_for(annotation: Any, seen: dict[Any, FieldCodec]) -> FieldCodec:
    if annotation is Any or annotation is object:
        return DYNAMIC
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return compile_codec(annotation, None, seen)
    if origin is Literal:
        return _literal_codec(annotation)
    if origin is Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return compile_codec(members[0], None, seen)
        return _union_codec([compile_codec(a, None, seen) for a in members], annotation)
    if origin in (set, frozenset, typing.AbstractSet, typing.MutableSet):
        if not args:
            raise TypeError("a set needs its member type, e.g. set[str]")
        return _set_codec(compile_codec(args[0], None, seen), annotation, origin is frozenset)
    if origin in (list, typing.Sequence, typing.MutableSequence) or (
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    ):
        element = compile_codec(args[0], None, seen) if args else DYNAMIC
        return _list_codec(element, annotation, origin is tuple)
    if origin is tuple:
        raise TypeError("only tuple[T, ...] is supported (stored as a list)")
    if origin in (dict, typing.Mapping, typing.MutableMapping):
        if args and args[0] is not str:
            raise TypeError("map keys must be str: use dict[str, T]")
        element = compile_codec(args[1], None, seen) if args else DYNAMIC
        return _dict_codec(element, annotation)
    if annotation in (list, tuple):
        return _list_codec(DYNAMIC, annotation, annotation is tuple)
    if annotation is dict:
        return _dict_codec(DYNAMIC, annotation)
    if annotation in (set, frozenset):
        raise TypeError("a set needs its member type, e.g. set[str]")
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _enum_codec(annotation)
        if annotation is bool:
            return BOOL
        if annotation is str:
            return STR
        if annotation in (int, float, Decimal):
            return _number_for(annotation)
        if annotation is bytes:
            return BYTES
        if annotation is uuid.UUID:
            return UUID_
        if annotation is dt.datetime:
            return DATETIME
        if annotation is dt.date:
            return DATE
        if issubclass(annotation, BaseModel):
            return model_codec(annotation, seen)
        if issubclass(annotation, str):
            return STR
        if issubclass(annotation, int):
            return INT
    raise TypeError(f"{annotation!r} has no DynamoDB type")
