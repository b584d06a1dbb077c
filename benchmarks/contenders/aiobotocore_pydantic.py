"""aiobotocore + boto3's TypeDeserializer + pydantic `model_validate`: validated models out."""

from __future__ import annotations

from typing import Any

from ..data import PlainBench, plain_item
from .aiobotocore_raw import AiobotocoreDicts


class AiobotocorePydantic(AiobotocoreDicts):
    """What a service without an ORM writes: typed dict -> plain dict -> pydantic model."""

    key = "aiobotocore_pydantic"
    label = "aiobotocore + TypeDeserializer + pydantic"

    def item(self, typed: dict[str, Any]) -> Any:
        return PlainBench.model_validate(super().item(typed))

    def prepare_put(self, n: int) -> list[Any]:
        return [PlainBench.model_validate(plain_item("bench", 1)) for _ in range(n)]

    def encode(self, obj: Any) -> dict[str, Any]:
        data = obj.model_dump()
        data["created"] = data["created"].isoformat()  # TypeSerializer knows no datetime
        return super().encode(data)
