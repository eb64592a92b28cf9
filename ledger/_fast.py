"""The writer's fast path: a whole write of plain transfers checked and serialised in bulk.

`Ledger` decides one transfer at a time in Python (ledger/ledger.py, "the exact path"). Most
writes are the consumer's: many events of plain transfers and linked trade legs between accounts
that exist, none of them refused. For those, checking every rule row by row gives the same answer
as checking every rule over whole arrays, provided that every row passes: then no chain is rolled
back, no id is recorded as failed, and each row meets the balances that all earlier rows left.
So this module proves, with NumPy over the whole write, that every row would be applied, and
returns None as soon as one row might not be (or the write has a shape it does not handle: a
pending transfer, a post or void, an open chain, a repeated id, an amount that could overflow).
The caller then takes the exact path for that write, which gives every result as before.

What is proven here, per row, are the exact path's checks from ``linked_event_chain_open``
(5002) to ``exceeds_debits`` (5031) with the outcome OK, except ``exists`` (and
``exists_with_different_fields``) and ``id_already_failed`` beyond the write itself: those need
PostgreSQL, and the writer asks it (one query for the id range of the write).

Balances: a plain transfer adds its amount to the debit account's debits_posted and the credit
account's credits_posted, so an account's sums only grow within the write and the overflow
checks need only its final sums. The protected accounts' checks need the running balance at each
row: for every account, the signed sum of its credits minus its debits in row order
(``cumsum`` over the rows sorted by account, then row), compared with a threshold from its
balances before the write.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from ledger import _kernels
from ledger._columns import COLUMNS_DTYPE
from ledger.model import AccountFlags, TransferFlags, balance_max, code_max

# -- LIMITS --

# The sum of a write's amounts, bounded by largest * rows, must stay far inside int64 so that the
# running sums cannot overflow (and a clipped threshold keeps its meaning): writes beyond it are
# decided by the exact path.
amounts_sum_max = 1 << 60
_THRESHOLD_MAX = 1 << 61  # beyond any running sum (<= amounts_sum_max): never reached

_LINKED = int(TransferFlags.LINKED)
_DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)

# One stored transfer's binary COPY tuple without a pending_id (ledger.chain.ROW), as a packed
# big-endian record: the COPY bytes and the hash-chain bytes of a whole write are one tobytes().
COPY_ROW_DTYPE = np.dtype(
    [
        ("fields", ">i2"),
        ("position_size", ">i4"), ("position", ">i8"),
        ("id_size", ">i4"), ("id_hi", ">u8"), ("id_lo", ">u8"),
        ("debit_size", ">i4"), ("debit_account_id", ">i8"),
        ("credit_size", ">i4"), ("credit_account_id", ">i8"),
        ("amount_size", ">i4"), ("amount_minor", ">i8"),
        ("pending_id_size", ">i4"),
        ("ledger_size", ">i4"), ("ledger", ">i4"),
        ("code_size", ">i4"), ("code", ">i4"),
        ("flags_size", ">i4"), ("flags", ">i4"),
        ("user_data_1_size", ">i4"), ("user_data_1", ">i8"),
        ("user_data_2_size", ">i4"), ("user_data_2", ">i8"),
        ("journal_seq_size", ">i4"), ("journal_seq", ">i8"),
        ("ts_ns_size", ">i4"), ("ts_ns", ">i8"),
    ]
)  # fmt: skip
# ledger/_kernels.pyx reads rows as twelve 8-byte columns and writes tuples of this layout.
_COLUMNS = 12
if COLUMNS_DTYPE.itemsize != _COLUMNS * 8 or COPY_ROW_DTYPE.itemsize != 146:
    raise ImportError("ledger/_kernels.pyx no longer matches COLUMNS_DTYPE or COPY_ROW_DTYPE")
_SIZES = {
    "fields": 13, "position_size": 8, "id_size": 16, "debit_size": 8, "credit_size": 8,
    "amount_size": 8, "pending_id_size": -1, "ledger_size": 4, "code_size": 4, "flags_size": 4,
    "user_data_1_size": 8, "user_data_2_size": 8, "journal_seq_size": 8, "ts_ns_size": 8,
}  # fmt: skip


class _Account(Protocol):
    @property
    def ledger(self) -> int: ...

    @property
    def flags(self) -> int: ...


class AccountSums(Protocol):
    """What the fast path reads of an account the writer holds (ledger.ledger._AccountState)."""

    @property
    def account(self) -> _Account: ...

    dp: int
    cp: int
    dpe: int
    cpe: int


_Sums = TypeVar("_Sums", bound=AccountSums)


def plain_write_shape(rows: npt.NDArray[Any], ends: Sequence[int]) -> bool:
    """Whether a write has the shape the fast path decides: known plain flags (LINKED at most),
    no pending_id, no chain left open at the end of a commit, ids in range and all different,
    amounts above 0, codes in range, two different accounts per row. O(rows log rows).

    `ends` are the commits' ends in `rows` (a commit is ``rows[previous end : end]``).
    """
    count = len(rows)
    if count == 0:
        return False
    flags = rows["flags"]
    if ((flags & ~_LINKED) != 0).any():
        return False
    if (rows["pending_id_hi"] != 0).any() or (rows["pending_id_lo"] != 0).any():
        return False
    starts = np.concatenate(([0], np.asarray(ends[:-1], dtype=np.int64)))
    stops = np.asarray(ends, dtype=np.int64)
    lasts = stops[stops > starts] - 1
    if (flags[lasts] & _LINKED).any():  # linked_event_chain_open
        return False
    hi, lo = rows["id_hi"], rows["id_lo"]
    if ((hi == 0) & (lo == 0)).any():  # id_must_be_in_range
        return False
    if not _ascending(hi, lo):  # the consumer's ids ascend: no sort needed to see them differ
        order = np.lexsort((lo, hi))
        hi_sorted, lo_sorted = hi[order], lo[order]
        if ((hi_sorted[1:] == hi_sorted[:-1]) & (lo_sorted[1:] == lo_sorted[:-1])).any():
            return False  # the second copy of an id would be `exists` or worse
    amount = rows["amount_minor"]
    if (amount <= 0).any():
        return False
    code = rows["code"]
    if ((code < 1) | (code > code_max)).any():
        return False
    return not (rows["debit_account_id"] == rows["credit_account_id"]).any()


def _ascending(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> bool:
    """Whether the 128-bit ids (hi, lo) strictly ascend. O(rows)."""
    return bool(((hi[1:] > hi[:-1]) | ((hi[1:] == hi[:-1]) & (lo[1:] > lo[:-1]))).all())


def id_range(rows: npt.NDArray[Any]) -> tuple[int, int]:
    """The smallest and largest id of a non-empty write, as integers. O(rows)."""
    hi, lo = rows["id_hi"], rows["id_lo"]
    hi_min, hi_max = hi.min(), hi.max()
    low = int(hi_min) << 64 | int(lo[hi == hi_min].min())
    high = int(hi_max) << 64 | int(lo[hi == hi_max].max())
    return low, high


class AccountIndex(NamedTuple):
    """The accounts a write names: `ids` once each, ascending, and for each (side, row) the
    index of its account in `ids` (debit sides first, then credit sides)."""

    ids: list[int]
    which: npt.NDArray[np.intp]


def account_index(rows: npt.NDArray[Any]) -> AccountIndex:
    """Every account a write names, once each, and where. O(rows log rows)."""
    both = np.concatenate((rows["debit_account_id"], rows["credit_account_id"]))
    ids, which = np.unique(both, return_inverse=True)
    return AccountIndex(ids.tolist(), which)


def decide_plain(
    rows: npt.NDArray[Any], accounts: Mapping[int, _Sums], index: AccountIndex
) -> list[tuple[_Sums, int, int]] | None:
    """Prove that every row of a write of `plain_write_shape` passes the account and balance
    checks, in row order; None when one might not.

    Returns each account the write touches with what it adds to its debits_posted and its
    credits_posted. Changes nothing. O(rows) in compiled loops (ledger/_kernels.pyx) plus
    O(accounts) in Python.
    """
    count = len(rows)
    amount = rows["amount_minor"]
    if int(amount.max()) * count > amounts_sum_max:
        return None
    which = index.which
    states = [accounts.get(i) for i in index.ids]
    if any(s is None for s in states):  # debit_account_must_exist, credit_account_must_exist
        return None
    known: list[_Sums] = [s for s in states if s is not None]
    debit_of, credit_of = which[:count], which[count:]
    ledgers = np.array([s.account.ledger for s in known], dtype=np.int64)
    ledger = rows["ledger"]
    if ((ledger != ledgers[debit_of]) | (ledger != ledgers[credit_of])).any():
        return None  # ledgers_must_match
    touched = len(known)
    amount = np.ascontiguousarray(amount)
    debits, credits = _kernels.account_sums(debit_of, credit_of, amount, touched)
    added = list(zip(known, debits.tolist(), credits.tolist(), strict=True))
    # Running (credits - debits) of the write, per account, must stay >= low on its debit rows
    # (debits_must_not_exceed_credits) and <= high on its credit rows (the other protection).
    thresholds = _thresholds(known, debits, credits)
    if thresholds is None:  # overflows_debits, overflows_credits
        return None
    low, high = thresholds
    if not _kernels.running_within(debit_of, credit_of, amount, low, high):
        return None  # exceeds_credits, exceeds_debits
    return added


def running_within(
    debit_of: npt.NDArray[np.intp],
    credit_of: npt.NDArray[np.intp],
    amount: npt.NDArray[np.int64],
    low: npt.NDArray[np.int64],
    high: npt.NDArray[np.int64],
) -> bool:
    """`ledger._kernels.running_within` in NumPy: its reference. O(rows log rows)."""
    count, touched = len(amount), len(low)
    which = np.concatenate((debit_of, credit_of))
    # One entry per (row, side), sorted by account and then row; the rows of one account never
    # meet on both sides of one row (the accounts of a row differ).
    side_account = which.astype(np.int64)
    side_row = np.concatenate((np.arange(count), np.arange(count)))
    order = np.argsort(side_account * count + side_row)
    sorted_account = side_account[order]
    delta = np.concatenate((-amount, amount))[order]
    running = np.cumsum(delta)
    starts = np.searchsorted(sorted_account, np.arange(touched))
    before = np.concatenate(([0], running))[starts]  # the running sum before each account
    running -= before[sorted_account]
    is_debit = order < count
    if (is_debit & (running < low[sorted_account])).any():  # exceeds_credits
        return False
    return not (~is_debit & (running > high[sorted_account])).any()  # exceeds_debits


def _thresholds(
    known: Sequence[AccountSums], debits: npt.NDArray[np.int64], credits: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Per account, the bounds of its running (credits - debits) and whether its final sums
    stay within `balance_max`; None when one would not. In int64 when every sum is below
    2**61 (no sum of three can overflow), else account by account in Python integers."""
    dp = np.array([s.dp for s in known], dtype=np.int64)
    cp = np.array([s.cp for s in known], dtype=np.int64)
    dpe = np.array([s.dpe for s in known], dtype=np.int64)
    cpe = np.array([s.cpe for s in known], dtype=np.int64)
    flags = np.array([s.account.flags for s in known], dtype=np.int64)
    touched = len(known)
    low = np.full(touched, -_THRESHOLD_MAX, dtype=np.int64)
    high = np.full(touched, _THRESHOLD_MAX, dtype=np.int64)
    small = _THRESHOLD_MAX  # 2**61
    if (dp < small).all() and (cp < small).all() and (dpe < small).all() and (cpe < small).all():
        if ((debits > 0) & (dp + dpe + debits > balance_max)).any():
            return None
        if ((credits > 0) & (cp + cpe + credits > balance_max)).any():
            return None
        limited = (flags & _DEBITS_LIMITED) != 0
        low[limited] = np.clip((dp + dpe - cp)[limited], -_THRESHOLD_MAX, _THRESHOLD_MAX)
        limited = (flags & _CREDITS_LIMITED) != 0
        high[limited] = np.clip((dp - cp - cpe)[limited], -_THRESHOLD_MAX, _THRESHOLD_MAX)
        return low, high
    for k, (s, debit_minor, credit_minor) in enumerate(
        zip(known, debits.tolist(), credits.tolist(), strict=True)
    ):
        if debit_minor and s.dp + s.dpe + debit_minor > balance_max:
            return None
        if credit_minor and s.cp + s.cpe + credit_minor > balance_max:
            return None
        if s.account.flags & _DEBITS_LIMITED:
            low[k] = max(-_THRESHOLD_MAX, min(_THRESHOLD_MAX, s.dp + s.dpe - s.cp))
        if s.account.flags & _CREDITS_LIMITED:
            high[k] = max(-_THRESHOLD_MAX, min(_THRESHOLD_MAX, s.dp - s.cp - s.cpe))
    return low, high


def concatenate(parts: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """One array of the parts (of one structured dtype), in order: as bytes when they are
    contiguous, which skips NumPy's per-part check of structured dtypes (seen in a profile)."""
    if len(parts) == 1:
        return parts[0]
    adjacent = _adjacent(parts)
    if adjacent is not None:
        return adjacent
    try:
        data = np.concatenate([part.view(np.uint8) for part in parts])
    except ValueError:
        return np.concatenate(parts)
    return data.view(parts[0].dtype)


def _adjacent(parts: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any] | None:
    """The parts as one view, when they are back-to-back slices of one array (the consumer's
    round: `ledger.postings.postings_of_batches` slices one array per batch); else None."""
    parts = [part for part in parts if len(part)]  # an empty slice may point anywhere
    if not parts:
        return None
    base = parts[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or base.dtype != parts[0].dtype:
        return None
    if not base.flags.c_contiguous:
        return None
    # `ctypes.data`, not `__array_interface__`, which spells out the structured dtype on
    # every call (27 us a part, seen in a profile).
    size = base.itemsize
    start = parts[0].ctypes.data
    offset, remainder = divmod(start - base.ctypes.data, size)
    if remainder or not 0 <= offset <= len(base):
        return None
    end = start
    for part in parts:
        if part.base is not base or not part.flags.c_contiguous or part.ctypes.data != end:
            return None
        end += part.nbytes
    count = (end - start) // size
    return base[offset : offset + count] if offset + count <= len(base) else None


def copy_rows(
    rows: npt.NDArray[Any],
    first_position: int,
    journal_seq: npt.NDArray[np.int64],
    ts_ns: npt.NDArray[np.int64],
) -> bytes | bytearray:
    """The binary COPY tuples of a plain write's transfers (no pending_id), positions from
    `first_position`: byte for byte what `ledger.chain.transfer_tuple` gives row by row. O(rows),
    compiled (`copy_rows_reference` is the same in NumPy, 10x slower)."""
    if sys.byteorder != "little":
        return copy_rows_reference(rows, first_position, journal_seq, ts_ns)
    columns = np.ascontiguousarray(rows).view(np.uint64).reshape(len(rows), _COLUMNS)
    return _kernels.copy_rows(columns, first_position, journal_seq, ts_ns)


def copy_rows_reference(
    rows: npt.NDArray[Any],
    first_position: int,
    journal_seq: npt.NDArray[np.int64],
    ts_ns: npt.NDArray[np.int64],
) -> bytes:
    """`copy_rows` in NumPy: one strided pass per field."""
    out = np.empty(len(rows), dtype=COPY_ROW_DTYPE)
    for name, size in _SIZES.items():
        out[name] = size
    out["position"] = np.arange(first_position, first_position + len(rows), dtype=np.int64)
    for name in ("id_hi", "id_lo", "debit_account_id", "credit_account_id", "amount_minor",
                 "ledger", "code", "flags", "user_data_1", "user_data_2"):  # fmt: skip
        out[name] = rows[name]
    out["journal_seq"] = journal_seq
    out["ts_ns"] = ts_ns
    return out.tobytes()


__all__ = [
    "COPY_ROW_DTYPE",
    "AccountIndex",
    "AccountSums",
    "account_index",
    "amounts_sum_max",
    "concatenate",
    "copy_rows",
    "copy_rows_reference",
    "decide_plain",
    "id_range",
    "plain_write_shape",
    "running_within",
]
