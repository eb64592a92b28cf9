"""How engine transfers become ledger transfers: the posting rules, a pure function.

The engine keeps two balances per account and asset, available and held, and publishes every
move between them as a TRANSFER_DTYPE row of its EventBatch. The ledger books each row as one
transfer between accounts with a purpose:

| engine balance                       | ledger account (owner, purpose)          |
|--------------------------------------|------------------------------------------|
| account 0, the outside world         | house (0), CUSTODY_OMNIBUS               |
| account 1, the fees                  | house (0), FEES                          |
| a customer's available               | customer, AVAILABLE                      |
| a customer's held, for an order      | customer, HELD_FOR_ORDERS (order id set) |
| a customer's held, for a withdrawal  | customer, HELD_FOR_WITHDRAWALS (no order)|

The legs of one trade (quote and base between buyer and seller, and each side's fee: the rows
that share a trade id) are one linked chain, so they succeed or fail together. A transfer's id
is derived from the event, (shard, journal sequence, row), so a redelivered event produces the
same ids and the ledger's idempotency makes a second booking a no-op.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy.typing as npt

from engine.messages import EventBatch
from engine.risk import EXTERNAL_ACCOUNT_ID, FEE_ACCOUNT_ID
from ledger.model import Account, AccountFlags, Purpose, Transfer, TransferFlags, account_id_for

# The parts of a transfer id: 32 bits of shard, 72 of journal sequence, 24 of row index.
journal_seq_for_id_max = (1 << 72) - 1
rows_per_entry_max = 1 << 24


def shard_code(shard: str) -> int:
    """A shard's 32-bit code in transfer ids (CRC-32 of its name, never 0)."""
    return zlib.crc32(shard.encode()) or 1


def transfer_id(shard: str, journal_seq: int, row: int) -> int:
    """The ledger transfer id of row ``row`` of journal entry ``journal_seq``'s transfers."""
    if not 0 < journal_seq <= journal_seq_for_id_max or not 0 <= row < rows_per_entry_max:
        raise ValueError(f"journal entry {journal_seq} row {row} does not fit a transfer id")
    return shard_code(shard) << 96 | journal_seq << 24 | row


def ledger_account(engine_account: int, asset_id: int, held: bool, order_id: int) -> Account:
    """The ledger account of one engine balance (see the table above)."""
    if engine_account == EXTERNAL_ACCOUNT_ID:
        owner, purpose, flags = 0, Purpose.CUSTODY_OMNIBUS, 0
    elif engine_account == FEE_ACCOUNT_ID:
        owner, purpose, flags = 0, Purpose.FEES, 0
    else:
        owner, flags = engine_account, AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
        if not held:
            purpose = Purpose.AVAILABLE
        elif order_id:
            purpose = Purpose.HELD_FOR_ORDERS
        else:
            purpose = Purpose.HELD_FOR_WITHDRAWALS
    return Account(
        id=account_id_for(owner, asset_id, purpose),
        ledger=asset_id,
        owner_id=owner,
        purpose=purpose,
        flags=int(flags),
    )


def postings(batch: EventBatch) -> tuple[list[Account], list[Transfer]]:
    """The accounts an EventBatch's transfers touch and the ledger transfers of its rows.

    O(rows). Accounts come once each, in first-use order: creating them is idempotent.
    """
    return postings_of_rows(batch.shard, batch.journal_seq, batch.transfer_rows())


def postings_of_rows(
    shard: str, journal_seq: int, rows: npt.NDArray[Any]
) -> tuple[list[Account], list[Transfer]]:
    accounts: dict[int, Account] = {}
    transfers: list[Transfer] = []
    values = rows.tolist()
    trade_ids = [row[4] for row in values]
    for index, row in enumerate(values):
        amount, debit, credit, order_id, trade_id, asset, _, kind, debit_held, credit_held = row
        debit_account = ledger_account(debit, asset, bool(debit_held), order_id)
        credit_account = ledger_account(credit, asset, bool(credit_held), order_id)
        accounts.setdefault(debit_account.id, debit_account)
        accounts.setdefault(credit_account.id, credit_account)
        # A trade's legs are consecutive rows with its id: each but the last links the next.
        linked = trade_id and index + 1 < len(values) and trade_ids[index + 1] == trade_id
        transfers.append(
            Transfer(
                id=transfer_id(shard, journal_seq, index),
                debit_account_id=debit_account.id,
                credit_account_id=credit_account.id,
                amount_minor=amount,
                ledger=asset,
                code=kind,
                flags=int(TransferFlags.LINKED) if linked else 0,
                user_data_1=order_id,
                user_data_2=trade_id,
            )
        )
    return list(accounts.values()), transfers


__all__ = [
    "journal_seq_for_id_max",
    "ledger_account",
    "postings",
    "postings_of_rows",
    "rows_per_entry_max",
    "shard_code",
    "transfer_id",
]
