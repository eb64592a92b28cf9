"""The engine loop against a real NATS server: journal in, events and market data out.

Method: an in-process engine on a private topology (own stream names), driven through the same
EngineClient the gateway uses; outcomes are read back from the EventBatches, the query subject
and the events stream itself; restart is a new EngineLoop over the same journal and data folder.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine._codes import EventKind, OrderType, Reason, Side, TimeInForce
from engine.journal import EngineClient, new_origin
from engine.loop import start_engine
from engine.markets import BTC, USDT, funding_commands, market_commands
from engine.messages import GetBalances, GetBook, GetStatus, PlaceOrder
from engine.topology import Topology


def buy(account: int, coid: int, price: int, lots: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=account,
        instrument_id=1,
        client_order_id=coid,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price_ticks=price,
        quantity_lots=lots,
    )


def sell(account: int, coid: int, price: int, lots: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=account,
        instrument_id=1,
        client_order_id=coid,
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price_ticks=price,
        quantity_lots=lots,
    )


def test_orders_flow_through_the_journal_and_survive_a_restart(
    nats_url: str, nats_prefix: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        topology = Topology(nats_prefix, "0")
        engine = await start_engine(nats_url, topology, tmp_path, tick_s=0)
        client = await EngineClient.connect(nats_url, topology, new_origin("test"))
        try:
            setup = await client.submit([*market_commands(), *funding_commands([10, 11])])
            rows = setup.event_rows()
            assert set(rows["kind"]) <= {EventKind.APPLIED, EventKind.INSTRUMENT_STATUS}
            batch = await client.submit([sell(11, 1, 300_000, 50), buy(10, 1, 300_001, 20)])
            kinds = batch.event_rows()["kind"].tolist()
            assert kinds.count(EventKind.ACCEPTED) == 2 and kinds.count(EventKind.FILLED) == 1
            transfers = batch.transfer_rows()
            assert transfers["amount_minor"].sum() > 0
            # a buy the account cannot pay for is rejected by the risk stage, not the book
            broke = await client.submit([buy(12, 1, 300_000, 1)])
            assert broke.event_rows()["reason"].tolist() == [Reason.funds_must_be_available]
            balances = (await client.query(GetBalances(account_id=10))).result["balances"]
            by_asset = {b["asset_id"]: b for b in balances}
            assert by_asset[BTC]["available_minor"] == 20 * 10**8 + 20 * 10_000
            assert by_asset[USDT]["held_minor"] == 0
            book = (await client.query(GetBook(instrument_id=1, depth=5))).result
            assert book["asks"] == [[300_000, 30, 1]]
            status = (await client.query(GetStatus(with_state_hash=True))).result
            assert status["journal_seq_applied"] == broke.journal_seq
        finally:
            await engine.stop(snapshot=False)  # as if killed: recovery must replay everything
        restarted = await start_engine(nats_url, topology, tmp_path, tick_s=0)
        try:
            await asyncio.sleep(0.3)
            again = (await client.query(GetStatus(with_state_hash=True))).result
            assert again["state_hash"] == status["state_hash"]
            # nothing was published twice: the events stream holds entry k at position k
            info = await client.js.stream_info(topology.events_stream)
            assert info.state.messages == info.state.last_seq == broke.journal_seq
            more = await client.submit([buy(10, 2, 300_000, 5)])
            assert more.journal_seq == broke.journal_seq + 1
            assert more.event_rows()["kind"].tolist()[:2] == [EventKind.ACCEPTED, EventKind.FILLED]
        finally:
            await restarted.stop()
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("garbage", [b"", b"\xff\x00not msgpack", b"\x81\xa1x\x01"])
def test_an_undecodable_journal_entry_is_skipped_and_answered(
    nats_url: str, nats_prefix: str, tmp_path: Path, garbage: bytes
) -> None:
    async def scenario() -> None:
        topology = Topology(nats_prefix, "0")
        engine = await start_engine(nats_url, topology, tmp_path, tick_s=0)
        client = await EngineClient.connect(nats_url, topology, new_origin("test"))
        try:
            await client.js.publish(topology.journal_subject, garbage)
            ok = await client.submit(market_commands())
            assert ok.journal_seq == 2
            status = (await client.query(GetStatus())).result
            assert status["journal_seq_applied"] == 2
        finally:
            await engine.stop()
            await client.close()

    asyncio.run(scenario())
