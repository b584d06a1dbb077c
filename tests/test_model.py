"""Models compile once into a schema; definition errors name the model and the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel, PrivateAttr

import adyn
from _models import Post, Shared1, Shared2
from adyn import GlobalIndex, HashKey, InvalidModel, LocalIndex, Model, RangeKey, Version
from adyn.expressions import Path
from adyn.schema import schema_of


def test_public_surface_is_declared_once_and_sorted() -> None:
    assert adyn.__all__ == sorted(adyn.__all__)
    for name in adyn.__all__:
        assert getattr(adyn, name) is not None
    assert not [n for n in adyn.__all__ if n.startswith("_")]
    for name in (
        "Model",
        "HashKey",
        "RangeKey",
        "GlobalIndex",
        "LocalIndex",
        "Version",
        "Timestamp",
        "Engine",
        "AdynError",
        "InvalidModel",
        "InvalidItem",
        "InvalidQuery",
        "InvalidCondition",
        "ConstraintViolation",
        "MissingObjects",
        "NotFound",
        "MultipleResults",
        "TableMismatch",
        "TransactionCanceled",
        "BatchIncomplete",
        "Throttled",
        "RecordsExpired",
        "EngineClosed",
        "NotBound",
        "DynamoError",
    ):
        assert name in adyn.__all__
        if name.endswith(("Error", "Invalid")) or name[0:7] in ("Invalid",):
            assert issubclass(getattr(adyn, name), adyn.AdynError)


def test_the_api_model_compiles_to_a_create_table_request() -> None:
    request = schema_of(Post).create_table_request("posts")
    assert request["KeySchema"] == [
        {"AttributeName": "forum", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ]
    assert {d["AttributeName"]: d["AttributeType"] for d in request["AttributeDefinitions"]} == {
        "forum": "S",
        "id": "S",
        "user": "S",
        "date": "S",
        "views": "N",
        "score": "N",
    }
    gsis = {i["IndexName"]: i for i in request["GlobalSecondaryIndexes"]}
    assert gsis["by_user"]["Projection"] == {"ProjectionType": "ALL"}
    assert gsis["by_score"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    (lsi,) = request["LocalSecondaryIndexes"]
    assert lsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["content"]}
    assert "StreamSpecification" not in request
    assert request["BillingMode"] == "PAY_PER_REQUEST"

    class Streamed(Model):
        class Meta:
            stream = "new_and_old"
            billing = "provisioned"
            read_units = 3
            write_units = 2

        pk: Annotated[str, HashKey()]

    streamed = schema_of(Streamed).create_table_request("s")
    assert streamed["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert streamed["ProvisionedThroughput"] == {"ReadCapacityUnits": 3, "WriteCapacityUnits": 2}

    class WithIndex(Streamed):
        g: str = ""
        by_g = GlobalIndex(hash_key="g")
        by_g2 = GlobalIndex(hash_key="g", read_units=7)

    gsis = schema_of(WithIndex).create_table_request("w")["GlobalSecondaryIndexes"]
    throughput = {i["IndexName"]: i["ProvisionedThroughput"] for i in gsis}
    assert throughput == {
        "by_g": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 2},
        "by_g2": {"ReadCapacityUnits": 7, "WriteCapacityUnits": 2},
    }


def test_class_attributes_are_paths_and_indexes() -> None:
    assert isinstance(Post.views, Path) and Post.views._segments == ("views",)
    assert Post.address.city._segments == ("address", "city")
    assert Post.history[0]._segments == ("history", 0)
    assert Post.email._segments == ("em",)
    assert Post.by_user.model is Post and Post.by_user.name == "by_user"


def test_a_model_is_a_normal_pydantic_model() -> None:
    uid = uuid4()
    post = Post(forum="f", id=uid, user=uid, date=datetime(2024, 1, 1), em="a@b")
    assert post.email == "a@b"
    assert Post(forum="f", id=uid, user=uid, date=datetime(2024, 1, 1), email="x").email == "x"
    dumped = post.model_dump()
    assert dumped["forum"] == "f" and dumped["views"] == 0
    assert Post.model_validate(dumped) == post
    assert "em" in Post.model_json_schema()["properties"]
    assert "_adyn_state" not in repr(post)
    key_only = Post.model_construct(forum="f", id=uid)
    assert key_only.forum == "f"


def test_subclasses_inherit_fields_keys_and_indexes_and_may_rename_the_table() -> None:
    class Base(Model):
        class Meta:
            abstract = True

        pk: Annotated[str, HashKey()]
        sk: Annotated[str, RangeKey()]
        kind: str = ""
        by_kind = GlobalIndex(hash_key="kind", range_key="sk")

    class Child(Base):
        class Meta:
            table_name = "children"

        extra: int = 0

    class GrandChild(Child):
        more: str = ""

    assert Base.__adyn_schema__ is None
    schema = schema_of(Child)
    assert schema.table_name == "children" and schema.hash_key.name == "pk"
    assert "by_kind" in schema.indexes and Child.by_kind.model is Child
    grand = schema_of(GrandChild)
    assert grand.table_name == "children" and GrandChild.by_kind.model is GrandChild
    assert "more" in grand.fields and GrandChild.extra._model is GrandChild


def test_a_subclass_may_redeclare_an_inherited_index_under_another_attribute() -> None:
    class Base(Model):
        class Meta:
            table_name = "base_items"

        pk: Annotated[str, HashKey()]
        sk: Annotated[str, RangeKey()]
        kind: str = ""
        label: str = ""
        by_kind = GlobalIndex(hash_key="kind", range_key="sk", name="gsi1")

    class Child(Base):
        extra: int = 0
        gsi1 = GlobalIndex(hash_key="label", range_key="sk", projection="all")

    base, child = schema_of(Base), schema_of(Child)
    assert base.indexes["gsi1"].hash_key.name == "kind"
    assert list(child.indexes) == ["gsi1"]
    assert child.indexes["gsi1"].hash_key.name == "label"
    assert child.indexes["gsi1"].projection == "ALL"
    # both attributes name the redeclared index of the subclass
    assert Child.gsi1.model is Child and Child.by_kind is Child.gsi1
    assert Base.by_kind.model is Base
    assert not child.fields["kind"].index_key and child.fields["label"].index_key

    with pytest.raises(InvalidModel, match="two indexes named 'gsi1'"):

        class Twice(Base):
            one = GlobalIndex(hash_key="label", name="gsi1")
            two = GlobalIndex(hash_key="kind", name="gsi1")


def test_several_models_share_one_table() -> None:
    assert schema_of(Shared1).table_name == schema_of(Shared2).table_name == "shared"


def _define(body: dict[str, Any], annotations: dict[str, Any], name: str = "Bad") -> None:
    namespace = {"__annotations__": annotations, "__module__": __name__, "__qualname__": name}
    namespace.update(body)
    if "Meta" in body:  # as a nested `class Meta:` would be
        body["Meta"].__qualname__ = f"{name}.Meta"
        body["Meta"].__module__ = __name__
    type(Model)(name, (Model,), namespace)


@pytest.mark.parametrize(
    ("annotations", "body", "field", "rule"),
    [
        ({"a": str}, {}, None, "no hash key"),
        (
            {"a": Annotated[str, HashKey()], "b": Annotated[str, HashKey()]},
            {},
            "b",
            "two hash keys",
        ),
        ({"a": Annotated[dict[str, int], HashKey()]}, {}, "a", "S, N or B"),
        ({"a": Annotated[bool, HashKey()]}, {}, "a", "S, N or B"),
        ({"a": Annotated[str | None, HashKey()]}, {}, "a", "optional"),
        ({"a": Annotated[str, HashKey()]}, {"by_x": GlobalIndex(hash_key="nope")}, "by_x", "nope"),
        (
            {"a": Annotated[str, HashKey()], "r": str},
            {"l": LocalIndex(range_key="r")},
            "l",
            "range key",
        ),
        (
            {"a": Annotated[str, HashKey()], "e": str},
            {"Meta": type("Meta", (), {"ttl": "e"})},
            "e",
            "datetime",
        ),
        (
            {"a": Annotated[str, HashKey()]},
            {"Meta": type("Meta", (), {"ttl": "gone"})},
            "gone",
            "no field",
        ),
        ({"a": Annotated[str, HashKey()], "v": Annotated[str, Version()]}, {}, "v", "int"),
        (
            {"a": Annotated[str, HashKey()]},
            {"Meta": type("Meta", (), {"tabel_name": "x"})},
            None,
            "tabel_name",
        ),
        (
            {"a": Annotated[str, HashKey()]},
            {"Meta": type("Meta", (), {"stream": "all"})},
            None,
            "stream",
        ),
        (
            {"a": Annotated[str, HashKey()]},
            {"Meta": type("Meta", (), {"stream": {"view": "new"}})},
            None,
            "stream",
        ),
        (
            {"a": Annotated[str, HashKey()]},
            {"Meta": type("Meta", (), {"ttl": ["expires"]})},
            None,
            "Meta.ttl",
        ),
        ({"a": Annotated[str, HashKey()], "c": complex}, {}, "c", "cannot be stored"),
        ({"a": Annotated[str, HashKey()], "s": set[bool]}, {}, "s", "sets hold only"),
    ],
)
def test_definition_errors_raise_invalid_model_at_class_creation(
    annotations: dict[str, Any], body: dict[str, Any], field: str | None, rule: str
) -> None:
    with pytest.raises(InvalidModel) as info:
        _define(body, annotations)
    assert info.value.model == "Bad"
    assert info.value.field == field
    assert rule in str(info.value)
    assert str(info.value).startswith("Bad")


def test_nested_models_and_aliases_in_nested_models() -> None:
    class Inner(BaseModel):
        value: int
        label: str | None = None

    class Outer(Model):
        pk: Annotated[UUID, HashKey()]
        inner: Inner | None = None
        inners: list[Inner] = []

    schema = schema_of(Outer)
    obj = Outer(pk=uuid4(), inner=Inner(value=1), inners=[Inner(value=2, label="x")])
    assert schema.decode_item(schema.encode_item(obj)) == obj
    assert Outer.inner.value._segments == ("inner", "value")


class Session(Model):
    class Meta:
        table_name = "sessions"

    id: Annotated[str, HashKey()]
    _seen: list[str] = PrivateAttr(default_factory=list)
    _notes: list[str] = PrivateAttr(default=[])
    _limit: int = PrivateAttr(default=3)


@pytest.mark.parametrize("items", [1, 100])  # one item, and a page big enough to build paused
def test_loaded_objects_get_their_own_private_attribute_values(items: int) -> None:
    """As constructed ones do: a default_factory is called, a mutable default is not shared."""
    page = schema_of(Session).decode_page([{"id": {"S": f"s{i}"}} for i in range(items)])
    first = page[0]
    second = schema_of(Session).decode_item({"id": {"S": "x"}})
    first._seen.append("a")
    first._notes.append("n")
    assert second._seen == [] and second._notes == [] and second._limit == 3
    assert all(o._seen == [] for o in page[1:])
    assert Session(id="y")._notes == []
