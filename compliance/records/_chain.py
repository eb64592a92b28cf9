"""The audit log: one append-only, hash-chained table for the whole system.

Every compliance decision and admin action is one row of ``audit_log``. Row ``seq`` (the
``id`` column: gapless, from 1) carries ``hash`` = SHA-256 over, in this order:

1. the domain tag ``b"clearline-audit-v1\\0"``;
2. ``prev_hash``: the previous row's hash (32 zero bytes for row 1);
3. ``>qq``: seq, then ts as integer microseconds since the Unix epoch (the ``at`` column);
4. actor, action, target, detail, outcome, each as ``>i`` length then UTF-8 bytes (length -1 for
   NULL). ``detail`` is the canonical JSON text (keys sorted, compact) exactly as stored: the
   column is ``json``, which keeps its text verbatim, where ``jsonb`` would renormalise numbers
   and key order and so change what the hash covers.

Appends are serialised by a transaction-scoped advisory lock, so concurrent writers (gateways,
compliance services) cannot fork the chain; the primary key on seq and the unique ``prev_hash``
would refuse a fork even from a writer that skipped the lock. A trigger refuses UPDATE, DELETE
and TRUNCATE on the table, so append-only is the database's rule, not only this code's.

What this does not stop: a superuser who disables the trigger and rewrites every row after the
one they change, or who drops the last rows. Against both, record the head (`ChainReport`'s
``head_seq`` and ``head_hash``) somewhere else now and then and pass it to `verify_chain` as an
anchor.
"""

from __future__ import annotations

import enum
import hashlib
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from compliance.records._limits import detail_bytes_max, name_chars_max, verify_batch_rows_max

GENESIS_HASH = bytes(32)
_DOMAIN = b"clearline-audit-v1\x00"
_HEADER = struct.Struct(">qq")
_LENGTH = struct.Struct(">i")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Serialises appends across every process writing to the database ("clchain").
_APPEND_LOCK_ID = 0x636C_6368_6169_6E
# Serialises creation of the audit and records tables ("clrecs"): CREATE ... IF NOT EXISTS is
# not safe against a concurrent twin.
SCHEMA_LOCK_ID = 0x636C_7265_6373

# A refusal function shared by every append-only table of this package.
REFUSE_CHANGE_DDL = """
CREATE OR REPLACE FUNCTION clearline_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'raise_exception';
END;
$$;
"""

AUDIT_LOG_DDL = (
    REFUSE_CHANGE_DDL
    + """
CREATE TABLE IF NOT EXISTS audit_log (
    id        bigint PRIMARY KEY CHECK (id >= 1),
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    target    text,
    detail    json NOT NULL,
    outcome   text NOT NULL,
    prev_hash bytea NOT NULL UNIQUE CHECK (octet_length(prev_hash) = 32),
    hash      bytea NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE OR REPLACE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION clearline_refuse_change();
"""
)


class AuditEntryError(ValueError):
    """An audit entry that cannot be recorded as given (nothing was written)."""


class ChainBreakReason(enum.StrEnum):
    """Why a row breaks the chain, in the order `verify_chain` checks them."""

    seq_must_follow_previous_seq = "seq_must_follow_previous_seq"
    prev_hash_must_equal_previous_hash = "prev_hash_must_equal_previous_hash"
    hash_must_match_row_contents = "hash_must_match_row_contents"
    anchor_must_match_chain = "anchor_must_match_chain"


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One stored audit row, as `verify_chain` reads it."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail_json: str
    outcome: str
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first row that breaks the chain.

    Attributes
    ----------
    seq : int
        The row's seq (for a missing anchor, the anchor's seq).
    reason : ChainBreakReason
        What is wrong.
    explanation : str
        The same for a person, with the values that disagree.
    """

    seq: int
    reason: ChainBreakReason
    explanation: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify_chain` found.

    Attributes
    ----------
    rows_checked : int
        Rows read up to the first break (all of them when intact).
    head_seq : int
        The last intact row's seq (0 for an empty log).
    head_hash : bytes
        That row's hash (`GENESIS_HASH` for an empty log): record it elsewhere as an anchor.
    first_break : ChainBreak or None
        None when the chain is intact.
    """

    rows_checked: int
    head_seq: int
    head_hash: bytes
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        """True when no row breaks the chain."""
        return self.first_break is None


def _field(value: str | None) -> bytes:
    if value is None:
        return _LENGTH.pack(-1)
    encoded = value.encode()
    return _LENGTH.pack(len(encoded)) + encoded


def ts_micros(at: datetime) -> int:
    """Integer microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    return (at - _EPOCH) // _MICROSECOND


def row_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    detail_json: str,
    outcome: str,
    prev_hash: bytes,
) -> bytes:
    """SHA-256 of one row's canonical encoding (see the module docstring). O(row size)."""
    digest = hashlib.sha256(_DOMAIN)
    digest.update(prev_hash)
    digest.update(_HEADER.pack(seq, ts_micros(at)))
    for value in (actor, action, target, detail_json, outcome):
        digest.update(_field(value))
    return digest.digest()


def _check_name(what: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or not value.strip():
        raise AuditEntryError(f"{what} must be a non-empty string, not {value!r:.80}")
    if len(value) > name_chars_max:
        raise AuditEntryError(f"{what} is {len(value)} characters; at most {name_chars_max}")
    if "\x00" in value:
        raise AuditEntryError(f"{what} contains a NUL character, which PostgreSQL cannot store")


def canonical_detail(detail: Mapping[str, Any]) -> str:
    """The canonical JSON text of an audit row's detail: keys sorted, compact, enums as values.

    Raises
    ------
    AuditEntryError
        If ``detail`` is not a mapping, cannot be encoded, or is longer than `detail_bytes_max`.
    """
    if not isinstance(detail, Mapping):
        raise AuditEntryError(f"detail must be a mapping, not {type(detail).__name__}")
    try:
        encoded = msgspec.json.encode(detail, order="sorted")
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise AuditEntryError(f"detail is not JSON-encodable: {exc}") from None
    if len(encoded) > detail_bytes_max:
        raise AuditEntryError(f"detail is {len(encoded)} bytes; at most {detail_bytes_max}")
    return encoded.decode()


async def append_audit(
    conn: psycopg.AsyncConnection[Any],
    actor: str,
    action: str,
    target: str | None,
    detail: Mapping[str, Any],
    outcome: str,
) -> int:
    """Append one row to the audit chain, inside the caller's open transaction; return its seq.

    The row commits with the caller's transaction, so an action and its audit row are durable
    together or not at all. The append lock is held until that transaction ends: keep it short.

    Parameters
    ----------
    conn : psycopg.AsyncConnection
        A connection with a transaction open (``async with conn.transaction()``).
    actor, action, target, detail, outcome
        As `gateway.auth.AuditLog.record`.

    Returns
    -------
    int
        The row's seq.

    Raises
    ------
    AuditEntryError
        Bad input; checked before anything is sent to the database.
    psycopg.Error
        If the row could not be written.
    """
    _check_name("actor", actor)
    _check_name("action", action)
    _check_name("target", target, optional=True)
    _check_name("outcome", outcome)
    detail_json = canonical_detail(detail)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
        raise AuditEntryError("append_audit needs an open transaction on the connection")
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK_ID,))
    cursor = await conn.execute(
        "SELECT h.id, h.hash, clock_timestamp() FROM (SELECT 1) AS one"
        " LEFT JOIN LATERAL (SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) AS h"
        " ON true"
    )
    head = await cursor.fetchone()
    assert head is not None  # a SELECT without FROM filters gives exactly one row
    head_seq, head_hash, at = head
    seq = 1 if head_seq is None else int(head_seq) + 1
    prev_hash = GENESIS_HASH if head_hash is None else bytes(head_hash)
    digest = row_hash(seq, at, actor, action, target, detail_json, outcome, prev_hash)
    await conn.execute(
        "INSERT INTO audit_log (id, at, actor, action, target, detail, outcome, prev_hash, hash)"
        " VALUES (%s, %s, %s, %s, %s, %s::json, %s, %s, %s)",
        (seq, at, actor, action, target, detail_json, outcome, prev_hash, digest),
    )
    return seq


class _Checker:
    """Checks rows in seq order, one at a time; remembers the first break. O(1) memory."""

    def __init__(self, anchor: tuple[int, bytes] | None) -> None:
        self.rows = 0
        self.head_seq = 0
        self.head_hash = GENESIS_HASH
        self.first_break: ChainBreak | None = None
        self._anchor = anchor

    def _fail(self, seq: int, reason: ChainBreakReason, explanation: str) -> None:
        self.first_break = ChainBreak(seq, reason, explanation)

    def feed(self, row: AuditRow) -> bool:
        """Check the next row; False once the chain is broken (stop feeding)."""
        self.rows += 1
        if row.seq != self.head_seq + 1:
            missing = "is missing" if row.seq > self.head_seq + 1 else "is out of order"
            self._fail(
                row.seq,
                ChainBreakReason.seq_must_follow_previous_seq,
                f"row {row.seq} follows row {self.head_seq}: row {self.head_seq + 1} {missing}",
            )
            return False
        if row.prev_hash != self.head_hash:
            self._fail(
                row.seq,
                ChainBreakReason.prev_hash_must_equal_previous_hash,
                f"row {row.seq} has prev_hash {row.prev_hash.hex()}, row {self.head_seq}"
                f" hashes to {self.head_hash.hex()}",
            )
            return False
        expected = row_hash(
            row.seq,
            row.at,
            row.actor,
            row.action,
            row.target,
            row.detail_json,
            row.outcome,
            row.prev_hash,
        )
        if row.hash != expected:
            self._fail(
                row.seq,
                ChainBreakReason.hash_must_match_row_contents,
                f"row {row.seq}'s contents hash to {expected.hex()}, it stores {row.hash.hex()}",
            )
            return False
        anchor = self._anchor
        if anchor is not None and row.seq == anchor[0] and row.hash != anchor[1]:
            self._fail(
                row.seq,
                ChainBreakReason.anchor_must_match_chain,
                f"row {row.seq} hashes to {row.hash.hex()}, the anchor says {anchor[1].hex()}",
            )
            return False
        self.head_seq, self.head_hash = row.seq, row.hash
        return True

    def finish(self) -> ChainReport:
        if self.first_break is None and self._anchor is not None:
            anchor_seq, anchor_hash = self._anchor
            if anchor_seq > self.head_seq:
                self._fail(
                    anchor_seq,
                    ChainBreakReason.anchor_must_match_chain,
                    f"the anchor names row {anchor_seq}, the log ends at row {self.head_seq}:"
                    " rows were removed from its end",
                )
            elif anchor_seq == 0 and anchor_hash != GENESIS_HASH:
                self._fail(0, ChainBreakReason.anchor_must_match_chain, "bad genesis anchor")
        return ChainReport(self.rows, self.head_seq, self.head_hash, self.first_break)


def check_chain(rows: Iterable[AuditRow], anchor: tuple[int, bytes] | None = None) -> ChainReport:
    """Check audit rows given in seq order; a pure function, O(rows).

    Parameters
    ----------
    rows : iterable of AuditRow
        The log in ascending seq order.
    anchor : (seq, hash) or None
        A head recorded earlier: the row of that seq must exist and have that hash.

    Returns
    -------
    ChainReport
        With the first break, if any.
    """
    checker = _Checker(anchor)
    for row in rows:
        if not checker.feed(row):
            break
    return checker.finish()


_SELECT_ROWS = (
    "SELECT id, at, actor, action, target, detail::text, outcome, prev_hash, hash"
    " FROM audit_log WHERE id > %s ORDER BY id LIMIT %s"
)


async def verify_chain(
    conn: psycopg.AsyncConnection[Any], anchor: tuple[int, bytes] | None = None
) -> ChainReport:
    """Recompute every row's hash and link; report the first row that breaks the chain.

    Reads the log in seq order, `verify_batch_rows_max` rows per query. O(rows) time, O(batch)
    memory. Reads only: safe on a live database.

    Parameters
    ----------
    conn : psycopg.AsyncConnection
        Any connection to the database (read access to ``audit_log`` is enough).
    anchor : (seq, hash) or None
        A head recorded earlier (``ChainReport.head_seq``, ``head_hash``): catches a log whose
        last rows were removed, which the chain alone cannot show.

    Returns
    -------
    ChainReport
        ``intact`` is True when every row checks.
    """
    checker = _Checker(anchor)
    after = 0
    while True:
        cursor = await conn.execute(_SELECT_ROWS, (after, verify_batch_rows_max))
        rows = await cursor.fetchall()
        for seq, at, actor, action, target, detail, outcome, prev, digest in rows:
            row = AuditRow(
                int(seq), at, actor, action, target, detail, outcome, bytes(prev), bytes(digest)
            )
            if not checker.feed(row):
                return checker.finish()
        if len(rows) < verify_batch_rows_max:
            return checker.finish()
        after = int(rows[-1][0])


async def ensure_audit_schema(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create ``audit_log`` and its append-only trigger if missing; safe to race and repeat.

    Runs in its own transaction, or inside the caller's if one is open.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        legacy = await _set_legacy_log_aside(conn)
        await conn.execute(AUDIT_LOG_DDL)
        if legacy:
            # The first link of the new chain names what came before it, so the old rows stay
            # part of the record rather than vanishing in an upgrade.
            await append_audit(
                conn, "clearline", "audit_log_chained", legacy, {"legacy_table": legacy}, "ok"
            )


async def _set_legacy_log_aside(conn: psycopg.AsyncConnection[Any]) -> str:
    """An ``audit_log`` from before the chain (no ``hash`` column) is renamed, not converted:
    its rows were never hashed, and rewriting them would claim otherwise. Returns its new name,
    or ``""`` when there is nothing to set aside."""
    cursor = await conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'audit_log' AND column_name IN ('id', 'hash')"
    )
    row = await cursor.fetchone()
    if row is None or row[0] != 1:  # no table (0), or already chained (2)
        return ""
    name = f"audit_log_legacy_{time.time_ns()}"
    await conn.execute(sql.SQL("ALTER TABLE audit_log RENAME TO {}").format(sql.Identifier(name)))
    return name
