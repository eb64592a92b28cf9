"""The ledger service of one shard: the consumer that books the engine's events, and the
reconciliation job that compares the books with the engine every `reconcile_every_s`.

Run: `python -m ledger.service --nats-url URL --database-url URL [--prefix cl] [--shard 0]`
(`clearline run` starts and supervises it). SIGTERM or Ctrl-C stops it between rounds; what
was booked but not yet acknowledged is delivered again to the next start and never booked twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal

import nats

from engine.journal import EngineClient, new_origin
from engine.topology import Topology
from ledger.alerts import Alert, raise_alert
from ledger.consumer import LedgerConsumer
from ledger.exceptions import ExceptionQueue
from ledger.reader import LedgerReader
from ledger.reconcile import reconcile

log = logging.getLogger("clearline.ledger")

# How often the job compares the ledger with the engine: often enough that a break is seen
# within minutes, rarely enough that the engine's balance pages cost it nothing that matters.
reconcile_every_s = 300.0


async def reconcile_once(
    engine: EngineClient, database_url: str, topology: Topology, nc: object
) -> int:
    """One reconciliation: differences into the queue, an alert when there are any. Returns
    the number of differences."""
    reader = await LedgerReader.open(database_url)
    queue = await ExceptionQueue.open(database_url)
    try:
        report = await reconcile(engine, reader)
        new = await queue.record(report.differences)
    finally:
        await reader.close()
        await queue.close()
    log.info(
        "reconciled %d balances at journal seq %d..%d: %d difference(s), %d new",
        report.balances_compared,
        report.journal_seq_min,
        report.journal_seq_max,
        len(report.differences),
        new,
    )
    if report.differences:
        await raise_alert(
            nc,
            topology,
            Alert(
                source="ledger.reconcile",
                kind="reconciliation_breaks",
                severity="critical",
                summary=f"{len(report.differences)} difference(s) between engine and ledger"
                f" ({new} new); see clearctl exceptions list",
                journal_seq=report.journal_seq_max,
            ),
        )
    return len(report.differences)


async def run(
    nats_url: str, database_url: str, topology: Topology, *, every_s: float = reconcile_every_s
) -> None:
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    consumer = LedgerConsumer.for_database(nc, topology, database_url)
    engine = await EngineClient.connect(nats_url, topology, new_origin("ledger"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def reconcile_periodically() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            if stop.is_set():
                return
            try:
                await reconcile_once(engine, database_url, topology, nc)
            except Exception:
                log.exception("reconciliation failed")

    try:
        await consumer.start()
        log.info("ledger consuming %s", topology.events_stream)
        tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(reconcile_periodically())]
        await stop.wait()
        await consumer.stop()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
    finally:
        await consumer.close()
        await engine.close()
        await nc.drain()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one shard's ledger service.")
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--prefix", default="cl")
    parser.add_argument("--shard", default="0")
    parser.add_argument("--reconcile-every-s", type=float, default=reconcile_every_s)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import uvloop

    uvloop.run(
        run(
            args.nats_url,
            args.database_url,
            Topology(args.prefix, args.shard),
            every_s=args.reconcile_every_s,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
