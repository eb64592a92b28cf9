"""The cases consumer end to end, against real NATS JetStream and PostgreSQL.

Goal: every compliance alert on the stream is stored exactly once, however often it is
delivered; what cannot be stored goes to the dead-letter stream with an operational alert and
does not stop the alerts behind it; ``python -m compliance.cases`` runs the same consumer as a
process. Method: alerts (one published twice, as a producer past its duplicate window would)
and two bad messages go on a private stream; a first consumer stores a round and is "killed"
before its ack; a second one, on the same durable consumer with a short ack_wait, gets the round
again and drains the stream; then the tables, the history and the dead letters are counted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import msgspec
import nats
import psycopg
from nats.js.api import StreamConfig

from compliance.alerts import ALERT_ENCODER
from compliance.cases import CONSUMER, CasesConsumer
from engine.topology import Topology
from ledger.alerts import ALERT_DECODER as OPS_ALERT_DECODER
from tests.compliance.cases_fixtures import make_alert

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def _drain(consumer: CasesConsumer, topology: Topology, js: Any) -> None:
    """Run rounds until JetStream has nothing pending or unacknowledged for the consumer."""
    name = topology.consumer_name(CONSUMER)
    while True:
        await consumer.round(wait_s=0.5)
        info = await js.consumer_info(topology.compliance_alerts_stream, name)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return


async def create_alerts_stream(js: Any, topology: Topology) -> None:
    """Stands in for the monitoring service, which owns the stream and creates it
    (`compliance.monitoring.ensure_alerts_stream`); the cases consumer only waits for it."""
    await js.add_stream(
        StreamConfig(
            name=topology.compliance_alerts_stream,
            subjects=[f"{topology.prefix}.compliance.alerts.>"],
        )
    )


async def _count(database_url: str, query: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute(query)).fetchone()
        assert row is not None
        return int(row[0])


def test_alerts_are_stored_once_across_redelivery(
    nats_url: str, nats_prefix: str, pg_database: str
) -> None:
    topology = Topology(prefix=nats_prefix)
    alerts = [make_alert(n, account_id=7 + n % 2) for n in range(1, 6)]

    async def main() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        ops_alerts: list[bytes] = []

        async def keep(msg: Any) -> None:
            ops_alerts.append(msg.data)

        await nc.subscribe(topology.alerts_subject, cb=keep)

        await create_alerts_stream(js, topology)
        first = CasesConsumer(nc, topology, pg_database, ack_wait=1.0)
        await first.start()  # creates the dead-letter stream and the schema
        subject = topology.compliance_alerts_subject
        for alert in alerts[:3]:
            await js.publish(subject, ALERT_ENCODER.encode(alert))
        await js.publish(subject, ALERT_ENCODER.encode(alerts[0]))  # the same alert again
        await js.publish(subject, b"{not json")
        nul = make_alert(99)
        await js.publish(subject, ALERT_ENCODER.encode(nul).replace(b"#99", b"\\u0000"))
        huge = msgspec.structs.replace(make_alert(98), account_id=2**63)  # not a bigint
        await js.publish(subject, ALERT_ENCODER.encode(huge))
        for alert in alerts[3:]:
            await js.publish(subject, ALERT_ENCODER.encode(alert))

        # Killed between commit and ack: the round is stored, JetStream still holds it.
        handled = await first.round(wait_s=2.0, ack=False)
        assert handled == 9
        assert first.alerts_stored == 5 and first.alerts_redelivered == 1
        assert first.dead_lettered == 3
        await first.close()

        second = CasesConsumer(nc, topology, pg_database, ack_wait=1.0)
        await second.start()
        await _drain(second, topology, js)
        assert second.alerts_stored == 0  # every redelivered alert was stored already
        assert second.alerts_redelivered == 6
        await second.close()

        # A new alert after a restart is stored; nothing before it is delivered again.
        third = CasesConsumer(nc, topology, pg_database, ack_wait=1.0)
        await third.start()
        late = make_alert(6)
        await js.publish(subject, ALERT_ENCODER.encode(late))
        await _drain(third, topology, js)
        assert (third.alerts_stored, third.alerts_redelivered) == (1, 0)
        await third.close()

        dead = await js.stream_info(topology.dead_letter_stream)
        assert dead.state.messages == 3  # once each, though delivered twice
        reasons = []
        for seq in (1, 2, 3):
            msg = await js.get_msg(topology.dead_letter_stream, seq)
            assert msg.headers is not None
            reasons.append(msg.headers["Clearline-Reason"])
        assert reasons[0].startswith("undecodable ComplianceAlert")
        assert reasons[1] == "ComplianceAlert contains a NUL character"
        assert reasons[2] == f"ComplianceAlert account_id {2**63} does not fit a bigint"
        await nc.flush()
        kinds = {OPS_ALERT_DECODER.decode(data).kind for data in ops_alerts}
        assert kinds == {"dead_letter"}
        await nc.drain()

    asyncio.run(main())

    async def check() -> None:
        stored = await _count(pg_database, "SELECT count(*) FROM cases.alerts")
        received = await _count(
            pg_database, "SELECT count(*) FROM cases.history WHERE action = 'receive'"
        )
        assert stored == received == 6
        ids = await _count(
            pg_database,
            "SELECT count(DISTINCT alert_id) FROM cases.alerts WHERE status = 'new'",
        )
        assert ids == 6

    asyncio.run(check())


def test_module_runs_the_consumer_until_stopped(
    nats_url: str, nats_prefix: str, pg_database: str
) -> None:
    """As an operator runs it: it waits for the alerts stream, stores what comes, and for an
    alert whose rule asks for a SAR opens the case and drafts it; SIGTERM stops it cleanly."""
    topology = Topology(prefix=nats_prefix)
    alert = make_alert(1)
    asks = msgspec.structs.replace(make_alert(2), actions=("block_and_sar",))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "compliance.cases",
            "--nats-url",
            nats_url,
            "--database-url",
            pg_database,
            "--prefix",
            nats_prefix,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    try:

        async def main() -> None:
            nc = await nats.connect(nats_url)
            js = nc.jetstream()
            # The process started before the stream existed: it waits for it.
            await create_alerts_stream(js, topology)
            for item in (alert, asks):
                await js.publish(topology.compliance_alerts_subject, ALERT_ENCODER.encode(item))
            await nc.drain()
            while True:  # bounded by pytest's own timeout, not a timed assertion
                assert process.poll() is None, "the consumer process exited"
                try:
                    drafts = await _count(
                        pg_database,
                        "SELECT count(*) FROM cases.drafts"
                        " WHERE drafted_by = 'compliance.cases:auto'",
                    )
                    if drafts == 1:
                        break
                except psycopg.errors.UndefinedTable:
                    pass
                await asyncio.sleep(0.1)
            assert await _count(pg_database, "SELECT count(*) FROM cases.alerts") == 2
            assert await _count(pg_database, "SELECT count(*) FROM cases.cases") == 1

        asyncio.run(main())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
