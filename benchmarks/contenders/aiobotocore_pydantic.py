"""aiobotocore + boto3's TypeDeserializer + pydantic `model_validate`: validated models out."""

from __future__ import annotations

from typing import Any

from ..models import PlainBench
from .aiobotocore_raw import AiobotocoreDicts


class AiobotocorePydantic(AiobotocoreDicts):
    """What a service without an ORM writes: typed dict -> plain dict -> pydantic model."""

    key = "aiobotocore_pydantic"
    label = "aiobotocore + TypeDeserializer + pydantic"
    unsupported = {
        **AiobotocoreDicts.unsupported,
        "cold_start": "raw aiobotocore plus imports of boto3 and pydantic",
    }

    def item(self, typed: dict[str, Any]) -> Any:
        return PlainBench.model_validate(super().item(typed))

    def build(self, item: dict[str, Any]) -> Any:
        return PlainBench.model_validate(item)

    def encode(self, obj: Any) -> dict[str, Any]:
        data = obj.model_dump()
        data["created"] = data["created"].isoformat()  # TypeSerializer knows no datetime
        return super().encode(data)
