"""Whether a page of items is adyn's alone, so that decoding it may let each wire item go.

A 1,000-item page and its objects together are twice the memory of either. When nothing but
adyn holds a response (adyn's transport parsed it, or a user's transport kept no reference to
it), the compiled decoder drops each wire item as soon as its object is built: the page's
memory is reused for the objects instead of fresh memory being mapped for them (measured on the
decode benchmark: 200 page faults and ~3 ms of a 12.8 ms decode fewer, see "The compiled
decoder" in docs/performance.md).

Only exact reference counts can say so: CPython with the GIL, before 3.14 (3.14 lends
references on the evaluation stack without counting them, and the free-threaded build defers
counts). Elsewhere nothing is dropped.
"""

from __future__ import annotations

import sys
from typing import Any

EXACT_COUNTS = (
    sys.implementation.name == "cpython"
    and sys.version_info < (3, 14)
    and "free-threading" not in sys.version
)


def sole_pages(responses: list[Any]) -> list[bool]:
    """For each response of `responses` (the list its call returned): whether the response
    and its "Items" list are held by that list alone (no transport, listener or user kept them).

    Call it before anything else takes a reference to the responses.
    """
    if not EXACT_COUNTS:
        return [False] * len(responses)
    sole = []
    for response in responses:
        # a response: `responses`, `response` and getrefcount's argument
        items = response.get("Items") if type(response) is dict else None
        sole.append(
            type(items) is list
            and sys.getrefcount(response) == 3
            # its items: the response, `items` and getrefcount's argument
            and sys.getrefcount(items) == 3
        )
    return sole
