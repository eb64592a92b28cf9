"""``python -m compliance.dashboard``: serve the compliance dashboard until SIGINT/SIGTERM.

Reads DATABASE_URL (API keys, the audit log, the compliance stores); loads the sanctions lists
from ``--lists-dir`` (default: the shared data folder) unless ``--no-lists``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import nats
import psycopg
from aiohttp import web

from compliance.alerts import ALERT_ENCODER, ComplianceAlert
from compliance.dashboard._app import Services, create_app
from compliance.dashboard._panels import panels_for
from compliance.monitoring import ensure_alerts_stream
from compliance.screening import ActiveLists, ListFileError, default_data_dir, load_lists
from engine.topology import Topology
from gateway.auth import AuditLog, KeyStore, ensure_schema
from ledger.alerts import Alert, raise_alert

log = logging.getLogger("clearline.compliance.dashboard")

# New and revoked API keys take effect within this long.
key_refresh_s = 10.0


async def _refresh_keys(keys: KeyStore) -> None:
    while True:
        await asyncio.sleep(key_refresh_s)
        with contextlib.suppress(Exception):
            await keys.refresh()


async def serve(args: argparse.Namespace, database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await ensure_schema(conn)
    lists = None
    if not args.no_lists:
        try:
            lists = ActiveLists(await asyncio.to_thread(load_lists, args.lists_dir))
        except (ListFileError, OSError) as exc:
            log.error("sanctions lists not loaded: %s", exc)
    keys = await KeyStore.load(database_url)
    audit = await AuditLog.open(database_url)
    nc = await nats.connect(args.nats_url, max_reconnect_attempts=-1)
    topology = Topology(args.prefix, args.shard)

    async def alert(item: Alert) -> None:
        await raise_alert(nc, topology, item)

    js = nc.jetstream()
    await ensure_alerts_stream(js, topology)

    async def publish_alert(item: ComplianceAlert) -> None:
        await js.publish(
            topology.compliance_alerts_subject,
            ALERT_ENCODER.encode(item),
            headers={"Nats-Msg-Id": item.alert_id},
        )

    svc = Services(
        database_url, keys, audit, lists, args.lists_dir, alert=alert, publish_alert=publish_alert
    )
    app = create_app(svc, *await panels_for(svc, args))
    runner = web.AppRunner(app, access_log=None)  # no query strings (flash texts) in logs
    await runner.setup()
    host, _, port = args.listen.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    log.info("compliance dashboard on http://%s", args.listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    refresher = asyncio.create_task(_refresh_keys(keys))
    try:
        await stop.wait()
    finally:
        refresher.cancel()
        await runner.cleanup()
        for close in svc.extra.get("closers", []):
            await close()
        await audit.close()
        await nc.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compliance.dashboard", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--prefix", default="cl")
    parser.add_argument("--shard", default="0")
    parser.add_argument("--lists-dir", type=Path, default=default_data_dir())
    parser.add_argument("--no-lists", action="store_true")
    parser.add_argument(
        "--records-dir",
        type=Path,
        default=None,
        help="key ring folder: case documents are then stored as encrypted records",
    )
    parser.add_argument("--jurisdiction", default="EU", help="whose retention rules apply")
    # The exchange as the FIU knows it, written into every SAR/STR export.
    parser.add_argument("--rentity-id", default=os.environ.get("CLEARLINE_RENTITY_ID", "DEMO-0"))
    parser.add_argument("--mlro-first-name", default="Money Laundering")
    parser.add_argument("--mlro-last-name", default="Reporting Officer")
    parser.add_argument("--mlro-email", default="mlro@example.invalid")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL must be set", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(serve(args, database_url))


if __name__ == "__main__":
    sys.exit(main())
