"""The ledger's tables in PostgreSQL, all in one schema so that runs and tests cannot meet.

Write path, per commit (one transaction, see `Ledger.commit`): the ``applied_events`` row first
when the commit carries an event id, one binary COPY into ``transfers``, one UPDATE of the
touched ``accounts`` from arrays, one INSERT of the failed ids from arrays, and the ``chain``
link (about 40,000 transfers/s in 2,000-transfer commits on the 2-core machine, measured
through `Ledger.commit`).

Indexes are few because every index is paid on the write path. Measured on the 2-core machine
with 2,000-row binary COPY commits (ids ascending, 1,000 accounts): no index ~750k rows/s; uuid
primary key ~470k; + btree on position ~400k; + btree on (debit_account_id, journal_seq) and
(credit_account_id, journal_seq) for as-of balances ~160k; uuid primary key + one BRIN on
(position, journal_seq) ~440k. So ``transfers`` has the primary key (idempotency, lookups of
old ids) and the BRIN (link ranges for verify, "after journal sequence X" for as-of balances),
plus a partial index on ``pending_id`` that only posts and voids pay. As-of balances are the
current balances minus the effects of the transfers after X (`effects_sql`): O(transfers after
X), cheap for the recent sequences reconciliation asks about; a per-commit balance history
table would have cost a btree insert per touched account on every commit instead.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

SCHEMA_VERSION = 1

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO {schema}.meta (key, value) VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;
-- Balances are rewritten on every commit that touches them: room on each page keeps those
-- updates HOT (no index entry per update; no balance column is indexed).
CREATE TABLE IF NOT EXISTS {schema}.accounts (
    id bigint PRIMARY KEY,
    ledger integer NOT NULL,
    owner_id bigint NOT NULL,
    purpose smallint NOT NULL,
    flags integer NOT NULL,
    debits_posted bigint NOT NULL DEFAULT 0,
    credits_posted bigint NOT NULL DEFAULT 0,
    debits_pending bigint NOT NULL DEFAULT 0,
    credits_pending bigint NOT NULL DEFAULT 0,
    ts_ns bigint NOT NULL
) WITH (fillfactor = 50);
-- Column order is the canonical order the chain hashes (ledger.chain.ROW_*): do not change it.
CREATE TABLE IF NOT EXISTS {schema}.transfers (
    position bigint NOT NULL,
    id uuid PRIMARY KEY,
    debit_account_id bigint NOT NULL,
    credit_account_id bigint NOT NULL,
    amount_minor bigint NOT NULL,
    pending_id uuid,
    ledger integer NOT NULL,
    code integer NOT NULL,
    flags integer NOT NULL,
    user_data_1 bigint NOT NULL,
    user_data_2 bigint NOT NULL,
    journal_seq bigint NOT NULL,
    ts_ns bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_position_journal_seq
    ON {schema}.transfers USING brin (position, journal_seq);
CREATE INDEX IF NOT EXISTS transfers_pending_id
    ON {schema}.transfers (pending_id) WHERE pending_id IS NOT NULL;
-- Ids refused with a result of their own: a retry gets id_already_failed.
CREATE TABLE IF NOT EXISTS {schema}.failed_transfers (
    id uuid PRIMARY KEY,
    result integer NOT NULL,
    commit_no bigint NOT NULL,
    index_in_commit integer NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.applied_events (
    event_id text PRIMARY KEY,
    commit_no bigint NOT NULL
);
-- One link per commit: its transfers are positions [first_position, first_position +
-- transfers_count), its failed ids those with its commit_no; hash as ledger.chain says.
CREATE TABLE IF NOT EXISTS {schema}.chain (
    commit_no bigint PRIMARY KEY,
    journal_seq bigint NOT NULL,
    first_position bigint NOT NULL,
    transfers_count integer NOT NULL,
    failed_count integer NOT NULL,
    event_id text,
    ts_ns bigint NOT NULL,
    hash bytea NOT NULL
);
"""


def q(template: str, schema: str) -> sql.Composed:
    """`template` with ``{schema}`` replaced by the quoted schema name."""
    return sql.SQL(template).format(schema=sql.Identifier(schema))


async def ensure_schema(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    """Create the schema and its tables if missing; fail on a schema of another version."""
    async with conn.transaction():
        await conn.execute(q(_DDL, schema))
        cur = await conn.execute(
            q("SELECT value FROM {schema}.meta WHERE key = 'schema_version'", schema)
        )
        row = await cur.fetchone()
    if row is None or int(row[0]) != SCHEMA_VERSION:
        raise RuntimeError(f"ledger schema {schema!r} has version {row}, not {SCHEMA_VERSION}")


# What each transfer row did to its two accounts, one row per (transfer, side): a transfer
# without PENDING or VOID_PENDING posts its amount (a post posts what it names); a pending
# transfer adds its amount to the pending sums; a post or a void takes the pending transfer's
# whole amount off them. {where} filters the transfers (e.g. journal_seq > X).
_EFFECTS = """
SELECT t.debit_account_id AS account_id,
       CASE WHEN t.flags & 10 = 0 THEN t.amount_minor ELSE 0 END AS dp,
       0::bigint AS cp,
       CASE WHEN t.flags & 2 <> 0 THEN t.amount_minor
            WHEN t.flags & 12 <> 0 THEN -p.amount_minor ELSE 0 END AS dpe,
       0::bigint AS cpe
FROM {schema}.transfers t
LEFT JOIN {schema}.transfers p ON t.flags & 12 <> 0 AND p.id = t.pending_id
WHERE {where}
UNION ALL
SELECT t.credit_account_id,
       0::bigint,
       CASE WHEN t.flags & 10 = 0 THEN t.amount_minor ELSE 0 END,
       0::bigint,
       CASE WHEN t.flags & 2 <> 0 THEN t.amount_minor
            WHEN t.flags & 12 <> 0 THEN -p.amount_minor ELSE 0 END
FROM {schema}.transfers t
LEFT JOIN {schema}.transfers p ON t.flags & 12 <> 0 AND p.id = t.pending_id
WHERE {where}
"""


def effects_sql(schema: str, where: str) -> str:
    """The per-side effects of the transfers that satisfy `where` (SQL text, trusted)."""
    return _EFFECTS.replace("{where}", where)


__all__ = ["SCHEMA_VERSION", "effects_sql", "ensure_schema", "q"]
