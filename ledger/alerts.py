"""Operational alerts the ledger raises (a dead letter, a refused engine transfer, a
reconciliation break), published on the shard's alerts subject for whoever watches.

Core NATS, not JetStream: an alert is a nudge, and what it points at is kept durably elsewhere
(the dead-letter stream, the exception queue).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from engine.topology import Topology

log = logging.getLogger("clearline.ledger")

ALERT_ENCODER = msgspec.json.Encoder()


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert. `kind` is a stable name (an ExceptionKind value, or `dead_letter`)."""

    source: str
    kind: str
    severity: str  # "critical" or "warning"
    summary: str
    journal_seq: int = 0
    evidence: dict[str, Any] = {}
    ts_ns: int = 0


ALERT_DECODER = msgspec.json.Decoder(Alert)


async def raise_alert(nc: Any, topology: Topology, alert: Alert) -> None:
    """Log the alert and publish it; a publish that fails is logged, never raised: an alert
    must not stop the work it reports on."""
    if not alert.ts_ns:
        alert = msgspec.structs.replace(alert, ts_ns=time.time_ns())
    log.error("ALERT %s %s: %s", alert.severity, alert.kind, alert.summary)
    try:
        await nc.publish(topology.alerts_subject, ALERT_ENCODER.encode(alert))
    except Exception as exc:
        log.error("alert not published: %s", exc)


__all__ = ["ALERT_DECODER", "Alert", "raise_alert"]
