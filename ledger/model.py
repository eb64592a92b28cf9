"""The ledger's data: accounts, transfers, balances, their flags and purposes, and its limits.

Semantics are TigerBeetle's, kept in PostgreSQL (see `ledger.ledger.Ledger`): integer amounts in
each asset's minor unit, one ledger per asset, immutable transfers between two accounts of the
same ledger, two-phase holds, linked chains, client-chosen ids that make every write idempotent.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

import msgspec

# -- LIMITS --

# Transfer ids are stored as PostgreSQL uuid: 128 bits; 0 is reserved for "no pending transfer".
transfer_id_max = (1 << 128) - 1
# Ids from here up are sequenced: assigned in ascending order by a journal-fed writer (the
# consumer's postings, ledger/postings.py). PostgreSQL keeps the unique index for the ids below
# (ledger/_schema.py) and finds sequenced ids through a block-range index, which halves the cost
# of storing an engine transfer; the writer checks their uniqueness itself. The meaning of an id
# is the same on either side of this line.
sequenced_id_min = 1 << 127
# Account ids, owners and every amount and balance are PostgreSQL bigint.
account_id_max = (1 << 63) - 1
# Balances (posted + pending, on either side) must stay within bigint or the UPDATE would fail.
balance_max = (1 << 63) - 1
# Ledger (asset) ids are PostgreSQL integer.
ledger_max = (1 << 31) - 1
# Transfer codes are small reasons (the engine's TransferKind); 16 bits leave room to grow.
code_max = (1 << 16) - 1
# `account_id_for` packs (owner, asset, purpose) into 63 bits: 40 + 16 + 7.
owner_id_for_account_max = (1 << 40) - 1
asset_id_for_account_max = (1 << 16) - 1
purpose_for_account_max = (1 << 7) - 1
# Transfers whose content the writer keeps in memory to answer retries without a query
# (about 300 B each): a few seconds of the target rate. Older ids are looked up in PostgreSQL,
# one query per commit for the ids it does not hold.
transfers_cached_max = 1 << 17


# -- FLAGS AND PURPOSES --


class TransferFlags(IntFlag):
    """A transfer's flags; at most one of PENDING, POST_PENDING and VOID_PENDING."""

    # This transfer and the next one of the commit succeed or fail together.
    LINKED = 1
    # Reserve the amount (debits_pending/credits_pending) until a post or a void resolves it.
    PENDING = 2
    # Post the pending transfer named by pending_id: all of it, or `amount_minor` of it.
    POST_PENDING = 4
    # Release the pending transfer named by pending_id.
    VOID_PENDING = 8


class AccountFlags(IntFlag):
    """An account's protections; never both."""

    # debits_posted + debits_pending may not exceed credits_posted (a customer's funds).
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1
    # credits_posted + credits_pending may not exceed debits_posted.
    CREDITS_MUST_NOT_EXCEED_DEBITS = 2


class Purpose(IntEnum):
    """What an account holds: a customer's bucket (1-9) or a house account (10+)."""

    AVAILABLE = 1
    HELD_FOR_ORDERS = 2
    HELD_FOR_WITHDRAWALS = 3
    PENDING_DEPOSITS = 4
    FEES = 10
    CUSTODY_OMNIBUS = 11
    SUSPENSE = 12


TRANSFER_FLAGS_KNOWN = 15
ACCOUNT_FLAGS_KNOWN = 3
PURPOSES_KNOWN = frozenset(int(p) for p in Purpose)


def account_id_for(owner_id: int, asset_id: int, purpose: int) -> int:
    """The account id of an owner's bucket of one asset, without a lookup.

    ``owner_id << 23 | asset_id << 7 | purpose``: distinct for distinct triples, positive and
    within 63 bits for owner < 2**40, asset < 2**16, 0 < purpose < 2**7. The house is owner 0.

    Raises
    ------
    ValueError
        When a part is outside its range.
    """
    if not 0 <= owner_id <= owner_id_for_account_max:
        raise ValueError(f"owner_id {owner_id} outside [0, 2**40)")
    if not 0 <= asset_id <= asset_id_for_account_max:
        raise ValueError(f"asset_id {asset_id} outside [0, 2**16)")
    if not 0 < purpose <= purpose_for_account_max:
        raise ValueError(f"purpose {purpose} outside [1, 2**7)")
    return owner_id << 23 | asset_id << 7 | purpose


# -- RECORDS --


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """An account to create: its id, ledger (asset id), owner, purpose and flags."""

    id: int
    ledger: int
    owner_id: int = 0
    purpose: int
    flags: int = 0


class Transfer(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A transfer to commit: `amount_minor` from `debit_account_id` to `credit_account_id`.

    `id` is the client's, in [1, 2**128), and makes the transfer idempotent. `code` is the
    reason of the move (the engine's TransferKind). A post or void names its pending transfer
    in `pending_id` and may leave the accounts, ledger, code and amount at 0: they are taken
    from the pending transfer (a post of amount 0 posts all of it). The ledger assigns
    `journal_seq` (the commit's) and `ts_ns` when it stores the transfer.
    """

    id: int
    debit_account_id: int = 0
    credit_account_id: int = 0
    amount_minor: int = 0
    ledger: int = 0
    code: int = 0
    flags: int = 0
    pending_id: int = 0
    user_data_1: int = 0
    user_data_2: int = 0


class TransferRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored transfer: what was committed, with the fields the ledger filled in.

    A post or void carries the pending transfer's accounts and ledger; its amount is the
    amount posted (for a void, the amount released).
    """

    id: int
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    ledger: int
    code: int
    flags: int
    pending_id: int
    user_data_1: int
    user_data_2: int
    position: int  # 1, 2, 3... in commit order
    journal_seq: int
    ts_ns: int


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """An account's four sums, in its ledger's minor unit."""

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def net(self) -> int:
        """Posted credits minus posted debits: what a customer account holds."""
        return self.credits_posted - self.debits_posted


__all__ = [
    "Account",
    "AccountFlags",
    "Balance",
    "Purpose",
    "Transfer",
    "TransferFlags",
    "TransferRecord",
    "account_id_for",
]
