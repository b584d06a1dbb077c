"""Testing support: an embedded DynamoDB for your tests, and a pytest plugin.

```python
from adyn.testing import local_dynamodb

async with local_dynamodb() as endpoint_url:
    async with Engine(endpoint_url=endpoint_url) as engine: ...
```

The pytest plugin (`adyn.testing.plugin`, registered when adyn is installed) provides the
fixtures `dynamodb_endpoint` and `adyn_engine`.
"""

from .server import LocalServerError, local_dynalite, local_dynamodb

__all__ = ["LocalServerError", "local_dynalite", "local_dynamodb"]
