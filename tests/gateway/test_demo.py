"""`clearline demo` against a running exchange, and its exits when there is none.

Goal: show that the demo trades as a person watching it expects: makers quote through their
Trade streams, takers' orders fill against the quotes, every order sent is acknowledged, the
market data stream has no sequence gap, the only rejects are the ones the demo's design makes
(`gateway.demo.EXPECTED_REJECTS`: an amend or cancel that a fill overtook), a summary table is
printed and the exit status is 0; and that with no gateway it says so and exits 3, with no
client config 2.

Method: an exchange as `make run` starts it (`gateway.exchange.exchange_running`) on the
session's NATS, a fresh PostgreSQL database and NATS prefix, served by an event loop in a
background thread; the demo runs as `clearline demo --config PATH --json`, a process of its own
as a person starts it (grpc.aio on two event loops of one process shares one completion queue
between them, grpc/grpc#25364; a Trade stream once ended INTERNAL that way), reading the client
config the exchange wrote. Before it starts, one order is placed until accepted: the gateway's
compliance cache fills just after start, and orders before that are rightly rejected (2002).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import uvloop

from gateway import client_config, demo
from gateway._proto.clearline.v1 import order_entry_pb2, order_entry_pb2_grpc, types_pb2
from gateway.exchange import RunningExchange, RunOptions, exchange_running

# Starting or stopping the exchange: the engine process, the bootstrap, the gateway.
exchange_timeout_s = 120.0
# The gateway's compliance cache fills just after start; until then orders get 2001/2002.
compliance_sync_s = 10.0
DEMO_DURATION_S = 2
DEMO_RATE = 100
# The demo process: its start (imports, connecting) and its run.
demo_timeout_s = 120.0


@pytest.fixture
def exchange(
    nats_url: str, pg_database: str, nats_prefix: str, tmp_path: Path
) -> Iterator[tuple[RunningExchange, Callable[[Any], Any]]]:
    """A running exchange on its own database and prefix, its loop in a background thread;
    with it, the function that runs a coroutine on that loop."""
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="exchange-loop", daemon=True)
    thread.start()

    def on_loop(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(exchange_timeout_s)

    options = RunOptions(
        tmp_path / "exchange", listen="127.0.0.1:0", metrics_port=0, prefix=nats_prefix
    )
    running = exchange_running(options, nats_url, pg_database)
    try:
        yield on_loop(running.__aenter__()), on_loop
        on_loop(running.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(exchange_timeout_s)
        loop.close()


async def wait_until_orders_pass(exchange: RunningExchange) -> None:
    """Place a far-away bid until the gateway accepts it (compliance synced), then cancel it."""
    async with grpc.aio.insecure_channel(exchange.address) as channel:
        stub = order_entry_pb2_grpc.OrderEntryStub(channel)
        metadata = (("authorization", f"Bearer {exchange.config.keys['taker-1']}"),)
        deadline = time.monotonic() + compliance_sync_s
        while True:
            request = order_entry_pb2.PlaceOrderRequest(
                instrument="BTC-USDT",
                side=types_pb2.SIDE_BUY,
                order_type=types_pb2.ORDER_TYPE_LIMIT,
                price="1000",
                quantity="0.0001",
                client_order_id=time.time_ns(),
            )
            reply = await stub.PlaceOrder(request, metadata=metadata, timeout=10)
            report = reply.reports[0]
            if report.kind == types_pb2.EVENT_KIND_ACCEPTED:
                cancel = order_entry_pb2.CancelOrderRequest(order_id=report.order_id)
                await stub.CancelOrder(cancel, metadata=metadata, timeout=10)
                return
            assert time.monotonic() < deadline, f"orders still rejected: {report.reason_name}"
            await asyncio.sleep(0.2)


def test_makers_and_takers_trade_with_every_order_acknowledged_and_no_gap(
    exchange: tuple[RunningExchange, Callable[[Any], Any]],
) -> None:
    running, on_loop = exchange
    on_loop(wait_until_orders_pass(running))

    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "demo", "--config", str(running.config_path),
         "--duration-s", str(DEMO_DURATION_S), "--rate", str(DEMO_RATE), "--json"],
        capture_output=True, text=True, timeout=demo_timeout_s, check=False,
    )  # fmt: skip

    assert result.returncode == demo.EXIT_OK, result.stderr
    summary = json.loads(result.stdout)
    assert summary["gateway"] == running.address
    assert summary["orders_sent"] > 0
    assert summary["acks"] == summary["orders_sent"], f"an order went unacknowledged: {summary}"
    assert summary["fills"] > 0 and summary["maker_fills"] > 0
    assert summary["amends"] > 0 and summary["cancels"] > 0
    assert summary["unexpected_rejects"] == {}, summary["rejects"]
    assert set(summary["rejects"]) <= set(demo.EXPECTED_REJECTS)
    assert summary["call_errors"] == {}
    market_data = summary["market_data"]
    assert market_data["snapshots"] >= 1 and market_data["updates"] > 0
    assert market_data["gaps"] == 0 and market_data["resubscribes"] == 0
    assert summary["ack_latency_ms"]["samples"] == summary["acks"]
    # The status line went to stderr (not a terminal here: whole lines).
    assert "orders" in result.stderr and "acks" in result.stderr


def _closed_port() -> int:
    """A port of 127.0.0.1 on which nothing listens (just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_gateway_exits_3_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {name: f"clk_000000000000_{uuid.uuid4().hex}" for name in demo.MAKER_KEYS}
    keys |= {name: f"clk_000000000000_{uuid.uuid4().hex}" for name in demo.TAKER_KEYS}
    config_path = tmp_path / client_config.FILE_NAME
    address = f"127.0.0.1:{_closed_port()}"
    client_config.save(
        client_config.ClientConfig(gateway=address, api_key="", keys=keys), config_path
    )
    monkeypatch.setattr(demo, "connect_wait_s", 1.0)

    assert demo.main(config_path, 1, 10) == demo.EXIT_UNREACHABLE

    message = capsys.readouterr().err
    assert "cannot reach the gateway" in message and address in message


def test_no_client_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(tmp_path / "missing.json", 1, 10) == demo.EXIT_BAD_CONFIG
    assert "no client config" in capsys.readouterr().err


def test_the_summary_table_flattens_nested_figures() -> None:
    table = demo.summary_table({"fills": 1234, "seed": 98765, "market_data": {"gaps": 0}})
    assert table.splitlines() == [
        "fills             1,234",
        "seed              98765",
        "market_data.gaps  0",
    ]
