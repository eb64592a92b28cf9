"""kill -9 of the engine under load loses no acknowledged order and duplicates no fill.

Method: the engine runs as its own process (`python -m engine.loop`) on a private topology of a
real NATS server. A seeded driver keeps entries of random orders and cancels in flight through
the EngineClient while the test SIGKILLs the engine at random moments and starts it again. At
the end:

- the events stream holds exactly one EventBatch per journal entry, entry k at position k;
- every order whose ACCEPTED the driver saw is in that stream, once;
- trade ids are unique and increasing across the whole stream;
- the recovered engine's state hash equals that of a shard that applies the whole journal in
  one go, never having crashed.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
from nats.js.api import ConsumerConfig, DeliverPolicy

from engine._codes import EventKind, OrderType, Side, TimeInForce
from engine.journal import EngineClient, new_origin
from engine.markets import funding_commands, market_commands
from engine.messages import (
    EVENTS_DECODER,
    JOURNAL_DECODER,
    CancelOrder,
    Command,
    EventBatch,
    GetStatus,
    PlaceOrder,
)
from engine.shard import Shard
from engine.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = list(range(100, 110))
KILLS = 3


def start_engine_process(nats_url: str, topology: Topology, data_dir: Path) -> subprocess.Popen:
    with open(data_dir / "engine.log", "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "engine.loop", "--nats-url", nats_url, "--data-dir",
             str(data_dir), "--prefix", topology.prefix, "--shard", topology.shard,
             "--tick-s", "0"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


async def consuming(log_path: Path, starts: int) -> None:
    """Wait until the engine has started consuming `starts` times (a slow machine may take a
    while to start a process; a kill before that would test start-up, not recovery)."""
    for _ in range(300):
        if log_path.read_text().count("consuming from journal entry") >= starts:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"engine did not start consuming ({log_path.read_text()[-2000:]})")


def random_entry(rng: random.Random, coid: int) -> list[Command]:
    commands: list[Command] = []
    for _ in range(rng.randint(1, 6)):
        account = rng.choice(ACCOUNTS)
        if rng.random() < 0.2:
            commands.append(CancelOrder(account_id=account, client_order_id=rng.randint(1, coid)))
            continue
        coid += 1
        side = rng.choice([Side.BUY, Side.SELL])
        commands.append(
            PlaceOrder(
                account_id=account,
                instrument_id=1,
                client_order_id=coid,
                side=side,
                order_type=OrderType.LIMIT,
                time_in_force=rng.choice([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC]),
                price_ticks=300_000 + rng.randint(-20, 20),
                quantity_lots=rng.randint(1, 50),
            )
        )
    return commands


async def read_stream(client: EngineClient, subject: str, count: int) -> list[bytes]:
    sub = await client.js.subscribe(
        subject,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    payloads = []
    for _ in range(count):
        msg = await sub.next_msg(timeout=10)
        assert msg.metadata.sequence.stream == len(payloads) + 1
        payloads.append(msg.data)
    await sub.unsubscribe()
    return payloads


def test_kill_minus_nine_under_load(nats_url: str, nats_prefix: str, tmp_path: Path) -> None:
    topology = Topology(nats_prefix, "0")
    rng = random.Random(20261122)
    accepted_seen: set[int] = set()
    outcomes: list[asyncio.Future[EventBatch]] = []

    async def scenario() -> None:
        engine = start_engine_process(nats_url, topology, tmp_path)
        client = await EngineClient.connect(nats_url, topology, new_origin("crash-test"))
        try:
            await client.submit([*market_commands(), *funding_commands(ACCOUNTS)], timeout_s=30)

            def seen(future: asyncio.Future[EventBatch]) -> None:
                if not future.cancelled():
                    rows = future.result().event_rows()
                    accepted = rows[rows["kind"] == EventKind.ACCEPTED]
                    accepted_seen.update(accepted["order_id"].tolist())

            stop_load = asyncio.Event()

            async def drive() -> None:
                coid = 0
                while not stop_load.is_set():
                    entry = random_entry(rng, coid)
                    coid += len(entry)
                    _, future = await client.append(entry)
                    future.add_done_callback(seen)
                    outcomes.append(future)
                    if len(outcomes) % 20 == 0:
                        await asyncio.sleep(0.002)  # a steady load, not one burst

            load = asyncio.create_task(drive())
            nonlocal_engine = engine
            for kill in range(KILLS):
                await consuming(tmp_path / "engine.log", starts=kill + 1)
                await asyncio.sleep(rng.uniform(0.2, 0.8))
                nonlocal_engine.kill()  # SIGKILL: no snapshot, no flush, nothing graceful
                nonlocal_engine.wait()
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                nonlocal_engine = start_engine_process(nats_url, topology, tmp_path)
            await asyncio.sleep(0.5)  # load goes on across the last recovery
            stop_load.set()
            await load
            engine = nonlocal_engine
            await asyncio.wait_for(asyncio.gather(*outcomes), timeout=60)

            journal = await client.js.stream_info(topology.journal_stream)
            entries = journal.state.last_seq
            status = (await client.query(GetStatus(with_state_hash=True))).result
            assert status["journal_seq_applied"] == entries

            events = [EVENTS_DECODER.decode(p) for p in await read_stream(
                client, topology.events_subject, entries)]  # fmt: skip
            assert [b.journal_seq for b in events] == list(range(1, entries + 1))
            info = await client.js.stream_info(topology.events_stream)
            assert info.state.messages == entries  # nothing published twice

            rows = np.concatenate([b.event_rows() for b in events])
            accepted = rows[rows["kind"] == EventKind.ACCEPTED]["order_id"]
            assert len(set(accepted.tolist())) == len(accepted)
            assert accepted_seen <= set(accepted.tolist())
            trades = rows[rows["kind"] == EventKind.FILLED]["trade_id"]
            assert len(trades) > 0 and (np.diff(trades) > 0).all()

            straight = Shard(topology.shard)
            journal_payloads = await read_stream(client, topology.journal_subject, entries)
            for seq, payload in enumerate(journal_payloads, start=1):
                straight.apply(seq, JOURNAL_DECODER.decode(payload))
            straight.check_invariants()
            assert status["state_hash"] == straight.state_hash()
        finally:
            engine.kill()
            engine.wait()
            await client.close()

    asyncio.run(scenario())
    assert len(outcomes) > 100
    starts = (tmp_path / "engine.log").read_text().count("consuming from journal entry")
    assert starts == KILLS + 1  # each kill was followed by a recovery
