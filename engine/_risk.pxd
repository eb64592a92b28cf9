# The compiled risk stage: a table of contents. Semantics: engine/risk.py, the plain-Python
# reference it is tested against (tests/engine/test_risk_differential.py).
cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine._core cimport Command, Event

# -- RECORDS (same fields and order as TRANSFER_DTYPE in engine/_dtypes.py) --

cdef struct Transfer:
    int64_t amount_minor
    int64_t debit_account_id
    int64_t credit_account_id
    int64_t order_id
    int64_t trade_id
    int32_t asset_id
    int32_t command_index
    uint8_t kind
    uint8_t debit_held
    uint8_t credit_held

# -- STATE --


# Holds, specs and limits reference only ints, strings and each other in one direction, so
# they can form no cycle: the garbage collector need not track them (no_gc).
@cython.final
@cython.no_gc
cdef class InstrumentSpec:
    cdef readonly int64_t instrument_id
    cdef readonly str symbol
    cdef readonly int64_t base_asset_id
    cdef readonly int64_t quote_asset_id
    cdef readonly int64_t quote_minor_per_tick_lot
    cdef readonly int64_t base_minor_per_lot
    cdef readonly int64_t price_max_ticks
    cdef readonly int64_t fee_bps_max
    cdef readonly int64_t taker_fee_bps
    cdef readonly int64_t maker_fee_bps
    cdef Balance _fee_pair          # the fee account's quote balance, once it exists


# One account's money in one asset: reads as the reference's [available, held] list.
@cython.final
cdef class Balance:
    cdef public int64_t available_minor
    cdef public int64_t held_minor


# One account's open notional in one quote asset: its orders update it through their holds,
# with no lookup. A Python int, as the notional of a sell may pass int64.
@cython.final
@cython.no_gc
cdef class Exposure:
    cdef public object notional_minor


@cython.final
@cython.no_gc
cdef class OrderHold:
    cdef public int64_t account_id
    cdef public int64_t instrument_id
    cdef public int64_t side
    cdef public int64_t price_ticks
    cdef public int64_t leaves_lots
    cdef public int64_t held_minor
    # A sell's notional is not bounded by its hold: it may pass int64, so it is a Python int.
    cdef public object notional_minor
    cdef Exposure _exposure        # its account's open notional in its quote asset
    # Looked up once: a spec never changes and a Balance, once created, is never replaced.
    cdef InstrumentSpec _spec
    cdef Balance _quote_pair
    cdef Balance _base_pair


@cython.final
cdef class Limits:
    cdef public object open_orders_max
    cdef public dict order_notional_max
    cdef public dict open_notional_max


# The commands of one run, as the core's batch path takes them, with what each place reserved.
@cython.final
cdef class Run:
    cdef Command* _commands
    cdef int32_t* _entry_index
    cdef Py_ssize_t _count
    cdef Py_ssize_t _capacity
    cdef list _pending             # run position -> OrderHold, amend refund tuple, or None
    cdef dict _pending_orders      # account -> places earlier in this run
    cdef dict _pending_notional    # (account, quote asset) -> their notional

    cdef Command* _append(self, int32_t index, object pending) except NULL
    cdef int _reset(self) except -1


@cython.final
cdef class RiskStage:
    cdef public dict balances
    cdef public dict instruments
    cdef public dict orders
    cdef public dict open_orders
    cdef public dict open_notional  # (account, quote asset) -> Exposure
    cdef public dict limits
    cdef public set kill_switched
    cdef public dict withdrawals
    cdef public set withdrawals_finished
    cdef public set deposits_credited
    cdef public object terminal
    cdef object _terminal_order    # deque of the terminal ids, oldest first, for eviction
    cdef Transfer* _transfers
    cdef Py_ssize_t _transfer_count
    cdef Py_ssize_t _transfer_capacity
    cdef OrderHold _checked        # the hold _check_place reserved, or None
    cdef Limits _checked_limits    # the limits it checked against

    # -- BALANCES --
    cdef Balance _balance(self, int64_t account_id, int64_t asset_id)
    cdef InstrumentSpec _spec_of(self, OrderHold hold)
    cdef Balance _pair(self, OrderHold hold, int64_t asset_id)
    cdef Balance _account_pair(self, OrderHold hold, int64_t account_id, int64_t asset_id)
    cdef Balance _fee_pair(self, InstrumentSpec spec)
    cdef int _move(self, uint8_t kind, int64_t asset_id, int64_t amount_minor,
                   int64_t debit_account_id, Balance debit, bint debit_held,
                   int64_t credit_account_id, Balance credit, bint credit_held,
                   int32_t command_index, int64_t order_id, int64_t trade_id) except -1
    cdef int _transfer(self, uint8_t kind, int64_t asset_id, int64_t amount_minor,
                       int64_t debit_account_id, bint debit_held,
                       int64_t credit_account_id, bint credit_held,
                       int32_t command_index, int64_t order_id, int64_t trade_id) except -1

    # -- HOLDS --
    cdef Limits _limits_of(self, object account_id)
    cdef object _open_notional(self, object account, object quote)
    cdef Exposure _exposure_of(self, object account, object quote)
    cdef int64_t _check_place(self, object account, int64_t account_id,
                              object instrument, int64_t side, int64_t order_type,
                              int64_t price_ticks, int64_t quantity_lots, dict pending_orders,
                              dict pending_notional) except -1
    cdef int64_t _place(self, Run run, int32_t index, int64_t ts_ns, object c) except -1
    cdef int _unreserve(self, OrderHold hold) except -1
    cdef int _open_order(self, int64_t order_id, OrderHold hold, int32_t index) except -1
    cdef int _amended(self, int64_t order_id, int64_t price_ticks, int64_t leaves_lots,
                      int64_t extra, int32_t index) except -1
    cdef int _resize(self, int64_t order_id, OrderHold hold, InstrumentSpec spec,
                     int64_t leaves_lots, int32_t index) except -1
    cdef int _remember_terminal(self, object order_id, object row) except -1
    cdef int _close_order(self, int64_t order_id, int status, int reason,
                          int32_t index) except -1

    # -- SETTLEMENT --
    cdef int _filled(self, const Event* e) except -1
