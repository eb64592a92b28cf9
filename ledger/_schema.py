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
(position, journal_seq) ~440k. Any btree on ``transfers`` costs about as much as storing the row
(2,000,000 rows in 50,000-row COPYs: no index 1.56M rows/s, uuid primary key 0.88-0.95M, a BRIN
1.25-1.33M, the version 1 table 0.75-0.82M).

So ids are in two spaces (`ledger.model.sequenced_id_min`). Client ids, below it, keep a unique
btree (idempotency enforced by PostgreSQL, lookups of any id). Sequenced ids, the consumer's
engine postings, which ascend with the journal, are found through one BRIN on (id, position,
journal_seq) that also serves link ranges (verify) and "after journal sequence X" (as-of
balances); the writer, the schema's only one, checks their uniqueness (``meta``'s
``sequenced_id_max`` is the largest stored, so an ascending write needs no query), and
`ledger.chain.verify` checks it again. That table took 1.23-1.29M rows/s in the measurement
above. A query by id must name the space for PostgreSQL to use the right index: `ids_in`.
The partial index on ``pending_id`` is paid only by posts and voids. As-of balances are the
current balances minus the effects of the transfers after X (`effects_sql`): O(transfers after
X), cheap for the recent sequences reconciliation asks about; a per-commit balance history
table would have cost a btree insert per touched account on every commit instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from ledger.model import sequenced_id_min

SCHEMA_VERSION = 2
# `ledger.model.sequenced_id_min` as a uuid literal: in the query text, not a parameter, so that
# the planner can match it with the partial index.
SEQUENCED_ID_MIN_SQL = "'80000000-0000-0000-0000-000000000000'::uuid"

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO {schema}.meta (key, value) VALUES ('schema_version', '2'), ('sequenced_id_max', '0')
    ON CONFLICT DO NOTHING;
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
    id uuid NOT NULL,
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
CREATE UNIQUE INDEX IF NOT EXISTS transfers_client_id
    ON {schema}.transfers (id) WHERE id < {sequenced_id_min};
-- autosummarize: a filled block range is summarized by autovacuum, not left for every lookup
-- to scan.
CREATE INDEX IF NOT EXISTS transfers_id_position_journal_seq
    ON {schema}.transfers USING brin (id, position, journal_seq) WITH (autosummarize = on);
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


# Session settings of the ledger's connections. JIT off: the planner prices the lookup of a
# post's pending transfer (`effects_sql`) as if every row made it, and would compile the as-of
# and verify queries for a cost they do not have.
CONNECT_OPTIONS = "-c jit=off"


def q(template: str, schema: str) -> sql.Composed:
    """`template` with ``{schema}`` replaced by the quoted schema name (and
    ``{sequenced_id_min}`` by `SEQUENCED_ID_MIN_SQL`)."""
    return sql.SQL(template).format(
        schema=sql.Identifier(schema), sequenced_id_min=sql.SQL(SEQUENCED_ID_MIN_SQL)
    )


def ids_in(column: str, client: str, sequenced: str) -> str:
    """SQL for "`column` is one of these ids", the ids split by space into two uuid[]
    placeholders (`split_ids`), so that each index serves its own: the partial unique index
    the client ids, the BRIN the sequenced ones (one array for both would make PostgreSQL
    search the BRIN for all of them)."""
    return (
        f"(({column} = ANY({client}::uuid[]) AND {column} < {SEQUENCED_ID_MIN_SQL})"
        f" OR ({column} = ANY({sequenced}::uuid[]) AND {column} >= {SEQUENCED_ID_MIN_SQL}))"
    )


def uuid_array(ids: Iterable[int]) -> str:
    """Transfer ids as a PostgreSQL uuid[] literal: one text parameter, far cheaper to build and
    send than a list of uuid.UUID objects (seen in a profile of the consumer)."""
    return "{" + ",".join(f"{i:032x}" for i in ids) + "}"


# COPY's text format: a backslash, tab, newline or carriage return inside a field is escaped.
_COPY_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str | None) -> str:
    """`value` as one field of a text-format COPY row (None is NULL)."""
    return "\\N" if value is None else value.translate(_COPY_TEXT_ESCAPES)


def split_ids(ids: Iterable[int]) -> tuple[str, str]:
    """Transfer ids in [1, 2**128) as two `uuid_array`s: the client ids, the sequenced ids."""
    client: list[int] = []
    sequenced: list[int] = []
    for i in ids:
        (client if i < sequenced_id_min else sequenced).append(i)
    return uuid_array(client), uuid_array(sequenced)


async def ensure_schema(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    """Create the schema and its tables if missing, bring a version 1 schema to version 2;
    fail on a schema of another version."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT to_regclass(format('%%I.meta', %s::text)) IS NOT NULL", (schema,)
        )
        existed = await cur.fetchone()
        version = await _version(conn, schema) if existed and existed[0] else None
        if version == 1:
            await _upgrade_from_1(conn, schema)
        await conn.execute(q(_DDL, schema))
        version = await _version(conn, schema)
    if version != SCHEMA_VERSION:
        raise RuntimeError(f"ledger schema {schema!r} has version {version}, not {SCHEMA_VERSION}")


async def _version(conn: psycopg.AsyncConnection[Any], schema: str) -> int | None:
    cur = await conn.execute(
        q("SELECT value FROM {schema}.meta WHERE key = 'schema_version'", schema)
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def _upgrade_from_1(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    """Version 1 kept every id in the primary key: record the largest sequenced id (while the
    key still finds it at once), then drop the key and the old BRIN; `_DDL` adds version 2's
    indexes. Ids stay as they were: an old engine id below the line is a client id now."""
    cur = await conn.execute(
        q("SELECT id FROM {schema}.transfers WHERE id >= {sequenced_id_min}"
          " ORDER BY id DESC LIMIT 1", schema)
    )  # fmt: skip
    row = await cur.fetchone()
    largest = 0 if row is None else row[0].int
    await conn.execute(
        q("INSERT INTO {schema}.meta (key, value) VALUES ('sequenced_id_max', %s)"
          " ON CONFLICT (key) DO UPDATE SET value = excluded.value", schema),
        (str(largest),),
    )  # fmt: skip
    await conn.execute(
        q("ALTER TABLE {schema}.transfers DROP CONSTRAINT transfers_pkey;"
          " DROP INDEX {schema}.transfers_position_journal_seq;"
          " UPDATE {schema}.meta SET value = '2' WHERE key = 'schema_version'", schema)
    )  # fmt: skip


# What each transfer row did to its two accounts, one row per (transfer, side): a transfer
# without PENDING or VOID_PENDING posts its amount (a post posts what it names); a pending
# transfer adds its amount to the pending sums; a post or a void takes the pending transfer's
# whole amount off them. {where} filters the transfers (e.g. journal_seq > X).
_EFFECTS = """
SELECT t.debit_account_id AS account_id,
       CASE WHEN t.flags & 10 = 0 THEN t.amount_minor ELSE 0 END AS dp,
       0::bigint AS cp,
       CASE WHEN t.flags & 2 <> 0 THEN t.amount_minor
            WHEN t.flags & 12 <> 0 THEN -{pending_amount} ELSE 0 END AS dpe,
       0::bigint AS cpe
FROM {schema}.transfers t
WHERE {where}
UNION ALL
SELECT t.credit_account_id,
       0::bigint,
       CASE WHEN t.flags & 10 = 0 THEN t.amount_minor ELSE 0 END,
       0::bigint,
       CASE WHEN t.flags & 2 <> 0 THEN t.amount_minor
            WHEN t.flags & 12 <> 0 THEN -{pending_amount} ELSE 0 END
FROM {schema}.transfers t
WHERE {where}
"""
# The amount of the pending transfer a post or void names: looked up (only for those rows) in
# each id space through its own index, as a join would not (it hashes the whole table).
_PENDING_AMOUNT = (
    "coalesce((SELECT p.amount_minor FROM {schema}.transfers p WHERE p.id = t.pending_id"
    " AND p.id < {sequenced_id_min}), (SELECT p.amount_minor FROM {schema}.transfers p"
    " WHERE p.id = t.pending_id AND p.id >= {sequenced_id_min}))"
)


def effects_sql(schema: str, where: str) -> str:
    """The per-side effects of the transfers that satisfy `where` (SQL text, trusted)."""
    return _EFFECTS.replace("{pending_amount}", _PENDING_AMOUNT).replace("{where}", where)


__all__ = [
    "CONNECT_OPTIONS",
    "SCHEMA_VERSION",
    "SEQUENCED_ID_MIN_SQL",
    "effects_sql",
    "ensure_schema",
    "ids_in",
    "q",
    "split_ids",
    "uuid_array",
]
