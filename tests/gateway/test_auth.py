"""API keys, roles and the audit log (gateway.auth).

Goal: a key created once authenticates as its account and role; a wrong secret, an unknown or
revoked key, or a malformed token does not; the secret is never stored, logged or echoed in an
error; `authorize` turns those outcomes into the right gRPC status codes; audit rows are written,
durable, and only ever appended. Method: a fresh real PostgreSQL database per test; a real
grpc.aio server on a free port with a tiny generic service whose two methods admit different
roles, called through a real channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

import grpc
import psycopg
import pytest

from compliance.records import verify_chain
from engine._codes import Role
from gateway import auth
from gateway.auth import (
    CONTROL_ROLES,
    TRADING_ROLES,
    AuditLog,
    KeyStore,
    authorize,
    create_api_key,
    ensure_schema,
    revoke_api_key,
)

TOKEN_RE = re.compile(r"clk_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


def test_schema_is_idempotent_and_safe_to_race(pg_database: str) -> None:
    async def run() -> None:
        conns = [await connect(pg_database) for _ in range(3)]
        try:
            await asyncio.gather(*(ensure_schema(conn) for conn in conns))
            await ensure_schema(conns[0])
            cursor = await conns[0].execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' ORDER BY table_name"
            )
            assert [row[0] for row in await cursor.fetchall()] == ["api_keys", "audit_log"]
        finally:
            for conn in conns:
                await conn.close()

    asyncio.run(run())


def test_keys_authenticate_and_bad_ones_do_not(
    pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def run() -> str:
        async with await connect(pg_database) as conn:
            await ensure_schema(conn)
            trader = await create_api_key(conn, 7, Role.TRADER, "alice's algo")
            admin = await create_api_key(conn, 1, Role.ADMIN, None)
            store = await KeyStore.load(pg_database)
            assert len(store) == 2

            match = TOKEN_RE.fullmatch(trader)
            assert match, trader
            key_id, secret = match["key_id"], match["secret"]
            assert store.authenticate(trader) == auth.Identity(key_id, 7, Role.TRADER)
            assert store.authenticate(admin) is not None
            assert store.authenticate(admin).role is Role.ADMIN  # type: ignore[union-attr]

            wrong_secret = f"clk_{key_id}_{'A' * 43}"
            unknown_key = f"clk_{'0' * 12}_{secret}"
            malformed = [
                "",
                secret,
                f"clk_{key_id}",
                f"clk_{key_id}_",
                f"clk_{key_id.upper()}_{secret}",
                f"xyz_{key_id}_{secret}",
                trader + "x" * 200,
            ]
            for token in [wrong_secret, unknown_key, *malformed]:
                assert store.authenticate(token) is None, token

            assert await revoke_api_key(conn, key_id)
            assert not await revoke_api_key(conn, key_id)  # already revoked
            assert not await revoke_api_key(conn, "0" * 12)  # unknown
            assert store.authenticate(trader) is not None  # until the next refresh
            await store.refresh()
            assert store.authenticate(trader) is None
            assert len(store) == 1
            return trader

    token = asyncio.run(run())
    secret = TOKEN_RE.fullmatch(token)["secret"]  # type: ignore[index]
    assert secret not in caplog.text


def test_only_the_secrets_hash_is_stored(pg_database: str) -> None:
    async def run() -> None:
        async with await connect(pg_database) as conn:
            await ensure_schema(conn)
            token = await create_api_key(conn, 7, Role.MARKET_MAKER, "mm")
            match = TOKEN_RE.fullmatch(token)
            assert match
            secret = match["secret"]
            # Every column of every row, as text: the secret appears in none.
            cursor = await conn.execute("SELECT row_to_json(k)::text FROM api_keys k")
            (row_text,) = await cursor.fetchone()  # type: ignore[misc]
            assert secret not in row_text
            cursor = await conn.execute("SELECT secret_sha256, role, label FROM api_keys")
            digest, role, label = await cursor.fetchone()  # type: ignore[misc]
            assert bytes(digest) == hashlib.sha256(secret.encode()).digest()
            assert secret.encode() not in bytes(digest)
            assert (Role(role), label) == (Role.MARKET_MAKER, "mm")

    asyncio.run(run())


def test_audit_rows_are_written_and_survive_a_lost_connection(pg_database: str) -> None:
    async def run() -> None:
        async with await connect(pg_database) as admin:
            await ensure_schema(admin)
            audit = await AuditLog.open(pg_database)
            try:
                first = await audit.record(
                    "a1b2c3d4e5f6",
                    "halt_instrument",
                    "instrument:BTC-EUR",
                    {"cancel_resting": True, "role": Role.RISK_OFFICER},
                    "ok",
                )
                # Lose the audit connection: one record fails loudly, the next reconnects.
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                with pytest.raises(psycopg.OperationalError):
                    await audit.record("a1b2c3d4e5f6", "resume_instrument", None, {}, "ok")
                second = await audit.record("system", "resume_instrument", None, {}, "ok")
                assert second > first
            finally:
                await audit.close()
            cursor = await admin.execute(
                "SELECT id, actor, action, target, detail, outcome, at IS NOT NULL"
                " FROM audit_log ORDER BY id"
            )
            rows = await cursor.fetchall()
            assert rows == [
                (
                    first,
                    "a1b2c3d4e5f6",
                    "halt_instrument",
                    "instrument:BTC-EUR",
                    {"cancel_resting": True, "role": 3},
                    "ok",
                    True,
                ),
                (second, "system", "resume_instrument", None, {}, "ok", True),
            ]

    asyncio.run(run())


def test_the_audit_log_is_only_ever_appended_to(pg_database: str) -> None:
    # The database refuses changes, not only this code: even the superuser these tests connect
    # as gets an error for UPDATE, DELETE and TRUNCATE; and the rows AuditLog wrote verify.
    async def run() -> None:
        async with await connect(pg_database) as admin:
            await ensure_schema(admin)
            audit = await AuditLog.open(pg_database)
            try:
                for n in range(3):
                    assert await audit.record("system", "probe", None, {"n": n}, "ok") == n + 1
            finally:
                await audit.close()
            for statement in (
                "UPDATE audit_log SET outcome = 'forged'",
                "DELETE FROM audit_log WHERE id = 2",
                "TRUNCATE audit_log",
            ):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    await admin.execute(statement)
            report = await verify_chain(admin)
            assert report.intact and report.head_seq == 3

    asyncio.run(run())


# -- authorize, through a real gRPC server --


def _probe_handler(store: KeyStore) -> grpc.GenericRpcHandler:
    """Service ``test.Probe``: ``Trade`` admits trading roles, ``Control`` control roles."""

    def method(roles: frozenset[Role]) -> grpc.RpcMethodHandler:
        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            identity = await authorize(context, store, roles)
            return f"{identity.key_id} {identity.account_id} {identity.role.name}".encode()

        return grpc.unary_unary_rpc_method_handler(handle)

    return grpc.method_handlers_generic_handler(
        "test.Probe", {"Trade": method(TRADING_ROLES), "Control": method(CONTROL_ROLES)}
    )


def test_authorize_maps_outcomes_to_grpc_status_codes(
    pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_seen: list[str] = []

    async def run() -> None:
        async with await connect(pg_database) as conn:
            await ensure_schema(conn)
            trader = await create_api_key(conn, 7, Role.TRADER, None)
            officer = await create_api_key(conn, 0, Role.RISK_OFFICER, None)
            revoked = await create_api_key(conn, 8, Role.TRADER, None)
            await revoke_api_key(conn, TOKEN_RE.fullmatch(revoked)["key_id"])  # type: ignore[index]
        secrets_seen.extend(TOKEN_RE.fullmatch(t)["secret"] for t in (trader, officer, revoked))  # type: ignore[index]
        store = await KeyStore.load(pg_database)
        trader_id = TOKEN_RE.fullmatch(trader)["key_id"]  # type: ignore[index]

        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_probe_handler(store),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:

                async def call(method: str, metadata: list[tuple[str, str]]) -> Any:
                    stub = channel.unary_unary(f"/test.Probe/{method}")
                    try:
                        return await stub(b"", metadata=metadata, timeout=5)
                    except grpc.aio.AioRpcError as error:
                        return error

                ok = await call("Trade", [("authorization", f"Bearer {trader}")])
                assert ok == f"{trader_id} 7 TRADER".encode()
                assert await call("Trade", [("x-api-key", trader)]) == ok
                assert await call("Trade", [("authorization", f"bearer {trader}")]) == ok
                assert await call("Control", [("authorization", f"Bearer {officer}")])

                unauthenticated = {
                    "missing": [],
                    "revoked": [("authorization", f"Bearer {revoked}")],
                    "wrong secret": [("x-api-key", trader[:-4] + "AAAA")],
                    "not bearer": [("authorization", f"Basic {trader}")],
                    "malformed": [("x-api-key", "clk_" + secrets_seen[0])],
                }
                for case, metadata in unauthenticated.items():
                    error = await call("Trade", metadata)
                    assert isinstance(error, grpc.aio.AioRpcError), case
                    assert error.code() is grpc.StatusCode.UNAUTHENTICATED, case
                    assert not any(s in (error.details() or "") for s in secrets_seen), case
                error = await call("Trade", [])
                assert "authorization" in error.details()
                error = await call("Trade", [("x-api-key", trader[:-4] + "AAAA")])
                assert trader_id in error.details()

                denied = await call("Control", [("authorization", f"Bearer {trader}")])
                assert isinstance(denied, grpc.aio.AioRpcError)
                assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
                assert "TRADER" in denied.details() and "RISK_OFFICER" in denied.details()
                assert not any(s in (denied.details() or "") for s in secrets_seen)
        finally:
            await server.stop(None)

    asyncio.run(run())
    assert secrets_seen and not any(secret in caplog.text for secret in secrets_seen)
