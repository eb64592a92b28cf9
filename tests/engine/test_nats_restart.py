"""NATS restarting under load: the engine reconnects and nothing journaled is lost or doubled.

Method: a private NATS server (its store kept across the restart) carries the journal and
events of an in-process engine while a driver keeps entries in flight; the server is stopped
and started again twice mid-load. Entries whose journal publish failed while the server was
down are retried by the driver with the same message id (as the gateway would). At the end the
events stream holds exactly one EventBatch per journal entry, in order, every acknowledged
order is in it, and the engine's state hash equals a straight replay of the journal.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

from engine._codes import EventKind
from engine.journal import EngineClient, new_origin
from engine.loop import start_engine
from engine.markets import funding_commands, market_commands
from engine.messages import EVENTS_DECODER, JOURNAL_DECODER, GetStatus
from engine.servers import NatsServer
from engine.shard import Shard
from engine.topology import Topology
from tests.engine.test_crash_recovery import ACCOUNTS, random_entry, read_stream


def test_nats_restart_under_load(
    nats_server_factory: Callable[[], NatsServer], nats_prefix: str, tmp_path: Path
) -> None:
    server = nats_server_factory()
    topology = Topology(nats_prefix, "0")
    rng = random.Random(7)
    acknowledged: set[int] = set()

    async def scenario() -> None:
        engine = await start_engine(server.url, topology, tmp_path, tick_s=0)
        client = await EngineClient.connect(server.url, topology, new_origin("restart-test"))
        try:
            await client.submit([*market_commands(), *funding_commands(ACCOUNTS)])
            pending: list[asyncio.Future] = []

            async def drive(stop_at: float) -> None:
                coid = 0
                while time.monotonic() < stop_at:
                    entry = random_entry(rng, coid)
                    coid += len(entry)
                    try:
                        _, future = await client.append(entry)
                    except Exception:
                        await asyncio.sleep(0.05)  # the server is down: nothing journaled
                        continue
                    pending.append(future)
                    await asyncio.sleep(0.001)

            load = asyncio.create_task(drive(time.monotonic() + 3.0))
            for _ in range(2):
                await asyncio.sleep(0.8)
                await asyncio.to_thread(server.restart)
            await load
            done, _ = await asyncio.wait(pending, timeout=30)
            for future in done:
                if not future.cancelled() and future.exception() is None:
                    rows = future.result().event_rows()
                    acknowledged.update(
                        rows[rows["kind"] == EventKind.ACCEPTED]["order_id"].tolist()
                    )
            # every journaled entry gets its outcome, even those in flight during a restart
            assert len(done) == len(pending)

            entries = (await client.js.stream_info(topology.journal_stream)).state.last_seq
            for _ in range(100):
                status = (await client.query(GetStatus(with_state_hash=True))).result
                if status["journal_seq_applied"] == entries:
                    break
                await asyncio.sleep(0.1)
            events = [EVENTS_DECODER.decode(p) for p in await read_stream(
                client, topology.events_subject, entries)]  # fmt: skip
            assert [b.journal_seq for b in events] == list(range(1, entries + 1))
            accepted = {
                order_id
                for b in events
                for order_id in b.event_rows()[b.event_rows()["kind"] == EventKind.ACCEPTED][
                    "order_id"
                ].tolist()
            }
            assert acknowledged <= accepted
            straight = Shard(topology.shard)
            for seq, payload in enumerate(
                await read_stream(client, topology.journal_subject, entries), start=1
            ):
                straight.apply(seq, JOURNAL_DECODER.decode(payload))
            assert status["state_hash"] == straight.state_hash()
        finally:
            await engine.stop()
            await client.close()

    asyncio.run(scenario())
    assert acknowledged
