"""Transfers as columns: one NumPy structured array instead of one `Transfer` object per row.

The consumer's posting rules produce a round's transfers as arrays (ledger/postings.py), and the
writer's fast path (ledger/_fast.py) checks and stores them without ever making an object per
transfer. `TransferColumns` is still a `Sequence[Transfer]`, so the exact path, the exception
queue and the tests read it as a list: a row becomes a `Transfer` only when someone asks for it.

A 128-bit id is two unsigned 64-bit halves (``id_hi << 64 | id_lo``); the other fields are signed
64-bit, wide enough for every value the ledger accepts, so a `Transfer` that does not fit
(a negative id, user data beyond 64 bits) simply has no columns: the exact path decides it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from ledger.model import Transfer

COLUMNS_DTYPE = np.dtype(
    [
        ("id_hi", "<u8"),
        ("id_lo", "<u8"),
        ("debit_account_id", "<i8"),
        ("credit_account_id", "<i8"),
        ("amount_minor", "<i8"),
        ("ledger", "<i8"),
        ("code", "<i8"),
        ("flags", "<i8"),
        ("pending_id_hi", "<u8"),
        ("pending_id_lo", "<u8"),
        ("user_data_1", "<i8"),
        ("user_data_2", "<i8"),
    ]
)
_LOW_64 = (1 << 64) - 1


def _row_of(t: Transfer) -> tuple[int, ...]:
    return (
        t.id >> 64, t.id & _LOW_64, t.debit_account_id, t.credit_account_id, t.amount_minor,
        t.ledger, t.code, t.flags, t.pending_id >> 64, t.pending_id & _LOW_64, t.user_data_1,
        t.user_data_2,
    )  # fmt: skip


def _transfer_of(row: tuple[int, ...]) -> Transfer:
    return Transfer(
        id=row[0] << 64 | row[1],
        debit_account_id=row[2],
        credit_account_id=row[3],
        amount_minor=row[4],
        ledger=row[5],
        code=row[6],
        flags=row[7],
        pending_id=row[8] << 64 | row[9],
        user_data_1=row[10],
        user_data_2=row[11],
    )


class TransferColumns(Sequence[Transfer]):
    """A commit's transfers as one `COLUMNS_DTYPE` array; reads as a sequence of `Transfer`.

    Build it from arrays (`ledger.postings.postings_of_batches`) or from transfers
    (`from_transfers`). Indexing makes one `Transfer`, O(1); iterating or `to_transfers` makes
    all of them once, O(rows), and keeps them.
    """

    __slots__ = ("_transfers", "rows")

    def __init__(self, rows: npt.NDArray[Any]) -> None:
        if rows.dtype != COLUMNS_DTYPE or rows.ndim != 1:
            raise ValueError(f"TransferColumns needs a 1-d {COLUMNS_DTYPE} array")
        self.rows = rows
        self._transfers: list[Transfer] | None = None

    @classmethod
    def from_transfers(cls, transfers: Sequence[Transfer]) -> TransferColumns | None:
        """The same transfers as columns, or None when a field does not fit its column.

        O(rows). What the writer's fast path does with a plain list of transfers.
        """
        values = [_row_of(t) for t in transfers]
        try:
            rows = np.array(values, dtype=COLUMNS_DTYPE)
        except (OverflowError, ValueError):
            return None
        # NumPy may wrap an out-of-range integer instead of raising: a round trip shows it.
        if rows.tolist() != values:
            return None
        columns = cls(rows)
        columns._transfers = list(transfers)
        return columns

    def to_transfers(self) -> list[Transfer]:
        """Every row as a `Transfer`, in order (made once, then kept)."""
        if self._transfers is None:
            self._transfers = [_transfer_of(row) for row in self.rows.tolist()]
        return self._transfers

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Transfer: ...

    @overload
    def __getitem__(self, index: slice) -> list[Transfer]: ...

    def __getitem__(self, index: int | slice) -> Transfer | list[Transfer]:
        if isinstance(index, slice) or self._transfers is not None:
            return self.to_transfers()[index]
        return _transfer_of(self.rows[index].tolist())

    def __iter__(self) -> Iterator[Transfer]:
        return iter(self.to_transfers())

    def __repr__(self) -> str:
        return f"TransferColumns({len(self)} transfers)"


__all__ = ["COLUMNS_DTYPE", "TransferColumns"]
