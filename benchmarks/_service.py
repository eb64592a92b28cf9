"""The exchange as the gateway benchmark runs it: its own process, with stated rate limits.

``python -m benchmarks._service --data-dir DIR [--prefix P] [--orders-per-s-max N] ...``
starts what `clearline run` starts (servers from NATS_URL / DATABASE_URL or private ones under
``DIR/servers``, the supervised engine process, the demo market, funded accounts, API keys,
the gateway) and writes the client config to ``DIR/client.json`` once the gateway takes
orders. SIGTERM or SIGINT stops it in `clearline run`'s order.

It is `gateway.exchange.exchange_running` with the token buckets raised: the defaults (500
orders/s per key) would make the benchmark measure the rate limiter. Every check still runs,
and the limits used go into the benchmark's JSON.

Why a process of its own: in production the gateway does not share a Python interpreter with
its clients; in the benchmark's process it would share the GIL and the event loop with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from engine.servers import database_server, nats_server
from gateway import client_config
from gateway.exchange import RunOptions, Supervisor, exchange_running
from gateway.ratelimit import RateLimits

log = logging.getLogger("clearline.bench.service")


@contextlib.asynccontextmanager
async def stack_running(
    data_dir: Path,
    nats_url: str,
    database_url: str,
    *,
    prefix: str,
    rate_limits: RateLimits,
) -> AsyncIterator[tuple[client_config.ClientConfig, Supervisor]]:
    """Engine and gateway on the given servers, as `clearline run` starts them, with
    ``rate_limits`` for the gateway. Yields the client config (also saved in ``data_dir``)
    and the engine's supervisor."""
    options = RunOptions(
        data_dir, listen="127.0.0.1:0", prefix=prefix, rate_limits=rate_limits, with_ledger=False
    )
    async with exchange_running(options, nats_url, database_url) as running:
        yield running.config, running.engine


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    limits = RateLimits(
        orders_per_s_max=args.orders_per_s_max,
        orders_burst_max=args.orders_burst_max,
        calls_per_s_max=args.calls_per_s_max,
        calls_burst_max=args.calls_burst_max,
    )
    servers_dir = args.data_dir.resolve() / "servers"
    with nats_server(servers_dir) as nats_url, database_server(servers_dir) as database_url:
        async with stack_running(
            args.data_dir, nats_url, database_url, prefix=args.prefix, rate_limits=limits
        ) as (_, engine):
            # The engine's pid, for the benchmark's CPU accounting.
            pid = engine.process.pid if engine.process is not None else 0
            (args.data_dir / "engine.pid").write_text(f"{pid}\n")
            await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._service", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--orders-per-s-max", type=int, required=True)
    parser.add_argument("--orders-burst-max", type=int, required=True)
    parser.add_argument("--calls-per-s-max", type=int, required=True)
    parser.add_argument("--calls-burst-max", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    import uvloop

    uvloop.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
