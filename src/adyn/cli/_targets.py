"""Finding the user's models and functions from `package.module:Name` on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._common import CommandError

if TYPE_CHECKING:
    from adyn import Model


def _importable_here() -> None:
    # As `python -m` does: the project in the current folder is importable.
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)


def _module(name: str, spec: str) -> ModuleType:
    _importable_here()
    if not name:
        raise CommandError(f"{spec!r}: name a module, as package.module:Name")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
            raise CommandError(
                f"{spec!r}: there is no module {name!r} (from {os.getcwd()})"
            ) from None
        raise CommandError(f"{spec!r}: importing {name} failed: {exc}") from None
    except Exception as exc:
        raise CommandError(
            f"{spec!r}: importing {name} failed: {type(exc).__name__}: {exc}"
        ) from None


def _attribute(module: ModuleType, path: str, spec: str) -> Any:
    value: Any = module
    for part in path.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CommandError(f"{spec!r}: {module.__name__} has no {path!r}") from None
    return value


def _is_concrete(value: Any) -> bool:
    from adyn import Model
    from adyn.schema import schema_of

    if not (isinstance(value, type) and issubclass(value, Model)) or value is Model:
        return False
    try:
        schema_of(value)
    except TypeError:
        return False
    return True


def load_models(specs: Sequence[str]) -> list[type[Model]]:
    """Every model the specs name, in order, each once."""
    found: list[type[Model]] = []
    for spec in specs:
        name, colon, path = spec.partition(":")
        module = _module(name, spec)
        if colon:
            value = _attribute(module, path, spec)
            if not _is_concrete(value):
                raise CommandError(
                    f"{spec!r} is {_describe(value)}, not a concrete adyn Model "
                    "(a Model subclass that is not abstract)"
                )
            models = [value]
        else:
            models = sorted(
                {v for v in vars(module).values() if _is_concrete(v)}, key=lambda m: m.__name__
            )
            if not models:
                raise CommandError(f"module {name!r} holds no concrete adyn Model")
        found.extend(m for m in models if m not in found)
    return found


def load_model(spec: str) -> type[Model]:
    """The one model a spec names (a module must hold exactly one)."""
    models = load_models([spec])
    if len(models) > 1:
        names = ", ".join(m.__name__ for m in models)
        raise CommandError(
            f"{spec!r} holds several models ({names}); name one, as {spec}:{models[0].__name__}"
        )
    return models[0]


def load_function(spec: str) -> Callable[[Any], Any]:
    """The function `package.module:function` names."""
    name, colon, path = spec.partition(":")
    if not colon or not path:
        raise CommandError(f"{spec!r}: name a function as package.module:function")
    value = _attribute(_module(name, spec), path, spec)
    if not callable(value) or isinstance(value, type):
        raise CommandError(f"{spec!r} is {_describe(value)}, not a function")
    function: Callable[[Any], Any] = value
    return function


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return f"a {type(value).__name__}"
