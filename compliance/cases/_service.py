"""The cases service: triage decisions, cases, SAR/STR drafts and the queries the dashboard calls.

Every decision follows one path (`_decide`): the officer's role is checked, the input is
checked, then in one PostgreSQL transaction the target is locked, its next state looked up in
its transition table (`compliance.cases._model`), the change and its history row (actor and
reason) written, and the audit sink called; the transaction commits only if the audit row was
written, since an action that cannot be recorded must not happen. A refused decision changes
nothing and is audited with its outcome code as the outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from compliance.alerts import ComplianceAlert
from compliance.cases._deadlines import (
    DEFAULT_FILING_RULES,
    FilingRule,
    detection_date,
    event_datetime,
)
from compliance.cases._documents import DocumentStore
from compliance.cases._goaml import (
    ReportContent,
    ReportingEntity,
    ReportTransaction,
    export_report,
)
from compliance.cases._ingest import store_alerts
from compliance.cases._limits import (
    document_bytes_max,
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
    NoteView,
    ReportCode,
    next_state,
)
from engine._codes import Role
from gateway.auth import Identity

log = logging.getLogger("clearline.compliance.cases")

# The roles that may decide: compliance officers only (not admins: an admin runs the system,
# a compliance decision needs the training and the accountability of the function).
DECIDING_ROLES = frozenset({Role.COMPLIANCE_OFFICER})
# Rule actions that ask for a suspicious activity report: the service drafts one itself.
SAR_ACTIONS = frozenset({"block_and_sar", "report_immediately"})
# Who the service's own steps are recorded as. It decides through the officers' path (so every
# rule and record applies), but it is no officer: an officer approves what it drafted.
AUTOMATIC = Identity(key_id="compliance.cases:auto", account_id=0, role=Role.COMPLIANCE_OFFICER)
# Control characters other than tab and newline, lone surrogates and U+FFFE/U+FFFF: PostgreSQL
# refuses NUL and surrogates, XML the rest, and none belongs in an officer's sentence.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_SEVERITY_RANK = (
    "CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END"
)
_T = TypeVar("_T")


class AuditSink(Protocol):
    """Where decisions are recorded: `gateway.auth.AuditLog` has this call."""

    async def record(
        self, actor: str, action: str, target: str, detail: Mapping[str, Any], outcome: str
    ) -> Any: ...


def _text(name: str, value: object, chars_max: int, *, required: bool = True) -> str:
    """A checked text input: line ends as LF, no control characters, within its limit."""
    if not isinstance(value, str):
        raise CaseError(CaseOutcome.input_must_be_valid, f"{name} must be text")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL.search(value):
        raise CaseError(
            CaseOutcome.input_must_be_valid,
            f"{name} must not contain control characters or non-characters",
        )
    if len(value) > chars_max:
        raise CaseError(
            CaseOutcome.input_must_be_valid, f"{name} is {len(value)} characters; max {chars_max}"
        )
    if required and not value.strip():
        empty = CaseOutcome.reason_must_be_given if name == "reason" else None
        raise CaseError(empty or CaseOutcome.input_must_be_valid, f"{name} must not be empty")
    return value


def _id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise CaseError(CaseOutcome.input_must_be_valid, f"{name} must be a positive integer")
    return value


def _history(row: tuple[Any, ...]) -> HistoryEntry:
    at, actor, action, from_status, to_status, reason_code, reason_text, detail = row
    return HistoryEntry(at, actor, action, from_status, to_status, reason_code, reason_text, detail)


class CaseService:
    """Alerts, cases and SAR/STR drafts in PostgreSQL, with every decision audited.

    One connection, one operation at a time (a lock): decisions are rare, and serialising them
    makes each a single consistent step. Open with `CaseService.open`; `close` when done.

    Parameters
    ----------
    conn : psycopg.AsyncConnection
        Autocommit connection to a database where `ensure_schema` has run.
    audit : AuditSink
        Receives one ``record`` per decision, refused ones included.
    documents : DocumentStore
        Keeps document bytes.
    entity : ReportingEntity
        The exchange as the FIU knows it (goAML export).
    filing_rules : mapping of str to FilingRule
        Per jurisdiction: report code, deadline, local currency.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        audit: AuditSink,
        documents: DocumentStore,
        entity: ReportingEntity,
        filing_rules: Mapping[str, FilingRule] = DEFAULT_FILING_RULES,
    ) -> None:
        self._conn = conn
        self._audit = audit
        self._documents = documents
        self._entity = entity
        self._rules = dict(filing_rules)
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        database_url: str,
        audit: AuditSink,
        documents: DocumentStore,
        entity: ReportingEntity,
        filing_rules: Mapping[str, FilingRule] = DEFAULT_FILING_RULES,
    ) -> CaseService:
        """Connect to PostgreSQL (the schema must exist: `ensure_schema`)."""
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        return cls(conn, audit, documents, entity, filing_rules)

    async def close(self) -> None:
        await self._conn.close()

    # -- the one path of every decision --

    async def _decide(
        self,
        officer: Identity,
        action: str,
        target: str,
        detail: dict[str, Any],
        body: Callable[[], Awaitable[_T]],
    ) -> _T:
        """Check the role, run `body` in a transaction, audit; audit a refusal and re-raise."""
        try:
            if officer.role not in DECIDING_ROLES:
                raise CaseError(
                    CaseOutcome.actor_must_be_compliance_officer,
                    f"{officer.key_id} has role {officer.role.name}; deciding needs"
                    " COMPLIANCE_OFFICER",
                )
            async with self._lock, self._conn.transaction():
                result = await body()
                await self._audit.record(officer.key_id, action, target, detail, "ok")
            return result
        except CaseError as exc:
            try:
                await self._audit.record(
                    officer.key_id,
                    action,
                    target,
                    {**detail, "error": str(exc)[:500]},
                    exc.code.name,
                )
            except Exception:  # the refusal stands even if its audit row could not be written
                log.exception("could not audit a refused %s on %s", action, target)
            raise

    async def _write_history(
        self,
        target: str,
        action: str,
        from_status: str | None,
        to_status: str | None,
        actor: str,
        reason_text: str,
        reason_code: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await self._conn.execute(
            "INSERT INTO cases.history (target, action, from_status, to_status, actor,"
            " reason_code, reason_text, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                target,
                action,
                from_status,
                to_status,
                actor,
                reason_code,
                reason_text,
                Jsonb(dict(detail or {})),
            ),
        )

    async def _lock_alert(self, alert_id: str) -> tuple[AlertStatus, int]:
        cursor = await self._conn.execute(
            "SELECT status, account_id FROM cases.alerts WHERE alert_id = %s FOR UPDATE",
            (alert_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise CaseError(CaseOutcome.alert_must_exist, f"no alert {alert_id!r}")
        return AlertStatus(row[0]), row[1]

    async def _lock_case(self, case_id: int) -> tuple[CaseStatus, int]:
        cursor = await self._conn.execute(
            "SELECT status, account_id FROM cases.cases WHERE case_id = %s FOR UPDATE",
            (case_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise CaseError(CaseOutcome.case_must_exist, f"no case {case_id}")
        return CaseStatus(row[0]), row[1]

    async def _move_case(
        self, case_id: int, action: CaseAction, actor: str, reason: str, **detail: Any
    ) -> CaseStatus:
        state, _ = await self._lock_case(case_id)
        new = next_state("case", CASE_TRANSITIONS, state, action)
        await self._conn.execute(
            "UPDATE cases.cases SET status = %s WHERE case_id = %s", (new.value, case_id)
        )
        await self._write_history(
            f"case:{case_id}", action.value, state.value, new.value, actor, reason, detail=detail
        )
        return new

    # -- ALERTS --

    async def ingest(self, alerts: list[ComplianceAlert]) -> list[str]:
        """Store alerts (as the consumer does); return the ids that were new."""
        async with self._lock:
            return await store_alerts(self._conn, alerts)

    async def assign_alert(
        self, officer: Identity, alert_id: str, assignee: str, reason: str
    ) -> None:
        """Assign (or re-assign) an alert to `assignee` for triage.

        Raises
        ------
        CaseError
            Not a compliance officer, unknown alert, empty reason or assignee, bad text.
        IllegalTransition
            The alert is dismissed or escalated already.
        """
        detail = {"alert_id": str(alert_id)[:name_chars_max], "assignee": str(assignee)[:200]}

        async def body() -> None:
            who = _text("assignee", assignee, name_chars_max)
            why = _text("reason", reason, reason_chars_max)
            state, _ = await self._lock_alert(alert_id)
            new = next_state("alert", ALERT_TRANSITIONS, state, AlertAction.ASSIGN)
            await self._conn.execute(
                "UPDATE cases.alerts SET status = %s, assignee = %s WHERE alert_id = %s",
                (new.value, who, alert_id),
            )
            await self._write_history(
                f"alert:{alert_id}",
                "assign",
                state.value,
                new.value,
                officer.key_id,
                why,
                detail={"assignee": who},
            )

        await self._decide(officer, "assign_alert", f"alert:{alert_id}"[:200], detail, body)

    async def dismiss_alert(
        self, officer: Identity, alert_id: str, reason_code: DismissReason | str, reason: str
    ) -> None:
        """Dismiss an assigned alert with a reason code and the officer's explanation.

        Raises
        ------
        CaseError
            Unknown reason code, empty reason, unknown alert, not an officer.
        IllegalTransition
            The alert is not assigned.
        """
        detail = {"reason_code": str(reason_code)[:name_chars_max]}
        target = f"alert:{alert_id}"[:200]

        async def body() -> None:
            try:
                code = DismissReason(reason_code)
            except ValueError:
                known = ", ".join(r.value for r in DismissReason)
                raise CaseError(
                    CaseOutcome.reason_must_be_given,
                    f"unknown dismissal reason {reason_code!r}; one of: {known}",
                ) from None
            why = _text("reason", reason, reason_chars_max)
            state, _ = await self._lock_alert(alert_id)
            new = next_state("alert", ALERT_TRANSITIONS, state, AlertAction.DISMISS)
            await self._conn.execute(
                "UPDATE cases.alerts SET status = %s, dismiss_reason = %s WHERE alert_id = %s",
                (new.value, code.value, alert_id),
            )
            await self._write_history(
                target, "dismiss", state.value, new.value, officer.key_id, why, code.value
            )

        await self._decide(officer, "dismiss_alert", target, detail, body)

    async def escalate_alert(
        self, officer: Identity, alert_id: str, reason: str, case_id: int | None = None
    ) -> int:
        """Escalate an assigned alert into a new case, or into `case_id` (open or
        investigating, same customer). Returns the case id.

        Raises
        ------
        CaseError
            Unknown alert or case, a case of another customer, empty reason, not an officer.
        IllegalTransition
            The alert is not assigned, or the case no longer takes alerts.
        """
        target = f"alert:{alert_id}"[:200]
        detail: dict[str, Any] = {"case_id": case_id if isinstance(case_id, int) else None}

        async def body() -> int:
            why = _text("reason", reason, reason_chars_max)
            state, account_id = await self._lock_alert(alert_id)
            new = next_state("alert", ALERT_TRANSITIONS, state, AlertAction.ESCALATE)
            if case_id is None:
                cursor = await self._conn.execute(
                    "INSERT INTO cases.cases (account_id, opened_by) VALUES (%s, %s)"
                    " RETURNING case_id",
                    (account_id, officer.key_id),
                )
                row = await cursor.fetchone()
                assert row is not None
                chosen = int(row[0])
                await self._write_history(
                    f"case:{chosen}",
                    "open",
                    None,
                    CaseStatus.OPEN.value,
                    officer.key_id,
                    why,
                    detail={"alert_id": alert_id},
                )
            else:
                chosen = _id("case_id", case_id)
                _, case_account = await self._lock_case(chosen)
                if case_account != account_id:
                    raise CaseError(
                        CaseOutcome.alert_must_belong_to_case_customer,
                        f"alert {alert_id!r} is about account {account_id}; case {chosen} is"
                        f" about account {case_account}",
                    )
                await self._move_case(
                    chosen, CaseAction.ADD_ALERT, officer.key_id, why, alert_id=alert_id
                )
            await self._conn.execute(
                "UPDATE cases.alerts SET status = %s, case_id = %s WHERE alert_id = %s",
                (new.value, chosen, alert_id),
            )
            await self._write_history(
                target,
                "escalate",
                state.value,
                new.value,
                officer.key_id,
                why,
                detail={"case_id": chosen},
            )
            detail["case_id"] = chosen
            return chosen

        return await self._decide(officer, "escalate_alert", target, detail, body)

    async def draft_for_alert(self, alert: ComplianceAlert, jurisdiction: str) -> int | None:
        """Open a case and draft a SAR/STR for an alert whose rule asks for one (`SAR_ACTIONS`).

        Done as `AUTOMATIC`, step by step through the same decisions an officer takes (assign,
        escalate, investigate, draft), each in the history and the audit log; resumable, so an
        alert delivered again after a failure picks up where it stopped, and one already drafted
        is left alone. The draft still needs an officer's approval (never the drafter's: four
        eyes) before it is filed. Returns the case id, or None when the rule asks for no SAR.
        """
        if not SAR_ACTIONS.intersection(alert.actions):
            return None
        why = f"{alert.rule_id} asks for a SAR"
        view = await self.get_alert(alert.alert_id)
        if view.status is AlertStatus.NEW:
            await self.assign_alert(AUTOMATIC, alert.alert_id, AUTOMATIC.key_id, why)
            view = await self.get_alert(alert.alert_id)
        if view.status is AlertStatus.ASSIGNED and view.assignee == AUTOMATIC.key_id:
            await self.escalate_alert(AUTOMATIC, alert.alert_id, why)
            view = await self.get_alert(alert.alert_id)
        if view.case_id is None:
            return None  # an officer took the alert over (dismissed it, or holds it)
        case = await self.get_case(view.case_id)
        if case.status is CaseStatus.OPEN:
            await self.start_investigation(AUTOMATIC, case.case_id, why)
            case = await self.get_case(case.case_id)
        if case.status is CaseStatus.INVESTIGATING and not case.drafts:
            evidence = "; ".join(
                f"{e.source} {e.ref}: " + ", ".join(f"{k}={v}" for k, v in e.detail.items())
                for e in alert.evidence
            )
            narrative = (
                f"Drafted automatically from alert {alert.alert_id} ({alert.rule_id}, "
                f"{alert.severity}): {alert.summary}. Evidence: {evidence or 'none recorded'}. "
                "An officer must review and complete this narrative before approving it."
            )
            await self.draft_sar(
                AUTOMATIC, case.case_id, jurisdiction, narrative[:narrative_chars_max], why
            )
        return case.case_id

    async def get_alert(self, alert_id: str) -> AlertView:
        """One alert with its payload and history.

        Raises
        ------
        CaseError
            ``alert_must_exist``.
        """
        async with self._lock:
            views = await self._alerts("alert_id = %s", (alert_id,), with_history=True)
        if not views:
            raise CaseError(CaseOutcome.alert_must_exist, f"no alert {alert_id!r}")
        return views[0]

    async def list_alerts(
        self,
        status: AlertStatus | str | None = None,
        severity: str | None = None,
        limit: int = 100,
    ) -> list[AlertView]:
        """Alerts by status and/or severity, most severe then most recent first (no history).

        Raises
        ------
        CaseError
            An unknown status or severity, or `limit` outside 1..`list_rows_max`.
        """
        where, params = ["true"], []
        if status is not None:
            try:
                params.append(AlertStatus(status).value)
            except ValueError:
                raise CaseError(
                    CaseOutcome.input_must_be_valid, f"unknown alert status {status!r}"
                ) from None
            where.append("status = %s")
        if severity is not None:
            if severity not in ("low", "medium", "high", "critical"):
                raise CaseError(CaseOutcome.input_must_be_valid, f"unknown severity {severity!r}")
            where.append("severity = %s")
            params.append(severity)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= list_rows_max:
            raise CaseError(CaseOutcome.input_must_be_valid, f"limit must be 1..{list_rows_max}")
        async with self._lock:
            return await self._alerts(
                " AND ".join(where)
                + f" ORDER BY {_SEVERITY_RANK} DESC, raised_ts_ns DESC, alert_id LIMIT {limit}",
                tuple(params),
            )

    async def _alerts(
        self, where: str, params: tuple[Any, ...], *, with_history: bool = False
    ) -> list[AlertView]:
        cursor = await self._conn.execute(
            "SELECT alert_id, rule_id, account_id, severity, summary, status, assignee, case_id,"
            f" raised_ts_ns, dismiss_reason, payload FROM cases.alerts WHERE {where}",
            params,
        )
        views = []
        for row in await cursor.fetchall():
            history = await self._history_of(f"alert:{row[0]}") if with_history else ()
            views.append(
                AlertView(
                    alert_id=row[0],
                    rule_id=row[1],
                    account_id=row[2],
                    severity=row[3],
                    summary=row[4],
                    status=AlertStatus(row[5]),
                    assignee=row[6],
                    case_id=row[7],
                    raised_ts_ns=row[8],
                    dismiss_reason=None if row[9] is None else DismissReason(row[9]),
                    payload=row[10],
                    history=history,
                )
            )
        return views

    async def _history_of(self, target: str) -> tuple[HistoryEntry, ...]:
        cursor = await self._conn.execute(
            "SELECT at, actor, action, from_status, to_status, reason_code, reason_text, detail"
            " FROM cases.history WHERE target = %s ORDER BY id",
            (target,),
        )
        return tuple(_history(row) for row in await cursor.fetchall())

    # -- CASES --

    async def start_investigation(self, officer: Identity, case_id: int, reason: str) -> None:
        """Move an open case to investigating."""
        await self._case_decision(officer, case_id, CaseAction.START_INVESTIGATION, reason)

    async def close_case_no_action(self, officer: Identity, case_id: int, reason: str) -> None:
        """Close an investigated case with no report: the reason says why nothing is owed."""
        await self._case_decision(officer, case_id, CaseAction.CLOSE_NO_ACTION, reason)

    async def _case_decision(
        self, officer: Identity, case_id: int, action: CaseAction, reason: str
    ) -> None:
        target = f"case:{case_id}"[:200]

        async def body() -> None:
            why = _text("reason", reason, reason_chars_max)
            await self._move_case(_id("case_id", case_id), action, officer.key_id, why)

        await self._decide(officer, action.value, target, {}, body)

    async def add_note(self, officer: Identity, case_id: int, body_text: str) -> int:
        """Add a note to a case (any state: findings may come after closing). Returns its id."""
        target = f"case:{case_id}"[:200]

        async def body() -> int:
            text = _text("note", body_text, note_chars_max)
            await self._lock_case(_id("case_id", case_id))
            cursor = await self._conn.execute(
                "INSERT INTO cases.notes (case_id, author, body) VALUES (%s, %s, %s)"
                " RETURNING note_id",
                (case_id, officer.key_id, text),
            )
            row = await cursor.fetchone()
            assert row is not None
            await self._write_history(
                target, "add_note", None, None, officer.key_id, "", detail={"note_id": row[0]}
            )
            return int(row[0])

        return await self._decide(officer, "add_note", target, {}, body)

    async def add_document(
        self, officer: Identity, case_id: int, name: str, media_type: str, content: bytes
    ) -> DocumentView:
        """Attach a document to a case; its SHA-256 and size are kept with the case.

        Raises
        ------
        CaseError
            Unknown case, empty name, content not bytes or over `document_bytes_max`.
        """
        target = f"case:{case_id}"[:200]
        detail: dict[str, Any] = {"name": str(name)[:name_chars_max]}

        async def body() -> DocumentView:
            label = _text("name", name, name_chars_max)
            kind = _text("media_type", media_type, name_chars_max)
            if not isinstance(content, bytes):
                raise CaseError(CaseOutcome.input_must_be_valid, "content must be bytes")
            if len(content) > document_bytes_max:
                raise CaseError(
                    CaseOutcome.input_must_be_valid,
                    f"document is {len(content)} bytes; max {document_bytes_max}",
                )
            await self._lock_case(_id("case_id", case_id))
            digest = hashlib.sha256(content).digest()
            # Content-addressed and idempotent: bytes stored for a transaction that then rolls
            # back are an orphan, never a wrong document.
            ref = await self._documents.put(content)
            cursor = await self._conn.execute(
                "INSERT INTO cases.documents (case_id, name, media_type, sha256, size_bytes,"
                " storage_ref, added_by) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " RETURNING document_id, at",
                (case_id, label, kind, digest, len(content), ref, officer.key_id),
            )
            row = await cursor.fetchone()
            assert row is not None
            detail.update(sha256=digest.hex(), size_bytes=len(content), document_id=row[0])
            await self._write_history(
                target, "add_document", None, None, officer.key_id, "", detail=detail
            )
            return DocumentView(
                row[0], label, kind, digest.hex(), len(content), officer.key_id, row[1]
            )

        return await self._decide(officer, "add_document", target, detail, body)

    async def read_document(self, officer: Identity, document_id: int) -> bytes:
        """A document's bytes, checked against the SHA-256 and size the case recorded.

        Raises
        ------
        CaseError
            ``document_must_exist``, or ``document_must_match_its_checksum`` when the store
            returns other bytes than were added.
        """
        target = f"document:{document_id}"[:200]

        async def body() -> bytes:
            cursor = await self._conn.execute(
                "SELECT sha256, size_bytes, storage_ref FROM cases.documents"
                " WHERE document_id = %s",
                (_id("document_id", document_id),),
            )
            row = await cursor.fetchone()
            if row is None:
                raise CaseError(CaseOutcome.document_must_exist, f"no document {document_id}")
            content = await self._documents.get(row[2])
            if (
                content is None
                or len(content) != row[1]
                or hashlib.sha256(content).digest() != bytes(row[0])
            ):
                raise CaseError(
                    CaseOutcome.document_must_match_its_checksum,
                    f"document {document_id}'s stored bytes are missing or altered",
                )
            return content

        return await self._decide(officer, "read_document", target, {}, body)

    async def list_cases(
        self, status: CaseStatus | str | None = None, limit: int = 100
    ) -> list[CaseView]:
        """Cases, newest first, optionally of one status (no alerts, notes or history).

        Raises
        ------
        CaseError
            ``input_must_be_valid``: an unknown status or a limit out of range.
        """
        try:
            chosen = None if status is None else CaseStatus(status)
        except ValueError:
            raise CaseError(CaseOutcome.input_must_be_valid, f"no case status {status!r}") from None
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= list_rows_max:
            raise CaseError(CaseOutcome.input_must_be_valid, f"limit must be 1..{list_rows_max}")
        where = "" if chosen is None else " WHERE status = %s"
        params: tuple[Any, ...] = () if chosen is None else (chosen.value,)
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT case_id, account_id, status, opened_by, opened_at FROM cases.cases"
                f"{where} ORDER BY case_id DESC LIMIT %s",
                (*params, limit),
            )
            rows = await cursor.fetchall()
        return [
            CaseView(case_id, account_id, CaseStatus(status_), opened_by, opened_at)
            for case_id, account_id, status_, opened_by, opened_at in rows
        ]

    async def get_case(self, case_id: int) -> CaseView:
        """A case with its alerts, notes, documents, drafts and history.

        Raises
        ------
        CaseError
            ``case_must_exist``.
        """
        chosen = _id("case_id", case_id)
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT account_id, status, opened_by, opened_at FROM cases.cases"
                " WHERE case_id = %s",
                (chosen,),
            )
            row = await cursor.fetchone()
            if row is None:
                raise CaseError(CaseOutcome.case_must_exist, f"no case {chosen}")
            alerts = await self._alerts(
                "case_id = %s ORDER BY raised_ts_ns, alert_id", (chosen,), with_history=True
            )
            cursor = await self._conn.execute(
                "SELECT note_id, author, body, at FROM cases.notes WHERE case_id = %s"
                " ORDER BY note_id",
                (chosen,),
            )
            notes = tuple(NoteView(*r) for r in await cursor.fetchall())
            cursor = await self._conn.execute(
                "SELECT document_id, name, media_type, sha256, size_bytes, added_by, at"
                " FROM cases.documents WHERE case_id = %s ORDER BY document_id",
                (chosen,),
            )
            documents = tuple(
                DocumentView(r[0], r[1], r[2], bytes(r[3]).hex(), r[4], r[5], r[6])
                for r in await cursor.fetchall()
            )
            drafts = tuple(await self._drafts("case_id = %s ORDER BY draft_id", (chosen,)))
            history = await self._history_of(f"case:{chosen}")
        return CaseView(
            case_id=chosen,
            account_id=row[0],
            status=CaseStatus(row[1]),
            opened_by=row[2],
            opened_at=row[3],
            alerts=tuple(alerts),
            notes=notes,
            documents=documents,
            drafts=drafts,
            history=history,
        )

    # -- SAR/STR DRAFTS --

    async def draft_sar(
        self, officer: Identity, case_id: int, jurisdiction: str, narrative: str, reason: str
    ) -> DraftView:
        """Draft a SAR/STR for an investigated case; its deadline runs from the earliest alert.

        Raises
        ------
        CaseError
            Unknown case or jurisdiction, empty narrative or reason, not an officer.
        IllegalTransition
            The case is not being investigated.
        """
        target = f"case:{case_id}"[:200]
        detail: dict[str, Any] = {"jurisdiction": str(jurisdiction)[:name_chars_max]}

        async def body() -> DraftView:
            rule = self._rules.get(jurisdiction) if isinstance(jurisdiction, str) else None
            if rule is None:
                raise CaseError(
                    CaseOutcome.jurisdiction_must_be_configured,
                    f"no filing rule for jurisdiction {jurisdiction!r};"
                    f" configured: {', '.join(sorted(self._rules))}",
                )
            text = _text("narrative", narrative, narrative_chars_max)
            why = _text("reason", reason, reason_chars_max)
            chosen = _id("case_id", case_id)
            await self._move_case(chosen, CaseAction.DRAFT_SAR, officer.key_id, why)
            cursor = await self._conn.execute(
                "SELECT min(raised_ts_ns) FROM cases.alerts WHERE case_id = %s", (chosen,)
            )
            row = await cursor.fetchone()
            assert row is not None and row[0] is not None  # a case is opened by an alert
            detected_on = detection_date(row[0])
            due_on = rule.due_on(detected_on)
            cursor = await self._conn.execute(
                "INSERT INTO cases.drafts (case_id, report_code, jurisdiction, drafted_by,"
                " narrative, detected_on, due_on) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " RETURNING draft_id",
                (
                    chosen,
                    rule.report_code.value,
                    rule.jurisdiction,
                    officer.key_id,
                    text,
                    detected_on,
                    due_on,
                ),
            )
            row = await cursor.fetchone()
            assert row is not None
            draft_id = int(row[0])
            detail.update(draft_id=draft_id, due_on=due_on.isoformat())
            await self._write_history(
                f"draft:{draft_id}",
                "draft",
                None,
                FilingStatus.DRAFT.value,
                officer.key_id,
                why,
                detail={"due_on": due_on.isoformat(), "basis": rule.basis},
            )
            return (await self._drafts("draft_id = %s", (draft_id,)))[0]

        return await self._decide(officer, "draft_sar", target, detail, body)

    async def approve_sar(self, officer: Identity, draft_id: int, reason: str) -> None:
        """Approve a draft: four eyes, so never by the officer who drafted it."""
        await self._draft_decision(officer, draft_id, DraftAction.APPROVE, reason)

    async def file_sar(
        self, officer: Identity, draft_id: int, fiu_reference: str, reason: str
    ) -> None:
        """Record that an approved draft was filed, with the FIU's reference for it."""
        await self._draft_decision(officer, draft_id, DraftAction.FILE, reason, fiu_reference)

    async def record_fiu_rejection(self, officer: Identity, draft_id: int, reason: str) -> None:
        """Record that the FIU rejected a filed report; the case goes back to investigating."""
        await self._draft_decision(officer, draft_id, DraftAction.RECORD_FIU_REJECTION, reason)

    async def _draft_decision(
        self,
        officer: Identity,
        draft_id: int,
        action: DraftAction,
        reason: str,
        fiu_reference: str | None = None,
    ) -> None:
        target = f"draft:{draft_id}"[:200]
        case_action = {
            DraftAction.APPROVE: CaseAction.APPROVE_SAR,
            DraftAction.FILE: CaseAction.FILE_SAR,
            DraftAction.RECORD_FIU_REJECTION: CaseAction.RECORD_FIU_REJECTION,
        }[action]
        detail: dict[str, Any] = {}

        async def body() -> None:
            why = _text("reason", reason, reason_chars_max)
            reference = (
                _text("fiu_reference", fiu_reference, name_chars_max)
                if action is DraftAction.FILE
                else None
            )
            cursor = await self._conn.execute(
                "SELECT status, case_id, drafted_by FROM cases.drafts WHERE draft_id = %s"
                " FOR UPDATE",
                (_id("draft_id", draft_id),),
            )
            row = await cursor.fetchone()
            if row is None:
                raise CaseError(CaseOutcome.draft_must_exist, f"no draft {draft_id}")
            state, case_id, drafted_by = FilingStatus(row[0]), int(row[1]), row[2]
            new = next_state("draft", DRAFT_TRANSITIONS, state, action)
            if action is DraftAction.APPROVE and officer.key_id == drafted_by:
                raise CaseError(
                    CaseOutcome.approver_must_not_be_drafter,
                    f"{officer.key_id} drafted draft {draft_id}; another officer must approve",
                )
            await self._move_case(case_id, case_action, officer.key_id, why, draft_id=draft_id)
            await self._conn.execute(
                "UPDATE cases.drafts SET status = %s,"
                " approved_by = CASE WHEN %s THEN %s ELSE approved_by END,"
                " fiu_reference = COALESCE(%s, fiu_reference) WHERE draft_id = %s",
                (
                    new.value,
                    action is DraftAction.APPROVE,
                    officer.key_id,
                    reference,
                    draft_id,
                ),
            )
            extra = {"fiu_reference": reference} if reference else {}
            detail.update(case_id=case_id, **extra)
            await self._write_history(
                target, action.value, state.value, new.value, officer.key_id, why, detail=extra
            )

        await self._decide(officer, f"{action.value}_sar", target, detail, body)

    async def _drafts(self, where: str, params: tuple[Any, ...]) -> list[DraftView]:
        cursor = await self._conn.execute(
            "SELECT draft_id, case_id, report_code, jurisdiction, status, drafted_by,"
            " approved_by, narrative, detected_on, due_on, fiu_reference FROM cases.drafts"
            f" WHERE {where}",
            params,
        )
        views = []
        for row in await cursor.fetchall():
            views.append(
                DraftView(
                    draft_id=row[0],
                    case_id=row[1],
                    report_code=ReportCode(row[2]),
                    jurisdiction=row[3],
                    status=FilingStatus(row[4]),
                    drafted_by=row[5],
                    approved_by=row[6],
                    narrative=row[7],
                    detected_on=row[8],
                    due_on=row[9],
                    fiu_reference=row[10],
                    history=await self._history_of(f"draft:{row[0]}"),
                )
            )
        return views

    async def get_draft(self, draft_id: int) -> DraftView:
        """One draft with its history. Raises CaseError ``draft_must_exist``."""
        async with self._lock:
            views = await self._drafts("draft_id = %s", (_id("draft_id", draft_id),))
        if not views:
            raise CaseError(CaseOutcome.draft_must_exist, f"no draft {draft_id}")
        return views[0]

    async def deadline_queue(self, as_of: date, within_days: int = 0) -> list[DeadlineItem]:
        """Drafts not yet filed whose deadline falls on or before `as_of` + `within_days`,
        soonest first; `overdue` when the deadline is before `as_of`.

        Raises
        ------
        CaseError
            `as_of` not a date, or `within_days` negative.
        """
        if not isinstance(as_of, date):
            raise CaseError(CaseOutcome.input_must_be_valid, "as_of must be a date")
        if isinstance(within_days, bool) or not isinstance(within_days, int) or within_days < 0:
            raise CaseError(CaseOutcome.input_must_be_valid, "within_days must be >= 0")
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT d.draft_id, d.case_id, c.account_id, d.jurisdiction, d.status, d.due_on"
                " FROM cases.drafts d JOIN cases.cases c USING (case_id)"
                " WHERE d.status IN ('draft', 'approved') AND d.due_on <= %s::date + %s"
                f" ORDER BY d.due_on, d.draft_id LIMIT {list_rows_max}",
                (as_of, within_days),
            )
            rows = await cursor.fetchall()
        return [
            DeadlineItem(r[0], r[1], r[2], r[3], FilingStatus(r[4]), r[5], r[5] < as_of)
            for r in rows
        ]

    # -- EXPORT --

    async def export_sar_xml(
        self, officer: Identity, draft_id: int, submission_date: date
    ) -> bytes:
        """The draft as goAML-style XML (see `export_report`); audited, as data leaving us."""
        target = f"draft:{draft_id}"[:200]

        async def body() -> bytes:
            if not isinstance(submission_date, date):
                raise CaseError(CaseOutcome.input_must_be_valid, "submission_date must be a date")
            views = await self._drafts("draft_id = %s", (_id("draft_id", draft_id),))
            if not views:
                raise CaseError(CaseOutcome.draft_must_exist, f"no draft {draft_id}")
            draft = views[0]
            cursor = await self._conn.execute(
                "SELECT payload FROM cases.alerts WHERE case_id = %s"
                " ORDER BY raised_ts_ns, alert_id",
                (draft.case_id,),
            )
            alerts = [msgspec.convert(r[0], ComplianceAlert) for r in await cursor.fetchall()]
            rule = self._rules.get(draft.jurisdiction)
            if rule is None:  # configuration changed since the draft was written
                raise CaseError(
                    CaseOutcome.jurisdiction_must_be_configured,
                    f"draft {draft.draft_id} is for {draft.jurisdiction!r}, no longer configured",
                )
            return export_report(
                report_content(self._entity, rule, draft, alerts, submission_date=submission_date)
            )

        return await self._decide(officer, "export_sar", target, {}, body)


def report_content(
    entity: ReportingEntity,
    rule: FilingRule,
    draft: DraftView,
    alerts: list[ComplianceAlert],
    *,
    submission_date: date,
) -> ReportContent:
    """What a draft's report says, from the case's alerts: one transaction per distinct
    evidence ref (two alerts on one event report it once), indicators the rules that fired."""
    transactions: dict[str, ReportTransaction] = {}
    for alert in alerts:
        for evidence in alert.evidence:
            if evidence.ref in transactions:
                continue
            d = evidence.detail
            try:
                value_usd: Decimal | None = Decimal(d["value_usd"]) if "value_usd" in d else None
            except InvalidOperation:
                value_usd = None  # a malformed valuation is left out, never guessed
            what = d.get("kind", evidence.source)
            description = f"{what} of {d.get('amount_minor', '?')} minor units of asset" + (
                f" {d.get('asset_id', '?')}"
            )
            transactions[evidence.ref] = ReportTransaction(
                transactionnumber=evidence.ref,
                internal_ref_number=alert.alert_id,
                description=description,
                date_transaction=event_datetime(alert.raised_ts_ns),
                value_usd=value_usd,
                account_id=alert.account_id,
                counterparty=d.get("counterparty_address") or d.get("counter_account_id", ""),
            )
    actions = sorted({a for alert in alerts for a in alert.actions})
    return ReportContent(
        entity=entity,
        entity_reference=f"case-{draft.case_id}/draft-{draft.draft_id}",
        report_code=draft.report_code,
        submission_date=submission_date,
        currency_code_local=rule.currency_code_local,
        reason=draft.narrative,
        action="actions taken: " + (", ".join(actions) if actions else "none"),
        transactions=tuple(transactions.values()),
        indicators=tuple(sorted({alert.rule_id for alert in alerts})),
    )
