"""Encrypted record storage in PostgreSQL, with retention, legal hold and an access log.

Each record's payload is encrypted with AES-256-GCM under the key ring's current key and a fresh
random nonce; the row keeps the key id and nonce. The associated data is the row's identity
(id, record type, jurisdiction, subject), so a ciphertext copied onto another row fails its tag.
The row also keeps SHA-256 of the plaintext, checked after every decryption: it catches a
payload that decrypts but is not the one written (a bug in the path or a key mixup).

Every write, read, hold and deletion appends an audit row in the same transaction as the change,
so the change and its record commit together; a read commits its access-log and audit rows
before the payload is returned, and a read that fails (unknown record, unknown key, tag or
checksum failure) is logged with that outcome before the error is raised.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
import struct
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag

from compliance.records._chain import (
    AUDIT_LOG_DDL,
    REFUSE_CHANGE_DDL,
    SCHEMA_LOCK_ID,
    append_audit,
)
from compliance.records._keys import NONCE_BYTES, KeyRing
from compliance.records._limits import (
    name_chars_max,
    payload_bytes_max,
    purge_batch_max,
    purpose_chars_max,
    rotate_batch_max,
)
from compliance.records._retention import (
    RetentionPolicy,
    RetentionState,
    check_jurisdiction,
    check_record_type,
    due_for_purge,
    utc_date,
)

RECORDS_DDL = (
    REFUSE_CHANGE_DDL
    + """
CREATE TABLE IF NOT EXISTS compliance_records (
    id               bigserial PRIMARY KEY,
    record_type      text NOT NULL,
    jurisdiction     text NOT NULL,
    subject          text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    retain_until     date NOT NULL,
    legal_hold       boolean NOT NULL DEFAULT false,
    key_id           integer NOT NULL,
    nonce            bytea NOT NULL CHECK (octet_length(nonce) = 12),
    ciphertext       bytea NOT NULL,
    plaintext_sha256 bytea NOT NULL CHECK (octet_length(plaintext_sha256) = 32)
);
CREATE INDEX IF NOT EXISTS compliance_records_retain_until
    ON compliance_records (retain_until) WHERE NOT legal_hold;
CREATE INDEX IF NOT EXISTS compliance_records_subject ON compliance_records (subject);
CREATE INDEX IF NOT EXISTS compliance_records_key_id ON compliance_records (key_id);
-- A record under legal hold cannot be deleted, whoever asks.
CREATE OR REPLACE TRIGGER compliance_records_hold
    BEFORE DELETE ON compliance_records
    FOR EACH ROW WHEN (OLD.legal_hold) EXECUTE FUNCTION clearline_refuse_change();
-- The access log outlives the records it names (no foreign key): who read a purged record
-- stays known.
CREATE TABLE IF NOT EXISTS compliance_record_access (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    record_id bigint NOT NULL,
    actor     text NOT NULL,
    purpose   text NOT NULL,
    outcome   text NOT NULL,
    audit_seq bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS compliance_record_access_record_id
    ON compliance_record_access (record_id);
CREATE OR REPLACE TRIGGER compliance_record_access_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON compliance_record_access
    FOR EACH STATEMENT EXECUTE FUNCTION clearline_refuse_change();
"""
)

_AAD_DOMAIN = b"clearline-record-v1\x00"
_AAD_ID = struct.Struct(">q")
_AAD_LENGTH = struct.Struct(">i")


class AccessOutcome(enum.StrEnum):
    """How a read ended, as written to the access log and the audit log."""

    ok = "ok"
    record_must_exist = "record_must_exist"
    key_must_be_in_key_ring = "key_must_be_in_key_ring"
    ciphertext_must_authenticate = "ciphertext_must_authenticate"
    checksum_must_match_plaintext = "checksum_must_match_plaintext"


class RecordInputError(ValueError):
    """A request that cannot be carried out as given; nothing was written."""


class RecordNotFound(LookupError):
    """No record has this id (never written, or purged)."""

    def __init__(self, record_id: int) -> None:
        super().__init__(f"record {record_id} does not exist (never written, or purged)")
        self.record_id = record_id


class RecordIntegrityError(Exception):
    """A stored record failed its integrity check; it was not returned, and this was audited.

    Attributes
    ----------
    record_id : int
        The record.
    outcome : AccessOutcome
        Which check failed.
    """

    def __init__(self, record_id: int, outcome: AccessOutcome, explanation: str) -> None:
        super().__init__(
            f"record {record_id} failed its integrity check ({outcome}): {explanation}"
        )
        self.record_id = record_id
        self.outcome = outcome


def associated_data(record_id: int, record_type: str, jurisdiction: str, subject: str) -> bytes:
    """The AES-GCM associated data binding a ciphertext to its row."""
    parts = [_AAD_DOMAIN, _AAD_ID.pack(record_id)]
    for value in (record_type, jurisdiction, subject):
        encoded = value.encode()
        parts += [_AAD_LENGTH.pack(len(encoded)), encoded]
    return b"".join(parts)


def _check_text(what: str, value: object, chars_max: int = name_chars_max) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordInputError(f"{what} must be a non-empty string, not {value!r:.80}")
    if len(value) > chars_max:
        raise RecordInputError(f"{what} is {len(value)} characters; at most {chars_max}")
    if "\x00" in value:
        raise RecordInputError(f"{what} contains a NUL character")
    return value


def _check_record_id(record_id: object) -> int:
    if isinstance(record_id, bool) or not isinstance(record_id, int) or record_id < 1:
        raise RecordInputError(f"record id must be a positive integer, not {record_id!r:.80}")
    return record_id


def _target(record_id: int) -> str:
    return f"record:{record_id}"


async def ensure_schema(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the audit log and the records tables if missing; safe to race and to repeat."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        await conn.execute(AUDIT_LOG_DDL)
        await conn.execute(RECORDS_DDL)


class RecordStore:
    """Encrypted, checksummed, retained and access-logged compliance records.

    One connection, one operation at a time (a lock); each operation is one transaction (a
    purge or a rotation, one per batch) that also appends its audit rows. Open with
    `RecordStore.open` after `ensure_schema`; close with `close`.
    """

    def __init__(
        self,
        database_url: str,
        conn: psycopg.AsyncConnection[Any],
        key_ring: KeyRing,
        policy: RetentionPolicy,
    ) -> None:
        self._database_url = database_url
        self._conn = conn
        self._key_ring = key_ring
        self._policy = policy
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, database_url: str, key_ring: KeyRing, policy: RetentionPolicy | None = None
    ) -> RecordStore:
        """Connect to PostgreSQL (the tables must exist: `ensure_schema`)."""
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        return cls(database_url, conn, key_ring, policy or RetentionPolicy())

    @property
    def key_ring(self) -> KeyRing:
        """The key ring in use."""
        return self._key_ring

    def use_key_ring(self, key_ring: KeyRing) -> None:
        """Switch to a new key ring (after `KeyRing.with_new_key`); it must keep every key of
        the old one, since records may still be encrypted under them."""
        if not key_ring.keeps(self._key_ring):
            raise RecordInputError(
                f"the new key ring does not keep every key of the old one"
                f" (ids {sorted(self._key_ring.key_ids)}): old records would become unreadable"
            )
        self._key_ring = key_ring

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(self._database_url, autocommit=True)
        return self._conn

    def _encrypt(
        self, record_id: int, record_type: str, jurisdiction: str, subject: str, payload: bytes
    ) -> tuple[int, bytes, bytes]:
        key_id = self._key_ring.current_key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        aad = associated_data(record_id, record_type, jurisdiction, subject)
        return key_id, nonce, self._key_ring.aead(key_id).encrypt(nonce, payload, aad)

    def _decrypt(
        self,
        record_id: int,
        record_type: str,
        jurisdiction: str,
        subject: str,
        key_id: int,
        nonce: bytes,
        ciphertext: bytes,
        checksum: bytes,
    ) -> bytes:
        """The plaintext; raises `RecordIntegrityError` if any check fails."""
        if key_id not in self._key_ring.key_ids:
            raise RecordIntegrityError(
                record_id,
                AccessOutcome.key_must_be_in_key_ring,
                f"encrypted under key {key_id}, the key ring holds"
                f" {sorted(self._key_ring.key_ids)}: load the current key ring",
            )
        aad = associated_data(record_id, record_type, jurisdiction, subject)
        try:
            plain = self._key_ring.aead(key_id).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise RecordIntegrityError(
                record_id,
                AccessOutcome.ciphertext_must_authenticate,
                "the AES-GCM tag does not verify: the ciphertext, nonce, key id or the row's"
                " identity was changed",
            ) from None
        if hashlib.sha256(plain).digest() != checksum:
            raise RecordIntegrityError(
                record_id,
                AccessOutcome.checksum_must_match_plaintext,
                "the payload decrypts but its SHA-256 differs from the stored checksum",
            )
        return plain

    # -- COMMANDS --

    async def put(
        self,
        record_type: str,
        jurisdiction: str,
        subject: str,
        payload: bytes,
        actor: str,
        *,
        retention_start: date | None = None,
    ) -> int:
        """Store one record, encrypted; return its id once committed with its audit row.

        Parameters
        ----------
        record_type : str
            ``[a-z][a-z0-9_]*`` (``"kyc_document"``, ``"sar"``, ``"travel_rule"``).
        jurisdiction : str
            The regime whose retention applies: ``FR``, ``US-NY``, ``EU``.
        subject : str
            Who or what the record is about (``"customer:42"``); stored in clear for lookups.
        payload : bytes
            The record, at most `payload_bytes_max` bytes.
        actor : str
            Who stores it (API key id or service name).
        retention_start : date or None
            When the retention period starts (the end of the business relationship, when known);
            today (UTC) by default.

        Returns
        -------
        int
            The record id.

        Raises
        ------
        RecordInputError, RetentionError
            Bad input; nothing is written.
        psycopg.Error
            The record could not be written (nothing was).
        """
        check_record_type(record_type)
        check_jurisdiction(jurisdiction)
        _check_text("subject", subject)
        _check_text("actor", actor)
        if not isinstance(payload, bytes):
            raise RecordInputError(f"payload must be bytes, not {type(payload).__name__}")
        if len(payload) > payload_bytes_max:
            raise RecordInputError(f"payload is {len(payload)} bytes; at most {payload_bytes_max}")
        if retention_start is not None and (
            not isinstance(retention_start, date) or isinstance(retention_start, datetime)
        ):
            raise RecordInputError(f"retention_start must be a date, not {retention_start!r:.80}")
        start = retention_start or datetime.now(UTC).date()
        retain_until = self._policy.retain_until(record_type, jurisdiction, start)
        checksum = hashlib.sha256(payload).digest()
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                cursor = await conn.execute("SELECT nextval('compliance_records_id_seq')")
                row = await cursor.fetchone()
                assert row is not None
                record_id = int(row[0])
                key_id, nonce, ciphertext = self._encrypt(
                    record_id, record_type, jurisdiction, subject, payload
                )
                await conn.execute(
                    "INSERT INTO compliance_records (id, record_type, jurisdiction, subject,"
                    " retain_until, key_id, nonce, ciphertext, plaintext_sha256)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        record_id,
                        record_type,
                        jurisdiction,
                        subject,
                        retain_until,
                        key_id,
                        nonce,
                        ciphertext,
                        checksum,
                    ),
                )
                await append_audit(
                    conn,
                    actor,
                    "record_stored",
                    _target(record_id),
                    {
                        "record_type": record_type,
                        "jurisdiction": jurisdiction,
                        "retain_until": retain_until.isoformat(),
                        "key_id": key_id,
                        "payload_bytes": len(payload),
                    },
                    "ok",
                )
        return record_id

    async def set_legal_hold(self, record_id: int, hold: bool, actor: str, reason: str) -> None:
        """Put a record under legal hold (never purged, never deletable) or release it.

        Raises
        ------
        RecordInputError
            Bad input; nothing is written.
        RecordNotFound
            No such record; nothing is written.
        """
        _check_record_id(record_id)
        _check_text("actor", actor)
        _check_text("reason", reason, purpose_chars_max)
        if not isinstance(hold, bool):
            raise RecordInputError(f"hold must be a bool, not {hold!r:.80}")
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                cursor = await conn.execute(
                    "UPDATE compliance_records SET legal_hold = %s WHERE id = %s",
                    (hold, record_id),
                )
                if cursor.rowcount != 1:
                    raise RecordNotFound(record_id)
                await append_audit(
                    conn,
                    actor,
                    "legal_hold_set" if hold else "legal_hold_released",
                    _target(record_id),
                    {"reason": reason},
                    "ok",
                )

    async def purge(self, now: datetime, actor: str = "compliance.records.purge") -> list[int]:
        """Delete every record whose retention ended before ``now`` and is not on hold.

        Which records go is `due_for_purge` of the stored retention states and ``now``: the
        clock is the caller's, so a purge can be replayed. Each deletion appends an audit row in
        the deleting transaction. O(records due), in batches of `purge_batch_max`.

        Parameters
        ----------
        now : datetime
            Timezone-aware; a record is deleted from the UTC day after its ``retain_until``.
        actor : str
            Who purges.

        Returns
        -------
        list of int
            The ids deleted, ascending.

        Raises
        ------
        RetentionError
            ``now`` is naive or not a datetime; nothing is deleted.
        """
        today = utc_date(now)
        _check_text("actor", actor)
        deleted: list[int] = []
        async with self._lock:
            conn = await self._connection()
            while True:
                async with conn.transaction():
                    cursor = await conn.execute(
                        "SELECT id, retain_until, legal_hold, record_type, jurisdiction"
                        " FROM compliance_records WHERE retain_until < %s AND NOT legal_hold"
                        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                        (today, purge_batch_max),
                    )
                    rows = await cursor.fetchall()
                    # The query narrows the candidates; the decision is the pure function's.
                    due = due_for_purge(
                        (RetentionState(int(r[0]), r[1], bool(r[2])) for r in rows), now
                    )
                    by_id = {int(r[0]): r for r in rows}
                    if due:
                        await conn.execute(
                            "DELETE FROM compliance_records WHERE id = ANY(%s)", (due,)
                        )
                    for record_id in due:
                        _, retain_until, _, record_type, jurisdiction = by_id[record_id]
                        await append_audit(
                            conn,
                            actor,
                            "record_purged",
                            _target(record_id),
                            {
                                "record_type": record_type,
                                "jurisdiction": jurisdiction,
                                "retain_until": retain_until.isoformat(),
                                "purged_on": today.isoformat(),
                            },
                            "ok",
                        )
                deleted += due
                if len(rows) < purge_batch_max:
                    return deleted

    async def rotate(self, actor: str) -> int:
        """Re-encrypt every record not under the current key; return how many were moved.

        Each record is decrypted and checked (tag and checksum) first; a record that fails
        stops the rotation with `RecordIntegrityError` (its batch is rolled back, the failure
        is audited). One audit row per batch names the records moved. O(records moved).
        """
        _check_text("actor", actor)
        moved = 0
        async with self._lock:
            conn = await self._connection()
            current = self._key_ring.current_key_id
            while True:
                failure: RecordIntegrityError | None = None
                async with conn.transaction():
                    cursor = await conn.execute(
                        "SELECT id, record_type, jurisdiction, subject, key_id, nonce,"
                        " ciphertext, plaintext_sha256 FROM compliance_records"
                        " WHERE key_id <> %s ORDER BY id LIMIT %s FOR UPDATE",
                        (current, rotate_batch_max),
                    )
                    rows = await cursor.fetchall()
                    batch: list[int] = []
                    from_keys: set[int] = set()
                    for row in rows:
                        record_id, record_type, jurisdiction, subject, key_id = row[:5]
                        try:
                            plain = self._decrypt(
                                record_id,
                                record_type,
                                jurisdiction,
                                subject,
                                key_id,
                                bytes(row[5]),
                                bytes(row[6]),
                                bytes(row[7]),
                            )
                        except RecordIntegrityError as exc:
                            failure = exc
                            break
                        new_key, nonce, ciphertext = self._encrypt(
                            record_id, record_type, jurisdiction, subject, plain
                        )
                        await conn.execute(
                            "UPDATE compliance_records SET key_id = %s, nonce = %s,"
                            " ciphertext = %s WHERE id = %s",
                            (new_key, nonce, ciphertext, record_id),
                        )
                        batch.append(record_id)
                        from_keys.add(int(key_id))
                    if failure is None and batch:
                        await append_audit(
                            conn,
                            actor,
                            "records_reencrypted",
                            None,
                            {
                                "record_ids": batch,
                                "from_key_ids": sorted(from_keys),
                                "to_key_id": current,
                            },
                            "ok",
                        )
                    if failure is not None:
                        # Leave the batch untouched: roll it back, then audit on its own.
                        raise psycopg.Rollback()
                if failure is None:
                    moved += len(batch)
                    if len(rows) < rotate_batch_max:
                        return moved
                    continue
                async with conn.transaction():
                    await append_audit(
                        conn,
                        actor,
                        "records_reencryption_failed",
                        _target(failure.record_id),
                        {"to_key_id": current, "moved_before": moved},
                        str(failure.outcome),
                    )
                raise failure

    # -- QUERIES --

    async def get(self, record_id: int, actor: str, purpose: str) -> bytes:
        """Decrypt and return one record, after logging who read it and why.

        The access-log row and the audit row commit before the payload is returned; if they
        cannot be written the payload is not returned. A failed read is logged too.

        Parameters
        ----------
        record_id : int
            The record.
        actor : str
            Who reads it.
        purpose : str
            Why (a case reference, "regulator request 2026-17"): required.

        Returns
        -------
        bytes
            The payload, checked against its tag and checksum.

        Raises
        ------
        RecordInputError
            Bad input; nothing is written.
        RecordNotFound
            No such record (the attempt is logged).
        RecordIntegrityError
            The record failed a check; it names the record and the check (logged).
        """
        _check_record_id(record_id)
        _check_text("actor", actor)
        _check_text("purpose", purpose, purpose_chars_max)
        error: RecordNotFound | RecordIntegrityError | None = None
        plain = b""
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                cursor = await conn.execute(
                    "SELECT record_type, jurisdiction, subject, key_id, nonce, ciphertext,"
                    " plaintext_sha256 FROM compliance_records WHERE id = %s",
                    (record_id,),
                )
                row = await cursor.fetchone()
                outcome = AccessOutcome.ok
                detail: dict[str, Any] = {"purpose": purpose}
                if row is None:
                    error = RecordNotFound(record_id)
                    outcome = AccessOutcome.record_must_exist
                else:
                    record_type, jurisdiction, subject, key_id = row[:4]
                    detail |= {"record_type": record_type, "key_id": key_id}
                    try:
                        plain = self._decrypt(
                            record_id,
                            record_type,
                            jurisdiction,
                            subject,
                            key_id,
                            bytes(row[4]),
                            bytes(row[5]),
                            bytes(row[6]),
                        )
                    except RecordIntegrityError as exc:
                        error = exc
                        outcome = exc.outcome
                seq = await append_audit(
                    conn, actor, "record_read", _target(record_id), detail, str(outcome)
                )
                await conn.execute(
                    "INSERT INTO compliance_record_access"
                    " (record_id, actor, purpose, outcome, audit_seq)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (record_id, actor, purpose, str(outcome), seq),
                )
        if error is not None:
            raise error
        return plain

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.close()
