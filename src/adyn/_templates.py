"""Key templates (`Meta.keys`): key attributes computed from a model's own fields.

A template such as `"ORDER#{placed_at}#{id}"` is compiled once per model into literal text and
slots. Rendering uses the text each field's codec stores (a datetime's ISO UTC text, a UUID's
text, a number's exact text), then the slot's format spec (`{n:08d}`). Every rendered key must
read back into the same field values (`parse`): a component that contains the text separating
it from the next one, or a format spec whose text does not decode to the value, is refused when
the key is rendered, so stored keys can always be taken apart again.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .codecs import CodecError
from .errors import InvalidItem, InvalidModel, InvalidQuery

if TYPE_CHECKING:
    from .schema import FieldSpec

__all__ = ["SLOW", "KeyTemplate", "compile_templates"]

Wire = dict[str, Any]

_COMPONENT_TYPES = frozenset({"S", "N"})
_MISSING = object()


@dataclass(frozen=True, eq=False)
class Slot:
    """One `{field:spec}` of a template and the literal text that follows it."""

    field: FieldSpec
    spec: str
    after: str


class KeyTemplate:
    """The template of one key attribute: `head`, then each slot followed by its text."""

    __slots__ = ("attr", "components", "default", "fast", "head", "model", "slots", "text")

    def __init__(self, model: str, attr: FieldSpec, text: str, head: str, slots: list[Slot]):
        self.model = model
        self.attr = attr
        self.text = text
        self.head = head
        self.slots = tuple(slots)
        self.components = tuple(s.field for s in slots)
        self.fast = _compile_fast(head, self.slots)
        # the attribute's declared default (e.g. "" for type checkers): never "set by hand"
        self.default: Any = None

    def __repr__(self) -> str:
        return f"<KeyTemplate {self.model}.{self.attr.name} = {self.text!r}>"

    # ------------------------------------------------------------ render

    def _component(self, slot: Slot, value: Any, obj: Any, last: bool) -> str:
        field = slot.field
        try:
            wire = field.codec.encode(value)
        except CodecError as exc:
            raise InvalidItem(self.model, field.name, str(exc), obj) from None
        if wire is None or len(wire) != 1:
            raise InvalidItem(self.model, field.name, "has no text for a key template", obj)
        ((tag, raw),) = wire.items()
        return self._text(slot, tag, raw, obj, last)

    def _text(self, slot: Slot, tag: str, raw: str, obj: Any, last: bool) -> str:
        """A component's text in the key: the codec's text, through the slot's format spec."""
        field = slot.field
        text = raw
        if slot.spec:
            try:
                text = format(_number(raw) if tag == "N" else raw, slot.spec)
                back = field.codec.encode(field.codec.decode({tag: text}))
            except (ValueError, TypeError, ArithmeticError, CodecError, KeyError):
                back = None
            if back != {tag: raw}:
                raise InvalidItem(
                    self.model,
                    field.name,
                    f"{{{field.name}:{slot.spec}}} in the template of {self.attr.name} makes "
                    f"{text!r} of {raw!r}, which does not read back as the same value",
                    obj,
                )
        after = slot.after
        if after and not last and (after in text if len(after) == 1 else _overlaps(text, after)):
            raise InvalidItem(
                self.model,
                field.name,
                f"{text!r} contains {after!r}, which separates it from the next part of "
                f"{self.attr.name}'s template {self.text!r}; the key could not be read back",
                obj,
            )
        return text

    def render(self, values: Mapping[str, Any], obj: Any = None) -> str | None:
        """The key text from `{field name: value}`; None if a component is None or unset."""
        parts = [self.head]
        final = len(self.slots) - 1
        for i, slot in enumerate(self.slots):
            value = values.get(slot.field.name)
            if value is None:
                return None
            parts.append(self._component(slot, value, obj, i == final))
            parts.append(slot.after)
        return "".join(parts)

    def render_wires(self, wires: Mapping[str, Wire | None], obj: Any = None) -> str | None:
        """The key text from the encoded fields `{field name: wire value}` (a save encodes each
        field once; the templates reuse that text). None if a component is None."""
        parts = [self.head]
        final = len(self.slots) - 1
        for i, slot in enumerate(self.slots):
            av = wires.get(slot.field.name)
            if av is None:
                return None
            tag = slot.field.codec.wire_type
            raw = av.get(tag)
            if raw is None:
                raise InvalidItem(
                    self.model, slot.field.name, "has no text for a key template", obj
                )
            after = slot.after
            separated = after and i != final
            if slot.spec or (
                separated and (after in raw if len(after) == 1 else _overlaps(raw, after))
            ):
                parts.append(self._text(slot, tag, raw, obj, i == final))  # formats, or raises
            else:
                parts.append(raw)  # the common case: the codec's text as it is
            parts.append(after)
        return "".join(parts)

    def prefix(self, values: Mapping[str, Any], where: str) -> tuple[str, bool]:
        """A query's key text: up to the first component not given; True when complete.

        A component given after one that is missing cannot narrow a prefix: InvalidQuery.
        """
        parts = [self.head]
        final = len(self.slots) - 1
        for i, slot in enumerate(self.slots):
            name = slot.field.name
            if name not in values:
                later = [s.field.name for s in self.slots[i + 1 :] if s.field.name in values]
                if later:
                    raise InvalidQuery(
                        f"{where}: {later[0]} is given but {name}, before it in the template "
                        f"of {self.attr.name} ({self.text!r}), is not; a key condition can "
                        "only match the text up to the first missing field"
                    )
                return "".join(parts), False
            value = values[name]
            if value is None:
                raise InvalidQuery(f"{where}: {name} is None; a key template needs a value")
            try:
                parts.append(self._component(slot, value, None, i == final))
            except InvalidItem as exc:
                raise InvalidQuery(f"{where}: {exc}") from None
            parts.append(slot.after)
        return "".join(parts), True

    # ------------------------------------------------------------ parse

    def parse(self, text: str) -> dict[str, Any] | None:
        """The component values of a rendered key; None if `text` does not fit the template."""
        if not text.startswith(self.head):
            return None
        rest = text[len(self.head) :]
        values: dict[str, Any] = {}
        final = len(self.slots) - 1
        for i, slot in enumerate(self.slots):
            if i == final:
                if not rest.endswith(slot.after):
                    return None
                piece = rest[: len(rest) - len(slot.after)]
                rest = ""
            else:
                at = rest.find(slot.after)
                if at < 0:
                    return None
                piece, rest = rest[:at], rest[at + len(slot.after) :]
            field = slot.field
            tag = field.codec.wire_type
            try:
                value = field.codec.decode({tag: piece})
            except Exception:
                return None
            previous = values.get(field.name, _MISSING)
            if previous is not _MISSING and previous != value:
                return None
            values[field.name] = value
        if rest:
            return None
        return values


SLOW = object()  # what a fast renderer answers when the careful `render_wires` must decide
_UNSET = object()


def _compile_fast(head: str, slots: tuple[Slot, ...]) -> Callable[[Mapping[str, Any]], Any]:
    """Generate the straight-line renderer of the common case (saves are a hot path).

    `fast(wires)` gives the key text, None when a component is None (a sparse index key), or
    `SLOW` for anything else (a component unset, a format spec, a component holding the text
    that follows it): `render_wires` then decides, formats, or names the problem.
    """
    namespace: dict[str, Any] = {"SLOW": SLOW, "UNSET": _UNSET, "overlaps": _overlaps}
    lines = ["def fast(wires):", "    get = wires.get"]
    pieces = [repr(head)] if head else []
    final = len(slots) - 1
    for i, slot in enumerate(slots):
        if slot.spec:
            return lambda wires: SLOW
        tag = slot.field.codec.wire_type
        lines += [
            f"    av = get({slot.field.name!r}, UNSET)",
            "    if av is UNSET:",
            "        return SLOW",
            "    if av is None:",
            "        return None",
            f"    t{i} = av.get({tag!r})",
            f"    if t{i} is None:",
            "        return SLOW",
        ]
        after = slot.after
        if after and i != final:
            test = f"{after!r} in t{i}" if len(after) == 1 else f"overlaps(t{i}, {after!r})"
            lines += [f"    if {test}:", "        return SLOW"]
        pieces.append(f"t{i}")
        if after:
            pieces.append(repr(after))
    lines.append(f"    return {' + '.join(pieces) or repr('')}")
    # repr() of a str is an inert literal: no field name or template text becomes code
    exec("\n".join(lines), namespace)
    function: Callable[[Mapping[str, Any]], Any] = namespace["fast"]
    return function


def _overlaps(text: str, after: str) -> bool:
    """True when `after` starts anywhere in `text + after` before its end: reading the key
    back would cut the component short."""
    return (text + after).find(after) != len(text)


def _number(text: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def compile_templates(
    model: str,
    keys: Any,
    fields: Mapping[str, FieldSpec],
    key_attributes: Mapping[str, FieldSpec],
) -> dict[str, KeyTemplate]:
    """`Meta.keys` checked against the model: `{key attribute field name: template}`.

    `key_attributes`: the fields that are table or index keys (by field and by stored name).
    InvalidModel names the model and the field for every rule broken.
    """
    if not isinstance(keys, Mapping):
        raise InvalidModel(model, None, "Meta.keys maps key attribute names to templates")
    templates: dict[str, KeyTemplate] = {}
    for name, text in keys.items():
        attr = key_attributes.get(name) if isinstance(name, str) else None
        if attr is None:
            if isinstance(name, str) and name in fields:
                raise InvalidModel(
                    model, name, "Meta.keys names it, but it is not a table or index key"
                )
            raise InvalidModel(
                model, str(name), "Meta.keys names no key attribute (table or index key) of it"
            )
        if attr.codec.wire_type != "S":
            raise InvalidModel(model, attr.name, "a templated key attribute must be stored as S")
        if not isinstance(text, str):
            raise InvalidModel(model, attr.name, f"its key template is {text!r}, not a str")
        if attr.name in templates:
            raise InvalidModel(model, attr.name, "Meta.keys gives it two templates")
        templates[attr.name] = _compile(model, attr, text, fields)
    for template in templates.values():
        for component in template.components:
            if component.name in templates:
                raise InvalidModel(
                    model,
                    component.name,
                    f"the template of {template.attr.name} uses it, but it is itself templated",
                )
    return templates


def _compile(
    model: str,
    attr: FieldSpec,
    text: str,
    fields: Mapping[str, FieldSpec],
) -> KeyTemplate:
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise InvalidModel(model, attr.name, f"key template {text!r}: {exc}") from None
    head = ""
    slots: list[Slot] = []
    pending: tuple[FieldSpec, str] | None = None
    for literal, name, spec, conversion in pieces:
        if pending is None:
            head += literal
        else:
            if not literal:
                raise InvalidModel(
                    model,
                    attr.name,
                    f"key template {text!r}: two fields with no text between them could not "
                    "be told apart again",
                )
            slots.append(Slot(pending[0], pending[1], literal))
            pending = None
        if name is None:
            continue
        if conversion:
            raise InvalidModel(model, attr.name, f"key template {text!r}: no !{conversion}")
        spec_text = spec or ""
        if "{" in spec_text:
            raise InvalidModel(model, attr.name, f"key template {text!r}: nested fields")
        field = fields.get(name)
        if field is None:
            raise InvalidModel(
                model, name or "{}", f"the key template of {attr.name} ({text!r}) names no field"
            )
        if field.codec.wire_type not in _COMPONENT_TYPES:
            raise InvalidModel(
                model,
                name,
                f"used in the key template of {attr.name}, but stored as "
                f"{field.codec.wire_type or 'a dynamic type'}; templates take fields stored "
                "as S or N",
            )
        if field.name == attr.name:
            raise InvalidModel(model, name, "a key template cannot use its own attribute")
        pending = (field, spec_text)
    if pending is not None:
        slots.append(Slot(pending[0], pending[1], ""))
    return KeyTemplate(model, attr, text, head, slots)
