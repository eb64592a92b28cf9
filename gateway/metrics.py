"""Prometheus metrics of the gateway, in a registry of its own, served on ``/metrics``.

A registry of our own (not prometheus_client's global one) so that nothing a library registers
leaks into our exposition, and tests can read exact values.
"""

from __future__ import annotations

from collections.abc import Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from engine._codes import Reason

REGISTRY = CollectorRegistry(auto_describe=True)

# 50 us (the in-memory checks alone) to 5 s (a journal that is stalling), 1-2.5-5 per decade.
# fmt: off
_ACK_BUCKETS_S = (
    50e-6, 100e-6, 250e-6, 500e-6,
    1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
    1.0, 2.5, 5.0,
)
# fmt: on

ORDERS = Counter(
    "clearline_orders",  # exposed as clearline_orders_total
    "Orders the gateway answered, by result (accepted, rejected).",
    ["result"],
    registry=REGISTRY,
)
REJECTS = Counter(
    "clearline_rejects",
    "Rejected orders by reason name (engine._codes.Reason).",
    ["reason"],
    registry=REGISTRY,
)
GRPC_CALLS = Counter(
    "clearline_grpc_calls",
    "gRPC calls finished, by full method name and status code name.",
    ["method", "code"],
    registry=REGISTRY,
)
ORDER_ACK_SECONDS = Histogram(
    "clearline_order_ack_seconds",
    "From an order's arrival at the gateway to its acknowledgement.",
    buckets=_ACK_BUCKETS_S,
    registry=REGISTRY,
)
JOURNAL_LAG = Gauge(
    "clearline_journal_lag_entries",
    "Journal entries appended but not yet applied by the engine.",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "clearline_consumer_lag_messages",
    "Messages pending for a durable JetStream consumer, by consumer name.",
    ["consumer"],
    registry=REGISTRY,
)

# Series exist at zero from the start, so that rate() and alerts see the first reject too.
for _result in ("accepted", "rejected"):
    ORDERS.labels(_result)
for _reason in Reason:
    if 1000 <= _reason < 4100:  # rejects only; 41xx are why a live order was cancelled
        REJECTS.labels(_reason.name)


def count_orders(accepted: int, rejected: Mapping[Reason, int]) -> None:
    """Count a call's answered orders: ``accepted`` of them, and the rejects by reason.

    Once per call, not per order: a label lookup takes a lock, and a batch has hundreds.
    """
    if accepted:
        ORDERS.labels("accepted").inc(accepted)
    for reason, count in rejected.items():
        ORDERS.labels("rejected").inc(count)
        REJECTS.labels(reason.name).inc(count)


_servers: list[WSGIServer] = []


def start_metrics_server(port: int, host: str = "127.0.0.1") -> int:
    """Serve ``/metrics`` from a daemon thread and return the bound port.

    Parameters
    ----------
    port : int
        The port to listen on; 0 picks a free one.
    host : str
        The address to bind; loopback by default, since metrics name accounts' activity.

    Returns
    -------
    int
        The port actually bound.
    """
    # prometheus_client >= 0.20 returns the WSGI server and its thread; the server knows the port.
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    _servers.append(server)
    return int(server.server_port)


def stop_metrics_servers() -> None:
    """Shut down every server `start_metrics_server` started (tests; a clean exit)."""
    while _servers:
        server = _servers.pop()
        server.shutdown()
        server.server_close()


__all__ = [
    "CONSUMER_LAG",
    "GRPC_CALLS",
    "JOURNAL_LAG",
    "ORDERS",
    "ORDER_ACK_SECONDS",
    "REGISTRY",
    "REJECTS",
    "count_orders",
    "start_metrics_server",
    "stop_metrics_servers",
]
