"""Monitoring end to end against real NATS: events in, the expected alerts out, once.

Method: journal entries (deposits, a wash trade between related accounts, rapid deposits) are
applied to a real engine shard and their EventBatches published to a private events stream as
the engine publishes them; custody transfers (a mixer, a sanctioned address) go to custody's
subject. A first consumer handles part of them and stops with three messages evaluated and
their alerts published but not acknowledged (as if killed before the ack). A second consumer,
a new process with empty windows, rebuilds its windows from the acknowledged part and handles
the rest, the three again included. Then: the alerts stream holds exactly the alerts a replay of
all events raises, each once; the frozen accounts are frozen in the customer state bucket
(unknown ones fail closed, known ones keep their fields) and their kill switch is journaled;
garbage went to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from compliance.alerts import ALERT_DECODER, ComplianceAlert
from compliance.customer_state import (
    CustomerState,
    customer_state_key,
    ensure_bucket,
    publish_customer_state,
)
from compliance.monitoring import (
    CUSTODY_ENCODER,
    Actions,
    CustodyTransfer,
    Monitor,
    MonitoringConsumer,
    event_from_custody,
    events_from_batch,
    load_config,
    replay,
)
from engine._codes import OrderType, Side, TimeInForce
from engine.journal import EngineClient, ensure_streams
from engine.markets import BTC, USDT, market_commands
from engine.messages import (
    ENCODER,
    JOURNAL_DECODER,
    Command,
    Deposit,
    EventBatch,
    JournalEntry,
    PlaceOrder,
    SetKillSwitch,
)
from engine.shard import Shard
from engine.topology import Topology

S = 1_000_000_000
RELATED = [[30, 31]]
T0 = 1_700_000_000 * S


def engine_batches() -> list[EventBatch]:
    def deposit(account: int, asset: int, amount: int, tag: str) -> Deposit:
        return Deposit(account_id=account, asset_id=asset, amount_minor=amount, deposit_id=tag)

    def order(account: int, side: Side, coid: int) -> PlaceOrder:
        return PlaceOrder(
            account_id=account, instrument_id=1, client_order_id=coid, side=side,
            order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC, price_ticks=300_000,
            quantity_lots=1_000,
        )  # fmt: skip

    funding: list[Command] = [deposit(30, BTC, 10**8, "d30"), deposit(31, USDT, 50 * 10**9, "d31")]
    rapid: list[list[Command]] = [[deposit(21, USDT, 1_200 * 10**6, f"d21-{i}")] for i in range(5)]
    entries: list[list[Command]] = [
        [*market_commands(), *funding],
        [order(30, Side.SELL, 1), order(31, Side.BUY, 2)],  # 0.1 BTC at 30,000: related accounts
        *rapid,  # five deposits worth 6,000 USD in five minutes: a freeze
        [deposit(22, USDT, 20_000 * 10**6, "d22")],  # high value
    ]
    shard = Shard("0")
    batches = []
    for seq, commands in enumerate(entries, 1):
        ts_ns = T0 + seq * 60 * S
        entry = JournalEntry(origin="test", batch_id=seq, ts_ns=ts_ns, commands=commands)
        applied = shard.apply(seq, entry)
        assert applied is not None
        batches.append(shard.event_batch(seq, entry, applied))
    return batches


def custody_transfers() -> list[CustodyTransfer]:
    def transfer(n: int, account: int, labels: list[str], **kw: Any) -> CustodyTransfer:
        return CustodyTransfer(
            transfer_id=f"c{n}", direction="deposit", account_id=account, asset_id=USDT,
            amount_minor=10**6, ts_ns=T0 + n * S, chain="ethereum", address=f"0x{n:040x}",
            address_labels=labels, **kw,
        )  # fmt: skip

    return [
        transfer(1, 22, ["mixer"]),
        transfer(2, 23, ["sanctioned"]),
        transfer(3, 24, [], counterparty_jurisdiction="IR"),
        transfer(4, 24, ["exchange"]),
    ]


async def stored_alerts(js: Any, topology: Topology) -> list[ComplianceAlert]:
    sub = await js.pull_subscribe(
        f"{topology.prefix}.compliance.alerts.>",
        stream=topology.compliance_alerts_stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
    )
    alerts: list[ComplianceAlert] = []
    while True:
        try:
            msgs = await sub.fetch(100, timeout=1)
        except (TimeoutError, nats.errors.TimeoutError):
            break
        alerts.extend(ALERT_DECODER.decode(m.data) for m in msgs)
    await sub.unsubscribe()
    return alerts


async def handle_all(consumer: MonitoringConsumer, rounds_max: int = 50) -> None:
    for _ in range(rounds_max):
        if not await consumer.round(wait_s=0.3):
            return
    raise AssertionError("the consumer never ran dry")


def test_events_published_raise_the_expected_alerts_once_even_when_redelivered(
    nats_url: str, nats_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("compliance.monitoring._consumer.fetch_messages_max", 3)
    batches, transfers = engine_batches(), custody_transfers()
    config = load_config()
    # What must come out: a replay of every event in the order the consumer meets them (the
    # default rules keep engine and custody windows apart, so their interleaving is moot).
    events = [e for b in batches for e in events_from_batch(b)]
    events += [event_from_custody(t) for t in transfers]
    expected = replay(config, events, relation_groups=RELATED)
    assert {a.rule_id for a in expected} >= {
        "VASP-001", "VASP-002", "VASP-003", "VASP-004", "VASP-005", "TM-WASH-TRADE",
    }  # fmt: skip

    async def scenario() -> None:
        topology = Topology(nats_prefix, "0")
        nc = await nats.connect(nats_url)
        engine = await EngineClient.connect(nats_url, topology, "monitoring-test")
        js = nc.jetstream()
        try:
            await ensure_streams(js, topology)
            await ensure_bucket(js, topology)
            known = CustomerState(
                account_id=23, kyc_verified=True, frozen=False, sanctioned=False,
                jurisdiction="DE", risk_level="low", as_of_ns=T0,
            )  # fmt: skip
            await publish_customer_state(js, topology, known)
            for batch in batches:
                await js.publish(
                    topology.events_subject,
                    ENCODER.encode(batch),
                    headers={"Nats-Msg-Id": topology.event_message_id(batch.journal_seq)},
                )

            first = MonitoringConsumer(
                nc, topology, Monitor(config, relation_groups=RELATED),
                Actions(js, topology, engine),
            )  # fmt: skip
            await first.start()
            for transfer in transfers[:2]:
                await js.publish(topology.custody_events_subject, CUSTODY_ENCODER.encode(transfer))
            await js.publish(topology.custody_events_subject, b"{not a transfer")
            assert await first.round(wait_s=1) == 6  # three of each stream
            assert await first.round(wait_s=0.3) == 3  # engine entries 4..6
            engine_sub = first._subs[0][1]
            unacked = await engine_sub.fetch(3, timeout=2)  # entries 7 (a freeze) and 8
            assert len(unacked) == 2
            for msg in unacked:  # evaluated and carried out, never acknowledged
                assert await first._handle(topology.events_stream, msg, first._batch)
            assert await first._handle(topology.events_stream, unacked[0], first._batch)
            assert first.redelivered == 1  # seen by this process: not counted twice
            await first.close()
            for transfer in transfers[2:]:
                await js.publish(topology.custody_events_subject, CUSTODY_ENCODER.encode(transfer))

            actions = Actions(js, topology, engine)
            second = MonitoringConsumer(
                nc, topology, Monitor(config, relation_groups=RELATED), actions
            )
            await second.start()
            assert second.warmed_up == 9  # what was acknowledged: 6 engine, 3 custody
            await handle_all(second)
            assert actions.alerts_duplicate > 0  # the three unacked ones' alerts, again
            assert second.dead_lettered == 0 and first.dead_lettered == 1
            await second.close()

            stored = await stored_alerts(js, topology)
            assert sorted(a.alert_id for a in stored) == sorted(a.alert_id for a in expected)
            by_id = {a.alert_id: a for a in expected}
            assert all(a == by_id[a.alert_id] for a in stored)

            kv = await js.key_value(topology.customer_state_bucket)
            rapid = msgspec_state(await kv.get(customer_state_key(21)))
            assert rapid.frozen and not rapid.kyc_verified and rapid.jurisdiction == "ZZ"
            sanctioned = msgspec_state(await kv.get(customer_state_key(23)))
            assert msgspec.structs.replace(sanctioned, reason="") == CustomerState(
                account_id=23, kyc_verified=True, frozen=True, sanctioned=True,
                jurisdiction="DE", risk_level="low", as_of_ns=T0,
                changed_by="compliance.monitoring",
            )  # fmt: skip
            assert sanctioned.reason.startswith("VASP-005: ")
            switched = await kill_switched(js, topology)
            # 21 rapid succession (freeze), 22 mixer exposure (block and SAR), 23 sanctions.
            assert switched == {21, 22, 23}

            dead = await js.get_last_msg(
                topology.dead_letter_stream, topology.dead_letter_subject("monitoring")
            )
            assert dead.data == b"{not a transfer"
            assert dead.headers is not None
            assert "CustodyTransfer" in dead.headers["Clearline-Reason"]
        finally:
            await engine.close()
            await nc.close()

    asyncio.run(scenario())


def msgspec_state(entry: Any) -> CustomerState:
    return msgspec.json.decode(entry.value, type=CustomerState)


async def kill_switched(js: Any, topology: Topology) -> set[int]:
    """Accounts whose kill switch was journaled on."""
    info = await js.stream_info(topology.journal_stream)
    accounts: set[int] = set()
    for seq in range(1, info.state.last_seq + 1):
        entry = JOURNAL_DECODER.decode((await js.get_msg(topology.journal_stream, seq=seq)).data)
        for command in entry.commands:
            if isinstance(command, SetKillSwitch) and command.on:
                accounts.add(command.account_id)
                assert entry.actor.startswith("compliance.monitoring:VASP-00")
    return accounts


class FlakyActions:
    """The real actions, failing as NATS does when it is away for the first `failures` calls."""

    def __init__(self, inner: Actions, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def start(self) -> None:
        await self.inner.start()

    async def carry_out(self, alert: ComplianceAlert) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise nats.errors.TimeoutError
        await self.inner.carry_out(alert)


def test_alerts_are_retried_while_nats_fails_and_a_misplaced_batch_is_dead_lettered(
    nats_url: str, nats_prefix: str
) -> None:
    """Carrying out fails three times: the consumer retries the same alert, acknowledges only
    after, and each alert is stored once. An EventBatch of another shard at a position goes to
    the dead-letter stream; the entries around it are monitored as if it were not there."""
    batches = engine_batches()
    config = load_config()
    expected = replay(
        config, [e for b in batches for e in events_from_batch(b)], relation_groups=RELATED
    )

    async def scenario() -> None:
        topology = Topology(nats_prefix, "0")
        nc = await nats.connect(nats_url)
        engine = await EngineClient.connect(nats_url, topology, "monitoring-flaky")
        js = nc.jetstream()
        try:
            await ensure_streams(js, topology)
            stray = msgspec.structs.replace(batches[0], shard="9")
            for position, batch in enumerate([*batches[:3], stray, *batches[3:]], 1):
                # Entries after the stray one sit one position later: relabel them to match.
                if position > 4:
                    batch = msgspec.structs.replace(batch, journal_seq=position)
                await js.publish(topology.events_subject, ENCODER.encode(batch))
            actions = FlakyActions(Actions(js, topology, engine), failures=3)
            consumer = MonitoringConsumer(
                nc, topology, Monitor(config, relation_groups=RELATED), actions
            )
            await consumer.start()
            await handle_all(consumer)
            assert consumer.dead_lettered == 1
            assert consumer.messages_handled == len(batches) + 1
            assert actions.calls == len(expected) + 3
            await consumer.close()
            stored = await stored_alerts(js, topology)
            # The relabelled entries keep their rows: only the refs' journal_seq moved by one.
            assert len(stored) == len(expected) == len({a.alert_id for a in stored})
            assert sorted(a.rule_id for a in stored) == sorted(a.rule_id for a in expected)
            dead = await js.get_last_msg(
                topology.dead_letter_stream, topology.dead_letter_subject("monitoring")
            )
            assert dead.headers is not None
            assert "shard '9'" in dead.headers["Clearline-Reason"]
            assert dead.headers["Clearline-Stream-Seq"] == "4"
        finally:
            await engine.close()
            await nc.close()

    asyncio.run(scenario())
