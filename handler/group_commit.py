"""Ledger writes from concurrent requests, committed together.

Every request's record costs one DynamoDB transaction when requests come one
at a time. Under load, writes that arrive while one is in flight wait for it
and then go out together, one transaction for the lot (group commit): no
request waits longer than one write for its turn, and the table sees far
fewer round trips. The boto3 call runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging

from .ledger import Ledger
from .metering import MAX_BATCH, LedgerEntry

log = logging.getLogger(__name__)


class GroupCommit:
    def __init__(self, ledger: Ledger, *, max_batch: int = MAX_BATCH) -> None:
        self._ledger = ledger
        self._max_batch = max_batch
        self._waiting: list[tuple[LedgerEntry, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def record(self, entry: LedgerEntry) -> str:
        """Ledger.record(entry), maybe alongside others: never raises, never drops."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_waiting())
        return await asyncio.shield(future)  # a cancelled request still has its entry written

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch:]
            entries = [entry for entry, _ in batch]
            try:
                outcomes = await asyncio.to_thread(self._ledger.record_batch, entries)
            except Exception as exc:  # noqa: BLE001 - record_batch never raises; this is a bug's last net
                log.exception("ledger batch of %d failed unexpectedly", len(entries))
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes):
                future.set_result(outcome)
