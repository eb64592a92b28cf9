"""The KYC vendor webhook (compliance.customers.make_webhook_app) over real HTTP and PostgreSQL.

Goal: a correctly signed, fresh Sumsub-style review changes the customer's KYC status once;
every other request (too big, unsigned, badly signed, malformed, stale, unsupported, replayed,
for an unknown customer, an illegal move) gets its own HTTP status and stable code and changes
nothing; the secret never shows in a repr or a log line.
Method: the aiohttp app served on a local port (aiohttp's TestServer), a store on a fresh
database with the real audit log, and row counts before and after each refusal.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.customers import (
    DIGEST_HEADER,
    WEBHOOK_PATH,
    CustomerStore,
    KycStatus,
    WebhookConfig,
    WebhookReason,
    created_at_ms,
    make_webhook_app,
    signature_of,
    webhook_age_max_ms,
    webhook_body_bytes_max,
)
from tests.compliance.customers_fixtures import alice, audit_rows, counts, open_store

SECRET = b"whsec-test-9f2c1e"
NOW_MS = created_at_ms("2026-11-30 12:00:00.000")


def review(customer_id: int | str, answer: str = "GREEN", **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "applicantId": "5cb56e8e0a975a35f333cb83",
        "inspectionId": "5cb56e8e0a975a35f333cb84",
        "correlationId": "req-a260b669-4f14-4bb5-a4c5-ac0218acb9a4",
        "externalUserId": str(customer_id),
        "levelName": "basic-kyc-level",
        "type": "applicantReviewed",
        "reviewResult": {"reviewAnswer": answer, "rejectLabels": []},
        "reviewStatus": "completed",
        "createdAtMs": "2026-11-30 11:59:30.123",
        **changes,
    }
    if answer == "RED":
        payload["reviewResult"] = {
            "reviewAnswer": "RED",
            "rejectLabels": ["FORGERY", "SELFIE_MISMATCH"],
            "reviewRejectType": "FINAL",
        }
    return payload


def signed(body: bytes, secret: bytes = SECRET) -> dict[str, str]:
    return {DIGEST_HEADER: signature_of(secret, body), "X-Payload-Digest-Alg": "HMAC_SHA256_HEX"}


Run = Callable[[TestClient, CustomerStore, int], Awaitable[None]]


def serve(pg_database: str, body: Run) -> None:
    async def run() -> None:
        store, audit = await open_store(pg_database)
        config = WebhookConfig(secret=SECRET, now_ms=lambda: NOW_MS)
        client = TestClient(TestServer(make_webhook_app(store, config)))
        await client.start_server()
        try:
            customer = await store.create(alice(), "officer:bob", "onboarding")
            await body(client, store, customer.customer_id)
        finally:
            await client.close()
            await store.close()
            await audit.close()

    asyncio.run(run())


async def post(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    response = await client.post(WEBHOOK_PATH, data=body, headers=headers)
    return response.status, await response.json()


def test_reviews_move_the_kyc_status_once_each(pg_database: str) -> None:
    async def body(client: TestClient, store: CustomerStore, customer_id: int) -> None:
        red = json.dumps(review(customer_id, "RED")).encode()
        assert await post(client, red, signed(red)) == (
            200,
            {"customer_id": customer_id, "kyc_status": "rejected"},
        )
        pending = json.dumps(
            review(customer_id, type="applicantPending", reviewResult=None)
        ).encode()
        assert (await post(client, pending, signed(pending)))[1]["kyc_status"] == "pending"
        # Epoch milliseconds are accepted as well as Sumsub's date-time text.
        green = json.dumps(review(customer_id, createdAtMs=NOW_MS - 1_000)).encode()
        assert (await post(client, green, signed(green)))[1]["kyc_status"] == "verified"
        customer = await store.get(customer_id)
        assert customer.kyc_status is KycStatus.verified
        assert customer.applicant_id == "5cb56e8e0a975a35f333cb83"
        assert (await counts(pg_database))["customers.webhook_receipts"] == 3
        rows = [r for r in await audit_rows(pg_database) if r[0] == "kyc_vendor"]
        assert [(r[1], r[4]) for r in rows] == [
            ("kyc_rejected", "ok"),
            ("kyc_pending", "ok"),
            ("kyc_verified", "ok"),
        ]
        assert rows[0][3]["reason"] == "vendor review RED, labels FORGERY,SELFIE_MISMATCH"
        # Receipts are kept while their payloads are young enough to be accepted.
        assert await store.prune_webhook_receipts(NOW_MS, webhook_age_max_ms) == 0
        later_ms = NOW_MS + webhook_age_max_ms - 2_000  # past the two at 11:59:30 only
        assert await store.prune_webhook_receipts(later_ms, webhook_age_max_ms) == 2
        assert (await counts(pg_database))["customers.webhook_receipts"] == 1

    serve(pg_database, body)


def test_each_bad_request_gets_its_code_and_changes_nothing(
    pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def body(client: TestClient, store: CustomerStore, customer_id: int) -> None:
        applied = json.dumps(review(customer_id)).encode()
        assert (await post(client, applied, signed(applied)))[0] == 200
        before = await counts(pg_database)
        audited = len(await audit_rows(pg_database))

        def sign(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
            raw = json.dumps(payload).encode()
            return raw, signed(raw)

        malformed = b'{"type": "applicantReviewed", "externalUserId": '
        too_big = b" " * (webhook_body_bytes_max + 1)
        cases: list[tuple[bytes, dict[str, str], WebhookReason, int]] = [
            (too_big, {}, WebhookReason.body_must_not_exceed_limit, 413),
            (applied, {}, WebhookReason.signature_must_be_present, 401),
            (applied, signed(applied, b"wrong secret"), WebhookReason.signature_must_match, 401),
            (applied + b" ", signed(applied), WebhookReason.signature_must_match, 401),
            (
                applied,
                {**signed(applied), "X-Payload-Digest-Alg": "HMAC_SHA1_HEX"},
                WebhookReason.signature_must_match,
                401,
            ),
            (malformed, signed(malformed), WebhookReason.payload_must_be_valid, 400),
            (*sign({"type": "applicantReviewed"}), WebhookReason.payload_must_be_valid, 400),
            (
                *sign(review(customer_id, reviewResult={"reviewAnswer": "YELLOW"})),
                WebhookReason.payload_must_be_valid,
                400,
            ),
            (
                *sign(review(customer_id, createdAtMs="yesterday")),
                WebhookReason.payload_must_be_valid,
                400,
            ),
            (
                *sign(review(customer_id, createdAtMs=NOW_MS - webhook_age_max_ms - 1)),
                WebhookReason.payload_must_be_recent,
                400,
            ),
            (
                *sign(review(customer_id, createdAtMs=NOW_MS + webhook_age_max_ms + 1)),
                WebhookReason.payload_must_be_recent,
                400,
            ),
            (
                *sign(review(customer_id, type="applicantCreated")),
                WebhookReason.event_type_must_be_supported,
                422,
            ),
            (applied, signed(applied), WebhookReason.payload_must_not_be_replayed, 409),
            (*sign(review(999_999)), WebhookReason.customer_must_exist, 404),
            (*sign(review("alice@example.com")), WebhookReason.customer_must_exist, 404),
            # A second GREEN (a new payload, not a replay) for a verified customer.
            (
                *sign(review(customer_id, correlationId="req-2")),
                WebhookReason.kyc_transition_must_be_allowed,
                409,
            ),
        ]
        for raw, headers, reason, status in cases:
            got_status, got = await post(client, raw, headers)
            assert (got_status, got["code"], got["reason"]) == (status, reason, reason.name)
            assert got["message"]
            assert await counts(pg_database) == before, reason
        assert (await store.get(customer_id)).kyc_status is KycStatus.verified
        # Only the store's refusal of the illegal move is audited (who tried, and the code).
        rows = (await audit_rows(pg_database))[audited:]
        assert [(r[0], r[1], r[4]) for r in rows] == [
            ("kyc_vendor", "kyc_verified", "kyc_transition_must_be_allowed")
        ]

    serve(pg_database, body)
    assert SECRET.decode() not in caplog.text
    assert SECRET.decode() not in repr(WebhookConfig(secret=SECRET))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
fields = st.sampled_from(
    ["type", "applicantId", "externalUserId", "createdAtMs", "reviewResult", "levelName"]
)


def test_any_signed_payload_gets_a_clear_answer(pg_database: str) -> None:
    """Fuzz: correctly signed payloads with fields replaced or dropped at random never crash
    the endpoint; each gets 200 or a coded refusal, and a refusal changes nothing."""
    loop = asyncio.new_event_loop()
    store, audit = loop.run_until_complete(open_store(pg_database))
    config = WebhookConfig(secret=SECRET, now_ms=lambda: NOW_MS)
    client = TestClient(TestServer(make_webhook_app(store, config)), loop=loop)
    loop.run_until_complete(client.start_server())
    customer_id = loop.run_until_complete(
        store.create(alice(), "officer:bob", "onboarding")
    ).customer_id
    statuses = {200, *(400, 404, 409, 422)}

    @settings(max_examples=40)
    @given(
        replace=st.dictionaries(fields, json_values, max_size=3),
        drop=st.sets(fields, max_size=2),
        answer=st.sampled_from(["GREEN", "RED"]),
    )
    def check(replace: dict[str, Any], drop: set[str], answer: str) -> None:
        payload = {**review(customer_id, answer), **replace}
        for name in drop:
            payload.pop(name, None)
        raw = json.dumps(payload).encode()
        before = loop.run_until_complete(counts(pg_database))
        status, got = loop.run_until_complete(post(client, raw, signed(raw)))
        assert status in statuses
        if status != 200:
            assert WebhookReason(got["code"]).name == got["reason"]
            assert loop.run_until_complete(counts(pg_database)) == before

    try:
        check()
    finally:
        loop.run_until_complete(client.close())
        loop.run_until_complete(store.close())
        loop.run_until_complete(audit.close())
        loop.close()


def test_the_service_will_not_start_without_a_configured_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from compliance.customers.__main__ import main

    monkeypatch.delenv("CLEARLINE_KYC_WEBHOOK_SECRET", raising=False)
    assert main(["--database-url", "postgresql://unused"]) == 2
    assert "CLEARLINE_KYC_WEBHOOK_SECRET" in capsys.readouterr().err
