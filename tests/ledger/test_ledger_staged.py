"""Staged writes (`Ledger.stage_events`): the consumer's pipeline books what `commit_events`
books, and a staged write that fails takes those staged after it down with it, storing nothing.

Goal: deciding a round while PostgreSQL stores the one before must not change one stored row,
balance or chain link, and a failure must leave the ledger where its last stored write left it.
Method: the engine's own flow (engine/simulate.py) booked into two schemas, one round at a time
by `commit_events` and by `stage_events` (with `commit_events` for what cannot be staged); the
tables must be equal row for row and the chains verify with one head. Then two rounds staged
behind a held lock, the connection killed under them, and the ledger reopened.
"""

from __future__ import annotations

import asyncio

import msgspec
import psycopg
import pytest
from psycopg import sql

from engine._codes import AccountResult
from engine.simulate import applied_flow
from ledger import EventCommit, Ledger
from ledger.postings import posting_account, postings_of_batches

TABLES = (
    "SELECT * FROM {s}.transfers ORDER BY position",
    "SELECT * FROM {s}.chain ORDER BY commit_no",
    "SELECT * FROM {s}.applied_events ORDER BY event_id",
    "SELECT id, debits_posted, credits_posted, debits_pending, credits_pending"
    " FROM {s}.accounts ORDER BY id",
    "SELECT * FROM {s}.meta ORDER BY key",
)
ROUND = 6  # events per round


def engine_rounds(seed: int) -> tuple[list[int], list[list[EventCommit]]]:
    """The accounts and the rounds of events of an engine flow, as the consumer books them."""
    _, batches = applied_flow(list(range(10, 40)), 48, 15, seed=seed)
    ids, columns = postings_of_batches(batches)
    events = [
        EventCommit(event_id=f"ev:{b.journal_seq}", journal_seq=b.journal_seq, transfers=c,
                    ts_ns=b.ts_ns)
        for b, c in zip(batches, columns, strict=True)
    ]  # fmt: skip
    return ids.tolist(), [events[k : k + ROUND] for k in range(0, len(events), ROUND)]


def tables(database_url: str, schema: str) -> list[list[tuple[object, ...]]]:
    with psycopg.connect(database_url) as conn:
        return [
            conn.execute(sql.SQL(t).format(s=sql.Identifier(schema))).fetchall() for t in TABLES
        ]


@pytest.mark.parametrize("seed", [5, 6])
def test_staged_rounds_store_what_commit_events_stores(
    database_url: str, two_schemas: tuple[str, str], seed: int
) -> None:
    account_ids, rounds = engine_rounds(seed)

    async def book(schema: str, staged: bool) -> int:
        books = await Ledger.open(database_url, schema=schema)
        try:
            assert await books.create_accounts([posting_account(i) for i in account_ids]) == []
            tasks, staged_rounds = [], 0
            for events in rounds:
                task = await books.stage_events(events) if staged else None
                if task is None:
                    for done in tasks:
                        await done
                    outcomes = await books.commit_events(events)
                else:
                    tasks.append(task)
                    staged_rounds += 1
                    continue
                assert all(o.results == [] and not o.event_already_applied for o in outcomes)
            for done in tasks:
                assert all(o.results == [] for o in await done)
            report = await books.verify()
            assert report.ok, report
            return staged_rounds
        finally:
            await books.close()

    assert asyncio.run(book(two_schemas[0], False)) == 0
    staged_rounds = asyncio.run(book(two_schemas[1], True))
    assert staged_rounds == len(rounds)  # every account was known: every round staged
    assert tables(database_url, two_schemas[0]) == tables(database_url, two_schemas[1])


def test_a_failed_staged_write_fails_the_ones_after_it_and_stores_nothing(
    database_url: str, two_schemas: tuple[str, str]
) -> None:
    account_ids, rounds = engine_rounds(7)
    schema, reference = two_schemas

    async def scenario() -> None:
        books = await Ledger.open(database_url, schema=schema)
        try:
            assert await books.create_accounts([posting_account(i) for i in account_ids]) == []
            assert (await books.stage_events(rounds[0])) is not None
            await books._staged_done()
            stored = tables(database_url, schema)
            # The next two rounds are staged while the writer's lock is held, so their writes
            # wait; then the connection dies under them.
            async with books._lock:
                first = await books.stage_events(rounds[1])
                second = await books.stage_events(rounds[2])
                assert first is not None and second is not None
                with psycopg.connect(database_url, autocommit=True) as admin:
                    pid = books._conn.info.backend_pid
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for task in (first, second):
                with pytest.raises((psycopg.Error, RuntimeError)):
                    await task
            assert await books.stage_events(rounds[3]) is None  # not on top of a failure
            assert tables(database_url, schema) == stored
        finally:
            await books.close()
        # A new writer books the rest exactly, as the consumer does after reconnecting.
        books = await Ledger.open(database_url, schema=schema)
        try:
            for events in rounds[1:]:
                outcomes = await books.commit_events(events)
                assert all(o.results == [] and not o.event_already_applied for o in outcomes)
            assert (await books.verify()).ok
        finally:
            await books.close()
        books = await Ledger.open(database_url, schema=reference)
        try:
            assert await books.create_accounts([posting_account(i) for i in account_ids]) == []
            for events in rounds:
                await books.commit_events(events)
        finally:
            await books.close()

    asyncio.run(scenario())
    assert tables(database_url, schema) == tables(database_url, reference)


def test_what_the_ledger_cannot_decide_in_memory_is_not_staged(
    database_url: str, two_schemas: tuple[str, str]
) -> None:
    account_ids, rounds = engine_rounds(8)

    async def scenario() -> None:
        books = await Ledger.open(database_url, schema=two_schemas[0])
        try:
            # No account created yet: the accounts are not in memory.
            assert await books.stage_events(rounds[0]) is None
            assert await books.create_accounts([posting_account(i) for i in account_ids]) == []
            assert await books.stage_events(rounds[0]) is not None
            # The same events again (a redelivery) or an older journal sequence: not staged.
            assert await books.stage_events(rounds[0]) is None
            again = await books.commit_events(rounds[0])
            assert all(o.event_already_applied for o in again)
        finally:
            await books.close()

    asyncio.run(scenario())


def test_accounts_created_aside_are_new_ones_only_and_let_a_round_be_staged(
    database_url: str, two_schemas: tuple[str, str]
) -> None:
    account_ids, rounds = engine_rounds(9)
    accounts = [posting_account(i) for i in account_ids]
    bad = msgspec.structs.replace(accounts[0], id=-5)  # refused by the checks: not created

    async def scenario() -> None:
        books = await Ledger.open(database_url, schema=two_schemas[0])
        try:
            assert await books.create_accounts(accounts[:3]) == []
            created = await books.create_accounts_aside([*accounts, bad])
            assert sorted(created) == sorted(account_ids[3:])  # the first three existed
            task = await books.stage_events(rounds[0])
            assert task is not None and all(o.results == [] for o in await task)
            again = await books.create_accounts(accounts)
            assert {result for _, result in again} == {AccountResult.account_exists}
            assert (await books.verify()).ok
        finally:
            await books.close()

    asyncio.run(scenario())


# Characters COPY's text format escapes, its NULL marker, and text beyond ASCII.
ODD_EVENT_IDS = ("tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "\\x00", "ünï")


@pytest.mark.parametrize("staged", [False, True])
def test_event_ids_are_stored_exactly_as_given(
    database_url: str, schema: str, staged: bool
) -> None:
    """Event ids reach the chain and applied_events as COPY text: escaping must not change
    one, and a retry must find it applied."""
    account_ids, rounds = engine_rounds(5)
    events = [
        msgspec.structs.replace(e, event_id=f"{ODD_EVENT_IDS[k % len(ODD_EVENT_IDS)]}:{k}")
        for k, e in enumerate(rounds[0] + rounds[1])
    ]

    async def book() -> None:
        books = await Ledger.open(database_url, schema=schema)
        try:
            assert await books.create_accounts([posting_account(i) for i in account_ids]) == []
            task = await books.stage_events(events) if staged else None
            outcomes = await task if task is not None else await books.commit_events(events)
            assert (task is not None) == staged
            assert all(o.results == [] and not o.event_already_applied for o in outcomes)
            again = await books.commit_events(events)
            assert all(o.event_already_applied for o in again)
            report = await books.verify()
            assert report.ok, report
        finally:
            await books.close()

    asyncio.run(book())
    with psycopg.connect(database_url) as conn:
        chain = conn.execute(
            sql.SQL("SELECT event_id FROM {}.chain ORDER BY commit_no").format(
                sql.Identifier(schema)
            )
        ).fetchall()
        applied = conn.execute(
            sql.SQL("SELECT event_id FROM {}.applied_events").format(sql.Identifier(schema))
        ).fetchall()
    assert [row[0] for row in chain] == [e.event_id for e in events]
    assert sorted(row[0] for row in applied) == sorted(e.event_id for e in events)
