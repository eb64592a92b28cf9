"""The loops of the ledger's fast path (ledger/_fast.py), compiled.

Each function here is one pass over a write's rows that NumPy could only do in many strided
passes or a sort: the binary COPY tuples, the four sums per account and the running balance
check. ledger/_fast.py keeps the NumPy form of each as its reference, and a Hypothesis test
holds the two equal (tests/ledger/test_ledger_sequenced_ids.py).
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np

cdef inline uint8_t* _put16(uint8_t* p, int16_t v) noexcept nogil:
    cdef uint16_t b = __builtin_bswap16(<uint16_t>v)
    memcpy(p, &b, 2)
    return p + 2


cdef inline uint8_t* _put32(uint8_t* p, int32_t v) noexcept nogil:
    cdef uint32_t b = __builtin_bswap32(<uint32_t>v)
    memcpy(p, &b, 4)
    return p + 4


cdef inline uint8_t* _put64(uint8_t* p, uint64_t v) noexcept nogil:
    cdef uint64_t b = __builtin_bswap64(v)
    memcpy(p, &b, 8)
    return p + 8


cdef inline uint8_t* _field64(uint8_t* p, uint64_t v) noexcept nogil:
    return _put64(_put32(p, 8), v)


cdef inline uint8_t* _field32(uint8_t* p, int64_t v) noexcept nogil:
    return _put32(_put32(p, 4), <int32_t>v)


def copy_rows(
    const uint64_t[:, ::1] rows,
    int64_t first_position,
    const int64_t[::1] journal_seq,
    const int64_t[::1] ts_ns,
):
    """`ledger._fast.copy_rows` in one pass (little-endian machines; `rows` as uint64 columns)."""
    cdef Py_ssize_t count = rows.shape[0], r
    if rows.shape[1] != _COLUMNS or journal_seq.shape[0] != count or ts_ns.shape[0] != count:
        raise ValueError("rows, journal_seq and ts_ns must be COLUMNS_DTYPE rows of one write")
    out = bytearray(count * _TUPLE_SIZE)
    cdef uint8_t[::1] view = out
    cdef uint8_t* p
    if count == 0:
        return out
    p = &view[0]
    with nogil:
        for r in range(count):
            p = _put16(p, 13)
            p = _field64(p, <uint64_t>(first_position + r))
            p = _put64(_put32(p, 16), rows[r, _ID_HI])
            p = _put64(p, rows[r, _ID_LO])
            p = _field64(p, rows[r, _DEBIT])
            p = _field64(p, rows[r, _CREDIT])
            p = _field64(p, rows[r, _AMOUNT])
            p = _put32(p, -1)  # pending_id: NULL
            p = _field32(p, <int64_t>rows[r, _LEDGER])
            p = _field32(p, <int64_t>rows[r, _CODE])
            p = _field32(p, <int64_t>rows[r, _FLAGS])
            p = _field64(p, rows[r, _USER_DATA_1])
            p = _field64(p, rows[r, _USER_DATA_2])
            p = _field64(p, <uint64_t>journal_seq[r])
            p = _field64(p, <uint64_t>ts_ns[r])
    return out


def account_sums(
    const Py_ssize_t[::1] debit_of,
    const Py_ssize_t[::1] credit_of,
    const int64_t[::1] amount,
    Py_ssize_t touched,
):
    """Per account (index in the write's account list), what the rows add to its debits and to
    its credits. The caller bounds the amounts' sum (`ledger._fast.amounts_sum_max`)."""
    cdef Py_ssize_t count = amount.shape[0], r
    if debit_of.shape[0] != count or credit_of.shape[0] != count:
        raise ValueError("one account per side of each row")
    debits = np.zeros(touched, dtype=np.int64)
    credits = np.zeros(touched, dtype=np.int64)
    cdef int64_t[::1] d = debits, c = credits
    with nogil:
        for r in range(count):
            if not (0 <= debit_of[r] < touched and 0 <= credit_of[r] < touched):
                with gil:
                    raise IndexError("account index outside the write's accounts")
            d[debit_of[r]] += amount[r]
            c[credit_of[r]] += amount[r]
    return debits, credits


def running_within(
    const Py_ssize_t[::1] debit_of,
    const Py_ssize_t[::1] credit_of,
    const int64_t[::1] amount,
    const int64_t[::1] low,
    const int64_t[::1] high,
):
    """Whether, rows applied in order, each account's running (credits - debits) of the write
    stays >= its `low` after each of its debits and <= its `high` after each of its credits."""
    cdef Py_ssize_t count = amount.shape[0], touched = low.shape[0], r, a
    if debit_of.shape[0] != count or credit_of.shape[0] != count or high.shape[0] != touched:
        raise ValueError("one account per side of each row, one bound per account")
    running_array = np.zeros(touched, dtype=np.int64)
    cdef int64_t[::1] running = running_array
    cdef bint within = True
    with nogil:
        for r in range(count):
            a = debit_of[r]
            if not (0 <= a < touched and 0 <= credit_of[r] < touched):
                with gil:
                    raise IndexError("account index outside the write's accounts")
            running[a] -= amount[r]
            if running[a] < low[a]:
                within = False
                break
            a = credit_of[r]
            running[a] += amount[r]
            if running[a] > high[a]:
                within = False
                break
    return within
