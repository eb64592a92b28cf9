"""API keys, roles and the audit log: who is calling, what they may do, and what they did.

An API key reads ``clk_<key_id>_<secret>``: ``key_id`` is 12 hex characters, public, and names
the key in logs, metrics and the audit log; ``secret`` is 32 random bytes in URL-safe base64 and
is shown once, when the key is created. PostgreSQL keeps only SHA-256 of the secret. Gateways
hold every live key in memory (`KeyStore`), so authenticating a call costs one hash and no
database round trip.

`AuditLog` writes the system's one audit log, ``audit_log``: append-only (a database trigger
refuses UPDATE, DELETE and TRUNCATE) and hash-chained; `compliance.records` owns its table,
its chain (`compliance.records.append_audit`) and its check (`compliance.records.verify_chain`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import psycopg

from compliance.records import append_audit, ensure_audit_schema
from engine._codes import Role

log = logging.getLogger(__name__)

# -- ROLES that each kind of call admits --

TRADING_ROLES = frozenset({Role.TRADER, Role.MARKET_MAKER})
CONTROL_ROLES = frozenset({Role.RISK_OFFICER, Role.ADMIN})
# May read any account, not only the key's own.
ACCOUNT_READ_ANY_ROLES = frozenset({Role.RISK_OFFICER, Role.COMPLIANCE_OFFICER, Role.ADMIN})
ALL_ROLES = frozenset(Role)

_TOKEN_PREFIX = "clk_"
_KEY_ID_BYTES = 6  # 12 hex characters: 2^48 ids, a collision is a (retryable) insert error
_SECRET_BYTES = 32  # 256 bits: guessing is hopeless, so a fast hash is enough (see _digest)
_KEY_ID_RE = re.compile(r"[0-9a-f]{12}")
# Longest token accepted: clk_ + 12 + _ + 43 base64 characters is 60; anything much longer is
# not ours, and we refuse it before hashing it.
_TOKEN_CHARS_MAX = 128
_BEARER = "bearer "

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id        text PRIMARY KEY,
    secret_sha256 bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
    account_id    bigint NOT NULL,
    role          smallint NOT NULL,
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
"""
# The audit_log table (and its append-only trigger) is `compliance.records.AUDIT_LOG_DDL`,
# created by `ensure_audit_schema` in the same transaction: one audit log for the whole system.
# Any constant shared by every process that creates the schema: CREATE ... IF NOT EXISTS is not
# safe against a concurrent twin (both may try to create the row type), the lock serialises them.
_SCHEMA_LOCK_ID = 0x636C_6175_7468  # "clauth"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an authenticated call acts as.

    Attributes
    ----------
    key_id : str
        The API key's public id (12 hex characters).
    account_id : int
        The account the key trades for.
    role : Role
        What the key may do.
    """

    key_id: str
    account_id: int
    role: Role


def _digest(secret: str) -> bytes:
    # One SHA-256, not a slow password hash: the secret has 256 bits of entropy from `secrets`,
    # so a stolen table cannot be brute-forced either way, and a slow hash would cost every call.
    return hashlib.sha256(secret.encode()).digest()


def _split(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed token, else None."""
    if len(token) > _TOKEN_CHARS_MAX or not token.startswith(_TOKEN_PREFIX):
        return None
    # The secret's base64 alphabet includes "_", so split off the key id only.
    key_id, _, secret = token[len(_TOKEN_PREFIX) :].partition("_")
    if not _KEY_ID_RE.fullmatch(key_id) or not secret:
        return None
    return key_id, secret


async def ensure_schema(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the ``api_keys`` and ``audit_log`` tables if they do not exist.

    Safe to call from several processes at once, and again on every start.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_ID,))
        await conn.execute(_SCHEMA)
        await ensure_audit_schema(conn)


async def create_api_key(
    conn: psycopg.AsyncConnection[Any], account_id: int, role: Role, label: str | None
) -> str:
    """Create an API key and return it; this is the only time the secret is visible.

    Parameters
    ----------
    conn : psycopg.AsyncConnection
        Where the key is stored (`ensure_schema` first). Committed here unless the caller has a
        transaction open, in which case the key commits with it.
    account_id : int
        The account the key acts for.
    role : Role
        What the key may do.
    label : str or None
        A human note ("alice's algo, prod").

    Returns
    -------
    str
        ``clk_<key_id>_<secret>``. Gateways accept it after their next `KeyStore.refresh`.
    """
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO api_keys (key_id, secret_sha256, account_id, role, label)"
            " VALUES (%s, %s, %s, %s, %s)",
            (key_id, _digest(secret), account_id, int(role), label),
        )
    log.info("created API key %s for account %d as %s", key_id, account_id, role.name)
    return f"{_TOKEN_PREFIX}{key_id}_{secret}"


async def revoke_api_key(conn: psycopg.AsyncConnection[Any], key_id: str) -> bool:
    """Revoke a key; return False if it was unknown or already revoked.

    Gateways refuse it after their next `KeyStore.refresh`.
    """
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL",
            (key_id,),
        )
    revoked = cursor.rowcount == 1
    if revoked:
        log.info("revoked API key %s", key_id)
    return revoked


@dataclass(frozen=True, slots=True)
class _Key:
    secret_sha256: bytes
    identity: Identity


# Compared against when the key id is unknown, so that an unknown and a known key cost the same.
_NO_DIGEST = bytes(32)


class KeyStore:
    """Every live (not revoked) API key, in memory; authenticates tokens without I/O.

    Build with `KeyStore.load`; call `refresh` periodically to pick up new and revoked keys.
    """

    def __init__(self, database_url: str, keys: Mapping[str, _Key]) -> None:
        self._database_url = database_url
        self._keys = keys

    @classmethod
    async def load(cls, database_url: str) -> KeyStore:
        """Read every live key from PostgreSQL (the tables must exist: `ensure_schema`)."""
        store = cls(database_url, {})
        await store.refresh()
        return store

    async def refresh(self) -> None:
        """Re-read the live keys; replaces the whole set at once. O(number of keys)."""
        async with await psycopg.AsyncConnection.connect(self._database_url) as conn:
            cursor = await conn.execute(
                "SELECT key_id, secret_sha256, account_id, role FROM api_keys"
                " WHERE revoked_at IS NULL"
            )
            rows = await cursor.fetchall()
        self._keys = {
            key_id: _Key(bytes(digest), Identity(key_id, account_id, Role(role)))
            for key_id, digest, account_id, role in rows
        }
        log.info("loaded %d live API keys", len(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, token: str) -> Identity | None:
        """The identity of a valid token; None if malformed, unknown, revoked or wrong.

        The secret is compared in constant time (`hmac.compare_digest`). O(1).
        """
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        key = self._keys.get(key_id)
        # The key id is public, so the dict lookup may leak whether it exists; the secret's
        # comparison leaks nothing.
        expected = _NO_DIGEST if key is None else key.secret_sha256
        if not hmac.compare_digest(_digest(secret), expected) or key is None:
            return None
        return key.identity


def _token_of(metadata: Collection[tuple[str, str | bytes]]) -> str | None:
    for name, value in metadata:
        if not isinstance(value, str):
            continue
        if name == "authorization":
            if value[: len(_BEARER)].lower() == _BEARER:  # the scheme is case-insensitive
                return value[len(_BEARER) :].strip()
            return ""  # present but not a bearer token: malformed, never "missing"
        if name == "x-api-key":
            return value.strip()
    return None


def _public_name(token: str) -> str:
    """How an abort message names a token: its key id if well formed, never any secret."""
    parts = _split(token)
    return f"API key {parts[0]}" if parts else "the API key (malformed)"


async def _abort(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str
) -> NoReturn:
    await context.abort(code, details)
    raise AssertionError("unreachable: ServicerContext.abort raises")


async def authorize(
    context: grpc.aio.ServicerContext, keystore: KeyStore, roles: Collection[Role]
) -> Identity:
    """Authenticate a gRPC call and check its role; abort the call if either fails.

    Parameters
    ----------
    context : grpc.aio.ServicerContext
        The call's context; the key comes from metadata ``authorization: Bearer clk_...`` or
        ``x-api-key: clk_...``.
    keystore : KeyStore
        The live keys.
    roles : collection of Role
        The roles this call admits (e.g. `TRADING_ROLES`).

    Returns
    -------
    Identity
        Who the call acts as.

    Raises
    ------
    grpc.aio.AbortError
        Through ``context.abort``: UNAUTHENTICATED (no key, malformed, unknown, revoked or wrong
        secret) or PERMISSION_DENIED (the key's role is not in ``roles``).
    """
    token = _token_of(context.invocation_metadata() or ())
    if token is None:
        await _abort(
            context,
            grpc.StatusCode.UNAUTHENTICATED,
            "no API key: send metadata 'authorization: Bearer clk_...' or 'x-api-key: clk_...'",
        )
    identity = keystore.authenticate(token)
    if identity is None:
        name = _public_name(token)
        log.warning("refused %s from %s", name, context.peer())
        await _abort(
            context,
            grpc.StatusCode.UNAUTHENTICATED,
            f"{name} is not valid: malformed, unknown, revoked or wrong secret",
        )
    if identity.role not in roles:
        needed = ", ".join(sorted(Role(role).name for role in roles))
        await _abort(
            context,
            grpc.StatusCode.PERMISSION_DENIED,
            f"API key {identity.key_id} has role {identity.role.name};"
            f" this call needs one of: {needed}",
        )
    return identity


class AuditLog:
    """Append-only record of who did what: control actions, key changes, compliance decisions.

    Writes the hash-chained ``audit_log`` through `compliance.records.append_audit`, one row per
    transaction. One connection, one append at a time (a lock): each `record` is durable when it
    returns. psycopg_pool is not a dependency, and audit writes are rare next to orders.
    Open with `AuditLog.open`; close with `close`.
    """

    def __init__(self, database_url: str, conn: psycopg.AsyncConnection[Any]) -> None:
        self._database_url = database_url
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, database_url: str) -> AuditLog:
        """Connect to PostgreSQL (the table must exist: `ensure_schema`)."""
        return cls(
            database_url, await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        )

    async def record(
        self,
        actor: str,
        action: str,
        target: str | None,
        detail: Mapping[str, Any],
        outcome: str,
    ) -> int:
        """Append one row to the chain and return its seq (the ``id`` column) once committed.

        Parameters
        ----------
        actor : str
            Who acted: an API key id, or a service name for automatic actions.
        action : str
            What they did, a stable verb phrase (``"halt_instrument"``).
        target : str or None
            What it was done to (``"instrument:BTC-EUR"``, ``"account:42"``).
        detail : mapping
            Anything else worth keeping, JSON-encodable (msgspec rules: enums become values).
            Never a secret.
        outcome : str
            How it ended (``"ok"``, ``"rejected"``, a reason name).

        Raises
        ------
        compliance.records.AuditEntryError
            Bad input (an empty or over-long name, a detail that is not JSON): nothing written.
        psycopg.Error
            If the row could not be written: the caller should then refuse the action, since an
            action that cannot be recorded must not happen. A broken connection is replaced on the
            next call; the failed insert is not retried here, to never write a row twice.
        """
        async with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True
                )
            async with self._conn.transaction():
                return await append_audit(self._conn, actor, action, target, detail, outcome)

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.close()


__all__ = [
    "ACCOUNT_READ_ANY_ROLES",
    "ALL_ROLES",
    "CONTROL_ROLES",
    "TRADING_ROLES",
    "AuditLog",
    "Identity",
    "KeyStore",
    "authorize",
    "create_api_key",
    "ensure_schema",
    "revoke_api_key",
]
