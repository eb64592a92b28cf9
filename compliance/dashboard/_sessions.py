"""Signed-in officers: server-side sessions behind an opaque cookie, with a CSRF token each.

The cookie carries only a random session id (HttpOnly, SameSite=Strict, Secure under TLS); the
API key an officer signs in with is checked once and never stored or shown. Every form posts
the session's CSRF token, compared in constant time, so another site cannot act as the officer.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from compliance.dashboard._limits import session_idle_s_max, session_s_max, sessions_max
from gateway.auth import Identity

COOKIE = "clearline_session"


@dataclass
class Session:
    identity: Identity
    started_s: float
    seen_s: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class Sessions:
    """Live sessions by id; O(1) per lookup. Time is passed in, so tests control it."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def start(self, identity: Identity, now_s: float) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(identity, now_s, now_s)
        self._by_id[session_id] = session
        while len(self._by_id) > sessions_max:
            self._by_id.popitem(last=False)
        return session_id, session

    def get(self, session_id: str, now_s: float) -> Session | None:
        """The live session of an id, touched; None if unknown, idle too long or too old."""
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if now_s - session.seen_s > session_idle_s_max or now_s - session.started_s > session_s_max:
            del self._by_id[session_id]
            return None
        session.seen_s = now_s
        self._by_id.move_to_end(session_id)
        return session

    def end(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)


def csrf_ok(session: Session, token: str) -> bool:
    return hmac.compare_digest(session.csrf.encode(), token.encode())


__all__ = ["COOKIE", "Session", "Sessions", "csrf_ok"]
