"""The engine loop against a real NATS server: journal in, events and market data out.

Method: an in-process engine on a private topology (own stream names), driven through the same
EngineClient the gateway uses; outcomes are read back from the EventBatches, the query subject
and the events stream itself; restart is a new EngineLoop over the same journal and data folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from engine._codes import EventKind, OrderType, Reason, Side, TimeInForce
from engine.journal import EngineClient, new_origin
from engine.loop import EngineLoop, start_engine
from engine.markets import BTC, USDT, funding_commands, market_commands
from engine.messages import (
    EVENTS_DECODER,
    GetAllBalances,
    GetBalances,
    GetBook,
    GetStatus,
    JournalEntry,
    PlaceOrder,
)
from engine.shard import Shard
from engine.topology import Topology


@contextlib.asynccontextmanager
async def engine_running(
    nats_url: str, nats_prefix: str, tmp_path: Path, tick_s: float = 0
) -> AsyncIterator[tuple[EngineLoop, EngineClient, Topology]]:
    """Shard 0's engine on a private prefix and a client of it; both stopped on exit."""
    topology = Topology(nats_prefix, "0")
    engine = await start_engine(nats_url, topology, tmp_path, tick_s=tick_s)
    client = await EngineClient.connect(nats_url, topology, new_origin("test"))
    try:
        yield engine, client, topology
    finally:
        await engine.stop()
        await client.close()


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
            pages, after = [], -1
            while after is not None:  # every account's balances, two accounts a page
                page = await client.query(GetAllBalances(after_account_id=after, accounts_max=2))
                pages.append(page.result["balances"])
                after = page.result["next_after"]
            everything = [row for rows in pages for row in rows]
            assert len(pages) >= 2 and [r[0] for r in everything] == sorted(
                r[0] for r in everything
            )
            for asset in (BTC, USDT):  # the external account holds minus all the others
                assert sum(r[2] + r[3] for r in everything if r[1] == asset) == 0
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
        async with engine_running(nats_url, nats_prefix, tmp_path) as (_, client, topology):
            await client.js.publish(topology.journal_subject, garbage)
            ok = await client.submit(market_commands())
            assert ok.journal_seq == 2
            status = (await client.query(GetStatus())).result
            assert status["journal_seq_applied"] == 2

    asyncio.run(scenario())


def test_group_commit_journals_concurrent_callers_together_and_keeps_their_places(
    nats_url: str, nats_prefix: str, tmp_path: Path
) -> None:
    """Many concurrent appends share few journal entries; each caller learns where its own
    commands sit in the shared entry, and their outcomes are those commands' and no others'."""

    async def scenario() -> None:
        async with engine_running(nats_url, nats_prefix, tmp_path) as (_, client, _):
            await client.submit([*market_commands(), *funding_commands(range(10, 60))])

            async def one(account: int) -> tuple[int, int, int]:
                await asyncio.sleep(0.001 * (account % 5))  # some join a group in flight
                group, offset = client.join_group(
                    [buy(account, 1, 290_000 + account, 1), buy(account, 2, 280_000, 2)]
                )
                seq, future = await asyncio.shield(group.journaled)
                batch = await asyncio.shield(future)
                rows = batch.event_rows()
                ours = (rows["command_index"] >= offset) & (rows["command_index"] < offset + 2)
                mine = rows[ours & (rows["kind"] != EventKind.BOOK_DELTA)]
                assert mine["kind"].tolist() == [EventKind.ACCEPTED] * 2
                assert mine["account_id"].tolist() == [account, account]
                assert mine["client_order_id"].tolist() == [1, 2]
                return seq, offset, batch.journal_seq

            results = await asyncio.gather(*(one(account) for account in range(10, 60)))
            assert all(seq == applied for seq, _, applied in results)
            entries = {seq for seq, _, _ in results}
            assert len(entries) < len(results)  # grouped: fewer entries than callers
            for entry in entries:  # every entry's callers hold disjoint, packed positions
                offsets = sorted(offset for seq, offset, _ in results if seq == entry)
                assert offsets == list(range(0, 2 * len(offsets), 2))
            book = (await client.query(GetBook(instrument_id=1, depth=100))).result
            assert sum(level[2] for level in book["bids"]) == 100

    asyncio.run(scenario())


def test_a_lost_event_publish_is_sent_again_with_everything_after_it(
    nats_url: str, nats_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconnect can drop an EventBatch publish without a word. Every later publish names its
    predecessor as the stream's last message, so the stream refuses them all; once the lost one
    is overdue the engine sends it and the whole refused tail again, in one go, and the events
    stream ends with entry k at position k. Method: the engine's publish of entry 3 is dropped
    on the floor (a future that never resolves), as the reconnect would."""
    monkeypatch.setattr("engine.loop.publish_ack_timeout_s", 0.3)

    async def scenario() -> None:
        async with engine_running(nats_url, nats_prefix, tmp_path) as (engine, client, topology):
            publish_async = engine._js.publish_async
            dropped: list[str] = []

            async def lossy(
                subject: str, payload: bytes, **kwargs: object
            ) -> asyncio.Future[object]:
                headers = kwargs.get("headers") or {}
                assert isinstance(headers, dict)
                if headers.get("Nats-Msg-Id") == topology.event_message_id(3) and not dropped:
                    dropped.append(headers["Nats-Msg-Id"])
                    return asyncio.get_running_loop().create_future()  # never sent, never acked
                return await publish_async(subject, payload, **kwargs)  # type: ignore[arg-type]

            engine._js.publish_async = lossy
            await client.submit([*market_commands(), *funding_commands(range(10, 20))])
            appended = [await client.append([buy(10 + n, 1, 290_000, 1)]) for n in range(8)]
            batches = await asyncio.wait_for(asyncio.gather(*(f for _, f in appended)), 10)
            assert dropped and [b.journal_seq for b in batches] == list(range(2, 10))
            # The outcomes reach subscribers over core NATS even while the stream refuses them;
            # the stream catches up once the lost one is overdue (publish_ack_timeout_s).
            for _ in range(200):  # bounded, not a timed assertion
                info = await client.js.stream_info(topology.events_stream)
                if info.state.last_seq >= 9:
                    break
                await asyncio.sleep(0.05)
            assert info.state.messages == info.state.last_seq == 9
            for seq in range(1, 10):
                msg = await client.js.get_msg(topology.events_stream, seq=seq)
                assert EVENTS_DECODER.decode(msg.data).journal_seq == seq

    asyncio.run(scenario())


def test_an_outcome_too_large_for_one_nats_message_goes_compressed(
    nats_url: str, nats_prefix: str, tmp_path: Path
) -> None:
    """3,000 orders that all trade in one entry: their rows (about 2 MB) are over NATS's 1 MB
    max_payload, which would stop the engine at that entry on every restart. The engine
    publishes them zlib-compressed instead, and a reader gets the rows an in-process shard
    computes for the same entries."""

    async def scenario() -> None:
        setup = [*market_commands(), *funding_commands([10, 11])]
        crossing = [sell(10, n, 300_000, 1) for n in range(1, 1_501)]
        crossing += [buy(11, n, 300_000, 1) for n in range(1, 1_501)]
        async with engine_running(nats_url, nats_prefix, tmp_path) as (_, client, topology):
            await client.submit(setup)
            batch = await client.submit(crossing)
            message = await client.js.get_msg(topology.events_stream, seq=batch.journal_seq)
            assert len(message.data) < client.nc.max_payload
            stored = EVENTS_DECODER.decode(message.data)
            assert stored.codec == 1
            assert len(stored.events) + len(stored.transfers) < len(message.data)
            shard = Shard()
            shard.apply(1, JournalEntry(origin="t", batch_id=1, ts_ns=1, commands=setup))
            applied = shard.apply(
                2, JournalEntry(origin="t", batch_id=2, ts_ns=1, commands=crossing)
            )
            assert applied is not None
            assert (applied.events["kind"] == EventKind.FILLED).sum() == 1_500
            assert applied.events.nbytes + applied.transfers.nbytes > client.nc.max_payload
            for read in (stored, batch):
                assert (
                    read.event_rows()[["kind", "order_id", "trade_id"]].tolist()
                    == applied.events[["kind", "order_id", "trade_id"]].tolist()
                )
                assert read.transfer_rows().tolist() == applied.transfers.tolist()
            status = (await client.query(GetStatus())).result
            assert status["journal_seq_applied"] == 2

    asyncio.run(scenario())


def test_a_quiet_shard_ticks_only_to_expire_a_due_gtd_order(
    nats_url: str, nats_prefix: str, tmp_path: Path
) -> None:
    """Time moves only through the journal, so a quiet engine journals an AdvanceTime: only
    when a resting GTD order is due (a tick every idle second would fill the journal, the
    events stream and the ledger with empty entries). Method: an idle engine with a short tick;
    the journal must not grow while nothing is due, and must grow by exactly the tick that
    expires a GTD order once its time has come."""

    async def scenario() -> None:
        async with engine_running(nats_url, nats_prefix, tmp_path, tick_s=0.1) as (
            _,
            client,
            topology,
        ):
            await client.submit([*market_commands(), *funding_commands([10])])
            resting = await client.submit([buy(10, 1, 290_000, 1)])
            await asyncio.sleep(0.5)  # five idle ticks' time, nothing due
            info = await client.js.stream_info(topology.journal_stream)
            assert info.state.last_seq == resting.journal_seq
            expire_ts_ns = time.time_ns() + 300_000_000
            gtd = msgspec.structs.replace(
                buy(10, 2, 290_000, 1), time_in_force=TimeInForce.GTD, expire_ts_ns=expire_ts_ns
            )
            placed = await client.submit([gtd])
            assert placed.event_rows()["kind"].tolist()[0] == EventKind.ACCEPTED
            for _ in range(50):
                book = (await client.query(GetBook(instrument_id=1, depth=1))).result
                if book["bids"][0][2] == 1:  # the GTD order is gone; the GTC one rests
                    break
                await asyncio.sleep(0.05)
            assert book["bids"][0][2] == 1
            info = await client.js.stream_info(topology.journal_stream)
            assert info.state.last_seq == placed.journal_seq + 1  # the one tick
            await asyncio.sleep(0.5)  # and no more once nothing is due
            info = await client.js.stream_info(topology.journal_stream)
            assert info.state.last_seq == placed.journal_seq + 1

    asyncio.run(scenario())
