"""The gateway end to end: real gRPC calls through a real gateway to a real engine.

Goal: show the order path of the README works as a client sees it: authentication and roles,
rate limits, validation (malformed calls change nothing), fail-closed compliance checks, the
journal, the engine's outcome as execution reports, the Trade stream's batches and unsolicited
reports, market data that is a snapshot then contiguous updates, and control calls that land in
the audit log. Method: each test starts, on its own NATS prefix and PostgreSQL database, the
engine loop (`engine.loop.start_engine`) over the demo market (`engine.markets`), creates API
keys with `gateway.auth.create_api_key`, publishes customer states the way compliance does
(`compliance.customer_state`), starts the gateway with `start_gateway` on uvloop, and talks to
it only through grpc.aio stubs; the journal and audit log are then read straight from JetStream
and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from compliance.customer_state import CustomerState, ensure_bucket, publish_customer_state
from engine._codes import EventKind, InstrumentStatus, OrderStatus, OrderType, Reason, Role, Side
from engine.journal import EngineClient, new_origin
from engine.loop import start_engine
from engine.markets import funding_commands, market_commands
from engine.messages import ENCODER, EventBatch, MarketDataUpdate
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
from gateway.auth import create_api_key, ensure_schema
from gateway.server import Gateway, GatewayConfig, start_gateway

TRADER, MAKER, UNKNOWN = 10, 11, 12  # UNKNOWN has no compliance state
BUY, SELL, LIMIT, MARKET = Side.BUY, Side.SELL, OrderType.LIMIT, OrderType.MARKET


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    uvloop.run(scenario())


@dataclass
class Exchange:
    """What a test talks to: the gateway's channel, keys by name, and the raw NATS/PG ends."""

    gateway: Gateway
    channel: grpc.aio.Channel
    keys: dict[str, str]
    key_ids: dict[str, str]
    admin: EngineClient
    topology: Topology
    database_url: str

    def auth(self, name: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[name]}"),)

    @property
    def orders(self) -> order_entry_pb2_grpc.OrderEntryStub:
        return order_entry_pb2_grpc.OrderEntryStub(self.channel)

    @property
    def account(self) -> account_pb2_grpc.AccountStub:
        return account_pb2_grpc.AccountStub(self.channel)

    @property
    def market_data(self) -> market_data_pb2_grpc.MarketDataStub:
        return market_data_pb2_grpc.MarketDataStub(self.channel)

    @property
    def control(self) -> control_pb2_grpc.ControlStub:
        return control_pb2_grpc.ControlStub(self.channel)

    async def journal_length(self) -> int:
        info = await self.admin.js.stream_info(self.topology.journal_stream)
        return int(info.state.messages)

    async def audit_rows(self) -> list[tuple[str, str, str | None, str]]:
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            cursor = await conn.execute(
                "SELECT actor, action, target, outcome FROM audit_log ORDER BY id"
            )
            return list(await cursor.fetchall())


@contextlib.asynccontextmanager
async def exchange(
    nats_url: str,
    database_url: str,
    prefix: str,
    data_dir: Path,
    **config: Any,
) -> AsyncIterator[Exchange]:
    topology = Topology(prefix, "0")
    engine = await start_engine(nats_url, topology, data_dir, tick_s=0)
    admin = await EngineClient.connect(nats_url, topology, new_origin("test-admin"))
    await admin.submit([*market_commands(), *funding_commands([TRADER, MAKER, UNKNOWN])])
    roles = {
        "trader": (TRADER, Role.TRADER),
        "maker": (MAKER, Role.MARKET_MAKER),
        "unknown": (UNKNOWN, Role.TRADER),
        "risk": (0, Role.RISK_OFFICER),
        "compliance": (0, Role.COMPLIANCE_OFFICER),
    }
    keys = {}
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await ensure_schema(conn)
        for name, (account_id, role) in roles.items():
            keys[name] = await create_api_key(conn, account_id, role, name)
    js = admin.nc.jetstream()
    await ensure_bucket(js, topology)
    for account_id in (TRADER, MAKER):
        state = CustomerState(
            account_id=account_id,
            kyc_verified=True,
            frozen=False,
            sanctioned=False,
            jurisdiction="DE",
            risk_level="low",
            as_of_ns=time.time_ns(),
        )
        await publish_customer_state(js, topology, state)
    settings: dict[str, Any] = {
        "nats_url": nats_url,
        "database_url": database_url,
        "topology": topology,
        "listen_address": "127.0.0.1:0",
        "metrics_port": 0,
    }
    settings.update(config)
    gateway = await start_gateway(GatewayConfig(**settings))
    try:
        assert await gateway.context.compliance.wait_synced(10.0)
        target = f"127.0.0.1:{gateway.port}"
        if "tls_cert_path" in config:
            credentials = grpc.ssl_channel_credentials(config["tls_cert_path"].read_bytes())
            channel = grpc.aio.secure_channel(
                target, credentials, options=(("grpc.ssl_target_name_override", "localhost"),)
            )
        else:
            channel = grpc.aio.insecure_channel(target)
        async with channel:
            yield Exchange(
                gateway,
                channel,
                keys,
                {name: key.split("_")[1] for name, key in keys.items()},
                admin,
                topology,
                database_url,
            )
    finally:
        await gateway.stop(grace_s=0.5)
        await admin.close()
        await engine.stop(snapshot=False)


def place(
    coid: int,
    side: Side,
    price: str,
    quantity: str,
    *,
    instrument: str = "BTC-USDT",
    order_type: OrderType = LIMIT,
) -> order_entry_pb2.PlaceOrderRequest:
    return order_entry_pb2.PlaceOrderRequest(
        instrument=instrument,
        side=side,  # type: ignore[arg-type]
        order_type=order_type,  # type: ignore[arg-type]
        price=price,
        quantity=quantity,
        client_order_id=coid,
    )


def kinds(batch: order_entry_pb2.ReportBatch) -> list[tuple[int, int]]:
    return [(report.kind, report.reason) for report in batch.reports]


async def status_of(call: Coroutine[Any, Any, Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


@pytest.fixture
def start(
    nats_url: str, pg_database: str, nats_prefix: str, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[Exchange]]:
    def starter(**config: Any) -> contextlib.AbstractAsyncContextManager[Exchange]:
        return exchange(nats_url, pg_database, nats_prefix, tmp_path, **config)

    return starter


# -- order entry --


def test_a_funded_trader_places_trades_amends_and_cancels(start: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with start() as ex:
            ask = await ex.orders.PlaceOrder(
                place(1, SELL, "30000", "0.5"), metadata=ex.auth("maker")
            )
            assert kinds(ask) == [(EventKind.ACCEPTED, 0)]
            accepted = ask.reports[0]
            assert (accepted.price, accepted.quantity, accepted.status) == (
                "30000",
                "0.5",
                OrderStatus.NEW,
            )
            assert accepted.instrument == "BTC-USDT" and accepted.journal_seq > 0

            bid = await ex.orders.PlaceOrder(
                place(7, BUY, "30000.1", "0.2"), metadata=ex.auth("trader")
            )
            assert kinds(bid) == [(EventKind.ACCEPTED, 0), (EventKind.FILLED, 0)]
            fill = bid.reports[1]
            assert (fill.price, fill.quantity, fill.leaves_quantity, fill.maker) == (
                "30000",
                "0.2",
                "0",
                False,
            )
            assert fill.status == OrderStatus.FILLED and fill.trade_id > 0

            rest = await ex.orders.PlaceOrder(
                place(8, BUY, "29000", "1"), metadata=ex.auth("trader")
            )
            order_id = rest.reports[0].order_id
            amended = await ex.orders.AmendOrder(
                order_entry_pb2.AmendOrderRequest(order_id=order_id, price="29500", quantity="0.5"),
                metadata=ex.auth("trader"),
            )
            assert kinds(amended) == [(EventKind.AMENDED, 0)]
            assert (amended.reports[0].price, amended.reports[0].leaves_quantity) == (
                "29500",
                "0.5",
            )
            # The gateway forgot the order's instrument (a restart): it asks the engine.
            ex.gateway.context.order_instruments.clear()
            amended = await ex.orders.AmendOrder(
                order_entry_pb2.AmendOrderRequest(order_id=order_id, quantity="0.4"),
                metadata=ex.auth("trader"),
            )
            assert kinds(amended) == [(EventKind.AMENDED, 0)]
            # Someone else's order is unknown, remembered or not: ids cannot be probed.
            foreign = order_entry_pb2.AmendOrderRequest(order_id=order_id, quantity="0.1")
            for _ in range(2):
                probe = await ex.orders.AmendOrder(foreign, metadata=ex.auth("maker"))
                assert kinds(probe) == [(EventKind.REJECTED, Reason.order_must_exist)]
                ex.gateway.context.order_instruments.clear()
            open_orders = await ex.account.GetOpenOrders(
                account_pb2.AccountRequest(), metadata=ex.auth("trader")
            )
            assert [(o.order_id, o.price, o.leaves_quantity) for o in open_orders.orders] == [
                (order_id, "29500", "0.4")
            ]
            one = await ex.account.GetOrder(
                account_pb2.GetOrderRequest(client_order_id=8), metadata=ex.auth("trader")
            )
            assert one.order_id == order_id and one.status == OrderStatus.NEW
            cancelled = await ex.orders.CancelOrder(
                order_entry_pb2.CancelOrderRequest(client_order_id=8), metadata=ex.auth("trader")
            )
            assert kinds(cancelled) == [(EventKind.CANCELLED, Reason.cancelled_by_user)]
            again = await ex.orders.CancelOrder(
                order_entry_pb2.CancelOrderRequest(order_id=order_id), metadata=ex.auth("trader")
            )
            assert kinds(again) == [(EventKind.REJECTED, Reason.order_must_exist)]
            assert again.reports[0].reason_name == "order_must_exist"

            balances = await ex.account.GetBalances(
                account_pb2.AccountRequest(account=TRADER), metadata=ex.auth("trader")
            )
            by_asset = {b.asset: (b.available, b.held) for b in balances.balances}
            assert by_asset["BTC"] == ("20.2", "0")
            # 1,000,000 USDT less 0.2 BTC at 30,000 and the 10 bps taker fee on it
            assert by_asset["USDT"] == ("993994", "0")
            instruments = await ex.account.ListInstruments(
                account_pb2.ListInstrumentsRequest(), metadata=ex.auth("trader")
            )
            assert [i.symbol for i in instruments.instruments] == ["BTC-USDT", "ETH-USDT"]

            gone = await ex.orders.MassCancel(
                order_entry_pb2.MassCancelRequest(instrument="BTC-USDT"), metadata=ex.auth("maker")
            )
            assert kinds(gone) == [(EventKind.CANCELLED, Reason.mass_cancelled)]

    run(scenario)


def test_concurrent_unary_calls_share_entries_and_each_gets_its_own_reports(
    start: Callable[..., Any],
) -> None:
    """Group commit: calls in flight together are journaled as one entry, and each reply holds
    the reports of its own order only (a fill names the caller's side of the trade)."""

    async def scenario() -> None:
        async with start() as ex:
            calls = [
                ex.orders.PlaceOrder(
                    place(coid, SELL if coid % 2 else BUY, "30000", "0.1"),
                    metadata=ex.auth("maker" if coid % 2 else "trader"),
                )
                for coid in range(1, 41)
            ]
            replies = await asyncio.gather(*calls)
            for coid, reply in enumerate(replies, start=1):
                assert {r.client_order_id for r in reply.reports} == {coid}
                assert {r.command_index for r in reply.reports} == {0}
                assert reply.reports[0].kind == EventKind.ACCEPTED
                assert all(not r.maker for r in reply.reports)  # a maker's fill is not ours
            entries = {reply.reports[0].journal_seq for reply in replies}
            assert len(entries) < len(replies)
            fills = sum(r.kind == EventKind.FILLED for reply in replies for r in reply.reports)
            assert fills > 0

    run(scenario)


def test_callers_must_authenticate_and_have_the_role(start: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with start() as ex:
            request = place(1, BUY, "30000", "0.1")
            assert await status_of(ex.orders.PlaceOrder(request)) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
            forged = (("authorization", "Bearer clk_0123456789ab_notthesecret"),)
            assert await status_of(ex.orders.PlaceOrder(request, metadata=forged)) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
            assert await status_of(
                ex.orders.PlaceOrder(request, metadata=ex.auth("compliance"))
            ) == (grpc.StatusCode.PERMISSION_DENIED)
            other = account_pb2.AccountRequest(account=MAKER)
            assert await status_of(ex.account.GetBalances(other, metadata=ex.auth("trader"))) == (
                grpc.StatusCode.PERMISSION_DENIED
            )
            # a compliance officer may read any account
            read = await ex.account.GetBalances(other, metadata=ex.auth("compliance"))
            assert read.account == MAKER and read.balances
            assert await status_of(
                ex.control.GetStatus(control_pb2.StatusRequest(), metadata=ex.auth("trader"))
            ) == (grpc.StatusCode.PERMISSION_DENIED)

    run(scenario)


def test_malformed_calls_are_invalid_arguments_and_journal_nothing(
    start: Callable[..., Any],
) -> None:
    async def scenario() -> None:
        async with start() as ex:
            before = await ex.journal_length()
            cases = [
                (place(1, BUY, "abc", "0.1"), Reason.price_must_be_decimal),
                (place(1, BUY, "30000.05", "0.1"), Reason.price_must_be_multiple_of_tick_size),
                (
                    place(1, BUY, "30000", "0.1", instrument="DOGE-USDT"),
                    Reason.instrument_must_be_known,
                ),
                (place(1, BUY, "", "0.1"), Reason.price_must_be_given_for_limit_order),
                (place(1, 0, "30000", "0.1"), Reason.side_must_be_given),  # type: ignore[arg-type]
            ]
            for request, reason in cases:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await ex.orders.PlaceOrder(request, metadata=ex.auth("trader"))
                error = caught.value
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert reason.name in (error.details() or "")
                assert ("clearline-reason", str(int(reason))) in tuple(
                    error.trailing_metadata() or ()
                )
            unnamed = order_entry_pb2.CancelOrderRequest()
            assert await status_of(ex.orders.CancelOrder(unnamed, metadata=ex.auth("trader"))) == (
                grpc.StatusCode.INVALID_ARGUMENT
            )
            assert await ex.journal_length() == before

    run(scenario)


def test_compliance_and_engine_rejects_are_successful_calls(start: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with start() as ex:

            def rejected() -> float | None:
                labels = {"reason": "customer_state_must_be_known"}
                return metrics.REGISTRY.get_sample_value("clearline_rejects_total", labels)

            counted = rejected() or 0
            before = await ex.journal_length()
            unknown = await ex.orders.PlaceOrder(
                place(1, BUY, "30000", "0.1"), metadata=ex.auth("unknown")
            )
            assert kinds(unknown) == [(EventKind.REJECTED, Reason.customer_state_must_be_known)]
            assert unknown.reports[0].status == OrderStatus.REJECTED
            assert await ex.journal_length() == before  # a 2xxx reject never reaches the engine
            assert rejected() == counted + 1
            # the customer can still cancel: taking risk off is never blocked
            cancel = await ex.orders.MassCancel(
                order_entry_pb2.MassCancelRequest(), metadata=ex.auth("unknown")
            )
            assert cancel.reports == []

            first = await ex.orders.PlaceOrder(
                place(5, BUY, "29000", "0.1"), metadata=ex.auth("trader")
            )
            assert kinds(first) == [(EventKind.ACCEPTED, 0)]
            duplicate = await ex.orders.PlaceOrder(
                place(5, BUY, "29001", "0.1"), metadata=ex.auth("trader")
            )
            assert kinds(duplicate) == [(EventKind.REJECTED, Reason.client_order_id_must_be_unique)]
            broke = await ex.orders.PlaceOrder(
                place(6, BUY, "30000", "99"), metadata=ex.auth("trader")
            )
            assert kinds(broke) == [(EventKind.REJECTED, Reason.funds_must_be_available)]

    run(scenario)


def test_the_rate_limit_refuses_a_call_whole(start: Callable[..., Any]) -> None:
    from gateway.ratelimit import RateLimits

    async def scenario() -> None:
        limits = RateLimits(orders_per_s_max=1, orders_burst_max=2)
        async with start(rate_limits=limits) as ex:
            request = order_entry_pb2.MassCancelRequest()
            for _ in range(2):
                await ex.orders.MassCancel(request, metadata=ex.auth("trader"))
            assert await status_of(ex.orders.MassCancel(request, metadata=ex.auth("trader"))) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED
            )
            # other keys have buckets of their own
            await ex.orders.MassCancel(request, metadata=ex.auth("maker"))

    run(scenario)


# -- the Trade stream --


def command(**one: Any) -> order_entry_pb2.Command:
    return order_entry_pb2.Command(**one)


def test_trade_stream_answers_batches_and_pushes_unsolicited_reports(
    start: Callable[..., Any],
) -> None:
    async def scenario() -> None:
        async with start() as ex:
            maker = ex.orders.Trade(metadata=ex.auth("maker"))
            await maker.write(
                order_entry_pb2.CommandBatch(
                    batch_id=41,
                    commands=[
                        command(place=place(1, SELL, "30000", "0.3")),
                        command(place=place(2, SELL, "30000.x", "0.3")),
                        command(),
                        command(cancel=order_entry_pb2.CancelOrderRequest(order_id=999)),
                        command(place=place(3, SELL, "30010", "0.3")),
                    ],
                )
            )
            reply = await asyncio.wait_for(maker.read(), 10)
            assert reply.batch_id == 41
            assert [(r.command_index, r.kind, r.reason) for r in reply.reports] == [
                (0, EventKind.ACCEPTED, 0),
                (1, EventKind.REJECTED, Reason.price_must_be_decimal),
                (2, EventKind.REJECTED, Reason.command_must_be_given),
                (3, EventKind.REJECTED, Reason.order_must_exist),
                (4, EventKind.ACCEPTED, 0),
            ]
            resting = reply.reports[0].order_id

            # another account's unary order fills the maker: the fill arrives unsolicited
            taker = await ex.orders.PlaceOrder(
                place(9, BUY, "30000", "0.1"), metadata=ex.auth("trader")
            )
            assert kinds(taker)[-1] == (EventKind.FILLED, 0)
            pushed = await asyncio.wait_for(maker.read(), 10)
            assert pushed.batch_id == 0
            [maker_fill] = pushed.reports
            assert (maker_fill.kind, maker_fill.maker, maker_fill.order_id) == (
                EventKind.FILLED,
                True,
                resting,
            )
            assert (maker_fill.leaves_quantity, maker_fill.status) == (
                "0.2",
                OrderStatus.PARTIALLY_FILLED,
            )

            # the risk desk's cancel-all reaches the stream too
            await ex.control.CancelAll(
                control_pb2.CancelAllRequest(account=MAKER), metadata=ex.auth("risk")
            )
            desk = await asyncio.wait_for(maker.read(), 10)
            assert desk.batch_id == 0
            assert sorted(r.reason for r in desk.reports) == [Reason.mass_cancelled] * 2

            oversized = order_entry_pb2.CommandBatch(batch_id=42, commands=[command()] * 1_001)
            await maker.write(oversized)
            too_big = await asyncio.wait_for(maker.read(), 10)
            assert too_big.batch_id == 42
            assert kinds(too_big) == [(EventKind.REJECTED, Reason.batch_must_not_exceed_maximum)]
            await maker.done_writing()
            assert await maker.code() == grpc.StatusCode.OK

    run(scenario)


def columns_of(reply: order_entry_pb2.ReportBatch) -> list[tuple[int, int, int, int]]:
    c = reply.columns
    return list(zip(c.command_indexes, c.kinds, c.reasons, c.client_order_ids, strict=True))


def test_a_columns_stream_places_blocks_of_orders_and_reads_reports_as_columns(
    start: Callable[..., Any],
) -> None:
    """A market maker's PlaceColumns block after ordinary commands: each order is checked and
    answered at its own command index, the ones that pass trade, and every report of the
    stream (replies and fills as maker) comes in ReportColumns with ticks and lots."""

    async def scenario() -> None:
        async with start() as ex:
            columns = (("clearline-reports", "columns"),)
            maker = ex.orders.Trade(metadata=(*ex.auth("maker"), *columns))
            await maker.write(
                order_entry_pb2.CommandBatch(
                    batch_id=7,
                    commands=[command(cancel=order_entry_pb2.CancelOrderRequest(order_id=999))],
                    places=order_entry_pb2.PlaceColumns(
                        instrument="BTC-USDT",
                        order_type=LIMIT,
                        sides=[SELL, SELL, 0, SELL],
                        price_ticks=[300_000, 300_010, 300_000, 5],  # 5 ticks: below the band
                        quantity_lots=[3_000, 3_000, 1, 1],
                        client_order_ids=[1, 2, 3, 4],
                    ),
                )
            )
            reply = await asyncio.wait_for(maker.read(), 10)
            assert reply.batch_id == 7 and not reply.reports
            assert columns_of(reply) == [
                (0, EventKind.REJECTED, Reason.order_must_exist, 0),
                (1, EventKind.ACCEPTED, 0, 1),
                (2, EventKind.ACCEPTED, 0, 2),
                (3, EventKind.REJECTED, Reason.side_must_be_given, 3),
                (4, EventKind.REJECTED, Reason.price_must_be_within_band, 4),
            ]
            assert list(reply.columns.instrument_ids)[1:] == [1, 1, 1, 1]
            assert list(reply.columns.price_ticks)[1:3] == [300_000, 300_010]
            seqs = set(reply.columns.journal_seqs) - {0}
            assert len(seqs) == 1, "the batch is one journal entry"

            # a taker's unary order fills the first sell: the fill reaches the maker as columns
            await ex.orders.PlaceOrder(place(9, BUY, "30000", "0.1"), metadata=ex.auth("trader"))
            pushed = await asyncio.wait_for(maker.read(), 10)
            assert pushed.batch_id == 0 and not pushed.reports
            fill = pushed.columns
            assert (list(fill.kinds), list(fill.makers), list(fill.client_order_ids)) == (
                [EventKind.FILLED],
                [True],
                [1],
            )
            assert (list(fill.quantity_lots), list(fill.leaves_lots)) == ([1_000], [2_000])
            assert list(fill.statuses) == [OrderStatus.PARTIALLY_FILLED]

            # the same block on a stream without columns is answered in messages
            plain = ex.orders.Trade(metadata=ex.auth("maker"))
            await plain.write(
                order_entry_pb2.CommandBatch(
                    batch_id=8,
                    places=order_entry_pb2.PlaceColumns(
                        instrument="BTC-USDT",
                        order_type=LIMIT,
                        sides=[SELL, 0],
                        price_ticks=[300_020, 300_000],
                        quantity_lots=[10, 1],
                        client_order_ids=[5, 6],
                    ),
                )
            )
            answer = await asyncio.wait_for(plain.read(), 10)
            assert [(r.command_index, r.kind, r.reason) for r in answer.reports] == [
                (0, EventKind.ACCEPTED, 0),
                (1, EventKind.REJECTED, Reason.side_must_be_given),
            ]
            assert (answer.reports[0].price, answer.reports[0].quantity) == ("30002", "0.001")
            assert answer.reports[1].price == "30000"
            await plain.done_writing()
            assert await plain.code() == grpc.StatusCode.OK
            # the account's order from the other stream reaches this one too, as columns
            await maker.done_writing()
            rest = []
            while (more := await asyncio.wait_for(maker.read(), 10)) != grpc.aio.EOF:
                rest.append(more)
            assert [(r.batch_id, list(r.columns.client_order_ids)) for r in rest] == [(0, [5])]
            assert await maker.code() == grpc.StatusCode.OK

            bad = ex.orders.Trade(metadata=(*ex.auth("maker"), ("clearline-reports", "csv")))
            assert await status_of(bad.read()) == grpc.StatusCode.INVALID_ARGUMENT

    run(scenario)


def test_a_stream_gets_its_maker_fill_from_an_entry_it_shares_with_the_taker(
    start: Callable[..., Any],
) -> None:
    """Group commit puts a stream's batch (a resting sell) and another account's crossing buy
    in one entry, in that order. The trade's row belongs to the buy's command, so the batch's
    reply (its own commands' reports) holds only the ACCEPTED; the maker's fill must still
    reach the stream, as an unsolicited report. Method: the journal append of a first call is
    held until both have joined the next group."""

    async def scenario() -> None:
        async with start() as ex:
            engine = ex.gateway.context.engine
            append, holding, gate = engine.append, asyncio.Event(), asyncio.Event()

            async def held(*args: Any, **kwargs: Any) -> Any:
                holding.set()
                await gate.wait()
                return await append(*args, **kwargs)

            engine.append = held  # type: ignore[method-assign]
            maker = ex.orders.Trade(metadata=ex.auth("maker"))
            first = asyncio.ensure_future(
                ex.orders.PlaceOrder(place(1, BUY, "29000", "0.01"), metadata=ex.auth("trader"))
            )
            await asyncio.wait_for(holding.wait(), 10)  # the first call is being journaled
            await maker.write(
                order_entry_pb2.CommandBatch(
                    batch_id=1, commands=[command(place=place(1, SELL, "30000", "0.01"))]
                )
            )
            while sum(group.size for group in engine._groups) < 1:
                await asyncio.sleep(0.01)
            taker = asyncio.ensure_future(
                ex.orders.PlaceOrder(place(2, BUY, "30000", "0.01"), metadata=ex.auth("trader"))
            )
            while sum(group.size for group in engine._groups) < 2:
                await asyncio.sleep(0.01)
            gate.set()
            await first
            taken = await taker
            reply = await asyncio.wait_for(maker.read(), 10)
            assert reply.batch_id == 1
            assert reply.reports[0].journal_seq == taken.reports[0].journal_seq, "not shared"
            assert kinds(reply) == [(EventKind.ACCEPTED, 0)]
            [trade] = [r.trade_id for r in taken.reports if r.kind == EventKind.FILLED]
            pushed = await asyncio.wait_for(maker.read(), 10)
            assert pushed.batch_id == 0
            assert [(r.kind, r.maker, r.trade_id) for r in pushed.reports] == [
                (EventKind.FILLED, True, trade)
            ]
            await maker.done_writing()
            assert await asyncio.wait_for(maker.read(), 10) == grpc.aio.EOF

    run(scenario)


def test_a_pipelined_stream_is_answered_in_order_and_its_batches_share_entries(
    start: Callable[..., Any],
) -> None:
    """A client that writes batches without waiting gets one reply per batch, in its order,
    each with only its own reports (indexes within the batch); batches that arrive while an
    entry is being journaled share the next entry (group commit), and a later batch meets an
    earlier one's resting orders."""

    async def scenario() -> None:
        async with start() as ex:
            maker = ex.orders.Trade(metadata=ex.auth("maker"))
            batches = 40
            for b in range(1, batches + 1):
                side = SELL if b % 2 else BUY
                price = "30000" if side == SELL else "29990"
                await maker.write(
                    order_entry_pb2.CommandBatch(
                        batch_id=b,
                        commands=[
                            command(place=place(b * 10 + i, side, price, "0.01")) for i in range(3)
                        ],
                    )
                )
            # the last batch crosses the first one's resting sells
            await maker.write(
                order_entry_pb2.CommandBatch(
                    batch_id=batches + 1,
                    commands=[command(place=place(9_999, BUY, "30000", "0.01"))],
                )
            )
            await maker.done_writing()
            replies = [await asyncio.wait_for(maker.read(), 10) for _ in range(batches + 1)]
            assert [r.batch_id for r in replies] == list(range(1, batches + 2))
            for reply in replies[:-1]:
                assert [(r.command_index, r.kind) for r in reply.reports] == [
                    (i, EventKind.ACCEPTED) for i in range(3)
                ]
                assert [r.client_order_id for r in reply.reports] == [
                    reply.batch_id * 10 + i for i in range(3)
                ]
            # the same account on both sides: self-trade prevention cancels the taker
            assert {r.client_order_id for r in replies[-1].reports} == {9_999}
            assert kinds(replies[-1]) == [
                (EventKind.ACCEPTED, 0),
                (EventKind.CANCELLED, Reason.self_trade_prevented),
            ]
            seqs = [r.reports[0].journal_seq for r in replies]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) < len(seqs), "no two batches shared an entry"
            assert await maker.code() == grpc.StatusCode.OK

    run(scenario)


def test_a_client_that_disconnects_mid_stream_loses_nothing_journaled(
    start: Callable[..., Any],
) -> None:
    async def scenario() -> None:
        async with start() as ex:
            before = await ex.journal_length()
            stream = ex.orders.Trade(metadata=ex.auth("trader"))
            await stream.write(
                order_entry_pb2.CommandBatch(
                    batch_id=1, commands=[command(place=place(77, BUY, "29000", "0.1"))]
                )
            )
            deadline = time.monotonic() + 10
            while await ex.journal_length() == before:
                assert time.monotonic() < deadline, "the batch never reached the journal"
                await asyncio.sleep(0.01)
            stream.cancel()  # gone before its reply
            deadline = time.monotonic() + 10
            while True:
                orders = await ex.account.GetOpenOrders(
                    account_pb2.AccountRequest(), metadata=ex.auth("trader")
                )
                if [o.client_order_id for o in orders.orders] == [77]:
                    break
                assert time.monotonic() < deadline, "the journaled order was not applied"
                await asyncio.sleep(0.05)
            # and the account can carry on, on a new stream
            again = ex.orders.Trade(metadata=ex.auth("trader"))
            await again.write(
                order_entry_pb2.CommandBatch(
                    batch_id=2,
                    commands=[
                        command(cancel=order_entry_pb2.CancelOrderRequest(client_order_id=77))
                    ],
                )
            )
            reply = await asyncio.wait_for(again.read(), 10)
            assert kinds(reply) == [(EventKind.CANCELLED, Reason.cancelled_by_user)]

            # Events the gateway itself missed (journal sequence jumps): the stream cannot know
            # which reports it lost, so it ends and the client resynchronises.
            hub = ex.gateway.context.events
            skipped = EventBatch(
                shard="0",
                journal_seq=hub.journal_seq_seen + 3,
                origin="elsewhere",
                batch_id=1,
                ts_ns=1,
                events=b"",
            )
            hub.on_batch(skipped)
            assert await asyncio.wait_for(again.code(), 10) == grpc.StatusCode.UNAVAILABLE

    run(scenario)


# -- market data --


def test_book_stream_is_a_snapshot_then_contiguous_updates(start: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with start() as ex:
            auth = ex.auth("trader")
            await ex.orders.PlaceOrder(place(1, SELL, "30010", "0.5"), metadata=ex.auth("maker"))
            book = ex.market_data.StreamBook(
                market_data_pb2.BookRequest(instrument="BTC-USDT"), metadata=auth
            )
            trades = ex.market_data.StreamTrades(
                market_data_pb2.InstrumentRequest(instrument="BTC-USDT"), metadata=auth
            )
            bbo = ex.market_data.StreamBbo(
                market_data_pb2.InstrumentRequest(instrument="BTC-USDT"), metadata=auth
            )
            snapshot = await asyncio.wait_for(book.read(), 10)
            assert snapshot.snapshot and snapshot.status == InstrumentStatus.OPEN
            assert [(lv.price, lv.quantity, lv.order_count) for lv in snapshot.asks] == [
                ("30010", "0.5", 1)
            ]
            first_bbo = await asyncio.wait_for(bbo.read(), 10)
            assert (first_bbo.bid_price, first_bbo.ask_price) == ("", "30010")

            for coid, price in enumerate(["29990", "29995", "29990"], start=10):
                await ex.orders.PlaceOrder(place(coid, BUY, price, "0.1"), metadata=auth)
            await ex.orders.PlaceOrder(place(20, BUY, "30010", "0.2"), metadata=auth)  # trades
            updates = [await asyncio.wait_for(book.read(), 10) for _ in range(4)]
            sequences = [snapshot.sequence, *(u.sequence for u in updates)]
            assert sequences == list(range(snapshot.sequence, snapshot.sequence + 5))
            assert not any(u.snapshot for u in updates)
            assert [(lv.price, lv.quantity) for lv in updates[2].bids] == [("29990", "0.2")]
            assert [(lv.price, lv.quantity) for lv in updates[3].asks] == [("30010", "0.3")]

            trade = await asyncio.wait_for(trades.read(), 10)
            assert (trade.price, trade.quantity, trade.aggressor_side) == ("30010", "0.2", BUY)
            assert trade.sequence == updates[3].sequence
            best = first_bbo
            while best.sequence < updates[3].sequence:
                best = await asyncio.wait_for(bbo.read(), 10)
            assert (best.bid_price, best.bid_quantity) == ("29995", "0.1")
            assert (best.ask_price, best.ask_quantity) == ("30010", "0.3")

            # A gap in what the gateway receives: the stream starts over from a snapshot.
            fake = MarketDataUpdate(
                instrument_id=1, sequence=updates[3].sequence + 5, ts_ns=1, journal_seq=0
            )
            await ex.admin.nc.publish(ex.topology.market_data_subject(1), ENCODER.encode(fake))
            resent = await asyncio.wait_for(book.read(), 10)
            assert resent.snapshot and resent.sequence == updates[3].sequence
            await ex.orders.PlaceOrder(place(21, BUY, "29980", "0.1"), metadata=auth)
            after = await asyncio.wait_for(book.read(), 10)
            assert not after.snapshot and after.sequence == resent.sequence + 1

            got = await ex.market_data.GetBook(
                market_data_pb2.BookRequest(instrument="BTC-USDT", depth=2), metadata=auth
            )
            assert [lv.price for lv in got.bids] == ["29995", "29990"]
            assert got.sequence == after.sequence
            missing = market_data_pb2.BookRequest(instrument="NOPE")
            assert await status_of(ex.market_data.GetBook(missing, metadata=auth)) == (
                grpc.StatusCode.NOT_FOUND
            )
            for call in (book, trades, bbo):
                call.cancel()

    run(scenario)


# -- control --


def test_control_calls_act_through_the_journal_and_are_audited(start: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with start() as ex:
            risk, trader = ex.auth("risk"), ex.auth("trader")
            halted = await ex.control.HaltInstrument(
                control_pb2.HaltRequest(instrument="BTC-USDT"), metadata=risk
            )
            assert halted.reason == 0 and halted.journal_seq > 0
            refused = await ex.orders.PlaceOrder(place(1, BUY, "30000", "0.1"), metadata=trader)
            assert kinds(refused) == [(EventKind.REJECTED, Reason.instrument_must_be_open)]
            status = await ex.control.GetStatus(control_pb2.StatusRequest(), metadata=risk)
            assert status.instruments[0].status == InstrumentStatus.HALTED
            assert status.journal_seq_applied >= halted.journal_seq and status.state_hash
            await ex.control.ResumeInstrument(
                control_pb2.ResumeRequest(instrument="BTC-USDT"), metadata=risk
            )
            unknown = await ex.control.HaltInstrument(
                control_pb2.HaltRequest(instrument="NOPE"), metadata=risk
            )
            assert unknown.reason_name == "instrument_must_be_known" and unknown.journal_seq == 0

            await ex.orders.PlaceOrder(place(2, BUY, "29000", "0.1"), metadata=trader)
            killed = await ex.control.SetKillSwitch(
                control_pb2.KillSwitchRequest(account=TRADER, on=True), metadata=risk
            )
            assert killed.orders_cancelled == 1
            blocked = await ex.orders.PlaceOrder(place(3, BUY, "29000", "0.1"), metadata=trader)
            assert kinds(blocked) == [
                (EventKind.REJECTED, Reason.account_must_not_be_kill_switched)
            ]
            await ex.control.SetKillSwitch(
                control_pb2.KillSwitchRequest(account=TRADER, on=False), metadata=risk
            )

            limits = control_pb2.RiskLimits(
                account=TRADER, open_orders_max=1, order_notional_max={"USDT": "5000"}
            )
            assert (await ex.control.SetRiskLimits(limits, metadata=risk)).reason == 0
            read = await ex.control.GetRiskLimits(
                control_pb2.RiskLimitsRequest(account=TRADER), metadata=risk
            )
            assert (read.open_orders_max, dict(read.order_notional_max)) == (1, {"USDT": "5000"})
            big = await ex.orders.PlaceOrder(place(4, BUY, "29000", "1"), metadata=trader)
            assert kinds(big) == [(EventKind.REJECTED, Reason.order_notional_must_not_exceed_limit)]
            bad = control_pb2.RiskLimits(account=TRADER, order_notional_max={"XYZ": "1"})
            assert await status_of(ex.control.SetRiskLimits(bad, metadata=risk)) == (
                grpc.StatusCode.INVALID_ARGUMENT
            )

            cancel_all = await ex.control.CancelAll(control_pb2.CancelAllRequest(), metadata=risk)
            assert cancel_all.reason == 0
            snapshot = await ex.control.TakeSnapshot(control_pb2.SnapshotRequest(), metadata=risk)
            assert "state_hash" in snapshot.detail
            denied = ex.control.TakeSnapshot(
                control_pb2.SnapshotRequest(), metadata=ex.auth("compliance")
            )
            assert await status_of(denied) == grpc.StatusCode.PERMISSION_DENIED

            rows = await ex.audit_rows()
            risk_id, compliance_id = ex.key_ids["risk"], ex.key_ids["compliance"]
            assert {actor for actor, *_ in rows} == {risk_id, compliance_id}
            done = [(action, target, outcome) for actor, action, target, outcome in rows]
            assert ("halt_instrument", "instrument:BTC-USDT", "requested") in done
            assert ("halt_instrument", "instrument:BTC-USDT", "ok") in done
            assert ("halt_instrument", "instrument:NOPE", "instrument_must_be_known") in done
            assert ("set_kill_switch", f"account:{TRADER}", "ok") in done
            assert ("set_risk_limits", f"account:{TRADER}", "invalid_argument") in done
            assert ("cancel_all", "account:all", "ok") in done
            assert ("get_status", None, "ok") in done and ("take_snapshot", None, "ok") in done
            assert (compliance_id, "take_snapshot", None, "permission_denied") in rows

    run(scenario)


# -- the server itself --


def test_health_reflection_and_metrics_are_served(start: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with start() as ex:
            health = health_pb2_grpc.HealthStub(ex.channel)
            check = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            named = health_pb2.HealthCheckRequest(service="clearline.v1.OrderEntry")
            assert (await health.Check(named)).status == health_pb2.HealthCheckResponse.SERVING

            reflect = reflection_pb2_grpc.ServerReflectionStub(ex.channel).ServerReflectionInfo()
            await reflect.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            answer = await reflect.read()
            services = {s.name for s in answer.list_services_response.service}
            assert {"clearline.v1.OrderEntry", "clearline.v1.Control"} <= services
            await reflect.done_writing()

            await ex.orders.MassCancel(
                order_entry_pb2.MassCancelRequest(), metadata=ex.auth("trader")
            )
            url = f"http://127.0.0.1:{ex.gateway.metrics_port}/metrics"
            text = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
            assert (
                'clearline_grpc_calls_total{code="OK",method="/clearline.v1.OrderEntry/MassCancel"}'
                in text
            )

    run(scenario)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a test certificate")
def test_tls_when_a_certificate_is_configured(start: Callable[..., Any], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = (
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
        " -addext subjectAltName=DNS:localhost"
    )
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )

    async def scenario() -> None:
        async with start(tls_cert_path=cert, tls_key_path=key) as ex:
            instruments = await ex.account.ListInstruments(
                account_pb2.ListInstrumentsRequest(), metadata=ex.auth("trader")
            )
            assert len(instruments.instruments) == 2
            plain = grpc.aio.insecure_channel(f"127.0.0.1:{ex.gateway.port}")
            async with plain:
                stub = account_pb2_grpc.AccountStub(plain)
                call = stub.ListInstruments(
                    account_pb2.ListInstrumentsRequest(), metadata=ex.auth("trader"), timeout=2
                )
                assert await status_of(call) in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )

    run(scenario)


def test_the_gateway_runs_as_a_process_and_stops_on_sigterm(
    nats_url: str, pg_database: str, nats_prefix: str, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        topology = Topology(nats_prefix, "0")
        engine = await start_engine(nats_url, topology, tmp_path, tick_s=0)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.server",
            f"--nats-url={nats_url}",
            f"--database-url={pg_database}",
            f"--prefix={nats_prefix}",
            f"--listen=127.0.0.1:{port}",
            "--metrics-port=-1",
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest(service="clearline.v1.MarketData")
                deadline = time.monotonic() + 20
                while True:
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        reply = await health.Check(request, timeout=1)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    assert time.monotonic() < deadline, "the gateway process never served"
                    await asyncio.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 20) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await engine.stop(snapshot=False)

    run(scenario)
