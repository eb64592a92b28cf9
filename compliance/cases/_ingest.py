"""Storing alerts as they arrive: once per `alert_id`, with a ``received`` history row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from compliance.alerts import ALERT_ENCODER, ComplianceAlert

# Who the history names for an alert's arrival: the service, not a person.
RECEIVER = "compliance.cases"


async def store_alerts(
    conn: psycopg.AsyncConnection[Any], alerts: Sequence[ComplianceAlert]
) -> list[str]:
    """Store `alerts` in one transaction; return the ids that were new.

    An alert already stored (a redelivery, or the same alert twice in `alerts`) is left as it
    is, status and history included: the first delivery is the record. O(len(alerts)).
    """
    new: list[str] = []
    async with conn.transaction():
        for alert in alerts:
            cursor = await conn.execute(
                "INSERT INTO cases.alerts (alert_id, rule_id, account_id, severity, summary,"
                " raised_ts_ns, payload) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
                " ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id",
                (
                    alert.alert_id,
                    alert.rule_id,
                    alert.account_id,
                    alert.severity,
                    alert.summary,
                    alert.raised_ts_ns,
                    ALERT_ENCODER.encode(alert).decode(),
                ),
            )
            if await cursor.fetchone() is None:
                continue
            new.append(alert.alert_id)
            await conn.execute(
                "INSERT INTO cases.history (target, action, to_status, actor, reason_text)"
                " VALUES (%s, 'receive', 'new', %s, %s)",
                (f"alert:{alert.alert_id}", RECEIVER, f"raised by rule {alert.rule_id}"),
            )
    return new
