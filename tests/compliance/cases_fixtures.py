"""Shared set-up for the compliance.cases tests (no tests here): a service on a real database,
officers, alerts, and a snapshot of every cases table (to prove a refused decision changed
nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from compliance.alerts import ComplianceAlert, Evidence
from compliance.cases import CaseService, PgDocumentStore, ReportingEntity, ensure_schema
from engine._codes import Role
from gateway.auth import AuditLog, Identity
from gateway.auth import ensure_schema as ensure_auth_schema

ALICE = Identity(key_id="a11ce0000001", account_id=0, role=Role.COMPLIANCE_OFFICER)
BOB = Identity(key_id="b0b000000002", account_id=0, role=Role.COMPLIANCE_OFFICER)
TRADER = Identity(key_id="7rade0000003", account_id=7, role=Role.TRADER)
ADMIN = Identity(key_id="ad1110000004", account_id=0, role=Role.ADMIN)
ENTITY = ReportingEntity(
    rentity_id="4711",
    person_first_name="Maria",
    person_last_name="Schmidt",
    person_email="mlro@example.com",
)
DAY_NS = 86_400 * 10**9
# 2026-11-02T00:00:00Z
T0_NS = 1_793_577_600 * 10**9

_TABLES = ("alerts", "cases", "notes", "documents", "document_bytes", "drafts", "history")


def make_alert(
    n: int, *, account_id: int = 7, severity: str = "high", day: int = 0
) -> ComplianceAlert:
    ref = f"ev:0:{n}"
    return ComplianceAlert(
        alert_id=f"VASP-001:{account_id}:{ref}",
        rule_id="VASP-001",
        rule_version="3",
        account_id=account_id,
        severity=severity,  # type: ignore[arg-type]
        actions=("enhanced_monitoring",),
        summary=f"large withdrawal #{n}",
        evidence=(
            Evidence(
                source="custody",
                ref=ref,
                detail={
                    "kind": "withdrawal",
                    "asset_id": "2",
                    "amount_minor": str(1000 + n),
                    "value_usd": f"{10_000 + n}.50",
                    "counterparty_address": "bc1qhostile<&>",
                },
            ),
        ),
        raised_ts_ns=T0_NS + day * DAY_NS + n,
    )


@dataclass
class Setup:
    service: CaseService
    audit: AuditLog
    documents: PgDocumentStore
    conn: psycopg.AsyncConnection[Any]


@asynccontextmanager
async def open_setup(database_url: str) -> AsyncIterator[Setup]:
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    await ensure_auth_schema(conn)
    await ensure_schema(conn)
    await ensure_schema(conn)  # idempotent
    audit = await AuditLog.open(database_url)
    documents = await PgDocumentStore.open(database_url)
    service = await CaseService.open(database_url, audit, documents, ENTITY)
    try:
        yield Setup(service, audit, documents, conn)
    finally:
        await service.close()
        await documents.close()
        await audit.close()
        await conn.close()


async def snapshot(conn: psycopg.AsyncConnection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every cases table, in a stable order."""
    out = {}
    for table in _TABLES:
        cursor = await conn.execute(f"SELECT * FROM cases.{table} ORDER BY 1")
        out[table] = await cursor.fetchall()
    return out


async def audit_rows(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    """(actor, action, target, detail, outcome) of every audit row, in order."""
    cursor = await conn.execute(
        "SELECT actor, action, target, detail, outcome FROM audit_log ORDER BY id"
    )
    return await cursor.fetchall()
