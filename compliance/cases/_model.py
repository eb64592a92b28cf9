"""States, actions, transition tables, outcome codes and the views the service returns.

Every state change goes through `next_state`, a lookup in one of three tables; a pair that is
not in its table is an `IllegalTransition` naming the state and the action. The tables are the
whole of the workflow: read them, not the service, to know what may follow what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Any, TypeVar

_S = TypeVar("_S", bound=StrEnum)
_A = TypeVar("_A", bound=StrEnum)


class AlertStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"


class AlertAction(StrEnum):
    ASSIGN = "assign"
    DISMISS = "dismiss"
    ESCALATE = "escalate"


class CaseStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    CLOSED_NO_ACTION = "closed_no_action"
    SAR_DRAFTED = "sar_drafted"
    SAR_APPROVED = "sar_approved"
    SAR_FILED = "sar_filed"


class CaseAction(StrEnum):
    ADD_ALERT = "add_alert"
    START_INVESTIGATION = "start_investigation"
    CLOSE_NO_ACTION = "close_no_action"
    DRAFT_SAR = "draft_sar"
    APPROVE_SAR = "approve_sar"
    FILE_SAR = "file_sar"
    RECORD_FIU_REJECTION = "record_fiu_rejection"


class FilingStatus(StrEnum):
    """A SAR/STR draft's filing status."""

    DRAFT = "draft"
    APPROVED = "approved"
    FILED = "filed"
    REJECTED = "rejected"  # by the FIU; the case goes back to investigating


class DraftAction(StrEnum):
    APPROVE = "approve"
    FILE = "file"
    RECORD_FIU_REJECTION = "record_fiu_rejection"


class DismissReason(StrEnum):
    """Why an alert was dismissed: a code a regulator can count, plus the officer's free text."""

    FALSE_POSITIVE_NAME_MATCH = "false_positive_name_match"
    EXPECTED_ACTIVITY_DOCUMENTED = "expected_activity_documented"
    SOURCE_OF_FUNDS_VERIFIED = "source_of_funds_verified"
    COUNTERPARTY_VERIFIED = "counterparty_verified"
    DUPLICATE_OF_OTHER_ALERT = "duplicate_of_other_alert"
    RULE_MISFIRE = "rule_misfire"  # the rule fired on data it should not have: tune it


class ReportCode(StrEnum):
    """goAML's report code: a suspicious transaction or a suspicious activity report."""

    STR = "STR"
    SAR = "SAR"


# (state, action) -> next state. Re-assigning an assigned alert is allowed: a colleague takes over.
ALERT_TRANSITIONS: dict[tuple[AlertStatus, AlertAction], AlertStatus] = {
    (AlertStatus.NEW, AlertAction.ASSIGN): AlertStatus.ASSIGNED,
    (AlertStatus.ASSIGNED, AlertAction.ASSIGN): AlertStatus.ASSIGNED,
    (AlertStatus.ASSIGNED, AlertAction.DISMISS): AlertStatus.DISMISSED,
    (AlertStatus.ASSIGNED, AlertAction.ESCALATE): AlertStatus.ESCALATED,
}

# An FIU's rejection sends the case back to investigating: a new draft answers it.
CASE_TRANSITIONS: dict[tuple[CaseStatus, CaseAction], CaseStatus] = {
    (CaseStatus.OPEN, CaseAction.ADD_ALERT): CaseStatus.OPEN,
    (CaseStatus.INVESTIGATING, CaseAction.ADD_ALERT): CaseStatus.INVESTIGATING,
    (CaseStatus.OPEN, CaseAction.START_INVESTIGATION): CaseStatus.INVESTIGATING,
    (CaseStatus.INVESTIGATING, CaseAction.CLOSE_NO_ACTION): CaseStatus.CLOSED_NO_ACTION,
    (CaseStatus.INVESTIGATING, CaseAction.DRAFT_SAR): CaseStatus.SAR_DRAFTED,
    (CaseStatus.SAR_DRAFTED, CaseAction.APPROVE_SAR): CaseStatus.SAR_APPROVED,
    (CaseStatus.SAR_APPROVED, CaseAction.FILE_SAR): CaseStatus.SAR_FILED,
    (CaseStatus.SAR_FILED, CaseAction.RECORD_FIU_REJECTION): CaseStatus.INVESTIGATING,
}

DRAFT_TRANSITIONS: dict[tuple[FilingStatus, DraftAction], FilingStatus] = {
    (FilingStatus.DRAFT, DraftAction.APPROVE): FilingStatus.APPROVED,
    (FilingStatus.APPROVED, DraftAction.FILE): FilingStatus.FILED,
    (FilingStatus.FILED, DraftAction.RECORD_FIU_REJECTION): FilingStatus.REJECTED,
}


class CaseOutcome(IntEnum):
    """Why a decision was refused. Stable numbers: never renumber one, retire it.

    Compliance codes are 2xxx (design.md): 23xx are compliance.cases'.
    """

    ok = 0
    actor_must_be_compliance_officer = 2301
    transition_must_be_allowed = 2302
    alert_must_exist = 2303
    case_must_exist = 2304
    draft_must_exist = 2305
    document_must_exist = 2306
    reason_must_be_given = 2307
    input_must_be_valid = 2308
    approver_must_not_be_drafter = 2309
    alert_must_belong_to_case_customer = 2310
    jurisdiction_must_be_configured = 2311
    document_must_match_its_checksum = 2312


class CaseError(Exception):
    """A refused decision or a bad input: nothing was changed.

    Attributes
    ----------
    code : CaseOutcome
        Stable, machine-readable reason.
    """

    def __init__(self, code: CaseOutcome, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code


class IllegalTransition(CaseError):
    """An action its target's state does not allow (not in the transition table).

    Attributes
    ----------
    kind : str
        ``"alert"``, ``"case"`` or ``"draft"``.
    state : str
        The state the target is in.
    action : str
        The refused action.
    """

    def __init__(self, kind: str, state: str, action: str) -> None:
        super().__init__(
            CaseOutcome.transition_must_be_allowed,
            f"a {kind} in state {state!r} does not allow action {action!r}",
        )
        self.kind = kind
        self.state = state
        self.action = action


def next_state(kind: str, table: dict[tuple[_S, _A], _S], state: _S, action: _A) -> _S:
    """The state `action` leads to from `state`, by `table`; O(1).

    Raises
    ------
    IllegalTransition
        The pair is not in the table.
    """
    try:
        return table[(state, action)]
    except KeyError:
        raise IllegalTransition(kind, str(state), str(action)) from None


# -- VIEWS the service returns (plain data; the dashboard renders them) --


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One recorded decision or event: who, what, from which state to which, and why."""

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    reason_code: str | None
    reason_text: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: str
    rule_id: str
    account_id: int
    severity: str
    summary: str
    status: AlertStatus
    assignee: str | None
    case_id: int | None
    raised_ts_ns: int
    dismiss_reason: DismissReason | None
    payload: dict[str, Any]
    history: tuple[HistoryEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class NoteView:
    note_id: int
    author: str
    body: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DocumentView:
    document_id: int
    name: str
    media_type: str
    sha256_hex: str
    size_bytes: int
    added_by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DraftView:
    draft_id: int
    case_id: int
    report_code: ReportCode
    jurisdiction: str
    status: FilingStatus
    drafted_by: str
    approved_by: str | None
    narrative: str
    detected_on: date
    due_on: date
    fiu_reference: str | None
    history: tuple[HistoryEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class CaseView:
    case_id: int
    account_id: int
    status: CaseStatus
    opened_by: str
    opened_at: datetime
    alerts: tuple[AlertView, ...] = ()
    notes: tuple[NoteView, ...] = ()
    documents: tuple[DocumentView, ...] = ()
    drafts: tuple[DraftView, ...] = ()
    history: tuple[HistoryEntry, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class DeadlineItem:
    """A draft not yet filed, with its deadline; `overdue` when the deadline is before `as_of`."""

    draft_id: int
    case_id: int
    account_id: int
    jurisdiction: str
    status: FilingStatus
    due_on: date
    overdue: bool
