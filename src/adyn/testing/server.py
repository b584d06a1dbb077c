"""Embedded DynamoDB servers for tests: moto (Python) and dynalite (node).

Both run as a child process on a free loopback port through one mechanism, `_serve`: start the
process, wait until its port accepts connections, yield the endpoint URL, and stop the process
on exit, also when the block is cancelled. On Linux the child is additionally bound to the life
of the thread that started it (`PR_SET_PDEATHSIG`), so even a test run killed with SIGKILL leaves
no server behind.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO

import anyio
from anyio.abc import Process
from anyio.from_thread import start_blocking_portal

from ..errors import AdynError, InvalidArgument

__all__ = ["LocalServerError", "local_dynalite", "local_dynamodb"]

HOST = "127.0.0.1"
DYNALITE_INSTALL = "npm ci --prefix tests/servers"
_PORT_TAKEN = re.compile(r"address already in use|EADDRINUSE", re.IGNORECASE)

# Runs in the child before the server: ask the kernel to send SIGTERM when our parent goes away,
# then replace this process with the server (the setting survives exec).
_LAUNCHER = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):  # the parent died before prctl took effect
    sys.exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


class LocalServerError(AdynError, RuntimeError):
    """An embedded DynamoDB server could not be found or started (also a RuntimeError)."""


@asynccontextmanager
async def local_dynamodb(
    *, port: int | None = None, startup_timeout: float = 60.0, corrected: bool = True
) -> AsyncIterator[str]:
    """Run moto's DynamoDB server on a free loopback port (or `port`); yield its endpoint URL.

    The server holds everything in memory and is stopped when the block exits. It needs moto's
    server extra, which `pip install 'adyn[testing]'` installs.

    With `corrected` (the default) moto runs with adyn's corrections, which give DynamoDB's
    semantics where moto's differ (docs/testing.md lists them): one stream record per write,
    transactions that leave no trace when cancelled, requests isolated from each other, exact
    numbers, binary values compared by bytes, DynamoDB's item size limit, ClientRequestToken, and
    TTL deletions. A moto release outside the supported range (the `testing` extra's pin) makes
    it raise `LocalServerError` instead of running half-corrected. `corrected=False` runs moto
    exactly as released.
    """
    if not await anyio.to_thread.run_sync(_has_moto_server):
        raise LocalServerError(
            "local_dynamodb() needs moto's server, which is not installed; "
            "install it with `pip install 'adyn[testing]'` (or `pip install 'moto[server]'`)"
        )

    def command(port: int) -> list[str]:
        if corrected:
            server = ["-m", "adyn.testing._moto_server", "--host", HOST, "--port", str(port)]
        else:
            server = ["-m", "moto.server", "-H", HOST, "-p", str(port)]
        return [sys.executable, *server]

    env = await anyio.to_thread.run_sync(_child_env)
    async with _serve("moto", command, startup_timeout, env=env, fixed_port=port) as url:
        yield url


def _child_env() -> dict[str, str]:
    """This environment, with this adyn importable in the child (also from a bare checkout).

    adyn's folder goes after the caller's own PYTHONPATH: when adyn is installed that folder is
    site-packages, which must not shadow what the caller put first. Blocking (it resolves a
    path): run it in a worker thread.
    """
    source = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), source]))
    return {**os.environ, "PYTHONPATH": path}


@asynccontextmanager
async def local_dynalite(
    path: str | os.PathLike[str] | None = None,
    *,
    table_status_ms: int = 0,
    startup_timeout: float = 30.0,
) -> AsyncIterator[str]:
    """Run dynalite (a node implementation of DynamoDB) on a free loopback port.

    `path` is dynalite's `cli.js`, its package folder, or a folder holding
    `node_modules/dynalite`; without it, `$ADYN_DYNALITE`, then `tests/servers` and the current
    folder are searched. `table_status_ms` is how long tables stay CREATING, UPDATING or
    DELETING (dynalite's default is 500 ms; 0 keeps test suites fast).
    """
    node, cli = await anyio.to_thread.run_sync(_find_dynalite, path)
    delay = str(table_status_ms)

    def command(port: int) -> list[str]:
        return [
            node,
            str(cli),
            "--host",
            HOST,
            "--port",
            str(port),
            "--createTableMs",
            delay,
            "--updateTableMs",
            delay,
            "--deleteTableMs",
            delay,
        ]

    async with _serve("dynalite", command, startup_timeout) as url:
        yield url


@contextmanager
def serve_in_thread(server: AbstractAsyncContextManager[str]) -> Iterator[str]:
    """Run an async server context manager in its own event-loop thread (for sync fixtures)."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(server) as url:
        yield url


# ---------------------------------------------------------------------- the one mechanism


@asynccontextmanager
async def _serve(
    name: str,
    command: Callable[[int], Sequence[str]],
    startup_timeout: float,
    env: dict[str, str] | None = None,
    fixed_port: int | None = None,
) -> AsyncIterator[str]:
    """Start `command(port)` on a free port (or `fixed_port`), yield its URL once it listens,
    then stop it."""
    if fixed_port is not None and (
        isinstance(fixed_port, bool)
        or not isinstance(fixed_port, int)
        or not 0 < fixed_port < 65536
    ):
        raise InvalidArgument(f"port must be a TCP port number (1-65535), not {fixed_port!r}")
    if fixed_port is not None and await anyio.to_thread.run_sync(_port_taken, fixed_port):
        raise LocalServerError(f"port {fixed_port} on {HOST} is already in use")
    for _attempt in range(3):  # another process may take the free port before the server does
        port = fixed_port if fixed_port is not None else await anyio.to_thread.run_sync(_free_port)
        log: IO[bytes] = await anyio.to_thread.run_sync(tempfile.TemporaryFile)
        try:
            process = await anyio.open_process(
                _launch(command(port)), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
            try:
                state = await _wait_until_listening(process, port, startup_timeout)
                if state == "listening":
                    yield f"http://{HOST}:{port}"
                    return
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(process)
            output = await anyio.to_thread.run_sync(_tail, log)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(log.close)
        if state == "exited" and _PORT_TAKEN.search(output) and fixed_port is None:
            continue
        if state == "timeout":
            reason = f"did not listen within {startup_timeout:g} s"
        else:
            reason = f"exited with status {process.returncode}"
        raise LocalServerError(f"the embedded {name} server {reason}:\n{output or '(no output)'}")
    raise LocalServerError(f"the embedded {name} server found no free port")


def _launch(argv: Sequence[str]) -> list[str]:
    if sys.platform.startswith("linux"):
        return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]
    return list(argv)


async def _wait_until_listening(process: Process, port: int, patience: float) -> str:
    """Poll until `port` accepts connections: "listening", "exited" or "timeout"."""
    with anyio.move_on_after(patience):
        while process.returncode is None:
            try:
                stream = await anyio.connect_tcp(HOST, port)
            except OSError:
                await anyio.sleep(0.05)
                continue
            await stream.aclose()
            # Someone else's server may hold the port: ours must still be running.
            return "listening" if process.returncode is None else "exited"
        return "exited"
    return "timeout"


async def _stop(process: Process) -> None:
    if process.returncode is None:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
    await process.aclose()


# ---------------------------------------------------------------------- blocking helpers
# (run in a worker thread: they touch the file system or sockets)


def _has_moto_server() -> bool:
    return all(importlib.util.find_spec(mod) is not None for mod in ("moto", "flask"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
        return False


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - limit))
    return log.read().decode(errors="replace").strip()


def _find_dynalite(path: str | os.PathLike[str] | None) -> tuple[str, Path]:
    node = shutil.which("node")
    if node is None:
        raise LocalServerError("local_dynalite() needs node on PATH (Node.js 20 or newer)")
    given = path if path is not None else os.environ.get("ADYN_DYNALITE")
    roots: list[str | os.PathLike[str]] = [given] if given else ["tests/servers", "."]
    for root in roots:
        base = Path(root)
        for candidate in (base, base / "cli.js", base / "node_modules" / "dynalite" / "cli.js"):
            if candidate.is_file():
                return node, candidate.resolve()
    where = f"at {given}" if given else "under tests/servers or the current folder"
    raise LocalServerError(
        f"dynalite was not found {where}; install it with `{DYNALITE_INSTALL}` "
        "(or `npm install dynalite@4.0.0`) or point $ADYN_DYNALITE at its folder"
    )
