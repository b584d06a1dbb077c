"""The contenders, each in its own module, found by key.

Modules are imported only in the worker process that runs that contender, so one library's
imports, caches and heap never weigh on another's measurements, and a peer that fails to import
is reported as "n/a" instead of stopping the run. A contender whose library cannot live in the
runner's environment (another Python, pinned dependencies) names an environment from
`benchmarks/envs.py`: its worker runs in that virtualenv's interpreter.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import Contender


@dataclass(frozen=True)
class Entry:
    """Where a contender lives. `label` is repeated here so the runner can name a contender
    whose module does not import; `env` is "" for the runner's own interpreter."""

    module: str
    cls: str
    label: str
    env: str = ""
    reference: bool = False  # a reference point (a bare parse), not a peer: no goals


REGISTRY: dict[str, Entry] = {
    "adyn": Entry("adyn_engine", "Adyn", "adyn"),
    "aiobotocore": Entry(
        "aiobotocore_raw", "AiobotocoreTyped", "raw aiobotocore (default; typed dicts)"
    ),
    "aiobotocore_pool64": Entry(
        "aiobotocore_raw", "AiobotocorePool64", "raw aiobotocore (max_pool_connections=64)"
    ),
    "aiobotocore_dicts": Entry(
        "aiobotocore_raw", "AiobotocoreDicts", "aiobotocore + TypeDeserializer (plain dicts)"
    ),
    "aiobotocore_pydantic": Entry(
        "aiobotocore_pydantic", "AiobotocorePydantic", "aiobotocore + TypeDeserializer + pydantic"
    ),
    "aioboto3": Entry(
        "aioboto3_resource", "Aioboto3", "aioboto3 (resource API, plain dicts)", env="aioboto3"
    ),
    "pynamodb": Entry("pynamodb_sync", "Pynamo", "PynamoDB (sync)"),
    "aiopynamodb": Entry("aiopynamodb_async", "AioPynamo", "aiopynamodb"),
    "aiodynamo": Entry("aiodynamo_client", "Aiodynamo", "aiodynamo (plain dicts)"),
    "pydynox": Entry("pydynox_orm", "Pydynox", "pydynox (Rust core)"),
    "dynamoxy": Entry("dynamoxy_orm", "Dynamoxy", "dynamoxy (Rust core, Python 3.12)", env="py312"),
    "json": Entry("reference", "JsonLoads", "reference: json.loads only", reference=True),
    "orjson": Entry("reference", "OrjsonLoads", "reference: orjson.loads only", reference=True),
}


def load(key: str) -> Contender:
    """Import the contender's module and build it (ImportError if its library is missing)."""
    entry = REGISTRY[key]
    module = importlib.import_module(f"{__name__}.{entry.module}")
    contender: Contender = getattr(module, entry.cls)()
    return contender
