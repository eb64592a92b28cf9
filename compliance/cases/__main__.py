"""``python -m compliance.cases``: store compliance alerts from JetStream until stopped.

Options fall back to NATS_URL, DATABASE_URL, CLEARLINE_PREFIX and CLEARLINE_SHARD.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

import nats

from compliance.cases._consumer import CasesConsumer
from engine.topology import Topology


async def _main(args: argparse.Namespace) -> None:
    nc = await nats.connect(args.nats_url)
    consumer = CasesConsumer(nc, Topology(prefix=args.prefix, shard=args.shard), args.database_url)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(consumer.stop()))
    try:
        await consumer.start()
        logging.getLogger("clearline.compliance.cases").info("storing compliance alerts")
        await consumer.run()
    finally:
        await consumer.close()
        await nc.drain()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m compliance.cases", description=__doc__)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--prefix", default=os.environ.get("CLEARLINE_PREFIX", "cl"))
    parser.add_argument("--shard", default=os.environ.get("CLEARLINE_SHARD", "0"))
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
