"""The pure parts of compliance.cases: transition tables, deadlines, the goAML export.

Goal: an illegal transition is an error naming the state and the action; deadlines follow the
configured jurisdiction rules; no narrative (markup, entities, CDATA ends, control characters,
any Unicode) can break the XML, and every field reads back as written. Method: exhaustive
checks over the small tables, and Hypothesis-generated hostile text exported, parsed back with
xml.etree and compared field by field.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import compliance.cases as cases
from compliance.alerts import ComplianceAlert, Evidence
from compliance.cases import (
    ALERT_TRANSITIONS,
    CASE_TRANSITIONS,
    DEFAULT_FILING_RULES,
    DRAFT_TRANSITIONS,
    AlertAction,
    AlertStatus,
    CaseAction,
    CaseOutcome,
    CaseStatus,
    DraftView,
    FilingStatus,
    IllegalTransition,
    ReportCode,
    ReportContent,
    ReportingEntity,
    ReportTransaction,
    detection_date,
    export_report,
    next_state,
    report_content,
    xml_text,
)

ENTITY = ReportingEntity(
    rentity_id="4711",
    person_first_name="Maria",
    person_last_name="Schmidt",
    person_email="mlro@example.com",
)
HOSTILE = [
    "</reason><transaction><amount_local>1</amount_local></transaction><reason>",
    "]]><![CDATA[ & &amp; &lt; <!-- --> <?xml version='1.0'?> <!DOCTYPE x [<!ENTITY a 'b'>]>",
    "quotes ' \" and \t tabs\nand lines\r\nand CR\r",
    "control \x00 \x01 \x1b \x7f \ufffe \uffff",
    "ünïcödé 漢字 🙂 \u202e right-to-left",
]


def test_package_exports_its_public_names() -> None:
    for name in cases.__all__:
        assert hasattr(cases, name), name


def test_every_state_action_pair_outside_the_tables_is_refused_by_name() -> None:
    machines: list[tuple[str, dict[Any, Any], Any, Any]] = [
        ("alert", ALERT_TRANSITIONS, AlertStatus, AlertAction),
        ("case", CASE_TRANSITIONS, CaseStatus, CaseAction),
        ("draft", DRAFT_TRANSITIONS, FilingStatus, cases.DraftAction),
    ]
    for kind, table, states, actions in machines:
        for state in states:
            for action in actions:
                if (state, action) in table:
                    assert next_state(kind, table, state, action) == table[(state, action)]
                    continue
                with pytest.raises(IllegalTransition) as raised:
                    next_state(kind, table, state, action)
                assert raised.value.code is CaseOutcome.transition_must_be_allowed
                assert raised.value.state == state.value and raised.value.action == action.value
                assert repr(state.value) in str(raised.value)
                assert repr(action.value) in str(raised.value)


def test_terminal_states_allow_nothing() -> None:
    for state in (AlertStatus.DISMISSED, AlertStatus.ESCALATED):
        assert not [a for (s, a) in ALERT_TRANSITIONS if s is state]
    assert not [a for (s, a) in CASE_TRANSITIONS if s is CaseStatus.CLOSED_NO_ACTION]
    assert not [a for (s, a) in DRAFT_TRANSITIONS if s is FilingStatus.REJECTED]


def test_deadlines_follow_the_jurisdiction_rules() -> None:
    us, de = DEFAULT_FILING_RULES["US"], DEFAULT_FILING_RULES["DE"]
    assert us.report_code is ReportCode.SAR and de.report_code is ReportCode.STR
    assert us.due_on(date(2026, 1, 15)) == date(2026, 2, 14)  # 30 calendar days
    assert de.due_on(date(2026, 12, 30)) == date(2027, 1, 2)  # "without delay": 3 days
    assert de.deadline_days == cases.without_delay_days
    assert "internal target" in de.basis
    # Detection is the UTC calendar date of the event time, in integers (no float rounding).
    last_ns_of_day = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp()) * 10**9 - 1
    assert detection_date(last_ns_of_day) == date(2026, 2, 28)
    assert detection_date(last_ns_of_day + 1) == date(2026, 3, 1)


def _content(narrative: str, *, currency: str = "USD", counterparty: str = "") -> ReportContent:
    return ReportContent(
        entity=ENTITY,
        entity_reference="case-1/draft-1",
        report_code=ReportCode.STR,
        submission_date=date(2026, 12, 1),
        currency_code_local=currency,
        reason=narrative,
        action=narrative,
        transactions=(
            ReportTransaction(
                transactionnumber=narrative,
                internal_ref_number="VASP-001:7:ev:0:12",
                description=narrative,
                date_transaction=datetime(2026, 11, 30, 12, 30, 5, tzinfo=UTC),
                value_usd=Decimal("15000.25"),
                account_id=7,
                counterparty=counterparty,
            ),
        ),
        indicators=("VASP-001", narrative),
    )


@pytest.mark.parametrize("narrative", HOSTILE)
def test_hostile_text_reads_back_as_written(narrative: str) -> None:
    _check_round_trip(narrative)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_reads_back_as_written(narrative: str) -> None:
    _check_round_trip(narrative)


def _check_round_trip(narrative: str) -> None:
    xml = export_report(_content(narrative, counterparty=narrative))
    root = ET.fromstring(xml)  # parses: the text could not break the document
    expected = xml_text(narrative)
    assert root.tag == "report"
    assert [child.tag for child in root] == [
        "rentity_id",
        "submission_code",
        "report_code",
        "entity_reference",
        "submission_date",
        "currency_code_local",
        "reporting_person",
        "reason",
        "action",
        "transaction",
        "report_indicators",
    ]
    assert (root.findtext("reason") or "") == expected
    assert (root.findtext("action") or "") == expected
    (tx,) = root.findall("transaction")
    assert (tx.findtext("transactionnumber") or "") == expected
    assert (tx.findtext("transaction_description") or "") == expected
    assert [i.text or "" for i in root.find("report_indicators") or []] == [
        "VASP-001",
        expected,
    ]
    if narrative:
        assert (tx.findtext("t_to/to_account/account") or "") == expected
    # Text XML can carry is unchanged: only forbidden characters and CR are replaced.
    if all(c >= " " or c in "\t\n" for c in narrative) and "\ufffe" not in narrative:
        assert expected == narrative or "\uffff" in narrative


def test_report_fields_and_amounts() -> None:
    root = ET.fromstring(export_report(_content("Structuring below the threshold.")))
    assert root.findtext("rentity_id") == "4711"
    assert root.findtext("submission_code") == "E"
    assert root.findtext("report_code") == "STR"
    assert root.findtext("submission_date") == "2026-12-01T00:00:00"
    assert root.findtext("currency_code_local") == "USD"
    assert root.findtext("reporting_person/last_name") == "Schmidt"
    tx = root.find("transaction")
    assert tx is not None
    assert tx.findtext("date_transaction") == "2026-11-30T12:30:05"
    assert tx.findtext("amount_local") == "15000.25"
    assert tx.findtext("t_from_my_client/from_account/account") == "7"
    # A local currency other than USD: the USD valuation goes in foreign_currency, never
    # passed off as a local amount.
    eur = ET.fromstring(export_report(_content("x", currency="EUR"))).find("transaction")
    assert eur is not None and eur.find("amount_local") is None
    assert eur.findtext("foreign_currency/foreign_currency_code") == "USD"
    assert eur.findtext("foreign_currency/foreign_amount") == "15000.25"


def test_report_content_gathers_transactions_once_per_event() -> None:
    def alert(rule: str, ref: str, detail: dict[str, str]) -> ComplianceAlert:
        return ComplianceAlert(
            alert_id=f"{rule}:7:{ref}",
            rule_id=rule,
            account_id=7,
            severity="high",
            actions=("enhanced_monitoring",),
            summary="s",
            evidence=(Evidence(source="custody", ref=ref, detail=detail),),
            raised_ts_ns=1_764_000_000 * 10**9,
        )

    detail = {"kind": "withdrawal", "asset_id": "2", "amount_minor": "150", "value_usd": "99.50"}
    alerts = [
        alert("VASP-001", "ev:0:1", detail),
        alert("VASP-003", "ev:0:1", detail),  # the same event fired two rules
        alert("VASP-003", "ev:0:2", {"value_usd": "not a number", "counterparty_address": "bc1q"}),
    ]
    draft = DraftView(
        draft_id=3,
        case_id=2,
        report_code=ReportCode.SAR,
        jurisdiction="US",
        status=FilingStatus.DRAFT,
        drafted_by="k1",
        approved_by=None,
        narrative="n",
        detected_on=date(2025, 11, 24),
        due_on=date(2025, 12, 24),
        fiu_reference=None,
    )
    content = report_content(
        ENTITY, DEFAULT_FILING_RULES["US"], draft, alerts, submission_date=date(2025, 12, 1)
    )
    assert [t.transactionnumber for t in content.transactions] == ["ev:0:1", "ev:0:2"]
    assert content.transactions[0].value_usd == Decimal("99.50")
    assert content.transactions[0].description == "withdrawal of 150 minor units of asset 2"
    assert content.transactions[1].value_usd is None  # malformed: left out, never guessed
    assert content.transactions[1].counterparty == "bc1q"
    assert content.indicators == ("VASP-001", "VASP-003")
    assert content.entity_reference == "case-2/draft-3"
    assert content.action == "actions taken: enhanced_monitoring"
