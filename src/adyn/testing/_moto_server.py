"""`python -m adyn.testing._moto_server --host H --port P`: moto's server, corrected.

`local_dynamodb()` runs this module in a child process. It installs the corrections of
`_moto_fixes` (exiting with status 3 and a message naming the supported moto releases when the
installed moto cannot be corrected), then serves moto's WSGI application with werkzeug, one
request at a time: each request's work, from reading its body to producing its response, holds
one lock, so conditional writes and transactions are isolated as DynamoDB's are. Connections are
still served by threads (keep-alive works); only the work is serialised. A background thread
deletes expired items of tables with TTL enabled, recording them as DynamoDB's TTL process does.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

INCOMPATIBLE = 3  # exit status when moto cannot be corrected

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class OneAtATime:
    """A WSGI application that runs `app` for one request at a time."""

    def __init__(self, app: App, lock: threading.Lock) -> None:
        self._app = app
        self._lock = lock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adyn.testing._moto_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttl-interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    from ._moto_fixes import IncompatibleMoto, install

    try:
        install()
        from moto.moto_server import werkzeug_app
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import run_simple
    except (IncompatibleMoto, ImportError) as exc:
        print(
            f"adyn.testing cannot correct this moto: {exc}; install a supported moto, or run "
            "it uncorrected with local_dynamodb(corrected=False)",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(INCOMPATIBLE)

    from ._moto_ttl import start_sweeper

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lock = threading.Lock()
    start_sweeper(lock, args.ttl_interval)
    app = OneAtATime(DomainDispatcherApplication(create_backend_app), lock)
    # moto's own handler (5.1 and later) keeps header names with underscores; werkzeug's default
    # serves DynamoDB just as well.
    handler = getattr(werkzeug_app, "MotoRequestHandler", None)
    run_simple(args.host, args.port, app, threaded=True, request_handler=handler)


if __name__ == "__main__":
    main()
