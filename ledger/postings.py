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
same ids and the ledger's idempotency makes a second booking a no-op. The ids are sequenced
(`ledger.model.sequenced_id_min` and up): they ascend with the journal, which is what lets the
ledger store them without a unique index entry each.

`postings` makes one `Transfer` per row; `postings_of_batches` computes the same transfers for a
whole round of EventBatches with NumPy, as `TransferColumns` (what the consumer books: no object
per row), and the accounts they name as ids, from which `posting_account` makes the `Account`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engine._dtypes import TRANSFER_DTYPE
from engine.messages import CODEC_RAW, EventBatch
from engine.risk import EXTERNAL_ACCOUNT_ID, FEE_ACCOUNT_ID
from ledger._columns import COLUMNS_DTYPE, TransferColumns
from ledger.model import (
    Account,
    AccountFlags,
    Purpose,
    Transfer,
    TransferFlags,
    account_id_for,
    asset_id_for_account_max,
    owner_id_for_account_max,
    sequenced_id_min,
)

# The parts of a transfer id: the sequenced bit, 31 bits of shard, 72 of journal sequence and
# 24 of row index.
journal_seq_for_id_max = (1 << 72) - 1
rows_per_entry_max = 1 << 24


def shard_code(shard: str) -> int:
    """A shard's 31-bit code in transfer ids (CRC-32 of its name, never 0)."""
    return zlib.crc32(shard.encode()) & 0x7FFF_FFFF or 1


def transfer_id(shard: str, journal_seq: int, row: int) -> int:
    """The ledger transfer id of row ``row`` of journal entry ``journal_seq``'s transfers."""
    if not 0 < journal_seq <= journal_seq_for_id_max or not 0 <= row < rows_per_entry_max:
        raise ValueError(f"journal entry {journal_seq} row {row} does not fit a transfer id")
    return sequenced_id_min | shard_code(shard) << 96 | journal_seq << 24 | row


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


def posting_account(account_id: int) -> Account:
    """The `Account` that `ledger_account` makes with this id (postings' ids only).

    The id packs owner, asset and purpose (`ledger.model.account_id_for`); owner 0 is the house,
    whose accounts are unprotected, and every other owner is a customer (engine accounts 0 and
    1 are the house's), whose debits may not exceed credits.
    """
    owner = account_id >> 23
    return Account(
        id=account_id,
        ledger=account_id >> 7 & asset_id_for_account_max,
        owner_id=owner,
        purpose=account_id & 0x7F,
        flags=int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS) if owner else 0,
    )


def _account_ids(
    engine_account: npt.NDArray[Any],
    asset: npt.NDArray[Any],
    held: npt.NDArray[Any],
    order_id: npt.NDArray[Any],
) -> npt.NDArray[np.int64]:
    """`ledger_account(...).id` of every row, vectorised (ranges checked by the caller)."""
    external = engine_account == EXTERNAL_ACCOUNT_ID
    fee = engine_account == FEE_ACCOUNT_ID
    owner = np.where(external | fee, 0, engine_account).astype(np.int64)
    purpose = np.select(
        [external, fee, held == 0, order_id != 0],
        [int(Purpose.CUSTODY_OMNIBUS), int(Purpose.FEES), int(Purpose.AVAILABLE),
         int(Purpose.HELD_FOR_ORDERS)],
        int(Purpose.HELD_FOR_WITHDRAWALS),
    ).astype(np.int64)  # fmt: skip
    ids: npt.NDArray[np.int64] = owner << 23 | asset.astype(np.int64) << 7 | purpose
    return ids


def _owner_in_range(engine_account: npt.NDArray[Any]) -> bool:
    house = (engine_account == EXTERNAL_ACCOUNT_ID) | (engine_account == FEE_ACCOUNT_ID)
    return bool(
        (house | ((engine_account >= 0) & (engine_account <= owner_id_for_account_max))).all()
    )


def postings_of_batches(
    batches: Sequence[EventBatch],
) -> tuple[npt.NDArray[np.int64], list[TransferColumns]]:
    """The postings of many EventBatches at once: every account id their transfers name (each
    once, ascending) and each batch's transfers as `TransferColumns`, row for row the
    transfers `postings` gives. O(rows) in NumPy.

    Raises
    ------
    ValueError
        As `postings` does, when a batch has a row that fits no transfer id or account.
    """
    # A compressed batch's rows are inflated (`transfer_rows`, which raises ValueError for a
    # codec it does not know); the others are read as they came.
    raw = [b.transfers if b.codec == CODEC_RAW else b.transfer_rows().tobytes() for b in batches]
    size = TRANSFER_DTYPE.itemsize
    counts = [len(transfers) // size for transfers in raw]
    # One buffer for the round: the rows of every batch, without an array per batch.
    whole = all(len(transfers) % size == 0 for transfers in raw)
    rows = np.frombuffer(b"".join(raw) if whole else b"", TRANSFER_DTYPE)
    asset = rows["asset_id"]
    if not (
        whole
        and all(
            0 < b.journal_seq <= journal_seq_for_id_max
            for b, count in zip(batches, counts, strict=True)
            if count  # a batch without rows makes no transfer id
        )
        and all(count <= rows_per_entry_max for count in counts)
        and _owner_in_range(rows["debit_account_id"])
        and _owner_in_range(rows["credit_account_id"])
        and ((asset >= 0) & (asset <= asset_id_for_account_max)).all()
    ):
        for batch in batches:  # the batch at fault raises, with the message `postings` gives
            postings(batch)
        raise ValueError("EventBatch rows fit no transfer")  # unreachable: one raised above
    total = len(rows)
    out = np.empty(total, dtype=COLUMNS_DTYPE)
    # Transfer id: `transfer_id`'s, as two 64-bit halves.
    seqs = [b.journal_seq if count else 0 for b, count in zip(batches, counts, strict=True)]
    hi_base = [
        (sequenced_id_min | shard_code(b.shard) << 96) >> 64 | seq >> 40
        for b, seq in zip(batches, seqs, strict=True)
    ]
    lo_base = [(seq & (1 << 40) - 1) << 24 for seq in seqs]
    starts = np.repeat(np.cumsum([0, *counts])[:-1], counts).astype(np.uint64)
    row_index = np.arange(total, dtype=np.uint64) - starts
    out["id_hi"] = np.repeat(np.array(hi_base, dtype=np.uint64), counts)
    out["id_lo"] = np.repeat(np.array(lo_base, dtype=np.uint64), counts) + row_index
    order_id, trade_id = rows["order_id"], rows["trade_id"]
    out["debit_account_id"] = _account_ids(
        rows["debit_account_id"], asset, rows["debit_held"], order_id
    )
    out["credit_account_id"] = _account_ids(
        rows["credit_account_id"], asset, rows["credit_held"], order_id
    )
    out["amount_minor"] = rows["amount_minor"]
    out["ledger"] = asset
    out["code"] = rows["kind"]
    # A trade's legs are consecutive rows of one batch with its id: each but the last links.
    linked = np.zeros(total, dtype=bool)
    if total:
        linked[:-1] = (trade_id[:-1] != 0) & (trade_id[1:] == trade_id[:-1])
        ends = np.cumsum(counts)
        linked[ends[ends > 0] - 1] = False
    out["flags"] = np.where(linked, int(TransferFlags.LINKED), 0)
    out["pending_id_hi"] = 0
    out["pending_id_lo"] = 0
    out["user_data_1"] = order_id
    out["user_data_2"] = trade_id
    ids = np.unique(np.concatenate((out["debit_account_id"], out["credit_account_id"])))
    columns, first = [], 0
    for count in counts:
        columns.append(TransferColumns(out[first : first + count]))
        first += count
    return ids, columns


__all__ = [
    "journal_seq_for_id_max",
    "ledger_account",
    "posting_account",
    "postings",
    "postings_of_batches",
    "postings_of_rows",
    "rows_per_entry_max",
    "shard_code",
    "transfer_id",
]
