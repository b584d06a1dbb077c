"""DynamoDB's TTL process for the corrected moto server (moto never deletes expired items).

Every `interval` seconds a daemon thread, holding the server's request lock, deletes each item
of a table with TTL enabled whose TTL attribute is a number of epoch seconds in the past (but
not more than five years in the past: DynamoDB ignores those), and records the deletion as a
REMOVE stream record carrying the TTL process's `userIdentity`. DynamoDB deletes expired items
within a few days; here it takes about a second, so tests of TTL consumers need not wait.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from ._moto_journal import TTL_IDENTITY, Journal

__all__ = ["start_sweeper", "sweep"]

FIVE_YEARS = 5 * 365 * 24 * 3600


def start_sweeper(lock: threading.Lock, interval: float) -> None:
    if interval <= 0:
        return

    def run() -> None:
        while True:
            time.sleep(interval)
            with lock:
                sweep(time.time())

    threading.Thread(target=run, name="adyn-ttl", daemon=True).start()


def sweep(now: float) -> int:
    """Delete every expired item of every TTL-enabled table; returns how many."""
    from moto.dynamodb.models import dynamodb_backends

    deleted = 0
    for regions in list(dynamodb_backends.values()):
        for backend in list(regions.values()):
            for table in list(backend.tables.values()):
                deleted += _sweep_table(table, now)
    return deleted


def _sweep_table(table: Any, now: float) -> int:
    ttl = table.ttl
    name = ttl.get("AttributeName")
    if ttl.get("TimeToLiveStatus") != "ENABLED" or not name:
        return 0
    expired = [item for item in table.all_items() if _expired(item.attrs.get(name), now)]
    if not expired:
        return 0
    journal = Journal()
    for item in expired:
        journal.touch(table, item.hash_key, item.range_key)
        table.delete_item(item.hash_key, item.range_key)
    journal.commit(identity=TTL_IDENTITY)
    return len(expired)


def _expired(value: Any, now: float) -> bool:
    if value is None or value.type != "N":
        return False
    try:
        when = Decimal(value.value)
    except InvalidOperation:
        return False
    return now - FIVE_YEARS <= when <= now
