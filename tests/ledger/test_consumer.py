"""The ledger's JetStream consumer against real NATS and PostgreSQL: every engine event booked
exactly once, the books equal to the engine's balances, whatever is redelivered or restarted.

Method: a seeded flow of journal entries (engine/simulate.py: deposits, orders that trade with
fees and are cancelled, withdrawals held, settled and released) is applied to a shard in
process, and each entry's EventBatch is published to a private events stream exactly as the
engine publishes it. The consumer books them; the ledger's buckets are then compared with the
shard's balances by the reconciliation's own comparison, the chain is verified, and the number
of stored transfers must equal the engine's transfer rows (none lost, none twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import nats
import psycopg

from engine.journal import ensure_streams
from engine.messages import ENCODER, EventBatch
from engine.servers import PostgresServer
from engine.shard import Shard
from engine.simulate import applied_flow
from engine.topology import Topology
from ledger.alerts import ALERT_DECODER
from ledger.consumer import LedgerConsumer
from ledger.ledger import Ledger
from ledger.reader import LedgerReader
from ledger.reconcile import differences, engine_buckets, ledger_buckets

ACCOUNTS = list(range(10, 40))
ROOT = Path(__file__).resolve().parents[2]


async def publish(js: Any, topology: Topology, batches: list[EventBatch]) -> None:
    """As the engine does: entry k at position k, deduplicated on `ev:{shard}:{k}`."""
    for batch in batches:
        await js.publish(
            topology.events_subject,
            ENCODER.encode(batch),
            headers={"Nats-Msg-Id": topology.event_message_id(batch.journal_seq)},
        )


@contextlib.asynccontextmanager
async def events_published(
    nats_url: str, nats_prefix: str, batches: list[EventBatch]
) -> AsyncIterator[tuple[Any, Topology]]:
    """A NATS connection and shard 0's streams with `batches` published; closed on exit."""
    topology = Topology(nats_prefix, "0")
    nc = await nats.connect(nats_url)
    try:
        await ensure_streams(nc.jetstream(), topology)
        await publish(nc.jetstream(), topology, batches)
        yield nc, topology
    finally:
        await nc.close()


async def book_until(consumer: LedgerConsumer, journal_seq: int, rounds_max: int = 200) -> None:
    for _ in range(rounds_max):
        if consumer.journal_seq_booked >= journal_seq:
            return
        await consumer.round(wait_s=0.2)
    raise AssertionError(f"booked {consumer.journal_seq_booked} of {journal_seq}")


async def book_without_ack(consumer: LedgerConsumer, msgs: list[Any]) -> None:
    """Book messages as a round does, but acknowledge none (a consumer killed after its
    commit, before its acks)."""
    assert await consumer._handle(*await consumer._prepare(msgs))


async def book_read_ahead_without_ack(consumer: LedgerConsumer) -> list[Any]:
    """Book the round the consumer read ahead without acknowledging it; its messages."""
    task, consumer._next_round = consumer._next_round, None
    assert task is not None
    prepared = await task
    assert prepared is not None
    msgs, bookable, account_ids = prepared
    assert await consumer._handle(bookable, account_ids)
    return msgs


async def assert_books_equal_engine(
    database_url: str, shard: Shard, *, journal_seq: int | None = None
) -> None:
    """The ledger's buckets equal the shard's balances, money sums to zero per asset, the chain
    verifies, and the ledger has booked through `journal_seq` (the shard's by default)."""
    journal_seq = shard.journal_seq if journal_seq is None else journal_seq
    reader = await LedgerReader.open(database_url)
    try:
        rows = shard.all_balances(-1, 1_000_000)["balances"]
        held = await reader.nonzero_accounts(journal_seq)
        ledger_side = ledger_buckets([a for a, _ in held], {a.id: b for a, b in held})
        assert differences(engine_buckets(rows), ledger_side, journal_seq=journal_seq) == []
        assert set((await reader.net_by_asset()).values()) == {0}
        report = await reader.verify()
        assert report.ok, report
        assert await reader.journal_seq_booked() == journal_seq
    finally:
        await reader.close()


async def transfers_stored(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM ledger.transfers")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


def test_every_event_is_booked_once_and_the_books_equal_the_engine(
    nats_url: str, nats_prefix: str, pg_database: str, monkeypatch: Any
) -> None:
    """A first consumer books a part and acknowledges nothing of its last round (as if killed
    between commit and ack). A second one starts after what the ledger booked, not after what
    JetStream saw acknowledged, so it does not wait for ack_wait; and when the unacknowledged
    round is delivered again anyway, it books none of it twice."""
    monkeypatch.setattr("ledger.consumer.fetch_messages_max", 10)
    shard, batches = applied_flow(ACCOUNTS, 60, 25, seed=3)
    rows = sum(len(b.transfer_rows()) for b in batches)
    assert rows > 1_000

    async def scenario() -> None:
        async with events_published(nats_url, nats_prefix, batches) as (nc, topology):
            first = LedgerConsumer.for_database(nc, topology, pg_database)
            await first.start()
            await book_until(first, 30)
            # The round it read while booking the last one: booked, never acknowledged.
            unacked = await book_read_ahead_without_ack(first)
            await first.close()
            last_unacked = unacked[-1].metadata.sequence.stream
            assert first.journal_seq_booked == last_unacked

            second = LedgerConsumer.for_database(nc, topology, pg_database)
            await second.start()
            assert second.journal_seq_booked == last_unacked
            await book_until(second, len(batches))
            for msg in unacked:  # delivered again: each finds its event applied
                await book_without_ack(second, [msg])
            assert second.events_redelivered == len(unacked) == 10
            assert second.dead_lettered == 0
            await second.close()
        assert await transfers_stored(pg_database) == rows
        await assert_books_equal_engine(pg_database, shard)

    asyncio.run(scenario())


def test_an_undecodable_or_misplaced_event_goes_to_the_dead_letter_stream_with_an_alert(
    nats_url: str, nats_prefix: str, pg_database: str
) -> None:
    """Garbage at position 6, a batch of another shard at position 7 and one whose rows cannot
    be read (an unknown codec: it decodes, but cannot be posted) at position 8: each is kept in
    the dead-letter stream with its reason and raises an alert, and the events behind them are
    booked as if they were not there."""
    shard, batches = applied_flow(ACCOUNTS, 12, 10, seed=5)
    # Entries 6.. are published three positions later: relabelled so entry k sits at k + 3.
    later = [msgspec.structs.replace(b, journal_seq=b.journal_seq + 3) for b in batches[5:]]

    async def scenario() -> None:
        topology = Topology(nats_prefix, "0")
        nc = await nats.connect(nats_url)
        alerts: list[bytes] = []

        async def on_alert(msg: Any) -> None:
            alerts.append(msg.data)

        await nc.subscribe(topology.alerts_subject, cb=on_alert)
        try:
            js = nc.jetstream()
            await ensure_streams(js, topology)
            await publish(js, topology, batches[:5])
            await js.publish(topology.events_subject, b"\x93not an event batch")
            await js.publish(
                topology.events_subject,
                ENCODER.encode(msgspec.structs.replace(batches[5], shard="other", journal_seq=7)),
            )
            await js.publish(
                topology.events_subject,
                ENCODER.encode(msgspec.structs.replace(batches[5], journal_seq=8, codec=9)),
            )
            await publish(js, topology, later)
            consumer = LedgerConsumer.for_database(nc, topology, pg_database)
            await consumer.start()
            await book_until(consumer, later[-1].journal_seq)
            await consumer.close()
            assert consumer.dead_lettered == 3
            dead = [await js.get_msg(topology.dead_letter_stream, seq=seq) for seq in (1, 2, 3)]
            assert [m.headers["Clearline-Stream-Seq"] for m in dead] == ["6", "7", "8"]  # type: ignore[index]
            assert "undecodable" in dead[0].headers["Clearline-Reason"]  # type: ignore[index]
            assert "shard 'other'" in dead[1].headers["Clearline-Reason"]  # type: ignore[index]
            assert "not bookable" in dead[2].headers["Clearline-Reason"]  # type: ignore[index]
            assert dead[0].data == b"\x93not an event batch"
            await nc.flush()
            kinds = [ALERT_DECODER.decode(a).kind for a in alerts]
            assert kinds == ["dead_letter"] * 3
        finally:
            await nc.close()
        # Every entry was booked once (entries 6.. under their new positions): the books are
        # the engine's after all of them.
        assert await transfers_stored(pg_database) == sum(len(b.transfer_rows()) for b in batches)
        await assert_books_equal_engine(pg_database, shard, journal_seq=later[-1].journal_seq)

    asyncio.run(scenario())


def test_postgres_restarting_mid_stream_loses_and_doubles_nothing(
    nats_url: str,
    nats_prefix: str,
    postgres_server_factory: Callable[[], PostgresServer],
) -> None:
    """The consumer runs while events arrive; PostgreSQL is restarted twice under it. It waits,
    reconnects and books on: at the end the books equal the engine's, transfer for transfer."""
    server = postgres_server_factory()
    shard, batches = applied_flow(ACCOUNTS, 80, 20, seed=11)
    rows = sum(len(b.transfer_rows()) for b in batches)

    async def scenario() -> None:
        topology = Topology(nats_prefix, "0")
        nc = await nats.connect(nats_url)
        consumer = LedgerConsumer.for_database(nc, topology, server.url)
        try:
            js = nc.jetstream()
            await ensure_streams(js, topology)
            await consumer.start()
            running = asyncio.create_task(consumer.run())
            for part in range(3):  # a third of the events, then a restart, twice
                await publish(js, topology, batches[part * 27 : (part + 1) * 27])
                await asyncio.sleep(0.3)
                if part < 2:
                    await asyncio.to_thread(server.restart)
            for _ in range(300):
                if consumer.journal_seq_booked == len(batches):
                    break
                await asyncio.sleep(0.1)
            await consumer.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(running, 5)
        finally:
            await consumer.close()
            await nc.close()
        assert consumer.journal_seq_booked == len(batches)
        assert await transfers_stored(server.url) == rows
        await assert_books_equal_engine(server.url, shard)

    asyncio.run(scenario())


def test_a_ledger_service_killed_mid_stream_resumes_without_loss_or_double_booking(
    nats_url: str, nats_prefix: str, pg_database: str
) -> None:
    """`kill -9` of the ledger service (`python -m ledger.service`, as `clearline run` starts
    it) while it books; a new one picks up from the durable consumer's acknowledgements, and
    the books end exactly equal to the engine's."""
    shard, batches = applied_flow(ACCOUNTS, 150, 25, seed=17)
    rows = sum(len(b.transfer_rows()) for b in batches)
    topology = Topology(nats_prefix, "0")
    command = [
        sys.executable, "-m", "ledger.service", "--nats-url", nats_url,
        "--prefix", nats_prefix, "--shard", "0", "--reconcile-every-s", "3600",
    ]  # fmt: skip
    env = {**os.environ, "DATABASE_URL": pg_database}

    async def booked() -> int:
        with contextlib.suppress(psycopg.Error):
            reader = await LedgerReader.open(pg_database)
            try:
                return await reader.journal_seq_booked()
            finally:
                await reader.close()
        return 0

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        await ensure_streams(nc.jetstream(), topology)

        async def engine_publishing() -> None:  # entries keep coming, through the crash
            for batch in batches[5:]:
                await publish(nc.jetstream(), topology, [batch])
                await asyncio.sleep(0.01)

        await publish(nc.jetstream(), topology, batches[:5])
        service = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        publishing: asyncio.Task[None] | None = None
        try:
            for _ in range(3_000):  # the service is up once it booked the first five
                if await booked() >= 5:
                    break
                await asyncio.sleep(0.01)
            publishing = asyncio.create_task(engine_publishing())
            for _ in range(1_000):
                if await booked() >= 30:
                    break
                await asyncio.sleep(0.01)
            service.kill()  # SIGKILL: no clean stop, no last ack
            service.wait(10)
            at_kill = await booked()
            assert 30 <= at_kill < len(batches), "the kill must land mid-stream"
            service = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
            await publishing
            for _ in range(600):
                if await booked() == len(batches):
                    break
                await asyncio.sleep(0.05)
        finally:
            service.terminate()
            service.wait(30)
            if publishing is not None:
                publishing.cancel()
            await nc.close()
        assert await transfers_stored(pg_database) == rows
        await assert_books_equal_engine(pg_database, shard)

    asyncio.run(scenario())


def test_a_staged_write_that_fails_drops_the_rounds_after_it_and_skips_none(
    nats_url: str, nats_prefix: str, pg_database: str, monkeypatch: Any
) -> None:
    """Rounds are staged while earlier ones are stored (`Ledger.stage_events`). One store
    fails, as a lost connection makes it: the round, and the one decided on top of it, are
    dropped unacknowledged, and the consumer resumes after the ledger's last entry; at the end
    every entry is booked once and the books equal the engine's."""
    monkeypatch.setattr("ledger.consumer.fetch_messages_max", 10)
    shard, batches = applied_flow(ACCOUNTS, 70, 20, seed=13)
    rows = sum(len(b.transfer_rows()) for b in batches)
    staged = {"calls": 0, "failed": 0}
    store_staged = Ledger._store_staged

    async def failing_once(self: Ledger, previous: Any, *args: Any) -> Any:
        """The second staged write fails as a lost connection fails it: after the one before
        it is stored, the writer reloads and the write raises."""
        staged["calls"] += 1
        if staged["calls"] != 2:
            return await store_staged(self, previous, *args)
        if previous is not None:
            await previous
        staged["failed"] += 1
        async with self._lock:
            await self._reload_after_failure()
        raise psycopg.OperationalError("the connection died mid-write")

    monkeypatch.setattr(Ledger, "_store_staged", failing_once)

    async def scenario() -> LedgerConsumer:
        async with events_published(nats_url, nats_prefix, batches) as (nc, topology):
            consumer = LedgerConsumer.for_database(nc, topology, pg_database)
            await consumer.start()
            await book_until(consumer, len(batches))
            await consumer.close()
            return consumer

    consumer = asyncio.run(scenario())
    assert staged["failed"] == 1 and staged["calls"] > 3  # and staging went on after it
    assert consumer.journal_seq_booked == len(batches)
    assert asyncio.run(transfers_stored(pg_database)) == rows
    asyncio.run(assert_books_equal_engine(pg_database, shard))
