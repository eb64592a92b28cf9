"""Compliance alerts: what a monitoring rule or a screening hit raises for a person to triage.

Not the ledger's operational alerts (`ledger.alerts.Alert`, a nudge on core NATS): a compliance
alert is a record a regulator may ask for years later, so it travels on a JetStream stream
(`Topology.compliance_alerts_stream`) and the cases service stores it before it acks.

The producer owns this payload. Schema rules: map encoding, unknown fields ignored, a new field
always gets a default, a field is never renamed or retyped. `alert_id` is deterministic (rule,
account and the event that fired it), so a redelivered event raises no second alert.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["low", "medium", "high", "critical"]

# What a rule asks for; the monitoring service carries each out (see the rule configuration).
Action = Literal[
    "enhanced_monitoring",  # flag the customer for enhanced due diligence
    "freeze",  # the engine's kill switch and a withdrawal block
    "block_and_sar",  # block the transfer and draft a suspicious activity report
    "require_source_of_funds",  # ask the customer to document where the money came from
    "report_immediately",  # a sanctions match: freeze and report without waiting for triage
]


class Evidence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """One fact behind an alert: the event it came from and what it said, as strings."""

    source: str  # "engine", "custody", "screening"
    ref: str  # the event's stable id, e.g. "ev:0:1234/5" (message id / row)
    detail: dict[str, str] = {}


class PriceUsed(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The USD reference price a rule valued an asset at, kept so the decision can be replayed."""

    asset: str
    usd_per_unit: str  # Decimal as a string, never float
    source: str  # "last_trade", "mid", "fixed", "pegged" (a stablecoin at 1 USD)
    as_of_ns: int = 0


class ComplianceAlert(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """One alert for triage.

    Attributes
    ----------
    alert_id : str
        Stable and deterministic: ``<rule_id>:<account_id>:<triggering event ref>``.
    rule_id : str
        The rule that fired (``"VASP-001"``, ``"STRUCTURING"``, ``"SCREENING"``).
    rule_version : str
        The version of the rule configuration in force, so the decision can be replayed.
    account_id : int
        The customer's trading account.
    severity : {"low", "medium", "high", "critical"}
    actions : tuple of str
        What the rule asked for (`Action`), in the order they were carried out.
    summary : str
        One sentence a compliance officer reads first.
    evidence : tuple of Evidence
    prices : tuple of PriceUsed
        Every USD reference price the rule used.
    raised_ts_ns : int
        The event time that fired the rule (not the wall clock: replays give the same alert).
    """

    alert_id: str
    rule_id: str
    rule_version: str = ""
    account_id: int
    severity: Severity
    actions: tuple[Action, ...] = ()
    summary: str
    evidence: tuple[Evidence, ...] = ()
    prices: tuple[PriceUsed, ...] = ()
    raised_ts_ns: int


ALERT_ENCODER = msgspec.json.Encoder()
ALERT_DECODER = msgspec.json.Decoder(ComplianceAlert)

__all__ = [
    "ALERT_DECODER",
    "ALERT_ENCODER",
    "Action",
    "ComplianceAlert",
    "Evidence",
    "PriceUsed",
    "Severity",
]
