"""``python -m compliance.monitoring`` as an operator runs it, and the freeze's fail-closed path.

Method: the module is started as a process against the test NATS server with a private prefix;
an engine EventBatch with a 20,000 USD deposit is published to the shard's events stream and the
VASP-001 alert must appear on the compliance alerts stream; SIGTERM then stops it cleanly.
Bad configuration or relation files stop it before it connects, with exit code 2 and the
reason. A freeze over an unreadable stored customer state fails closed (not verified, frozen).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from compliance.alerts import ALERT_DECODER, ComplianceAlert
from compliance.customer_state import CustomerState, customer_state_key
from compliance.customers import KycStatus, NatsStatePublisher
from compliance.monitoring import Actions
from engine.journal import EngineClient, ensure_streams
from engine.markets import USDT, market_commands
from engine.messages import ENCODER, Deposit, JournalEntry
from engine.shard import Shard
from engine.topology import Topology
from tests.compliance.customers_fixtures import alice, audit_rows, open_store

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "compliance.monitoring"]


@pytest.mark.parametrize(
    ("flag", "content", "message"),
    [
        ("--config", '{"version": "x"}', "does not decode"),
        ("--config", "[", "does not decode"),
        ("--relations", '{"a": 1}', "list of lists"),
        ("--relations", '[["x"]]', "invalid literal"),
    ],
)
def test_bad_files_stop_it_before_it_connects(
    tmp_path: Path, flag: str, content: str, message: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(content)
    # An unreachable NATS URL: exit 2 proves the file was refused before any connection.
    out = subprocess.run(
        [*CLI, "--nats-url", "nats://127.0.0.1:1", flag, str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert message in out.stderr


async def wait_for_alert(js: Any, topology: Topology, attempts: int) -> ComplianceAlert:
    for _ in range(attempts):
        try:
            msg = await js.get_last_msg(
                topology.compliance_alerts_stream, topology.compliance_alerts_subject
            )
            return ALERT_DECODER.decode(msg.data)
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError("no alert appeared")


def test_the_service_raises_an_alert_from_a_published_event_and_stops_on_sigterm(
    nats_url: str, nats_prefix: str
) -> None:
    topology = Topology(nats_prefix, "0")
    shard = Shard("0")
    entry = JournalEntry(
        origin="test", batch_id=1, ts_ns=10**18,
        commands=[*market_commands(), Deposit(account_id=42, asset_id=USDT,
                                              amount_minor=20_000 * 10**6, deposit_id="d42")],
    )  # fmt: skip
    applied = shard.apply(1, entry)
    assert applied is not None
    batch = shard.event_batch(1, entry, applied)
    process = subprocess.Popen(
        [*CLI, "--nats-url", nats_url, "--prefix", nats_prefix],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip

    async def scenario() -> ComplianceAlert:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            await ensure_streams(js, topology)
            await js.publish(
                topology.events_subject, ENCODER.encode(batch),
                headers={"Nats-Msg-Id": topology.event_message_id(1)},
            )  # fmt: skip
            return await wait_for_alert(js, topology, attempts=300)
        finally:
            await nc.close()

    try:
        alert = asyncio.run(scenario())
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert alert.rule_id == "VASP-001" and alert.account_id == 42
    assert alert.alert_id == "VASP-001:42:ev:0:1/0"
    assert process.returncode == 0, stderr.decode()


def test_a_freeze_over_an_unreadable_state_fails_closed(nats_url: str, nats_prefix: str) -> None:
    topology = Topology(nats_prefix, "0")

    async def scenario() -> CustomerState:
        nc = await nats.connect(nats_url)
        engine = await EngineClient.connect(nats_url, topology, "freeze-test")
        try:
            js = nc.jetstream()
            actions = Actions(js, topology, engine)
            await actions.start()
            kv = await js.key_value(topology.customer_state_bucket)
            await kv.put(customer_state_key(77), b'{"account_id": 77, "kyc_verified": "yes"}')
            alert = ComplianceAlert(
                alert_id="VASP-002:77:x", rule_id="VASP-002", account_id=77, severity="high",
                actions=("freeze",), summary="test", raised_ts_ns=5,
            )  # fmt: skip
            await actions.carry_out(alert)
            entry = await kv.get(customer_state_key(77))
            return msgspec.json.decode(entry.value or b"", type=CustomerState)
        finally:
            await engine.close()
            await nc.close()

    state = asyncio.run(scenario())
    assert state == CustomerState(
        account_id=77, kyc_verified=False, frozen=True, sanctioned=False, jurisdiction="ZZ",
        risk_level="high", as_of_ns=5, reason="VASP-002: test", changed_by="compliance.monitoring",
    )  # fmt: skip


def test_a_known_customer_is_frozen_in_the_customer_records(
    nats_url: str, nats_prefix: str, pg_database: str
) -> None:
    """With a customer store the freeze is the store's: the record, the audit log and the
    published state agree, and a sanctions match marks the customer sanctioned too."""
    topology = Topology(nats_prefix, "0")

    async def scenario() -> tuple[Any, CustomerState, list[Any]]:
        nc = await nats.connect(nats_url)
        engine = await EngineClient.connect(nats_url, topology, "freeze-test")
        store, audit = await open_store(pg_database, NatsStatePublisher(nc.jetstream(), topology))
        try:
            actions = Actions(nc.jetstream(), topology, engine, customers=store)
            await actions.start()  # the alerts stream and the customer state bucket
            customer = await store.create(alice(), "onboarding", "opened")
            await store.transition_kyc(customer.customer_id, KycStatus.verified, "kyc", "ok")
            alert = ComplianceAlert(
                alert_id="VASP-005:42:x", rule_id="VASP-005", account_id=42,
                severity="critical", actions=("freeze", "report_immediately"),
                summary="sanctioned address", raised_ts_ns=5,
            )  # fmt: skip
            await actions.carry_out(alert)
            asks = ComplianceAlert(
                alert_id="VASP-003:42:y", rule_id="VASP-003", account_id=42, severity="medium",
                actions=("enhanced_monitoring", "require_source_of_funds"),
                summary="counterparty in a high-risk jurisdiction", raised_ts_ns=6,
            )  # fmt: skip
            await actions.carry_out(asks)
            await actions.carry_out(asks)  # redelivered: nothing new
            required = await store.open_requirements(10)
            assert [(r.kind.value, r.alert_id) for r in required] == [
                ("enhanced_monitoring", "VASP-003:42:y"),
                ("source_of_funds", "VASP-003:42:y"),
            ]
            kv = await nc.jetstream().key_value(topology.customer_state_bucket)
            entry = await kv.get(customer_state_key(42))
            state = msgspec.json.decode(entry.value or b"", type=CustomerState)
            return await store.get(customer.customer_id), state, await audit_rows(pg_database)
        finally:
            await store.close()
            await audit.close()
            await engine.close()
            await nc.close()

    customer, state, rows = asyncio.run(scenario())
    assert customer.frozen and customer.sanctioned
    assert (state.frozen, state.sanctioned, state.kyc_verified) == (True, True, True)
    assert "VASP-005:42:x" in state.reason
    actions = [(actor, action) for actor, action, *_ in rows]
    assert ("compliance.monitoring:VASP-005", "freeze_customer") in actions
    assert ("compliance.monitoring:VASP-005", "mark_sanctioned") in actions


def test_relations_file_is_read(tmp_path: Path) -> None:
    from compliance.monitoring.__main__ import load_relations

    path = tmp_path / "groups.json"
    path.write_text(json.dumps([[1, 2], [3, 4, 5]]))
    assert load_relations(str(path)) == [[1, 2], [3, 4, 5]]
    assert load_relations(None) == []
