"""Cold start: one fresh process, from nothing to the first answer of a GetItem.

    python -m benchmarks.coldstart CONTENDER URL

The process imports the contender's library (and its model), sets up its client or engine
(adyn: `Engine` and `bind`, which verifies the table with DescribeTable), gets one item, and
prints `{"cpu": seconds, "found": bool}`: the CPU this process used from its start to the
answer (every thread, `time.process_time`). The runner measures the wall clock from spawning
the process to reading that line, so both figures include the interpreter's own start-up, the
same for everyone. Nothing else is imported first: this module uses the standard library only.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import time


def main() -> None:
    key, url = sys.argv[1], sys.argv[2]
    out = sys.stdout
    sys.stdout = sys.stderr  # anything a library prints stays off the answer line

    from .contenders import load
    from .contenders.base import Endpoints

    async def first_answer() -> None:
        contender = load(key)
        await contender.open(Endpoints(url))
        get = contender.get_one
        item = await get() if inspect.iscoroutinefunction(get) else get()
        cpu = time.process_time()
        out.write(json.dumps({"cpu": cpu, "found": item is not None}) + "\n")
        out.flush()
        await contender.close()

    asyncio.run(first_answer())


if __name__ == "__main__":
    main()
