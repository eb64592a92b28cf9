"""Serve the KYC vendor webhook: ``python -m compliance.customers``.

Reads the HMAC secret from the environment variable named by ``--secret-env`` (default
``CLEARLINE_KYC_WEBHOOK_SECRET``), never from the command line (which ``ps`` shows to anyone)
and never logs it. Changes are audited in ``audit_log`` and published to the gateways' bucket;
every customer's state is confirmed anew each `customer_state_refresh_s`. Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

import nats
import psycopg
from aiohttp import web

from compliance.customer_state import ensure_bucket
from compliance.customers._limits import customer_state_refresh_s
from compliance.customers._store import CustomerStore, NatsStatePublisher
from compliance.customers._webhook import WEBHOOK_SECRET_ENV, WebhookConfig, make_webhook_app
from engine.topology import Topology
from gateway.auth import AuditLog, ensure_schema

log = logging.getLogger("clearline.compliance.customers")


async def serve(args: argparse.Namespace, secret: bytes) -> int:
    """Run the webhook until cancelled."""
    async with await psycopg.AsyncConnection.connect(args.database_url, autocommit=True) as conn:
        await ensure_schema(conn)
    client = await nats.connect(args.nats_url)
    js = client.jetstream()
    topology = Topology(args.prefix, args.shard)
    await ensure_bucket(js, topology)
    audit = await AuditLog.open(args.database_url)
    store = await CustomerStore.open(args.database_url, audit, NatsStatePublisher(js, topology))
    runner = web.AppRunner(make_webhook_app(store, WebhookConfig(secret=secret)))
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    log.info("KYC webhook listening on %s:%d", args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    refresher = asyncio.create_task(_reconfirm(store))
    try:
        await stop.wait()
    finally:
        refresher.cancel()
        await runner.cleanup()
        await store.close()
        await audit.close()
        await client.close()
    return 0


async def _reconfirm(store: CustomerStore) -> None:
    """Publish every customer's state now and then every `customer_state_refresh_s`."""
    while True:
        try:
            count = await store.publish_all()
            log.info("customer states confirmed: %d", count)
        except Exception:
            log.exception("customer states not confirmed; trying again later")
        await asyncio.sleep(customer_state_refresh_s)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, check the secret is configured, serve."""
    parser = argparse.ArgumentParser(prog="python -m compliance.customers", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--prefix", default="cl")
    parser.add_argument("--shard", default="0")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--secret-env", default=WEBHOOK_SECRET_ENV)
    args = parser.parse_args(argv)
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"error: set the webhook secret in ${args.secret_env}", file=sys.stderr)
        return 2
    if not args.database_url:
        print("error: set --database-url or $DATABASE_URL", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    return asyncio.run(serve(args, secret.encode()))


if __name__ == "__main__":
    sys.exit(main())
