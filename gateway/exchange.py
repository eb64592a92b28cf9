"""`clearline run`: the whole exchange on one machine, resumable from its data folder.

1. Servers: NATS (JetStream) and PostgreSQL from NATS_URL / DATABASE_URL, or private ones
   started in `<data>/servers` (engine/servers.py).
2. The engine: one process per shard (`python -m engine.loop`), restarted if it dies; it
   replays its journal from the newest snapshot, so a restart loses nothing. Beside it, each
   also restarted if it dies: the ledger service (`python -m ledger.service`: books the
   engine's events and reconciles), transaction monitoring (`python -m compliance.monitoring`),
   the cases consumer (`python -m compliance.cases`), the compliance dashboard
   (`python -m compliance.dashboard`) and the KYC vendor webhook (`python -m
   compliance.customers`, its HMAC secret made once in `<data>/kyc-webhook.secret`).
3. First start only: the demo market and funded demo accounts are journaled, and API keys are
   created (stored hashed) and written to `<data>/client.json` for clearctl and the demo.
4. The demo traders are onboarded in the customer records (KYC verified, assessed) once; the
   records publish every customer's state, and confirm it hourly, so orders pass the checks.
5. The gateway: gRPC on the given address, metrics over HTTP.

Ctrl-C stops the gateway, then the services beside the engine, the engine (which snapshots),
the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats
import psycopg

from compliance.customer_state import ensure_bucket
from compliance.customers import (
    WEBHOOK_PATH,
    WEBHOOK_SECRET_ENV,
    CustomerStore,
    KycStatus,
    NatsStatePublisher,
    NewCustomer,
    PersonType,
    Product,
    load_risk_config,
)
from engine._codes import Role
from engine.journal import EngineClient, new_origin
from engine.markets import funding_commands, market_commands
from engine.messages import ListInstruments
from engine.servers import database_server, free_port, nats_server
from engine.topology import Topology
from gateway import client_config
from gateway.auth import AuditLog, create_api_key, ensure_schema
from gateway.ratelimit import RateLimits

log = logging.getLogger("clearline.run")

ROOT = Path(__file__).resolve().parents[1]

# The demo's people: key name -> (account id, role). Accounts 0 and 1 belong to the exchange
# (the outside world and fee income), so customers start at 1001.
DEMO_KEYS: dict[str, tuple[int, Role]] = {
    "admin": (0, Role.ADMIN),
    "risk-officer": (0, Role.RISK_OFFICER),
    "compliance-officer": (0, Role.COMPLIANCE_OFFICER),
    "maker-1": (1001, Role.MARKET_MAKER),
    "maker-2": (1002, Role.MARKET_MAKER),
    "taker-1": (2001, Role.TRADER),
    "taker-2": (2002, Role.TRADER),
    "taker-3": (2003, Role.TRADER),
    "taker-4": (2004, Role.TRADER),
}
# Re-confirm the demo customers' state this often: well inside the gateway's freshness limit.
customer_state_refresh_s = 3600.0
# The gateway's compliance cache syncs after it starts serving; orders before that are (rightly)
# rejected as stale, so the exchange counts as started only once it has synced.
compliance_sync_wait_s_max = 30.0
# A crashed service (engine, ledger) is restarted after this pause: a crash loop must not spin a
# core.
restart_pause_s = 1.0


@dataclass(frozen=True)
class RunOptions:
    data_dir: Path
    listen: str = "127.0.0.1:50051"
    metrics_port: int = 0
    prefix: str = "cl"
    shard: str = "0"
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # The services beside the engine (ledger, monitoring, cases, dashboard, KYC webhook); the
    # gateway benchmark leaves them out (it measures the order path; they have benchmarks of
    # their own).
    with_ledger: bool = True
    # The compliance dashboard (HTTP), beside the consumers; port 0: a free one.
    dashboard_listen: str = "127.0.0.1:0"


def trading_accounts() -> list[int]:
    return sorted({account for account, role in DEMO_KEYS.values() if account > 1})


class Supervisor:
    """Keeps one service process running; a crash is logged and the process started again.

    Secrets reach the child through its environment, never its command line (which any local
    user can read with ps).
    """

    def __init__(
        self, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = [sys.executable, *args]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = False

    def start(self) -> None:
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            stdout=log_file,
            stderr=log_file,
            env=self.env,
            start_new_session=True,
        )
        log_file.close()

    async def watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.2)
            if self.process is not None and self.process.poll() is not None and not self._stopping:
                self.restarts += 1
                log.error(
                    "%s exited with %s; restarting (see %s)",
                    self.name,
                    self.process.returncode,
                    self.log_path,
                )
                await asyncio.sleep(restart_pause_s)
                self.start()

    def stop(self) -> None:
        self._stopping = True
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # a clean stop: the engine snapshots
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def engine_supervisor(nats_url: str, topology: Topology, data_dir: Path) -> Supervisor:
    args = [
        "-m", "engine.loop", "--nats-url", nats_url, "--data-dir", str(data_dir),
        "--prefix", topology.prefix, "--shard", topology.shard,
    ]  # fmt: skip
    return Supervisor("engine", args, data_dir / f"engine-{topology.shard}.log")


def consumer_supervisor(
    name: str,
    module: str,
    nats_url: str,
    database_url: str,
    topology: Topology,
    data_dir: Path,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Supervisor:
    """A service beside the engine (`python -m <module>`): the ledger, monitoring, cases, the
    dashboard. Each takes the same flags; the database URL goes through the environment."""
    args = [
        "-m", module, "--nats-url", nats_url,
        "--prefix", topology.prefix, "--shard", topology.shard, *extra_args,
    ]  # fmt: skip
    log_path = data_dir / f"{name}-{topology.shard}.log"
    return Supervisor(name, args, log_path, env={"DATABASE_URL": database_url, **(env or {})})


def kyc_webhook_secret(data_dir: Path) -> str:
    """The KYC vendor webhook's HMAC secret: made once, kept in the data folder (0600), given to
    the service through its environment and to the vendor by the operator."""
    path = data_dir / "kyc-webhook.secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


async def provision_keys(database_url: str, config_path: Path) -> dict[str, str]:
    """The demo keys: created once, then read back from the client config."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await ensure_schema(conn)
        if config_path.exists():
            existing = client_config.load(config_path)
            if existing.keys:
                return dict(existing.keys)
        keys = {}
        for name, (account, role) in DEMO_KEYS.items():
            keys[name] = await create_api_key(conn, account, role, f"demo {name}")
        return keys


async def bootstrap_market(client: EngineClient) -> bool:
    """Journal the demo market and funding unless the engine already has instruments."""
    for _ in range(600):
        with contextlib.suppress(Exception):
            reply = await client.query(ListInstruments(), timeout_s=1.0)
            if reply.result["instruments"]:
                return False
            break
        await asyncio.sleep(0.1)
    await client.submit(
        [*market_commands(), *funding_commands(trading_accounts())], actor="clearline-run"
    )
    return True


async def register_demo_customers(store: CustomerStore) -> None:
    """Onboard each demo trading account as a verified, assessed customer (once), then publish
    every customer's state: the gateways trade for customers compliance knows."""
    config = load_risk_config()
    for account in trading_accounts():
        if await store.by_account(account) is not None:
            continue
        customer = await store.create(
            NewCustomer(
                person_type=PersonType.natural,
                given_names="Demo",
                family_name=f"Trader {account}",
                born_or_incorporated_on=dt.date(1990, 1, 1),
                residence_country="DE",
                nationality_country="DE",
                expected_products=[Product.spot_trading],
                expected_monthly_volume_usd_minor=1_000_000,
                account_id=account,
            ),
            "clearline run",
            "demo customer",
        )
        await store.transition_kyc(
            customer.customer_id, KycStatus.verified, "clearline run", "demo customer"
        )
        await store.assess(customer.customer_id, config, dt.date.today(), "clearline run")
    await store.publish_all()


@dataclass(frozen=True)
class RunningExchange:
    """What a started exchange offers its user: where to connect and with which keys."""

    address: str  # the gateway's host:port
    metrics_url: str
    nats_url: str
    database_url: str
    topology: Topology
    config: client_config.ClientConfig
    config_path: Path
    engine: Supervisor
    ledger: Supervisor
    fresh: bool  # the demo market was created by this start
    dashboard_url: str = ""
    kyc_webhook_url: str = ""


@contextlib.asynccontextmanager
async def exchange_running(
    options: RunOptions, nats_url: str, database_url: str
) -> AsyncIterator[RunningExchange]:
    """Start engine and gateway on the given servers; stop them on exit (steps 2-5 above).

    `clearline run`, the gateway benchmark and the end-to-end tests all start the exchange
    this way, so what they exercise is what an operator runs.
    """
    from gateway.server import GatewayConfig, start_gateway  # the heavy imports, here only

    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    topology = Topology(options.prefix, options.shard)
    config_path = data_dir / client_config.FILE_NAME
    keys = await provision_keys(database_url, config_path)
    engine = engine_supervisor(nats_url, topology, data_dir)
    ledger = consumer_supervisor(
        "ledger", "ledger.service", nats_url, database_url, topology, data_dir
    )
    monitoring = consumer_supervisor(
        "monitoring", "compliance.monitoring", nats_url, database_url, topology, data_dir
    )
    dashboard_listen = options.dashboard_listen
    if dashboard_listen.endswith(":0"):
        dashboard_listen = f"{dashboard_listen[:-2]}:{free_port()}"
    dashboard = consumer_supervisor(
        "dashboard", "compliance.dashboard", nats_url, database_url, topology, data_dir,
        ("--listen", dashboard_listen, "--records-dir", str(data_dir / "records")),
    )  # fmt: skip
    kyc_port = free_port()
    kyc = consumer_supervisor(
        "kyc-webhook", "compliance.customers", nats_url, database_url, topology, data_dir,
        ("--port", str(kyc_port)),
        env={WEBHOOK_SECRET_ENV: kyc_webhook_secret(data_dir)},
    )  # fmt: skip
    cases = consumer_supervisor(
        "cases", "compliance.cases", nats_url, database_url, topology, data_dir
    )
    consumers = (ledger, monitoring, cases, dashboard, kyc) if options.with_ledger else ()
    services = (engine, *consumers)
    for service in services:
        service.start()
    watchers = [asyncio.create_task(service.watch()) for service in services]
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1)
    client = EngineClient(nc, topology, new_origin("run"))
    await client.start()
    gateway = None
    audit = await AuditLog.open(database_url)
    customers: CustomerStore | None = None
    try:
        fresh = await bootstrap_market(client)
        await ensure_bucket(nc.jetstream(), topology)
        customers = await CustomerStore.open(
            database_url, audit, NatsStatePublisher(nc.jetstream(), topology)
        )
        await register_demo_customers(customers)
        gateway = await start_gateway(
            GatewayConfig(
                nats_url=nats_url,
                database_url=database_url,
                topology=topology,
                listen_address=options.listen,
                metrics_port=options.metrics_port,
                rate_limits=options.rate_limits,
            )
        )
        if not await gateway.context.compliance.wait_synced(compliance_sync_wait_s_max):
            raise RuntimeError("the gateway's compliance cache did not sync with NATS")
        address = f"{options.listen.rsplit(':', 1)[0]}:{gateway.port}"
        metrics_url = (
            f"http://127.0.0.1:{gateway.metrics_port}/metrics" if gateway.metrics_port else ""
        )
        config = client_config.ClientConfig(
            gateway=address,
            api_key=keys["admin"],
            metrics_url=metrics_url,
            keys=keys,
            accounts={name: account for name, (account, _) in DEMO_KEYS.items()},
        )
        client_config.save(config, config_path)
        # The customers service confirms states too; this covers a run without it (the
        # gateway benchmark's), and costs one publish per customer an hour.
        refresher = asyncio.create_task(_refresh_customers(customers))
        try:
            yield RunningExchange(
                address, metrics_url, nats_url, database_url, topology, config, config_path,
                engine, ledger, fresh,
                f"http://{dashboard_listen}/" if options.with_ledger else "",
                f"http://127.0.0.1:{kyc_port}{WEBHOOK_PATH}" if options.with_ledger else "",
            )  # fmt: skip
        finally:
            refresher.cancel()
    finally:
        if gateway is not None:
            await gateway.stop()
        for watcher in watchers:
            watcher.cancel()
        for service in reversed(services):  # consumers first: they read what the engine wrote
            await asyncio.to_thread(service.stop)
        if customers is not None:
            await customers.close()
        await audit.close()
        with contextlib.suppress(Exception):
            await client.close()


async def _refresh_customers(store: CustomerStore) -> None:
    while True:
        await asyncio.sleep(customer_state_refresh_s)
        with contextlib.suppress(Exception):
            await store.publish_all()


async def run_exchange(options: RunOptions, stop: asyncio.Event) -> None:
    """`clearline run`: servers, then the exchange, until `stop` is set."""
    servers_dir = options.data_dir.resolve() / "servers"
    with nats_server(servers_dir) as nats_url, database_server(servers_dir) as database_url:
        async with exchange_running(options, nats_url, database_url) as running:
            print_banner(running)
            await stop.wait()
            print("stopping: gateway, compliance services, ledger, engine, servers ...", flush=True)
    print("stopped; `make run` again resumes from the journal.", flush=True)


def _redact(url: str) -> str:
    """A server URL without its password, for the banner."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def print_banner(running: RunningExchange) -> None:
    lines = [
        "",
        "Clearline is running" + (" (demo market created)" if running.fresh else " (resumed)"),
        f"  gateway (gRPC)  {running.address}",
        f"  metrics         {running.metrics_url}",
        f"  compliance      {running.dashboard_url}  (sign in with the compliance-officer key)",
        f"  KYC webhook     {running.kyc_webhook_url}  (HMAC secret: kyc-webhook.secret in the"
        " data folder)",
        f"  NATS            {_redact(running.nats_url)}",
        f"  PostgreSQL      {_redact(running.database_url)}",
        f"  client config   {running.config_path}  (clearctl and `clearline demo` read it)",
        "  API keys (demo accounts):",
    ]
    for name, key in running.config.keys.items():
        account, role = DEMO_KEYS.get(name, (0, Role.TRADER))
        lines.append(f"    {name:<20} account {account:<6} {role.name:<19} {key}")
    lines += [
        "",
        "Try:  .venv/bin/clearctl status      .venv/bin/clearline demo",
        "Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)


def main(options: RunOptions) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_exchange(options, stop)

    import uvloop

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    uvloop.run(run())
    return 0


__all__ = [
    "DEMO_KEYS",
    "RunOptions",
    "RunningExchange",
    "Supervisor",
    "exchange_running",
    "main",
    "run_exchange",
]
