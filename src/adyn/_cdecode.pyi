"""Types of the compiled whole-item decoder (see _cdecode.c and _decoder.native_plan)."""

from typing import Any

VERSION: int

class Decoder:
    def __init__(self, plan: tuple[Any, ...], /) -> None: ...
    def __call__(self, item: Any, /) -> Any: ...
    def page(self, items: list[Any], consume: bool = ..., /) -> list[Any]: ...
