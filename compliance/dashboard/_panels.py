"""The dashboard's pages over the case service and the customer records.

Alerts are triaged, cases worked and SARs drafted, approved (four eyes) and filed here; every
decision goes through `compliance.cases.CaseService` with the signed-in officer as the actor,
so the service's own role check, history and audit row apply exactly as they do elsewhere. A
refused decision comes back to the page as its stable outcome name, and changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import psycopg
from aiohttp import web

from compliance.cases import (
    AlertStatus,
    CaseError,
    CaseService,
    CaseStatus,
    DismissReason,
    DocumentStore,
    PgDocumentStore,
    RecordDocumentStore,
    ReportingEntity,
    ensure_schema,
)
from compliance.customers import CustomerError, CustomerStore
from compliance.dashboard._app import (
    FigureProvider,
    Panel,
    Services,
    back,
    html_response,
    services,
    session_of,
)
from compliance.dashboard._html import button, esc, form, table
from compliance.dashboard._limits import page_rows_max
from compliance.records import RecordStore, open_key_ring
from compliance.records import ensure_schema as ensure_records_schema

# Drafts shown on the deadlines page: those due within this many days (and every overdue one).
deadline_horizon_days = 30


def _cases(request: web.Request) -> CaseService:
    cases: CaseService = services(request).extra["cases"]
    return cases


def _customers(request: web.Request) -> CustomerStore:
    customers: CustomerStore = services(request).extra["customers"]
    return customers


def _when(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _field(posted: Any, name: str) -> str:
    return str(posted.get(name, "")).strip()


async def _decide(request: web.Request, to: str, done: str, decision: Any) -> web.Response:
    """Run a decision; refusals come back as their outcome name. Post/redirect/get."""
    try:
        result = await decision
    except (CaseError, CustomerError) as exc:
        raise back(to, f"refused: {exc}") from None
    raise back(to.format(result=result), done)


# -- ALERTS --


async def alerts_page(request: web.Request) -> web.Response:
    status = request.query.get("status", "open")
    severity = request.query.get("severity") or None
    cases = _cases(request)
    try:
        if status == "open":
            shown = [
                *await cases.list_alerts(AlertStatus.NEW, severity, page_rows_max),
                *await cases.list_alerts(AlertStatus.ASSIGNED, severity, page_rows_max),
            ]
        else:
            shown = await cases.list_alerts(status or None, severity, page_rows_max)
    except CaseError as exc:
        return html_response("Alerts", f"<p class=bad>{esc(exc)}</p>", request)
    session = session_of(request)
    reasons = "".join(f"<option>{esc(r.value)}</option>" for r in DismissReason)

    def actions(alert_id: str, status: AlertStatus) -> str:
        hidden = f'<input type=hidden name=alert_id value="{esc(alert_id)}">'
        if status not in (AlertStatus.NEW, AlertStatus.ASSIGNED):
            return ""
        out = form("/alerts/assign", session, hidden + button("Assign to me"))
        if status is AlertStatus.ASSIGNED:
            out += form(
                "/alerts/dismiss",
                session,
                hidden + f"<select name=reason_code>{reasons}</select>"
                "<input name=reason placeholder=why required>" + button("Dismiss"),
            )
            out += form(
                "/alerts/escalate",
                session,
                hidden + "<input name=case_id size=5 placeholder='case (new)'>"
                "<input name=reason placeholder=why required>" + button("Escalate"),
            )
        return out

    rows = (
        (
            esc(a.severity),
            esc(a.rule_id),
            str(a.account_id),
            esc(a.summary),
            esc(a.status.value),
            esc(a.assignee or ""),
            f'<a href="/cases/{a.case_id}">{a.case_id}</a>' if a.case_id else "",
            esc(_when(a.raised_ts_ns)),
            actions(a.alert_id, a.status),
        )
        for a in shown
    )
    filters = " ".join(
        f'<a href="/alerts?status={s}">{s}</a>' for s in ("open", *(s.value for s in AlertStatus))
    )
    body = f"<p>Show: {filters}</p>" + table(
        ("severity", "rule", "account", "summary", "status", "assignee", "case", "raised (UTC)",
         ""),
        rows,
    )  # fmt: skip
    return html_response(f"Alerts ({status})", body, request)


async def alert_assign(request: web.Request) -> web.Response:
    posted = await request.post()
    officer = session_of(request).identity
    decision = _cases(request).assign_alert(
        officer, _field(posted, "alert_id"), officer.key_id, "assigned in the dashboard"
    )
    return await _decide(request, "/alerts", "assigned", decision)


async def alert_dismiss(request: web.Request) -> web.Response:
    posted = await request.post()
    decision = _cases(request).dismiss_alert(
        session_of(request).identity,
        _field(posted, "alert_id"),
        _field(posted, "reason_code"),
        _field(posted, "reason"),
    )
    return await _decide(request, "/alerts", "dismissed", decision)


async def alert_escalate(request: web.Request) -> web.Response:
    posted = await request.post()
    case_text = _field(posted, "case_id")
    if case_text and not case_text.isdigit():
        raise back("/alerts", "refused: the case must be a number, or empty for a new case")
    decision = _cases(request).escalate_alert(
        session_of(request).identity,
        _field(posted, "alert_id"),
        _field(posted, "reason"),
        int(case_text) if case_text else None,
    )
    return await _decide(request, "/cases/{result}", "escalated", decision)


# -- CASES AND DRAFTS --


async def cases_page(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    try:
        shown = await _cases(request).list_cases(status, page_rows_max)
    except CaseError as exc:
        return html_response("Cases", f"<p class=bad>{esc(exc)}</p>", request)
    filters = " ".join(
        f'<a href="/cases?status={s.value}">{s.value}</a>' for s in CaseStatus
    )
    body = f'<p>Show: <a href="/cases">all</a> {filters}</p>' + table(
        ("case", "account", "status", "opened by", "opened (UTC)"),
        (
            (f'<a href="/cases/{c.case_id}">{c.case_id}</a>', str(c.account_id),
             esc(c.status.value), esc(c.opened_by), esc(f"{c.opened_at:%Y-%m-%d %H:%M}"))
            for c in shown
        ),
    )
    return html_response("Cases", body, request)


def _case_id(request: web.Request) -> int:
    text = request.match_info["case_id"]
    if not text.isdigit():
        raise web.HTTPNotFound(text="no such case")
    return int(text)


async def case_page(request: web.Request) -> web.Response:
    case_id = _case_id(request)
    try:
        case = await _cases(request).get_case(case_id)
    except CaseError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    session = session_of(request)
    path = f"/cases/{case_id}"
    alerts = table(
        ("severity", "rule", "summary", "raised (UTC)"),
        ((esc(a.severity), esc(a.rule_id), esc(a.summary), esc(_when(a.raised_ts_ns)))
         for a in case.alerts),
    )
    notes = table(
        ("at (UTC)", "by", "note"),
        ((esc(f"{n.at:%Y-%m-%d %H:%M}"), esc(n.author), esc(n.body)) for n in case.notes),
    )
    documents = table(
        ("name", "type", "bytes", "sha256", "by"),
        ((f'<a href="/documents/{d.document_id}">{esc(d.name)}</a>', esc(d.media_type),
          f"{d.size_bytes:,}", f"<code>{d.sha256_hex}</code>", esc(d.added_by))
         for d in case.documents),
        numeric=(2,),
    )

    def draft_actions(draft_id: int, status: str) -> str:
        out = f'<a href="/drafts/{draft_id}.xml">goAML XML</a> '
        if status == "draft":
            out += form(
                f"/drafts/{draft_id}/approve",
                session,
                "<input name=reason placeholder=why required>" + button("Approve"),
            )  # fmt: skip
        elif status == "approved":
            out += form(
                f"/drafts/{draft_id}/file",
                session,
                "<input name=fiu_reference placeholder='FIU reference' required>"
                "<input name=reason placeholder=why required>" + button("Mark filed"),
            )
        elif status == "filed":
            out += form(f"/drafts/{draft_id}/reject", session,
                        "<input name=reason placeholder='the FIU said' required>"
                        + button("FIU rejected it"))  # fmt: skip
        return out

    drafts = table(
        ("draft", "code", "jurisdiction", "status", "drafted by", "approved by", "due", ""),
        ((str(d.draft_id), esc(d.report_code.value), esc(d.jurisdiction), esc(d.status.value),
          esc(d.drafted_by), esc(d.approved_by or ""), esc(d.due_on.isoformat()),
          draft_actions(d.draft_id, d.status.value)) for d in case.drafts),
    )
    history = table(
        ("at (UTC)", "by", "action", "from", "to", "why"),
        ((esc(f"{h.at:%Y-%m-%d %H:%M:%S}"), esc(h.actor), esc(h.action),
          esc(h.from_status or ""), esc(h.to_status or ""),
          esc(" ".join(filter(None, (h.reason_code, h.reason_text))))) for h in case.history),
    )  # fmt: skip
    why = "<input name=reason placeholder=why required>"
    decisions = (
        form(f"{path}/investigate", session, why + button("Start investigation"))
        + form(f"{path}/close", session, why + button("Close, no action"))
        + form(f"{path}/notes", session,
               "<textarea name=body rows=3 cols=60 required></textarea>" + button("Add note"),
               inline=False)
        + form(
            f"{path}/documents",
            session,
            "<input type=file name=file required> " + button("Attach document"),
            inline=False,
            multipart=True,
        )
        + form(
            f"{path}/drafts",
            session,
            "<input name=jurisdiction size=3 value=DE required> "
            "<textarea name=narrative rows=4 cols=80 placeholder='narrative' required></textarea>"
            + why + button("Draft SAR/STR"),
            inline=False,
        )
    )
    body = (
        f"<p>Account {case.account_id} · {esc(case.status.value)} · opened by "
        f"{esc(case.opened_by)}</p>{decisions}<h2>Alerts</h2>{alerts}<h2>Drafts</h2>{drafts}"
        f"<h2>Notes</h2>{notes}<h2>Documents</h2>{documents}<h2>History</h2>{history}"
    )
    return html_response(f"Case {case_id}", body, request)


async def case_investigate(request: web.Request) -> web.Response:
    case_id, posted = _case_id(request), await request.post()
    decision = _cases(request).start_investigation(
        session_of(request).identity, case_id, _field(posted, "reason")
    )
    return await _decide(request, f"/cases/{case_id}", "investigating", decision)


async def case_close(request: web.Request) -> web.Response:
    case_id, posted = _case_id(request), await request.post()
    decision = _cases(request).close_case_no_action(
        session_of(request).identity, case_id, _field(posted, "reason")
    )
    return await _decide(request, f"/cases/{case_id}", "closed", decision)


async def case_note(request: web.Request) -> web.Response:
    case_id, posted = _case_id(request), await request.post()
    decision = _cases(request).add_note(
        session_of(request).identity, case_id, str(posted.get("body", ""))
    )
    return await _decide(request, f"/cases/{case_id}", "note added", decision)


async def case_draft(request: web.Request) -> web.Response:
    case_id, posted = _case_id(request), await request.post()
    decision = _cases(request).draft_sar(
        session_of(request).identity,
        case_id,
        _field(posted, "jurisdiction"),
        str(posted.get("narrative", "")),
        _field(posted, "reason"),
    )
    return await _decide(request, f"/cases/{case_id}", "SAR drafted", decision)


async def case_document(request: web.Request) -> web.Response:
    case_id, posted = _case_id(request), await request.post()
    upload = posted.get("file")
    if not isinstance(upload, web.FileField):
        raise back(f"/cases/{case_id}", "refused: choose a file to attach")
    decision = _cases(request).add_document(
        session_of(request).identity,
        case_id,
        upload.filename,
        upload.content_type or "application/octet-stream",
        upload.file.read(),
    )
    return await _decide(request, f"/cases/{case_id}", "document attached", decision)


async def document_download(request: web.Request) -> web.Response:
    text = request.match_info["document_id"]
    if not text.isdigit():
        raise web.HTTPNotFound(text="no such document")
    try:
        content = await _cases(request).read_document(session_of(request).identity, int(text))
    except CaseError as exc:
        raise back("/cases", f"refused: {exc}") from None
    return web.Response(
        body=content,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="document-{text}"'},
    )


def _draft_id(request: web.Request) -> int:
    text = request.match_info["draft_id"]
    if not text.isdigit():
        raise web.HTTPNotFound(text="no such draft")
    return int(text)


async def _draft_case(request: web.Request, draft_id: int) -> str:
    try:
        return f"/cases/{(await _cases(request).get_draft(draft_id)).case_id}"
    except CaseError:
        return "/cases"


async def draft_approve(request: web.Request) -> web.Response:
    draft_id, posted = _draft_id(request), await request.post()
    to = await _draft_case(request, draft_id)
    decision = _cases(request).approve_sar(
        session_of(request).identity, draft_id, _field(posted, "reason")
    )
    return await _decide(request, to, "approved", decision)


async def draft_file(request: web.Request) -> web.Response:
    draft_id, posted = _draft_id(request), await request.post()
    to = await _draft_case(request, draft_id)
    decision = _cases(request).file_sar(
        session_of(request).identity,
        draft_id,
        _field(posted, "fiu_reference"),
        _field(posted, "reason"),
    )
    return await _decide(request, to, "marked filed", decision)


async def draft_reject(request: web.Request) -> web.Response:
    draft_id, posted = _draft_id(request), await request.post()
    to = await _draft_case(request, draft_id)
    decision = _cases(request).record_fiu_rejection(
        session_of(request).identity, draft_id, _field(posted, "reason")
    )
    return await _decide(request, to, "FIU rejection recorded", decision)


async def draft_xml(request: web.Request) -> web.Response:
    draft_id = _draft_id(request)
    try:
        xml = await _cases(request).export_sar_xml(
            session_of(request).identity, draft_id, dt.date.today()
        )
    except CaseError as exc:
        raise back(await _draft_case(request, draft_id), f"refused: {exc}") from None
    return web.Response(
        body=xml,
        content_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="sar-draft-{draft_id}.xml"'},
    )


async def deadlines_page(request: web.Request) -> web.Response:
    today = dt.date.today()
    queue = await _cases(request).deadline_queue(today, deadline_horizon_days)
    body = (
        f"<p>Drafts not yet filed, due by {today + dt.timedelta(days=deadline_horizon_days)}"
        " (every overdue one included).</p>"
        + table(
            ("draft", "case", "account", "jurisdiction", "status", "due", ""),
            ((str(d.draft_id), f'<a href="/cases/{d.case_id}">{d.case_id}</a>',
              str(d.account_id), esc(d.jurisdiction), esc(d.status.value),
              esc(d.due_on.isoformat()), "<span class=bad>OVERDUE</span>" if d.overdue else "")
             for d in queue),
        )
    )
    return html_response("SAR/STR deadlines", body, request)


# -- CUSTOMERS --


async def customers_page(request: web.Request) -> web.Response:
    store = _customers(request)
    pending = await store.kyc_pending(page_rows_max)
    due = (await store.reviews_due(dt.date.today()))[:page_rows_max]
    kyc = table(
        ("customer", "name", "account", "residence"),
        ((str(c.customer_id), esc(c.profile.display_name), str(c.profile.account_id or ""),
          esc(c.profile.residence_country)) for c in pending),
    )
    reviews = table(
        ("customer", "risk level", "review due"),
        ((str(r.customer_id), esc(r.risk_level or "never assessed"),
          esc(r.next_review_on.isoformat() if r.next_review_on else "now")) for r in due),
    )  # fmt: skip
    session = session_of(request)

    def close_form(requirement_id: int) -> str:
        return form(
            "/requirements/close",
            session,
            f'<input type=hidden name=requirement_id value="{requirement_id}">'
            "<input name=reason placeholder='what was done' required>" + button("Close"),
        )

    required = table(
        ("customer", "asked for", "by", "why", "alert", "since (UTC)", ""),
        ((str(r.customer_id), esc(r.kind.value), esc(r.opened_by), esc(r.reason),
          esc(r.alert_id), esc(f"{r.opened_at:%Y-%m-%d %H:%M}"), close_form(r.requirement_id))
         for r in await store.open_requirements(page_rows_max)),
    )  # fmt: skip
    body = (
        f"<h2>KYC pending</h2>{kyc}<h2>Risk reviews due</h2>{reviews}"
        f"<h2>Open requirements (enhanced monitoring, source of funds)</h2>{required}"
    )
    return html_response("KYC & reviews", body, request)


async def requirement_close(request: web.Request) -> web.Response:
    posted = await request.post()
    text = _field(posted, "requirement_id")
    if not text.isdigit():
        raise back("/customers", "refused: no such requirement")
    decision = _customers(request).close_requirement(
        int(text), session_of(request).identity.key_id, _field(posted, "reason")
    )
    return await _decide(request, "/customers", "requirement closed", decision)


# -- WIRING --


async def _figures(svc: Services) -> list[tuple[str, object, bool]]:
    cases: CaseService = svc.extra["cases"]
    customers: CustomerStore = svc.extra["customers"]
    by_severity: Counter[str] = Counter()
    for status in (AlertStatus.NEW, AlertStatus.ASSIGNED):
        by_severity.update(a.severity for a in await cases.list_alerts(status, None, page_rows_max))
    queue = await cases.deadline_queue(dt.date.today(), deadline_horizon_days)
    overdue = sum(1 for d in queue if d.overdue)
    open_cases = 0
    for case_status in (CaseStatus.OPEN, CaseStatus.INVESTIGATING, CaseStatus.SAR_DRAFTED):
        open_cases += len(await cases.list_cases(case_status, page_rows_max))
    return [
        ("open alerts: critical", by_severity["critical"], by_severity["critical"] > 0),
        ("open alerts: high", by_severity["high"], by_severity["high"] > 0),
        ("open alerts: medium and low", by_severity["medium"] + by_severity["low"], False),
        ("cases being worked", open_cases, False),
        ("SARs overdue", overdue, overdue > 0),
        (f"SARs due in {deadline_horizon_days} days", len(queue) - overdue, False),
        ("KYC pending", len(await customers.kyc_pending(page_rows_max)), False),
        ("risk reviews due", len(await customers.reviews_due(dt.date.today())), False),
    ]


def reporting_entity(args: argparse.Namespace) -> ReportingEntity:
    return ReportingEntity(
        rentity_id=args.rentity_id,
        person_first_name=args.mlro_first_name,
        person_last_name=args.mlro_last_name,
        person_email=args.mlro_email,
    )


async def panels_for(
    svc: Services, args: argparse.Namespace
) -> tuple[list[Panel], list[tuple[str, FigureProvider]]]:
    """Open the case service and the customer records (closers go to ``svc.extra``); their
    pages and overview figures."""
    async with await psycopg.AsyncConnection.connect(svc.database_url, autocommit=True) as conn:
        await ensure_schema(conn)
    closers = svc.extra.setdefault("closers", [])
    documents: DocumentStore
    if getattr(args, "records_dir", None) is not None:
        # Case documents as encrypted records, under the key ring of the records folder.
        async with await psycopg.AsyncConnection.connect(svc.database_url, autocommit=True) as conn:
            await ensure_records_schema(conn)
        key_ring = await asyncio.to_thread(open_key_ring, args.records_dir)
        records = await RecordStore.open(svc.database_url, key_ring)
        documents = RecordDocumentStore(records, args.jurisdiction)
        closers.append(records.close)
    else:
        plain = await PgDocumentStore.open(svc.database_url)
        documents = plain
        closers.append(plain.close)
    cases = await CaseService.open(svc.database_url, svc.audit, documents, reporting_entity(args))
    # The customer records publish what changes; the dashboard only reads them, so no publisher.
    customers = await CustomerStore.open(svc.database_url, svc.audit)
    svc.extra.update(cases=cases, customers=customers)
    closers.extend([cases.close, customers.close])
    return PANELS, FIGURES


PANELS: list[Panel] = [
    ("GET", "/alerts", alerts_page),
    ("POST", "/alerts/assign", alert_assign),
    ("POST", "/alerts/dismiss", alert_dismiss),
    ("POST", "/alerts/escalate", alert_escalate),
    ("GET", "/cases", cases_page),
    ("GET", "/cases/{case_id}", case_page),
    ("POST", "/cases/{case_id}/investigate", case_investigate),
    ("POST", "/cases/{case_id}/close", case_close),
    ("POST", "/cases/{case_id}/notes", case_note),
    ("POST", "/cases/{case_id}/drafts", case_draft),
    ("POST", "/cases/{case_id}/documents", case_document),
    ("GET", "/documents/{document_id}", document_download),
    ("POST", "/drafts/{draft_id}/approve", draft_approve),
    ("POST", "/drafts/{draft_id}/file", draft_file),
    ("POST", "/drafts/{draft_id}/reject", draft_reject),
    ("GET", "/drafts/{draft_id}.xml", draft_xml),
    ("GET", "/reports", deadlines_page),
    ("GET", "/customers", customers_page),
    ("POST", "/requirements/close", requirement_close),
]

FIGURES: list[tuple[str, FigureProvider]] = [("cases and customers", _figures)]

__all__ = ["FIGURES", "PANELS", "deadline_horizon_days", "panels_for", "reporting_entity"]
