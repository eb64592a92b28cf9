"""The producer side of customer state (compliance.customer_state).

Goal: compliance can create the bucket any number of times, from several processes at once;
what it publishes is the map-encoded JSON the gateways decode; the schema tolerates fields it
does not know (old gateways survive new compliance services) and refuses values it cannot trust.
Method: a real NATS JetStream key-value bucket per test, read back with nats-py's own `get`,
and msgspec decoding of hand-written payloads.
"""

from __future__ import annotations

import asyncio

import msgspec
import nats
import pytest

import compliance
from compliance.customer_state import (
    CustomerState,
    customer_state_history_max,
    customer_state_key,
    ensure_bucket,
    publish_customer_state,
)
from engine.topology import Topology

STATE = CustomerState(
    account_id=42,
    kyc_verified=True,
    frozen=False,
    sanctioned=False,
    jurisdiction="FR",
    risk_level="medium",
    as_of_ns=1_750_000_000_000_000_000,
)
decode = msgspec.json.Decoder(CustomerState).decode


def test_package_exports_the_producer_api() -> None:
    assert compliance.CustomerState is CustomerState
    assert set(compliance.__all__) == {
        "CustomerState",
        "customer_state_key",
        "ensure_bucket",
        "publish_customer_state",
    }


def test_key_names_the_account() -> None:
    assert customer_state_key(42) == "acct.42"


def test_ensure_bucket_is_idempotent_and_publish_round_trips(
    nats_url: str, nats_prefix: str
) -> None:
    async def run() -> None:
        topology = Topology(prefix=nats_prefix)
        client = await nats.connect(nats_url)
        js = client.jetstream()
        try:
            # Several services starting at once, then one starting again.
            await asyncio.gather(*(ensure_bucket(js, topology) for _ in range(3)))
            kv = await ensure_bucket(js, topology)
            assert (await kv.status()).history == customer_state_history_max

            first = await publish_customer_state(js, topology, STATE)
            frozen = msgspec.structs.replace(STATE, frozen=True)
            second = await publish_customer_state(js, topology, frozen)
            assert second > first
            entry = await kv.get(customer_state_key(42))
            assert entry.value is not None
            assert decode(entry.value) == frozen
            # Map encoding, so a reader can see (and a new field can join) by name.
            assert msgspec.json.decode(entry.value)["frozen"] is True
        finally:
            await js.delete_key_value(topology.customer_state_bucket)
            await client.close()

    asyncio.run(run())


def test_unknown_fields_are_tolerated() -> None:
    payload = msgspec.json.encode(STATE)[:-1] + b', "pep": true, "score": 71}'
    assert decode(payload) == STATE


@pytest.mark.parametrize(
    "change",
    [
        {"jurisdiction": "fr"},  # not upper-case ISO alpha-2
        {"jurisdiction": "FRA"},
        {"risk_level": "extreme"},
        {"frozen": "no"},
        {"as_of_ns": None},
    ],
)
def test_values_that_cannot_be_trusted_do_not_decode(change: dict[str, object]) -> None:
    fields = msgspec.structs.asdict(STATE) | change
    with pytest.raises(msgspec.ValidationError):
        decode(msgspec.json.encode(fields))


def test_the_original_fields_are_required() -> None:
    # A missing flag must not default to "fine": compliance states each of these every time.
    # (A field added later gets a default, by the schema rules, and is not listed here.)
    original = (
        "account_id", "kyc_verified", "frozen", "sanctioned", "jurisdiction", "risk_level",
        "as_of_ns",
    )  # fmt: skip
    assert set(original) <= set(CustomerState.__struct_fields__)
    for name in original:
        fields = msgspec.structs.asdict(STATE)
        del fields[name]
        with pytest.raises(msgspec.ValidationError):
            decode(msgspec.json.encode(fields))
