"""The compliance dashboard (compliance.dashboard) as an officer's browser uses it.

Goal: only compliance officers and administrators get in, each sign-in and decision lands in
the audit log with the officer's key id, forms without the session's CSRF token are refused,
idle sessions end, data is escaped, and the sanctions-list page loads new lists only when they
are whole (a damaged folder leaves the active version in place).
Method: the aiohttp application on a real test server and PostgreSQL database, driven by an
HTTP client that keeps cookies like a browser; API keys created with `gateway.auth`; the clock
is injected to age sessions. The case workflow runs through the pages against the real case
service, alerts ingested as the cases consumer stores them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from compliance.dashboard import Services, create_app, session_idle_s_max
from compliance.dashboard._panels import panels_for
from compliance.screening import ActiveLists, default_data_dir, load_lists
from engine._codes import Role
from gateway.auth import AuditLog, KeyStore, create_api_key, ensure_schema
from ledger.alerts import Alert
from tests.compliance.cases_fixtures import make_alert
from tests.compliance.customers_fixtures import alice


@pytest.fixture(scope="module")
def lists_version() -> Any:
    return load_lists()


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now_s


Scenario = Callable[[TestClient, dict[str, str], "Clock"], Awaitable[None]]


def run(pg_database: str, lists_dir: Path, version: Any, scenario: Scenario) -> list[Alert]:
    """Run the scenario against a fresh dashboard; returns the operational alerts it raised."""
    raised: list[Alert] = []

    async def collect(alert: Alert) -> None:
        raised.append(alert)

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
            pg_database,
            await KeyStore.load(pg_database),
            audit,
            lists,
            lists_dir,
            clock=clock,
            alert=collect,
        )
        try:
            async with TestClient(TestServer(create_app(svc))) as client:
                await scenario(client, keys, clock)
        finally:
            await audit.close()

    asyncio.run(main())
    return raised


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

    [alert] = run(pg_database, folder, lists_version, scenario)
    assert (alert.kind, alert.severity) == ("list_update_refused", "critical")
    assert "UN_consolidated.xml" in alert.summary


def test_an_officer_triages_works_a_case_and_files_a_sar_with_four_eyes(
    pg_database: str, lists_version: Any, tmp_path: Path
) -> None:
    """Alerts in, through the pages: assign, dismiss with a reason, escalate to a case, note,
    draft; the drafter cannot approve (four eyes), a second officer does; filed; the goAML XML
    downloads and parses. An administrator may look but not decide."""

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
            await ensure_schema(conn)
            keys = {
                "alice": await create_api_key(conn, 0, Role.COMPLIANCE_OFFICER, "alice"),
                "bob": await create_api_key(conn, 0, Role.COMPLIANCE_OFFICER, "bob"),
                "admin": await create_api_key(conn, 0, Role.ADMIN, "admin"),
            }
        audit = await AuditLog.open(pg_database)
        svc = Services(pg_database, await KeyStore.load(pg_database), audit, None, None)
        args = argparse.Namespace(
            rentity_id="4711", mlro_first_name="Maria", mlro_last_name="Schmidt",
            mlro_email="mlro@example.com", records_dir=tmp_path / "records", jurisdiction="DE",
        )  # fmt: skip
        panels, figures = await panels_for(svc, args)
        cases: Any = svc.extra["cases"]
        customers_store.append(svc.extra["customers"])
        await cases.ingest([make_alert(1), make_alert(2, severity="critical")])
        try:
            async with TestClient(TestServer(create_app(svc, panels, figures))) as client:
                await officer_flow(client, keys)
        finally:
            for close in svc.extra["closers"]:
                await close()
            await audit.close()

    customers_store: list[Any] = []

    async def post(client: TestClient, path: str, **data: str) -> str:
        token = await csrf_of(client, "/alerts")
        reply = await client.post(path, data={"csrf": token, **data})
        assert reply.status == 200, await reply.text()
        return await reply.text()

    async def officer_flow(client: TestClient, keys: dict[str, str]) -> None:
        await sign_in(client, keys["admin"])
        page = await (await client.get("/alerts")).text()
        assert "large withdrawal #1" in page and "large withdrawal #2" in page
        # An administrator reads, but the case service takes decisions from officers only.
        refused = await post(client, "/alerts/assign", alert_id="VASP-001:7:ev:0:1")
        assert "actor_must_be_compliance_officer" in refused
        await post(client, "/logout")

        await sign_in(client, keys["alice"])
        home = await (await client.get("/")).text()
        assert "open alerts: critical" in home
        for n in (1, 2):
            page = await post(client, "/alerts/assign", alert_id=f"VASP-001:7:ev:0:{n}")
            assert '<div class="flash">assigned</div>' in page
        dismissed = await post(
            client, "/alerts/dismiss", alert_id="VASP-001:7:ev:0:1",
            reason_code="expected_activity_documented", reason="payroll, documented",
        )  # fmt: skip
        assert "dismissed" in dismissed
        token = await csrf_of(client, "/alerts")
        escalated = await client.post(
            "/alerts/escalate",
            data={"csrf": token, "alert_id": "VASP-001:7:ev:0:2", "case_id": "", "reason": "odd"},
            allow_redirects=False,
        )
        case_path = escalated.headers["Location"].split("?")[0]
        assert case_path.startswith("/cases/")
        await post(client, f"{case_path}/investigate", reason="looking")
        await post(client, f"{case_path}/notes", body="Called the customer <b>twice</b>.")
        case_page = await post(
            client, f"{case_path}/drafts", jurisdiction="DE",
            narrative="Structured withdrawals to a mixer.", reason="threshold met",
        )  # fmt: skip
        assert "&lt;b&gt;twice&lt;/b&gt;" in case_page and "SAR drafted" in case_page
        # A document is stored as an encrypted record: the database never holds its bytes.
        secret_text = b"passport scan of the customer, page 1"
        upload = aiohttp.FormData()
        upload.add_field("csrf", await csrf_of(client, case_path))
        upload.add_field("file", secret_text, filename="passport.txt", content_type="text/plain")
        attached = await client.post(f"{case_path}/documents", data=upload)
        assert "document attached" in await attached.text()
        link = re.search(r'href="(/documents/\d+)"', await (await client.get(case_path)).text())
        assert link
        assert await (await client.get(link.group(1))).read() == secret_text
        async with await psycopg.AsyncConnection.connect(pg_database) as conn:
            cursor = await conn.execute("SELECT count(*) FROM cases.document_bytes")
            assert await cursor.fetchone() == (0,)
            dump = await conn.execute("SELECT ciphertext FROM compliance_records")
            stored = [bytes(row[0]) for row in await dump.fetchall()]
        assert len(stored) == 1 and secret_text not in stored[0]
        draft_id = re.search(r'action="/drafts/(\d+)/approve"', case_page)
        assert draft_id, case_page
        approve = f"/drafts/{draft_id.group(1)}/approve"
        assert "approver_must_not_be_drafter" in await post(client, approve, reason="mine")
        await post(client, "/logout")

        await sign_in(client, keys["bob"])
        assert "approved" in await post(client, approve, reason="second pair of eyes")
        filed = await post(
            client, f"/drafts/{draft_id.group(1)}/file", fiu_reference="FIU-2026-77",
            reason="sent through goAML",
        )  # fmt: skip
        assert "marked filed" in filed
        xml = await client.get(f"/drafts/{draft_id.group(1)}.xml")
        assert xml.headers["Content-Disposition"].startswith("attachment")
        report = ET.fromstring(await xml.read())
        assert report.tag == "report" and report.findtext("rentity_id") == "4711"
        assert "Structured withdrawals" in (report.findtext("reason") or "")
        deadlines = await (await client.get("/reports")).text()
        assert "SAR/STR deadlines" in deadlines
        customers = await (await client.get("/customers")).text()
        assert "KYC pending" in customers
        # What monitoring asked of a customer stays open until an officer closes it.
        store: Any = customers_store[0]
        customer = await store.create(alice(account_id=None), "onboarding", "new customer")
        await store.open_requirement(
            customer.customer_id, "source_of_funds", "VASP-003:9:x", "monitoring", "high risk"
        )
        page = await (await client.get("/customers")).text()
        requirement = re.search(r'name=requirement_id value="(\d+)"', page)
        assert requirement and "source_of_funds" in page
        closed = await post(
            client, "/requirements/close", requirement_id=requirement.group(1),
            reason="bank statements received",
        )  # fmt: skip
        assert "requirement closed" in closed and "VASP-003:9:x" not in closed
        again = await post(
            client, "/requirements/close", requirement_id=requirement.group(1), reason="again"
        )
        assert "requirement_must_be_open" in again

    asyncio.run(main())


def test_a_list_update_rescreens_every_customer_and_queues_new_hits(
    pg_database: str, tmp_path: Path
) -> None:
    """Frank Kakolele Bwambale is listed by the UN only (CDi.002). Onboarded while the active
    lists lacked his entry, he screens clean; the officer loads the full lists, every customer
    is re-screened, he is flagged sanctioned and a critical SCREENING alert goes to the case
    queue."""
    full = tmp_path / "full"
    shutil.copytree(
        default_data_dir(), full, ignore=shutil.ignore_patterns("name_pairs_*", "ivms101_*")
    )
    older = tmp_path / "older"
    shutil.copytree(full, older)
    un = older / "un_consolidated_2026" / "UN_consolidated.xml"
    chunks = un.read_text().split("</INDIVIDUAL>")
    un.write_text("</INDIVIDUAL>".join(c for c in chunks if "CDi.002<" not in c))

    async def main() -> tuple[list[Any], Any]:
        async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
            await ensure_schema(conn)
            key = await create_api_key(conn, 0, Role.COMPLIANCE_OFFICER, "alice")
        audit = await AuditLog.open(pg_database)
        published: list[Any] = []

        async def publish(alert: Any) -> None:
            published.append(alert)

        lists = ActiveLists(await asyncio.to_thread(load_lists, older))
        svc = Services(
            pg_database, await KeyStore.load(pg_database), audit, lists, full,
            publish_alert=publish,
        )  # fmt: skip
        args = argparse.Namespace(
            rentity_id="1", mlro_first_name="M", mlro_last_name="L", mlro_email="m@example.com",
            records_dir=None, jurisdiction="EU",
        )  # fmt: skip
        panels, figures = await panels_for(svc, args)
        customers: Any = svc.extra["customers"]
        try:
            frank = await customers.create(
                alice(given_names="Frank", family_name="Kakolele Bwambale", account_id=3001),
                "onboarding", "new customer", screening=lists.index,
            )  # fmt: skip
            assert not frank.sanctioned
            async with TestClient(TestServer(create_app(svc, panels, figures))) as client:
                await sign_in(client, key)
                token = await csrf_of(client, "/lists")
                page = await (await client.post("/lists/update", data={"csrf": token})).text()
                assert "activated" in page and "1 newly flagged" in page
            return published, await customers.get(frank.customer_id)
        finally:
            for close in svc.extra["closers"]:
                await close()
            await audit.close()

    published, frank = asyncio.run(main())
    assert frank.sanctioned and "CDi.002" in (frank.sanctioned_reason or "")
    [alert] = published
    assert alert.rule_id == "SCREENING" and alert.account_id == 3001
    assert alert.severity == "critical" and "freeze" in alert.actions
