"""Carrying out what an alert asks for, for real.

- Every alert is published to the compliance alerts stream (`Topology.compliance_alerts_stream`,
  created here if missing) with ``Nats-Msg-Id`` = its alert id, so a redelivered event adds no
  second alert; the cases service triages from there.
- ``freeze``, ``report_immediately`` (a sanctions match) and ``block_and_sar`` freeze the
  customer: through the customer records when the customer is known there (audited, and the
  records publish the state), else a `CustomerState` with ``frozen`` set goes to the gateways'
  bucket directly (an account compliance knows nothing of fails closed: frozen, not verified,
  high risk). The engine's kill switch is set by journaling `SetKillSwitch` as the control API
  does; it stops the account's orders and its withdrawal holds. ``report_immediately`` also
  marks it sanctioned. The SAR of ``block_and_sar`` is the cases service's: it drafts one for
  every such alert it stores.
- ``enhanced_monitoring`` and ``require_source_of_funds`` open a requirement on a known
  customer's record (`compliance.customers.CustomerStore.open_requirement`), listed for the
  officers until one closes it.

The freeze comes before the alert is published: when the publish fails, the whole is done again
(freezing twice is harmless), and the event is acknowledged only after both.
"""

from __future__ import annotations

import msgspec
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import KeyNotFoundError, NotFoundError

from compliance.alerts import ALERT_ENCODER, ComplianceAlert
from compliance.customer_state import (
    CUSTOMER_STATE_DECODER,
    CustomerState,
    customer_state_key,
    ensure_bucket,
    publish_customer_state,
)
from compliance.customers import CustomerStore, RequirementKind
from engine.journal import EngineClient
from engine.messages import SetKillSwitch
from engine.topology import Topology

# How long the alerts stream remembers an alert id: a consumer that restarts and evaluates a
# day of events again (or a redelivery after a long outage) must not raise their alerts twice.
alerts_duplicate_window_s = 24 * 3600
# Jurisdiction written for an account compliance has no state for: ISO 3166's "unknown".
unknown_jurisdiction = "ZZ"
# Actions that stop the customer's money at once: a freeze, a sanctions report, and the block of
# "block and SAR" (custody's transfers stop with the withdrawal block; the SAR is the cases
# service's, which drafts one for every such alert it stores).
_FREEZING = frozenset({"freeze", "report_immediately", "block_and_sar"})
# Actions that ask more of a known customer, recorded on their record until an officer closes
# them (compliance.customers requirements).
_REQUIREMENTS = {
    "enhanced_monitoring": RequirementKind.enhanced_monitoring,
    "require_source_of_funds": RequirementKind.source_of_funds,
}
_state_decoder = CUSTOMER_STATE_DECODER


async def ensure_alerts_stream(js: JetStreamContext, topology: Topology) -> None:
    """Create the compliance alerts stream (every shard's alerts subject) if it is missing."""
    try:
        await js.stream_info(topology.compliance_alerts_stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=topology.compliance_alerts_stream,
                subjects=[f"{topology.prefix}.compliance.alerts.>"],
                duplicate_window=alerts_duplicate_window_s,
                description="compliance alerts (monitoring rules, screening hits) for triage",
            )
        )


class Actions:
    """The real actions adapter.

    Parameters
    ----------
    js : nats.js.JetStreamContext
    topology : engine.topology.Topology
    engine : engine.journal.EngineClient
        Journals the kill switch on the shard.
    actor : str
        Recorded on the journal entry as who set the kill switch.
    customers : compliance.customers.CustomerStore, optional
        Where customers are frozen when they are known there.
    """

    def __init__(
        self,
        js: JetStreamContext,
        topology: Topology,
        engine: EngineClient,
        *,
        actor: str = "compliance.monitoring",
        customers: CustomerStore | None = None,
    ) -> None:
        self.customers = customers
        self.js = js
        self.topology = topology
        self.engine = engine
        self.actor = actor
        self.alerts_published = 0
        self.alerts_duplicate = 0  # the stream already had the alert id
        self.freezes = 0

    async def start(self) -> None:
        """Create the alerts stream and the customer state bucket if missing."""
        await ensure_alerts_stream(self.js, self.topology)
        await ensure_bucket(self.js, self.topology)

    async def carry_out(self, alert: ComplianceAlert) -> None:
        """Freeze when asked, then publish the alert; raises when NATS does not acknowledge."""
        if _FREEZING.intersection(alert.actions):
            await self.freeze(alert)
        await self._require(alert)
        ack = await self.js.publish(
            self.topology.compliance_alerts_subject,
            ALERT_ENCODER.encode(alert),
            headers={"Nats-Msg-Id": alert.alert_id},
        )
        if ack.duplicate:
            self.alerts_duplicate += 1
        else:
            self.alerts_published += 1

    async def freeze(self, alert: ComplianceAlert) -> CustomerState:
        """Freeze the alert's account at the gateways and the engine; returns the new state.

        With a customer store, a known customer is frozen there (the record of truth, which
        publishes the state and audits the change); otherwise the state is published here.
        """
        account_id = alert.account_id
        sanctioned = "report_immediately" in alert.actions
        customer = None if self.customers is None else await self.customers.by_account(account_id)
        if customer is not None and self.customers is not None:
            actor, why = f"{self.actor}:{alert.rule_id}", f"{alert.alert_id}: {alert.summary}"
            await self.customers.freeze(customer.customer_id, actor, why)
            if sanctioned:
                await self.customers.mark_sanctioned(customer.customer_id, actor, why)
            state = await self.customers.publish_state(customer.customer_id)
            await self._kill_switch(alert)
            assert state is not None  # the customer has an account: it has a state
            return state
        known = await self._state(account_id)
        if known is None:
            state = CustomerState(
                account_id=account_id,
                kyc_verified=False,
                frozen=True,
                sanctioned=sanctioned,
                jurisdiction=unknown_jurisdiction,
                risk_level="high",
                as_of_ns=alert.raised_ts_ns,
            )
        else:
            state = msgspec.structs.replace(
                known, frozen=True, sanctioned=known.sanctioned or sanctioned
            )
        state = msgspec.structs.replace(
            state, reason=f"{alert.rule_id}: {alert.summary}", changed_by=self.actor
        )
        await publish_customer_state(self.js, self.topology, state)
        await self._kill_switch(alert)
        return state

    async def _require(self, alert: ComplianceAlert) -> None:
        """Open the requirements the alert asks for on a known customer's record."""
        kinds = [_REQUIREMENTS[a] for a in alert.actions if a in _REQUIREMENTS]
        if not kinds or self.customers is None:
            return
        customer = await self.customers.by_account(alert.account_id)
        if customer is None:
            return  # no record to keep it on: the alert itself carries the action for triage
        for kind in kinds:
            await self.customers.open_requirement(
                customer.customer_id, kind, alert.alert_id, f"{self.actor}:{alert.rule_id}",
                alert.summary,
            )  # fmt: skip

    async def _kill_switch(self, alert: ComplianceAlert) -> None:
        # Journaled, not awaited: the engine applies it in order with everything else; the
        # monitor must not stall on an engine that is restarting.
        await self.engine.append(
            [SetKillSwitch(account_id=alert.account_id, on=True)],
            actor=f"{self.actor}:{alert.alert_id}",
        )
        self.freezes += 1

    async def _state(self, account_id: int) -> CustomerState | None:
        kv = await self.js.key_value(self.topology.customer_state_bucket)
        try:
            entry = await kv.get(customer_state_key(account_id))
        except KeyNotFoundError:  # also a deleted key
            return None
        try:
            state = _state_decoder.decode(entry.value or b"")
        except msgspec.DecodeError:
            return None  # unreadable: treated as unknown, so the freeze fails closed
        return state if state.account_id == account_id else None


__all__ = ["Actions", "alerts_duplicate_window_s", "ensure_alerts_stream"]
