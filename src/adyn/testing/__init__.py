"""Testing support: an embedded DynamoDB for your tests, and a pytest plugin.

```python
from adyn.testing import local_dynamodb

async with local_dynamodb() as endpoint_url:
    async with Engine(endpoint_url=endpoint_url) as engine: ...
```

The pytest plugin (`adyn.testing.plugin`, registered when adyn is installed) provides the
fixtures `dynamodb_endpoint` and `adyn_engine`. `FakeStreams` (a transport:
`Engine(transport=fake)`) and `VirtualClock` (`engine.stream(..., clock=clock)`) test stream
consumers across shard splits, iterator expiry and trimming (docs/testing.md).
"""

from typing import TYPE_CHECKING, Any

from .server import LocalServerError, local_dynalite, local_dynamodb

if TYPE_CHECKING:
    from .fakes import FakeStreams, VirtualClock


def __getattr__(name: str) -> Any:
    # The fakes import the stream package: load them on first use, not in every pytest run.
    if name in ("FakeStreams", "VirtualClock"):
        from . import fakes

        return getattr(fakes, name)
    raise AttributeError(f"module 'adyn.testing' has no attribute {name!r}")


__all__ = ["FakeStreams", "LocalServerError", "VirtualClock", "local_dynalite", "local_dynamodb"]
