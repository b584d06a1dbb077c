"""Generate a model's item decoder once: straight-line code with common scalars inlined.

Decoding a page of items is the hottest path of the library. A loop over fields that calls one
codec function per attribute spends most of its time on the calls; the generated function reads
each attribute once and converts the common scalar types inline. It is only the fast way: any
exception sends the item through the careful per-field loop, which handles the rare forms
(numbers like "1E+2" in an int field, NULL attributes) and names the field in its error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .codecs import INLINE_NAMES, FieldCodec

Wire = dict[str, Any]


def compile_values_decoder(
    fields: Sequence[tuple[str, str, FieldCodec]],
) -> Callable[[Wire], dict[str, Any]]:
    """`(field name, wire name, codec)` -> a function from a wire item to `{field: value}`."""
    namespace: dict[str, Any] = dict(INLINE_NAMES)
    lines = ["def values_of(item):", "    values = {}", "    get = item.get"]
    for i, (name, wire, codec) in enumerate(fields):
        if codec.inline is not None:
            expression = codec.inline.replace("@", "av")
        else:
            namespace[f"dec{i}"] = codec.decode
            expression = f"dec{i}(av)"
        # repr() of a str is a valid, inert literal: no name or wire text becomes code
        lines += [
            f"    av = get({wire!r})",
            "    if av is not None:",
            f"        values[{name!r}] = {expression}",
        ]
    lines.append("    return values")
    exec("\n".join(lines), namespace)
    function: Callable[[Wire], dict[str, Any]] = namespace["values_of"]
    return function
