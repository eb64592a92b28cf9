"""The ledger's rules, one scenario each, on real PostgreSQL and against the reference.

Goal: every result code the ledger can give is reached by a scenario that asserts the code and
that a refusal changed no balance and stored no transfer; two-phase holds post in full, in part
or void; a linked chain rolls back whole; retries are idempotent, by transfer id and by event
id; a new `Ledger` on the same schema (a restart) keeps every rule, old ids included.
Method: each test gets its own schema (tests/ledger/conftest.py) and the same setup commits;
where a scenario commits, the plain-Python `ReferenceLedger` runs it too and must agree.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import sql

from engine._codes import AccountResult, TransferResult
from ledger import (
    Account,
    Balance,
    Ledger,
    LedgerBusy,
    Purpose,
    ReferenceLedger,
    Transfer,
    TransferFlags,
)
from ledger.model import balance_max
from tests.ledger.ledger_fixtures import (
    BTC,
    DEBITS_LIMITED,
    STANDARD_ACCOUNTS,
    USDT,
    account,
    standard_accounts,
)

R = TransferResult
H, A, B, C, FEES = (a.id for a in standard_accounts(USDT))
H_BTC = standard_accounts(BTC)[0].id
D1 = account(30, USDT, Purpose.AVAILABLE)  # unprotected, for the overflow scenarios
D2 = account(31, USDT, Purpose.AVAILABLE)
ACCOUNTS = [*STANDARD_ACCOUNTS, D1, D2]
ALL_IDS = [a.id for a in ACCOUNTS]
LINKED = int(TransferFlags.LINKED)
PENDING = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING)
VOID = int(TransferFlags.VOID_PENDING)
UNKNOWN_ACCOUNT = 999


def t(id: int, debit: int, credit: int, amount: int, **fields: Any) -> Transfer:
    return Transfer(
        id=id,
        debit_account_id=debit,
        credit_account_id=credit,
        amount_minor=amount,
        ledger=fields.pop("ledger", USDT),
        code=fields.pop("code", 1),
        **fields,
    )


def post(id: int, pending_id: int, amount: int = 0, **fields: Any) -> Transfer:
    flags = POST | fields.pop("flags", 0)
    return Transfer(id=id, pending_id=pending_id, amount_minor=amount, flags=flags, **fields)


def void(id: int, pending_id: int, amount: int = 0, **fields: Any) -> Transfer:
    flags = VOID | fields.pop("flags", 0)
    return Transfer(id=id, pending_id=pending_id, amount_minor=amount, flags=flags, **fields)


# One commit each, journal sequences 1, 2, ... After it: A has 1000 credited, 51 debited and 100
# pending (id 2), so 849 available; id 3 is posted, id 5 voided, id 7 failed; the omnibus H has
# debits within 1000 of the maximum, D2 credits within 2000 of it.
SETUP: list[list[Transfer]] = [
    [t(1, H, A, 1_000)],
    [t(2, A, B, 100, flags=PENDING)],
    [t(3, A, B, 50, flags=PENDING)],
    [post(4, 3)],
    [t(5, A, B, 10, flags=PENDING)],
    [void(6, 5)],
    [t(7, A, B, 1_000_000)],
    [t(8, A, B, 1)],
    [t(9, H, D2.id, balance_max - 2_000)],
]

# A refused commit per result code: the transfers and the results expected.
REFUSALS: dict[str, tuple[list[Transfer], list[tuple[int, TransferResult]]]] = {
    "linked_event_failed": (
        [t(20, A, B, 1, flags=LINKED), t(21, A, B, 1_000_000)],
        [(0, R.linked_event_failed), (1, R.exceeds_credits)],
    ),
    "linked_event_chain_open": (
        [t(20, A, B, 1, flags=LINKED), t(21, A, B, 1, flags=LINKED)],
        [(0, R.linked_event_failed), (1, R.linked_event_chain_open)],
    ),
    "id_must_be_in_range": (
        [t(0, A, B, 1), t(1 << 128, A, B, 1)],
        [(0, R.id_must_be_in_range), (1, R.id_must_be_in_range)],
    ),
    "flags_must_be_known": ([t(20, A, B, 1, flags=16)], [(0, R.flags_must_be_known)]),
    "exists_with_different_fields": (
        [t(8, A, B, 2), post(4, 3, amount=49)],
        [(0, R.exists_with_different_fields), (1, R.exists_with_different_fields)],
    ),
    "exists": (
        [t(8, A, B, 1), post(4, 3), post(4, 3, amount=50, debit_account_id=A), void(6, 5)],
        [(0, R.exists), (1, R.exists), (2, R.exists), (3, R.exists)],
    ),
    "id_already_failed": ([t(7, A, B, 1)], [(0, R.id_already_failed)]),
    "flags_are_mutually_exclusive": (
        [t(20, A, B, 1, flags=PENDING | POST, pending_id=2)],
        [(0, R.flags_are_mutually_exclusive)],
    ),
    "pending_id_must_be_zero": (
        [t(20, A, B, 1, pending_id=2)],
        [(0, R.pending_id_must_be_zero)],
    ),
    "pending_id_must_be_in_range": (
        [post(20, 0), void(21, 1 << 128)],
        [(0, R.pending_id_must_be_in_range), (1, R.pending_id_must_be_in_range)],
    ),
    "pending_id_must_be_different": ([post(20, 20)], [(0, R.pending_id_must_be_different)]),
    "amount_must_not_be_negative": (
        [t(20, A, B, -1), post(21, 2, amount=-1)],
        [(0, R.amount_must_not_be_negative), (1, R.amount_must_not_be_negative)],
    ),
    "amount_must_not_be_zero": ([t(20, A, B, 0)], [(0, R.amount_must_not_be_zero)]),
    "code_must_be_in_range": (
        [t(20, A, B, 1, code=0), t(21, A, B, 1, code=65_536)],
        [(0, R.code_must_be_in_range), (1, R.code_must_be_in_range)],
    ),
    "user_data_must_fit_in_64_bits": (
        [t(20, A, B, 1, user_data_1=1 << 63), t(21, A, B, 1, user_data_2=-(1 << 63) - 1)],
        [(0, R.user_data_must_fit_in_64_bits), (1, R.user_data_must_fit_in_64_bits)],
    ),
    "accounts_must_be_different": ([t(20, A, A, 1)], [(0, R.accounts_must_be_different)]),
    "debit_account_must_exist": (
        [t(20, UNKNOWN_ACCOUNT, B, 1)],
        [(0, R.debit_account_must_exist)],
    ),
    "credit_account_must_exist": (
        [t(20, A, UNKNOWN_ACCOUNT, 1)],
        [(0, R.credit_account_must_exist)],
    ),
    "ledgers_must_match": (
        [t(20, A, H_BTC, 1), t(21, A, B, 1, ledger=BTC)],
        [(0, R.ledgers_must_match), (1, R.ledgers_must_match)],
    ),
    "pending_transfer_not_found": ([post(20, 12_345)], [(0, R.pending_transfer_not_found)]),
    "pending_transfer_not_pending": ([post(20, 8)], [(0, R.pending_transfer_not_pending)]),
    "pending_transfer_already_posted": (
        [post(20, 3), void(21, 3)],
        [(0, R.pending_transfer_already_posted), (1, R.pending_transfer_already_posted)],
    ),
    "pending_transfer_already_voided": (
        [post(20, 5), void(21, 5)],
        [(0, R.pending_transfer_already_voided), (1, R.pending_transfer_already_voided)],
    ),
    "pending_transfer_has_different_accounts": (
        [post(20, 2, debit_account_id=B), void(21, 2, credit_account_id=A)],
        [
            (0, R.pending_transfer_has_different_accounts),
            (1, R.pending_transfer_has_different_accounts),
        ],
    ),
    "pending_transfer_has_different_ledger": (
        [post(20, 2, ledger=BTC)],
        [(0, R.pending_transfer_has_different_ledger)],
    ),
    "exceeds_pending_transfer_amount": (
        [post(20, 2, amount=101)],
        [(0, R.exceeds_pending_transfer_amount)],
    ),
    "pending_transfer_has_different_amount": (
        [void(20, 2, amount=99)],
        [(0, R.pending_transfer_has_different_amount)],
    ),
    "overflows_debits": ([t(20, H, B, 1_001)], [(0, R.overflows_debits)]),
    "overflows_credits": ([t(20, D1.id, D2.id, 2_001)], [(0, R.overflows_credits)]),
    "exceeds_credits": (
        [t(20, A, B, 850), t(21, A, B, 850, flags=PENDING)],
        [(0, R.exceeds_credits), (1, R.exceeds_credits)],
    ),
    "exceeds_debits": ([t(20, H, C, 1)], [(0, R.exceeds_debits)]),
}


async def open_ready(database_url: str, schema: str, **options: Any) -> Ledger:
    """A ledger with the accounts and the SETUP commits."""
    ledger = await Ledger.open(database_url, schema=schema, **options)
    assert await ledger.create_accounts(ACCOUNTS, ts_ns=1) == []
    for seq, transfers in enumerate(SETUP, start=1):
        await ledger.commit(transfers, journal_seq=seq, ts_ns=seq * 1_000)
    return ledger


def reference_ready() -> ReferenceLedger:
    reference = ReferenceLedger()
    assert reference.create_accounts(ACCOUNTS) == []
    for seq, transfers in enumerate(SETUP, start=1):
        reference.commit(transfers, journal_seq=seq, ts_ns=seq * 1_000)
    return reference


async def state(ledger: Ledger) -> tuple[dict[int, Balance], list[Any]]:
    """What a refusal must not change: every balance and every stored transfer."""
    balances = await ledger.balances(ALL_IDS)
    transfers = await ledger.lookup_transfers(range(1, 40))
    return balances, transfers


def test_the_setup_leaves_the_balances_it_says() -> None:
    reference = reference_ready()
    assert reference.balances([A])[A] == Balance(
        credits_posted=1_000, debits_posted=51, debits_pending=100
    )
    assert reference.failed == {7: R.exceeds_credits}


def test_every_result_code_has_a_refusal_scenario() -> None:
    codes = {code for _, expected in REFUSALS.values() for _, code in expected}
    assert codes == set(TransferResult) - {R.OK}
    assert set(REFUSALS) == {code.name for code in TransferResult} - {"OK"}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_a_refused_transfer_gives_its_result_and_changes_nothing(
    name: str, database_url: str, schema: str
) -> None:
    transfers, expected = REFUSALS[name]

    async def scenario() -> None:
        ledger = await open_ready(database_url, schema)
        try:
            before = await state(ledger)
            outcome = await ledger.commit(transfers, journal_seq=100, ts_ns=100_000)
            assert outcome.results == expected
            assert await state(ledger) == before
            # Refusals from 5008 on are recorded: the same id never applies, whatever it says.
            for index, code in expected:
                if code >= R.flags_are_mutually_exclusive:
                    retry = await ledger.commit([t(transfers[index].id, A, B, 1)], journal_seq=101)
                    assert retry.results == [(0, R.id_already_failed)]
            assert (await ledger.verify()).ok
        finally:
            await ledger.close()

    asyncio.run(scenario())
    reference = reference_ready()
    assert reference.commit(transfers, journal_seq=100).results == expected


def test_accounts_are_refused_in_result_order_and_created_once(
    database_url: str, schema: str
) -> None:
    existing = ACCOUNTS[1]
    accounts = [
        Account(id=0, ledger=USDT, purpose=Purpose.AVAILABLE),
        Account(id=1 << 63, ledger=USDT, purpose=Purpose.AVAILABLE),
        Account(id=500, ledger=USDT, purpose=Purpose.AVAILABLE, flags=4),
        Account(id=existing.id, ledger=USDT, owner_id=10, purpose=Purpose.AVAILABLE),
        existing,
        Account(id=501, ledger=USDT, purpose=Purpose.AVAILABLE, flags=3),
        Account(id=502, ledger=0, purpose=Purpose.AVAILABLE),
        Account(id=503, ledger=1 << 31, purpose=Purpose.AVAILABLE),
        Account(id=504, ledger=USDT, owner_id=-1, purpose=Purpose.AVAILABLE),
        Account(id=505, ledger=USDT, purpose=99),
        Account(id=506, ledger=USDT, purpose=Purpose.SUSPENSE, flags=DEBITS_LIMITED),
        Account(id=506, ledger=USDT, purpose=Purpose.SUSPENSE, flags=DEBITS_LIMITED),
    ]
    expected = [
        (0, AccountResult.account_id_must_be_positive),
        (1, AccountResult.account_id_must_be_positive),
        (2, AccountResult.account_flags_must_be_known),
        (3, AccountResult.account_exists_with_different_fields),
        (4, AccountResult.account_exists),
        (5, AccountResult.account_flags_are_mutually_exclusive),
        (6, AccountResult.account_ledger_must_be_in_range),
        (7, AccountResult.account_ledger_must_be_in_range),
        (8, AccountResult.owner_id_must_be_in_range),
        (9, AccountResult.purpose_must_be_known),
        (11, AccountResult.account_exists),
    ]

    async def scenario() -> None:
        ledger = await Ledger.open(database_url, schema=schema)
        try:
            assert await ledger.create_accounts(ACCOUNTS) == []
            assert await ledger.create_accounts(accounts) == expected
            created = await ledger.lookup_accounts([*range(495, 510), existing.id])
            assert created == [accounts[10], existing]
        finally:
            await ledger.close()

    asyncio.run(scenario())
    reference = ReferenceLedger()
    reference.create_accounts(ACCOUNTS)
    assert reference.create_accounts(accounts) == expected


def test_a_hold_posts_in_full_in_part_or_voids(database_url: str, schema: str) -> None:
    async def scenario() -> None:
        ledger = await open_ready(database_url, schema)
        try:
            # Three holds of 100 on B's side of A: A's 849 available drop to 549.
            holds = [t(i, A, B, 100, flags=PENDING, code=7) for i in (30, 31, 32)]
            assert (await ledger.commit(holds, journal_seq=100)).results == []
            a = (await ledger.balances([A]))[A]
            assert (a.debits_posted, a.debits_pending) == (51, 400)
            ends = [post(33, 30), post(34, 31, amount=40, code=9), void(35, 32)]
            assert (await ledger.commit(ends, journal_seq=101)).results == []
            balances = await ledger.balances([A, B])
            # full post: 100 posted; part: 40 posted and 60 released; void: 100 released.
            assert balances[A] == Balance(credits_posted=1_000, debits_posted=191,
                                          debits_pending=100)  # fmt: skip
            assert balances[B] == Balance(credits_posted=191, credits_pending=100)
            records = {r.id: r for r in await ledger.lookup_transfers([33, 34, 35])}
            assert (records[33].amount_minor, records[33].code) == (100, 7)
            assert (records[34].amount_minor, records[34].code) == (40, 9)
            assert (records[35].amount_minor, records[35].debit_account_id) == (100, A)
            # A hold ends once: posting or voiding it again is refused with its own reason.
            again = [post(36, 30), void(37, 34 - 3), post(38, 32)]
            outcome = await ledger.commit(again, journal_seq=102)
            assert outcome.results == [
                (0, R.pending_transfer_already_posted),
                (1, R.pending_transfer_already_posted),
                (2, R.pending_transfer_already_voided),
            ]
            assert (await ledger.verify()).ok
        finally:
            await ledger.close()

    asyncio.run(scenario())


def test_a_linked_chain_fails_whole_and_its_members_stay_free(
    database_url: str, schema: str
) -> None:
    chain = [
        t(40, A, B, 10, flags=LINKED),
        t(41, A, B, 20, flags=LINKED | PENDING),
        post(42, 2, flags=LINKED),
        t(43, B, A, 1_000_000),  # B cannot pay this: the whole chain goes
        t(44, A, B, 1),  # not in the chain: applies
    ]

    async def scenario() -> None:
        ledger = await open_ready(database_url, schema)
        try:
            before = await ledger.balances(ALL_IDS)
            outcome = await ledger.commit(chain, journal_seq=100)
            assert outcome.results == [
                (0, R.linked_event_failed),
                (1, R.linked_event_failed),
                (2, R.linked_event_failed),
                (3, R.exceeds_credits),
            ]
            after = await ledger.balances(ALL_IDS)
            assert after[A].debits_posted == before[A].debits_posted + 1  # only id 44
            assert after[A].debits_pending == before[A].debits_pending  # 2 still pending
            assert await ledger.lookup_transfers([40, 41, 42, 43]) == []
            # The chain's other members were never refused themselves: they apply later.
            retry = [t(40, A, B, 10), post(42, 2), t(43, B, A, 1)]
            assert (await ledger.commit(retry, journal_seq=101)).results == [
                (2, R.id_already_failed)
            ]
            # A chain that holds and posts in one commit succeeds whole.
            both = [t(45, A, B, 5, flags=LINKED | PENDING), post(46, 45)]
            assert (await ledger.commit(both, journal_seq=102)).results == []
            assert (await ledger.verify()).ok
        finally:
            await ledger.close()

    asyncio.run(scenario())
    reference = reference_ready()
    assert reference.commit(chain, journal_seq=100).results == [
        (0, R.linked_event_failed),
        (1, R.linked_event_failed),
        (2, R.linked_event_failed),
        (3, R.exceeds_credits),
    ]


def test_retries_are_idempotent_by_transfer_id_and_by_event_id(
    database_url: str, schema: str
) -> None:
    trade = [
        t(50, A, B, 10, flags=LINKED),
        t(51, B, A, 3, flags=LINKED),
        t(52, A, FEES, 1),
    ]

    async def scenario() -> None:
        ledger = await open_ready(database_url, schema)
        try:
            first = await ledger.commit(trade, journal_seq=100, event_id="ev:0:100")
            assert first.results == [] and not first.event_already_applied
            balances = await ledger.balances(ALL_IDS)
            again = await ledger.commit(trade, journal_seq=100, event_id="ev:0:100")
            assert again.event_already_applied and again.commit_no == first.commit_no
            assert await ledger.balances(ALL_IDS) == balances
            # Redelivered after later commits: still a no-op, though its sequence is behind.
            await ledger.commit([t(55, A, B, 1)], journal_seq=102, event_id="ev:0:102")
            late = await ledger.commit(trade, journal_seq=100, event_id="ev:0:100")
            assert late.event_already_applied and late.commit_no == first.commit_no
            balances = await ledger.balances(ALL_IDS)
            # Without the event id, the same chain again: every member exists, nothing moves.
            retry = await ledger.commit(trade, journal_seq=102)
            assert retry.results == [(0, R.exists), (1, R.exists), (2, R.exists)]
            assert retry.commit_no is None  # nothing to write
            # Part of the chain again with a new member is a new chain: refused whole.
            mixed = [t(50, A, B, 10, flags=LINKED), t(53, A, B, 1)]
            assert (await ledger.commit(mixed, journal_seq=103)).results == [
                (0, R.exists),
                (1, R.linked_event_failed),
            ]
            # The same with the new member first: it applied in the chain, and is rolled back.
            mixed = [t(54, A, B, 1, flags=LINKED), t(52, A, FEES, 1)]
            assert (await ledger.commit(mixed, journal_seq=103)).results == [
                (0, R.linked_event_failed),
                (1, R.exists),
            ]
            assert await ledger.balances(ALL_IDS) == balances
            assert (await ledger.verify()).ok
        finally:
            await ledger.close()

    asyncio.run(scenario())
    reference = reference_ready()
    reference.commit(trade, journal_seq=100)
    assert reference.commit(trade, journal_seq=100).results == [(i, R.exists) for i in range(3)]
    mixed = [t(54, A, B, 1, flags=LINKED), t(52, A, FEES, 1)]
    assert reference.commit(mixed, journal_seq=101).results == [
        (0, R.linked_event_failed),
        (1, R.exists),
    ]


def test_a_restarted_ledger_keeps_every_rule(database_url: str, schema: str) -> None:
    async def scenario() -> None:
        ledger = await open_ready(database_url, schema)
        await ledger.commit([t(60, A, B, 5)], journal_seq=100, event_id="e100")
        with pytest.raises(LedgerBusy):
            await Ledger.open(database_url, schema=schema)
        balances = await ledger.balances(ALL_IDS)
        await ledger.close()
        # A cache of 2 transfers: old ids must come from PostgreSQL.
        ledger = await Ledger.open(database_url, schema=schema, transfers_cached_max=2)
        try:
            assert await ledger.balances(ALL_IDS) == balances
            assert await ledger.journal_seq_booked() == 100
            assert (await ledger.commit([], journal_seq=100, event_id="e100")).event_already_applied
            with pytest.raises(ValueError):
                await ledger.commit([t(61, A, B, 1)], journal_seq=99)
            outcome = await ledger.commit(
                [
                    t(1, H, A, 1_000),  # exists
                    t(8, A, B, 2),  # exists with different fields
                    t(7, A, B, 1),  # failed before the restart
                    post(4, 3),  # a post exists, compared through its pending transfer
                    post(61, 3),  # already posted
                    void(62, 5),  # already voided
                    post(63, 2, amount=60),  # still pending: posts in part
                    t(64, A, B, 10_000),  # exceeds credits, as before
                ],
                journal_seq=101,
            )
            assert outcome.results == [
                (0, R.exists),
                (1, R.exists_with_different_fields),
                (2, R.id_already_failed),
                (3, R.exists),
                (4, R.pending_transfer_already_posted),
                (5, R.pending_transfer_already_voided),
                (7, R.exceeds_credits),
            ]
            a = (await ledger.balances([A]))[A]
            assert a == Balance(credits_posted=1_000, debits_posted=51 + 5 + 60)
            report = await ledger.verify()
            assert report.ok and report.links_checked == len(SETUP) + 2
        finally:
            await ledger.close()

    asyncio.run(scenario())


def test_a_commit_postgresql_refuses_leaves_no_trace(database_url: str, schema: str) -> None:
    """The writer decides in memory before PostgreSQL stores: a failed write must not leave
    the decision behind in the writer's caches."""
    commit = [t(70, A, B, 5, flags=PENDING), post(71, 70), t(72, H, A, 100)]

    async def scenario() -> None:
        ledger = await open_ready(database_url, schema)
        try:
            before = await state(ledger)
            # A constraint the ledger does not know of fails the balance UPDATE, after the COPY.
            table = sql.SQL("ALTER TABLE {}.accounts ").format(sql.Identifier(schema))
            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute(
                    table + sql.SQL(f"ADD CONSTRAINT c CHECK (id <> {A} OR credits_posted < 1050)")
                )
                with pytest.raises(psycopg.errors.CheckViolation):
                    await ledger.commit(commit, journal_seq=100, event_id="e100")
                admin.execute(table + sql.SQL("DROP CONSTRAINT c"))
            assert await state(ledger) == before
            # The same commit again is new in every way: no id exists, the event is not applied.
            outcome = await ledger.commit(commit, journal_seq=100, event_id="e100")
            assert outcome.results == [] and not outcome.event_already_applied
            assert (await ledger.balances([A]))[A].credits_posted == 1_100
            assert (await ledger.verify()).ok
        finally:
            await ledger.close()

    asyncio.run(scenario())


def test_balances_as_of_a_journal_sequence(database_url: str, schema: str) -> None:
    async def scenario() -> None:
        ledger = await open_ready(database_url, schema)
        try:
            for seq in range(len(SETUP) + 1):
                expected = reference.balances_as_of(ALL_IDS, seq)
                assert await ledger.balances_as_of(ALL_IDS, seq) == expected, seq
            assert await ledger.balances_as_of(ALL_IDS, 10**6) == await ledger.balances(ALL_IDS)
        finally:
            await ledger.close()

    reference = reference_ready()
    # after the pending 3 (seq 3) and before its post (seq 4): 50 pending, nothing posted
    assert reference.balances_as_of([A], 3)[A] == Balance(credits_posted=1_000, debits_pending=150)
    asyncio.run(scenario())
