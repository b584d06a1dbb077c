"""A consumer-group member in its own process, for tests of groups across processes.

    python tests/harness/member.py ENDPOINT_URL GROUP TEMPLATE [WORK_SECONDS]

It reads the `Event` model's stream as one member of GROUP (lease table named through
TEMPLATE, failover 2 s) and prints one JSON line per record it receives:
`{"seq", "key", "n", "shard", "epoch", "member"}`, then marks the record done after
WORK_SECONDS (default 0). SIGTERM makes it leave the group cleanly (checkpoint, release) and
exit 0; SIGKILL is a crash. It prints `{"ready": member_id}` once it has joined.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import anyio
import orjson

from adyn import Engine, HashKey, Model
from adyn.stream import Pacing

PACING = Pacing(
    idle_interval=0.05,
    max_idle_interval=0.2,
    min_interval=0.05,
    discovery_interval=3.0,
    backoff=0.05,
    max_backoff=0.5,
)


class Event(Model):
    class Meta:
        table_name = "events"
        stream = "new_and_old"

    id: Annotated[str, HashKey()]
    n: int = 0


def emit(line: dict[str, object]) -> None:
    sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
    sys.stdout.buffer.flush()


async def main(endpoint: str, group: str, template: str, work: float) -> None:
    async with Engine(endpoint_url=endpoint, table_name_template=template) as engine:
        await engine.bind(Event, create=False)
        stream = engine.stream(
            Event,
            group=group,
            position="trim_horizon",
            failover=2.0,
            commit_interval=0.3,
            pacing=PACING,
        )
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async with stream, anyio.create_task_group() as tg:

                async def stop() -> None:
                    async for _ in signals:
                        tg.cancel_scope.cancel()
                        return

                tg.start_soon(stop)
                assert stream.member is not None
                emit({"ready": stream.member.id})
                async for record in stream:
                    new = record.new
                    emit(
                        {
                            "seq": record.sequence_number,
                            "key": record.key["id"],
                            "n": None if new is None else new.n,
                            "shard": record.shard_id,
                            "epoch": record.lease_epoch,
                            "member": stream.member.id,
                        }
                    )
                    if work:
                        await anyio.sleep(work)
                    record.done()


if __name__ == "__main__":
    endpoint_url, group_name, table_template = sys.argv[1:4]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    anyio.run(main, endpoint_url, group_name, table_template, seconds)
