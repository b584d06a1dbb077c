"""The contenders, each in its own module, found by key.

Modules are imported only in the worker process that runs that contender, so one library's
imports, caches and heap never weigh on another's measurements, and a peer that fails to import
is reported as "n/a" instead of stopping the run.
"""

from __future__ import annotations

import importlib

from .base import Contender

# key -> (module, class, label). Labels are repeated here so the runner can name a contender
# whose module does not import.
REGISTRY: dict[str, tuple[str, str, str]] = {
    "adyn": ("adyn_engine", "Adyn", "adyn (fast path, default)"),
    "aiobotocore": (
        "aiobotocore_raw",
        "AiobotocoreTyped",
        "raw aiobotocore (default; typed dicts)",
    ),
    "aiobotocore_pool64": (
        "aiobotocore_raw",
        "AiobotocorePool64",
        "raw aiobotocore (max_pool_connections=64)",
    ),
    "aiobotocore_dicts": (
        "aiobotocore_raw",
        "AiobotocoreDicts",
        "aiobotocore + TypeDeserializer (plain dicts)",
    ),
    "aiobotocore_pydantic": (
        "aiobotocore_pydantic",
        "AiobotocorePydantic",
        "aiobotocore + TypeDeserializer + pydantic",
    ),
    "pynamodb": ("pynamodb_sync", "Pynamo", "PynamoDB (sync)"),
    "aiopynamodb": ("aiopynamodb_async", "AioPynamo", "aiopynamodb"),
    "aiodynamo": ("aiodynamo_client", "Aiodynamo", "aiodynamo (plain dicts)"),
    "json": ("reference", "JsonLoads", "reference: json.loads only"),
    "orjson": ("reference", "OrjsonLoads", "reference: orjson.loads only"),
}


def load(key: str) -> Contender:
    """Import the contender's module and build it (ImportError if its library is missing)."""
    module_name, class_name, _ = REGISTRY[key]
    module = importlib.import_module(f"{__name__}.{module_name}")
    contender: Contender = getattr(module, class_name)()
    return contender
