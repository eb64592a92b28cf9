"""The reconciliation exception queue: every difference found, with its evidence, until a person
resolves it.

A difference found again while its exception is open updates that exception (last seen, latest
evidence) instead of queueing a duplicate; once resolved, a new occurrence opens a new one.
Resolving records who and why; nothing is ever deleted.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

import msgspec
import psycopg
from psycopg import sql

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.exceptions (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    asset_id integer NOT NULL,
    owner_id bigint NOT NULL,
    bucket text NOT NULL,
    engine_minor numeric,
    ledger_minor numeric,
    chain_minor numeric,
    journal_seq bigint NOT NULL,
    evidence jsonb NOT NULL,
    first_seen_ns bigint NOT NULL,
    last_seen_ns bigint NOT NULL,
    seen_count integer NOT NULL DEFAULT 1,
    status text NOT NULL DEFAULT 'open',
    resolved_by text,
    resolved_ns bigint,
    resolution text
);
CREATE UNIQUE INDEX IF NOT EXISTS exceptions_open_once
    ON {schema}.exceptions (kind, asset_id, owner_id, bucket) WHERE status = 'open';
"""


class ExceptionKind(StrEnum):
    """What a difference is, as a stable name."""

    # An engine balance and its ledger account(s) differ at the same journal sequence.
    BALANCE_MUST_MATCH_ENGINE = "balance_must_match_engine"
    # A ledger account holds money the engine does not know of.
    ACCOUNT_MUST_BE_KNOWN_TO_ENGINE = "account_must_be_known_to_engine"
    # The accounts of one asset do not sum to zero: money was made or lost.
    ASSET_MUST_SUM_TO_ZERO = "asset_must_sum_to_zero"
    # The ledger refused an engine transfer (its id and result are the evidence).
    ENGINE_TRANSFER_MUST_BE_BOOKED = "engine_transfer_must_be_booked"
    # The ledger did not reach the engine's journal sequence in time to compare.
    LEDGER_MUST_KEEP_UP = "ledger_must_keep_up"
    # The ledger's hash chain does not verify.
    LEDGER_CHAIN_MUST_VERIFY = "ledger_chain_must_verify"
    # What custody holds on chain differs from the omnibus account.
    CHAIN_HOLDINGS_MUST_MATCH = "chain_holdings_must_match"


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    """One difference a reconciliation found. Amounts in the asset's minor units; None where a
    side was not looked at."""

    kind: ExceptionKind
    asset_id: int = 0
    owner_id: int = 0
    bucket: str = ""  # "available", "held", "omnibus", "fees", or "" when not a balance
    engine_minor: int | None = None
    ledger_minor: int | None = None
    chain_minor: int | None = None
    journal_seq: int = 0
    evidence: dict[str, Any] = {}


class QueuedException(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    difference: Difference
    first_seen_ns: int
    last_seen_ns: int
    seen_count: int
    status: str
    resolved_by: str | None
    resolved_ns: int | None
    resolution: str | None


class ExceptionNotOpen(LookupError):
    """Resolving an exception that does not exist or is resolved already."""


def _q(template: str, schema: str) -> sql.Composed:
    return sql.SQL(template).format(schema=sql.Identifier(schema))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class ExceptionQueue:
    """The queue in PostgreSQL schema `schema` (the ledger's). Open with `open`."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str) -> None:
        self._conn = conn
        self._schema = schema

    @classmethod
    async def open(cls, database_url: str, *, schema: str = "ledger") -> ExceptionQueue:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await conn.execute(_q(_DDL, schema))
        return cls(conn, schema)

    async def close(self) -> None:
        await self._conn.close()

    async def record(self, differences: list[Difference], *, now_ns: int | None = None) -> int:
        """Queue each difference, or refresh its open exception. Returns how many are new."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        new = 0
        async with self._conn.transaction():
            for d in differences:
                cursor = await self._conn.execute(
                    _q(
                        "INSERT INTO {schema}.exceptions AS e (kind, asset_id, owner_id, bucket,"
                        " engine_minor, ledger_minor, chain_minor, journal_seq, evidence,"
                        " first_seen_ns, last_seen_ns)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"
                        " ON CONFLICT (kind, asset_id, owner_id, bucket) WHERE status = 'open'"
                        " DO UPDATE SET engine_minor = excluded.engine_minor,"
                        " ledger_minor = excluded.ledger_minor, chain_minor = excluded.chain_minor,"
                        " journal_seq = excluded.journal_seq, evidence = excluded.evidence,"
                        " last_seen_ns = excluded.last_seen_ns, seen_count = e.seen_count + 1"
                        " RETURNING (xmax = 0)",
                        self._schema,
                    ),
                    (
                        d.kind.value,
                        d.asset_id,
                        d.owner_id,
                        d.bucket,
                        d.engine_minor,
                        d.ledger_minor,
                        d.chain_minor,
                        d.journal_seq,
                        msgspec.json.encode(d.evidence).decode(),
                        now_ns,
                        now_ns,
                    ),
                )
                row = await cursor.fetchone()
                new += bool(row and row[0])
        return new

    async def fetch(
        self, *, status: str | None = "open", limit: int = 100
    ) -> list[QueuedException]:
        """Exceptions, newest first; ``status`` None lists every one."""
        where = "" if status is None else "WHERE status = %s"
        params: tuple[Any, ...] = () if status is None else (status,)
        cursor = await self._conn.execute(
            _q(
                "SELECT id, kind, asset_id, owner_id, bucket, engine_minor, ledger_minor,"
                " chain_minor, journal_seq, evidence, first_seen_ns, last_seen_ns, seen_count,"
                " status, resolved_by, resolved_ns, resolution FROM {schema}.exceptions "
                + where
                + " ORDER BY id DESC LIMIT %s",
                self._schema,
            ),
            (*params, limit),
        )
        return [
            QueuedException(
                id=r[0],
                difference=Difference(
                    kind=ExceptionKind(r[1]),
                    asset_id=r[2],
                    owner_id=r[3],
                    bucket=r[4],
                    engine_minor=_int(r[5]),
                    ledger_minor=_int(r[6]),
                    chain_minor=_int(r[7]),
                    journal_seq=r[8],
                    evidence=r[9],
                ),
                first_seen_ns=r[10],
                last_seen_ns=r[11],
                seen_count=r[12],
                status=r[13],
                resolved_by=r[14],
                resolved_ns=r[15],
                resolution=r[16],
            )
            for r in await cursor.fetchall()
        ]

    async def resolve(
        self, exception_id: int, *, resolved_by: str, resolution: str, now_ns: int | None = None
    ) -> None:
        """Close an open exception with who resolved it and how (a correcting transfer's id, a
        finding). Raises ExceptionNotOpen if there is no such open exception."""
        if not resolution.strip():
            raise ValueError("a resolution must say what was done")
        cursor = await self._conn.execute(
            _q(
                "UPDATE {schema}.exceptions SET status = 'resolved', resolved_by = %s,"
                " resolved_ns = %s, resolution = %s WHERE id = %s AND status = 'open'",
                self._schema,
            ),
            (resolved_by, time.time_ns() if now_ns is None else now_ns, resolution, exception_id),
        )
        if cursor.rowcount != 1:
            raise ExceptionNotOpen(f"exception {exception_id} is not open")


__all__ = ["Difference", "ExceptionKind", "ExceptionNotOpen", "ExceptionQueue", "QueuedException"]
