"""The ledger: double-entry accounts and transfers in PostgreSQL, hash-chained.

`Ledger` is the writer (TigerBeetle's semantics, one per schema; `TransferColumns` is how a
round of transfers reaches it without an object per transfer), `ReferenceLedger` the same
semantics in plain Python (the tests' oracle), `verify` the chain check behind
``python -m ledger verify``.
"""

from engine._codes import AccountResult, TransferResult
from ledger._columns import TransferColumns
from ledger.chain import ChainReport, verify
from ledger.ledger import DEFAULT_SCHEMA, CommitResult, EventCommit, Ledger, LedgerBusy
from ledger.model import (
    Account,
    AccountFlags,
    Balance,
    Purpose,
    Transfer,
    TransferFlags,
    TransferRecord,
    account_id_for,
)
from ledger.reference import ReferenceLedger

__all__ = [
    "DEFAULT_SCHEMA",
    "Account",
    "AccountFlags",
    "AccountResult",
    "Balance",
    "ChainReport",
    "CommitResult",
    "EventCommit",
    "Ledger",
    "LedgerBusy",
    "Purpose",
    "ReferenceLedger",
    "Transfer",
    "TransferColumns",
    "TransferFlags",
    "TransferRecord",
    "TransferResult",
    "account_id_for",
    "verify",
]
