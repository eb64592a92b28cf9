"""The cases service against a real PostgreSQL and the real audit log.

Goal: the whole workflow works and records who decided and why, both in the case history and
in the hash-chained audit log; the four-eyes rule and the role check hold; every refused
decision and every bad input is a clear error that changes nothing; documents keep their
SHA-256 and size and a tampered one is refused; the deadline queue and the XML export read
what the workflow wrote. Method: one fresh database per test, `gateway.auth.AuditLog` as the
audit sink, a snapshot of every cases table before and after each refused call.
"""

from __future__ import annotations

import asyncio
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.cases import (
    AUTOMATIC,
    AlertStatus,
    CaseError,
    CaseOutcome,
    CaseStatus,
    DismissReason,
    FilingStatus,
    IllegalTransition,
    document_bytes_max,
    ensure_schema,
    reason_chars_max,
    xml_text,
)
from compliance.records import AuditEntryError, verify_chain
from engine._codes import Role
from gateway.auth import Identity
from tests.compliance.cases_fixtures import (
    ADMIN,
    ALICE,
    BOB,
    TRADER,
    Setup,
    audit_rows,
    make_alert,
    open_setup,
    snapshot,
)


def run(database_url: str, body: Callable[[Setup], Awaitable[None]]) -> None:
    async def main() -> None:
        async with open_setup(database_url) as setup:
            await body(setup)

    asyncio.run(main())


async def refused(setup: Setup, code: CaseOutcome, call: Awaitable[Any]) -> CaseError:
    """Await `call`, expect a CaseError with `code`, and prove no cases table changed."""
    before = await snapshot(setup.conn)
    audited = len(await audit_rows(setup.conn))
    with pytest.raises(CaseError) as raised:
        await call
    assert raised.value.code is code, raised.value
    assert await snapshot(setup.conn) == before
    rows = await audit_rows(setup.conn)
    assert len(rows) == audited + 1 and rows[-1][4] == code.name  # the refusal is audited
    return raised.value


def test_workflow_from_alert_to_filed_report_is_recorded(pg_database: str) -> None:
    async def body(s: Setup) -> None:
        service = s.service
        first, second, other = make_alert(1), make_alert(2, day=3), make_alert(3, severity="low")
        assert await service.ingest([first, second, other, first]) == [
            first.alert_id,
            second.alert_id,
            other.alert_id,
        ]
        assert await service.ingest([first]) == []  # stored once, however often delivered

        assert [a.alert_id for a in await service.list_alerts(status="new", severity="high")] == [
            second.alert_id,
            first.alert_id,
        ]
        await service.assign_alert(ALICE, first.alert_id, "alice", "my queue")
        await service.assign_alert(ALICE, second.alert_id, "alice", "same customer")
        await service.assign_alert(BOB, other.alert_id, "bob", "my queue")
        await service.dismiss_alert(
            BOB, other.alert_id, DismissReason.EXPECTED_ACTIVITY_DOCUMENTED, "payroll, on file"
        )
        case_id = await service.escalate_alert(ALICE, first.alert_id, "pattern of withdrawals")
        assert await service.escalate_alert(ALICE, second.alert_id, "same pattern", case_id) == (
            case_id
        )
        await service.start_investigation(ALICE, case_id, "reviewing wallet exposure")
        note_id = await service.add_note(ALICE, case_id, "Counterparty is a known mixer.")
        pdf = b"%PDF-1.7 statement"
        doc = await service.add_document(ALICE, case_id, "statement.pdf", "application/pdf", pdf)
        assert doc.sha256_hex == hashlib.sha256(pdf).hexdigest() and doc.size_bytes == len(pdf)
        assert await service.read_document(BOB, doc.document_id) == pdf

        narrative = "Customer withdrew </reason><x/> & moved funds to a mixer."
        draft = await service.draft_sar(ALICE, case_id, "US", narrative, "meets the threshold")
        assert draft.status is FilingStatus.DRAFT
        assert draft.detected_on == date(2026, 11, 2)  # the earliest alert's event date
        assert draft.due_on == date(2026, 12, 2)  # FinCEN: 30 calendar days
        await service.approve_sar(BOB, draft.draft_id, "narrative checked")
        xml = await service.export_sar_xml(BOB, draft.draft_id, date(2026, 11, 20))
        await service.file_sar(BOB, draft.draft_id, "BSA-2026-000123", "filed via BSA E-Filing")

        case = await service.get_case(case_id)
        assert case.status is CaseStatus.SAR_FILED and case.account_id == 7
        assert [a.alert_id for a in case.alerts] == [first.alert_id, second.alert_id]
        assert all(a.status is AlertStatus.ESCALATED for a in case.alerts)
        assert [n.note_id for n in case.notes] == [note_id]
        assert [d.sha256_hex for d in case.documents] == [doc.sha256_hex]
        (filed,) = case.drafts
        assert filed.status is FilingStatus.FILED and filed.fiu_reference == "BSA-2026-000123"
        assert (filed.drafted_by, filed.approved_by) == (ALICE.key_id, BOB.key_id)
        assert [(h.action, h.from_status, h.to_status, h.actor) for h in case.history] == [
            ("open", None, "open", ALICE.key_id),
            ("add_alert", "open", "open", ALICE.key_id),
            ("start_investigation", "open", "investigating", ALICE.key_id),
            ("add_note", None, None, ALICE.key_id),
            ("add_document", None, None, ALICE.key_id),
            ("draft_sar", "investigating", "sar_drafted", ALICE.key_id),
            ("approve_sar", "sar_drafted", "sar_approved", BOB.key_id),
            ("file_sar", "sar_approved", "sar_filed", BOB.key_id),
        ]
        assert case.history[2].reason_text == "reviewing wallet exposure"
        dismissed = await service.get_alert(other.alert_id)
        assert dismissed.status is AlertStatus.DISMISSED
        assert dismissed.dismiss_reason is DismissReason.EXPECTED_ACTIVITY_DOCUMENTED
        assert [(h.action, h.actor, h.reason_code, h.reason_text) for h in dismissed.history] == [
            ("receive", "compliance.cases", None, "raised by rule VASP-001"),
            ("assign", BOB.key_id, None, "my queue"),
            ("dismiss", BOB.key_id, "expected_activity_documented", "payroll, on file"),
        ]
        assert dismissed.payload["evidence"][0]["ref"] == "ev:0:3"

        root = ET.fromstring(xml)
        assert root.findtext("report_code") == "SAR"
        assert root.findtext("reason") == xml_text(narrative)
        assert root.findtext("entity_reference") == f"case-{case_id}/draft-{draft.draft_id}"
        assert [t.findtext("transactionnumber") for t in root.iter("transaction")] == [
            "ev:0:1",
            "ev:0:2",
        ]
        assert [t.findtext("amount_local") for t in root.iter("transaction")] == [
            "10001.50",
            "10002.50",
        ]

        audited = [(r[0], r[1], r[2], r[4]) for r in await audit_rows(s.conn)]
        assert audited == [
            (ALICE.key_id, "assign_alert", f"alert:{first.alert_id}", "ok"),
            (ALICE.key_id, "assign_alert", f"alert:{second.alert_id}", "ok"),
            (BOB.key_id, "assign_alert", f"alert:{other.alert_id}", "ok"),
            (BOB.key_id, "dismiss_alert", f"alert:{other.alert_id}", "ok"),
            (ALICE.key_id, "escalate_alert", f"alert:{first.alert_id}", "ok"),
            (ALICE.key_id, "escalate_alert", f"alert:{second.alert_id}", "ok"),
            (ALICE.key_id, "start_investigation", f"case:{case_id}", "ok"),
            (ALICE.key_id, "add_note", f"case:{case_id}", "ok"),
            (ALICE.key_id, "add_document", f"case:{case_id}", "ok"),
            (BOB.key_id, "read_document", f"document:{doc.document_id}", "ok"),
            (ALICE.key_id, "draft_sar", f"case:{case_id}", "ok"),
            (BOB.key_id, "approve_sar", f"draft:{draft.draft_id}", "ok"),
            (BOB.key_id, "export_sar", f"draft:{draft.draft_id}", "ok"),
            (BOB.key_id, "file_sar", f"draft:{draft.draft_id}", "ok"),
        ]
        report = await verify_chain(s.conn)
        assert report.intact and report.rows_checked == len(audited)

    run(pg_database, body)


async def _investigated_case(s: Setup, n: int = 1, account_id: int = 7) -> tuple[str, int]:
    alert = make_alert(n, account_id=account_id)
    await s.service.ingest([alert])
    await s.service.assign_alert(ALICE, alert.alert_id, "alice", "mine")
    case_id = await s.service.escalate_alert(ALICE, alert.alert_id, "suspicious")
    await s.service.start_investigation(ALICE, case_id, "looking")
    return alert.alert_id, case_id


def test_four_eyes_role_and_illegal_transitions_change_nothing(pg_database: str) -> None:
    async def body(s: Setup) -> None:
        service = s.service
        alert_id, case_id = await _investigated_case(s)
        fresh = make_alert(50)
        await service.ingest([fresh])

        # Only compliance officers decide; admins and traders are refused and audited.
        for who in (TRADER, ADMIN):
            error = await refused(
                s,
                CaseOutcome.actor_must_be_compliance_officer,
                service.assign_alert(who, fresh.alert_id, "x", "y"),
            )
            assert who.role.name in str(error)
        # A new alert cannot be dismissed or escalated before it is assigned.
        error = await refused(
            s,
            CaseOutcome.transition_must_be_allowed,
            service.dismiss_alert(ALICE, fresh.alert_id, "rule_misfire", "noise"),
        )
        assert isinstance(error, IllegalTransition)
        assert (error.kind, error.state, error.action) == ("alert", "new", "dismiss")
        assert "'new'" in str(error) and "'dismiss'" in str(error)
        await refused(
            s,
            CaseOutcome.transition_must_be_allowed,
            service.escalate_alert(ALICE, fresh.alert_id, "why"),
        )
        # An escalated alert cannot be re-assigned; an investigating case cannot be approved.
        await refused(
            s,
            CaseOutcome.transition_must_be_allowed,
            service.assign_alert(ALICE, alert_id, "bob", "take over"),
        )
        await refused(
            s,
            CaseOutcome.transition_must_be_allowed,
            service.start_investigation(ALICE, case_id, "again"),
        )
        draft = await service.draft_sar(ALICE, case_id, "DE", "narrative", "enough")
        assert draft.due_on == date(2026, 11, 5)  # "without delay": the 3-day internal target
        # Four eyes: the drafter cannot approve; filing needs approval first.
        await refused(
            s,
            CaseOutcome.approver_must_not_be_drafter,
            service.approve_sar(ALICE, draft.draft_id, "looks fine"),
        )
        await refused(
            s,
            CaseOutcome.transition_must_be_allowed,
            service.file_sar(BOB, draft.draft_id, "REF-1", "filed"),
        )
        await service.approve_sar(BOB, draft.draft_id, "checked")
        await refused(
            s,
            CaseOutcome.transition_must_be_allowed,
            service.approve_sar(BOB, draft.draft_id, "again"),
        )
        await service.file_sar(ALICE, draft.draft_id, "DE-FIU-77", "sent")
        # The FIU rejects: the draft is rejected, the case goes back to investigating, and a
        # new draft (with its own four-eyes approval) can follow.
        await service.record_fiu_rejection(BOB, draft.draft_id, "FIU: narrative incomplete")
        assert (await service.get_draft(draft.draft_id)).status is FilingStatus.REJECTED
        assert (await service.get_case(case_id)).status is CaseStatus.INVESTIGATING
        second = await service.draft_sar(BOB, case_id, "DE", "fuller narrative", "FIU asked")
        await refused(
            s,
            CaseOutcome.approver_must_not_be_drafter,
            service.approve_sar(BOB, second.draft_id, "mine"),
        )
        await service.approve_sar(ALICE, second.draft_id, "checked")
        # An alert of another customer cannot join this case.
        foreign = make_alert(60, account_id=8)
        await service.ingest([foreign])
        await service.assign_alert(ALICE, foreign.alert_id, "alice", "mine")
        await refused(
            s,
            CaseOutcome.alert_must_belong_to_case_customer,
            service.escalate_alert(ALICE, foreign.alert_id, "related?", case_id),
        )
        # A case that is past investigating takes no more alerts.
        same = make_alert(61)
        await service.ingest([same])
        await service.assign_alert(ALICE, same.alert_id, "alice", "mine")
        await refused(
            s,
            CaseOutcome.transition_must_be_allowed,
            service.escalate_alert(ALICE, same.alert_id, "add", case_id),
        )

    run(pg_database, body)


def test_bad_input_is_a_clear_error_and_changes_nothing(pg_database: str) -> None:
    async def body(s: Setup) -> None:
        service = s.service
        alert_id, case_id = await _investigated_case(s)
        fresh = make_alert(70)
        await service.ingest([fresh])
        await service.assign_alert(ALICE, fresh.alert_id, "alice", "mine")
        cases_of = [
            (CaseOutcome.alert_must_exist, service.assign_alert(ALICE, "nope", "a", "b")),
            (CaseOutcome.reason_must_be_given, service.assign_alert(ALICE, alert_id, "a", "  ")),
            (CaseOutcome.input_must_be_valid, service.assign_alert(ALICE, fresh.alert_id, "", "b")),
            (
                CaseOutcome.reason_must_be_given,
                service.dismiss_alert(ALICE, fresh.alert_id, "looked_fine", "ok"),
            ),
            (
                CaseOutcome.reason_must_be_given,
                service.dismiss_alert(ALICE, fresh.alert_id, "rule_misfire", ""),
            ),
            (
                CaseOutcome.input_must_be_valid,
                service.dismiss_alert(ALICE, fresh.alert_id, "rule_misfire", "nul\x00byte"),
            ),
            (
                CaseOutcome.input_must_be_valid,
                service.dismiss_alert(
                    ALICE, fresh.alert_id, "rule_misfire", "x" * (reason_chars_max + 1)
                ),
            ),
            (CaseOutcome.case_must_exist, service.escalate_alert(ALICE, fresh.alert_id, "r", 999)),
            (
                CaseOutcome.input_must_be_valid,
                service.escalate_alert(ALICE, fresh.alert_id, "r", -1),
            ),
            (CaseOutcome.case_must_exist, service.start_investigation(ALICE, 999, "r")),
            (CaseOutcome.input_must_be_valid, service.add_note(ALICE, case_id, "")),
            (
                CaseOutcome.input_must_be_valid,
                service.add_document(
                    ALICE,
                    case_id,
                    "big.bin",
                    "application/octet-stream",
                    bytes(document_bytes_max + 1),
                ),
            ),
            (
                CaseOutcome.input_must_be_valid,
                service.add_document(ALICE, case_id, "s.txt", "text/plain", "text"),  # type: ignore[arg-type]
            ),
            (
                CaseOutcome.jurisdiction_must_be_configured,
                service.draft_sar(ALICE, case_id, "XX", "n", "r"),
            ),
            (CaseOutcome.input_must_be_valid, service.draft_sar(ALICE, case_id, "US", "", "r")),
            (CaseOutcome.draft_must_exist, service.approve_sar(BOB, 999, "r")),
            (CaseOutcome.document_must_exist, service.read_document(ALICE, 999)),
        ]
        for code, call in cases_of:
            await refused(s, code, call)
        with pytest.raises(CaseError) as raised:
            await service.list_alerts(status="closed")
        assert raised.value.code is CaseOutcome.input_must_be_valid
        with pytest.raises(CaseError):
            await service.list_alerts(limit=0)
        with pytest.raises(CaseError):
            await service.deadline_queue(date(2026, 1, 1), within_days=-1)
        with pytest.raises(CaseError) as raised:
            await service.get_case(12345)
        assert raised.value.code is CaseOutcome.case_must_exist

    run(pg_database, body)


def test_a_tampered_document_is_refused(pg_database: str) -> None:
    async def body(s: Setup) -> None:
        _, case_id = await _investigated_case(s)
        doc = await s.service.add_document(ALICE, case_id, "id.png", "image/png", b"\x89PNG..")
        assert await s.service.read_document(ALICE, doc.document_id) == b"\x89PNG.."
        await s.conn.execute("UPDATE cases.document_bytes SET content = 'forged'::bytea")
        await refused(
            s,
            CaseOutcome.document_must_match_its_checksum,
            s.service.read_document(ALICE, doc.document_id),
        )
        # The same bytes added twice are stored once, and both documents read back.
        again = await s.service.add_document(ALICE, case_id, "b.txt", "text/plain", b"same")
        twice = await s.service.add_document(ALICE, case_id, "c.txt", "text/plain", b"same")
        assert again.sha256_hex == twice.sha256_hex
        assert await s.service.read_document(BOB, twice.document_id) == b"same"
        cursor = await s.conn.execute("SELECT count(*) FROM cases.document_bytes")
        assert await cursor.fetchone() == (2,)

    run(pg_database, body)


def test_deadline_queue_lists_drafts_due_and_overdue(pg_database: str) -> None:
    async def body(s: Setup) -> None:
        service = s.service
        _, us_case = await _investigated_case(s, n=1, account_id=7)  # detected 2026-11-02
        _, de_case = await _investigated_case(s, n=2, account_id=8)
        _, filed_case = await _investigated_case(s, n=3, account_id=9)
        us = await service.draft_sar(ALICE, us_case, "US", "n", "r")  # due 2026-12-02
        de = await service.draft_sar(ALICE, de_case, "DE", "n", "r")  # due 2026-11-05
        done = await service.draft_sar(ALICE, filed_case, "DE", "n", "r")
        await service.approve_sar(BOB, done.draft_id, "ok")
        await service.file_sar(BOB, done.draft_id, "REF", "sent")  # filed: off the queue
        await service.approve_sar(BOB, de.draft_id, "ok")

        assert await service.deadline_queue(date(2026, 11, 3)) == []
        (item,) = await service.deadline_queue(date(2026, 11, 3), within_days=2)
        assert (item.draft_id, item.due_on, item.overdue, item.status) == (
            de.draft_id,
            date(2026, 11, 5),
            False,
            FilingStatus.APPROVED,
        )
        assert item.jurisdiction == "DE" and item.account_id == 8
        queue = await service.deadline_queue(date(2026, 12, 2))
        assert [(i.draft_id, i.overdue) for i in queue] == [
            (de.draft_id, True),
            (us.draft_id, False),  # due today: due, not yet overdue
        ]

    run(pg_database, body)


def test_a_decision_the_audit_log_refuses_does_not_happen(pg_database: str) -> None:
    # An actor name the audit chain refuses (over its length limit): the audit row cannot be
    # written, so the decision's transaction rolls back.
    unrecordable = Identity(key_id="k" * 500, account_id=0, role=Role.COMPLIANCE_OFFICER)

    async def body(s: Setup) -> None:
        alert = make_alert(1)
        await s.service.ingest([alert])
        before = await snapshot(s.conn)
        with pytest.raises(AuditEntryError):
            await s.service.assign_alert(unrecordable, alert.alert_id, "x", "y")
        assert await snapshot(s.conn) == before
        assert await audit_rows(s.conn) == []

    run(pg_database, body)


def test_any_note_text_is_stored_as_given_or_refused_whole(pg_database: str) -> None:
    # Hypothesis drives a sync function: the service lives on one loop, run step by step.
    loop = asyncio.new_event_loop()
    cm = open_setup(pg_database)
    s = loop.run_until_complete(cm.__aenter__())
    try:
        _, case_id = loop.run_until_complete(_investigated_case(s))

        @settings(max_examples=60)
        @given(text=st.text(max_size=40) | st.sampled_from(["\x00", "a\ud800b", "a\r\nb\rc"]))
        def check(text: str) -> None:
            loop.run_until_complete(_note_round_trip(s, case_id, text))

        check()
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()


async def _note_round_trip(s: Setup, case_id: int, text: str) -> None:
    before = await snapshot(s.conn)
    try:
        note_id = await s.service.add_note(ALICE, case_id, text)
    except CaseError as exc:
        assert exc.code is CaseOutcome.input_must_be_valid
        assert await snapshot(s.conn) == before
        return
    notes = (await s.service.get_case(case_id)).notes
    (stored,) = [n for n in notes if n.note_id == note_id]
    assert stored.body == text.replace("\r\n", "\n").replace("\r", "\n")
    assert stored.body.strip() and stored.author == ALICE.key_id


def test_schema_creation_is_safe_from_several_processes_at_once(pg_database: str) -> None:
    async def main() -> None:
        conns = [await psycopg.AsyncConnection.connect(pg_database) for _ in range(3)]
        try:
            await asyncio.gather(*(ensure_schema(conn) for conn in conns))
            await ensure_schema(conns[0])
            cursor = await conns[0].execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'cases'"
            )
            assert await cursor.fetchone() == (7,)
        finally:
            for conn in conns:
                await conn.close()

    asyncio.run(main())


def test_a_rule_that_asks_for_a_sar_gets_a_case_and_a_draft_an_officer_approves(
    pg_database: str,
) -> None:
    """block_and_sar: the service opens the case and drafts the SAR itself, through the
    officers' own steps (history and audit name it), once however often the alert comes; the
    draft needs an officer's approval, and the drafter is never that officer."""

    async def body(s: Setup) -> None:
        plain = make_alert(1)
        assert await s.service.draft_for_alert(plain, "DE") is None
        asks = msgspec.structs.replace(make_alert(2), actions=("block_and_sar",))
        await s.service.ingest([plain, asks])
        case_id = await s.service.draft_for_alert(asks, "DE")
        assert case_id is not None
        again = await s.service.draft_for_alert(asks, "DE")  # redelivered: nothing new
        assert again == case_id
        case = await s.service.get_case(case_id)
        assert case.status is CaseStatus.SAR_DRAFTED
        [draft] = case.drafts
        assert draft.drafted_by == AUTOMATIC.key_id and asks.alert_id in draft.narrative
        assert {h.actor for h in case.history} == {AUTOMATIC.key_id}
        assert (await s.service.get_alert(plain.alert_id)).status is AlertStatus.NEW
        await s.service.approve_sar(ALICE, draft.draft_id, "read and completed")
        actions = [(row[0], row[1]) for row in await audit_rows(s.conn)]
        assert (AUTOMATIC.key_id, "draft_sar") in actions
        assert (ALICE.key_id, "approve_sar") in actions

    run(pg_database, body)
