"""The triage and case workflow as a Hypothesis state machine, against a plain model.

Goal: whatever officers do, in any order, the stored states are what a plain model of the
workflow says; an action the model refuses is refused with the right outcome code and changes
no row; every call, allowed or refused, leaves exactly one audit row; the four-eyes rule holds.
Method: `RuleBasedStateMachine` drives the real `CaseService` on a real PostgreSQL database with
the real `gateway.auth.AuditLog`; the model is written as plain if/else over sets of states,
independent of the service's transition tables.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from compliance.alerts import ComplianceAlert
from compliance.cases import CaseError, CaseOutcome, DismissReason
from engine._codes import Role
from gateway.auth import Identity
from tests.compliance.cases_fixtures import (
    ALICE,
    BOB,
    TRADER,
    audit_rows,
    make_alert,
    open_setup,
    snapshot,
)

OFFICERS = (ALICE, BOB)
ANYONE = (ALICE, BOB) * 4 + (TRADER,)  # a trader now and then: always refused
ok = CaseOutcome.ok


class Model:
    """The workflow in plain Python: states by id, nothing else."""

    def __init__(self) -> None:
        self.alerts: dict[str, tuple[str, int]] = {}  # id -> (status, account)
        self.cases: dict[int, tuple[str, int]] = {}  # id -> (status, account)
        self.drafts: dict[int, tuple[str, int, str]] = {}  # id -> (status, case, drafter)

    def alert_action(self, who: Identity, alert_id: str, action: str) -> CaseOutcome:
        if who.role is not Role.COMPLIANCE_OFFICER:
            return CaseOutcome.actor_must_be_compliance_officer
        status = self.alerts[alert_id][0]
        # Re-assigning is allowed; dismissing and escalating need an assignee first.
        allowed = status in (("new", "assigned") if action == "assign" else ("assigned",))
        return ok if allowed else CaseOutcome.transition_must_be_allowed

    def escalate_into(self, who: Identity, alert_id: str, case_id: int) -> CaseOutcome:
        first = self.alert_action(who, alert_id, "escalate")
        if first is not ok:
            return first
        status, account = self.cases[case_id]
        if account != self.alerts[alert_id][1]:
            return CaseOutcome.alert_must_belong_to_case_customer
        if status not in ("open", "investigating"):
            return CaseOutcome.transition_must_be_allowed
        return ok

    def case_action(self, who: Identity, case_id: int, action: str) -> CaseOutcome:
        if who.role is not Role.COMPLIANCE_OFFICER:
            return CaseOutcome.actor_must_be_compliance_officer
        status = self.cases[case_id][0]
        needed = {"start": "open", "close": "investigating", "draft": "investigating"}[action]
        return ok if status == needed else CaseOutcome.transition_must_be_allowed

    def draft_action(self, who: Identity, draft_id: int, action: str) -> CaseOutcome:
        if who.role is not Role.COMPLIANCE_OFFICER:
            return CaseOutcome.actor_must_be_compliance_officer
        status, _, drafter = self.drafts[draft_id]
        needed = {"approve": "draft", "file": "approved", "reject": "filed"}[action]
        if status != needed:
            return CaseOutcome.transition_must_be_allowed
        if action == "approve" and drafter == who.key_id:
            return CaseOutcome.approver_must_not_be_drafter
        return ok


class CasesMachine(RuleBasedStateMachine):
    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.cm = open_setup(self.database_url)
        self.setup = self.loop.run_until_complete(self.cm.__aenter__())
        self.service = self.setup.service
        self.model = Model()
        self.token = uuid.uuid4().hex[:8]  # alert ids unique to this run: one shared database
        self.next_n = 0
        self.calls = 0
        self.audit_start = len(self.run(audit_rows(self.setup.conn)))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.cm.__aexit__(None, None, None))
        self.loop.close()

    def expect(self, outcome: CaseOutcome, coro: Any) -> Any:
        """Run a decision; it must succeed when the model says ok, else fail with `outcome`
        and change no row."""
        self.calls += 1
        if outcome is ok:
            return self.run(coro)
        before = self.run(snapshot(self.setup.conn))
        with pytest.raises(CaseError) as raised:
            self.run(coro)
        assert raised.value.code is outcome, raised.value
        assert self.run(snapshot(self.setup.conn)) == before
        return None

    def pick(self, ids: list[Any], i: int, ready: list[Any] | None = None) -> Any:
        """Mostly an id the action suits (`ready`, when `i` is even: Hypothesis likes 0), so
        runs get deep into the workflow; else any id, so illegal actions are tried too."""
        if ready and i % 2 == 0:
            return ready[(i // 2) % len(ready)]
        return ids[i % len(ids)]

    def alerts_in(self, *states: str) -> list[str]:
        return [a for a, (status, _) in self.model.alerts.items() if status in states]

    def cases_in(self, *states: str) -> list[int]:
        return sorted(c for c, (status, _) in self.model.cases.items() if status in states)

    # -- rules --

    @initialize()
    def receive_first_alerts(self) -> None:
        for account in (7, 7, 8):
            self.receive_alert(account, again=False)

    @rule(account=st.sampled_from([7, 8]), again=st.booleans())
    def receive_alert(self, account: int, again: bool) -> None:
        if again and self.model.alerts:
            alert_id = next(iter(self.model.alerts))
            status = self.model.alerts[alert_id]
            raw = self.run(self.service.get_alert(alert_id)).payload
            assert self.run(self.service.ingest([_decode(raw)])) == []  # stored once
            assert self.model.alerts[alert_id] == status
            return
        self.next_n += 1
        alert = make_alert(self.next_n, account_id=account)
        alert = _with_id(alert, f"{self.token}:{alert.alert_id}")
        assert self.run(self.service.ingest([alert])) == [alert.alert_id]
        self.model.alerts[alert.alert_id] = ("new", account)

    @rule(i=st.integers(0, 99), who=st.sampled_from(ANYONE))
    def assign(self, i: int, who: Identity) -> None:
        if not self.model.alerts:
            return
        alert_id = self.pick(list(self.model.alerts), i, self.alerts_in("new"))
        outcome = self.model.alert_action(who, alert_id, "assign")
        self.expect(outcome, self.service.assign_alert(who, alert_id, who.key_id, "triage"))
        if outcome is ok:
            self.model.alerts[alert_id] = ("assigned", self.model.alerts[alert_id][1])

    @rule(i=st.integers(0, 99), who=st.sampled_from(ANYONE), code=st.sampled_from(DismissReason))
    def dismiss(self, i: int, who: Identity, code: DismissReason) -> None:
        if not self.model.alerts:
            return
        alert_id = self.pick(list(self.model.alerts), i, self.alerts_in("assigned"))
        outcome = self.model.alert_action(who, alert_id, "dismiss")
        self.expect(outcome, self.service.dismiss_alert(who, alert_id, code, "checked"))
        if outcome is ok:
            self.model.alerts[alert_id] = ("dismissed", self.model.alerts[alert_id][1])

    @rule(
        i=st.integers(0, 99),
        j=st.integers(0, 99),
        new_case=st.booleans(),
        who=st.sampled_from(ANYONE),
    )
    def escalate(self, i: int, j: int, new_case: bool, who: Identity) -> None:
        if not self.model.alerts:
            return
        alert_id = self.pick(list(self.model.alerts), i, self.alerts_in("assigned"))
        account = self.model.alerts[alert_id][1]
        if new_case or not self.model.cases:
            outcome = self.model.alert_action(who, alert_id, "escalate")
            case_id = self.expect(outcome, self.service.escalate_alert(who, alert_id, "odd"))
            if outcome is ok:
                assert case_id not in self.model.cases
                self.model.cases[case_id] = ("open", account)
        else:
            takers = [
                c
                for c in self.cases_in("open", "investigating")
                if self.model.cases[c][1] == account
            ]
            case_id = self.pick(sorted(self.model.cases), j, takers)
            outcome = self.model.escalate_into(who, alert_id, case_id)
            got = self.expect(outcome, self.service.escalate_alert(who, alert_id, "odd", case_id))
            assert got == (case_id if outcome is ok else None)
        if outcome is ok:
            self.model.alerts[alert_id] = ("escalated", account)

    @rule(
        j=st.integers(0, 99),
        who=st.sampled_from(ANYONE),
        action=st.sampled_from(["start", "close"]),
    )
    def move_case(self, j: int, who: Identity, action: str) -> None:
        if not self.model.cases:
            return
        ready = self.cases_in("open" if action == "start" else "investigating")
        self._move_case(self.pick(sorted(self.model.cases), j, ready), who, action)

    def _move_case(self, case_id: int, who: Identity, action: str) -> None:
        outcome = self.model.case_action(who, case_id, action)
        call = (
            self.service.start_investigation
            if action == "start"
            else (self.service.close_case_no_action)
        )
        self.expect(outcome, call(who, case_id, "decided"))
        if outcome is ok:
            new = "investigating" if action == "start" else "closed_no_action"
            self.model.cases[case_id] = (new, self.model.cases[case_id][1])

    @rule(
        j=st.integers(0, 99),
        who=st.sampled_from(ANYONE),
        jurisdiction=st.sampled_from(["US", "DE"]),
    )
    def draft(self, j: int, who: Identity, jurisdiction: str) -> None:
        if not self.model.cases:
            return
        case_id = self.pick(sorted(self.model.cases), j, self.cases_in("investigating"))
        self._draft(case_id, who, jurisdiction)

    def _draft(self, case_id: int, who: Identity, jurisdiction: str) -> None:
        outcome = self.model.case_action(who, case_id, "draft")
        view = self.expect(
            outcome, self.service.draft_sar(who, case_id, jurisdiction, "narrative", "enough")
        )
        if outcome is ok:
            self.model.cases[case_id] = ("sar_drafted", self.model.cases[case_id][1])
            self.model.drafts[view.draft_id] = ("draft", case_id, who.key_id)

    @rule(
        k=st.integers(0, 99),
        who=st.sampled_from(ANYONE),
        action=st.sampled_from(["approve", "file", "reject"]),
    )
    def decide_draft(self, k: int, who: Identity, action: str) -> None:
        if not self.model.drafts:
            return
        needed = {"approve": "draft", "file": "approved", "reject": "filed"}[action]
        ready = sorted(d for d, (status, _, _) in self.model.drafts.items() if status == needed)
        self._decide_draft(self.pick(sorted(self.model.drafts), k, ready), who, action)

    def _decide_draft(self, draft_id: int, who: Identity, action: str) -> None:
        outcome = self.model.draft_action(who, draft_id, action)
        if action == "approve":
            call = self.service.approve_sar(who, draft_id, "checked")
        elif action == "file":
            call = self.service.file_sar(who, draft_id, "FIU-REF-1", "sent")
        else:
            call = self.service.record_fiu_rejection(who, draft_id, "FIU said no")
        self.expect(outcome, call)
        if outcome is ok:
            _, case_id, drafter = self.model.drafts[draft_id]
            new_draft, new_case = {
                "approve": ("approved", "sar_approved"),
                "file": ("filed", "sar_filed"),
                "reject": ("rejected", "investigating"),
            }[action]
            self.model.drafts[draft_id] = (new_draft, case_id, drafter)
            self.model.cases[case_id] = (new_case, self.model.cases[case_id][1])

    @rule(
        j=st.integers(0, 99),
        officer=st.sampled_from(OFFICERS),
        jurisdiction=st.sampled_from(["US", "DE"]),
    )
    def advance_a_case(self, j: int, officer: Identity, jurisdiction: str) -> None:
        """Take a case one step further (the random rules alone rarely get past a draft):
        start, draft, approve (by the drafter now and then: four eyes refuse it), file, or
        record the FIU's rejection."""
        live = self.cases_in("open", "investigating", "sar_drafted", "sar_approved", "sar_filed")
        if not live:
            return
        case_id = live[j % len(live)]
        status = self.model.cases[case_id][0]
        if status == "open":
            self._move_case(case_id, officer, "start")
        elif status == "investigating":
            self._draft(case_id, officer, jurisdiction)
        else:
            (draft_id,) = [
                d
                for d, (state, c, _) in self.model.drafts.items()
                if c == case_id and state in ("draft", "approved", "filed")
            ]
            state, _, drafted_by = self.model.drafts[draft_id]
            action = {"draft": "approve", "approved": "file", "filed": "reject"}[state]
            if action == "approve" and drafted_by == officer.key_id and j % 2:
                officer = BOB if officer is ALICE else ALICE  # else: four eyes refuse it
            self._decide_draft(draft_id, officer, action)

    # -- invariants --

    @invariant()
    def stored_states_match_the_model(self) -> None:
        async def read() -> tuple[Any, ...]:
            conn = self.setup.conn
            a = await (
                await conn.execute(
                    "SELECT alert_id, status, account_id FROM cases.alerts WHERE alert_id LIKE %s",
                    (f"{self.token}:%",),
                )
            ).fetchall()
            ids = list(self.model.cases)
            c = await (
                await conn.execute(
                    "SELECT case_id, status, account_id FROM cases.cases WHERE case_id = ANY(%s)",
                    (ids,),
                )
            ).fetchall()
            d = await (
                await conn.execute(
                    "SELECT draft_id, status, case_id, drafted_by FROM cases.drafts"
                    " WHERE case_id = ANY(%s)",
                    (ids,),
                )
            ).fetchall()
            return a, c, d

        alerts, cases, drafts = self.run(read())
        assert {r[0]: (r[1], r[2]) for r in alerts} == self.model.alerts
        assert {r[0]: (r[1], r[2]) for r in cases} == self.model.cases
        assert {r[0]: (r[1], r[2], r[3]) for r in drafts} == self.model.drafts

    @invariant()
    def every_call_left_one_audit_row(self) -> None:
        rows = self.run(audit_rows(self.setup.conn))
        assert len(rows) - self.audit_start == self.calls

    @invariant()
    def approved_drafts_had_four_eyes(self) -> None:
        cursor = self.run(
            self.setup.conn.execute(
                "SELECT drafted_by, approved_by FROM cases.drafts WHERE approved_by IS NOT NULL"
            )
        )
        for drafted_by, approved_by in self.run(cursor.fetchall()):
            assert drafted_by != approved_by


def _with_id(alert: ComplianceAlert, alert_id: str) -> ComplianceAlert:
    import msgspec

    return msgspec.structs.replace(alert, alert_id=alert_id)


def _decode(payload: dict[str, Any]) -> ComplianceAlert:
    import msgspec

    return msgspec.convert(payload, ComplianceAlert)


def test_workflow_matches_the_plain_model(pg_database: str) -> None:
    CasesMachine.database_url = pg_database
    run_state_machine_as_test(CasesMachine)
