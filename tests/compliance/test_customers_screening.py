"""Screening on onboarding (CustomerStore.create with a screening index).

Goal: a customer whose name strongly matches a listed person is marked sanctioned at once (and
that reaches the customer's record with the list entry as the reason); a common name that only
weakly resembles a listed one is not flagged but its candidates are audited for review.
Method: the real lists under ../shared/data (OFAC SDN 2021, UN consolidated 2026) through
`compliance.screening`, a store on a fresh database, the real audit log.
"""

from __future__ import annotations

import asyncio

import pytest

from compliance.customers import sanctions_flag_score_min
from compliance.screening import ScreeningIndex, load_lists
from tests.compliance.customers_fixtures import alice, audit_rows, open_store


@pytest.fixture(scope="module")
def index() -> ScreeningIndex:
    return ScreeningIndex(load_lists())


def test_a_strong_hit_marks_the_new_customer_sanctioned(
    pg_database: str, index: ScreeningIndex
) -> None:
    async def run() -> None:
        store, audit = await open_store(pg_database)
        try:
            listed = await store.create(
                alice(given_names="Jong Un", family_name="Kim"),
                "onboarding",
                "signup",
                screening=index,
            )
            assert listed.sanctioned
            assert listed.sanctioned_reason is not None
            assert "KIM, Jong Un" in listed.sanctioned_reason
            assert "sha256:" in listed.sanctioned_reason  # the list version, to reproduce it
            weak = await store.create(alice(account_id=43), "onboarding", "signup", screening=index)
            assert not weak.sanctioned
        finally:
            await store.close()
            await audit.close()
        screened = [r for r in await audit_rows(pg_database) if r[1] == "screen_customer"]
        assert [r[4] for r in screened] == ["hit", "clear"]
        # The weak candidates are kept for a reviewer, below the flagging score.
        assert screened[1][3]["candidates"]
        assert all(c["score"] < sanctions_flag_score_min for c in screened[1][3]["candidates"])

    asyncio.run(run())
