"""The customer store (compliance.customers.CustomerStore) against a real PostgreSQL.

Goal: customers are stored and read back whole; every change is in the real audit log with who
and why; bad input and illegal KYC moves are refused with a stable reason and change nothing;
the KYC lifecycle follows its transition table whatever the sequence of requests; consents and
assessments are kept with what they were based on; the review queue lists who is due.
Method: a fresh database per test, `gateway.auth.AuditLog` as the audit sink, and a Hypothesis
state machine that drives KYC moves and flags against a plain model of the table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import msgspec
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from compliance.customers import (
    KYC_TRANSITIONS,
    Consent,
    ConsentPurpose,
    CustomerError,
    CustomerReason,
    Factor,
    KycStatus,
    PersonType,
    Product,
    load_risk_config,
)
from compliance.records import AuditEntryError
from tests.compliance.customers_fixtures import alice, audit_rows, counts, open_store

CONFIG = load_risk_config()


def test_create_and_read_back_with_audit(pg_database: str) -> None:
    async def run() -> None:
        store, audit = await open_store(pg_database)
        try:
            customer = await store.create(alice(), "officer:bob", "onboarding")
            assert customer.kyc_status is KycStatus.pending
            assert (customer.frozen, customer.sanctioned, customer.risk_level) == (
                False,
                False,
                None,
            )
            again = await store.get(customer.customer_id)
            assert again == customer
            assert again.profile == alice()
            acme = await store.create(
                alice(
                    person_type=PersonType.legal,
                    given_names=None,
                    family_name=None,
                    legal_name="Acme Trading SAS",
                    account_id=None,
                ),
                "officer:bob",
                "onboarding",
            )
            assert (await store.get(acme.customer_id)).profile.display_name == "Acme Trading SAS"
        finally:
            await store.close()
            await audit.close()
        rows = await audit_rows(pg_database)
        assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
            ("officer:bob", "create_customer", f"customer:{customer.customer_id}", "ok"),
            ("officer:bob", "create_customer", f"customer:{acme.customer_id}", "ok"),
        ]
        assert rows[0][3]["reason"] == "onboarding"
        assert rows[0][3]["profile"]["family_name"] == "Martin"

    asyncio.run(run())


BAD_CUSTOMERS: list[dict[str, Any]] = [
    {"family_name": None},  # a natural person needs both names
    {"legal_name": "Acme"},  # ... and no legal name
    {"person_type": PersonType.legal},  # a legal person needs a legal name
    {"residence_country": "France"},
    {"nationality_country": "fr"},
    {"expected_products": []},
    {"expected_products": [Product.otc, Product.otc]},
    {"expected_monthly_volume_usd_minor": -1},
    {"expected_monthly_volume_usd_minor": 10**16},
    {"given_names": ""},
    {"family_name": "x" * 301},
    {"account_id": 0},
]


def test_bad_customers_are_refused_and_change_nothing(pg_database: str) -> None:
    async def run() -> None:
        store, audit = await open_store(pg_database)
        try:
            await store.create(alice(), "officer:bob", "onboarding")
            before = await counts(pg_database)
            audited = len(await audit_rows(pg_database))
            for changes in BAD_CUSTOMERS:
                with pytest.raises(CustomerError) as refused:
                    await store.create(alice(**changes), "officer:bob", "onboarding")
                assert refused.value.reason is CustomerReason.customer_must_be_valid, changes
            with pytest.raises(CustomerError) as refused:
                await store.create(alice(account_id=43), "officer:bob", " ")
            assert refused.value.reason is CustomerReason.reason_must_be_given
            # Account 42 already belongs to the first customer.
            with pytest.raises(CustomerError) as refused:
                await store.create(alice(), "officer:bob", "onboarding")
            assert (
                refused.value.reason is CustomerReason.account_must_not_belong_to_another_customer
            )
            with pytest.raises(CustomerError) as refused:
                await store.freeze(1, "", "no one")
            assert refused.value.reason is CustomerReason.actor_must_be_named
            # An action the audit log refuses to record does not happen either.
            with pytest.raises(AuditEntryError):
                await store.freeze(1, "bob\x00", "NUL in the actor")
            assert not (await store.get(1)).frozen
            with pytest.raises(CustomerError) as refused:
                await store.freeze(999, "officer:bob", "typo")
            assert refused.value.reason is CustomerReason.customer_must_exist
            assert await counts(pg_database) == before
            assert len(await audit_rows(pg_database)) == audited
            assert refused.value.reason.value == 2101  # stable numbers
        finally:
            await store.close()
            await audit.close()

    asyncio.run(run())


class KycMachine(RuleBasedStateMachine):
    """KYC moves, freezes and sanctions flags on one customer, against a model."""

    url = ""  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store, self.audit = self.loop.run_until_complete(open_store(self.url))
        created = self.loop.run_until_complete(
            self.store.create(alice(account_id=None), "officer:bob", "onboarding")
        )
        self.customer_id = created.customer_id
        self.status = KycStatus.pending
        self.frozen = False
        self.sanctioned = False

    @rule(status=st.sampled_from(list(KycStatus)))
    def move(self, status: KycStatus) -> None:
        target = status
        allowed = target in KYC_TRANSITIONS[self.status]
        try:
            customer = self.loop.run_until_complete(
                self.store.transition_kyc(self.customer_id, target, "officer:bob", "review")
            )
        except CustomerError as exc:
            assert not allowed
            assert exc.reason is CustomerReason.kyc_transition_must_be_allowed
            return
        assert allowed, f"{self.status} -> {target} should have been refused"
        assert customer.kyc_status is target
        self.status = target

    @rule(flag=st.sampled_from(["frozen", "sanctioned"]), value=st.booleans())
    def flag(self, flag: str, value: bool) -> None:
        operation = {
            ("frozen", True): self.store.freeze,
            ("frozen", False): self.store.unfreeze,
            ("sanctioned", True): self.store.mark_sanctioned,
            ("sanctioned", False): self.store.clear_sanctioned,
        }[flag, value]
        customer = self.loop.run_until_complete(
            operation(self.customer_id, "monitoring", f"rule says {flag}={value}")
        )
        setattr(self, flag, value)
        assert getattr(customer, flag) is value

    @invariant()
    def stored_matches_model(self) -> None:
        customer = self.loop.run_until_complete(self.store.get(self.customer_id))
        assert (customer.kyc_status, customer.frozen, customer.sanctioned) == (
            self.status,
            self.frozen,
            self.sanctioned,
        )

    def teardown(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.run_until_complete(self.audit.close())
        self.loop.close()


def test_kyc_lifecycle_follows_the_transition_table(pg_database: str) -> None:
    KycMachine.url = pg_database
    run_state_machine_as_test(KycMachine)

    async def check_audit() -> None:
        rows = await audit_rows(pg_database)
        refused = [r for r in rows if r[4] == "kyc_transition_must_be_allowed"]
        accepted = [r for r in rows if r[1].startswith("kyc_") and r[4] == "ok"]
        # Both kinds happen over the run, and each is recorded with who and why.
        assert refused and accepted
        assert all(r[0] == "officer:bob" and r[3]["reason"] == "review" for r in refused)

    asyncio.run(check_audit())


def test_every_transition_of_the_table_by_hand(pg_database: str) -> None:
    async def run() -> None:
        store, audit = await open_store(pg_database)
        try:
            c = await store.create(alice(), "officer:bob", "onboarding")
            path = [
                KycStatus.rejected,
                KycStatus.pending,  # resubmission
                KycStatus.verified,
                KycStatus.expired,
                KycStatus.pending,  # re-verification
                KycStatus.verified,
            ]
            for status in path:
                c = await store.transition_kyc(c.customer_id, status, "vendor", "review")
                assert c.kyc_status is status
            for illegal in (KycStatus.pending, KycStatus.rejected, KycStatus.verified):
                with pytest.raises(CustomerError, match="kyc_transition_must_be_allowed"):
                    await store.transition_kyc(c.customer_id, illegal, "vendor", "review")
            assert (await store.get(c.customer_id)).kyc_status is KycStatus.verified
        finally:
            await store.close()
            await audit.close()

    asyncio.run(run())


def test_consents_are_kept_in_order_and_bad_ones_refused(pg_database: str) -> None:
    async def run() -> None:
        store, audit = await open_store(pg_database)
        at = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
        try:
            c = await store.create(alice(), "officer:bob", "onboarding")
            granted = Consent(
                purpose=ConsentPurpose.marketing, granted=True, text_version="mkt-2026-09", at=at
            )
            withdrawn = msgspec.structs.replace(
                granted, granted=False, at=at + dt.timedelta(days=1)
            )
            await store.record_consent(c.customer_id, granted, "customer")
            await store.record_consent(c.customer_id, withdrawn, "customer")
            assert await store.consents(c.customer_id) == [granted, withdrawn]
            before = await counts(pg_database)
            bad = [
                msgspec.structs.replace(granted, text_version=""),
                msgspec.structs.replace(granted, at=dt.datetime(2026, 11, 30)),
                msgspec.structs.replace(granted, purpose="lottery"),
            ]
            for consent in bad:
                with pytest.raises(CustomerError) as refused:
                    await store.record_consent(c.customer_id, consent, "customer")
                assert refused.value.reason is CustomerReason.consent_must_be_valid
            with pytest.raises(CustomerError, match="customer_must_exist"):
                await store.record_consent(999, granted, "customer")
            assert await counts(pg_database) == before
        finally:
            await store.close()
            await audit.close()
        actions = [r[1] for r in await audit_rows(pg_database)]
        assert actions[-2:] == ["grant_consent", "withdraw_consent"]

    asyncio.run(run())


def test_assessments_are_stored_with_inputs_and_feed_the_review_queue(pg_database: str) -> None:
    async def run() -> None:
        store, audit = await open_store(pg_database)
        day = dt.date(2026, 12, 1)
        try:
            low = await store.create(alice(), "officer:bob", "onboarding")
            pep = await store.create(alice(account_id=43, pep=True), "officer:bob", "onboarding")
            never = await store.create(alice(account_id=44), "officer:bob", "onboarding")
            # Never assessed: due at once.
            assert [r.customer_id for r in await store.reviews_due(day)] == [
                low.customer_id,
                pep.customer_id,
                never.customer_id,
            ]
            a_low = await store.assess(low.customer_id, CONFIG, day, "officer:bob")
            a_pep = await store.assess(pep.customer_id, CONFIG, day, "officer:bob")
            assert (a_low.level, a_pep.level, a_pep.forced_high_by) == (
                "low",
                "high",
                [Factor.pep],
            )
            stored = await store.assessments(pep.customer_id)
            assert [s.assessment for s in stored] == [a_pep]
            assert stored[0].inputs["pep"] is True
            assert stored[0].inputs["residence_country"] == "FR"
            assert stored[0].assessment.config_version == "2026-10"
            assert (await store.get(pep.customer_id)).risk_level == "high"

            assert [r.customer_id for r in await store.reviews_due(day)] == [never.customer_id]
            in_six_months = await store.reviews_due(dt.date(2027, 6, 1))
            assert [(r.customer_id, r.risk_level) for r in in_six_months] == [
                (never.customer_id, None),
                (pep.customer_id, "high"),
            ]
            in_three_years = await store.reviews_due(dt.date(2029, 12, 1))
            assert {r.customer_id for r in in_three_years} == {
                low.customer_id,
                pep.customer_id,
                never.customer_id,
            }
            # A profile change and a new assessment: the old one stays, the level moves.
            await store.update_profile(
                low.customer_id, alice(residence_country="IR"), "officer:bob", "moved"
            )
            again = await store.assess(low.customer_id, CONFIG, day, "officer:bob")
            assert again.level == "high"
            assert [s.assessment.level for s in await store.assessments(low.customer_id)] == [
                "low",
                "high",
            ]
        finally:
            await store.close()
            await audit.close()

    asyncio.run(run())
