"""The webhook service as operators run it: ``python -m compliance.customers``.

Goal: the service starts from its configuration (secret from the environment), accepts a
signed vendor review over real HTTP, changes the customer's KYC status in PostgreSQL, publishes
the new state to the gateways' bucket in NATS, and never writes the secret to its output.
Method: the module run as a child process against the test's PostgreSQL database and NATS
prefix; readiness by polling the port (a bounded wait, not a timing assertion).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import aiohttp
import msgspec
import nats

from compliance.customer_state import CustomerState, customer_state_key, ensure_bucket
from compliance.customers import DIGEST_HEADER, WEBHOOK_PATH, KycStatus, signature_of
from engine.topology import Topology
from tests.compliance.customers_fixtures import alice, open_store

SECRET = "whsec-service-3c1d77e0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_service_applies_a_signed_review_end_to_end(
    pg_database: str, nats_url: str, nats_prefix: str
) -> None:
    async def setup() -> int:
        store, audit = await open_store(pg_database)
        try:
            return (await store.create(alice(), "officer:bob", "onboarding")).customer_id
        finally:
            await store.close()
            await audit.close()

    customer_id = asyncio.run(setup())
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "compliance.customers",
            "--database-url",
            pg_database,
            "--nats-url",
            nats_url,
            "--prefix",
            nats_prefix,
            "--port",
            str(port),
        ],
        env={**os.environ, "CLEARLINE_KYC_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    async def exercise() -> None:
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        payload = {
            "applicantId": "66aa",
            "externalUserId": str(customer_id),
            "type": "applicantReviewed",
            "reviewResult": {"reviewAnswer": "GREEN"},
            "createdAtMs": time.time_ns() // 1_000_000,
        }
        body = json.dumps(payload).encode()
        async with aiohttp.ClientSession() as http:
            for _ in range(600):  # up to a minute on a busy machine
                assert child.poll() is None, "the service exited"
                try:
                    async with http.post(
                        url, data=body, headers={DIGEST_HEADER: signature_of(SECRET.encode(), body)}
                    ) as response:
                        status, answer = response.status, await response.json()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the service never listened")
        assert (status, answer) == (200, {"customer_id": customer_id, "kyc_status": "verified"})
        store, audit = await open_store(pg_database)
        try:
            assert (await store.get(customer_id)).kyc_status is KycStatus.verified
        finally:
            await store.close()
            await audit.close()
        client = await nats.connect(nats_url)
        try:
            topology = Topology(prefix=nats_prefix)
            kv = await ensure_bucket(client.jetstream(), topology)
            entry = await kv.get(customer_state_key(42))
            assert entry.value is not None
            assert msgspec.json.decode(entry.value, type=CustomerState).kyc_verified
            await client.jetstream().delete_key_value(topology.customer_state_bucket)
        finally:
            await client.close()

    try:
        asyncio.run(exercise())
    finally:
        child.terminate()
        output, _ = child.communicate(timeout=30)
    assert SECRET.encode() not in output
