# The ledger fast path's compiled loops: a table of contents. Semantics: the NumPy references in
# ledger/_fast.py, which tests/ledger/test_ledger_sequenced_ids.py holds them equal to.
from libc.stdint cimport uint16_t, uint32_t, uint64_t

# Byte order: COPY's binary format is big-endian; these compile to one instruction each.
cdef extern from *:
    uint16_t __builtin_bswap16(uint16_t) nogil
    uint32_t __builtin_bswap32(uint32_t) nogil
    uint64_t __builtin_bswap64(uint64_t) nogil

# ledger._columns.COLUMNS_DTYPE: twelve 8-byte fields per row, in this order; and the size of
# ledger._fast.COPY_ROW_DTYPE (13 fields, the pending_id NULL).
cdef enum:
    _ID_HI = 0
    _ID_LO = 1
    _DEBIT = 2
    _CREDIT = 3
    _AMOUNT = 4
    _LEDGER = 5
    _CODE = 6
    _FLAGS = 7
    _USER_DATA_1 = 10
    _USER_DATA_2 = 11
    _COLUMNS = 12
    _TUPLE_SIZE = 146
