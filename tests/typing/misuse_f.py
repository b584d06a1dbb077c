"""Deliberate misuses written with `F(...)`: pyright, mypy --strict without plugins and
mypy --strict with both plugins must each report exactly the lines marked `# error`, and
nothing else (tests/typing/test_typing.py). Every entry of `WRONG` also fails at run time.
"""

# pyright: standard
# (strictness about unknown types only repeats the errors below)
from __future__ import annotations

from uuid import UUID

from typed_models import Post, Reply

from adyn import Engine, F, Query

UID = UUID(int=1)

WRONG = [  # (a declared type would make pyright report the list too)
    lambda: F(Post.views).begins_with("a"),  # error
    lambda: F(Post.tags).add({3}),  # error
    lambda: F(Post.content).add(1),  # error
    lambda: F(Post.tags) > 3,  # error
    lambda: F(Post.views).size(),  # error
    lambda: F(Post.blob).contains(b"x"),  # error
    lambda: F(Post.ranks).append(1),  # error
    lambda: F(Post.ranks)["a"],  # error
    lambda: F(Post.counters)[0],  # error
    lambda: F(Post.views).add("1"),  # error
    lambda: F(Post.views).is_type("X"),  # error
    lambda: F(Post.history)[0]["a"].contains(1),  # error
    lambda: F(Post.numbers).contains("1"),  # error
    lambda: F(Post.views) & F(Post.flag),  # error
]


async def wrong_calls(engine: Engine, post: Post) -> None:
    """Misuses that need an engine (checked, never run)."""
    engine.query(Post, key="forum")  # error
    engine.transaction(mode="x")  # error
    async with engine.transaction() as tx:
        tx.load(post)  # error
    got = await engine.get(Post, forum="f", id=UID)
    print(got.views)  # error
    replies: Query[Reply] = engine.query(Reply, key=Reply.forum == "f")
    posts: Query[Reply] = engine.query(Post, key=Post.forum == "f")  # error
    print(replies, posts)
