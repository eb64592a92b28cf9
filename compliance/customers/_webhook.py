"""The KYC vendor's webhook: ``POST /webhooks/kyc``, shaped like Sumsub's review callbacks.

The vendor signs the raw body with HMAC-SHA256 under a shared secret and sends the hex digest in
``X-Payload-Digest`` (``X-Payload-Digest-Alg: HMAC_SHA256_HEX``, as Sumsub does). Checks, in
this order (the first that fails answers, and nothing changes):

1. the body fits `webhook_body_bytes_max` (413);
2. a signature is present (401) and matches, compared in constant time (401);
3. the body is a JSON object of the expected shape (400);
4. ``createdAtMs`` is within `webhook_age_max_ms` of our clock (400);
5. the event type is one we act on (422);
6. the same body was not applied before (409): its SHA-256 is stored with the change, in one
   transaction, so a replay inside the age window is caught by the digest, one outside by age;
7. ``externalUserId`` names a customer (404);
8. the KYC transition table allows the move (409).

``applicantReviewed`` with ``reviewAnswer`` GREEN verifies the customer, RED rejects them;
``applicantPending`` (documents resubmitted, or re-verification started) makes them pending.
Every refusal answers JSON ``{"code": 22xx, "reason": "<name>", "message": "..."}``. The
secret comes from configuration, is never logged, and is hidden from ``repr``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import psycopg
from aiohttp import web

from compliance.customers._limits import webhook_age_max_ms, webhook_body_bytes_max
from compliance.customers._model import CustomerError, CustomerReason, KycStatus
from compliance.customers._store import CustomerStore

log = logging.getLogger("clearline.compliance.customers")

WEBHOOK_PATH = "/webhooks/kyc"
DIGEST_HEADER = "X-Payload-Digest"
DIGEST_ALG_HEADER = "X-Payload-Digest-Alg"
DIGEST_ALG = "HMAC_SHA256_HEX"
# The environment variable the webhook service reads its HMAC secret from (never argv).
WEBHOOK_SECRET_ENV = "CLEARLINE_KYC_WEBHOOK_SECRET"
# Who the audit log names for the vendor's changes.
VENDOR_ACTOR = "kyc_vendor"
# Our customer ids as the vendor echoes them: ASCII digits that fit a bigint.
_CUSTOMER_ID_RE = re.compile(r"[0-9]{1,18}")


class WebhookReason(enum.IntEnum):
    """Why a webhook call was refused; stable numbers (22xx), never renumbered."""

    body_must_not_exceed_limit = 2201
    signature_must_be_present = 2202
    signature_must_match = 2203
    payload_must_be_valid = 2204
    payload_must_be_recent = 2205
    event_type_must_be_supported = 2206
    payload_must_not_be_replayed = 2207
    customer_must_exist = 2208
    kyc_transition_must_be_allowed = 2209


_HTTP_STATUS = {
    WebhookReason.body_must_not_exceed_limit: 413,
    WebhookReason.signature_must_be_present: 401,
    WebhookReason.signature_must_match: 401,
    WebhookReason.payload_must_be_valid: 400,
    WebhookReason.payload_must_be_recent: 400,
    WebhookReason.event_type_must_be_supported: 422,
    WebhookReason.payload_must_not_be_replayed: 409,
    WebhookReason.customer_must_exist: 404,
    WebhookReason.kyc_transition_must_be_allowed: 409,
}


class ReviewResult(msgspec.Struct, frozen=True, kw_only=True):
    """The vendor's verdict (unknown fields ignored, as vendors add them)."""

    reviewAnswer: Literal["GREEN", "RED"]
    rejectLabels: list[str] = []
    reviewRejectType: str | None = None


class VendorEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a Sumsub-style callback we use.

    ``createdAtMs`` is Sumsub's ``"2020-02-21 13:23:19.321"`` (UTC) or epoch milliseconds.
    """

    type: str
    applicantId: str
    externalUserId: str
    createdAtMs: str | int
    reviewResult: ReviewResult | None = None


_event_decoder = msgspec.json.Decoder(VendorEvent)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """The webhook's settings.

    Attributes
    ----------
    secret : bytes
        The HMAC key shared with the vendor (from configuration; never logged or shown).
    age_max_ms : int
        How far ``createdAtMs`` may be from our clock.
    now_ms : callable
        Our clock, epoch milliseconds (tests pass a fixed one).
    """

    secret: bytes = field(repr=False)
    age_max_ms: int = webhook_age_max_ms
    now_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)


class _Refused(Exception):
    def __init__(self, reason: WebhookReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def signature_of(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of a body: what the vendor puts in ``X-Payload-Digest``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def created_at_ms(value: str | int) -> int:
    """Epoch milliseconds of a ``createdAtMs`` value.

    Raises
    ------
    ValueError
        If it is neither an integer nor a date-time text.
    """
    if isinstance(value, int):
        return value
    at = dt.datetime.fromisoformat(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)  # Sumsub's texts are UTC without an offset
    return (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def _target(event: VendorEvent) -> tuple[KycStatus, str]:
    if event.type == "applicantReviewed" and event.reviewResult is not None:
        answer = event.reviewResult.reviewAnswer
        if answer == "GREEN":
            return KycStatus.verified, "vendor review GREEN"
        labels = ",".join(event.reviewResult.rejectLabels) or "none"
        return KycStatus.rejected, f"vendor review RED, labels {labels}"
    if event.type == "applicantPending":
        return KycStatus.pending, "vendor: applicant pending review"
    raise _Refused(
        WebhookReason.event_type_must_be_supported,
        f"event type {event.type[:80]!r} is not acted on"
        " (applicantReviewed with a reviewResult, applicantPending)",
    )


async def _check(request: web.Request, config: WebhookConfig) -> tuple[bytes, VendorEvent]:
    if (request.content_length or 0) > webhook_body_bytes_max:
        raise _Refused(
            WebhookReason.body_must_not_exceed_limit, f"at most {webhook_body_bytes_max} bytes"
        )
    body = await request.content.read(webhook_body_bytes_max + 1)
    if len(body) > webhook_body_bytes_max:
        raise _Refused(
            WebhookReason.body_must_not_exceed_limit, f"at most {webhook_body_bytes_max} bytes"
        )
    signature = request.headers.get(DIGEST_HEADER)
    if not signature:
        raise _Refused(WebhookReason.signature_must_be_present, f"no {DIGEST_HEADER} header")
    alg = request.headers.get(DIGEST_ALG_HEADER, DIGEST_ALG)
    expected = signature_of(config.secret, body)
    # compare_digest on bytes: constant time whatever the (attacker-chosen) header holds.
    if alg != DIGEST_ALG or not hmac.compare_digest(
        expected.encode(), signature.strip().lower().encode()
    ):
        raise _Refused(
            WebhookReason.signature_must_match,
            f"{DIGEST_HEADER} is not the {DIGEST_ALG} of the body under the configured secret",
        )
    try:
        event = _event_decoder.decode(body)
        created_ms = created_at_ms(event.createdAtMs)
    except (msgspec.DecodeError, ValueError) as exc:
        raise _Refused(WebhookReason.payload_must_be_valid, str(exc)[:300]) from None
    age_ms = config.now_ms() - created_ms
    if abs(age_ms) > config.age_max_ms:
        raise _Refused(
            WebhookReason.payload_must_be_recent,
            f"createdAtMs is {age_ms} ms from our clock; at most {config.age_max_ms} either way",
        )
    return body, event


def make_webhook_app(store: CustomerStore, config: WebhookConfig) -> web.Application:
    """An aiohttp application serving ``POST /webhooks/kyc``.

    Parameters
    ----------
    store : CustomerStore
        Where KYC statuses change (and are audited and published).
    config : WebhookConfig
        The shared secret, the age window and the clock.

    Returns
    -------
    aiohttp.web.Application
        Mount it, or run it with ``aiohttp.web.run_app``.
    """

    async def handle(request: web.Request) -> web.Response:
        try:
            body, event = await _check(request, config)
            target, why = _target(event)
            digest = hashlib.sha256(body).digest()
            if await store.receipt_seen(digest):
                raise _Refused(
                    WebhookReason.payload_must_not_be_replayed, "this payload was applied before"
                )
            if not _CUSTOMER_ID_RE.fullmatch(event.externalUserId):
                raise _Refused(
                    WebhookReason.customer_must_exist,
                    f"externalUserId {event.externalUserId[:40]!r} is not a customer id",
                )
            customer_id = int(event.externalUserId)

            async def keep_receipt(conn: psycopg.AsyncConnection[Any], _: object) -> None:
                await conn.execute(
                    "INSERT INTO customers.webhook_receipts"
                    " (body_sha256, applicant_id, customer_id, created_at_ms)"
                    " VALUES (%s, %s, %s, %s)",
                    (digest, event.applicantId, customer_id, created_at_ms(event.createdAtMs)),
                )

            try:
                customer = await store.transition_kyc(
                    customer_id,
                    target,
                    VENDOR_ACTOR,
                    why,
                    applicant_id=event.applicantId,
                    extra=keep_receipt,
                )
            except psycopg.errors.UniqueViolation:
                # The same payload raced in twice: the other one committed.
                raise _Refused(
                    WebhookReason.payload_must_not_be_replayed, "this payload was applied before"
                ) from None
            except CustomerError as exc:
                reason = (
                    WebhookReason.customer_must_exist
                    if exc.reason is CustomerReason.customer_must_exist
                    else WebhookReason.kyc_transition_must_be_allowed
                )
                raise _Refused(reason, str(exc)) from None
        except _Refused as refused:
            log.warning("KYC webhook refused: %s", refused.reason.name)
            return web.json_response(
                {
                    "code": int(refused.reason),
                    "reason": refused.reason.name,
                    "message": str(refused),
                },
                status=_HTTP_STATUS[refused.reason],
            )
        return web.json_response(
            {"customer_id": customer.customer_id, "kyc_status": str(customer.kyc_status)}
        )

    app = web.Application(client_max_size=webhook_body_bytes_max)
    app.router.add_post(WEBHOOK_PATH, handle)
    return app
