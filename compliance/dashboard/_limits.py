"""Every limit of the dashboard, each with the reason for its value."""

from __future__ import annotations

# A signed-in officer who leaves the screen is signed out after this long without a request:
# the pages show personal data and suspicious-activity reports.
session_idle_s_max = 30 * 60
# However active, a session ends after a working day; the officer signs in again.
session_s_max = 10 * 60 * 60
# Sessions held at once: far above a compliance team, bounded so a flood of logins cannot grow
# memory without end (the oldest go first).
sessions_max = 1_000
# Rows on one listing page: enough to triage, small enough to render at once.
page_rows_max = 200
# Request bodies larger than this are refused: a case document (compliance.cases'
# document_bytes_max, 16 MiB) and its form fields; every other form is far smaller.
form_bytes_max = 16 * 1024 * 1024 + 64 * 1024
