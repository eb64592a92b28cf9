"""HTML for the dashboard: one layout, escaped text, plain tables and forms.

Server-rendered, no script: the pages work in any browser and under a strict Content Security
Policy. Everything that came from data goes through `esc`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from compliance.dashboard._sessions import Session

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:10px 24px;display:flex;gap:20px;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header b{margin-right:12px}
main{padding:18px 24px;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 18px}
th,td{border-bottom:1px solid #e3e6ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #e3e6ea;
padding:10px 14px;min-width:150px}.card b{display:block;font-size:22px}
.bad{color:#b3261e;font-weight:600}.ok{color:#1e7b34;font-weight:600}
form.inline{display:inline}input,select,textarea,button{font:inherit}
.flash{background:#fff4d6;border:1px solid #e8c766;padding:6px 10px;margin-bottom:12px}
"""

NAV = (
    ("/", "Overview"),
    ("/alerts", "Alerts"),
    ("/cases", "Cases"),
    ("/reports", "SAR deadlines"),
    ("/customers", "KYC & reviews"),
    ("/lists", "Sanctions lists"),
    ("/audit", "Audit log"),
)


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, session: Session | None, flash: str = "") -> str:
    nav = ""
    if session is not None:
        links = " ".join(f'<a href="{href}">{esc(label)}</a>' for href, label in NAV)
        nav = (
            f"{links}<span style='margin-left:auto'>{esc(session.identity.key_id)} "
            f"({esc(session.identity.role.name.lower())})</span>"
            f"{form('/logout', session, button('Sign out'))}"
        )
    notice = f'<div class="flash">{esc(flash)}</div>' if flash else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)} · Clearline compliance</title><style>{_STYLE}</style></head>"
        f"<body><header><b>Clearline compliance</b>{nav}</header>"
        f"<main><h1>{esc(title)}</h1>{notice}{body}</main></body></html>"
    )


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()) -> str:
    """Cells are HTML already (escape data with `esc`); ``numeric`` columns align right."""
    right = set(numeric)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in right else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(header)}">none</td></tr>'
    return f"<table><tr>{head}</tr>{body}</table>"


def button(label: str) -> str:
    return f"<button type=submit>{esc(label)}</button>"


def form(
    action: str, session: Session, inner: str, *, inline: bool = True, multipart: bool = False
) -> str:
    """A POST form carrying the session's CSRF token (``multipart`` for file uploads)."""
    css = ' class="inline"' if inline else ""
    encoding = " enctype=multipart/form-data" if multipart else ""
    return (
        f'<form method=post action="{esc(action)}"{css}{encoding}>'
        f'<input type=hidden name=csrf value="{esc(session.csrf)}">{inner}</form>'
    )


def cards(items: Iterable[tuple[str, object, bool]]) -> str:
    """Figure cards: (label, value, alarming)."""
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b class="{"bad" if bad else ""}">{esc(value)}</b>'
            f"{esc(label)}</div>"
            for label, value, bad in items
        )
        + "</div>"
    )


__all__ = ["NAV", "button", "cards", "esc", "form", "page", "table"]
