"""The writer's fast path (ledger/_fast.py) books exactly what the exact path books.

Goal: whether a write goes through the bulk NumPy checks and one COPY, or transfer by transfer
through the exact path, every result, balance, stored row, refused id and hash-chain link is the
same, and both agree with the plain-Python reference.
Method: a Hypothesis state machine sends the same writes to two `Ledger`s on real PostgreSQL,
one with the fast path and one without (`fast_path=False`), and to `ReferenceLedger`. Writes are
mostly clean (what the fast path takes) and otherwise carry every way to fail: unknown and
wrong-ledger accounts, zero, negative and overflowing amounts, overdrafts of both protections,
codes and user data out of range, ids repeated inside a write or replayed (same or changed),
ids out of range, holds with their posts and voids, linked chains that pass, fail or stay open,
event ids repeated inside a call and replayed, ids out of order (so the id check needs its
second query), and restarts with tiny caches. After every step the two schemas' tables must be
equal row for row and the chains must verify with equal heads. Smaller tests pin the pieces:
the bulk decision accepts a write exactly when the reference applies all of it, from balances of
any size (in memory, many more cases); the fast path is taken for clean writes (the engine's
own flow included); the columnar posting rules give the transfers and the errors `postings`
gives for any engine rows; bad input to `TransferColumns` is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from psycopg import sql

from engine._dtypes import TRANSFER_DTYPE
from engine.messages import EventBatch, compressed
from engine.simulate import applied_flow
from ledger import (
    Account,
    CommitResult,
    EventCommit,
    Ledger,
    ReferenceLedger,
    Transfer,
    TransferFlags,
)
from ledger._columns import COLUMNS_DTYPE, TransferColumns
from ledger._fast import account_index, amounts_sum_max, decide_plain, plain_write_shape
from ledger.ledger import _AccountState
from ledger.model import balance_max, code_max, sequenced_id_min
from ledger.postings import posting_account, postings, postings_of_batches
from tests.ledger.ledger_fixtures import (
    BTC,
    STANDARD_ACCOUNTS,
    USDT,
    drop_schema,
    new_schema,
)

LINKED = int(TransferFlags.LINKED)
PENDING = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING)
VOID = int(TransferFlags.VOID_PENDING)
ACCOUNT_IDS = [a.id for a in STANDARD_ACCOUNTS]
ACCOUNTS_OF = {asset: [a.id for a in STANDARD_ACCOUNTS if a.ledger == asset] for asset in (1, 2)}
UNKNOWN_ACCOUNT = 999
TABLES = (
    "SELECT * FROM {s}.transfers ORDER BY position",
    "SELECT * FROM {s}.failed_transfers ORDER BY id",
    "SELECT * FROM {s}.chain ORDER BY commit_no",
    "SELECT * FROM {s}.applied_events ORDER BY event_id",
    "SELECT id, debits_posted, credits_posted, debits_pending, credits_pending"
    " FROM {s}.accounts ORDER BY id",
)


class FastPathMachine(RuleBasedStateMachine):
    database_url = ""
    # 0: client ids, whose uniqueness PostgreSQL enforces; sequenced_id_min: the space where
    # the writer does (ledger/_schema.py), with "low" ids drawn from both spaces.
    id_base = 0

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.schemas = (new_schema(), new_schema())
        self.fast, self.exact = self.run(self.open(1_000))
        self.reference = ReferenceLedger()
        self.admin = psycopg.connect(self.database_url, autocommit=True)
        for books in (self.fast, self.exact):
            assert self.run(books.create_accounts(STANDARD_ACCOUNTS, ts_ns=1)) == []
        assert self.reference.create_accounts(STANDARD_ACCOUNTS) == []
        self.sent: list[Transfer] = []
        self.pending_ids: list[int] = []
        self.events: list[tuple[str, int]] = []
        # Ids above 2**64 exercise both halves of the id columns.
        self.next_id = self.id_base + (1 << 64)
        self.journal_seq = 1

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    async def open(self, cached_max: int) -> tuple[Ledger, Ledger]:
        fast = await Ledger.open(
            self.database_url, schema=self.schemas[0], transfers_cached_max=cached_max
        )
        exact = await Ledger.open(
            self.database_url,
            schema=self.schemas[1],
            transfers_cached_max=cached_max,
            fast_path=False,
        )
        return fast, exact

    # -- TRANSFERS --

    def new_id(self, data: st.DataObject) -> int:
        how = data.draw(st.sampled_from(["next"] * 8 + ["far", "low"]))
        if how == "far":  # beyond every id so far: the next ones are below it
            self.next_id += data.draw(st.integers(10, 1 << 20))
        if how == "low":  # below the ids so far: the id range check finds it occupied
            return data.draw(st.sampled_from([0, self.id_base])) + data.draw(
                st.integers(1, 1 << 40)
            )
        self.next_id += 1
        return self.next_id

    def clean_transfer(self, data: st.DataObject, id_: int) -> Transfer:
        """A transfer that passes when the books allow: from the unprotected omnibus or fees,
        or between funded customers with a small amount."""
        asset = data.draw(st.sampled_from([USDT, BTC]))
        omnibus, alice, bob, suspense, fees = ACCOUNTS_OF[asset]
        debit, credit = data.draw(
            st.sampled_from(
                [(omnibus, alice), (omnibus, bob), (alice, bob), (bob, fees), (suspense, fees),
                 (fees, alice), (omnibus, fees)]
            )
        )  # fmt: skip
        return Transfer(
            id=id_,
            debit_account_id=debit,
            credit_account_id=credit,
            amount_minor=data.draw(st.integers(1, 300)),
            ledger=asset,
            code=data.draw(st.integers(1, 3)),
            user_data_1=data.draw(st.integers(-5, 5)),
            user_data_2=data.draw(st.integers(0, 1 << 62)),
        )

    def odd_transfer(self, data: st.DataObject, id_: int) -> Transfer:
        """A transfer with one thing that may make it fail (or a hold, post or void)."""
        t = self.clean_transfer(data, id_)
        asset = t.ledger
        change = data.draw(
            st.sampled_from(
                ["unknown_account", "other_ledger", "ledger", "same", "amount", "code",
                 "user_data", "id", "pending", "post", "void", "flags", "overdraw"]
            )
        )  # fmt: skip
        replace = msgspec.structs.replace
        if change == "unknown_account":
            return replace(t, credit_account_id=UNKNOWN_ACCOUNT)
        if change == "other_ledger":
            return replace(t, debit_account_id=ACCOUNTS_OF[3 - asset][0])
        if change == "ledger":
            return replace(t, ledger=3 - asset)
        if change == "same":
            return replace(t, credit_account_id=t.debit_account_id)
        if change == "amount":
            return replace(t, amount_minor=data.draw(st.sampled_from([0, -1, balance_max])))
        if change == "code":
            return replace(t, code=data.draw(st.sampled_from([0, code_max + 1])))
        if change == "user_data":
            return replace(t, user_data_2=1 << 63)
        if change == "id":
            return replace(t, id=data.draw(st.sampled_from([0, -1, 1 << 128])))
        if change == "pending":
            return replace(t, flags=PENDING)
        if change in ("post", "void"):
            stored = [i for i in self.pending_ids if i in self.reference.transfers][-6:]
            return Transfer(
                id=id_,
                pending_id=data.draw(st.sampled_from([*stored, 123_456_789])),
                amount_minor=data.draw(st.sampled_from([0, 1, 50])),
                flags=POST if change == "post" else VOID,
            )
        if change == "flags":
            return replace(t, flags=data.draw(st.sampled_from([16, PENDING | POST])))
        # overdraw: a customer pays far more than it can hold (debits_must_not_exceed_credits),
        # or suspense is credited beyond its debits (credits_must_not_exceed_debits).
        _, alice, _, suspense, fees = ACCOUNTS_OF[asset]
        if data.draw(st.booleans()):
            return replace(t, debit_account_id=alice, credit_account_id=fees, amount_minor=10**9)
        return replace(t, debit_account_id=fees, credit_account_id=suspense, amount_minor=10**9)

    def draw_transfer(self, data: st.DataObject, clean: bool) -> Transfer:
        how = data.draw(st.sampled_from(["new"] * 6 + ["retry", "change"]))
        if clean or how == "new" or not self.sent:
            id_ = self.new_id(data)
            if clean or data.draw(st.integers(0, 2)):
                return self.clean_transfer(data, id_)
            return self.odd_transfer(data, id_)
        old = data.draw(st.sampled_from(self.sent))
        if how == "retry":
            return old
        return msgspec.structs.replace(old, amount_minor=old.amount_minor + 1)

    def draw_transfers(self, data: st.DataObject) -> list[Transfer]:
        clean = data.draw(st.booleans())
        transfers = [self.draw_transfer(data, clean) for _ in range(data.draw(st.integers(0, 6)))]
        if transfers and data.draw(st.integers(0, 3)) == 0:  # a chain, closed or (rarely) open
            first = data.draw(st.integers(0, len(transfers) - 1))
            last = data.draw(st.integers(first, len(transfers) - 1))
            for i in range(first, last + 1):
                if i < last or data.draw(st.integers(0, 4)) == 0:
                    transfers[i] = msgspec.structs.replace(
                        transfers[i], flags=transfers[i].flags | LINKED
                    )
                else:
                    transfers[i] = msgspec.structs.replace(
                        transfers[i], flags=transfers[i].flags & ~LINKED
                    )
        if len(transfers) > 1 and data.draw(st.integers(0, 6)) == 0:  # an id twice in a write
            transfers.append(transfers[data.draw(st.integers(0, len(transfers) - 1))])
        return transfers

    def note_path(self, writes_before: int) -> None:
        assert self.exact.fast_path_writes == 0
        event("fast path" if self.fast.fast_path_writes > writes_before else "exact path")

    def sent_now(self, transfers: list[Transfer]) -> None:
        self.sent.extend(t for t in transfers if 0 < t.id < 1 << 128)
        self.pending_ids.extend(t.id for t in transfers if t.flags & PENDING)

    # -- RULES --

    @rule(data=st.data())
    def commit_events(self, data: st.DataObject) -> None:
        events: list[EventCommit] = []
        for _ in range(data.draw(st.integers(1, 4))):
            how = data.draw(st.sampled_from(["new"] * 5 + ["again", "old"]))
            if how == "again" and events:  # the same event twice in one call
                events.append(events[-1])
                continue
            if how == "old" and self.events:  # a redelivery: applied before
                event_id, journal_seq = data.draw(st.sampled_from(self.events))
                transfers = self.draw_transfers(data)
                events.append(EventCommit(event_id=event_id, journal_seq=journal_seq,
                                          transfers=transfers, ts_ns=7))  # fmt: skip
                continue
            self.journal_seq += data.draw(st.integers(0, 1))
            event_id = f"ev:{len(self.events)}"
            self.events.append((event_id, self.journal_seq))
            events.append(
                EventCommit(
                    event_id=event_id,
                    journal_seq=self.journal_seq,
                    transfers=self.draw_transfers(data),
                    ts_ns=self.journal_seq * 1_000,
                )
            )
        writes = self.fast.fast_path_writes
        fast = self.run(self.fast.commit_events(events))
        exact = self.run(self.exact.commit_events(events))
        self.note_path(writes)
        assert fast == exact
        expected = [
            self.reference.commit(e.transfers, journal_seq=e.journal_seq, event_id=e.event_id,
                                  ts_ns=e.ts_ns)
            for e in events
        ]  # fmt: skip
        assert fast == expected
        for e in events:
            self.sent_now(list(e.transfers))

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        transfers = self.draw_transfers(data)
        self.journal_seq += data.draw(st.integers(0, 1))
        event_id = None
        if data.draw(st.booleans()):
            event_id = f"ev:{len(self.events)}"
            self.events.append((event_id, self.journal_seq))
        kwargs: dict[str, Any] = {"journal_seq": self.journal_seq, "event_id": event_id, "ts_ns": 5}
        writes = self.fast.fast_path_writes
        fast = self.run(self.fast.commit(transfers, **kwargs))
        exact = self.run(self.exact.commit(transfers, **kwargs))
        self.note_path(writes)
        assert fast == exact == self.reference.commit(transfers, **kwargs)
        self.sent_now(transfers)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def commit_columns(self, data: st.DataObject) -> None:
        """Columns in, as the consumer sends them: the exact path reads them as transfers."""
        transfers = self.draw_transfers(data)
        columns = TransferColumns.from_transfers(transfers)
        if columns is None:  # a field beyond 64 bits has no columns
            return
        self.journal_seq += 1
        event_id = f"ev:{len(self.events)}"
        self.events.append((event_id, self.journal_seq))
        event = EventCommit(
            event_id=event_id,
            journal_seq=self.journal_seq,
            transfers=TransferColumns(columns.rows.copy()),  # no Transfer objects held
            ts_ns=3,
        )
        writes = self.fast.fast_path_writes
        fast = self.run(self.fast.commit_events([event]))
        exact = self.run(self.exact.commit_events([event]))
        self.note_path(writes)
        expected = self.reference.commit(
            transfers, journal_seq=self.journal_seq, event_id=event_id, ts_ns=3
        )
        assert fast == exact == [expected]
        self.sent_now(transfers)

    @rule(cached_max=st.sampled_from([1, 4, 1_000]))
    def restart(self, cached_max: int) -> None:
        self.run(self.fast.close())
        self.run(self.exact.close())
        self.fast, self.exact = self.run(self.open(cached_max))

    # -- INVARIANTS --

    @invariant()
    def both_schemas_hold_the_same_rows(self) -> None:
        fast_schema, exact_schema = (sql.Identifier(s) for s in self.schemas)
        for text in TABLES:
            query = sql.SQL(text)
            fast = self.admin.execute(query.format(s=fast_schema)).fetchall()
            exact = self.admin.execute(query.format(s=exact_schema)).fetchall()
            assert fast == exact, text

    @invariant()
    def balances_agree_with_the_reference(self) -> None:
        assert self.run(self.fast.balances(ACCOUNT_IDS)) == self.reference.balances(ACCOUNT_IDS)

    def teardown(self) -> None:
        try:
            fast, exact = self.run(self.fast.verify()), self.run(self.exact.verify())
            assert fast.ok and exact.ok, (fast, exact)
            assert fast.head_hash == exact.head_hash
            assert fast.transfers_checked == len(self.reference.transfers)
        finally:
            self.run(self.fast.close())
            self.run(self.exact.close())
            self.runner.close()
            self.admin.close()
            for schema in self.schemas:
                drop_schema(self.database_url, schema)


@pytest.mark.parametrize("id_base", [0, sequenced_id_min], ids=["client", "sequenced"])
def test_fast_path_books_what_the_exact_path_books(pg_database: str, id_base: int) -> None:
    machine = type("Machine", (FastPathMachine,), {"database_url": pg_database, "id_base": id_base})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=60,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# -- THE PIECES --

BIG_AMOUNTS = st.sampled_from([1 << 40, (1 << 61) - 1, 1 << 61, 1 << 62, balance_max])


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_decide_plain_proves_exactly_the_writes_the_reference_applies_whole(
    data: st.DataObject,
) -> None:
    """In memory, against the reference: from balances of any size (pending sums included),
    `decide_plain` accepts a write exactly when the reference applies every transfer of it
    (below `amounts_sum_max`), and then adds what the reference adds."""
    reference = ReferenceLedger()
    assert reference.create_accounts(STANDARD_ACCOUNTS) == []
    usdt = ACCOUNTS_OF[USDT]
    amounts = st.integers(1, 500) | BIG_AMOUNTS
    next_id = 1
    for _ in range(data.draw(st.integers(0, 8))):  # balances before the write
        debit, credit = data.draw(st.permutations(usdt))[:2]
        fund = Transfer(id=next_id, debit_account_id=debit, credit_account_id=credit,
                        amount_minor=data.draw(amounts), ledger=USDT, code=1,
                        flags=data.draw(st.sampled_from([0, 0, PENDING])))  # fmt: skip
        reference.commit([fund], journal_seq=1, ts_ns=1)
        next_id += 1
    transfers = []
    for _ in range(data.draw(st.integers(1, 8))):
        debit, credit = data.draw(st.permutations(usdt))[:2]
        transfers.append(
            Transfer(id=next_id, debit_account_id=debit, credit_account_id=credit,
                     amount_minor=data.draw(amounts), ledger=USDT, code=1,
                     flags=data.draw(st.sampled_from([0, 0, LINKED])))
        )  # fmt: skip
        next_id += 1
    transfers[-1] = msgspec.structs.replace(transfers[-1], flags=0)
    columns = TransferColumns.from_transfers(transfers)
    assert columns is not None and plain_write_shape(columns.rows, [len(transfers)])
    states = {
        a.id: _AccountState(a, b.debits_posted, b.credits_posted, b.debits_pending,
                            b.credits_pending)
        for a in STANDARD_ACCOUNTS
        if (b := reference.balances([a.id])[a.id]) is not None
    }  # fmt: skip
    got = decide_plain(columns.rows, states, account_index(columns.rows))
    before = reference.balances(usdt)
    applied_whole = reference.commit(transfers, journal_seq=2, ts_ns=2).results == []
    within = max(t.amount_minor for t in transfers) * len(transfers) <= amounts_sum_max
    event("proved" if got is not None else "not proved")
    assert (got is not None) == (applied_whole and within)
    if got is not None:
        after = reference.balances(usdt)
        added = {state.account.id: (d, c) for state, d, c in got}
        for account_id in usdt:
            d, c = added.get(account_id, (0, 0))
            assert after[account_id].debits_posted - before[account_id].debits_posted == d
            assert after[account_id].credits_posted - before[account_id].credits_posted == c


async def _book_engine_flow(database_url: str, schema: str, fast_path: bool) -> Ledger:
    _, batches = applied_flow(list(range(10, 40)), 30, 15, seed=5)
    ids, columns = postings_of_batches(batches)
    books = await Ledger.open(database_url, schema=schema, fast_path=fast_path)
    assert await books.create_accounts([posting_account(i) for i in ids.tolist()]) == []
    events = [
        EventCommit(event_id=f"ev:{b.journal_seq}", journal_seq=b.journal_seq, transfers=c,
                    ts_ns=b.ts_ns)
        for b, c in zip(batches, columns, strict=True)
    ]  # fmt: skip
    for first in range(0, len(events), 7):
        outcomes = await books.commit_events(events[first : first + 7])
        assert all(o.results == [] and not o.event_already_applied for o in outcomes)
    # A redelivery of the whole flow books nothing and says so.
    again = await books.commit_events(events)
    assert all(o.event_already_applied for o in again)
    return books


def test_the_engine_flow_takes_the_fast_path_and_matches_the_exact_one(
    database_url: str, schema: str
) -> None:
    other = new_schema()

    async def scenario() -> None:
        fast = await _book_engine_flow(database_url, schema, True)
        exact = await _book_engine_flow(database_url, other, False)
        try:
            assert fast.fast_path_writes == 5 and exact.fast_path_writes == 0
            fast_report, exact_report = await fast.verify(), await exact.verify()
            assert fast_report.ok and fast_report.head_hash == exact_report.head_hash
            assert fast_report.transfers_checked == exact_report.transfers_checked > 0
        finally:
            await fast.close()
            await exact.close()

    try:
        asyncio.run(scenario())
    finally:
        drop_schema(database_url, other)


def test_a_write_that_might_fail_takes_the_exact_path_and_stores_nothing_first(
    database_url: str, schema: str
) -> None:
    """One overdraft among clean transfers: the whole write goes the exact path."""
    alice, fees = ACCOUNTS_OF[USDT][1], ACCOUNTS_OF[USDT][4]
    omnibus = ACCOUNTS_OF[USDT][0]

    async def scenario() -> None:
        books = await Ledger.open(database_url, schema=schema)
        try:
            await books.create_accounts(STANDARD_ACCOUNTS)
            fund = Transfer(id=1, debit_account_id=omnibus, credit_account_id=alice,
                            amount_minor=100, ledger=USDT, code=1)  # fmt: skip
            assert await books.commit([fund], journal_seq=1) == CommitResult(commit_no=1)
            assert books.fast_path_writes == 1
            spend = [
                Transfer(id=2, debit_account_id=alice, credit_account_id=fees, amount_minor=60,
                         ledger=USDT, code=1),
                Transfer(id=3, debit_account_id=alice, credit_account_id=fees, amount_minor=60,
                         ledger=USDT, code=1),
            ]  # fmt: skip
            result = await books.commit(spend, journal_seq=2)
            assert [(i, r.name) for i, r in result.results] == [(1, "exceeds_credits")]
            assert books.fast_path_writes == 1
            balances = await books.balances([alice])
            assert balances[alice].credits_posted - balances[alice].debits_posted == 40
            assert (await books.verify()).ok
        finally:
            await books.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columnar_postings_give_the_transfers_postings_gives(seed: int) -> None:
    _, batches = applied_flow(list(range(10, 40)), 25, 15, seed=seed)
    ids, columns = postings_of_batches(batches)
    accounts: dict[int, Account] = {}
    for batch, batch_columns in zip(batches, columns, strict=True):
        made, transfers = postings(batch)
        assert batch_columns.to_transfers() == transfers
        assert list(TransferColumns(batch_columns.rows)) == transfers
        accounts.update((a.id, a) for a in made)
    assert ids.tolist() == sorted(accounts)
    assert all(posting_account(i) == a for i, a in accounts.items())


ENGINE_ACCOUNTS = st.sampled_from([0, 1, 2, 17, (1 << 40) - 1]) | st.sampled_from([1 << 40, -3])


@st.composite
def engine_batch(draw: st.DrawFn, journal_seq: int) -> EventBatch:
    count = draw(st.integers(0, 12))
    rows = np.zeros(count, dtype=TRANSFER_DTYPE)
    trade_ids = draw(st.lists(st.sampled_from([0, 0, 5, 6]), min_size=count, max_size=count))
    for i in range(count):
        rows[i] = (
            draw(st.integers(-5, 1 << 62)),
            draw(ENGINE_ACCOUNTS),
            draw(ENGINE_ACCOUNTS),
            draw(st.sampled_from([0, 0, 9, -(1 << 63)])),
            trade_ids[i],
            draw(st.sampled_from([1, 2, (1 << 16) - 1]) | st.sampled_from([1 << 16, -1])),
            i,
            draw(st.integers(0, 255)),
            draw(st.integers(0, 1)),
            draw(st.integers(0, 2)),
        )
    return EventBatch(
        shard=draw(st.sampled_from(["0", "eu-1"])),
        journal_seq=journal_seq,
        origin="",
        batch_id=0,
        ts_ns=0,
        events=b"",
        transfers=rows.tobytes(),
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_columnar_postings_of_any_rows_equal_postings(data: st.DataObject) -> None:
    """Any engine rows, valid or not, raw or compressed as the engine compresses an outcome too
    large for one message: the same transfers and accounts, or the same error."""
    journal_seqs = st.sampled_from([1, 2, 1 << 40, (1 << 72) - 1, 0, -1, 1 << 80])
    seqs = data.draw(st.lists(journal_seqs, min_size=1, max_size=4))
    batches = [
        compressed(batch) if data.draw(st.booleans()) else batch
        for batch in (data.draw(engine_batch(seq)) for seq in seqs)
    ]
    expected: list[list[Transfer]] = []
    accounts: dict[int, Account] = {}
    try:
        for batch in batches:
            made, transfers = postings(batch)
            expected.append(transfers)
            accounts.update((a.id, a) for a in made)
    except ValueError as error:
        with pytest.raises(ValueError) as got:
            postings_of_batches(batches)
        assert str(got.value) == str(error)
        return
    ids, columns = postings_of_batches(batches)
    assert [c.to_transfers() for c in columns] == expected
    assert ids.tolist() == sorted(accounts)
    assert all(posting_account(i) == a for i, a in accounts.items())


def test_a_round_with_compressed_batches_posts_what_the_raw_batches_post() -> None:
    """The engine compresses an outcome too large for one message (codec 1): a round mixing
    such batches with raw ones posts the same transfers in one pass."""
    _, batches = applied_flow(list(range(10, 40)), 20, 15, seed=3)
    mixed = [compressed(b) if k % 2 else b for k, b in enumerate(batches)]
    ids, columns = postings_of_batches(batches)
    mixed_ids, mixed_columns = postings_of_batches(mixed)
    assert mixed_ids.tolist() == ids.tolist()
    assert [c.to_transfers() for c in mixed_columns] == [c.to_transfers() for c in columns]


def test_columnar_postings_refuse_what_postings_refuses() -> None:
    _, batches = applied_flow(list(range(10, 20)), 3, 10, seed=1)
    rows = batches[-1].transfer_rows().copy()
    assert len(rows) > 0
    rows["debit_account_id"][0] = 1 << 41  # an owner beyond account_id_for's 40 bits
    bad = msgspec.structs.replace(batches[-1], transfers=rows.tobytes())
    with pytest.raises(ValueError) as expected:
        postings(bad)
    with pytest.raises(ValueError) as got:
        postings_of_batches([batches[0], bad])
    assert str(got.value) == str(expected.value)
    empty = EventBatch(shard="0", journal_seq=1, origin="", batch_id=0, ts_ns=0, events=b"")
    ids, [columns] = postings_of_batches([empty])
    assert len(ids) == 0 and len(columns) == 0
    ids, none = postings_of_batches([])
    assert len(ids) == 0 and none == []
    assert np.empty(0, dtype=TRANSFER_DTYPE).dtype == empty.transfer_rows().dtype


def test_transfer_columns_refuse_bad_input() -> None:
    with pytest.raises(ValueError):
        TransferColumns(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError):
        TransferColumns(np.zeros((2, 2), dtype=COLUMNS_DTYPE))
    for t in (Transfer(id=-1), Transfer(id=1 << 128), Transfer(id=1, user_data_1=1 << 63),
              Transfer(id=1, amount_minor=-(1 << 64))):  # fmt: skip
        assert TransferColumns.from_transfers([t]) is None
    ts = [Transfer(id=(1 << 127) + 5, debit_account_id=3, credit_account_id=4, amount_minor=9,
                   ledger=1, code=2, flags=1, pending_id=(1 << 100) + 1, user_data_1=-7,
                   user_data_2=8)]  # fmt: skip
    columns = TransferColumns.from_transfers(ts)
    assert columns is not None and TransferColumns(columns.rows)[0] == ts[0]
    assert TransferColumns(columns.rows)[:1] == ts


def test_the_account_cache_stays_within_its_bound_and_reloads_what_it_dropped(
    database_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for 3 accounts, writes over 10 still give the reference's results: the
    accounts dropped from memory come back from PostgreSQL with their balances."""
    monkeypatch.setattr("ledger.ledger.accounts_cached_max", 3)
    reference = ReferenceLedger()
    omnibus, alice, bob, _, fees = ACCOUNTS_OF[USDT]
    pairs = [(omnibus, alice), (alice, bob), (bob, fees), (omnibus, ACCOUNTS_OF[BTC][0])]

    async def scenario() -> None:
        books = await Ledger.open(database_url, schema=schema)
        try:
            assert await books.create_accounts(STANDARD_ACCOUNTS) == []
            assert reference.create_accounts(STANDARD_ACCOUNTS) == []
            assert len(books._accounts) <= 3
            for seq in range(1, 13):
                debit, credit = pairs[seq % len(pairs)]
                transfers = [
                    Transfer(id=seq * 10 + k, debit_account_id=debit, credit_account_id=credit,
                             amount_minor=7 + k, ledger=USDT, code=1)
                    for k in range(3)
                ]  # fmt: skip
                got = await books.commit(transfers, journal_seq=seq, ts_ns=seq)
                assert got == reference.commit(transfers, journal_seq=seq, ts_ns=seq)
                assert len(books._accounts) <= 3
            assert books.fast_path_writes > 0
            ids = [a.id for a in STANDARD_ACCOUNTS]
            assert await books.balances(ids) == reference.balances(ids)
        finally:
            await books.close()

    asyncio.run(scenario())
