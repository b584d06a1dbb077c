"""What PynamoDB and aiopynamodb share: the benchmark item as their models' keyword arguments."""

from __future__ import annotations

import datetime as dt
from typing import Any


def model_kwargs(item: dict[str, Any]) -> dict[str, Any]:
    """A `data.plain_item` dict as keyword arguments of a PynamoDB-style model."""
    kwargs = dict(item)
    kwargs["count_"] = int(kwargs.pop("count"))  # `count` would shadow Model.count()
    kwargs["rank"] = int(kwargs["rank"])
    kwargs["price"] = float(kwargs["price"])  # NumberAttribute holds floats
    kwargs["scores"] = [int(v) for v in kwargs["scores"]]
    kwargs["created"] = dt.datetime.fromisoformat(kwargs["created"])
    return kwargs
