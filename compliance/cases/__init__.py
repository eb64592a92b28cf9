"""Alerts triage, cases and SAR/STR drafts (issue 5, deliverable 4).

Compliance alerts (`compliance.alerts.ComplianceAlert`) arrive on the compliance alerts stream;
`CasesConsumer` (``python -m compliance.cases``) stores each once. Officers triage them through
`CaseService`: assign, dismiss with a `DismissReason`, escalate into a case; investigate, close
or draft a SAR/STR, approve it (four eyes), file it, record an FIU's rejection. Every state
change is a lookup in a transition table (`ALERT_TRANSITIONS`, `CASE_TRANSITIONS`,
`DRAFT_TRANSITIONS`), recorded with its actor and reason, and sent to the audit sink. Drafts
export as goAML-style XML (`export_report`); their deadlines come from `FilingRule`s.
"""

from compliance.cases._consumer import CONSUMER, CasesConsumer
from compliance.cases._deadlines import (
    DEFAULT_FILING_RULES,
    FilingRule,
    detection_date,
    without_delay_days,
)
from compliance.cases._documents import DocumentStore, PgDocumentStore, RecordDocumentStore
from compliance.cases._goaml import (
    ReportContent,
    ReportingEntity,
    ReportTransaction,
    export_report,
    xml_text,
)
from compliance.cases._ingest import store_alerts
from compliance.cases._limits import (
    document_bytes_max,
    fetch_messages_max,
    list_rows_max,
    name_chars_max,
    narrative_chars_max,
    note_chars_max,
    reason_chars_max,
)
from compliance.cases._model import (
    ALERT_TRANSITIONS,
    CASE_TRANSITIONS,
    DRAFT_TRANSITIONS,
    AlertAction,
    AlertStatus,
    AlertView,
    CaseAction,
    CaseError,
    CaseOutcome,
    CaseStatus,
    CaseView,
    DeadlineItem,
    DismissReason,
    DocumentView,
    DraftAction,
    DraftView,
    FilingStatus,
    HistoryEntry,
    IllegalTransition,
    NoteView,
    ReportCode,
    next_state,
)
from compliance.cases._schema import ensure_schema
from compliance.cases._service import (
    AUTOMATIC,
    DECIDING_ROLES,
    SAR_ACTIONS,
    AuditSink,
    CaseService,
    report_content,
)

__all__ = [
    "ALERT_TRANSITIONS",
    "AUTOMATIC",
    "CASE_TRANSITIONS",
    "CONSUMER",
    "DECIDING_ROLES",
    "DEFAULT_FILING_RULES",
    "DRAFT_TRANSITIONS",
    "SAR_ACTIONS",
    "AlertAction",
    "AlertStatus",
    "AlertView",
    "AuditSink",
    "CaseAction",
    "CaseError",
    "CaseOutcome",
    "CaseService",
    "CaseStatus",
    "CaseView",
    "CasesConsumer",
    "DeadlineItem",
    "DismissReason",
    "DocumentStore",
    "DocumentView",
    "DraftAction",
    "DraftView",
    "FilingRule",
    "FilingStatus",
    "HistoryEntry",
    "IllegalTransition",
    "NoteView",
    "PgDocumentStore",
    "RecordDocumentStore",
    "ReportCode",
    "ReportContent",
    "ReportTransaction",
    "ReportingEntity",
    "detection_date",
    "document_bytes_max",
    "ensure_schema",
    "export_report",
    "fetch_messages_max",
    "list_rows_max",
    "name_chars_max",
    "narrative_chars_max",
    "next_state",
    "note_chars_max",
    "reason_chars_max",
    "report_content",
    "store_alerts",
    "without_delay_days",
    "xml_text",
]
