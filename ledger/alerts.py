"""Operational alerts (a dead letter, a refused engine transfer, a reconciliation break, a
refused sanctions list), published on the shard's alerts subject for whoever watches; and the
dead-letter stream every consumer (ledger, monitoring, cases) keeps what it cannot use in.

Core NATS for alerts, not JetStream: an alert is a nudge, and what it points at is kept durably
elsewhere (the dead-letter stream, the exception queue).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import msgspec
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

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


async def ensure_dead_letter_stream(js: Any, topology: Topology) -> None:
    """Create the dead-letter stream (every consumer's subjects) unless it exists."""
    try:
        await js.stream_info(topology.dead_letter_stream)
    except NotFoundError:
        with contextlib.suppress(BadRequestError):  # a twin created it meanwhile
            await js.add_stream(
                StreamConfig(
                    name=topology.dead_letter_stream,
                    subjects=[f"{topology.prefix}.dead_letter.>"],
                )
            )


async def dead_letter(
    nc: Any,
    topology: Topology,
    *,
    consumer: str,
    stream: str,
    position: int,
    data: bytes,
    reason: str,
    source: str,
    summary: str,
    journal_seq: int = 0,
) -> None:
    """Keep a message a consumer cannot use, with its reason, then raise a critical alert.

    The publish is acknowledged before the caller acknowledges the original, so the message is
    never lost; its id names the consumer, stream and position, so meeting the same message
    again (a restart) keeps it once.
    """
    await nc.jetstream().publish(
        topology.dead_letter_subject(consumer),
        data,
        headers={
            "Nats-Msg-Id": f"dl:{consumer}:{stream}:{position}",
            "Clearline-Consumer": consumer,
            "Clearline-Stream": stream,
            "Clearline-Stream-Seq": str(position),
            "Clearline-Reason": reason[:500],
        },
    )
    await raise_alert(
        nc,
        topology,
        Alert(
            source=source,
            kind="dead_letter",
            severity="critical",
            summary=summary,
            journal_seq=journal_seq,
            evidence={"stream": stream, "position": position},
        ),
    )


__all__ = ["ALERT_DECODER", "Alert", "dead_letter", "ensure_dead_letter_stream", "raise_alert"]
