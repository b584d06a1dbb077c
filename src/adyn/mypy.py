"""adyn's mypy plugin: model attributes as typed paths, indexes, key-only objects.

Enable it after pydantic's own plugin::

    [tool.mypy]
    plugins = ["pydantic.mypy", "adyn.mypy"]

What it does (mypy gives each hook to the first plugin that claims it, so this plugin only
claims hooks pydantic's plugin leaves alone):

- `Post.views` read on a `Model` class is the field's typed path (`adyn.paths`), chosen by the
  same overloads as `adyn.F`, so the two can never disagree: `Post.views > 3` is a `Condition`,
  `Post.views.add(1)` an `Action`, `Post.views.begins_with("a")` a type error. Nested models:
  `Post.address.city` and `Post.address["city"]` are the nested field's path; an unknown field
  is an error naming the model.
- `by_user = GlobalIndex(...)` in a model body is a class variable, not an untyped field
  (pydantic's plugin would say "Untyped fields disallowed"); read on the class it is a
  `GlobalIndex[Post]` (the descriptor in `adyn.model` says so), so index queries are typed.
- `Post.model_construct(forum=..., id=...)`, the documented way to build an object from its
  key, takes any subset of the fields (pydantic's plugin asks for every required one).
- An entity's constructor does not ask for the key attributes its `Meta.keys` computes.
- Where adyn takes a condition (`key=`, `filter=`, `condition=`, `&`, `|`), a plain `bool` is an
  error: with the plugin a comparison is a `Condition`, so a `bool` there is a bug such as
  `post.views > 3` (an object's value) instead of `Post.views > 3`. Without the plugin those
  parameters accept `bool`, the type other checkers give a comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from mypy.checker import TypeChecker
from mypy.errorcodes import ATTR_DEFINED
from mypy.expandtype import expand_type_by_instance
from mypy.nodes import (
    ARG_NAMED,
    ARG_NAMED_OPT,
    ARG_POS,
    MDEF,
    AssignmentStmt,
    CallExpr,
    ClassDef,
    Context,
    DictExpr,
    Expression,
    MemberExpr,
    MypyFile,
    NameExpr,
    StrExpr,
    SymbolTableNode,
    TempNode,
    TypeInfo,
    Var,
)
from mypy.plugin import (
    AttributeContext,
    CheckerPluginInterface,
    ClassDefContext,
    FunctionSigContext,
    MethodContext,
    MethodSigContext,
    Plugin,
    ReportConfigContext,
)
from mypy.typeops import make_simplified_union
from mypy.types import (
    AnyType,
    CallableType,
    FunctionLike,
    Instance,
    Type,
    TypeOfAny,
    UnionType,
    get_proper_type,
)

__all__ = ["plugin"]

MODEL = "adyn.model.Model"
INDEX = "adyn.model._Index"
CONDITION = "adyn.expressions.Condition"
PATHS = "adyn.paths"
F_FUNCTION = "adyn.paths.F"
MODEL_PATH = "adyn.paths.ModelPath"
DYNAMIC_PATH = "adyn.paths.DynamicPath"
PYDANTIC_METADATA = "pydantic-mypy-metadata"
PLUGIN_VERSION = 1  # bump when what the plugin writes into mypy's cache changes


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point: the plugin class."""
    return AdynPlugin


class AdynPlugin(Plugin):
    """Types adyn's attribute paths, indexes and key-only constructors (see the module doc)."""

    def report_config_data(self, ctx: ReportConfigContext) -> int:
        return PLUGIN_VERSION

    def get_additional_deps(self, file: MypyFile) -> list[tuple[int, str, int]]:
        # The path types come from adyn.paths: load it wherever adyn is used, even when the
        # module never imports it (10 is mypy's PRI_MED, the priority of a plain import).
        if file.fullname.split(".")[0] == "adyn":
            return []
        for imported in file.imports:
            ids = getattr(imported, "ids", None) or [(getattr(imported, "id", ""), None)]
            if any(str(name).split(".")[0] == "adyn" for name, _ in ids):
                return [(10, PATHS, -1)]
        return []

    # ---------------------------------------------------------------- semantic analysis

    def get_customize_class_mro_hook(
        self, fullname: str
    ) -> Callable[[ClassDefContext], None] | None:
        # Called for every class before its body is analysed, the only moment that comes
        # before pydantic's plugin looks at the body (it runs right after the analysis).
        info = self._type_info(fullname)
        if info is not None and not info.has_base(MODEL):
            return None
        return _declare_indexes

    # ---------------------------------------------------------------- type checking

    def get_class_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        owner, _, name = fullname.rpartition(".")
        info = self._type_info(owner)
        if info is None or not info.has_base(MODEL) or info.fullname == MODEL:
            return None
        if _find_field(info, name) is None:
            return None
        return self._field_path

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        owner, _, name = fullname.rpartition(".")
        if owner == MODEL_PATH:
            return partial(self._nested_attribute, name)
        return None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        if fullname == f"{MODEL_PATH}.__getitem__":
            return self._nested_item
        return None

    def get_function_signature_hook(
        self, fullname: str
    ) -> Callable[[FunctionSigContext], FunctionLike] | None:
        # `Customer(...)`: the key attributes its Meta.keys computes are not required
        info = self._type_info(fullname)
        if info is None or not info.has_base(MODEL):
            return None
        templated = _templated_keys(info)
        return partial(_keys_optional, templated) if templated else None

    def get_method_signature_hook(
        self, fullname: str
    ) -> Callable[[MethodSigContext], FunctionLike] | None:
        owner, _, name = fullname.rpartition(".")
        if name == "model_construct":
            info = self._type_info(owner)
            if info is not None and info.has_base(MODEL):
                return _fields_optional
            return None
        if fullname.split(".")[0] == "adyn":
            return _conditions_only
        return None

    # ---------------------------------------------------------------- hooks

    def _field_path(self, ctx: AttributeContext) -> Type:
        if getattr(ctx, "is_lvalue", False):  # an assignment to the class attribute (mypy >= 1.14)
            return ctx.default_attr_type
        return self._path_of(ctx.api, ctx.default_attr_type, ctx.context)

    def _nested_attribute(self, name: str, ctx: AttributeContext) -> Type:
        return self._nested_field(ctx.api, ctx.type, name, ctx.context, ctx.default_attr_type)

    def _nested_item(self, ctx: MethodContext) -> Type:
        if ctx.args and len(ctx.args[0]) == 1 and isinstance(ctx.args[0][0], StrExpr):
            name = ctx.args[0][0].value
            return self._nested_field(ctx.api, ctx.type, name, ctx.context, ctx.default_return_type)
        return ctx.default_return_type

    def _nested_field(
        self,
        api: CheckerPluginInterface,
        path_type: Type,
        name: str,
        context: Context,
        default: Type,
    ) -> Type:
        path = get_proper_type(path_type)
        if not isinstance(path, Instance) or not path.args:
            return default
        model = get_proper_type(path.args[0])
        if not isinstance(model, Instance):
            return default
        field = _find_field(model.type, name)
        if field is None:
            fields = ", ".join(sorted(_field_names(model.type))) or "none"
            api.fail(
                f'"{model.type.name}" has no field "{name}" (its fields: {fields})',
                context,
                code=ATTR_DEFINED,
            )
            return AnyType(TypeOfAny.from_error)
        if field.type is None:
            return default
        return self._path_of(api, expand_type_by_instance(field.type, model), context)

    def _path_of(self, api: CheckerPluginInterface, value_type: Type, context: Context) -> Type:
        """The path type `adyn.F` gives a value of `value_type`: F's overloads decide."""
        dynamic = self._type_info(DYNAMIC_PATH)
        if isinstance(get_proper_type(value_type), AnyType) and dynamic is not None:
            return Instance(dynamic, [])
        f = self.lookup_fully_qualified(F_FUNCTION)
        if f is None or f.type is None or not isinstance(api, TypeChecker):
            return value_type  # adyn.paths is not part of this build: leave the type alone
        with api.msg.filter_errors():
            result, _ = api.expr_checker.check_call(
                f.type, [TempNode(value_type, context=context)], [ARG_POS], context
            )
        return result

    def _type_info(self, fullname: str) -> TypeInfo | None:
        sym = self.lookup_fully_qualified(fullname)
        return sym.node if sym is not None and isinstance(sym.node, TypeInfo) else None


# -------------------------------------------------------------------- fields


def _pydantic_fields(info: TypeInfo) -> set[str] | None:
    """The field names pydantic's plugin recorded for a class and its bases (None: no record)."""
    found: set[str] | None = None
    for base in info.mro:
        metadata = base.metadata.get(PYDANTIC_METADATA)
        if metadata is not None:
            found = (found or set()) | set(metadata.get("fields", {}))
    return found


def _find_field(info: TypeInfo, name: str) -> Var | None:
    """The Var of a model field named `name`, if it is one."""
    sym = info.get(name)
    if sym is None or not isinstance(sym.node, Var) or sym.node.is_classvar:
        return None
    recorded = _pydantic_fields(info)
    if recorded is not None:
        return sym.node if name in recorded else None
    # Without pydantic's plugin: an annotated, public class attribute of a model class.
    var = sym.node
    if name.startswith("_") or var.is_inferred or var.info.fullname in (MODEL, _BASE_MODEL):
        return None
    return var


def _field_names(info: TypeInfo) -> set[str]:
    recorded = _pydantic_fields(info)
    if recorded is not None:
        return recorded
    names = set()
    for base in info.mro:
        for name in base.names:
            if _find_field(info, name) is not None:
                names.add(name)
    return names


_BASE_MODEL = "pydantic.main.BaseModel"


# -------------------------------------------------------------------- indexes


def _declare_indexes(ctx: ClassDefContext) -> None:
    """Make `by_user = GlobalIndex(...)` a typed class variable before pydantic's plugin runs.

    pydantic's plugin reports every unannotated assignment in a model body unless the name is
    already a class variable, so the variable is declared here: `ClassVar[GlobalIndex[Any]]`.
    The statement is marked as annotated, which is what pydantic's plugin looks at.
    """
    info = ctx.cls.info
    if not info.has_base(MODEL):
        return
    _record_templated_keys(ctx.cls)
    for stmt in ctx.cls.defs.body:
        if not (
            isinstance(stmt, AssignmentStmt)
            and stmt.type is None
            and len(stmt.lvalues) == 1
            and isinstance(stmt.lvalues[0], NameExpr)
            and isinstance(stmt.rvalue, CallExpr)
        ):
            continue
        index = _index_class(ctx, stmt.rvalue.callee)
        if index is None:
            continue
        name = stmt.lvalues[0].name
        existing = info.names.get(name)
        if existing is None:
            var = Var(name, Instance(index, [AnyType(TypeOfAny.special_form)]))
            var.info = info
            var._fullname = f"{info.fullname}.{name}"
            var.is_classvar = True
            info.names[name] = SymbolTableNode(MDEF, var)
        elif isinstance(existing.node, Var):  # analysed once already (a deferred pass)
            existing.node.is_classvar = True
        else:
            continue
        stmt.new_syntax = True


def _index_class(ctx: ClassDefContext, callee: Expression) -> TypeInfo | None:
    name = _dotted(callee)
    if name is None:
        return None
    sym = ctx.api.lookup_qualified(name, callee, suppress_errors=True)
    if sym is None or not isinstance(sym.node, TypeInfo) or not sym.node.has_base(INDEX):
        return None
    return sym.node


def _dotted(expr: Expression) -> str | None:
    if isinstance(expr, NameExpr):
        return expr.name
    if isinstance(expr, MemberExpr):
        base = _dotted(expr.expr)
        return None if base is None else f"{base}.{expr.name}"
    return None


# -------------------------------------------------------------------- signatures


def _record_templated_keys(cls: ClassDef) -> None:
    """Note the key attributes `class Meta: keys = {...}` computes (kept in mypy's cache)."""
    for stmt in cls.defs.body:
        if not (isinstance(stmt, ClassDef) and stmt.name == "Meta"):
            continue
        for inner in stmt.defs.body:
            if (
                isinstance(inner, AssignmentStmt)
                and any(isinstance(lv, NameExpr) and lv.name == "keys" for lv in inner.lvalues)
                and isinstance(inner.rvalue, DictExpr)
            ):
                names = [k.value for k, _ in inner.rvalue.items if isinstance(k, StrExpr)]
                cls.info.metadata.setdefault("adyn", {})["keys"] = sorted(names)


def _templated_keys(info: TypeInfo) -> frozenset[str]:
    """The templated key attributes of a model: its nearest Meta.keys (own or inherited)."""
    for klass in info.mro:
        keys = klass.metadata.get("adyn", {}).get("keys")
        if keys is not None:
            return frozenset(keys)
    return frozenset()


def _keys_optional(names: frozenset[str], ctx: FunctionSigContext) -> FunctionLike:
    """An entity's constructor: its templated key attributes are computed on save."""
    signature = ctx.default_signature
    if not isinstance(signature, CallableType):
        return signature
    kinds = [
        ARG_NAMED_OPT if kind == ARG_NAMED and name in names else kind
        for kind, name in zip(signature.arg_kinds, signature.arg_names, strict=True)
    ]
    return signature.copy_modified(arg_kinds=kinds)


def _fields_optional(ctx: MethodSigContext) -> FunctionLike:
    """`Model.model_construct(...)` builds an object without validation: any fields will do."""
    signature = ctx.default_signature
    kinds = [ARG_NAMED_OPT if kind == ARG_NAMED else kind for kind in signature.arg_kinds]
    return signature.copy_modified(arg_kinds=kinds)


def _conditions_only(ctx: MethodSigContext) -> FunctionLike:
    """Drop `bool` from `Condition | bool` parameters: with the plugin, comparisons are
    Conditions, so a bool there is a mistake."""
    signature = ctx.default_signature
    types = [_without_bool(t) for t in signature.arg_types]
    if types == signature.arg_types:
        return signature
    return signature.copy_modified(arg_types=types)


def _without_bool(typ: Type) -> Type:
    proper = get_proper_type(typ)
    if not isinstance(proper, UnionType):
        return typ
    items = [get_proper_type(item) for item in proper.items]
    names = {item.type.fullname for item in items if isinstance(item, Instance)}
    if CONDITION not in names or "builtins.bool" not in names:
        return typ
    kept = [
        item
        for item in proper.items
        if not (
            isinstance(p := get_proper_type(item), Instance) and p.type.fullname == "builtins.bool"
        )
    ]
    return make_simplified_union(kept)
