"""Deliberate misuses: mypy with `plugins = ["pydantic.mypy", "adyn.mypy"]` must report exactly
the lines marked `# error: [code] text` (that code, a message containing the text) and nothing
else (tests/typing/test_typing.py). Every entry of `WRONG` must also fail at run time: the
static types refuse only what adyn itself refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from typed_models import Customer, Post

from adyn import Engine

UID = UUID(int=1)
NOW = datetime(2024, 5, 1, tzinfo=UTC)

# A marker must stay on the line of its misuse:
# fmt: off
WRONG: list[Callable[[], object]] = [
    lambda: Post.views.begins_with("a"),  # error: [attr-defined] "NumberPath[int]" has no attribute "begins_with"
    lambda: Post.tags.add({3}),  # error: [arg-type] expected "str"
    lambda: Post.numbers.delete({"3"}),  # error: [arg-type] expected "int"
    lambda: Post.content.add(1),  # error: [attr-defined] "StringPath[str]" has no attribute "add"
    lambda: Post.tags > 3,  # error: [operator] Unsupported operand types for < ("int" and "SetPath[str]")
    lambda: Post.flag < True,  # error: [operator] ("bool" and "ValuePath[bool]")
    lambda: Post.views.contains(1),  # error: [attr-defined] has no attribute "contains"
    lambda: Post.blob.contains(b"x"),  # error: [attr-defined] "BytesPath" has no attribute "contains"
    lambda: Post.views.size(),  # error: [attr-defined] has no attribute "size"
    lambda: Post.tags.append(["x"]),  # error: [attr-defined] "SetPath[str]" has no attribute "append"
    lambda: Post.ranks.add({1}),  # error: [attr-defined] "ListPath[int]" has no attribute "add"
    lambda: Post.counters.append([1]),  # error: [attr-defined] "MapPath[int]" has no attribute "append"
    lambda: Post.address.cty,  # error: [attr-defined] "Address" has no field "cty" (its fields: city, geo, lines, size, zip)
    lambda: Post.address["cty"],  # error: [attr-defined] "Address" has no field "cty"
    lambda: Post.address.city.add(1),  # error: [attr-defined] has no attribute "add"
    lambda: Post.history[0]["a"].begins_with("x"),  # error: [attr-defined] "NumberPath[int]"
    lambda: Post.ranks["a"],  # error: [call-overload] No overload variant of "__getitem__"
    lambda: Post.counters[0],  # error: [call-overload] No overload variant of "__getitem__"
    lambda: Post.views.add("1"),  # error: [arg-type] "str"; expected "int"
    lambda: Post.views.between("a", "z"),  # error: [arg-type] "str"; expected "int"
    lambda: Post.views.in_(["a"]),  # error: [list-item] "str"; expected "int"
    lambda: Post.views.is_type("X"),  # error: [arg-type] expected "Literal['S', 'SS', 'N'
    lambda: Post.date.begins_with(2024),  # error: [arg-type] "int"; expected "str"
    lambda: Post.tags.contains(3),  # error: [arg-type] "int"; expected "str"
    lambda: Post.email.set(3),  # error: [arg-type] "set" of "ValuePath"
    lambda: Post.views.set_if_missing("x"),  # error: [arg-type] "str"; expected "int"
    lambda: ~Post.views,  # error: [operator] Unsupported operand type for ~
    lambda: Post.by_user.views,  # error: [attr-defined] "GlobalIndex[Post]" has no attribute "views"
]


async def wrong_calls(engine: Engine, post: Post) -> None:
    """Misuses that need an engine (checked, never run)."""
    # fmt: off
    engine.query(Post, key=True)  # error: [arg-type] expected "Condition | Mapping[str, Any]"
    await engine.save(post, condition=post.views > 3)  # error: [arg-type] has incompatible type "bool"
    engine.scan(Post, filter=post.content == "x")  # error: [arg-type] has incompatible type "bool"
    engine.query(Post, key=Post.forum == "f", filter=(Post.views > 3) & True)  # error: [operator] Unsupported operand types for & ("Condition" and "bool")
    engine.transaction(mode="x")  # error: [call-overload] No overload variant of "transaction"
    async with engine.transaction() as tx:
        tx.check(post, post.views > 0)  # error: [arg-type] has incompatible type "bool"
        tx.load(post)  # error: [attr-defined] "WriteTransaction" has no attribute "load"
    async with engine.transaction(mode="r") as reads:
        reads.save(post)  # error: [attr-defined] "ReadTransaction" has no attribute "save"
    print((await engine.get(Post, forum="f", id=UID)).views)  # error: [union-attr] Item "None" of "Post | None"
    Post.model_construct(forum=3)  # error: [arg-type] "forum" to "model_construct" of "Post"
    Post(forum="f", id=UID, user=UID)  # error: [call-arg] Missing named argument "date"
    Customer(name="Ada")  # error: [call-arg] Missing named argument "id" for "Customer"
    post.by_user = Post.by_user  # error: [misc] Cannot assign to class variable "by_user" via instance
