"""``python -m compliance.monitoring``: run transaction monitoring on one engine shard.

Consumes the shard's engine events and custody's events, carries out the alerts' actions
(alerts stream, customer state bucket, the engine's kill switch) and runs until SIGINT/SIGTERM.
With DATABASE_URL set, a freeze of a known customer goes through `compliance.customers`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

import nats

from compliance.customers import CustomerStore, NatsStatePublisher
from compliance.monitoring._actions import Actions
from compliance.monitoring._config import ConfigError, load_config
from compliance.monitoring._consumer import MonitoringConsumer
from compliance.monitoring._rules import Monitor
from engine.journal import EngineClient, new_origin
from engine.topology import Topology
from gateway.auth import AuditLog

log = logging.getLogger("clearline.compliance.monitoring")


def load_relations(path: str | None) -> list[list[int]]:
    """Related-account groups from a JSON list of lists of account ids."""
    if not path:
        return []
    with open(path) as f:
        groups = json.load(f)
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise ValueError(f"{path}: a JSON list of lists of account ids is expected")
    return [[int(a) for a in group] for group in groups]


async def serve(args: argparse.Namespace, monitor: Monitor) -> int:
    config = monitor.config
    topology = Topology(args.prefix, args.shard)
    nc = await nats.connect(args.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    engine = EngineClient(nc, topology, new_origin("monitoring"))
    await engine.start()
    audit, customers = None, None
    database_url = os.environ.get("DATABASE_URL")
    if database_url:  # freezes then go through the customer records, audited
        audit = await AuditLog.open(database_url)
        publisher = NatsStatePublisher(nc.jetstream(), topology)
        customers = await CustomerStore.open(database_url, audit, publisher)
    actions = Actions(nc.jetstream(), topology, engine, customers=customers)
    consumer = MonitoringConsumer(nc, topology, monitor, actions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await consumer.start()
        log.info("monitoring shard %s with rules %s", args.shard, config.version)
        runner = asyncio.create_task(consumer.run())
        await stop.wait()
        await consumer.stop()
        await runner
    finally:
        await consumer.close()
        await engine.close()
        if customers is not None:
            await customers.close()
        if audit is not None:
            await audit.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compliance.monitoring", description=__doc__)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--prefix", default="cl")
    parser.add_argument("--shard", default="0")
    parser.add_argument("--config", default=None, help="rule configuration JSON (default: shipped)")
    parser.add_argument(
        "--relations", default=None, help="JSON list of related-account groups (wash trading)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Everything read from files is checked before connecting: bad input starts nothing.
    try:
        monitor = Monitor(load_config(args.config), relation_groups=load_relations(args.relations))
    except (ConfigError, ValueError, OSError) as exc:
        print(f"monitoring: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(args, monitor))


if __name__ == "__main__":
    raise SystemExit(main())
