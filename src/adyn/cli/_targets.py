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
    """The one model a spec names: a module must hold exactly one, or one shared table's
    table model and its entities (which names the table model: every entity of the table)."""
    models = load_models([spec])
    owners = {table_model(m) for m in models}
    if len(models) > 1 and len(owners) == 1:
        (owner,) = owners
        if owner in models:
            return owner
        names = ", ".join(m.__name__ for m in models)
        raise CommandError(
            f"{spec!r} holds the entities {names} of the abstract table model "
            f"{owner.__name__}; name one, as {spec}:{models[0].__name__}"
        )
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


def collapse_family(models: list[type[Model]]) -> list[type[Model]]:
    """A shared table's table model in place of itself and its entities (a module holding
    them all names the table model); any other list as it is."""
    owners = {table_model(m) for m in models}
    if len(models) > 1 and len(owners) == 1:
        (owner,) = owners
        if owner in models:
            return [owner]
    return models


def table_model(model: type[Model]) -> type[Model]:
    """The table model of a shared table's entity (the model itself otherwise)."""
    from adyn.schema import schema_of

    family = schema_of(model).family
    return model if family is None else family.owner


def entities(model: type[Model]) -> list[type[Model]]:
    """The entities a shared table's table model stands for (its own kind, for an entity:
    itself and its subclasses), by class name; empty for a model of its own table."""
    from adyn.schema import schema_of

    schema = schema_of(model)
    if schema.family is None:
        return []
    found = {s.model for s in schema.family.by_name.values() if issubclass(s.model, model)}
    return sorted(found, key=lambda m: m.__name__)


def describe(models: Sequence[type[Model]]) -> str:
    """The models of one table as the commands name them: `Product`, or for a shared table
    `Shop: Customer, Order` (the table model and the entities bound with it)."""
    from adyn.schema import schema_of

    parts: list[str] = []
    for model in models:
        family = schema_of(model).family
        if family is None:
            text = model.__name__
        else:
            names = sorted(s.model.__name__ for s in family.by_name.values())
            text = f"{family.owner.__name__}: {', '.join(names)}"
        if text not in parts:
            parts.append(text)
    return "; ".join(parts)
