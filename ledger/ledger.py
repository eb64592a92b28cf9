"""The ledger: TigerBeetle's account and transfer semantics, kept in PostgreSQL by one writer.

One `Ledger` owns one PostgreSQL schema (`ledger._schema`) and is its only writer: it holds a
session advisory lock on the schema for as long as it is open, so a second writer fails at
`open` instead of corrupting balances. It decides every transfer in memory, over a cache of the
accounts it touched and the recent transfers (`model.transfers_cached_max`), loading whatever a
commit needs and does not hold with one query per kind, and then writes the whole commit in one
database transaction: the applied event id, one binary COPY of the new transfers, the new
balances, the refused ids and the commit's hash-chain link (`ledger.chain`). PostgreSQL is the
truth: when a write fails the caches are dropped and reloaded from it, and a new `Ledger` on the
same schema carries on where the last one stopped, old ids included.

Two paths decide, with the same results. The exact path checks one transfer at a time, in
Python (`_decide`). The fast path (ledger/_fast.py) takes a whole write of plain transfers and
linked chains (the consumer's rounds: `TransferColumns`, no object per transfer) and proves with
NumPy that every one of them would be applied: shapes, accounts, ledgers, running balances
against both protections, and, with one query on the write's id range, that no id is stored or
refused already. Then it writes exactly the rows, balances and hash-chain links the exact path
would (one COPY built from the arrays); when any transfer might fail, or the write holds a hold,
a post or a void, the exact path decides the whole write instead.

Transfer results are checked in the order of their numbers (`TransferResult`, 50xx) and the
first failing check is the result. Where TigerBeetle leaves a choice, this ledger decides:

- A refused transfer's id is recorded as failed (a retry gets ``id_already_failed``) when the
  refusal came after the id was known to be new, i.e. results 5008 and up. Results 5001-5007 are
  about the id or the chain and are not recorded; that includes ``flags_must_be_known`` (5004),
  which is checked before ``exists`` so that an applied id is never also a failed one.
- A linked chain fails at its first non-OK member, ``exists`` included, with one exception: when
  every member of a chain is ``exists`` (the whole chain retried), each reports ``exists``.
- A post or void takes its accounts, ledger, code (when 0) and amount (post of 0: all; void:
  always all) from the pending transfer; checks 5016-5019 apply to plain and pending transfers
  only, because a post's accounts are its pending transfer's, checked when that was created. A
  post may carry a code of its own. A retry of a post or void is ``exists`` when it resolves to
  the stored transfer (0 fields filled from the pending transfer as for the original).
- A commit that names an event id already applied changes nothing and says so
  (`CommitResult.event_already_applied`); the event id is stored in the commit's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from itertools import accumulate, pairwise
from typing import Any, NamedTuple

import msgspec
import numpy as np
import psycopg

from engine._codes import AccountResult, TransferResult
from ledger import _fast, chain
from ledger._columns import TransferColumns
from ledger._schema import (
    CONNECT_OPTIONS,
    copy_text,
    ensure_schema,
    ids_in,
    q,
    split_ids,
    uuid_array,
)
from ledger.model import (
    ACCOUNT_FLAGS_KNOWN,
    PURPOSES_KNOWN,
    TRANSFER_FLAGS_KNOWN,
    Account,
    AccountFlags,
    Transfer,
    TransferFlags,
    TransferRecord,
    account_id_max,
    balance_max,
    code_max,
    ledger_max,
    sequenced_id_min,
    transfer_id_max,
    transfers_cached_max,
)
from ledger.reader import (
    DEFAULT_SCHEMA,
    LedgerReader,
    _in_account_id_range,
    _in_transfer_id_range,
    _record_of_row,
)

# -- LIMITS --

# A commit is one transaction and one COPY held in memory; a journal entry's transfer rows
# (ledger.postings.rows_per_entry_max) must fit one commit.
transfers_per_commit_max = 1 << 24
# Refused ids kept in memory, like transfers: retries of recent failures answer without a query.
failed_cached_max = 1 << 16
# Accounts (and their four sums) kept in memory, about 250 B each: every account of a busy
# exchange's recent trading; older ones are read again from PostgreSQL when next touched.
accounts_cached_max = 1 << 18
# journal_seq and ts_ns are PostgreSQL bigint.
journal_seq_max = (1 << 63) - 1
# user_data_1 and user_data_2 are PostgreSQL bigint (signed).
user_data_min = -(1 << 63)
user_data_max = (1 << 63) - 1


_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING)
_VOID = int(TransferFlags.VOID_PENDING)
_RESOLVING = _POST | _VOID
_DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
# Results from here on are decided after the id is known to be new: the id is recorded as failed.
FAILED_RECORDED_MIN = TransferResult.flags_are_mutually_exclusive
_OK = TransferResult.OK


class CommitResult(msgspec.Struct, frozen=True, kw_only=True):
    """What `Ledger.commit` did.

    `results` lists only the transfers that were not applied, as ``(index, result)`` in index
    order (TigerBeetle's convention): an empty list means every transfer was applied.
    `commit_no` is the hash-chain link written, or the one that applied the event before when
    `event_already_applied`; None when the commit had nothing to write (every transfer
    ``exists`` or refused without being recorded, and no event id).
    """

    results: list[tuple[int, TransferResult]] = []
    event_already_applied: bool = False
    commit_no: int | None = None


class EventCommit(msgspec.Struct, frozen=True, kw_only=True):
    """One event's transfers, for `Ledger.commit_events`."""

    event_id: str
    journal_seq: int
    transfers: Sequence[Transfer]  # a list, or TransferColumns (the consumer's, no objects)
    ts_ns: int


class _Link(msgspec.Struct, frozen=True):
    """One commit on its way into the chain: its records are new[first : first + count]."""

    first: int
    transfers_count: int
    failed: list[tuple[int, int, int]]  # (id, result, index in the commit)
    journal_seq: int
    event_id: str | None
    ts_ns: int


class LedgerBusy(RuntimeError):
    """Another `Ledger` is open on this schema: there is one writer per schema."""


class _AccountState:
    """An account and its four sums, as the writer holds them."""

    __slots__ = ("account", "cp", "cpe", "dp", "dpe")

    def __init__(self, account: Account, dp: int, cp: int, dpe: int, cpe: int) -> None:
        self.account = account
        self.dp = dp
        self.cp = cp
        self.dpe = dpe
        self.cpe = cpe


def _listed(transfers: Sequence[Transfer]) -> Sequence[Transfer]:
    """Transfers as the exact path reads them: objects, indexed often."""
    return transfers.to_transfers() if isinstance(transfers, TransferColumns) else transfers


def _bigint_array(values: Iterable[int]) -> str:
    """Integers as a PostgreSQL bigint[] literal: one text parameter, far cheaper to build than
    psycopg's dump of a list (which checks every element's text for quoting)."""
    return "{" + ",".join(map(str, values)) + "}"


_INSERT_ACCOUNTS = (
    "INSERT INTO {schema}.accounts (id, ledger, owner_id, purpose, flags, ts_ns)"
    " SELECT *, %s FROM unnest(%s::bigint[], %s::integer[], %s::bigint[], %s::smallint[],"
    " %s::integer[])"
)


def _account_columns(accounts: Sequence[Account], ts_ns: int) -> tuple[int | str, ...]:
    """`_INSERT_ACCOUNTS`' parameters."""
    return (
        ts_ns,
        _bigint_array(a.id for a in accounts),
        _bigint_array(a.ledger for a in accounts),
        _bigint_array(a.owner_id for a in accounts),
        _bigint_array(a.purpose for a in accounts),
        _bigint_array(a.flags for a in accounts),
    )


def _tuple_of_record(r: TransferRecord) -> bytes:
    return chain.transfer_tuple(
        r.position, r.id, r.debit_account_id, r.credit_account_id, r.amount_minor, r.pending_id,
        r.ledger, r.code, r.flags, r.user_data_1, r.user_data_2, r.journal_seq, r.ts_ns,
    )  # fmt: skip


# What `_commit_fast` commits, one link each: (transfers, journal_seq, event_id, ts_ns).
_Item = tuple[Sequence[Transfer], int, str | None, int]


def _plain_rows(items: Sequence[_Item]) -> tuple[Any, list[int]] | None:
    """The items' transfers as one array of columns and each item's count, when they have the
    shape the fast path decides (`ledger._fast.plain_write_shape`); else None."""
    parts = []
    for transfers, *_ in items:
        columns = (
            transfers
            if isinstance(transfers, TransferColumns)
            else TransferColumns.from_transfers(transfers)
        )
        if columns is None:
            return None
        parts.append(columns.rows)
    rows = _fast.concatenate(parts)
    counts = [len(part) for part in parts]
    if not _fast.plain_write_shape(rows, list(accumulate(counts))):
        return None
    return rows, counts


class _Write(NamedTuple):
    """One write with its decisions taken, from the chain's head as it was then."""

    links: list[_Link]
    payload: bytes | bytearray  # every link's transfers, binary COPY tuples in position order
    offsets: Sequence[int]  # transfer k is payload[offsets[k] : offsets[k + 1]]
    balances: list[tuple[int, int, int, int, int]]  # (account id, dp, cp, dpe, cpe) to store
    sequenced_id_max: int  # after the write
    sequenced_id_max_before: int
    commit_no: int  # the head's, before the write
    position: int  # the next position, before the write
    head: bytes


class _Chained(NamedTuple):
    """A write's links hashed: the chain rows to store and where the chain ends."""

    chain_rows: bytes  # the links' chain rows, text-format COPY
    failed_rows: list[tuple[int, int, int, int]]  # (id, result, commit_no, index)
    commit_no: int
    position: int
    head: bytes


def _chain_links(write: _Write) -> _Chained:
    """Hash a write's links onto its head (ledger.chain says how). Pure: runs in a thread."""
    commit_no, position, head = write.commit_no, write.position, write.head
    view = memoryview(write.payload)
    offsets = write.offsets
    rows: list[str] = []
    failed_rows: list[tuple[int, int, int, int]] = []
    for link in write.links:
        commit_no += 1
        digest = hashlib.sha256(head)
        header = chain.link_header(
            commit_no, link.journal_seq, position, link.transfers_count, len(link.failed)
        )
        digest.update(header)
        # The tuples one after another: the same digest as one update per tuple.
        first, end = offsets[link.first], offsets[link.first + link.transfers_count]
        digest.update(view[first:end])
        for id_, result, _ in link.failed:
            digest.update(chain.failed_tuple(id_, result))
        digest.update(chain.event_bytes(link.event_id))
        head = digest.digest()
        rows.append(
            f"{commit_no}\t{link.journal_seq}\t{position}\t{link.transfers_count}\t"
            f"{len(link.failed)}\t{copy_text(link.event_id)}\t{link.ts_ns}\t\\\\x{head.hex()}\n"
        )
        failed_rows.extend((id_, result, commit_no, i) for id_, result, i in link.failed)
        position += link.transfers_count
    return _Chained("".join(rows).encode(), failed_rows, commit_no, position, head)


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.cancelled() or task.exception() is not None


def _ready_future(value: _Chained) -> asyncio.Future[_Chained]:
    future: asyncio.Future[_Chained] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def _balances(states: Iterable[_AccountState]) -> list[tuple[int, int, int, int, int]]:
    """The balances to store of these accounts, as they are now."""
    return [(s.account.id, s.dp, s.cp, s.dpe, s.cpe) for s in states]


class Ledger(LedgerReader):
    """The ledger in one PostgreSQL schema; open with `Ledger.open`, the only writer.

    Methods are coroutines and serialize on one lock: one call runs at a time. `commit` costs
    O(transfers) in memory, up to five queries for what the caches miss (stored and failed ids,
    pending transfers and their state, accounts) and one transaction of up to five statements;
    through the fast path, O(transfers log transfers) in NumPy, one query for the accounts not
    held and one or two for the ids, and the same transaction. `create_accounts` costs one
    query and one INSERT. Queries (`ledger.reader.LedgerReader`'s)
    read PostgreSQL, not the caches, under the same lock.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        schema: str,
        cached_max: int,
        fast_path: bool = True,
    ) -> None:
        super().__init__(conn, schema)
        self._cached_max = cached_max
        self._fast_path = fast_path
        # Writes the fast path took (for metrics and the tests that prove it is taken).
        self.fast_path_writes = 0
        # Insertion order is eviction order (see `_transfers`).
        self._accounts: OrderedDict[int, _AccountState] = OrderedDict()
        # Insertion order is eviction order. OrderedDicts: taking the oldest key of a plain dict
        # scans the holes its earlier deletions left at the front (seen in a profile).
        self._transfers: OrderedDict[int, TransferRecord] = OrderedDict()
        # For each PENDING transfer in `_transfers`: 0 while pending, else the flag
        # (POST_PENDING or VOID_PENDING) of the transfer that resolved it.
        self._pending_state: dict[int, int] = {}
        self._failed: OrderedDict[int, int] = OrderedDict()
        self._commit_no = 0
        self._next_position = 1
        self._journal_seq = 0
        self._head = chain.GENESIS
        # The largest sequenced id stored (0 before the first): a sequenced id above it is new
        # without a query (PostgreSQL has no unique index on them, ledger/_schema.py).
        self._sequenced_id_max = 0
        self._state_valid = False
        # The newest write `stage_events` handed to PostgreSQL, and how many times the caches
        # were reloaded (a staged write decided before a reload must not be stored).
        self._staged: asyncio.Task[list[CommitResult]] | None = None
        self._generation = 0
        # Set while a write of another kind runs: nothing is staged meanwhile.
        self._exclusive = 0
        # `create_accounts_aside`'s connection, opened on first use (`open` sets the URL).
        self._database_url: str | None = None
        self._aside: psycopg.AsyncConnection[Any] | None = None

    # -- OPEN AND CLOSE --

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        transfers_cached_max: int = transfers_cached_max,
        fast_path: bool = True,
    ) -> Ledger:
        """Connect, create the schema's tables if missing, and become the schema's writer.

        Parameters
        ----------
        database_url
            A PostgreSQL connection URL.
        schema
            The schema this ledger owns.
        transfers_cached_max
            How many recent transfers to answer from memory (tests make it small to exercise
            the lookups of old ids).
        fast_path
            Whether a write of plain transfers that all pass is checked and stored in bulk
            (ledger/_fast.py). The results are the same either way: False is for the tests
            that prove it.

        Raises
        ------
        LedgerBusy
            When another `Ledger` holds the schema.
        """
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, options=CONNECT_OPTIONS
        )
        try:
            await ensure_schema(conn, schema)
            cur = await conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                ("clearline.ledger:" + schema,),
            )
            row = await cur.fetchone()
            if row is None or not row[0]:
                raise LedgerBusy(f"another ledger writer holds schema {schema!r}")
            ledger = cls(conn, schema, transfers_cached_max, fast_path)
            ledger._database_url = database_url
            await ledger._reload()
        except BaseException:
            await conn.close()
            raise
        return ledger

    async def close(self) -> None:
        """Release the schema for another writer and close the connection.

        The lock is released by a statement first: a closed connection's server process lets
        go of it only when it exits, a moment later, and a writer opened at once (a restart)
        would find the schema still busy.
        """
        await self._staged_done()
        if self._aside is not None:
            await self._aside.close()
        with contextlib.suppress(psycopg.Error):
            await self._conn.execute(
                "SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                ("clearline.ledger:" + self._schema,),
            )
        await self._conn.close()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _reload(self) -> None:
        """Forget every cache and read the chain's head: PostgreSQL is the truth."""
        self._generation += 1
        self._state_valid = False
        self._accounts.clear()
        self._transfers.clear()
        self._pending_state.clear()
        self._failed.clear()
        cur = await self._conn.execute(
            q(
                "SELECT commit_no, journal_seq, first_position + transfers_count, hash"
                " FROM {schema}.chain ORDER BY commit_no DESC LIMIT 1",
                self._schema,
            )
        )
        row = await cur.fetchone()
        if row is None:
            self._commit_no, self._journal_seq, self._next_position = 0, 0, 1
            self._head = chain.GENESIS
        else:
            self._commit_no, self._journal_seq, self._next_position = row[0], row[1], row[2]
            self._head = bytes(row[3])
        cur = await self._conn.execute(
            q("SELECT value FROM {schema}.meta WHERE key = 'sequenced_id_max'", self._schema)
        )
        row = await cur.fetchone()
        self._sequenced_id_max = 0 if row is None else int(row[0])
        self._state_valid = True

    # -- ACCOUNTS --

    async def create_accounts(
        self, accounts: Sequence[Account], *, ts_ns: int | None = None
    ) -> list[tuple[int, AccountResult]]:
        """Create accounts; each is checked in `AccountResult` order, alone (no chains).

        Returns
        -------
        list of (index, AccountResult)
            Only the accounts not created, in index order; ``account_exists`` for the same
            account created before. Empty when every account was created.
        """
        ts_ns = time.time_ns() if ts_ns is None else ts_ns
        async with self._exclusive_write():
            if not self._state_valid:
                await self._reload()
            await self._load_accounts(a.id for a in accounts)
            results: list[tuple[int, AccountResult]] = []
            new: list[Account] = []
            for index, account in enumerate(accounts):
                result = self._check_account(account)
                if result is AccountResult.OK:
                    new.append(account)
                    self._accounts[account.id] = _AccountState(account, 0, 0, 0, 0)
                else:
                    results.append((index, result))
            if new:
                try:
                    await self._conn.execute(
                        q(_INSERT_ACCOUNTS, self._schema), _account_columns(new, ts_ns)
                    )
                except BaseException:
                    await self._reload_after_failure()
                    raise
            self._evict()
            return results

    async def create_accounts_aside(
        self, accounts: Sequence[Account], *, ts_ns: int | None = None
    ) -> list[int]:
        """Create accounts on a connection of their own, beside the staged writes (which hold
        the writer's), so that a round naming a new account can still be staged.

        Each account is checked as `create_accounts` checks it; those that pass and that
        PostgreSQL did not hold are created and held in memory with zero balances (nothing can
        have moved them yet). Returns their ids. An account PostgreSQL held already is left to
        `create_accounts` (its balances are to be read, on the writer's connection).
        """
        ts_ns = time.time_ns() if ts_ns is None else ts_ns
        if not self._state_valid or self._database_url is None:
            return []
        wanted = {a.id: a for a in accounts if self._check_account(a) is AccountResult.OK}
        if not wanted:
            return []
        if self._aside is None or self._aside.closed:
            self._aside = await psycopg.AsyncConnection.connect(
                self._database_url, autocommit=True, options=CONNECT_OPTIONS
            )
        new = list(wanted.values())
        try:
            created = await self._insert_aside(new, ts_ns)
        except BaseException:
            aside, self._aside = self._aside, None  # reconnect on the next call
            with contextlib.suppress(Exception):
                await aside.close()
            raise
        for account_id in created:
            if account_id not in self._accounts:
                self._accounts[account_id] = _AccountState(wanted[account_id], 0, 0, 0, 0)
        return created

    async def _insert_aside(self, new: list[Account], ts_ns: int) -> list[int]:
        assert self._aside is not None
        cur = await self._aside.execute(
            q(_INSERT_ACCOUNTS + " ON CONFLICT (id) DO NOTHING RETURNING id", self._schema),
            _account_columns(new, ts_ns),
        )
        return [row[0] for row in await cur.fetchall()]

    def _check_account(self, a: Account) -> AccountResult:
        if not _in_account_id_range(a.id):
            return AccountResult.account_id_must_be_positive
        if a.flags < 0 or a.flags & ~ACCOUNT_FLAGS_KNOWN:
            return AccountResult.account_flags_must_be_known
        existing = self._accounts.get(a.id)
        if existing is not None:
            if existing.account == a:
                return AccountResult.account_exists
            return AccountResult.account_exists_with_different_fields
        if a.flags & _DEBITS_LIMITED and a.flags & _CREDITS_LIMITED:
            return AccountResult.account_flags_are_mutually_exclusive
        if not 0 < a.ledger <= ledger_max:
            return AccountResult.account_ledger_must_be_in_range
        if not 0 <= a.owner_id <= account_id_max:
            return AccountResult.owner_id_must_be_in_range
        if a.purpose not in PURPOSES_KNOWN:
            return AccountResult.purpose_must_be_known
        return AccountResult.OK

    # -- TRANSFERS --

    async def commit(
        self,
        transfers: Sequence[Transfer],
        *,
        journal_seq: int,
        event_id: str | None = None,
        ts_ns: int | None = None,
    ) -> CommitResult:
        """Apply transfers in order, atomically, as one hash-chain link.

        Parameters
        ----------
        transfers
            In order; LINKED chains are consecutive transfers (see `TransferFlags`).
        journal_seq
            The engine journal sequence the commit books; never below the last commit's
            (`balances_as_of` relies on it), except for an event already applied.
        event_id
            The id of the event the transfers come from: when already applied, nothing is done
            and `CommitResult.event_already_applied` says so.
        ts_ns
            The time stored with the new transfers; now when None.

        Raises
        ------
        ValueError
            On a journal_seq below the last commit's, a ts_ns outside bigint, or too many
            transfers: caller bugs, nothing is done.
        psycopg.Error
            When PostgreSQL fails the commit: nothing is stored, and the writer forgets what it
            held in memory (it reloads from PostgreSQL), so the same commit can be retried.
        """
        if len(transfers) > transfers_per_commit_max:
            raise ValueError(f"{len(transfers)} transfers > {transfers_per_commit_max}")
        ts_ns = time.time_ns() if ts_ns is None else ts_ns
        if not 0 <= ts_ns <= journal_seq_max:
            raise ValueError(f"ts_ns {ts_ns} outside [0, 2**63)")
        async with self._exclusive_write():
            if not self._state_valid:
                await self._reload()
            # The event first: a redelivered event is older than the last commit, and is a no-op.
            if event_id is not None:
                cur = await self._conn.execute(
                    q("SELECT commit_no FROM {schema}.applied_events WHERE event_id = %s",
                      self._schema),
                    (event_id,),
                )  # fmt: skip
                row = await cur.fetchone()
                if row is not None:
                    return CommitResult(event_already_applied=True, commit_no=row[0])
            if not self._journal_seq <= journal_seq <= journal_seq_max:
                raise ValueError(f"journal_seq {journal_seq} < last {self._journal_seq}")
            try:
                if self._fast_path and transfers:
                    written = await self._commit_fast([(transfers, journal_seq, event_id, ts_ns)])
                    if written is not None:
                        self._evict()
                        return CommitResult(commit_no=written[0])
                transfers = _listed(transfers)
                await self._load_for(transfers)
                return await self._commit(transfers, journal_seq, event_id, ts_ns)
            except BaseException:
                await self._reload_after_failure()
                raise

    async def commit_events(self, events: Sequence[EventCommit]) -> list[CommitResult]:
        """Commit several events' transfers at once: each event exactly as `commit` would (its
        own results and hash-chain link, in order), all in one database transaction. What a
        consumer that is behind uses to catch up: the round trips are paid once.

        An event already applied (before, or earlier in `events`) is a no-op that says so.
        Raises as `commit` does; on a database failure nothing of any event is stored.
        """
        if sum(len(e.transfers) for e in events) > transfers_per_commit_max:
            raise ValueError(f"more than {transfers_per_commit_max} transfers")
        async with self._exclusive_write():
            if not self._state_valid:
                await self._reload()
            cur = await self._conn.execute(
                q("SELECT event_id, commit_no FROM {schema}.applied_events"
                  " WHERE event_id = ANY(%s::text[])", self._schema),
                ([e.event_id for e in events],),
            )  # fmt: skip
            applied: dict[str, int | None] = dict(await cur.fetchall())
            last_seq = self._journal_seq
            for event in events:
                if event.event_id in applied:
                    continue
                if not last_seq <= event.journal_seq <= journal_seq_max:
                    raise ValueError(f"journal_seq {event.journal_seq} < last {last_seq}")
                if not 0 <= event.ts_ns <= journal_seq_max:
                    raise ValueError(f"ts_ns {event.ts_ns} outside [0, 2**63)")
                last_seq = event.journal_seq
                applied[event.event_id] = None  # a second copy in `events` is a no-op
            try:
                if self._fast_path:
                    written = await self._commit_events_fast(events, applied)
                    if written is not None:
                        return self._event_results(events, applied, written, {})
                await self._load_for([t for e in events for t in _listed(e.transfers)])
                return await self._commit_events(events, applied)
            except BaseException:
                await self._reload_after_failure()
                raise

    async def _commit_events(
        self, events: Sequence[EventCommit], applied: dict[str, int | None]
    ) -> list[CommitResult]:
        new: list[TransferRecord] = []
        touched: dict[int, _AccountState] = {}
        links: list[_Link] = []
        results: dict[str, list[tuple[int, TransferResult]]] = {}
        for event in events:
            if applied[event.event_id] is not None or event.event_id in results:
                continue
            failed: list[tuple[int, int, int]] = []
            first = len(new)
            results[event.event_id] = self._decide(
                _listed(event.transfers), new, failed, touched, event.journal_seq, event.ts_ns
            )
            links.append(
                _Link(first, len(new) - first, failed, event.journal_seq, event.event_id,
                      event.ts_ns)
            )  # fmt: skip
        commit_nos = await self._write_records(links, new, touched) if links else []
        self._evict()
        written = {link.event_id: no for link, no in zip(links, commit_nos, strict=True)}
        return self._event_results(events, applied, written, results)

    async def _commit_events_fast(
        self, events: Sequence[EventCommit], applied: dict[str, int | None]
    ) -> dict[str | None, int] | None:
        """`_commit_events` through the fast path: the commit number of each event written,
        or None (nothing done) when the exact path must decide."""
        fresh: dict[str, EventCommit] = {}
        for event in events:  # the first copy of each event not applied before
            if applied[event.event_id] is None and event.event_id not in fresh:
                fresh[event.event_id] = event
        if not fresh:
            return None
        commit_nos = await self._commit_fast(
            [(e.transfers, e.journal_seq, e.event_id, e.ts_ns) for e in fresh.values()]
        )
        if commit_nos is None:
            return None
        self._evict()
        return dict(zip(fresh, commit_nos, strict=True))

    # -- STAGED WRITES --

    async def stage_events(
        self, events: Sequence[EventCommit]
    ) -> asyncio.Task[list[CommitResult]] | None:
        """`commit_events`, pipelined: decide `events` now, in memory, and hand their write to
        a task that stores it after the writes staged before it, so that the caller decides
        the next events while PostgreSQL stores these. Await the task for the results.

        Only what needs no query is staged: new events (event ids of their own, journal
        sequences above every one written or staged) whose transfers the fast path proves
        (ledger/_fast.py), between accounts held in memory, with sequenced ids above every
        one stored. Anything else returns None with nothing changed: await the staged writes
        (`stage_events`' last task) and call `commit_events`, which decides it exactly.

        A staged write that fails fails those staged after it (none of them is stored), and the
        writer reloads from PostgreSQL, as `commit` does. One caller stages at a time.
        """
        staged = self._staged
        if (
            not self._fast_path
            or not self._state_valid
            or self._exclusive
            or (staged is not None and staged.done() and _failed(staged))
            or not events
            or sum(len(e.transfers) for e in events) > transfers_per_commit_max
        ):
            return None
        seqs = [e.journal_seq for e in events]
        ids = {e.event_id for e in events}
        if (
            None in ids
            or len(ids) != len(events)
            or not self._journal_seq < seqs[0]
            or any(a >= b for a, b in pairwise(seqs))
            or seqs[-1] > journal_seq_max
            or not all(0 <= e.ts_ns <= journal_seq_max for e in events)
        ):
            return None
        items: list[_Item] = [(e.transfers, e.journal_seq, e.event_id, e.ts_ns) for e in events]
        generation = self._generation
        # Decided and hashed in a thread: tens of milliseconds a round that would otherwise hold
        # the event loop, and with it the write PostgreSQL is storing meanwhile (seen as
        # PostgreSQL waiting between the statements of a staged write).
        decided = await asyncio.to_thread(self._decide_staged, items)
        if decided is None:
            return None
        write, added, chained = decided
        if generation != self._generation or self._exclusive or self._commit_no != write.commit_no:
            return None  # reloaded or written to meanwhile: decided on an old state
        for state, debit_minor, credit_minor in added:
            state.dp += debit_minor
            state.cp += credit_minor
        self._advance(write, chained)
        self._staged = asyncio.create_task(self._store_staged(staged, write, chained, generation))
        self.fast_path_writes += 1
        return self._staged

    def _decide_staged(
        self, items: list[_Item]
    ) -> tuple[_Write, list[tuple[_AccountState, int, int]], _Chained] | None:
        """`stage_events`' decision, in a thread: the write of `items` from the current head,
        what each account gains and the write's links hashed; None when the fast path cannot
        prove it without a query. Changes nothing (the caller checks that nothing moved the
        head meanwhile)."""
        plain = _plain_rows(items)
        if plain is None:
            return None
        rows, counts = plain
        low, _ = _fast.id_range(rows)
        if low < sequenced_id_min or low <= self._sequenced_id_max:
            return None  # an id PostgreSQL may hold: `commit_events` looks
        index = _fast.account_index(rows)
        if any(i not in self._accounts for i in index.ids):
            return None  # an account to load: `commit_events` does
        added = _fast.decide_plain(rows, self._accounts, index)
        if added is None:
            return None
        write = self._plain_write(items, rows, counts, added)
        return write, added, _chain_links(write)

    async def _store_staged(
        self,
        previous: asyncio.Task[list[CommitResult]] | None,
        write: _Write,
        chained: _Chained,
        generation: int,
    ) -> list[CommitResult]:
        if previous is not None:
            await previous  # its failure is this write's: it was decided on top of it
        async with self._lock:
            if generation != self._generation:
                raise RuntimeError("the ledger reloaded after this write was staged")
            try:
                await self._store(write, _ready_future(chained))
            except BaseException:
                await self._reload_after_failure()
                raise
            self._evict()
        return [
            CommitResult(commit_no=n) for n in range(write.commit_no + 1, chained.commit_no + 1)
        ]

    async def _staged_done(self) -> None:
        """Wait until the staged writes are stored or failed (their callers see which)."""
        while (staged := self._staged) is not None and not staged.done():
            await asyncio.wait([staged])

    @contextlib.asynccontextmanager
    async def _exclusive_write(self) -> AsyncIterator[None]:
        """The lock, for a write that is not staged: after the staged writes, and with no
        staging while it runs."""
        self._exclusive += 1
        try:
            await self._staged_done()
            async with self._lock:
                yield
        finally:
            self._exclusive -= 1

    @staticmethod
    def _event_results(
        events: Sequence[EventCommit],
        applied: dict[str, int | None],
        written: dict[str | None, int],
        results: dict[str, list[tuple[int, TransferResult]]],
    ) -> list[CommitResult]:
        """Each event's `CommitResult`: `results` holds the refusals of the events written
        (none when absent), `written` their commit numbers."""
        out = []
        first_copies = set()
        for event in events:
            event_id = event.event_id
            if applied[event_id] is None and event_id not in first_copies:
                # The first copy in `events` of a new event.
                first_copies.add(event_id)
                out.append(
                    CommitResult(results=results.get(event_id, []), commit_no=written[event_id])
                )
            else:  # applied before this call, or by an earlier copy in it
                before = applied[event_id]
                out.append(
                    CommitResult(
                        event_already_applied=True,
                        commit_no=written[event_id] if before is None else before,
                    )
                )
        return out

    async def _commit(
        self, transfers: Sequence[Transfer], journal_seq: int, event_id: str | None, ts_ns: int
    ) -> CommitResult:
        new: list[TransferRecord] = []
        failed: list[tuple[int, int, int]] = []  # (id, result, index)
        touched: dict[int, _AccountState] = {}
        results = self._decide(transfers, new, failed, touched, journal_seq, ts_ns)
        commit_no = None
        if new or failed or event_id is not None:
            link = _Link(0, len(new), failed, journal_seq, event_id, ts_ns)
            [commit_no] = await self._write_records([link], new, touched)
        self._evict()
        return CommitResult(results=results, commit_no=commit_no)

    def _decide(
        self,
        transfers: Sequence[Transfer],
        new: list[TransferRecord],
        failed: list[tuple[int, int, int]],
        touched: dict[int, _AccountState],
        journal_seq: int,
        ts_ns: int,
    ) -> list[tuple[int, TransferResult]]:
        """Apply one commit's transfers in memory: appends the stored records to `new` (which
        may hold earlier commits' of the same write), the refused ids to `failed`, and the
        accounts changed to `touched`; returns the results that are not OK."""
        results: list[tuple[int, TransferResult]] = []
        undo: list[tuple[Any, ...]] = []
        count = len(transfers)
        start = 0
        while start < count:
            end = start  # the group is [start, end]: a chain, or one transfer
            while end < count - 1 and transfers[end].flags & _LINKED:
                end += 1
            chained = bool(transfers[start].flags & _LINKED)
            open_chain = bool(transfers[end].flags & _LINKED)  # only when end == count - 1
            undo.clear()
            new_mark = len(new)
            failing, result = -1, _OK
            for index in range(start, end + 1):
                if open_chain and index == end:
                    result = TransferResult.linked_event_chain_open
                else:
                    result = self._apply(transfers[index], new, touched, undo, journal_seq, ts_ns)
                if result is not _OK:
                    failing = index
                    break
            if failing < 0:
                start = end + 1
                continue
            if result >= FAILED_RECORDED_MIN:
                self._failed[transfers[failing].id] = result
                failed.append((transfers[failing].id, int(result), failing))
            if not chained:
                results.append((failing, result))
            elif (
                result is TransferResult.exists
                and failing == start
                and not open_chain
                and all(
                    self._exists(t) is TransferResult.exists for t in transfers[start : end + 1]
                )
            ):
                results.extend((i, TransferResult.exists) for i in range(start, end + 1))
            else:
                self._undo(undo)
                del new[new_mark:]
                for index in range(start, end + 1):
                    results.append(
                        (index, result if index == failing else TransferResult.linked_event_failed)
                    )
            start = end + 1
        return results

    def _exists(self, t: Transfer) -> TransferResult:
        """Checks 5003-5006 alone: whether `t` is a retry of a stored transfer."""
        if not _in_transfer_id_range(t.id):
            return TransferResult.id_must_be_in_range
        if t.flags < 0 or t.flags & ~TRANSFER_FLAGS_KNOWN:
            return TransferResult.flags_must_be_known
        stored = self._transfers.get(t.id)
        if stored is None:
            return _OK
        if self._same(t, stored):
            return TransferResult.exists
        return TransferResult.exists_with_different_fields

    def _same(self, t: Transfer, s: TransferRecord) -> bool:
        """Whether `t` resolves to the stored `s` (see the module docstring)."""
        if (t.flags, t.pending_id, t.user_data_1, t.user_data_2) != (
            s.flags, s.pending_id, s.user_data_1, s.user_data_2
        ):  # fmt: skip
            return False
        if not s.flags & _RESOLVING:
            return (t.debit_account_id, t.credit_account_id, t.amount_minor, t.ledger, t.code) == (
                s.debit_account_id, s.credit_account_id, s.amount_minor, s.ledger, s.code
            )  # fmt: skip
        p = self._transfers[s.pending_id]
        if s.flags & _POST:
            amount_ok = (t.amount_minor or p.amount_minor) == s.amount_minor
        else:
            amount_ok = t.amount_minor in (0, s.amount_minor)
        return (
            amount_ok
            and t.debit_account_id in (0, s.debit_account_id)
            and t.credit_account_id in (0, s.credit_account_id)
            and t.ledger in (0, s.ledger)
            and (t.code or p.code) == s.code
        )

    def _apply(
        self,
        t: Transfer,
        new: list[TransferRecord],
        touched: dict[int, _AccountState],
        undo: list[tuple[Any, ...]],
        journal_seq: int,
        ts_ns: int,
    ) -> TransferResult:
        """Check `t` in result order; when OK, apply it and log how to undo it."""
        R = TransferResult
        result = self._exists(t)
        if result is not _OK:
            return result
        if t.id in self._failed:
            return R.id_already_failed
        kind = t.flags & (_PENDING | _RESOLVING)
        if kind & (kind - 1):
            return R.flags_are_mutually_exclusive
        resolving = kind & _RESOLVING
        if not resolving:
            if t.pending_id != 0:
                return R.pending_id_must_be_zero
        else:
            if not _in_transfer_id_range(t.pending_id):
                return R.pending_id_must_be_in_range
            if t.pending_id == t.id:
                return R.pending_id_must_be_different
        if t.amount_minor < 0:
            return R.amount_must_not_be_negative
        if t.amount_minor == 0 and not resolving:
            return R.amount_must_not_be_zero
        if not (0 if resolving else 1) <= t.code <= code_max:
            return R.code_must_be_in_range
        if not (
            user_data_min <= t.user_data_1 <= user_data_max
            and user_data_min <= t.user_data_2 <= user_data_max
        ):
            return R.user_data_must_fit_in_64_bits
        p: TransferRecord | None = None
        if not resolving:
            if t.debit_account_id == t.credit_account_id:
                return R.accounts_must_be_different
            dr = self._accounts.get(t.debit_account_id)
            if dr is None:
                return R.debit_account_must_exist
            cr = self._accounts.get(t.credit_account_id)
            if cr is None:
                return R.credit_account_must_exist
            if not t.ledger == dr.account.ledger == cr.account.ledger:
                return R.ledgers_must_match
            amount, code = t.amount_minor, t.code
        else:
            p = self._transfers.get(t.pending_id)
            if p is None:
                return R.pending_transfer_not_found
            if not p.flags & _PENDING:
                return R.pending_transfer_not_pending
            state = self._pending_state[p.id]
            if state == _POST:
                return R.pending_transfer_already_posted
            if state == _VOID:
                return R.pending_transfer_already_voided
            if t.debit_account_id not in (0, p.debit_account_id) or t.credit_account_id not in (
                0, p.credit_account_id
            ):  # fmt: skip
                return R.pending_transfer_has_different_accounts
            if t.ledger not in (0, p.ledger):
                return R.pending_transfer_has_different_ledger
            if resolving == _POST and t.amount_minor > p.amount_minor:
                return R.exceeds_pending_transfer_amount
            if resolving == _VOID and t.amount_minor not in (0, p.amount_minor):
                return R.pending_transfer_has_different_amount
            dr = self._accounts[p.debit_account_id]
            cr = self._accounts[p.credit_account_id]
            amount = (t.amount_minor or p.amount_minor) if resolving == _POST else p.amount_minor
            code = t.code or p.code
        # What the transfer does to (posted, pending) of each side.
        if kind == _PENDING:
            posted, pending = 0, amount
        elif p is None:
            posted, pending = amount, 0
        elif kind == _POST:
            posted, pending = amount, -p.amount_minor
        else:
            posted, pending = 0, -p.amount_minor
        dr_dp, dr_dpe = dr.dp + posted, dr.dpe + pending
        cr_cp, cr_cpe = cr.cp + posted, cr.cpe + pending
        if dr_dp + dr_dpe > balance_max:
            return R.overflows_debits
        if cr_cp + cr_cpe > balance_max:
            return R.overflows_credits
        if dr.account.flags & _DEBITS_LIMITED and dr_dp + dr_dpe > dr.cp:
            return R.exceeds_credits
        if cr.account.flags & _CREDITS_LIMITED and cr_cp + cr_cpe > cr.dp:
            return R.exceeds_debits
        # Apply.
        undo.append(("debit", dr, dr.dp, dr.dpe))
        undo.append(("credit", cr, cr.cp, cr.cpe))
        dr.dp, dr.dpe, cr.cp, cr.cpe = dr_dp, dr_dpe, cr_cp, cr_cpe
        touched[dr.account.id] = dr
        touched[cr.account.id] = cr
        record = TransferRecord(
            id=t.id,
            debit_account_id=dr.account.id,
            credit_account_id=cr.account.id,
            amount_minor=amount,
            ledger=dr.account.ledger,
            code=code,
            flags=t.flags,
            pending_id=t.pending_id,
            user_data_1=t.user_data_1,
            user_data_2=t.user_data_2,
            position=self._next_position + len(new),
            journal_seq=journal_seq,
            ts_ns=ts_ns,
        )
        new.append(record)
        self._transfers[t.id] = record
        undo.append(("transfer", t.id))
        if kind == _PENDING:
            self._pending_state[t.id] = 0
        elif p is not None:
            undo.append(("pending", p.id, self._pending_state[p.id]))
            self._pending_state[p.id] = kind
        return _OK

    def _undo(self, undo: list[tuple[Any, ...]]) -> None:
        for entry in reversed(undo):
            if entry[0] == "debit":
                entry[1].dp, entry[1].dpe = entry[2], entry[3]
            elif entry[0] == "credit":
                entry[1].cp, entry[1].cpe = entry[2], entry[3]
            elif entry[0] == "transfer":
                del self._transfers[entry[1]]
                self._pending_state.pop(entry[1], None)
            else:
                self._pending_state[entry[1]] = entry[2]

    # -- THE FAST PATH --

    async def _commit_fast(self, items: list[_Item]) -> list[int] | None:
        """Commit (transfers, journal_seq, event_id, ts_ns) items, one link each, when
        ledger/_fast.py proves that every transfer would be applied, and return their commit
        numbers; otherwise change nothing and return None (the exact path decides).

        O(transfers) in NumPy, one query for the accounts not held and one for the ids, then
        the same transaction as the exact path's.
        """
        plain = _plain_rows(items)
        if plain is None:
            return None
        rows, counts = plain
        index = _fast.account_index(rows)
        await self._load_accounts(index.ids)
        added = _fast.decide_plain(rows, self._accounts, index)
        if added is None or await self._any_id_known(rows):
            return None
        write = self._plain_write(items, rows, counts, added)
        for state, debit_minor, credit_minor in added:
            state.dp += debit_minor
            state.cp += credit_minor
        commit_nos = await self._write_ready(write)
        self.fast_path_writes += 1
        return commit_nos

    def _plain_write(
        self,
        items: list[_Item],
        rows: Any,
        counts: list[int],
        added: list[tuple[_AccountState, int, int]],
    ) -> _Write:
        """The write of items the fast path decided (`added`: what each account gains), from
        the current head; the balances are those after it. Changes nothing."""
        journal_seqs = np.repeat(np.array([i[1] for i in items], dtype=np.int64), counts)
        ts_ns = np.repeat(np.array([i[3] for i in items], dtype=np.int64), counts)
        payload = _fast.copy_rows(rows, self._next_position, journal_seqs, ts_ns)
        links, first = [], 0
        for (_, journal_seq, event_id, ts), count in zip(items, counts, strict=True):
            links.append(_Link(first, count, [], journal_seq, event_id, ts))
            first += count
        size = _fast.COPY_ROW_DTYPE.itemsize
        offsets = range(0, (len(rows) + 1) * size, size)
        balances = [
            (s.account.id, s.dp + debit, s.cp + credit, s.dpe, s.cpe) for s, debit, credit in added
        ]
        return self._ready(links, payload, offsets, balances, _fast.id_range(rows)[1])

    async def _any_id_known(self, rows: Any) -> bool:
        """Whether PostgreSQL holds any id of `rows` as a transfer or a refused id (the
        checks ``exists`` and ``id_already_failed``). One query on the ids' range, which a
        writer of ascending ids (the consumer's) never finds occupied; when it is, a second
        query on the ids themselves. Sequenced ids above the largest stored are not looked
        for among the transfers: the consumer's query touches only the refused ids' index."""
        low, high = _fast.id_range(rows)
        # The parts of [low, high] that PostgreSQL may hold as transfers, one per id space:
        # each query names its space so that its own index serves it.
        client_high = min(high, sequenced_id_min - 1)
        sequenced_low = max(low, sequenced_id_min)
        sequenced_high = min(high, self._sequenced_id_max)
        checks = [
            "EXISTS (SELECT FROM {schema}.failed_transfers WHERE id BETWEEN %(low)s AND %(high)s)"
        ]
        if low <= client_high:
            checks.append(
                "EXISTS (SELECT FROM {schema}.transfers WHERE id BETWEEN %(low)s AND"
                " %(client_high)s AND id < {sequenced_id_min})"
            )
        if sequenced_low <= sequenced_high:
            checks.append(
                "EXISTS (SELECT FROM {schema}.transfers WHERE id BETWEEN %(sequenced_low)s AND"
                " %(sequenced_high)s AND id >= {sequenced_id_min})"
            )
        bounds = {
            "low": low,
            "high": high,
            "client_high": client_high,
            "sequenced_low": sequenced_low,
            "sequenced_high": sequenced_high,
        }
        cur = await self._conn.execute(
            q("SELECT " + " OR ".join(checks), self._schema),
            {name: uuid.UUID(int=max(0, value)) for name, value in bounds.items()},
        )
        row = await cur.fetchone()
        if row is None or not row[0]:
            return False
        halves = zip(rows["id_hi"].tolist(), rows["id_lo"].tolist(), strict=True)
        client, sequenced = split_ids(hi << 64 | lo for hi, lo in halves)
        cur = await self._conn.execute(
            q(
                "SELECT EXISTS (SELECT FROM {schema}.transfers WHERE "
                + ids_in("id", "%(client)s", "%(sequenced)s")
                + ") OR EXISTS (SELECT FROM {schema}.failed_transfers"
                " WHERE id = ANY(%(client)s::uuid[]) OR id = ANY(%(sequenced)s::uuid[]))",
                self._schema,
            ),
            {"client": client, "sequenced": sequenced},
        )
        row = await cur.fetchone()
        return row is None or bool(row[0])

    # -- WRITING --

    async def _write_records(
        self, links: list[_Link], new: list[TransferRecord], touched: dict[int, _AccountState]
    ) -> list[int]:
        """`_write` of the exact path's records."""
        tuples = [_tuple_of_record(r) for r in new]
        offsets = list(accumulate((len(t) for t in tuples), initial=0))
        refused = (f[0] for link in links for f in link.failed if 0 < f[0] <= transfer_id_max)
        id_max = max(max((r.id for r in new), default=0), max(refused, default=0))
        return await self._write(links, b"".join(tuples), offsets, list(touched.values()), id_max)

    def _ready(
        self,
        links: list[_Link],
        payload: bytes | bytearray,
        offsets: Sequence[int],
        balances: list[tuple[int, int, int, int, int]],
        id_max: int,
    ) -> _Write:
        """A write from the current head: the links' chain is computed by `_chain_links`."""
        sequenced = id_max if id_max >= sequenced_id_min else 0
        return _Write(
            links=links,
            payload=payload,
            offsets=offsets,
            balances=balances,
            sequenced_id_max=max(self._sequenced_id_max, sequenced),
            sequenced_id_max_before=self._sequenced_id_max,
            commit_no=self._commit_no,
            position=self._next_position,
            head=self._head,
        )

    async def _write(
        self,
        links: list[_Link],
        payload: bytes | bytearray,
        offsets: Sequence[int],
        states: list[_AccountState],
        id_max: int,
    ) -> list[int]:
        """Store commits (one hash-chain link each, in order) in one transaction, then advance
        the head. `payload` holds every link's transfers as binary COPY tuples, in position
        order, transfer k at ``payload[offsets[k] : offsets[k + 1]]``; `states` are the
        accounts whose balances to store (when there are transfers); `id_max` is the largest
        id among the transfers and refused ids (0 for none). Returns the links' commit
        numbers."""
        return await self._write_ready(
            self._ready(links, payload, offsets, _balances(states), id_max)
        )

    async def _write_ready(self, write: _Write) -> list[int]:
        """Store a write from the current head, then advance the head; its commit numbers."""
        # The chain is hashed in a thread while this one feeds PostgreSQL the rows (hashlib
        # lets go of the GIL over large buffers).
        chained = asyncio.create_task(asyncio.to_thread(_chain_links, write))
        try:
            await self._store(write, chained)
        finally:
            if not chained.done():
                await asyncio.wait([chained])
        self._advance(write, chained.result())
        return list(range(write.commit_no + 1, chained.result().commit_no + 1))

    def _advance(self, write: _Write, chained: _Chained) -> None:
        """The head, position and sequences after `write`."""
        self._commit_no, self._next_position, self._head = (
            chained.commit_no, chained.position, chained.head
        )  # fmt: skip
        self._journal_seq = write.links[-1].journal_seq
        self._sequenced_id_max = write.sequenced_id_max

    async def _store(self, write: _Write, chained: Awaitable[_Chained]) -> None:
        """One write's transaction: its event ids, transfers (one COPY), balances, refused
        ids and chain links. `chained` is awaited once the COPY is sent."""
        # Rows of a round's events and chain go by COPY in text format: building statement
        # parameters for them cost the consumer more than PostgreSQL's work (seen in a profile).
        events = "".join(
            f"{copy_text(link.event_id)}\t{write.commit_no + k}\n"
            for k, link in enumerate(write.links, 1)
            if link.event_id is not None
        )
        conn, schema = self._conn, self._schema
        cur = conn.cursor()
        async with conn.transaction():
            if events:
                copy_sql = q(
                    "COPY {schema}.applied_events (event_id, commit_no) FROM STDIN", schema
                )
                async with cur.copy(copy_sql) as copy:
                    await copy.write(events.encode())
            if write.payload:
                copy_sql = q(
                    f"COPY {{schema}}.transfers ({chain.TRANSFER_COLUMNS}) FROM STDIN"
                    " (FORMAT BINARY)",
                    schema,
                )
                async with cur.copy(copy_sql) as copy:
                    await copy.write(chain.COPY_HEADER)
                    await copy.write(write.payload)
                    await copy.write(chain.COPY_TRAILER)
                await conn.execute(
                    q(
                        "UPDATE {schema}.accounts a SET debits_posted = v.dp,"
                        " credits_posted = v.cp, debits_pending = v.dpe, credits_pending = v.cpe"
                        " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],"
                        " %s::bigint[]) AS v(id, dp, cp, dpe, cpe) WHERE a.id = v.id",
                        schema,
                    ),
                    tuple(_bigint_array(column) for column in zip(*write.balances, strict=True))
                    if write.balances
                    else ("{}",) * 5,
                )
            done = await chained
            if write.sequenced_id_max != write.sequenced_id_max_before:
                await conn.execute(
                    q("UPDATE {schema}.meta SET value = %s WHERE key = 'sequenced_id_max'",
                      schema),
                    (str(write.sequenced_id_max),),
                )  # fmt: skip
            if done.failed_rows:
                failed = done.failed_rows
                await conn.execute(
                    q(
                        "INSERT INTO {schema}.failed_transfers (id, result, commit_no,"
                        " index_in_commit) SELECT * FROM"
                        " unnest(%s::uuid[], %s::integer[], %s::bigint[], %s::integer[])",
                        schema,
                    ),
                    (
                        uuid_array(f[0] for f in failed),
                        [f[1] for f in failed],
                        [f[2] for f in failed],
                        [f[3] for f in failed],
                    ),
                )
            copy_sql = q(
                "COPY {schema}.chain (commit_no, journal_seq, first_position, transfers_count,"
                " failed_count, event_id, ts_ns, hash) FROM STDIN",
                schema,
            )
            async with cur.copy(copy_sql) as copy:
                await copy.write(done.chain_rows)

    async def _reload_after_failure(self) -> None:
        """The caches may hold what PostgreSQL rolled back: drop them (reload lazily if the
        connection is gone)."""
        try:
            await self._reload()
        except Exception:
            self._state_valid = False

    def _evict(self) -> None:
        """Keep the caches within their limits, oldest first. O(evicted)."""
        while len(self._transfers) > self._cached_max:
            old, _ = self._transfers.popitem(last=False)
            self._pending_state.pop(old, None)
        while len(self._failed) > failed_cached_max:
            self._failed.popitem(last=False)
        while len(self._accounts) > accounts_cached_max:
            self._accounts.popitem(last=False)

    # -- LOADING --

    async def _load_for(self, transfers: Sequence[Transfer]) -> None:
        """Bring into memory everything `transfers` may need: their ids (applied or failed),
        the pending transfers they or their stored namesakes name, and the accounts."""
        wanted = {t.id for t in transfers if _in_transfer_id_range(t.id)}
        wanted.update(
            t.pending_id
            for t in transfers
            if t.flags & _RESOLVING and _in_transfer_id_range(t.pending_id)
        )
        missing = [i for i in wanted if i not in self._transfers and i not in self._failed]
        found = await self._load_transfers(missing)
        await self._load_failed([i for i in missing if i not in found])
        # A stored post or void is compared with its retry through its pending transfer.
        await self._load_transfers(
            [
                s.pending_id
                for i in wanted
                if (s := self._transfers.get(i)) is not None
                and s.flags & _RESOLVING
                and s.pending_id not in self._transfers
            ]
        )
        account_ids = {a for t in transfers for a in (t.debit_account_id, t.credit_account_id)}
        for i in wanted:
            s = self._transfers.get(i)
            if s is not None:
                account_ids.update((s.debit_account_id, s.credit_account_id))
        await self._load_accounts(account_ids)

    async def _load_transfers(self, ids: list[int]) -> set[int]:
        """Load stored transfers by id (and the state of the pending ones); their ids."""
        ids = [i for i in ids if i < sequenced_id_min or i <= self._sequenced_id_max]
        if not ids:
            return set()
        cur = await self._conn.execute(
            q(
                f"SELECT {chain.TRANSFER_COLUMNS} FROM {{schema}}.transfers"
                f" WHERE {ids_in('id', '%(client)s', '%(sequenced)s')}",
                self._schema,
            ),
            dict(zip(("client", "sequenced"), split_ids(ids), strict=True)),
        )
        records = [_record_of_row(row) for row in await cur.fetchall()]
        pending: list[int] = []
        for r in records:
            self._transfers[r.id] = r
            if r.flags & _PENDING:
                self._pending_state[r.id] = 0
                pending.append(r.id)
        if pending:
            cur = await self._conn.execute(
                q(
                    "SELECT pending_id, flags FROM {schema}.transfers"
                    " WHERE pending_id = ANY(%s::uuid[])",
                    self._schema,
                ),
                (uuid_array(pending),),
            )
            for pending_id, flags in await cur.fetchall():
                self._pending_state[pending_id.int] = flags & _RESOLVING
        return {r.id for r in records}

    async def _load_failed(self, ids: list[int]) -> None:
        if not ids:
            return
        cur = await self._conn.execute(
            q("SELECT id, result FROM {schema}.failed_transfers WHERE id = ANY(%s::uuid[])",
              self._schema),
            (uuid_array(ids),),
        )  # fmt: skip
        for id_, result in await cur.fetchall():
            self._failed[id_.int] = result

    async def _load_accounts(self, ids: Iterable[int]) -> None:
        missing = [i for i in set(ids) if _in_account_id_range(i) and i not in self._accounts]
        if not missing:
            return
        cur = await self._conn.execute(
            q(
                "SELECT id, ledger, owner_id, purpose, flags, debits_posted, credits_posted,"
                " debits_pending, credits_pending FROM {schema}.accounts"
                " WHERE id = ANY(%s::bigint[])",
                self._schema,
            ),
            (missing,),
        )
        for id_, ledger, owner_id, purpose, flags, dp, cp, dpe, cpe in await cur.fetchall():
            account = Account(id=id_, ledger=ledger, owner_id=owner_id, purpose=purpose,
                              flags=flags)  # fmt: skip
            self._accounts[id_] = _AccountState(account, dp, cp, dpe, cpe)


__all__ = [
    "DEFAULT_SCHEMA",
    "FAILED_RECORDED_MIN",
    "CommitResult",
    "EventCommit",
    "Ledger",
    "LedgerBusy",
    "accounts_cached_max",
    "transfers_per_commit_max",
]
