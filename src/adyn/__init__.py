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

from ._transport import RetryPolicy
from .batch import Batch
from .codecs import Timestamp
from .engine import Engine
from .errors import (
    AdynError,
    BatchIncomplete,
    CancellationReason,
    ConstraintViolation,
    DynamoError,
    EngineClosed,
    InvalidCondition,
    InvalidItem,
    InvalidModel,
    InvalidQuery,
    MissingObjects,
    MultipleResults,
    NotBound,
    NotFound,
    OutcomeUnknown,
    RecordsExpired,
    TableMismatch,
    Throttled,
    TransactionCanceled,
)
from .expressions import Action, Condition, Path
from .model import GlobalIndex, HashKey, LocalIndex, Model, RangeKey, Version
from .query import Page, Query, Scan
from .transactions import ReadTransaction, WriteTransaction

__version__ = "0.1.0"

__all__ = [
    "Action",
    "AdynError",
    "Batch",
    "BatchIncomplete",
    "CancellationReason",
    "Condition",
    "ConstraintViolation",
    "DynamoError",
    "Engine",
    "EngineClosed",
    "GlobalIndex",
    "HashKey",
    "InvalidCondition",
    "InvalidItem",
    "InvalidModel",
    "InvalidQuery",
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
    "RecordsExpired",
    "RetryPolicy",
    "Scan",
    "TableMismatch",
    "Throttled",
    "Timestamp",
    "TransactionCanceled",
    "Version",
    "WriteTransaction",
]
