"""The compliance officer's web dashboard (issue 5): alerts and cases, SAR deadlines, KYC
reviews, sanctions lists and the audit log, for keys of role COMPLIANCE_OFFICER or ADMIN.

``python -m compliance.dashboard`` serves it; `create_app` builds it for tests and embedding.
"""

from compliance.dashboard._app import DASHBOARD_ROLES, Panel, Services, create_app
from compliance.dashboard._limits import (
    form_bytes_max,
    page_rows_max,
    session_idle_s_max,
    session_s_max,
    sessions_max,
)

__all__ = [
    "DASHBOARD_ROLES",
    "Panel",
    "Services",
    "create_app",
    "form_bytes_max",
    "page_rows_max",
    "session_idle_s_max",
    "session_s_max",
    "sessions_max",
]
