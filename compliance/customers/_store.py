"""Customers in PostgreSQL: onboarding, KYC transitions, consents, flags, risk assessments.

Every change runs the same way (`CustomerStore._change`), under one lock per store:

1. lock the customer's row (SELECT ... FOR UPDATE) inside a transaction;
2. decide, with a pure function of the stored customer: the new customer, or a refusal
   (`CustomerError`: the transaction rolls back, nothing changes, the refusal is audited);
3. write the row (and any extra rows: an assessment, a consent, a webhook receipt);
4. record the audit row (who, what, why) while the transaction is still open, so a change whose
   audit row cannot be written rolls back: an action that cannot be recorded must not happen.
   The audit log is `gateway.auth.AuditLog`, on its own connection, so the two commits are not
   atomic: a crash between them leaves an audit row for a change that did not commit, never a
   change without its row;
5. commit, then publish the customer's `CustomerState` to the gateways' bucket if anything the
   gateways see changed (KYC verified, frozen, sanctioned, jurisdiction, risk level, account).

A publish that fails after the commit raises to the caller; the database stays the truth, and
`publish_state` sends it again (the gateways meanwhile fail closed once the old state is stale).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import psycopg

from compliance.customer_state import (
    CustomerState,
    customer_state_key,
    publish_customer_state,
)
from compliance.customers._limits import reason_chars_max
from compliance.customers._model import (
    Consent,
    Customer,
    CustomerError,
    CustomerReason,
    KycStatus,
    NewCustomer,
    checked,
    kyc_transition_allowed,
)
from compliance.customers._risk import Assessment, RiskConfig, assess, facts_of
from compliance.screening import (
    Party,
    ScreeningIndex,
    ScreeningResult,
    default_threshold,
    screen_party,
)
from engine.topology import Topology

# Name score from which a screening candidate sets the sanctioned flag (pending review). Not the
# screening's reporting threshold (70): at 70 common names hit, e.g. "Alice Marie Martin" scores
# 75 against the listed "ARTIN" on the shipped lists; weaker candidates are audited for review.
sanctions_flag_score_min = 90

_SCHEMA_LOCK_ID = 0x636C_6375_7374  # "clcust": serialises concurrent schema creation

_DDL = """
CREATE SCHEMA IF NOT EXISTS customers;
CREATE TABLE IF NOT EXISTS customers.customers (
    customer_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile           json NOT NULL,
    account_id        bigint UNIQUE,
    kyc_status        text NOT NULL
        CHECK (kyc_status IN ('pending', 'verified', 'rejected', 'expired')),
    frozen            boolean NOT NULL DEFAULT false,
    frozen_reason     text,
    sanctioned        boolean NOT NULL DEFAULT false,
    sanctioned_reason text,
    risk_level        text CHECK (risk_level IN ('low', 'medium', 'high')),
    next_review_on    date,
    applicant_id      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS customers_next_review_on ON customers.customers (next_review_on);
CREATE TABLE IF NOT EXISTS customers.consents (
    consent_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers.customers,
    purpose      text NOT NULL,
    granted      boolean NOT NULL,
    text_version text NOT NULL,
    at           timestamptz NOT NULL,
    actor        text NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_customer ON customers.consents (customer_id, consent_id);
CREATE TABLE IF NOT EXISTS customers.assessments (
    assessment_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    bigint NOT NULL REFERENCES customers.customers,
    assessed_on    date NOT NULL,
    config_version text NOT NULL,
    level          text NOT NULL,
    inputs         json NOT NULL,
    assessment     json NOT NULL,
    actor          text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS assessments_customer
    ON customers.assessments (customer_id, assessment_id);
-- Webhook payloads applied, by the SHA-256 of their raw body: the same payload twice is a
-- replay. Rows older than the webhook's age window may be deleted (their age refuses them).
CREATE TABLE IF NOT EXISTS customers.webhook_receipts (
    body_sha256   bytea PRIMARY KEY CHECK (octet_length(body_sha256) = 32),
    applicant_id  text NOT NULL,
    customer_id   bigint NOT NULL,
    created_at_ms bigint NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
-- What monitoring asked of a customer (enhanced monitoring, documented source of funds), open
-- until an officer closes it; one row per customer, kind and alert, so a redelivered alert
-- opens nothing new.
CREATE TABLE IF NOT EXISTS customers.requirements (
    requirement_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    bigint NOT NULL REFERENCES customers.customers,
    kind           text NOT NULL CHECK (kind IN ('enhanced_monitoring', 'source_of_funds')),
    alert_id       text NOT NULL,
    reason         text NOT NULL,
    opened_by      text NOT NULL,
    opened_at      timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    UNIQUE (customer_id, kind, alert_id)
);
"""


async def ensure_schema(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the ``customers`` schema and its tables if they do not exist.

    Safe to call from several processes at once and on every start. The audit log's table is
    `gateway.auth.ensure_schema`'s.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_ID,))
        await conn.execute(_DDL)


class AuditSink(Protocol):
    """Where changes are recorded: `gateway.auth.AuditLog` is the real one."""

    async def record(
        self, actor: str, action: str, target: str, detail: Mapping[str, Any], outcome: str
    ) -> int:
        """Record one action; raise if it cannot be recorded."""
        ...


class StatePublisher(Protocol):
    """Where a customer's new `CustomerState` goes (the gateways' bucket)."""

    async def publish(self, state: CustomerState) -> None:
        """Publish one state; raise if it could not be stored."""
        ...

    async def forget(self, account_id: int) -> None:
        """Remove an account's state (the gateways then refuse it: unknown fails closed)."""
        ...


@dataclass(frozen=True, slots=True)
class NatsStatePublisher:
    """Publishes to the JetStream bucket the gateways read (`publish_customer_state`)."""

    js: Any
    topology: Topology

    async def publish(self, state: CustomerState) -> None:
        """Put the state into the bucket (which `ensure_bucket` created)."""
        await publish_customer_state(self.js, self.topology, state)

    async def forget(self, account_id: int) -> None:
        """Delete the account's key; the gateways' caches drop it and refuse its orders."""
        kv = await self.js.key_value(self.topology.customer_state_bucket)
        await kv.delete(customer_state_key(account_id))


class StoredAssessment(msgspec.Struct, frozen=True, kw_only=True):
    """An assessment as stored: its id, inputs and who asked for it."""

    assessment_id: int
    customer_id: int
    actor: str
    inputs: dict[str, Any]
    assessment: Assessment


class ReviewDue(msgspec.Struct, frozen=True, kw_only=True):
    """A customer whose risk review is due (never assessed: ``next_review_on`` is None)."""

    customer_id: int
    next_review_on: dt.date | None
    risk_level: str | None


class RequirementKind(enum.StrEnum):
    """What monitoring may ask of a customer (its rules' actions of the same names)."""

    enhanced_monitoring = "enhanced_monitoring"
    source_of_funds = "source_of_funds"


class Requirement(msgspec.Struct, frozen=True, kw_only=True):
    """An open requirement on a customer, from the alert that asked for it."""

    requirement_id: int
    customer_id: int
    kind: RequirementKind
    alert_id: str
    reason: str
    opened_by: str
    opened_at: dt.datetime


def customer_state(customer: Customer, as_of_ns: int) -> CustomerState | None:
    """What the gateways should see of ``customer`` (None without a linked account).

    A customer not yet assessed is published as high risk: unknown risk must not pass as low.
    """
    if customer.profile.account_id is None:
        return None
    return CustomerState(
        account_id=customer.profile.account_id,
        kyc_verified=customer.kyc_status is KycStatus.verified,
        frozen=customer.frozen,
        sanctioned=customer.sanctioned,
        jurisdiction=customer.profile.residence_country,
        risk_level=customer.risk_level or "high",
        as_of_ns=as_of_ns,
        reason=_why(customer),
        changed_by="compliance.customers",
    )


def _why(customer: Customer) -> str:
    """The risk desk's one line: what blocks the customer, in the order the gateway checks."""
    parts = []
    if customer.kyc_status is not KycStatus.verified:
        parts.append(f"KYC {customer.kyc_status.value}")
    if customer.frozen:
        parts.append(f"frozen: {customer.frozen_reason}")
    if customer.sanctioned:
        parts.append(f"sanctioned: {customer.sanctioned_reason}")
    return "; ".join(parts) or "KYC verified, no restriction"


def _visible(state: CustomerState | None) -> object:
    """The part of a state whose change must be published (all of it but the timestamp)."""
    return None if state is None else msgspec.structs.replace(state, as_of_ns=0)


def _check_actor(actor: str) -> None:
    if not isinstance(actor, str) or not actor.strip():
        raise CustomerError(CustomerReason.actor_must_be_named, "a change needs an actor")


def _check_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > reason_chars_max:
        raise CustomerError(
            CustomerReason.reason_must_be_given,
            f"a change needs a reason of 1..{reason_chars_max} characters",
        )


_COLUMNS = (
    "customer_id, profile::text, kyc_status, frozen, frozen_reason, sanctioned,"
    " sanctioned_reason, risk_level, next_review_on, applicant_id"
)
_profile_decoder = msgspec.json.Decoder(NewCustomer)
_assessment_decoder = msgspec.json.Decoder(Assessment)
_encoder = msgspec.json.Encoder()


def _customer_of(row: tuple[Any, ...]) -> Customer:
    return Customer(
        customer_id=row[0],
        profile=_profile_decoder.decode(row[1]),
        kyc_status=KycStatus(row[2]),
        frozen=row[3],
        frozen_reason=row[4],
        sanctioned=row[5],
        sanctioned_reason=row[6],
        risk_level=row[7],
        next_review_on=row[8],
        applicant_id=row[9],
    )


# A decision: the stored customer in, the new customer and the audit detail out (or a raise).
Decide = Callable[[Customer], tuple[Customer, dict[str, Any]]]
# Extra writes inside the change's transaction, after the customer row.
Extra = Callable[[psycopg.AsyncConnection[Any], Customer], Awaitable[None]]


class CustomerStore:
    """Customers, consents and assessments in PostgreSQL; publishes state to the gateways.

    One connection, one operation at a time (a lock), like `gateway.auth.AuditLog`: customer
    changes are rare next to orders. Open with `CustomerStore.open`; close with `close`.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        audit: AuditSink,
        publisher: StatePublisher | None,
        now_ns: Callable[[], int],
    ) -> None:
        self._conn = conn
        self._audit = audit
        self._publisher = publisher
        self._now_ns = now_ns
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        database_url: str,
        audit: AuditSink,
        publisher: StatePublisher | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> CustomerStore:
        """Connect and create the schema if needed.

        Parameters
        ----------
        database_url : str
            PostgreSQL URL.
        audit : AuditSink
            Where every change is recorded (`gateway.auth.AuditLog`).
        publisher : StatePublisher or None
            Where state changes go (`NatsStatePublisher`); None publishes nothing.
        now_ns : callable
            The clock for `CustomerState.as_of_ns`.
        """
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await ensure_schema(conn)
        return cls(conn, audit, publisher, now_ns)

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.close()

    # -- QUERIES --

    async def get(self, customer_id: int) -> Customer:
        """One customer. O(1).

        Raises
        ------
        CustomerError
            ``customer_must_exist``.
        """
        async with self._lock:
            return await self._fetch(customer_id, lock=False)

    async def by_account(self, account_id: int) -> Customer | None:
        """The customer a trading account belongs to, or None. O(1) (the account is unique)."""
        async with self._lock:
            cursor = await self._conn.execute(
                f"SELECT {_COLUMNS} FROM customers.customers WHERE account_id = %s",
                (account_id,),
            )
            row = await cursor.fetchone()
        return None if row is None else _customer_of(row)

    async def consents(self, customer_id: int) -> list[Consent]:
        """Every consent event of a customer, oldest first (the latest per purpose is current)."""
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT purpose, granted, text_version, at FROM customers.consents"
                " WHERE customer_id = %s ORDER BY consent_id",
                (customer_id,),
            )
            rows = await cursor.fetchall()
        return [
            msgspec.convert(
                {"purpose": r[0], "granted": r[1], "text_version": r[2], "at": r[3]}, Consent
            )
            for r in rows
        ]

    async def assessments(self, customer_id: int) -> list[StoredAssessment]:
        """Every stored assessment of a customer, oldest first."""
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT assessment_id, customer_id, actor, inputs::text, assessment::text"
                " FROM customers.assessments WHERE customer_id = %s ORDER BY assessment_id",
                (customer_id,),
            )
            rows = await cursor.fetchall()
        return [
            StoredAssessment(
                assessment_id=r[0],
                customer_id=r[1],
                actor=r[2],
                inputs=msgspec.json.decode(r[3]),
                assessment=_assessment_decoder.decode(r[4]),
            )
            for r in rows
        ]

    async def reviews_due(self, on: dt.date) -> list[ReviewDue]:
        """Customers whose review is due on or before ``on``, never-assessed ones first.

        O(due customers) through the index on ``next_review_on``.
        """
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT customer_id, next_review_on, risk_level FROM customers.customers"
                " WHERE next_review_on IS NULL OR next_review_on <= %s"
                " ORDER BY next_review_on NULLS FIRST, customer_id",
                (on,),
            )
            rows = await cursor.fetchall()
        return [ReviewDue(customer_id=r[0], next_review_on=r[1], risk_level=r[2]) for r in rows]

    async def kyc_pending(self, limit: int) -> list[Customer]:
        """Customers whose KYC is pending (waiting for the vendor or an officer), oldest first."""
        async with self._lock:
            cursor = await self._conn.execute(
                f"SELECT {_COLUMNS} FROM customers.customers WHERE kyc_status = 'pending'"
                " ORDER BY customer_id LIMIT %s",
                (limit,),
            )
            rows = await cursor.fetchall()
        return [_customer_of(row) for row in rows]

    async def receipt_seen(self, body_sha256: bytes) -> bool:
        """Whether a webhook body with this SHA-256 was already applied. O(1)."""
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT 1 FROM customers.webhook_receipts WHERE body_sha256 = %s", (body_sha256,)
            )
            return await cursor.fetchone() is not None

    # -- COMMANDS --

    async def prune_webhook_receipts(self, now_ms: int, age_max_ms: int) -> int:
        """Forget webhook receipts too old to matter; return how many were deleted.

        A body created more than ``age_max_ms`` before ``now_ms`` is refused by its age
        whatever the receipts say, so its receipt is no longer needed. O(receipts deleted).
        """
        async with self._lock, self._conn.transaction():
            cursor = await self._conn.execute(
                "DELETE FROM customers.webhook_receipts WHERE created_at_ms < %s",
                (now_ms - age_max_ms,),
            )
            return cursor.rowcount

    async def create(
        self,
        new: NewCustomer,
        actor: str,
        reason: str,
        *,
        screening: ScreeningIndex | None = None,
    ) -> Customer:
        """Onboard a customer, KYC pending; screen their name when ``screening`` is given.

        With ``screening``, a candidate scoring `sanctions_flag_score_min` or more marks the new
        customer sanctioned (see `screen`); the customer returned is the screened one.

        Raises
        ------
        CustomerError
            ``customer_must_be_valid``, ``reason_must_be_given``, or
            ``account_must_not_belong_to_another_customer``: nothing stored.
        """
        profile = checked(new)
        _check_actor(actor)
        _check_reason(reason)
        async with self._lock:
            try:
                async with self._conn.transaction():
                    cursor = await self._conn.execute(
                        "INSERT INTO customers.customers (profile, account_id, kyc_status)"
                        f" VALUES (%s, %s, 'pending') RETURNING {_COLUMNS}",
                        (_encoder.encode(profile).decode(), profile.account_id),
                    )
                    row = await cursor.fetchone()
                    assert row is not None
                    customer = _customer_of(row)
                    await self._audit.record(
                        actor,
                        "create_customer",
                        f"customer:{customer.customer_id}",
                        {"reason": reason, "profile": msgspec.to_builtins(profile)},
                        "ok",
                    )
            except psycopg.errors.UniqueViolation:
                raise CustomerError(
                    CustomerReason.account_must_not_belong_to_another_customer,
                    f"account {profile.account_id} is linked to another customer",
                ) from None
            await self._publish(None, customer)
        if screening is not None:
            # After the insert's commit, not inside it: screening takes CPU time, and a new
            # customer is KYC pending, so the gateways refuse their orders in the meantime.
            await self.screen(customer.customer_id, screening, actor)
            customer = await self.get(customer.customer_id)
        return customer

    async def screen(
        self,
        customer_id: int,
        index: ScreeningIndex,
        actor: str,
        flag_score_min: int = sanctions_flag_score_min,
    ) -> ScreeningResult:
        """Screen a customer's name against the active lists; flag a strong hit.

        Every screening is audited with the list version and the candidates (at the
        screening's reporting threshold); a candidate at ``flag_score_min`` or more marks the
        customer sanctioned (`mark_sanctioned`), so the gateways refuse their orders until an
        officer clears a false positive (`clear_sanctioned`).

        Returns
        -------
        compliance.screening.ScreeningResult
            The evidence, reproducible from (name, list version).
        """
        _check_actor(actor)
        customer = await self.get(customer_id)
        party = Party(names=(customer.profile.display_name,))
        result = screen_party(party, index, default_threshold)
        strong = [c for c in result.candidates if c.score >= flag_score_min]
        await self._audit.record(
            actor,
            "screen_customer",
            f"customer:{customer_id}",
            {
                "list_version_id": result.list_version_id,
                "candidates": [
                    {"entry_id": c.entry_id, "source": c.source, "score": c.score}
                    for c in result.candidates
                ],
            },
            "hit" if strong else "clear",
        )
        if strong and not customer.sanctioned:
            best = strong[0]
            await self.mark_sanctioned(
                customer_id,
                actor,
                f"screening hit {best.source} {best.entry_id} {best.primary_name[:100]!r}"
                f" score {best.score} (lists {result.list_version_id})",
            )
        return result

    async def rescreen_all(
        self, index: ScreeningIndex, actor: str
    ) -> list[tuple[Customer, ScreeningResult]]:
        """Screen every customer against a new list version (`screen` each: audited, strong
        hits flagged); returns the customers this newly flagged, with their evidence.

        O(customers x one screening).
        """
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT customer_id FROM customers.customers ORDER BY customer_id"
            )
            ids = [row[0] for row in await cursor.fetchall()]
        flagged = []
        for customer_id in ids:
            before = await self.get(customer_id)
            result = await self.screen(customer_id, index, actor)
            after = await self.get(customer_id)
            if after.sanctioned and not before.sanctioned:
                flagged.append((after, result))
        return flagged

    async def update_profile(
        self, customer_id: int, profile: NewCustomer, actor: str, reason: str
    ) -> Customer:
        """Replace a customer's onboarding facts (new residence, volume, PEP status, account).

        The risk level stays until the next `assess`; call it after a material change.

        Raises
        ------
        CustomerError
            As `create`, or ``customer_must_exist``: nothing changed.
        """
        new_profile = checked(profile)

        def decide(customer: Customer) -> tuple[Customer, dict[str, Any]]:
            return msgspec.structs.replace(customer, profile=new_profile), {
                "before": msgspec.to_builtins(customer.profile),
                "after": msgspec.to_builtins(new_profile),
            }

        try:
            return await self._change(customer_id, actor, "update_customer", reason, decide)
        except psycopg.errors.UniqueViolation:
            raise CustomerError(
                CustomerReason.account_must_not_belong_to_another_customer,
                f"account {new_profile.account_id} is linked to another customer",
            ) from None

    async def transition_kyc(
        self,
        customer_id: int,
        target: KycStatus,
        actor: str,
        reason: str,
        *,
        applicant_id: str | None = None,
        extra: Extra | None = None,
    ) -> Customer:
        """Move a customer's KYC status along the transition table (`KYC_TRANSITIONS`).

        Parameters
        ----------
        customer_id : int
            Whose status.
        target : KycStatus
            The new status.
        actor, reason : str
            Who asks, and why (the vendor's answer, an officer's note).
        applicant_id : str or None
            The KYC vendor's applicant id, remembered when given.
        extra : callable or None
            More writes in the same transaction (the webhook's receipt).

        Raises
        ------
        CustomerError
            ``kyc_transition_must_be_allowed`` (an illegal move: nothing changes),
            ``customer_must_exist``, ``reason_must_be_given``.
        """

        def decide(customer: Customer) -> tuple[Customer, dict[str, Any]]:
            if not kyc_transition_allowed(customer.kyc_status, target):
                raise CustomerError(
                    CustomerReason.kyc_transition_must_be_allowed,
                    f"KYC status {customer.kyc_status} cannot become {target}",
                )
            updated = msgspec.structs.replace(
                customer, kyc_status=target, applicant_id=applicant_id or customer.applicant_id
            )
            return updated, {"from": customer.kyc_status, "to": target}

        return await self._change(
            customer_id, actor, f"kyc_{target}", reason, decide, extra=extra
        )

    async def freeze(self, customer_id: int, actor: str, reason: str) -> Customer:
        """Freeze a customer: the gateways refuse their next order on. Idempotent."""
        return await self._flag(customer_id, actor, reason, "frozen", True)

    async def unfreeze(self, customer_id: int, actor: str, reason: str) -> Customer:
        """Lift a freeze. Idempotent."""
        return await self._flag(customer_id, actor, reason, "frozen", False)

    async def mark_sanctioned(self, customer_id: int, actor: str, reason: str) -> Customer:
        """Mark a customer sanctioned (a confirmed or pending screening hit). Idempotent."""
        return await self._flag(customer_id, actor, reason, "sanctioned", True)

    async def clear_sanctioned(self, customer_id: int, actor: str, reason: str) -> Customer:
        """Clear the sanctioned flag (a hit discounted as a false positive). Idempotent."""
        return await self._flag(customer_id, actor, reason, "sanctioned", False)

    async def record_consent(self, customer_id: int, consent: Consent, actor: str) -> None:
        """Append a consent event (granted or withdrawn).

        Raises
        ------
        CustomerError
            ``consent_must_be_valid`` (an unknown purpose, an empty version, a naive time), or
            ``customer_must_exist``: nothing stored.
        """
        try:
            consent = msgspec.convert(msgspec.to_builtins(consent), Consent)
        except (msgspec.ValidationError, TypeError, ValueError) as exc:
            raise CustomerError(CustomerReason.consent_must_be_valid, str(exc)) from None
        if consent.at.tzinfo is None:
            raise CustomerError(CustomerReason.consent_must_be_valid, "at must be timezone-aware")

        def decide(customer: Customer) -> tuple[Customer, dict[str, Any]]:
            return customer, msgspec.to_builtins(consent)

        async def write(conn: psycopg.AsyncConnection[Any], customer: Customer) -> None:
            await conn.execute(
                "INSERT INTO customers.consents"
                " (customer_id, purpose, granted, text_version, at, actor)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    customer.customer_id,
                    str(consent.purpose),
                    consent.granted,
                    consent.text_version,
                    consent.at,
                    actor,
                ),
            )

        action = "grant_consent" if consent.granted else "withdraw_consent"
        await self._change(customer_id, actor, action, str(consent.purpose), decide, extra=write)

    async def open_requirement(
        self, customer_id: int, kind: RequirementKind, alert_id: str, actor: str, reason: str
    ) -> None:
        """Ask more of a customer because of an alert: enhanced monitoring, or documented
        source of funds. Idempotent per (customer, kind, alert); audited.

        Raises
        ------
        CustomerError
            ``customer_must_exist``, ``reason_must_be_given``, ``actor_must_be_named``.
        """
        kind = RequirementKind(kind)

        def decide(customer: Customer) -> tuple[Customer, dict[str, Any]]:
            return customer, {"kind": kind.value, "alert_id": alert_id}

        async def write(conn: psycopg.AsyncConnection[Any], customer: Customer) -> None:
            await conn.execute(
                "INSERT INTO customers.requirements"
                " (customer_id, kind, alert_id, reason, opened_by) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (customer_id, kind, alert_id) DO NOTHING",
                (customer.customer_id, kind.value, alert_id, reason, actor),
            )

        await self._change(
            customer_id, actor, f"require_{kind.value}", reason, decide, extra=write
        )

    async def close_requirement(self, requirement_id: int, actor: str, reason: str) -> None:
        """Close an open requirement (the review was done, the documents came); audited.

        Raises
        ------
        CustomerError
            ``requirement_must_be_open`` (unknown or closed already), ``reason_must_be_given``,
            ``actor_must_be_named``: nothing changes.
        """
        _check_actor(actor)
        _check_reason(reason)
        async with self._lock, self._conn.transaction():
            cursor = await self._conn.execute(
                "UPDATE customers.requirements SET closed_at = now()"
                " WHERE requirement_id = %s AND closed_at IS NULL"
                " RETURNING customer_id, kind, alert_id",
                (requirement_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                raise CustomerError(
                    CustomerReason.requirement_must_be_open,
                    f"no open requirement {requirement_id}",
                )
            await self._audit.record(
                actor,
                f"close_{row[1]}",
                f"customer:{row[0]}",
                {"requirement_id": requirement_id, "alert_id": row[2], "reason": reason},
                "ok",
            )

    async def open_requirements(self, limit: int) -> list[Requirement]:
        """Requirements not yet closed, oldest first."""
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT requirement_id, customer_id, kind, alert_id, reason, opened_by, opened_at"
                " FROM customers.requirements WHERE closed_at IS NULL"
                " ORDER BY requirement_id LIMIT %s",
                (limit,),
            )
            rows = await cursor.fetchall()
        return [
            Requirement(
                requirement_id=r[0], customer_id=r[1], kind=RequirementKind(r[2]),
                alert_id=r[3], reason=r[4], opened_by=r[5], opened_at=r[6],
            )
            for r in rows
        ]

    async def assess(
        self, customer_id: int, config: RiskConfig, assessed_on: dt.date, actor: str
    ) -> Assessment:
        """Assess a customer's risk now and store the assessment with its inputs.

        The customer's risk level and next review date become the assessment's; a level change
        is published.
        """
        result: list[Assessment] = []

        def decide(customer: Customer) -> tuple[Customer, dict[str, Any]]:
            assessment = assess(facts_of(customer), config, assessed_on)
            result.append(assessment)
            updated = msgspec.structs.replace(
                customer, risk_level=assessment.level, next_review_on=assessment.next_review_on
            )
            return updated, {
                "config_version": config.version,
                "level": assessment.level,
                "weighted_total_bp": assessment.weighted_total_bp,
                "forced_high_by": assessment.forced_high_by,
            }

        async def write(conn: psycopg.AsyncConnection[Any], customer: Customer) -> None:
            assessment = result[-1]
            await conn.execute(
                "INSERT INTO customers.assessments"
                " (customer_id, assessed_on, config_version, level, inputs, assessment, actor)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    customer.customer_id,
                    assessment.assessed_on,
                    assessment.config_version,
                    assessment.level,
                    _encoder.encode(facts_of(customer)).decode(),
                    _encoder.encode(assessment).decode(),
                    actor,
                ),
            )

        await self._change(
            customer_id, actor, "assess_risk", f"config {config.version}", decide, extra=write
        )
        return result[-1]

    async def publish_state(self, customer_id: int) -> CustomerState | None:
        """Publish a customer's current state again (after a failed publish, or to refresh it)."""
        async with self._lock:
            customer = await self._fetch(customer_id, lock=False)
            state = customer_state(customer, self._now_ns())
            if state is not None and self._publisher is not None:
                await self._publisher.publish(state)
            return state

    async def publish_all(self) -> int:
        """Publish every customer with an account again; return how many were published.

        The gateways refuse orders against a state older than their age limit (a day), so a
        scheduler calls this at least daily to reconfirm everyone. O(customers).
        """
        async with self._lock:
            cursor = await self._conn.execute(
                f"SELECT {_COLUMNS} FROM customers.customers WHERE account_id IS NOT NULL"
                " ORDER BY customer_id"
            )
            rows = await cursor.fetchall()
            published = 0
            for row in rows:
                state = customer_state(_customer_of(row), self._now_ns())
                if state is not None and self._publisher is not None:
                    await self._publisher.publish(state)
                    published += 1
            return published

    # -- INTERNALS --

    async def _fetch(self, customer_id: int, *, lock: bool) -> Customer:
        cursor = await self._conn.execute(
            f"SELECT {_COLUMNS} FROM customers.customers WHERE customer_id = %s"
            + (" FOR UPDATE" if lock else ""),
            (customer_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise CustomerError(
                CustomerReason.customer_must_exist, f"no customer {customer_id}"
            )
        return _customer_of(row)

    async def _flag(
        self, customer_id: int, actor: str, reason: str, flag: str, value: bool
    ) -> Customer:
        def decide(customer: Customer) -> tuple[Customer, dict[str, Any]]:
            changes: dict[str, Any] = {flag: value}
            if value:
                changes[f"{flag}_reason"] = reason
            before = getattr(customer, flag)
            return msgspec.structs.replace(customer, **changes), {"before": before}

        action = {
            ("frozen", True): "freeze_customer",
            ("frozen", False): "unfreeze_customer",
            ("sanctioned", True): "mark_sanctioned",
            ("sanctioned", False): "clear_sanctioned",
        }[flag, value]
        return await self._change(customer_id, actor, action, reason, decide)

    async def _change(
        self,
        customer_id: int,
        actor: str,
        action: str,
        reason: str,
        decide: Decide,
        *,
        extra: Extra | None = None,
    ) -> Customer:
        _check_actor(actor)
        _check_reason(reason)
        target = f"customer:{customer_id}"
        async with self._lock:
            try:
                async with self._conn.transaction():
                    before = await self._fetch(customer_id, lock=True)
                    after, detail = decide(before)
                    await self._write(after)
                    if extra is not None:
                        await extra(self._conn, after)
                    await self._audit.record(
                        actor, action, target, {"reason": reason, **detail}, "ok"
                    )
            except CustomerError as exc:
                if exc.reason is not CustomerReason.customer_must_exist:
                    await self._audit.record(
                        actor, action, target, {"reason": reason}, exc.reason.name
                    )
                raise
            await self._publish(before, after)
        return after

    async def _write(self, customer: Customer) -> None:
        await self._conn.execute(
            "UPDATE customers.customers SET profile = %s, account_id = %s, kyc_status = %s,"
            " frozen = %s, frozen_reason = %s, sanctioned = %s, sanctioned_reason = %s,"
            " risk_level = %s, next_review_on = %s, applicant_id = %s, updated_at = now()"
            " WHERE customer_id = %s",
            (
                _encoder.encode(customer.profile).decode(),
                customer.profile.account_id,
                str(customer.kyc_status),
                customer.frozen,
                customer.frozen_reason,
                customer.sanctioned,
                customer.sanctioned_reason,
                customer.risk_level,
                customer.next_review_on,
                customer.applicant_id,
                customer.customer_id,
            ),
        )

    async def _publish(self, before: Customer | None, after: Customer) -> None:
        if self._publisher is None:
            return
        now_ns = self._now_ns()
        new = customer_state(after, now_ns)
        old = None if before is None else customer_state(before, now_ns)
        if old is not None and (new is None or new.account_id != old.account_id):
            # The old account no longer belongs to this customer: its state must not linger
            # (a verified, unfrozen state left behind would let the old account trade).
            await self._publisher.forget(old.account_id)
        if new is None or _visible(new) == _visible(old):
            return
        await self._publisher.publish(new)
