"""The gateway process: the gRPC server (grpc.aio on uvloop) in front of one engine shard.

`start_gateway(config)` connects to PostgreSQL (API keys, audit log) and NATS (journal, events,
market data, customer compliance state), loads the instrument catalog from the engine, and
serves OrderEntry, MarketData, Account and Control, plus the standard health service
(``grpc.health.v1``: SERVING once the catalog is loaded) and server reflection. Prometheus
metrics are served over HTTP. TLS when a certificate and key are configured; with a client CA
too, clients must present a certificate signed by it (mTLS).

Run: ``python -m gateway.server --nats-url URL --database-url URL [--listen HOST:PORT] ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.journal import EngineClient, new_origin
from engine.topology import Topology
from gateway import metrics
from gateway._proto.clearline.v1 import (
    account_pb2,
    account_pb2_grpc,
    control_pb2,
    control_pb2_grpc,
    market_data_pb2,
    market_data_pb2_grpc,
    order_entry_pb2,
    order_entry_pb2_grpc,
)
from gateway.account import AccountServicer
from gateway.auth import AuditLog, KeyStore, ensure_schema
from gateway.checks import ComplianceLimits, CustomerStateCache
from gateway.context import GatewayContext, GatewayLimits
from gateway.control import ControlServicer
from gateway.market_data import MarketDataServicer
from gateway.order_entry import OrderEntryServicer
from gateway.ratelimit import RateLimits, TokenBuckets

log = logging.getLogger("clearline.gateway")

# How long start_gateway waits for the engine to list its instruments before it returns anyway
# (health then says NOT_SERVING until the catalog loads in the background).
ready_wait_s_max = 10.0
# Calls in flight get this long to finish when the gateway stops.
stop_grace_s = 2.0

SERVICE_NAMES = (
    order_entry_pb2.DESCRIPTOR.services_by_name["OrderEntry"].full_name,
    market_data_pb2.DESCRIPTOR.services_by_name["MarketData"].full_name,
    account_pb2.DESCRIPTOR.services_by_name["Account"].full_name,
    control_pb2.DESCRIPTOR.services_by_name["Control"].full_name,
)


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """Everything one gateway needs to know.

    Attributes
    ----------
    nats_url, database_url : str
        NATS with JetStream (journal, events, market data, compliance state) and PostgreSQL
        (API keys, audit log).
    topology : Topology
        The engine shard's streams and subjects.
    listen_address : str
        ``host:port`` to serve gRPC on; port 0 picks a free one (`Gateway.port` tells which).
    tls_cert_path, tls_key_path : Path, optional
        PEM certificate chain and private key: both given, the server speaks TLS only.
    tls_client_ca_path : Path, optional
        PEM CA bundle: clients must present a certificate it signed (mTLS).
    metrics_host, metrics_port : str, int or None
        Where ``/metrics`` is served; port None: not served, 0: a free port.
    rate_limits, compliance_limits, limits :
        The bounds of `gateway.ratelimit`, `gateway.checks` and `gateway.context`.
    origin : str, optional
        The gateway's id in the journal; unique per process when not given.
    """

    nats_url: str
    database_url: str
    topology: Topology = field(default_factory=Topology)
    listen_address: str = "127.0.0.1:50051"
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None
    tls_client_ca_path: Path | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9464
    rate_limits: RateLimits = field(default_factory=RateLimits)
    compliance_limits: ComplianceLimits = field(default_factory=ComplianceLimits)
    limits: GatewayLimits = field(default_factory=GatewayLimits)
    origin: str | None = None


class Gateway:
    """A running gateway: `port`, `metrics_port`, `context`; `await stop()`."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        metrics_port: int | None,
        context: GatewayContext,
        health_servicer: health.aio.HealthServicer,
        tasks: list[asyncio.Task[Any]],
    ) -> None:
        self.server = server
        self.port = port
        self.metrics_port = metrics_port
        self.context = context
        self._health = health_servicer
        self._tasks = tasks

    async def stop(self, grace_s: float = stop_grace_s) -> None:
        """Stop serving (calls in flight get ``grace_s``), then close every connection."""
        ctx = self.context
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await ctx.market_data.stop()
        for close in (ctx.engine.close, ctx.compliance.close, ctx.audit.close):
            with contextlib.suppress(Exception):
                await close()
        if self.metrics_port is not None:
            metrics.stop_metrics_servers()

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def start_gateway(config: GatewayConfig) -> Gateway:
    """Connect, load the catalog and serve; returns once the server accepts calls.

    Parameters
    ----------
    config : GatewayConfig
        What to connect to and where to listen.

    Returns
    -------
    Gateway
        Serving; health is SERVING once the engine has listed its instruments (waited for up to
        `ready_wait_s_max` here, in the background afterwards).
    """
    async with await psycopg.AsyncConnection.connect(config.database_url) as conn:
        await ensure_schema(conn)
    async with contextlib.AsyncExitStack() as undo:  # closes what was opened if a step fails
        keystore = await KeyStore.load(config.database_url)
        audit = await AuditLog.open(config.database_url)
        undo.push_async_callback(audit.close)
        engine = await EngineClient.connect(
            config.nats_url, config.topology, config.origin or new_origin("gateway")
        )
        undo.push_async_callback(engine.close)
        compliance = await CustomerStateCache.open(config.nats_url, config.topology)
        undo.push_async_callback(compliance.close)
        rate = config.rate_limits
        ctx = GatewayContext(
            engine=engine,
            keystore=keystore,
            audit=audit,
            compliance=compliance,
            compliance_limits=config.compliance_limits,
            order_buckets=TokenBuckets(rate.orders_per_s_max, rate.orders_burst_max),
            call_buckets=TokenBuckets(rate.calls_per_s_max, rate.calls_burst_max),
            limits=config.limits,
            database_url=config.database_url,
        )
        engine.add_listener(ctx.events.on_batch)
        await ctx.market_data.start()
        await engine.nc.subscribe(
            config.topology.instruments_changed_subject, cb=_reload_on_message(ctx)
        )

        server = grpc.aio.server(interceptors=[_CallMetrics()])
        order_entry_pb2_grpc.add_OrderEntryServicer_to_server(OrderEntryServicer(ctx), server)
        market_data_pb2_grpc.add_MarketDataServicer_to_server(MarketDataServicer(ctx), server)
        account_pb2_grpc.add_AccountServicer_to_server(AccountServicer(ctx), server)
        control_pb2_grpc.add_ControlServicer_to_server(ControlServicer(ctx), server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        port = _listen(server, config)
        await server.start()
        undo.push_async_callback(server.stop, 0)
        metrics_port = None
        if config.metrics_port is not None:
            metrics_port = metrics.start_metrics_server(config.metrics_port, config.metrics_host)
        undo.pop_all()
    tasks = [
        asyncio.create_task(_serve_when_ready(ctx, health_servicer)),
        asyncio.create_task(_refresh_keys(ctx)),
    ]
    ctx.reload_catalog_soon()
    gateway = Gateway(server, port, metrics_port, ctx, health_servicer, tasks)
    try:
        await asyncio.wait_for(ctx.catalog_loaded.wait(), ready_wait_s_max)
    except TimeoutError:
        log.warning("the engine has not listed its instruments yet; NOT_SERVING until it does")
    log.info("gateway serving on port %d (metrics on %s)", port, metrics_port)
    return gateway


def _listen(server: grpc.aio.Server, config: GatewayConfig) -> int:
    if (config.tls_cert_path is None) != (config.tls_key_path is None):
        raise ValueError("TLS needs both a certificate and a key")
    if config.tls_cert_path is None or config.tls_key_path is None:
        return server.add_insecure_port(config.listen_address)
    client_ca = None
    if config.tls_client_ca_path is not None:
        client_ca = config.tls_client_ca_path.read_bytes()
    credentials = grpc.ssl_server_credentials(
        [(config.tls_key_path.read_bytes(), config.tls_cert_path.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
    return server.add_secure_port(config.listen_address, credentials)


def _reload_on_message(ctx: GatewayContext) -> Callable[[Any], Awaitable[None]]:
    async def reload(msg: Any) -> None:
        ctx.reload_catalog_soon()

    return reload


async def _serve_when_ready(ctx: GatewayContext, health_servicer: Any) -> None:
    await ctx.catalog_loaded.wait()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def _refresh_keys(ctx: GatewayContext) -> None:
    while True:
        await asyncio.sleep(ctx.limits.key_refresh_s)
        try:
            await ctx.keystore.refresh()
        except Exception:  # PostgreSQL away: the keys already loaded keep working
            log.exception("could not refresh the API keys")


class _CallMetrics(grpc.aio.ServerInterceptor):
    """Counts every finished call by method and status code (`metrics.GRPC_CALLS`)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        for kind, make in _HANDLER_MAKERS.items():
            behavior = getattr(handler, kind)
            if behavior is not None:
                wrapped = _counted(behavior, method)
                if wrapped is None:
                    return handler
                return make(
                    wrapped,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler


_HANDLER_MAKERS: dict[str, Callable[..., grpc.RpcMethodHandler]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _code_name(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if code is not None:
        return str(code.name)
    if error is None:
        return "OK"
    return "CANCELLED" if isinstance(error, asyncio.CancelledError) else "UNKNOWN"


def _counted(behavior: Callable[..., Any], method: str) -> Callable[..., Any] | None:
    """The behaviour wrapped to count its outcome, of the same kind (grpc.aio dispatches on
    whether it is a coroutine or an async generator function); None for any other kind."""
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            error: BaseException | None = None
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                metrics.GRPC_CALLS.labels(method, _code_name(context, error)).inc()

        return stream
    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            error: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                metrics.GRPC_CALLS.labels(method, _code_name(context, error)).inc()

        return call
    return None


# -- the process --


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.server``: serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="Run the Clearline gRPC gateway.")
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--prefix", default="cl")
    parser.add_argument("--shard", default="0")
    parser.add_argument("--listen", default="127.0.0.1:50051", help="host:port")
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--tls-client-ca", type=Path, help="require client certificates (mTLS)")
    parser.add_argument("--metrics-host", default="127.0.0.1")
    parser.add_argument("--metrics-port", type=int, default=9464, help="-1: no metrics")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = GatewayConfig(
        nats_url=args.nats_url,
        database_url=args.database_url,
        topology=Topology(args.prefix, args.shard),
        listen_address=args.listen,
        tls_cert_path=args.tls_cert,
        tls_key_path=args.tls_key,
        tls_client_ca_path=args.tls_client_ca,
        metrics_host=args.metrics_host,
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
    )

    async def serve() -> None:
        gateway = await start_gateway(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await gateway.stop()

    import uvloop

    uvloop.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Gateway", "GatewayConfig", "main", "start_gateway"]
