"""adyn: the async DynamoDB ORM for asyncio services.

```python
from adyn import Engine, Model, HashKey

class User(Model):
    id: Annotated[str, HashKey()]
    name: str

async with Engine() as engine:
    await engine.bind(User)
    await engine.save(User(id="u1", name="Ada"))
```
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backfill import BackfillProgress, BackfillReport, FailedItem
    from .batch import Batch, BatchProgress
    from .codecs import Codec, Timestamp
    from .engine import Engine
    from .errors import (
        AdynError,
        BatchIncomplete,
        CancellationReason,
        ConstraintViolation,
        DynamoError,
        EngineClosed,
        InvalidArgument,
        InvalidCondition,
        InvalidItem,
        InvalidModel,
        InvalidQuery,
        InvalidState,
        MissingObjects,
        MultipleResults,
        NotBound,
        NotFound,
        OutcomeUnknown,
        RecordsExpired,
        StreamNotEnabled,
        TableMismatch,
        Throttled,
        TransactionCanceled,
        UniqueViolation,
    )
    from .events import CallEvent, ConsumedCapacity
    from .expressions import Action, Condition, Path
    from .model import GlobalIndex, HashKey, LocalIndex, Model, RangeKey, Unique, Version
    from .paths import F
    from .query import Page, Query, Scan
    from .retry import RetryPolicy
    from .stream import Record, Stream, batch_failures, lambda_records
    from .transactions import ReadTransaction, WriteTransaction
    from .transport import Transport

__version__ = "0.1.0"

# Names are imported on first use: `import adyn` (and the pytest plugin, loaded by every pytest
# run once adyn is installed) stays cheap; aiobotocore is imported only with the Engine.
_LAZY = {
    "Action": ".expressions",
    "AdynError": ".errors",
    "BackfillProgress": ".backfill",
    "BackfillReport": ".backfill",
    "Batch": ".batch",
    "BatchIncomplete": ".errors",
    "BatchProgress": ".batch",
    "CallEvent": ".events",
    "CancellationReason": ".errors",
    "Codec": ".codecs",
    "Condition": ".expressions",
    "ConstraintViolation": ".errors",
    "ConsumedCapacity": ".events",
    "DynamoError": ".errors",
    "Engine": ".engine",
    "EngineClosed": ".errors",
    "F": ".paths",
    "FailedItem": ".backfill",
    "GlobalIndex": ".model",
    "HashKey": ".model",
    "InvalidArgument": ".errors",
    "InvalidCondition": ".errors",
    "InvalidItem": ".errors",
    "InvalidModel": ".errors",
    "InvalidQuery": ".errors",
    "InvalidState": ".errors",
    "LocalIndex": ".model",
    "MissingObjects": ".errors",
    "Model": ".model",
    "MultipleResults": ".errors",
    "NotBound": ".errors",
    "NotFound": ".errors",
    "OutcomeUnknown": ".errors",
    "Page": ".query",
    "Path": ".expressions",
    "Query": ".query",
    "RangeKey": ".model",
    "ReadTransaction": ".transactions",
    "Record": ".stream",
    "RecordsExpired": ".errors",
    "RetryPolicy": ".retry",
    "Scan": ".query",
    "Stream": ".stream",
    "StreamNotEnabled": ".errors",
    "TableMismatch": ".errors",
    "Throttled": ".errors",
    "Timestamp": ".codecs",
    "TransactionCanceled": ".errors",
    "Transport": ".transport",
    "Unique": ".model",
    "UniqueViolation": ".errors",
    "Version": ".model",
    "WriteTransaction": ".transactions",
    "batch_failures": ".stream",
    "lambda_records": ".stream",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'adyn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


__all__ = [
    "Action",
    "AdynError",
    "BackfillProgress",
    "BackfillReport",
    "Batch",
    "BatchIncomplete",
    "BatchProgress",
    "CallEvent",
    "CancellationReason",
    "Codec",
    "Condition",
    "ConstraintViolation",
    "ConsumedCapacity",
    "DynamoError",
    "Engine",
    "EngineClosed",
    "F",
    "FailedItem",
    "GlobalIndex",
    "HashKey",
    "InvalidArgument",
    "InvalidCondition",
    "InvalidItem",
    "InvalidModel",
    "InvalidQuery",
    "InvalidState",
    "LocalIndex",
    "MissingObjects",
    "Model",
    "MultipleResults",
    "NotBound",
    "NotFound",
    "OutcomeUnknown",
    "Page",
    "Path",
    "Query",
    "RangeKey",
    "ReadTransaction",
    "Record",
    "RecordsExpired",
    "RetryPolicy",
    "Scan",
    "Stream",
    "StreamNotEnabled",
    "TableMismatch",
    "Throttled",
    "Timestamp",
    "TransactionCanceled",
    "Transport",
    "Unique",
    "UniqueViolation",
    "Version",
    "WriteTransaction",
    "batch_failures",
    "lambda_records",
]
