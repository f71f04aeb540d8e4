"""Ledger writes from concurrent requests, committed together, with a bounded backlog.

Every request's record costs one DynamoDB transaction when requests come one
at a time. Under load, writes that arrive while one is in flight wait for it
and then go out together, one transaction for the lot (group commit): no
request waits longer than one write for its turn, and the table sees far
fewer round trips. The boto3 call runs in a worker thread, off the event loop.

When the table falls behind, waiting entries would pile up in memory without
bound (a slow table at 16 concurrent clients did), and a server stopped
before they are written would lose them. So past `max_backlog` waiting
entries, and from shutdown on (`close()`), an entry skips the table and goes
straight to the fallback queue (or, failing that, whole to the log), where
`gateway-admin usage replay` writes it back exactly once. Every spill is
counted and logged.
"""

from __future__ import annotations

import asyncio
import logging

from .items import MAX_BATCH, LedgerEntry
from .ledger import Ledger

log = logging.getLogger(__name__)

DEFAULT_MAX_BACKLOG = 1024


class GroupCommit:
    def __init__(self, ledger: Ledger, *, max_batch: int = MAX_BATCH, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self._ledger = ledger
        self._max_batch = max_batch
        self._max_backlog = max_backlog
        self._waiting: list[tuple[LedgerEntry, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self._closing = False
        self.spilled = 0

    @property
    def backlog(self) -> int:
        """Entries waiting for the table."""
        return len(self._waiting)

    async def record(self, entry: LedgerEntry) -> str:
        """Ledger.record(entry), maybe alongside others: never raises, never drops."""
        if self._closing or len(self._waiting) >= self._max_backlog:
            return await asyncio.shield(self._spill(entry))
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_waiting())
        return await asyncio.shield(future)  # a cancelled request still has its entry written

    async def close(self) -> None:
        """Shutdown: what still waits for the table, and whatever arrives from now on, is spilled."""
        self._closing = True
        while self._waiting:
            entry, future = self._waiting.pop(0)  # taken before the await: the writer cannot take it too
            outcome = await self._spill(entry)
            if not future.done():
                future.set_result(outcome)

    async def _spill(self, entry: LedgerEntry) -> str:
        self.spilled += 1
        if self.spilled == 1 or self.spilled % 100 == 0:
            log.warning("ledger backlog: %d waiting for the table%s; %d entries sent to the fallback queue so far",
                        len(self._waiting), " (shutting down)" if self._closing else "", self.spilled)
        return await asyncio.to_thread(self._ledger.spill, entry)

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
