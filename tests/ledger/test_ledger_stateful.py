"""The ledger against its reference under random commits, with the books' invariants.

Goal: `Ledger` (in memory over caches, written to PostgreSQL) and `ReferenceLedger` (plain
dicts) give the same result for every transfer of every commit and hold the same balances, and
the books keep their invariants whatever arrives: per asset the accounts' net posted balances sum
to zero (money is conserved) and pending debits equal pending credits; no protected account is
overdrawn, pending included; every transfer id is stored at most once, never both stored and
failed.
Method: a Hypothesis state machine drives both with the same commits: valid and invalid
transfers, holds and their posts and voids, linked chains, retries of old ids (same or changed
content), event ids new and repeated, and restarts of the `Ledger` with a cache of a few
transfers (so old ids come back from PostgreSQL). Invariants are read from PostgreSQL after each
step; at the end the chain verifies and balances as of past journal sequences agree.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import psycopg
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from psycopg import sql

from ledger import Ledger, ReferenceLedger, Transfer, TransferFlags
from ledger.model import balance_max
from tests.ledger.ledger_fixtures import (
    BTC,
    CREDITS_LIMITED,
    DEBITS_LIMITED,
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
UNKNOWN_PENDING = 123_456_789
AMOUNTS = st.integers(1, 400) | st.sampled_from([0, -1, balance_max])


class LedgerMachine(RuleBasedStateMachine):
    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.schema = new_schema()
        self.ledger = self.run(self.open(4))
        self.reference = ReferenceLedger()
        self.admin = psycopg.connect(self.database_url, autocommit=True)
        assert self.run(self.ledger.create_accounts(STANDARD_ACCOUNTS)) == []
        assert self.reference.create_accounts(STANDARD_ACCOUNTS) == []
        self.sent: list[Transfer] = []
        self.pending_ids: list[int] = []
        self.events: list[tuple[str, int]] = []  # (event id, its journal sequence)
        self.next_id = 1
        self.journal_seq = 1

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    async def open(self, cached_max: int) -> Ledger:
        return await Ledger.open(
            self.database_url, schema=self.schema, transfers_cached_max=cached_max
        )

    def new_transfer(self, data: st.DataObject) -> Transfer:
        id_ = self.next_id
        self.next_id += 1
        kinds = [0, 0, 0, PENDING, PENDING, POST, POST, VOID, PENDING | POST]
        kind = data.draw(st.sampled_from(kinds))
        linked = LINKED if data.draw(st.integers(0, 4)) == 0 else 0
        if kind in (POST, VOID):
            # Mostly holds that exist (open or ended), now and then one that does not.
            stored = [i for i in self.pending_ids if i in self.reference.transfers][-8:]
            pending_id = data.draw(st.sampled_from([*stored, *stored, UNKNOWN_PENDING]))
            amount = data.draw(st.sampled_from([0, 0]) | st.integers(1, 150))
            return Transfer(
                id=id_, pending_id=pending_id, amount_minor=amount, flags=kind | linked,
                code=data.draw(st.sampled_from([0, 0, 3])),
            )  # fmt: skip
        asset = data.draw(st.sampled_from([USDT, BTC]))
        # Mostly the asset's own accounts; now and then a stranger, an unknown, a wrong ledger.
        accounts = st.sampled_from(ACCOUNTS_OF[asset]) | st.sampled_from(
            [UNKNOWN_ACCOUNT, ACCOUNTS_OF[3 - asset][1]]
        )
        own = st.sampled_from(ACCOUNTS_OF[asset])
        return Transfer(
            id=id_,
            debit_account_id=data.draw(own | own | accounts),
            credit_account_id=data.draw(own | own | accounts),
            amount_minor=data.draw(AMOUNTS),
            ledger=asset if data.draw(st.integers(0, 9)) else 3 - asset,
            code=1,
            flags=kind | linked,
        )

    def draw_transfer(self, data: st.DataObject) -> Transfer:
        how = data.draw(st.sampled_from(["new", "new", "new", "retry", "change"]))
        if how == "new" or not self.sent:
            return self.new_transfer(data)
        # Half the time an id that was stored: those are the retries that can say `exists`.
        stored = [t for t in self.sent if t.id in self.reference.transfers]
        old = data.draw(st.sampled_from(self.sent) | st.sampled_from(stored or self.sent))
        if how == "retry":
            return old
        return msgspec.structs.replace(old, amount_minor=old.amount_minor + 1)

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        transfers = [self.draw_transfer(data) for _ in range(data.draw(st.integers(1, 6)))]
        if transfers[-1].flags & LINKED and data.draw(st.integers(0, 3)):
            # An open chain now and then; mostly chains that close.
            last = transfers[-1]
            transfers[-1] = msgspec.structs.replace(last, flags=last.flags & ~LINKED)
        event = data.draw(st.sampled_from(["none", "none", "none", "new", "new", "old"]))
        self.journal_seq += data.draw(st.integers(0, 1))
        event_id, journal_seq = None, self.journal_seq
        if event == "new" or (event == "old" and not self.events):
            event_id = f"ev:{len(self.events)}"
            self.events.append((event_id, journal_seq))
        elif event == "old":  # a redelivery, with the sequence it had: behind the last commit
            event_id, journal_seq = data.draw(st.sampled_from(self.events))
        ts_ns = journal_seq * 1_000
        got = self.run(
            self.ledger.commit(transfers, journal_seq=journal_seq, event_id=event_id, ts_ns=ts_ns)
        )
        expected = self.reference.commit(
            transfers, journal_seq=journal_seq, event_id=event_id, ts_ns=ts_ns
        )
        assert got == expected
        ids = [t.id for t in transfers]
        assert self.run(self.ledger.lookup_transfers(ids)) == self.reference.lookup_transfers(ids)
        self.sent.extend(transfers)
        self.pending_ids.extend(t.id for t in transfers if t.flags & PENDING)

    @rule(cached_max=st.sampled_from([1, 4, 1_000]))
    def restart(self, cached_max: int) -> None:
        self.run(self.ledger.close())
        self.ledger = self.run(self.open(cached_max))

    @invariant()
    def balances_agree_and_money_is_conserved(self) -> None:
        balances = self.run(self.ledger.balances(ACCOUNT_IDS))
        assert balances == self.reference.balances(ACCOUNT_IDS)
        for asset in (USDT, BTC):
            of_asset = [balances[i] for i in ACCOUNTS_OF[asset]]
            assert sum(b.net for b in of_asset) == 0
            assert sum(b.debits_pending for b in of_asset) == sum(
                b.credits_pending for b in of_asset
            )
        for account in STANDARD_ACCOUNTS:
            b = balances[account.id]
            if account.flags & DEBITS_LIMITED:
                assert b.debits_posted + b.debits_pending <= b.credits_posted
            if account.flags & CREDITS_LIMITED:
                assert b.credits_posted + b.credits_pending <= b.debits_posted

    @invariant()
    def every_transfer_id_is_stored_at_most_once(self) -> None:
        query = sql.SQL(
            "SELECT (SELECT count(*) FROM {s}.transfers),"
            " (SELECT count(DISTINCT id) FROM {s}.transfers),"
            " (SELECT count(*) FROM {s}.transfers JOIN {s}.failed_transfers USING (id))"
        ).format(s=sql.Identifier(self.schema))
        row = self.admin.execute(query).fetchone()
        assert row == (len(self.reference.transfers), len(self.reference.transfers), 0)

    def teardown(self) -> None:
        try:
            report = self.run(self.ledger.verify())
            assert report.ok, report
            assert report.transfers_checked == len(self.reference.transfers)
            for seq in sorted({1, self.journal_seq // 2, self.journal_seq - 1}):
                got = self.run(self.ledger.balances_as_of(ACCOUNT_IDS, seq))
                assert got == self.reference.balances_as_of(ACCOUNT_IDS, seq), seq
        finally:
            self.run(self.ledger.close())
            self.runner.close()
            self.admin.close()
            drop_schema(self.database_url, self.schema)


def test_ledger_agrees_with_the_reference_and_keeps_the_books(database_url: str) -> None:
    machine = type("Machine", (LedgerMachine,), {"database_url": database_url})
    run_state_machine_as_test(machine)
