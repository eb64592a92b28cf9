"""Shared setup for the compliance.customers tests (no tests here): a store on a fresh database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from compliance.customers import CustomerStore, NewCustomer, PersonType, Product, StatePublisher
from gateway.auth import AuditLog, ensure_schema

NOW_NS = 1_795_000_000_000_000_000


def alice(**changes: Any) -> NewCustomer:
    fields: dict[str, Any] = {
        "person_type": PersonType.natural,
        "given_names": "Alice Marie",
        "family_name": "Martin",
        "born_or_incorporated_on": dt.date(1990, 4, 1),
        "residence_country": "FR",
        "nationality_country": "FR",
        "expected_products": [Product.spot_trading, Product.crypto_withdrawal],
        "expected_monthly_volume_usd_minor": 250_000,
        "account_id": 42,
        **changes,
    }
    return NewCustomer(**fields)


async def open_store(
    url: str, publisher: StatePublisher | None = None
) -> tuple[CustomerStore, AuditLog]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await ensure_schema(conn)
    audit = await AuditLog.open(url)
    store = await CustomerStore.open(url, audit, publisher, now_ns=lambda: NOW_NS)
    return store, audit


async def counts(url: str) -> dict[str, int]:
    """Rows in every table a change may touch: 'nothing changed' means these stay put."""
    tables = [
        "customers.customers",
        "customers.consents",
        "customers.assessments",
        "customers.webhook_receipts",
    ]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        result = {}
        for table in tables:
            cursor = await conn.execute(f"SELECT count(*) FROM {table}")
            row = await cursor.fetchone()
            assert row is not None
            result[table] = row[0]
        return result


async def audit_rows(url: str) -> list[tuple[str, str, str | None, dict, str]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT actor, action, target, detail, outcome FROM audit_log ORDER BY id"
        )
        return list(await cursor.fetchall())
