"""The cases tables, in their own PostgreSQL schema ``cases``; created idempotently.

One history table serves alerts, cases and drafts (``target`` is ``alert:<id>``, ``case:<id>``
or ``draft:<id>``): every state change writes its row in the same transaction as the change,
with the actor and the reason, so the history cannot disagree with the state.
"""

from __future__ import annotations

from typing import Any

import psycopg

_DDL = """
CREATE SCHEMA IF NOT EXISTS cases;
CREATE TABLE IF NOT EXISTS cases.alerts (
    alert_id text PRIMARY KEY,
    rule_id text NOT NULL,
    account_id bigint NOT NULL,
    severity text NOT NULL,
    summary text NOT NULL,
    raised_ts_ns bigint NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'new',
    assignee text,
    case_id bigint,
    dismiss_reason text,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_status_severity ON cases.alerts (status, severity);
CREATE TABLE IF NOT EXISTS cases.cases (
    case_id bigserial PRIMARY KEY,
    account_id bigint NOT NULL,
    status text NOT NULL DEFAULT 'open',
    opened_by text NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cases.notes (
    note_id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES cases.cases,
    author text NOT NULL,
    body text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cases.documents (
    document_id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES cases.cases,
    name text NOT NULL,
    media_type text NOT NULL,
    sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    storage_ref text NOT NULL,
    added_by text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cases.document_bytes (
    ref text PRIMARY KEY,
    content bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS cases.drafts (
    draft_id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES cases.cases,
    report_code text NOT NULL,
    jurisdiction text NOT NULL,
    status text NOT NULL DEFAULT 'draft',
    drafted_by text NOT NULL,
    approved_by text,
    narrative text NOT NULL,
    detected_on date NOT NULL,
    due_on date NOT NULL,
    fiu_reference text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS drafts_open_due ON cases.drafts (due_on)
    WHERE status IN ('draft', 'approved');
CREATE TABLE IF NOT EXISTS cases.history (
    id bigserial PRIMARY KEY,
    target text NOT NULL,
    action text NOT NULL,
    from_status text,
    to_status text,
    actor text NOT NULL,
    reason_code text,
    reason_text text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS history_target ON cases.history (target, id);
"""
# CREATE ... IF NOT EXISTS is not safe against a concurrent twin: the lock serialises them.
_SCHEMA_LOCK_ID = 0x636C_6361_7365  # "clcase"


async def ensure_schema(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the ``cases`` schema and its tables if missing; safe from several processes."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_ID,))
        await conn.execute(_DDL)
