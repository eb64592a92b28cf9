"""`Ledger.commit_events` (many events in one transaction) is `commit` one event at a time.

Goal: the consumer's fast path must book exactly what the plain path books. Method: the same
events (the engine's transfers of a seeded flow, plus transfers that overdraw a customer so
that refused ids are recorded too) go into two schemas: one `commit` per event in the first,
`commit_events` in uneven chunks in the second, with an event repeated inside a chunk and a
whole chunk sent again. Both must give the same results, the same balances and the same hash
chain, link for link (equal head hashes).
"""

from __future__ import annotations

import asyncio

from engine._codes import TransferResult
from engine.simulate import applied_flow
from ledger import EventCommit, Ledger, Transfer
from ledger.postings import postings

ACCOUNTS = list(range(10, 30))


def events_and_accounts() -> tuple[list[EventCommit], list]:
    _, batches = applied_flow(ACCOUNTS, 40, 15, seed=23)
    events, accounts = [], {}
    for batch in batches:
        made, transfers = postings(batch)
        accounts.update((a.id, a) for a in made)
        if batch.journal_seq % 5 == 0 and transfers:  # a customer account cannot go below 0
            customer = next(t for t in transfers if t.code and t.debit_account_id in accounts)
            transfers.append(
                Transfer(
                    id=(1 << 120) + batch.journal_seq,
                    debit_account_id=customer.credit_account_id,
                    credit_account_id=customer.debit_account_id,
                    amount_minor=1 << 60,
                    ledger=customer.ledger,
                    code=1,
                )
            )
        events.append(
            EventCommit(
                event_id=f"ev:0:{batch.journal_seq}",
                journal_seq=batch.journal_seq,
                transfers=transfers,
                ts_ns=batch.ts_ns,
            )
        )
    return events, list(accounts.values())


def test_commit_events_books_what_commit_books_link_for_link(
    database_url: str, two_schemas: tuple[str, str]
) -> None:
    events, accounts = events_and_accounts()

    async def scenario() -> None:
        one = await Ledger.open(database_url, schema=two_schemas[0])
        many = await Ledger.open(database_url, schema=two_schemas[1])
        try:
            for ledger in (one, many):
                assert await ledger.create_accounts(accounts) == []
            plain = [
                await one.commit(e.transfers, journal_seq=e.journal_seq, event_id=e.event_id,
                                 ts_ns=e.ts_ns)
                for e in events
            ]  # fmt: skip
            assert any(r == TransferResult.exceeds_credits for c in plain for _, r in c.results), (
                "the overdrafts must be refused and recorded"
            )
            fast = []
            start, size = 0, 1
            while start < len(events):
                chunk = events[start : start + size]
                outcomes = await many.commit_events([*chunk, chunk[0]])  # a repeat inside
                assert outcomes[-1].event_already_applied
                fast += outcomes[:-1]
                start, size = start + size, size % 6 + 1
            again = await many.commit_events(events[:5])  # a chunk sent again: nothing new
            assert all(o.event_already_applied for o in again)
            assert [o.commit_no for o in again] == [c.commit_no for c in plain[:5]]
            assert [(c.results, c.commit_no) for c in fast] == [
                (c.results, c.commit_no) for c in plain
            ]
            ids = [a.id for a in accounts]
            assert await one.balances(ids) == await many.balances(ids)
            reports = [await one.verify(), await many.verify()]
            assert all(r.ok for r in reports), reports
            assert reports[0].head_hash == reports[1].head_hash
            assert reports[0].links_checked == len(events)
        finally:
            await one.close()
            await many.close()

    asyncio.run(scenario())
