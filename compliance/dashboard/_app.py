"""The compliance officer's web dashboard: an aiohttp application over the compliance stores.

Who may use it: API keys of role COMPLIANCE_OFFICER or ADMIN, signed in once per session
(`_sessions`). What it shows: the alert queue, cases and SAR deadlines, KYC reviews, the active
sanctions lists and the audit log. Every decision taken here (a sign-in, a list update, an alert
dismissed, a SAR approved) is recorded in the audit log with the officer's key id before the
page says it is done; a decision that cannot be recorded is not carried out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from aiohttp import web

from compliance.alerts import ComplianceAlert, Evidence
from compliance.dashboard._html import button, cards, esc, form, page, table
from compliance.dashboard._limits import form_bytes_max, page_rows_max
from compliance.dashboard._sessions import COOKIE, Session, Sessions, csrf_ok
from compliance.records import verify_chain
from compliance.screening import ActiveLists, ScreeningResult, source_counts
from engine._codes import Role
from gateway.auth import AuditLog, KeyStore
from ledger.alerts import Alert

log = logging.getLogger("clearline.compliance.dashboard")

DASHBOARD_ROLES = frozenset({Role.COMPLIANCE_OFFICER, Role.ADMIN})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Panels other modules add (cases, customers): (path, handler), registered at startup.
Panel = tuple[str, str, Handler]


@dataclass
class Services:
    """What the pages read and act on. ``lists`` is None when no sanctions lists are loaded."""

    database_url: str
    keys: KeyStore
    audit: AuditLog
    lists: ActiveLists | None = None
    lists_dir: Path | None = None
    secure_cookies: bool = False
    clock: Callable[[], float] = time.time
    extra: dict[str, Any] = field(default_factory=dict)  # other stores, by name
    # Raises an operational alert (`ledger.alerts.raise_alert` on NATS); None: logs only.
    alert: Callable[[Alert], Awaitable[None]] | None = None
    # Puts a compliance alert on the alerts stream, for the case queue; None: not published.
    publish_alert: Callable[[ComplianceAlert], Awaitable[None]] | None = None


SERVICES = web.AppKey("services", Services)
SESSIONS = web.AppKey("sessions", Sessions)
FigureProvider = Callable[[Services], Awaitable[list[tuple[str, object, bool]]]]
# The overview's figure cards, by panel: (name, provider).
OVERVIEW_FIGURES = web.AppKey("overview_figures", list[tuple[str, FigureProvider]])
SESSION = web.RequestKey("session", Session)

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_OPEN_PATHS = frozenset({"/login", "/healthz"})


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def session_of(request: web.Request) -> Session:
    return request[SESSION]


async def audit(request: web.Request, action: str, target: str | None, detail: dict[str, Any],
                outcome: str) -> None:  # fmt: skip
    """Record an officer's decision; raises (so the decision is not reported done) if it
    cannot be recorded."""
    await services(request).audit.record(
        session_of(request).identity.key_id, action, target, detail, outcome
    )


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers everywhere; a live session for every page but sign-in; the session's
    CSRF token on every POST."""
    try:
        if request.path not in _OPEN_PATHS:
            session = request.app[SESSIONS].get(
                request.cookies.get(COOKIE, ""), services(request).clock()
            )
            if session is None:
                raise web.HTTPSeeOther("/login")
            request[SESSION] = session
            if request.method == "POST":
                posted = await request.post()
                if not csrf_ok(session, str(posted.get("csrf", ""))):
                    raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong")
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(_HEADERS)
        raise
    response.headers.update(_HEADERS)
    return response


def html_response(title: str, body: str, request: web.Request, flash: str = "") -> web.Response:
    session = request.get(SESSION)
    return web.Response(
        text=page(title, body, session, flash or request.query.get("flash", "")),
        content_type="text/html",
    )


def back(path: str, flash: str) -> web.HTTPSeeOther:
    """Post/redirect/get, with a one-line message for the next page."""
    return web.HTTPSeeOther(f"{path}?{urlencode({'flash': flash})}")


# -- SIGN IN AND OUT --


async def login_page(request: web.Request) -> web.Response:
    body = (
        "<p>Sign in with an API key of a compliance officer or an administrator.</p>"
        '<form method=post action="/login"><input type=password name=api_key size=60 '
        'autocomplete=off required> <button type=submit>Sign in</button></form>'
    )
    return html_response("Sign in", body, request)


async def login(request: web.Request) -> web.Response:
    svc = services(request)
    posted = await request.post()
    identity = svc.keys.authenticate(str(posted.get("api_key", "")))
    if identity is None or identity.role not in DASHBOARD_ROLES:
        who = identity.key_id if identity is not None else "unknown"
        outcome = "permission_denied" if identity is not None else "unauthenticated"
        await svc.audit.record(who, "dashboard_sign_in", None, {}, outcome)
        body = "<p class=bad>That key is not accepted here.</p>" + (
            '<p><a href="/login">Try again</a></p>'
        )
        return web.Response(
            text=page("Sign in", body, None), content_type="text/html", status=403,
            headers=_HEADERS,
        )  # fmt: skip
    await svc.audit.record(identity.key_id, "dashboard_sign_in", None, {}, "ok")
    session_id, _ = request.app[SESSIONS].start(identity, svc.clock())
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        COOKIE, session_id, httponly=True, samesite="Strict", secure=svc.secure_cookies, path="/"
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    request.app[SESSIONS].end(request.cookies.get(COOKIE, ""))
    await audit(request, "dashboard_sign_out", None, {}, "ok")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


# -- OVERVIEW, AUDIT LOG, LISTS --


async def overview(request: web.Request) -> web.Response:
    svc = services(request)
    figures: list[tuple[str, object, bool]] = []
    for name, provider in request.app[OVERVIEW_FIGURES]:
        try:
            figures += await provider(svc)
        except Exception as exc:  # one broken panel must not take the page down
            log.exception("overview figures of %s", name)
            figures.append((f"{name}: unavailable ({type(exc).__name__})", "?", True))
    return html_response("Overview", cards(figures), request)


async def _audit_figures(svc: Services) -> list[tuple[str, object, bool]]:
    async with await psycopg.AsyncConnection.connect(svc.database_url) as conn:
        report = await verify_chain(conn)
    state = "intact" if report.first_break is None else f"BROKEN at {report.first_break.seq}"
    return [(f"audit log ({report.head_seq:,} entries)", state, report.first_break is not None)]


async def _list_figures(svc: Services) -> list[tuple[str, object, bool]]:
    if svc.lists is None:
        return [("sanctions lists", "not loaded", True)]
    version = svc.lists.version
    return [
        (f"sanctions list version ({len(version.entries):,} entries)", version.version_id[7:19],
         False)
    ]  # fmt: skip


async def audit_page(request: web.Request) -> web.Response:
    svc = services(request)
    async with await psycopg.AsyncConnection.connect(svc.database_url) as conn:
        report = await verify_chain(conn)
        cursor = await conn.execute(
            "SELECT id, at, actor, action, target, outcome, detail::text FROM audit_log"
            " ORDER BY id DESC LIMIT %s",
            (page_rows_max,),
        )
        rows = await cursor.fetchall()
    if report.first_break is None:
        state = (
            f"<p class=ok>Chain intact: {report.rows_checked:,} entries, head {report.head_seq} "
            f"<code>{report.head_hash.hex()}</code> (record it elsewhere as an anchor for "
            "<code>python -m compliance.records verify --anchor</code>).</p>"
        )
    else:
        brk = report.first_break
        state = (
            f"<p class=bad>Chain BROKEN at entry {brk.seq}: {esc(brk.reason)} — "
            f"{esc(brk.explanation)}</p>"
        )
    body = state + table(
        ("seq", "at (UTC)", "actor", "action", "target", "outcome", "detail"),
        (
            (str(seq), esc(f"{at:%Y-%m-%d %H:%M:%S}"), esc(actor), esc(action), esc(target),
             esc(outcome), f"<code>{esc(detail[:300])}</code>")
            for seq, at, actor, action, target, outcome, detail in rows
        ),
        numeric=(0,),
    )
    return html_response(f"Audit log (newest {page_rows_max})", body, request)


async def lists_page(request: web.Request) -> web.Response:
    svc = services(request)
    session = session_of(request)
    if svc.lists is None:
        return html_response("Sanctions lists", "<p class=bad>No lists are loaded.</p>", request)
    version = svc.lists.version
    counts = table(
        ("source", "count"),
        ((esc(k), f"{v:,}") for k, v in sorted(source_counts(version).items())),
        numeric=(1,),
    )
    async with await psycopg.AsyncConnection.connect(svc.database_url) as conn:
        cursor = await conn.execute(
            "SELECT at, actor, outcome, detail::text FROM audit_log"
            " WHERE action = 'screening_lists_update' ORDER BY id DESC LIMIT 20"
        )
        updates = await cursor.fetchall()
    history = table(
        ("at (UTC)", "by", "outcome", "detail"),
        (
            (esc(f"{at:%Y-%m-%d %H:%M:%S}"), esc(actor), esc(outcome), esc(detail[:400]))
            for at, actor, outcome, detail in updates
        ),
    )
    update = form(
        "/lists/update",
        session,
        f"<p>Load the lists in <code>{esc(svc.lists_dir)}</code>: a malformed, truncated or "
        "much smaller file is refused and the active version stays. "
        "<label><input type=checkbox name=accept_shrink value=1> I have checked a large "
        "delisting: accept a smaller list</label> " + button("Load lists"),
        inline=False,
    )
    body = (
        f"<p>Active version <code>{esc(version.version_id)}</code></p>{counts}"
        f"<h2>Load new lists</h2>{update}<h2>Recent updates</h2>{history}"
    )
    return html_response("Sanctions lists", body, request)


async def lists_update(request: web.Request) -> web.Response:
    svc = services(request)
    if svc.lists is None or svc.lists_dir is None:
        raise back("/lists", "no list folder is configured")
    accept = (await request.post()).get("accept_shrink") == "1"
    lists, folder = svc.lists, svc.lists_dir
    result = await asyncio.to_thread(lists.update, folder, accept_shrink=accept)
    detail = {
        "active_version_id": result.active_version_id,
        "candidate_version_id": result.candidate_version_id,
        "reason": result.reason,
        "counts": result.counts,
        "accept_shrink": accept,
    }
    await audit(request, "screening_lists_update", str(folder), detail, result.outcome)
    message = f"{result.outcome}: {result.reason or result.active_version_id}"
    customers = svc.extra.get("customers")
    if result.outcome == "activated" and customers is not None:
        officer = session_of(request).identity.key_id
        flagged = await customers.rescreen_all(lists.index, officer)
        for customer, screening in flagged:
            if svc.publish_alert is not None and customer.profile.account_id is not None:
                await svc.publish_alert(screening_alert(customer, screening))
        message += f"; every customer re-screened, {len(flagged)} newly flagged as sanctioned"
    if result.outcome == "refused" and svc.alert is not None:
        # Operational: screening goes on with the previous lists; someone must fix the files.
        await svc.alert(
            Alert(
                source="compliance.screening",
                kind="list_update_refused",
                severity="critical",
                summary=f"sanctions list update refused, previous version stays: {result.reason}",
                evidence=detail,
            )
        )
    raise back("/lists", message)


def screening_alert(customer: Any, screening: ScreeningResult) -> ComplianceAlert:
    """A new sanctions hit after a list update, for the case queue (one per customer and list
    version: the id says which, so a repeated update raises nothing new)."""
    best = screening.candidates[0]
    account_id = customer.profile.account_id
    return ComplianceAlert(
        alert_id=f"SCREENING:{account_id}:{screening.list_version_id}",
        rule_id="SCREENING",
        rule_version=screening.list_version_id,
        account_id=account_id,
        severity="critical",
        actions=("freeze", "report_immediately"),
        summary=(
            f"customer {customer.customer_id} now matches {best.source} {best.entry_id} "
            f"({best.primary_name[:80]}) at {best.score}"
        ),
        evidence=tuple(
            Evidence(
                source="screening",
                ref=f"{screening.list_version_id}/{c.entry_id}",
                detail={"score": str(c.score), "matched_name": c.matched_name[:200]},
            )
            for c in screening.candidates[:5]
        ),
        raised_ts_ns=time.time_ns(),
    )


def create_app(
    svc: Services,
    panels: Sequence[Panel] = (),
    figures: Sequence[tuple[str, FigureProvider]] = (),
) -> web.Application:
    """The dashboard application; ``panels`` add pages (method, path, handler) and
    ``figures`` the overview's cards."""
    app = web.Application(middlewares=[_guard], client_max_size=form_bytes_max)
    app[SERVICES] = svc
    app[SESSIONS] = Sessions()
    providers: list[tuple[str, FigureProvider]] = [
        ("audit log", _audit_figures),
        ("lists", _list_figures),
        *figures,
    ]
    app[OVERVIEW_FIGURES] = providers
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", overview)
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/lists", lists_page)
    app.router.add_post("/lists/update", lists_update)
    for method, path, handler in panels:
        app.router.add_route(method, path, handler)
    return app


__all__ = [
    "DASHBOARD_ROLES",
    "OVERVIEW_FIGURES",
    "FigureProvider",
    "Panel",
    "Services",
    "audit",
    "back",
    "create_app",
    "html_response",
    "services",
    "session_of",
]
