"""The compliance dashboard (compliance.dashboard) as an officer's browser uses it.

Goal: only compliance officers and administrators get in, each sign-in and decision lands in
the audit log with the officer's key id, forms without the session's CSRF token are refused,
idle sessions end, data is escaped, and the sanctions-list page loads new lists only when they
are whole (a damaged folder leaves the active version in place).
Method: the aiohttp application on a real test server and PostgreSQL database, driven by an
HTTP client that keeps cookies like a browser; API keys created with `gateway.auth`; the clock
is injected to age sessions.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from compliance.dashboard import Services, create_app, session_idle_s_max
from compliance.screening import ActiveLists, default_data_dir, load_lists
from engine._codes import Role
from gateway.auth import AuditLog, KeyStore, create_api_key, ensure_schema


@pytest.fixture(scope="module")
def lists_version() -> Any:
    return load_lists()


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now_s


Scenario = Callable[[TestClient, dict[str, str], "Clock"], Awaitable[None]]


def run(pg_database: str, lists_dir: Path, version: Any, scenario: Scenario) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
            await ensure_schema(conn)
            keys = {
                "officer": await create_api_key(conn, 9001, Role.COMPLIANCE_OFFICER, "officer"),
                "trader": await create_api_key(conn, 2001, Role.TRADER, "trader"),
            }
        audit = await AuditLog.open(pg_database)
        clock = Clock()
        lists = ActiveLists.__new__(ActiveLists)
        lists.version, lists.index = version, None  # the pages read the version only
        svc = Services(
            pg_database, await KeyStore.load(pg_database), audit, lists, lists_dir, clock=clock
        )
        try:
            async with TestClient(TestServer(create_app(svc))) as client:
                await scenario(client, keys, clock)
        finally:
            await audit.close()

    asyncio.run(main())


async def sign_in(client: TestClient, key: str) -> Any:
    return await client.post("/login", data={"api_key": key}, allow_redirects=False)


async def csrf_of(client: TestClient, path: str) -> str:
    text = await (await client.get(path)).text()
    match = re.search(r'name=csrf value="([^"]+)"', text)
    assert match, text[:500]
    return match.group(1)


async def audit_rows(pg_database: str) -> list[tuple[str, str, str]]:
    async with await psycopg.AsyncConnection.connect(pg_database) as conn:
        cursor = await conn.execute("SELECT actor, action, outcome FROM audit_log ORDER BY id")
        return [tuple(row) for row in await cursor.fetchall()]  # type: ignore[misc]


def test_only_officers_get_in_and_every_sign_in_is_audited(
    pg_database: str, lists_version: Any, tmp_path: Path
) -> None:
    async def scenario(client: TestClient, keys: dict[str, str], clock: Clock) -> None:
        anonymous = await client.get("/", allow_redirects=False)
        assert anonymous.status == 303 and anonymous.headers["Location"] == "/login"
        login = await client.get("/login")
        assert login.status == 200
        assert login.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in login.headers["Content-Security-Policy"]

        assert (await sign_in(client, keys["trader"])).status == 403
        assert (await sign_in(client, "clk_000000000000_nonsense")).status == 403
        assert (await client.get("/", allow_redirects=False)).status == 303

        signed = await sign_in(client, keys["officer"])
        assert signed.status == 303
        cookie = signed.cookies["clearline_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert keys["officer"] not in cookie.value
        home = await client.get("/")
        assert home.status == 200
        text = await home.text()
        assert "intact" in text and lists_version.version_id[7:19] in text
        secret = keys["officer"].split("_", 2)[2]
        assert secret not in text

        rows = await audit_rows(pg_database)
        officer_id, trader_id = (keys[k].split("_")[1] for k in ("officer", "trader"))
        assert (trader_id, "dashboard_sign_in", "permission_denied") in rows
        assert ("unknown", "dashboard_sign_in", "unauthenticated") in rows
        assert (officer_id, "dashboard_sign_in", "ok") in rows

        audit_page = await (await client.get("/audit")).text()
        assert "Chain intact" in audit_page and "dashboard_sign_in" in audit_page

        clock.now_s += session_idle_s_max + 1
        assert (await client.get("/", allow_redirects=False)).status == 303

    run(pg_database, tmp_path, lists_version, scenario)


def test_forms_need_the_sessions_csrf_token_and_data_is_escaped(
    pg_database: str, lists_version: Any, tmp_path: Path
) -> None:
    async def scenario(client: TestClient, keys: dict[str, str], clock: Clock) -> None:
        await sign_in(client, keys["officer"])
        forged = await client.post("/lists/update", data={"csrf": "guess"}, allow_redirects=False)
        assert forged.status == 403
        missing = await client.post("/logout", allow_redirects=False)
        assert missing.status == 403
        # Hostile text in the audit log is shown as text.
        async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
            await conn.execute("SELECT 1")
        audit = await AuditLog.open(pg_database)
        try:
            await audit.record("<script>alert(1)</script>", "x", "<b>t</b>", {"a": "<i>"}, "ok")
        finally:
            await audit.close()
        page = await (await client.get("/audit")).text()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        token = await csrf_of(client, "/audit")
        out = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
        assert out.status == 303
        assert (await client.get("/", allow_redirects=False)).status == 303

    run(pg_database, tmp_path, lists_version, scenario)


def test_the_lists_page_loads_whole_lists_and_refuses_damaged_ones(
    pg_database: str, lists_version: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "lists"
    shutil.copytree(
        default_data_dir(), folder, ignore=shutil.ignore_patterns("name_pairs_*", "ivms101_*")
    )
    un = folder / "un_consolidated_2026" / "UN_consolidated.xml"

    async def scenario(client: TestClient, keys: dict[str, str], clock: Clock) -> None:
        await sign_in(client, keys["officer"])
        token = await csrf_of(client, "/lists")
        same = await client.post("/lists/update", data={"csrf": token})
        assert "unchanged" in await same.text()
        un.write_bytes(un.read_bytes()[:100_000])
        refused = await client.post("/lists/update", data={"csrf": token})
        page = await refused.text()
        assert "refused" in page and lists_version.version_id in page
        rows = await audit_rows(pg_database)
        updates = [outcome for _, action, outcome in rows if action == "screening_lists_update"]
        assert updates == ["unchanged", "refused"]

    run(pg_database, folder, lists_version, scenario)
