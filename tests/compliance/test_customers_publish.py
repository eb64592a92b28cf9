"""Customer state reaches the gateways: compliance.customers publishing into the real bucket.

Goal: whenever what the gateways check changes (KYC verified, frozen, sanctioned, jurisdiction,
risk level), the customer's `CustomerState` lands in the JetStream bucket; a change the
gateways cannot see publishes nothing; and a gateway's real `CustomerStateCache` then refuses
the customer's next order with the reason (frozen, sanctioned) the risk desk reads.
Method: real NATS (a bucket per test through `nats_prefix`) and PostgreSQL; entries read back
with nats-py and through `gateway.checks`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import nats
import pytest
from nats.js.errors import KeyNotFoundError

from compliance.customer_state import CustomerState, customer_state_key, ensure_bucket
from compliance.customers import KycStatus, NatsStatePublisher, load_risk_config
from engine._codes import Reason
from engine.topology import Topology
from gateway.checks import ComplianceLimits, CustomerStateCache, first_failure
from tests.compliance.customers_fixtures import NOW_NS, alice, open_store

decode = msgspec.json.Decoder(CustomerState).decode


@dataclass(frozen=True)
class AnyInstrument:
    jurisdictions_allowed: frozenset[str] = frozenset()


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Until the cache's watcher has applied an update (bounded, never a timing assertion)."""
    for _ in range(2_000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the cache never saw the update")


def test_each_visible_change_lands_in_the_bucket(
    pg_database: str, nats_url: str, nats_prefix: str
) -> None:
    async def run() -> None:
        topology = Topology(prefix=nats_prefix)
        client = await nats.connect(nats_url)
        js = client.jetstream()
        kv = await ensure_bucket(js, topology)
        store, audit = await open_store(pg_database, NatsStatePublisher(js, topology))
        key = customer_state_key(42)

        async def latest() -> tuple[int, CustomerState]:
            entry = await kv.get(key)
            assert entry.value is not None and entry.revision is not None
            return entry.revision, decode(entry.value)

        try:
            c = await store.create(alice(), "officer:bob", "onboarding")
            revision, state = await latest()
            # Not verified, not yet assessed: published as unknown risk, i.e. high.
            assert state == CustomerState(
                account_id=42,
                kyc_verified=False,
                frozen=False,
                sanctioned=False,
                jurisdiction="FR",
                risk_level="high",
                as_of_ns=NOW_NS,
                reason="KYC pending",
                changed_by="compliance.customers",
            )
            steps: list[tuple[Awaitable[Any], dict[str, Any]]] = [
                (
                    store.transition_kyc(c.customer_id, KycStatus.verified, "vendor", "GREEN"),
                    {"kyc_verified": True, "reason": "KYC verified, no restriction"},
                ),
                (
                    store.assess(c.customer_id, load_risk_config(), dt.date(2026, 12, 1), "bob"),
                    {"risk_level": "low"},
                ),
                (
                    store.freeze(c.customer_id, "monitoring", "VASP-002"),
                    {"frozen": True, "reason": "frozen: VASP-002"},
                ),
                (
                    store.mark_sanctioned(c.customer_id, "screening", "OFAC hit 0.97"),
                    {"sanctioned": True, "reason": "frozen: VASP-002; sanctioned: OFAC hit 0.97"},
                ),
                (
                    store.update_profile(
                        c.customer_id, alice(residence_country="DE"), "officer:bob", "moved"
                    ),
                    {"jurisdiction": "DE"},
                ),
                (
                    store.unfreeze(c.customer_id, "officer:bob", "case closed"),
                    {"frozen": False, "reason": "sanctioned: OFAC hit 0.97"},
                ),
            ]
            for operation, expected in steps:
                await operation
                new_revision, new_state = await latest()
                assert new_revision > revision
                assert new_state == msgspec.structs.replace(state, **expected)
                revision, state = new_revision, new_state
            # Invisible to the gateways: an unchanged flag and a volume change publish nothing.
            await store.clear_sanctioned(c.customer_id, "officer:bob", "false positive")
            revision, state = await latest()
            await store.clear_sanctioned(c.customer_id, "officer:bob", "again")
            await store.update_profile(
                c.customer_id,
                alice(residence_country="DE", expected_monthly_volume_usd_minor=1),
                "officer:bob",
                "volume",
            )
            assert (await latest())[0] == revision
            # A customer without an account has nothing to publish.
            await store.create(alice(account_id=None), "officer:bob", "onboarding")
            assert await kv.keys() == [key]
            # The daily reconfirmation republishes everyone with an account.
            assert await store.publish_all() == 1
            assert (await latest())[0] > revision
            # Relinked to another account: the old account's state goes (its orders then fail
            # closed as unknown), the new one's comes.
            await store.update_profile(
                c.customer_id, alice(residence_country="DE", account_id=77), "officer:bob", "relink"
            )
            with pytest.raises(KeyNotFoundError):
                await kv.get(key)
            entry = await kv.get(customer_state_key(77))
            assert entry.value is not None
            assert decode(entry.value).account_id == 77
        finally:
            await store.close()
            await audit.close()
            await js.delete_key_value(topology.customer_state_bucket)
            await client.close()

    asyncio.run(run())


def test_a_gateway_blocks_the_next_order_and_says_why(
    pg_database: str, nats_url: str, nats_prefix: str
) -> None:
    async def run() -> None:
        topology = Topology(prefix=nats_prefix)
        client = await nats.connect(nats_url)
        js = client.jetstream()
        await ensure_bucket(js, topology)
        store, audit = await open_store(pg_database, NatsStatePublisher(js, topology))
        cache = await CustomerStateCache.open(nats_url, topology)
        limits = ComplianceLimits()

        def decision() -> Reason | None:
            return first_failure(
                cache.get(42), AnyInstrument(), NOW_NS, limits, cache_live=cache.live
            )

        try:
            assert await cache.wait_synced(30)
            assert decision() is Reason.customer_state_must_be_known
            c = await store.create(alice(), "officer:bob", "onboarding")
            await store.transition_kyc(c.customer_id, KycStatus.verified, "vendor", "GREEN")
            await wait_for(lambda: decision() is None)
            await store.freeze(c.customer_id, "monitoring", "VASP-002 rapid succession")
            await wait_for(lambda: decision() is not None)
            assert decision() is Reason.customer_must_not_be_frozen
            await store.unfreeze(c.customer_id, "officer:bob", "reviewed")
            await store.mark_sanctioned(c.customer_id, "screening", "UN list hit")
            await wait_for(lambda: decision() is Reason.customer_must_not_be_sanctioned)
            # The risk desk's why: the stored reason, and the audit trail.
            stored = await store.get(c.customer_id)
            assert stored.sanctioned_reason == "UN list hit"
            assert stored.frozen_reason == "VASP-002 rapid succession"
        finally:
            await cache.close()
            await store.close()
            await audit.close()
            await js.delete_key_value(topology.customer_state_bucket)
            await client.close()

    asyncio.run(run())
