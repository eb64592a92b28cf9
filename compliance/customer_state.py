"""Compliance's view of each customer, published to the gateways over a JetStream key-value bucket.

Compliance owns this payload (it is the producer); every gateway keeps a copy in memory
(`gateway.checks.CustomerStateCache`) and rejects orders against it, so a freeze or a sanctions
hit reaches every gateway in one NATS round trip. Keys are ``acct.<account_id>``; values are
map-encoded msgspec JSON of `CustomerState`. A deleted key means "no state": orders then fail
closed with `Reason.customer_state_must_be_known`.

Schema rules (old gateways must survive new compliance services): map encoding, unknown fields
ignored, a new field always gets a default, a field is never renamed or retyped.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from engine.topology import Topology

# Revisions kept per customer: enough to see the last few changes when reviewing an incident;
# the durable record of every decision is compliance's own database, not this bucket.
customer_state_history_max = 10

RiskLevel = Literal["low", "medium", "high"]
# ISO 3166-1 alpha-2, upper case; a value that does not decode leaves the customer unknown.
Jurisdiction = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]


class CustomerState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """What the pre-trade checks need to know about one customer.

    Attributes
    ----------
    account_id : int
        The trading account the state belongs to (also in the key, and must match it).
    kyc_verified : bool
        Identity verification (KYC) passed and is current.
    frozen : bool
        Compliance froze the account (a monitoring rule or a case): no new orders.
    sanctioned : bool
        A sanctions screening hit is confirmed or pending review.
    jurisdiction : str
        The customer's jurisdiction, ISO 3166-1 alpha-2 (``"DE"``).
    risk_level : {"low", "medium", "high"}
        The customer's risk rating.
    as_of_ns : int
        When compliance last confirmed this state, nanoseconds since the Unix epoch; the gateway
        rejects orders against a state older than its ``customer_state_age_max_ns``.
    reason : str
        Why the state last changed, in compliance's words ("VASP-005 sanctions match on
        ofac_sdn:36", "KYC verified by vendor"): the risk desk sees it next to a refused order.
    changed_by : str
        Who or what made the change (an officer's key id, a rule, a webhook).
    """

    account_id: int
    kyc_verified: bool
    frozen: bool
    sanctioned: bool
    jurisdiction: Jurisdiction
    risk_level: RiskLevel
    as_of_ns: int
    reason: str = ""
    changed_by: str = ""


def customer_state_key(account_id: int) -> str:
    """The bucket key of one account's state: ``acct.<account_id>``."""
    return f"acct.{account_id}"


async def ensure_bucket(js: JetStreamContext, topology: Topology) -> KeyValue:
    """Open the customer state bucket, creating it first if it does not exist.

    Parameters
    ----------
    js : nats.js.JetStreamContext
        A JetStream context of a connected client.
    topology : engine.topology.Topology
        Names the bucket (`Topology.customer_state_bucket`).

    Returns
    -------
    nats.js.kv.KeyValue
        The bucket.
    """
    try:
        return await js.key_value(topology.customer_state_bucket)
    except BucketNotFoundError:
        # Two services racing here is harmless: the server accepts a create with an identical
        # configuration as a no-op.
        return await js.create_key_value(
            bucket=topology.customer_state_bucket,
            history=customer_state_history_max,
            description="compliance's view of each customer, read by the gateways",
        )


_encoder = msgspec.json.Encoder()
CUSTOMER_STATE_DECODER = msgspec.json.Decoder(CustomerState)


async def publish_customer_state(
    js: JetStreamContext, topology: Topology, state: CustomerState
) -> int:
    """Put one customer's state into the bucket; every gateway's cache applies it.

    Parameters
    ----------
    js : nats.js.JetStreamContext
        A JetStream context of a connected client.
    topology : engine.topology.Topology
        Names the bucket, which must exist (`ensure_bucket`).
    state : CustomerState
        The new state; replaces the account's previous one.

    Returns
    -------
    int
        The revision of the put (the stream sequence), once JetStream has stored it.
    """
    kv = await js.key_value(topology.customer_state_bucket)
    return await kv.put(customer_state_key(state.account_id), _encoder.encode(state))


__all__ = [
    "CUSTOMER_STATE_DECODER",
    "CustomerState",
    "customer_state_key",
    "ensure_bucket",
    "publish_customer_state",
]
