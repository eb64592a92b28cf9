"""Reconciliation: the engine's balances against the ledger's, per asset, at the same journal
sequence; every difference becomes an exception in the queue (ledger/exceptions.py) with its
evidence, and an alert.

The comparison is a pure function (`differences`) of two maps keyed by (asset, owner, bucket):
an engine account's available and held balances, the house's omnibus (the engine's account 0,
minus everything customers hold) and fees. The job (`reconcile`) reads the engine a page of
accounts at a time (each page exact as of its own journal sequence), reads the ledger's
balances as of that same sequence, and compares. A ledger that has not booked that far within
`keep_up_wait_ms` is itself an exception (`ledger_must_keep_up`), not a false difference.

On-chain holdings join this comparison when custody lands (ExceptionKind.CHAIN_HOLDINGS_MUST_MATCH).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from engine.journal import EngineClient
from engine.messages import GetAllBalances
from engine.risk import EXTERNAL_ACCOUNT_ID, FEE_ACCOUNT_ID
from ledger.exceptions import Difference, ExceptionKind
from ledger.model import Account, Balance, Purpose
from ledger.postings import ledger_account
from ledger.reader import LedgerReader

# Accounts per engine page: one ledger query per page stays small.
engine_page_accounts_max = 2_000
# How long to wait for the ledger to book the journal sequence of an engine page.
keep_up_wait_ms = 5_000

Key = tuple[int, int, str]  # (asset id, owner id, bucket)

BUCKET_OF_PURPOSE = {
    Purpose.AVAILABLE: "available",
    Purpose.HELD_FOR_ORDERS: "held",
    Purpose.HELD_FOR_WITHDRAWALS: "held",
    Purpose.PENDING_DEPOSITS: "pending_deposits",
    Purpose.CUSTODY_OMNIBUS: "omnibus",
    Purpose.FEES: "fees",
    Purpose.SUSPENSE: "suspense",
}


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """One reconciliation run: what was compared and what differed."""

    journal_seq_min: int  # the engine pages' journal sequences
    journal_seq_max: int
    engine_accounts: int
    balances_compared: int
    differences: list[Difference]
    new_exceptions: int = 0

    @property
    def clean(self) -> bool:
        return not self.differences


def engine_buckets(rows: Iterable[Sequence[int]]) -> dict[Key, int]:
    """Rows ``[account, asset, available, held]`` (GetAllBalances) keyed like the ledger's."""
    buckets: dict[Key, int] = {}
    for account, asset, available, held in rows:
        if account == EXTERNAL_ACCOUNT_ID:
            buckets[asset, 0, "omnibus"] = available + held
        elif account == FEE_ACCOUNT_ID:
            buckets[asset, 0, "fees"] = available + held
        else:
            buckets[asset, account, "available"] = available
            buckets[asset, account, "held"] = held
    return buckets


def ledger_buckets(accounts: Iterable[Account], balances: Mapping[int, Balance]) -> dict[Key, int]:
    """Each account's posted net (credits - debits), summed per (asset, owner, bucket)."""
    buckets: dict[Key, int] = {}
    for account in accounts:
        balance = balances.get(account.id)
        if balance is None:
            continue
        key = (account.ledger, account.owner_id, BUCKET_OF_PURPOSE[Purpose(account.purpose)])
        buckets[key] = buckets.get(key, 0) + balance.net
    return buckets


def ledger_accounts_of(engine_account: int, asset_id: int) -> list[Account]:
    """The ledger accounts that together hold one engine balance (postings' mapping)."""
    if engine_account in (EXTERNAL_ACCOUNT_ID, FEE_ACCOUNT_ID):
        return [ledger_account(engine_account, asset_id, False, 0)]
    return [
        ledger_account(engine_account, asset_id, False, 0),
        ledger_account(engine_account, asset_id, True, 1),  # held for orders
        ledger_account(engine_account, asset_id, True, 0),  # held for withdrawals
    ]


def differences(
    engine: Mapping[Key, int], ledger: Mapping[Key, int], *, journal_seq: int
) -> list[Difference]:
    """Every key whose amounts differ (a missing side counts as 0), in key order."""
    found = []
    for key in sorted(set(engine) | set(ledger)):
        engine_minor, ledger_minor = engine.get(key, 0), ledger.get(key, 0)
        if engine_minor == ledger_minor:
            continue
        asset, owner, bucket = key
        found.append(
            Difference(
                kind=ExceptionKind.BALANCE_MUST_MATCH_ENGINE,
                asset_id=asset,
                owner_id=owner,
                bucket=bucket,
                engine_minor=engine_minor,
                ledger_minor=ledger_minor,
                journal_seq=journal_seq,
                evidence={"difference_minor": ledger_minor - engine_minor},
            )
        )
    return found


async def reconcile(
    engine: EngineClient, reader: LedgerReader, *, wait_ms: int = keep_up_wait_ms
) -> Report:
    """Compare every engine balance with the ledger at the same journal sequence, then check
    that the ledger knows no customer the engine does not and that each asset sums to zero.
    Reads only; `record` puts the differences in the queue."""
    found: list[Difference] = []
    seen_owners: set[int] = set()
    seqs: list[int] = []
    compared = 0
    after: int | None = -1
    while after is not None:
        reply = await engine.query(
            GetAllBalances(after_account_id=after, accounts_max=engine_page_accounts_max)
        )
        if not reply.ok:
            raise RuntimeError(f"engine did not list balances: {reply.error}")
        rows: list[list[int]] = reply.result["balances"]
        after = reply.result["next_after"]
        seq = reply.journal_seq
        seqs.append(seq)
        seen_owners.update(row[0] for row in rows)
        booked = await _wait_booked(reader, seq, wait_ms)
        if booked < seq:
            found.append(
                Difference(
                    kind=ExceptionKind.LEDGER_MUST_KEEP_UP,
                    journal_seq=seq,
                    evidence={"ledger_journal_seq": booked, "waited_ms": wait_ms},
                )
            )
            continue
        accounts = [a for row in rows for a in ledger_accounts_of(row[0], row[1])]
        balances = await reader.balances_as_of([a.id for a in accounts], seq)
        engine_side = engine_buckets(rows)
        compared += len(engine_side)
        found += differences(engine_side, ledger_buckets(accounts, balances), journal_seq=seq)
    found += await _unknown_owners(reader, seen_owners, max(seqs))
    found += [
        Difference(
            kind=ExceptionKind.ASSET_MUST_SUM_TO_ZERO,
            asset_id=asset,
            ledger_minor=total,
            journal_seq=max(seqs),
        )
        for asset, total in sorted((await reader.net_by_asset()).items())
        if total != 0
    ]
    return Report(
        journal_seq_min=min(seqs),
        journal_seq_max=max(seqs),
        engine_accounts=len(seen_owners),
        balances_compared=compared,
        differences=found,
    )


async def _wait_booked(reader: LedgerReader, journal_seq: int, wait_ms: int) -> int:
    deadline_ns = time.monotonic_ns() + wait_ms * 1_000_000
    while True:
        booked = await reader.journal_seq_booked()
        if booked >= journal_seq or time.monotonic_ns() >= deadline_ns:
            return booked
        await asyncio.sleep(0.05)


async def _unknown_owners(
    reader: LedgerReader, engine_owners: set[int], journal_seq: int
) -> list[Difference]:
    """Customer accounts in the ledger holding money, whose owner the engine does not list."""
    found = []
    for account, balance in await reader.nonzero_accounts(journal_seq):
        if account.owner_id <= FEE_ACCOUNT_ID or account.owner_id in engine_owners:
            continue
        found.append(
            Difference(
                kind=ExceptionKind.ACCOUNT_MUST_BE_KNOWN_TO_ENGINE,
                asset_id=account.ledger,
                owner_id=account.owner_id,
                bucket=BUCKET_OF_PURPOSE[Purpose(account.purpose)],
                ledger_minor=balance.net,
                journal_seq=journal_seq,
                evidence={"account_id": account.id},
            )
        )
    return found


def report_json(report: Report) -> dict[str, Any]:
    return msgspec.to_builtins(report)  # type: ignore[no-any-return]


__all__ = [
    "Report",
    "differences",
    "engine_buckets",
    "ledger_accounts_of",
    "ledger_buckets",
    "reconcile",
    "report_json",
]
