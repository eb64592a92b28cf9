"""Pre-trade compliance checks and the customer state cache (gateway.checks).

Goal: every 2xxx reason has exactly one check, the checks run in the order of their numbers so
the first failing one is reported, each fails closed on a missing state, and the gateway's cache
mirrors compliance's key-value bucket and fails closed whenever it cannot vouch for it (never
synced, bucket missing, disconnected). Method: the pure checks with worked examples and a
Hypothesis property against an independent statement of the rules; the cache against a real
NATS JetStream key-value bucket written through `compliance.customer_state`, and against a
private NATS server the test stops and restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection

import hypothesis.strategies as st
import nats
import pytest
from hypothesis import given, settings
from msgspec.structs import replace

from compliance.customer_state import (
    CustomerState,
    customer_state_key,
    ensure_bucket,
    publish_customer_state,
)
from engine._codes import Reason
from engine.messages import DefineInstrument
from engine.servers import NatsServer
from engine.topology import Topology
from gateway.checks import (
    CHECKS,
    ComplianceLimits,
    CustomerStateCache,
    customer_state_age_max_ns,
    first_failure,
)

NOW_NS = 1_750_000_000 * 1_000_000_000
LIMITS = ComplianceLimits()
GOOD = CustomerState(
    account_id=7,
    kyc_verified=True,
    frozen=False,
    sanctioned=False,
    jurisdiction="DE",
    risk_level="low",
    as_of_ns=NOW_NS - 1_000,
)


@dataclasses.dataclass(frozen=True)
class Market:
    jurisdictions_allowed: Collection[str] = ()


EVERYWHERE = Market()
EU_ONLY = Market(frozenset({"DE", "FR"}))


# -- the checks --


def test_every_compliance_reason_has_one_check_in_number_order() -> None:
    # A missing state fails every check, which names each check's reason.
    reasons = [check(None, EVERYWHERE, NOW_NS, LIMITS) for check in CHECKS]
    compliance_reasons = [reason for reason in Reason if 2000 <= reason < 3000]
    assert reasons == sorted(compliance_reasons)
    assert [check.__name__ for check in CHECKS] == [reason.name for reason in compliance_reasons]


def test_a_good_customer_passes() -> None:
    assert first_failure(GOOD, EVERYWHERE, NOW_NS, LIMITS, cache_live=True) is None
    assert first_failure(GOOD, EU_ONLY, NOW_NS, LIMITS, cache_live=True) is None


def test_each_check_catches_its_own_condition() -> None:
    cases = [
        (None, Reason.customer_state_must_be_known),
        (
            replace(GOOD, as_of_ns=NOW_NS - customer_state_age_max_ns - 1),
            Reason.customer_state_must_be_fresh,
        ),
        (replace(GOOD, kyc_verified=False), Reason.customer_must_be_verified),
        (replace(GOOD, frozen=True), Reason.customer_must_not_be_frozen),
        (replace(GOOD, sanctioned=True), Reason.customer_must_not_be_sanctioned),
        (
            replace(GOOD, jurisdiction="US"),
            Reason.jurisdiction_must_be_allowed_for_instrument,
        ),
    ]
    for state, reason in cases:
        assert first_failure(state, EU_ONLY, NOW_NS, LIMITS, cache_live=True) is reason
        failing = [check.__name__ for check in CHECKS if check(state, EU_ONLY, NOW_NS, LIMITS)]
        if state is not None:
            assert failing == [reason.name], "one condition must trip exactly one check"


def test_freshness_boundary_and_configured_limit() -> None:
    at_limit = replace(GOOD, as_of_ns=NOW_NS - customer_state_age_max_ns)
    assert first_failure(at_limit, EVERYWHERE, NOW_NS, LIMITS, cache_live=True) is None
    strict = ComplianceLimits(customer_state_age_max_ns=500)
    assert (
        first_failure(GOOD, EVERYWHERE, NOW_NS, strict, cache_live=True)
        is Reason.customer_state_must_be_fresh
    )


def test_an_empty_jurisdiction_list_admits_everyone() -> None:
    american = replace(GOOD, jurisdiction="US")
    assert first_failure(american, EVERYWHERE, NOW_NS, LIMITS, cache_live=True) is None


def test_engine_instrument_is_an_instrument_view() -> None:
    instrument = DefineInstrument(
        instrument_id=1,
        symbol="BTC-EUR",
        base_asset_id=1,
        quote_asset_id=2,
        tick_size="0.01",
        lot_size="0.0001",
        price_min_ticks=1,
        price_max_ticks=10_000_000,
        quantity_max_lots=1_000_000,
        jurisdictions_allowed=["FR"],
    )
    reason = first_failure(GOOD, instrument, NOW_NS, LIMITS, cache_live=True)
    assert reason is Reason.jurisdiction_must_be_allowed_for_instrument


def test_a_cache_that_is_not_live_fails_everyone_closed() -> None:
    for state in (GOOD, None):
        assert (
            first_failure(state, EVERYWHERE, NOW_NS, LIMITS, cache_live=False)
            is Reason.customer_state_must_be_fresh
        )


AGE_MAX_NS = LIMITS.customer_state_age_max_ns
# The rules stated again, independently of the code under test: which reasons a state earns.
RULES: list[tuple[Reason, Callable[[CustomerState, Market], bool]]] = [
    (Reason.customer_state_must_be_fresh, lambda s, m: NOW_NS - s.as_of_ns > AGE_MAX_NS),
    (Reason.customer_must_be_verified, lambda s, m: not s.kyc_verified),
    (Reason.customer_must_not_be_frozen, lambda s, m: s.frozen),
    (Reason.customer_must_not_be_sanctioned, lambda s, m: s.sanctioned),
    (
        Reason.jurisdiction_must_be_allowed_for_instrument,
        lambda s, m: (
            len(m.jurisdictions_allowed) > 0 and s.jurisdiction not in m.jurisdictions_allowed
        ),
    ),
]

states = st.builds(
    CustomerState,
    account_id=st.integers(1, 10),
    kyc_verified=st.booleans(),
    frozen=st.booleans(),
    sanctioned=st.booleans(),
    jurisdiction=st.sampled_from(["DE", "FR", "US", "KP"]),
    risk_level=st.sampled_from(["low", "medium", "high"]),
    as_of_ns=st.integers(NOW_NS - 2 * customer_state_age_max_ns, NOW_NS + 10**9),
)
markets = st.builds(Market, st.frozensets(st.sampled_from(["DE", "FR", "US"])))


@settings(deadline=None)
@given(state=st.none() | states, market=markets, cache_live=st.booleans())
def test_first_failure_is_the_lowest_numbered_broken_rule(
    state: CustomerState | None, market: Market, cache_live: bool
) -> None:
    if not cache_live:
        expected: Reason | None = Reason.customer_state_must_be_fresh
    elif state is None:
        expected = Reason.customer_state_must_be_known
    else:
        broken = [reason for reason, rule in RULES if rule(state, market)]
        expected = min(broken) if broken else None
    assert first_failure(state, market, NOW_NS, LIMITS, cache_live=cache_live) == expected


# -- the cache, against real NATS --


async def eventually(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until ``predicate()`` holds; fail the test if it does not within the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_cache_mirrors_puts_and_deletes(nats_url: str, nats_prefix: str) -> None:
    async def run() -> None:
        topology = Topology(prefix=nats_prefix)
        client = await nats.connect(nats_url)
        js = client.jetstream()
        kv = await ensure_bucket(js, topology)
        await publish_customer_state(js, topology, GOOD)
        await publish_customer_state(js, topology, replace(GOOD, account_id=8))
        await publish_customer_state(js, topology, replace(GOOD, account_id=9))
        await kv.delete(customer_state_key(9))  # deleted before the cache starts: never seen
        cache = await CustomerStateCache.open(nats_url, topology)
        try:
            assert await cache.wait_synced(10)
            assert cache.get(7) == GOOD and cache.get(8) is not None
            assert cache.get(9) is None and len(cache) == 2

            # An update arrives: the account is frozen.
            await publish_customer_state(js, topology, replace(GOOD, frozen=True))
            await eventually(lambda: (state := cache.get(7)) is not None and state.frozen)
            decision = first_failure(
                cache.get(7), EVERYWHERE, NOW_NS, LIMITS, cache_live=cache.live
            )
            assert decision is Reason.customer_must_not_be_frozen

            # Deleted and purged keys make the customer unknown.
            await kv.delete(customer_state_key(7))
            await kv.purge(customer_state_key(8))
            await eventually(lambda: cache.get(7) is None and cache.get(8) is None)
            decision = first_failure(
                cache.get(7), EVERYWHERE, NOW_NS, LIMITS, cache_live=cache.live
            )
            assert decision is Reason.customer_state_must_be_known
        finally:
            await cache.close()
            await js.delete_key_value(topology.customer_state_bucket)
            await client.close()
        assert not cache.live

    asyncio.run(run())


def test_cache_drops_states_that_do_not_decode(nats_url: str, nats_prefix: str) -> None:
    async def run() -> None:
        topology = Topology(prefix=nats_prefix)
        client = await nats.connect(nats_url)
        js = client.jetstream()
        kv = await ensure_bucket(js, topology)
        cache = await CustomerStateCache.open(nats_url, topology)
        try:
            assert await cache.wait_synced(10)
            await publish_customer_state(js, topology, GOOD)
            await eventually(lambda: cache.get(7) is not None)
            # Garbage after a good state must not leave the good one in force.
            await kv.put(customer_state_key(7), b'{"account_id": 7, "frozen": "maybe"}')
            await eventually(lambda: cache.get(7) is None)
            # A state filed under another account's key is refused.
            await publish_customer_state(js, topology, GOOD)
            await eventually(lambda: cache.get(7) is not None)
            await kv.put(customer_state_key(7), b'{"account_id": 8}')
            await eventually(lambda: cache.get(7) is None)
            # Keys that are not ours are ignored, and the cache stays live.
            await kv.put("something.else", b"{}")
            await publish_customer_state(js, topology, replace(GOOD, account_id=5))
            await eventually(lambda: cache.get(5) is not None)
            assert cache.live and len(cache) == 1
        finally:
            await cache.close()
            await js.delete_key_value(topology.customer_state_bucket)
            await client.close()

    asyncio.run(run())


def test_cache_is_not_live_until_the_bucket_exists(nats_url: str, nats_prefix: str) -> None:
    async def run() -> None:
        topology = Topology(prefix=nats_prefix)
        cache = await CustomerStateCache.open(nats_url, topology)
        client = await nats.connect(nats_url)
        js = client.jetstream()
        try:
            assert not await cache.wait_synced(0.3)
            decision = first_failure(
                cache.get(7), EVERYWHERE, NOW_NS, LIMITS, cache_live=cache.live
            )
            assert decision is Reason.customer_state_must_be_fresh

            await ensure_bucket(js, topology)
            await publish_customer_state(js, topology, GOOD)
            assert await cache.wait_synced(10)  # the cache retries about once a second
            await eventually(lambda: cache.get(7) is not None)
            assert (
                first_failure(cache.get(7), EVERYWHERE, NOW_NS, LIMITS, cache_live=cache.live)
                is None
            )
        finally:
            await cache.close()
            await js.delete_key_value(topology.customer_state_bucket)
            await client.close()

    asyncio.run(run())


def test_cache_fails_closed_while_disconnected_and_resyncs(
    nats_server_factory: Callable[[], NatsServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.checks")
    server = nats_server_factory()
    topology = Topology(prefix="resync")

    async def run() -> None:
        client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = client.jetstream()
        kv = await ensure_bucket(js, topology)
        await publish_customer_state(js, topology, GOOD)
        await publish_customer_state(js, topology, replace(GOOD, account_id=8))
        cache = await CustomerStateCache.open(server.url, topology)
        try:
            assert await cache.wait_synced(10)
            assert cache.get(7) is not None

            await asyncio.to_thread(server.stop)
            await eventually(lambda: not cache.live)
            decision = first_failure(
                cache.get(7), EVERYWHERE, NOW_NS, LIMITS, cache_live=cache.live
            )
            assert decision is Reason.customer_state_must_be_fresh

            # Compliance changes state while the cache is away: it must not miss it.
            await asyncio.to_thread(server.start)
            await eventually(lambda: client.is_connected, timeout_s=20)
            await kv.delete(customer_state_key(7))
            await publish_customer_state(js, topology, replace(GOOD, account_id=8, sanctioned=True))
            await eventually(lambda: cache.live, timeout_s=20)
            await eventually(
                lambda: cache.get(7) is None and (s := cache.get(8)) is not None and s.sanctioned
            )
        finally:
            await cache.close()
            await client.close()

    asyncio.run(run())
    # The mirror was rebuilt from a fresh watcher, not patched by whatever arrived after.
    synced = [r for r in caplog.records if r.getMessage().startswith("customer state cache synced")]
    assert len(synced) == 2
