# cython: language_level=3
"""The compiled risk stage: balances, holds, limits and the kill switch, on sequenced state.

Semantics are engine/risk.py's, line for line: that module is the plain-Python reference this one
is tested against (tests/engine/test_risk_differential.py), as engine/reference.py is for the
matching core. What this module adds is speed on the order path: the place pre-check writes the
core's command row directly, settlement walks the core's event rows in C, and transfers are
written as TRANSFER_DTYPE records, not tuples.

Integers. The reference computes with Python's unbounded ints. Here a hot path computes in int64
only when every step provably fits (operands non-negative, overflow checked by the compiler's
builtins), and otherwise takes the same formula on Python ints, so every reject, including one
for an amount beyond int64, is the reference's. Quantities that are bounded by a balance (holds,
transfer amounts) are int64; a sell's notional is not bounded by its hold, so it stays a Python
int.
"""

cimport cython
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset
from cpython.long cimport PyLong_AsLongLongAndOverflow

from collections import deque

import numpy as np

from engine._dtypes import COMMAND_DTYPE, EVENT_DTYPE, TRANSFER_DTYPE
from engine.messages import BookLevel, PlaceOrder, TradePrint

include "_codes.pxi"

cnp.import_array()

cdef extern from *:
    bint _mul_overflow "__builtin_mul_overflow"(int64_t a, int64_t b, int64_t* out) nogil
    bint _add_overflow "__builtin_add_overflow"(int64_t a, int64_t b, int64_t* out) nogil
    bint _sub_overflow "__builtin_sub_overflow"(int64_t a, int64_t b, int64_t* out) nogil

cdef enum:
    EXTERNAL = 0         # engine/risk.py EXTERNAL_ACCOUNT_ID: the outside world
    FEES = 1             # engine/risk.py FEE_ACCOUNT_ID: the exchange's fee income
    BASIS_POINTS = 10000
    RUN_INITIAL = 256
    TRANSFERS_INITIAL = 1024

# The reference's limits, restated as C constants (engine/risk.py holds the reasons).
cdef int64_t WIDE_MAX = 0x7FFFFFFFFFFFFFFF       # a journaled wide field: |value| <= 2**63 - 1
cdef int64_t NARROW_MAX = 0x7FFFFFFF             # a 32-bit field: |value| <= 2**31 - 1
cdef object BALANCE_MINOR_MAX = WIDE_MAX          # engine/risk.py balance_minor_max
cdef Py_ssize_t TERMINAL_KEPT_MAX = 100_000      # engine/risk.py terminal_orders_kept_max


def _record_sizes():
    """sizeof of the C record that mirrors TRANSFER_DTYPE (checked by a test)."""
    return {"TRANSFER_DTYPE": sizeof(Transfer)}


# -- INTEGERS --

cdef inline int _fits(object value, int64_t low, int64_t high, int64_t* out) except -1:
    """1 and *out = value if low <= value <= high, else 0; never raises for a wide int."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow or v < low or v > high:
        return 0
    out[0] = v
    return 1


cdef inline bint _product(int64_t a, int64_t b, int64_t c, int64_t* out) noexcept nogil:
    """a * b * c when no factor is negative and every step fits int64."""
    cdef int64_t t
    if a < 0 or b < 0 or c < 0:
        return False
    return not (_mul_overflow(a, b, &t) or _mul_overflow(t, c, out))


cdef inline bint _required(InstrumentSpec spec, int64_t side, int64_t price_ticks,
                           int64_t lots, int64_t* out) noexcept:
    """required_hold in int64, when no operand is negative (C division then floors like
    Python's) and every step fits; False sends the caller to the Python-int formula."""
    cdef int64_t notional, fee
    if side == SIDE_BUY:
        if not _product(price_ticks, lots, spec.quote_minor_per_tick_lot, &notional):
            return False
        if _mul_overflow(notional, spec.fee_bps_max, &fee):
            return False
        return not _add_overflow(notional, fee // BASIS_POINTS, out)
    if lots < 0:
        return False
    return not _mul_overflow(lots, spec.base_minor_per_lot, out)


cdef object _required_any(InstrumentSpec spec, object side, object price_ticks, object lots):
    """engine/risk.py required_hold on Python ints: exact for any operands."""
    cdef object notional
    if side == SIDE_BUY:
        notional = price_ticks * lots * spec.quote_minor_per_tick_lot
        return notional + notional * spec.fee_bps_max // BASIS_POINTS
    return lots * spec.base_minor_per_lot


cdef inline object _notional(int64_t price_ticks, int64_t lots, InstrumentSpec spec):
    cdef int64_t n
    if _product(price_ticks, lots, spec.quote_minor_per_tick_lot, &n):
        return n
    return (<object>price_ticks) * lots * spec.quote_minor_per_tick_lot


cdef inline int64_t _hold_asset(InstrumentSpec spec, int64_t side) noexcept:
    return spec.quote_asset_id if side == SIDE_BUY else spec.base_asset_id


# -- STATE --

@cython.final
@cython.no_gc
cdef class InstrumentSpec:
    """What the risk stage knows of an instrument (engine/risk.py InstrumentSpec)."""

    def __init__(self, int64_t instrument_id, str symbol, int64_t base_asset_id,
                 int64_t quote_asset_id, int64_t quote_minor_per_tick_lot,
                 int64_t base_minor_per_lot, int64_t price_max_ticks, int64_t fee_bps_max,
                 int64_t taker_fee_bps, int64_t maker_fee_bps):
        self.instrument_id = instrument_id
        self.symbol = symbol
        self.base_asset_id = base_asset_id
        self.quote_asset_id = quote_asset_id
        self.quote_minor_per_tick_lot = quote_minor_per_tick_lot
        self.base_minor_per_lot = base_minor_per_lot
        self.price_max_ticks = price_max_ticks
        self.fee_bps_max = fee_bps_max
        self.taker_fee_bps = taker_fee_bps
        self.maker_fee_bps = maker_fee_bps

    def __repr__(self):
        return f"InstrumentSpec({self.instrument_id}, {self.symbol!r})"


@cython.final
cdef class Balance:
    """One account's [available, held] of one asset; indexes, unpacks and compares like the
    reference's two-item list."""

    def __init__(self, int64_t available_minor=0, int64_t held_minor=0):
        self.available_minor = available_minor
        self.held_minor = held_minor

    def __len__(self):
        return 2

    def __getitem__(self, Py_ssize_t bucket):
        if bucket == 0 or bucket == -2:
            return self.available_minor
        if bucket == 1 or bucket == -1:
            return self.held_minor
        raise IndexError("a balance has two buckets: 0 available, 1 held")

    def __setitem__(self, Py_ssize_t bucket, int64_t amount_minor):
        if bucket == 0 or bucket == -2:
            self.available_minor = amount_minor
        elif bucket == 1 or bucket == -1:
            self.held_minor = amount_minor
        else:
            raise IndexError("a balance has two buckets: 0 available, 1 held")

    def __iter__(self):
        return iter((self.available_minor, self.held_minor))

    def __eq__(self, other):
        if isinstance(other, (Balance, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return f"Balance({self.available_minor}, {self.held_minor})"


@cython.final
@cython.no_gc
cdef class Exposure:
    """An account's open notional in one quote asset (an int of the reference's
    open_notional)."""

    def __init__(self, object notional_minor=0):
        self.notional_minor = notional_minor

    def __repr__(self):
        return f"Exposure({self.notional_minor})"


@cython.final
@cython.no_gc
cdef class OrderHold:
    """What one open order holds (engine/risk.py OrderHold). `price_ticks` is the price its
    hold is computed at."""

    def __init__(self, int64_t account_id, int64_t instrument_id, int64_t side,
                 int64_t price_ticks, int64_t leaves_lots, int64_t held_minor,
                 object notional_minor):
        self.account_id = account_id
        self.instrument_id = instrument_id
        self.side = side
        self.price_ticks = price_ticks
        self.leaves_lots = leaves_lots
        self.held_minor = held_minor
        self.notional_minor = notional_minor

    def __repr__(self):
        return (f"OrderHold(account_id={self.account_id}, instrument_id={self.instrument_id}, "
                f"side={self.side}, price_ticks={self.price_ticks}, "
                f"leaves_lots={self.leaves_lots}, held_minor={self.held_minor}, "
                f"notional_minor={self.notional_minor})")


@cython.final
cdef class Limits:
    """An account's risk limits (engine/risk.py Limits); 0 or absent: no limit."""

    def __init__(self, object open_orders_max=0, dict order_notional_max=None,
                 dict open_notional_max=None):
        self.open_orders_max = open_orders_max
        self.order_notional_max = {} if order_notional_max is None else order_notional_max
        self.open_notional_max = {} if open_notional_max is None else open_notional_max

    def __repr__(self):
        return (f"Limits({self.open_orders_max!r}, {self.order_notional_max!r}, "
                f"{self.open_notional_max!r})")


# -- THE RUN --

@cython.final
cdef class Run:
    """Consecutive core commands of one journal entry, as COMMAND_DTYPE rows, with each row's
    command index in the entry and what a place or amend reserved for it."""

    def __cinit__(self):
        self._commands = <Command*>malloc(RUN_INITIAL * sizeof(Command))
        self._entry_index = <int32_t*>malloc(RUN_INITIAL * sizeof(int32_t))
        if self._commands == NULL or self._entry_index == NULL:
            raise MemoryError()
        self._capacity = RUN_INITIAL
        self._count = 0
        self._pending = []
        self._pending_orders = {}
        self._pending_notional = {}

    def __dealloc__(self):
        free(self._commands)
        free(self._entry_index)

    def __len__(self):
        return self._count

    cdef Command* _append(self, int32_t index, object pending) except NULL:
        """A zeroed row at the end of the run. Amortised O(1)."""
        cdef Py_ssize_t capacity
        cdef Command* commands
        cdef int32_t* entry_index
        if self._count == self._capacity:
            capacity = self._capacity * 2
            commands = <Command*>realloc(self._commands, capacity * sizeof(Command))
            if commands == NULL:
                raise MemoryError()
            self._commands = commands
            entry_index = <int32_t*>realloc(self._entry_index, capacity * sizeof(int32_t))
            if entry_index == NULL:
                raise MemoryError()
            self._entry_index = entry_index
            self._capacity = capacity
        memset(&self._commands[self._count], 0, sizeof(Command))
        self._entry_index[self._count] = index
        self._pending.append(pending)
        self._count += 1
        return &self._commands[self._count - 1]

    cdef int _reset(self) except -1:
        self._count = 0
        self._pending = []
        if self._pending_orders:
            self._pending_orders = {}
        if self._pending_notional:
            self._pending_notional = {}
        return 0

    def clear(self):
        """Forget the run (a new journal entry starts)."""
        self._reset()

    def push(self, int index, tuple row not None, object pending=None):
        """Queue a core command given as a tuple in COMMAND_DTYPE order; False, and nothing
        queued, when a field does not fit its record (the shard rejects it: 4031)."""
        cdef int64_t v[16]
        cdef Py_ssize_t i
        cdef Command* c
        if len(row) != 16:
            raise ValueError("a command row has 16 fields")
        for i in range(16):
            if i < 7:
                if not _fits(row[i], -WIDE_MAX, WIDE_MAX, &v[i]):
                    return False
            elif i < 9:
                if not _fits(row[i], -NARROW_MAX, NARROW_MAX, &v[i]):
                    return False
            elif not _fits(row[i], 0, 255, &v[i]):
                return False
        c = self._append(index, pending)
        c.ts_ns, c.account_id, c.client_order_id, c.order_id = v[0], v[1], v[2], v[3]
        c.price_ticks, c.quantity_lots, c.expire_ts_ns = v[4], v[5], v[6]
        c.instrument_id, c.stp_group = <int32_t>v[7], <int32_t>v[8]
        c.kind, c.side, c.order_type, c.time_in_force = v[9], v[10], v[11], v[12]
        c.stp_mode, c.post_only, c.cancel_resting = v[13], v[14], v[15]
        return True

    def commands(self):
        """The run's rows as a new COMMAND_DTYPE array, for the core's batch path."""
        cdef cnp.ndarray out = np.empty(self._count, dtype=COMMAND_DTYPE)
        memcpy(cnp.PyArray_DATA(out), self._commands, self._count * sizeof(Command))
        return out


# -- THE STAGE --

@cython.final
cdef class RiskStage:
    """Balances and holds of every account (engine/risk.py RiskStage, compiled). Transfers
    collect as TRANSFER_DTYPE records; the shard takes them with `take_transfers()` after each
    journal entry."""

    def __cinit__(self):
        self._transfers = <Transfer*>malloc(TRANSFERS_INITIAL * sizeof(Transfer))
        if self._transfers == NULL:
            raise MemoryError()
        self._transfer_capacity = TRANSFERS_INITIAL
        self._transfer_count = 0

    def __init__(self):
        self.balances = {}  # account -> asset -> Balance
        self.instruments = {}
        self.orders = {}
        self.open_orders = {}  # account -> count
        self.open_notional = {}  # (account, quote asset) -> Exposure
        self.limits = {0: Limits()}  # account 0: the defaults
        self.kill_switched = set()
        self.withdrawals = {}  # id -> (account, asset, amount)
        self.withdrawals_finished = set()
        self.deposits_credited = set()
        # order id -> (account, status, reason), oldest first. A plain dict: the oldest id to
        # evict comes from a deque, so no scan over the holes earlier deletions left.
        self.terminal = {}
        self._terminal_order = deque()
        self._checked = None

    def __dealloc__(self):
        free(self._transfers)

    # -- BALANCES --

    cdef Balance _balance(self, int64_t account_id, int64_t asset_id):
        cdef object account = account_id
        cdef object asset = asset_id
        cdef dict assets = self.balances.get(account)
        cdef Balance pair
        if assets is None:
            assets = self.balances[account] = {}
        pair = assets.get(asset)
        if pair is None:
            pair = assets[asset] = Balance.__new__(Balance)
        return pair

    def balance(self, int64_t account_id, int64_t asset_id):
        """The account's Balance of the asset, created empty on first use. O(1)."""
        return self._balance(account_id, asset_id)

    cdef InstrumentSpec _spec_of(self, OrderHold hold):
        if hold._spec is None:
            hold._spec = self.instruments[hold.instrument_id]
        return hold._spec

    cdef Balance _pair(self, OrderHold hold, int64_t asset_id):
        """_balance(hold's account, asset), remembered on the hold for its two assets."""
        cdef InstrumentSpec spec = self._spec_of(hold)
        if asset_id == spec.quote_asset_id:
            if hold._quote_pair is None:
                hold._quote_pair = self._balance(hold.account_id, asset_id)
            return hold._quote_pair
        if asset_id == spec.base_asset_id:
            if hold._base_pair is None:
                hold._base_pair = self._balance(hold.account_id, asset_id)
            return hold._base_pair
        return self._balance(hold.account_id, asset_id)

    cdef int _transfer(self, uint8_t kind, int64_t asset_id, int64_t amount_minor,
                       int64_t debit_account_id, bint debit_held,
                       int64_t credit_account_id, bint credit_held,
                       int32_t command_index, int64_t order_id, int64_t trade_id) except -1:
        """Move money between two buckets and record the move; nothing for 0."""
        if amount_minor == 0:
            return 0
        return self._move(kind, asset_id, amount_minor,
                          debit_account_id, self._balance(debit_account_id, asset_id), debit_held,
                          credit_account_id, self._balance(credit_account_id, asset_id),
                          credit_held, command_index, order_id, trade_id)

    cdef int _move(self, uint8_t kind, int64_t asset_id, int64_t amount_minor,
                   int64_t debit_account_id, Balance debit, bint debit_held,
                   int64_t credit_account_id, Balance credit, bint credit_held,
                   int32_t command_index, int64_t order_id, int64_t trade_id) except -1:
        """_transfer between Balances already looked up (the caller skips an amount of 0,
        before the lookups create them). The debit side may only be the external account when
        it goes negative: anything else is a broken invariant."""
        cdef int64_t debit_after
        cdef bint overflow
        cdef Transfer* t
        cdef Transfer* grown
        if debit_held:
            overflow = _sub_overflow(debit.held_minor, amount_minor, &debit.held_minor)
            debit_after = debit.held_minor
        else:
            overflow = _sub_overflow(debit.available_minor, amount_minor, &debit.available_minor)
            debit_after = debit.available_minor
        if credit_held:
            overflow |= _add_overflow(credit.held_minor, amount_minor, &credit.held_minor)
        else:
            overflow |= _add_overflow(credit.available_minor, amount_minor,
                                      &credit.available_minor)
        if (debit_after < 0 and debit_account_id != EXTERNAL) or overflow:
            raise AssertionError(f"balance overdrawn: account {debit_account_id} asset {asset_id}")
        if self._transfer_count == self._transfer_capacity:
            grown = <Transfer*>realloc(self._transfers,
                                       2 * self._transfer_capacity * sizeof(Transfer))
            if grown == NULL:
                raise MemoryError()
            self._transfers = grown
            self._transfer_capacity *= 2
        t = &self._transfers[self._transfer_count]
        self._transfer_count += 1
        t.amount_minor = amount_minor
        t.debit_account_id = debit_account_id
        t.credit_account_id = credit_account_id
        t.order_id = order_id
        t.trade_id = trade_id
        t.asset_id = <int32_t>asset_id
        t.command_index = command_index
        t.kind = kind
        t.debit_held = debit_held
        t.credit_held = credit_held
        return 0

    def take_transfers(self):
        """The transfers since the last call as a TRANSFER_DTYPE array, in command order (a
        stable sort of the order made, which is already command order unless an entry's
        later command settled first). O(transfers), or a sort when out of order."""
        cdef Py_ssize_t i
        cdef bint ordered = True
        cdef cnp.ndarray out = np.empty(self._transfer_count, dtype=TRANSFER_DTYPE)
        memcpy(cnp.PyArray_DATA(out), self._transfers, self._transfer_count * sizeof(Transfer))
        for i in range(1, self._transfer_count):
            if self._transfers[i].command_index < self._transfers[i - 1].command_index:
                ordered = False
                break
        self._transfer_count = 0
        if ordered:
            return out
        return out[np.argsort(out["command_index"], kind="stable")]

    @property
    def transfers(self):
        """The transfers not yet taken, as tuples in TRANSFER_DTYPE order (for reading)."""
        cdef Py_ssize_t i
        cdef Transfer* t
        rows = []
        for i in range(self._transfer_count):
            t = &self._transfers[i]
            rows.append((t.amount_minor, t.debit_account_id, t.credit_account_id, t.order_id,
                         t.trade_id, t.asset_id, t.command_index, t.kind, t.debit_held,
                         t.credit_held))
        return rows

    # -- HOLDS --

    def required_hold(self, InstrumentSpec spec not None, side, price_ticks, lots):
        return _required_any(spec, side, price_ticks, lots)

    def hold_asset(self, InstrumentSpec spec not None, side):
        return spec.quote_asset_id if side == SIDE_BUY else spec.base_asset_id

    cdef Limits _limits_of(self, object account_id):
        cdef Limits limits = self.limits.get(account_id)
        return limits if limits is not None else self.limits[0]

    def limits_of(self, account_id):
        return self._limits_of(account_id)

    cdef object _open_notional(self, object account, object quote):
        cdef Exposure exposure = self.open_notional.get((account, quote))
        return 0 if exposure is None else exposure.notional_minor

    cdef Exposure _exposure_of(self, object account, object quote):
        """The account's Exposure in the quote asset, created at 0 on first use."""
        key = (account, quote)
        cdef Exposure exposure = self.open_notional.get(key)
        if exposure is None:
            exposure = self.open_notional[key] = Exposure.__new__(Exposure)
            exposure.notional_minor = 0
        return exposure

    cdef int64_t _check_place(self, object account, int64_t account_id, object instrument,
                              int64_t side, int64_t order_type, int64_t price_ticks,
                              int64_t quantity_lots, dict pending_orders,
                              dict pending_notional) except -1:
        """engine/risk.py check_place: the reason, and the reserved hold in self._checked."""
        cdef InstrumentSpec spec
        cdef Limits limits
        cdef OrderHold hold
        cdef Balance pair
        cdef int64_t notional, required
        cdef object notional_any, quote, key, order_max, open_max
        self._checked = None
        self._checked_limits = None
        if account_id <= FEES:
            return REASON_ACCOUNT_MUST_BE_A_CUSTOMER
        if account in self.kill_switched:
            return REASON_ACCOUNT_MUST_NOT_BE_KILL_SWITCHED
        spec = self.instruments.get(instrument)
        if spec is None or (side != SIDE_BUY and side != SIDE_SELL) or quantity_lots <= 0:
            return 0
        if order_type == ORDERTYPE_MARKET:
            price_ticks = spec.price_max_ticks
        elif price_ticks <= 0:
            return 0
        limits = self._checked_limits = self._limits_of(account)
        if limits.open_orders_max and (
            self.open_orders.get(account, 0) + pending_orders.get(account, 0) + 1
            > limits.open_orders_max
        ):
            return REASON_OPEN_ORDERS_MUST_NOT_EXCEED_LIMIT
        if _product(price_ticks, quantity_lots, spec.quote_minor_per_tick_lot, &notional):
            notional_any = notional
        else:
            notional_any = (<object>price_ticks) * quantity_lots * spec.quote_minor_per_tick_lot
        quote = spec.quote_asset_id
        if limits.order_notional_max:
            order_max = limits.order_notional_max.get(quote, 0)
            if order_max and notional_any > order_max:
                return REASON_ORDER_NOTIONAL_MUST_NOT_EXCEED_LIMIT
        if limits.open_notional_max:
            open_max = limits.open_notional_max.get(quote, 0)
            if open_max:
                key = (account, quote)
                if (self._open_notional(account, quote) + pending_notional.get(key, 0)
                        + notional_any > open_max):
                    return REASON_OPEN_NOTIONAL_MUST_NOT_EXCEED_LIMIT
        pair = self._balance(account_id, _hold_asset(spec, side))
        if not _required(spec, side, price_ticks, quantity_lots, &required):
            # Beyond int64, so beyond any available amount; else the exact formula decides.
            required_any = _required_any(spec, side, price_ticks, quantity_lots)
            if required_any > WIDE_MAX or pair.available_minor < required_any:
                return REASON_FUNDS_MUST_BE_AVAILABLE
            required = required_any
        if pair.available_minor < required:
            return REASON_FUNDS_MUST_BE_AVAILABLE
        pair.available_minor -= required  # reserved: becomes a HOLD transfer if the core accepts
        hold = OrderHold.__new__(OrderHold)
        hold.account_id = account_id
        hold.instrument_id = spec.instrument_id
        hold.side = side
        hold.price_ticks = price_ticks
        hold.leaves_lots = quantity_lots
        hold.held_minor = required
        hold.notional_minor = notional_any
        hold._spec = spec
        if side == SIDE_BUY:
            hold._quote_pair = pair
        else:
            hold._base_pair = pair
        self._checked = hold
        return 0

    def check_place(self, int64_t account_id, instrument_id, side, order_type,
                    int64_t price_ticks, int64_t quantity_lots, pending_orders=0,
                    pending_notional=0):
        """engine/risk.py check_place: (reason, None) on a reject, (0, hold) when the order
        may go to the core, (0, None) when the core will reject it anyway."""
        cdef int64_t side_small, type_small
        if not _fits(side, 0, 255, &side_small):
            side_small = -1
        if not _fits(order_type, 0, 255, &type_small):
            type_small = -1
        spec = self.instruments.get(instrument_id)
        quote = spec.quote_asset_id if spec is not None else None
        reason = self._check_place(
            account_id, account_id, instrument_id, side_small, type_small, price_ticks,
            quantity_lots, {account_id: pending_orders},
            {(account_id, quote): pending_notional},
        )
        return reason, self._checked

    def place(self, Run run not None, int index, int64_t ts_ns, object c):
        """Pre-check a PlaceOrder, reserve its hold and queue its row on the run.

        Returns 0 when queued, a 3xxx reason when the risk stage rejects it (the shard echoes
        the order's fields), or command_must_be_well_formed when a field does not fit its
        record (nothing reserved). O(1) dictionary operations.
        """
        return self._place(run, index, ts_ns, c)

    def place_many(self, Run run not None, object commands, Py_ssize_t start, int64_t ts_ns,
                   list rejects not None):
        """`place` each PlaceOrder of `commands` from `start` on, up to the first command of
        another type, whose index it returns. A reject is appended to `rejects` as (index,
        reason): places are most of the load, and this loop saves a Python call per order."""
        cdef Py_ssize_t index = start
        cdef Py_ssize_t count = len(commands)
        cdef int64_t reason
        while index < count:
            c = commands[index]
            if type(c) is not PlaceOrder:
                break
            reason = self._place(run, <int32_t>index, ts_ns, c)
            if reason:
                rejects.append((index, reason))
            index += 1
        return index

    cdef int64_t _place(self, Run run, int32_t index, int64_t ts_ns, object c) except -1:
        cdef int64_t account_id, price_ticks, quantity_lots, side, order_type
        cdef int64_t client_order_id, expire_ts_ns, instrument_id, stp_group
        cdef int64_t time_in_force, stp_mode, post_only
        cdef int64_t reason
        cdef Limits limits
        cdef OrderHold hold
        cdef InstrumentSpec spec
        cdef Command* row
        account = c.account_id
        instrument = c.instrument_id
        if not (_fits(account, -WIDE_MAX, WIDE_MAX, &account_id)
                and _fits(c.price_ticks, -WIDE_MAX, WIDE_MAX, &price_ticks)
                and _fits(c.quantity_lots, -WIDE_MAX, WIDE_MAX, &quantity_lots)):
            return REASON_COMMAND_MUST_BE_WELL_FORMED  # the row cannot hold them either
        side = order_type = -1  # not a side or type the checks know: they leave it to the core
        side_fits = _fits(c.side, 0, 255, &side)
        type_fits = _fits(c.order_type, 0, 255, &order_type)
        reason = self._check_place(
            account, account_id, instrument, side, order_type, price_ticks, quantity_lots,
            run._pending_orders, run._pending_notional,
        )
        if reason:
            return reason
        hold = self._checked
        self._checked = None
        if not (side_fits and type_fits
                and _fits(c.client_order_id, -WIDE_MAX, WIDE_MAX, &client_order_id)
                and _fits(c.expire_ts_ns, -WIDE_MAX, WIDE_MAX, &expire_ts_ns)
                and _fits(instrument, -NARROW_MAX, NARROW_MAX, &instrument_id)
                and _fits(c.stp_group, -NARROW_MAX, NARROW_MAX, &stp_group)
                and _fits(c.time_in_force, 0, 255, &time_in_force)
                and _fits(c.stp_mode, 0, 255, &stp_mode)
                and _fits(int(c.post_only), 0, 255, &post_only)):
            if hold is not None:
                self._unreserve(hold)  # the row did not fit: nothing reached the core
            return REASON_COMMAND_MUST_BE_WELL_FORMED
        row = run._append(index, hold)
        row.ts_ns = ts_ns
        row.account_id = account_id
        row.client_order_id = client_order_id
        row.price_ticks = price_ticks
        row.quantity_lots = quantity_lots
        row.expire_ts_ns = expire_ts_ns
        row.instrument_id = <int32_t>instrument_id
        row.stp_group = <int32_t>stp_group
        row.kind = COMMANDKIND_PLACE
        row.side = <uint8_t>side
        row.order_type = <uint8_t>order_type
        row.time_in_force = <uint8_t>time_in_force
        row.stp_mode = <uint8_t>stp_mode
        row.post_only = <uint8_t>post_only
        if hold is not None:
            # Later places of this run count this one against the limits; the counts are read
            # only for an account with those limits, which cannot change within a run.
            limits = self._checked_limits
            if limits.open_orders_max:
                run._pending_orders[account] = run._pending_orders.get(account, 0) + 1
            if limits.open_notional_max:
                spec = self.instruments[instrument]
                key = (account, spec.quote_asset_id)
                run._pending_notional[key] = (
                    run._pending_notional.get(key, 0) + hold.notional_minor
                )
        return 0

    cdef int _unreserve(self, OrderHold hold) except -1:
        cdef InstrumentSpec spec = self._spec_of(hold)
        cdef Balance pair = self._pair(hold, _hold_asset(spec, hold.side))
        pair.available_minor += hold.held_minor
        return 0

    def unreserve(self, OrderHold hold not None):
        """Give back a reservation the core rejected."""
        self._unreserve(hold)

    cdef int _open_order(self, int64_t order_id, OrderHold hold, int32_t index) except -1:
        cdef InstrumentSpec spec = self._spec_of(hold)
        cdef int64_t asset = _hold_asset(spec, hold.side)
        cdef Balance pair = self._pair(hold, asset)
        cdef object account = hold.account_id
        cdef Exposure exposure
        pair.available_minor += hold.held_minor  # undo the reservation; the transfer moves it
        if hold.held_minor:
            self._move(TRANSFERKIND_HOLD, asset, hold.held_minor, hold.account_id, pair, False,
                       hold.account_id, pair, True, index, order_id, 0)
        self.orders[order_id] = hold
        self.open_orders[account] = self.open_orders.get(account, 0) + 1
        exposure = hold._exposure = self._exposure_of(account, spec.quote_asset_id)
        exposure.notional_minor = exposure.notional_minor + hold.notional_minor
        return 0

    def open_order(self, int64_t order_id, OrderHold hold not None, int command_index):
        """The core accepted a reserved order: record the hold as a transfer."""
        self._open_order(order_id, hold, command_index)

    def restore_order(self, int64_t order_id, int64_t account_id, int64_t instrument_id,
                      int64_t side, int64_t price_ticks, int64_t leaves_lots,
                      int64_t held_minor, object notional_minor):
        """Put back an open order from a snapshot, its balances already restored."""
        cdef InstrumentSpec spec = self.instruments[instrument_id]
        cdef OrderHold hold = OrderHold(account_id, instrument_id, side, price_ticks,
                                        leaves_lots, held_minor, notional_minor)
        cdef Exposure exposure
        hold._spec = spec
        account = hold.account_id
        self.orders[order_id] = hold
        self.open_orders[account] = self.open_orders.get(account, 0) + 1
        exposure = hold._exposure = self._exposure_of(account, spec.quote_asset_id)
        exposure.notional_minor = exposure.notional_minor + notional_minor

    def check_amend(self, account_id, order_id, price_ticks, quantity_lots):
        """(reason, extra reserved) for an amend, on exact state (the shard flushes first)."""
        cdef OrderHold hold
        cdef InstrumentSpec spec
        cdef Limits limits
        cdef Balance pair
        if account_id <= FEES:
            return REASON_ACCOUNT_MUST_BE_A_CUSTOMER, 0
        if account_id in self.kill_switched:
            return REASON_ACCOUNT_MUST_NOT_BE_KILL_SWITCHED, 0
        hold = self.orders.get(order_id)
        if hold is None or hold.account_id != account_id or quantity_lots <= 0:
            return 0, 0  # the core rejects it with its own reason
        spec = self.instruments[hold.instrument_id]
        new_price = price_ticks or hold.price_ticks
        limits = self._limits_of(account_id)
        notional = new_price * quantity_lots * spec.quote_minor_per_tick_lot
        order_max = limits.order_notional_max.get(spec.quote_asset_id, 0)
        if order_max and notional > order_max:
            return REASON_ORDER_NOTIONAL_MUST_NOT_EXCEED_LIMIT, 0
        open_max = limits.open_notional_max.get(spec.quote_asset_id, 0)
        open_now = self._open_notional(account_id, spec.quote_asset_id)
        if open_max and open_now - hold.notional_minor + notional > open_max:
            return REASON_OPEN_NOTIONAL_MUST_NOT_EXCEED_LIMIT, 0
        held = hold.held_minor
        extra = max(0, _required_any(spec, hold.side, new_price, quantity_lots) - held)
        pair = self._balance(account_id, _hold_asset(spec, hold.side))
        if pair.available_minor < extra:
            return REASON_FUNDS_MUST_BE_AVAILABLE, 0
        pair.available_minor -= <int64_t>extra
        return 0, extra

    cdef int _amended(self, int64_t order_id, int64_t price_ticks, int64_t leaves_lots,
                      int64_t extra, int32_t index) except -1:
        cdef OrderHold hold = self.orders.get(order_id)
        cdef InstrumentSpec spec
        cdef Balance pair
        cdef int64_t asset
        if hold is None:
            return 0
        spec = self._spec_of(hold)
        asset = _hold_asset(spec, hold.side)
        if extra:
            pair = self._pair(hold, asset)
            pair.available_minor += extra
            self._move(TRANSFERKIND_HOLD, asset, extra, hold.account_id, pair, False,
                       hold.account_id, pair, True, index, order_id, 0)
            hold.held_minor += extra
        hold.price_ticks = price_ticks
        self._resize(order_id, hold, spec, leaves_lots, index)
        return 0

    def amended(self, int64_t order_id, int64_t price_ticks, int64_t leaves_lots,
                int64_t extra, int command_index):
        self._amended(order_id, price_ticks, leaves_lots, extra, command_index)

    cdef int _resize(self, int64_t order_id, OrderHold hold, InstrumentSpec spec,
                     int64_t leaves_lots, int32_t index) except -1:
        """Set the order's leaves and release what its hold no longer needs."""
        cdef int64_t required, surplus, asset
        cdef Balance pair
        cdef object notional = _notional(hold.price_ticks, leaves_lots, spec)
        cdef Exposure exposure = hold._exposure
        if exposure is None:  # an OrderHold built outside this stage: its entry must exist
            exposure = hold._exposure = self.open_notional[hold.account_id, spec.quote_asset_id]
        exposure.notional_minor = exposure.notional_minor + (notional - hold.notional_minor)
        hold.notional_minor = notional
        hold.leaves_lots = leaves_lots
        if _required(spec, hold.side, hold.price_ticks, leaves_lots, &required):
            surplus = hold.held_minor - required  # both >= 0: no overflow
            if surplus < 0:
                raise AssertionError(f"order {order_id} holds less than it needs")
        else:
            surplus_any = hold.held_minor - _required_any(
                spec, hold.side, hold.price_ticks, leaves_lots
            )
            if surplus_any < 0:
                raise AssertionError(f"order {order_id} holds less than it needs")
            surplus = surplus_any
        if surplus:
            asset = _hold_asset(spec, hold.side)
            pair = self._pair(hold, asset)
            self._move(TRANSFERKIND_RELEASE, asset, surplus, hold.account_id, pair, True,
                       hold.account_id, pair, False, index, order_id, 0)
            hold.held_minor -= surplus
        return 0

    cdef int _close_order(self, int64_t order_id, int status, int reason,
                          int32_t index) except -1:
        """A terminal event: release the rest of the hold and forget the order."""
        cdef object key = order_id
        cdef OrderHold hold = self.orders.pop(key, None)
        cdef object account
        if hold is None:
            return 0
        self._resize(order_id, hold, self._spec_of(hold), 0, index)
        account = hold.account_id
        count = self.open_orders[account] - 1
        if count:
            self.open_orders[account] = count
        else:
            del self.open_orders[account]
        self._remember_terminal(key, (account, status, reason))
        return 0

    cdef int _remember_terminal(self, object order_id, object row) except -1:
        cdef dict terminal = self.terminal
        cdef Py_ssize_t before = len(terminal)
        terminal[order_id] = row
        if len(terminal) > before:  # a new id (an id seen before keeps its place)
            self._terminal_order.append(order_id)
            if len(terminal) > TERMINAL_KEPT_MAX:
                del terminal[self._terminal_order.popleft()]
        return 0

    def restore_terminal(self, rows):
        """Put back the terminal orders of a snapshot: (order id, account, status, reason)
        rows, oldest first."""
        self.terminal = {}
        self._terminal_order = deque()
        for order_id, account_id, status, reason in rows:
            self._remember_terminal(order_id, (account_id, status, reason))

    def close_order(self, int64_t order_id, int status, int reason, int command_index):
        """A terminal event: release the rest of the hold and forget the order."""
        self._close_order(order_id, status, reason, command_index)

    def remember_terminal(self, order_id, OrderHold hold not None, status, reason):
        self._remember_terminal(order_id, (hold.account_id, status, reason))

    def reduced(self, int64_t order_id, int64_t leaves_lots, int command_index):
        cdef OrderHold hold = self.orders.get(order_id)
        if hold is not None:
            self._resize(order_id, hold, self._spec_of(hold), leaves_lots, command_index)

    cdef int _filled(self, const Event* e) except -1:
        """Settle one trade: quote from the buyer's hold to the seller, base the other way,
        fees to the fee account (the buyer's from its hold, the seller's from its proceeds)."""
        cdef OrderHold taker_hold = self.orders[e.order_id]
        cdef OrderHold maker_hold, buyer_hold, seller_hold
        cdef InstrumentSpec spec = self._spec_of(taker_hold)
        cdef int64_t quote_minor, base_minor, buyer_fee, seller_fee, fee
        cdef int64_t buyer_id, buyer_account, buyer_leaves, buyer_bps
        cdef int64_t seller_id, seller_account, seller_leaves, seller_bps
        cdef int64_t quote = spec.quote_asset_id
        cdef int64_t base = spec.base_asset_id
        cdef int32_t index = e.command_index
        cdef int64_t trade_id = e.trade_id
        cdef Balance buyer_quote, buyer_base, seller_quote, seller_base
        maker_hold = self.orders[e.maker_order_id]
        if e.side == SIDE_BUY:
            buyer_id, buyer_account, buyer_leaves = e.order_id, e.account_id, e.leaves_lots
            seller_id, seller_account, seller_leaves = (
                e.maker_order_id, e.maker_account_id, e.maker_leaves_lots
            )
            buyer_bps, seller_bps = spec.taker_fee_bps, spec.maker_fee_bps
            buyer_hold, seller_hold = taker_hold, maker_hold
        else:
            buyer_id, buyer_account, buyer_leaves = (
                e.maker_order_id, e.maker_account_id, e.maker_leaves_lots
            )
            seller_id, seller_account, seller_leaves = e.order_id, e.account_id, e.leaves_lots
            buyer_bps, seller_bps = spec.maker_fee_bps, spec.taker_fee_bps
            buyer_hold, seller_hold = maker_hold, taker_hold
        if not (_product(e.price_ticks, e.quantity_lots, spec.quote_minor_per_tick_lot,
                         &quote_minor)
                and _product(e.quantity_lots, spec.base_minor_per_lot, 1, &base_minor)):
            # More than any balance holds: the reference's first transfer overdraws.
            raise AssertionError(f"balance overdrawn: account {buyer_account} asset {quote}")
        if _mul_overflow(quote_minor, buyer_bps, &fee):
            buyer_fee = (<object>quote_minor) * buyer_bps // BASIS_POINTS
        else:
            buyer_fee = fee // BASIS_POINTS
        if _mul_overflow(quote_minor, seller_bps, &fee):
            seller_fee = (<object>quote_minor) * seller_bps // BASIS_POINTS
        else:
            seller_fee = fee // BASIS_POINTS
        # Balances through the holds' remembered ones; a Balance is looked up (so created) only
        # for a move of more than 0, as the reference's _transfer does.
        if quote_minor or buyer_fee:
            buyer_quote = self._account_pair(buyer_hold, buyer_account, quote)
        if quote_minor or seller_fee:
            seller_quote = self._account_pair(seller_hold, seller_account, quote)
        if quote_minor:
            self._move(TRANSFERKIND_TRADE, quote, quote_minor, buyer_account, buyer_quote, True,
                       seller_account, seller_quote, False, index, buyer_id, trade_id)
        if buyer_fee:
            self._move(TRANSFERKIND_FEE, quote, buyer_fee, buyer_account, buyer_quote, True,
                       FEES, self._fee_pair(spec), False, index, buyer_id, trade_id)
        if base_minor:
            seller_base = self._account_pair(seller_hold, seller_account, base)
            buyer_base = self._account_pair(buyer_hold, buyer_account, base)
            self._move(TRANSFERKIND_TRADE, base, base_minor, seller_account, seller_base, True,
                       buyer_account, buyer_base, False, index, seller_id, trade_id)
        if seller_fee:
            self._move(TRANSFERKIND_FEE, quote, seller_fee, seller_account, seller_quote, False,
                       FEES, self._fee_pair(spec), False, index, seller_id, trade_id)
        buyer_hold.held_minor -= quote_minor + buyer_fee  # both within the buyer's hold
        self._resize(buyer_id, buyer_hold, spec, buyer_leaves, index)
        seller_hold.held_minor -= base_minor
        self._resize(seller_id, seller_hold, spec,
                     buyer_leaves if seller_id == buyer_id else seller_leaves, index)
        return 0

    cdef Balance _account_pair(self, OrderHold hold, int64_t account_id, int64_t asset_id):
        """The account's Balance, through its order's hold when the order is the account's."""
        if hold.account_id == account_id:
            return self._pair(hold, asset_id)
        return self._balance(account_id, asset_id)

    cdef Balance _fee_pair(self, InstrumentSpec spec):
        if spec._fee_pair is None:
            spec._fee_pair = self._balance(FEES, spec.quote_asset_id)
        return spec._fee_pair

    def filled(self, int64_t trade_id, int64_t price_ticks, int64_t quantity_lots,
               tuple taker not None, tuple maker not None, int taker_side, int command_index):
        """Settle one trade; taker and maker are (order id, account id, leaves after)."""
        cdef Event e
        memset(&e, 0, sizeof(Event))
        e.trade_id, e.price_ticks, e.quantity_lots = trade_id, price_ticks, quantity_lots
        e.order_id, e.account_id, e.leaves_lots = taker
        e.maker_order_id, e.maker_account_id, e.maker_leaves_lots = maker
        e.side, e.command_index = taker_side, command_index
        self._filled(&e)

    # -- SETTLEMENT --

    def settle(self, cnp.ndarray events not None, Run run, dict md_levels not None,
               dict md_trades not None, dict md_status not None,
               dict instrument_status not None, int command_index=0):
        """Settle a run's events (EVENT_DTYPE, from the core's batch path) in order.

        Each row's command_index, a position in `run`, becomes the command's index in the
        journal entry; with no run (events of a per-call core command) it becomes
        `command_index`. Holds become transfers, fills move money, terminal events release
        holds, and the market data of the entry collects in the md_* dicts. The run is cleared.
        Returns the rows (the same array when it was C-contiguous). O(events).
        """
        cdef Event* rows
        cdef Event* e
        cdef Py_ssize_t i, n, position
        cdef list pending = run._pending if run is not None else []
        cdef object held
        cdef OrderHold hold
        cdef Balance pair
        cdef dict levels = None  # the last instrument's, as most runs touch one book
        cdef int32_t levels_instrument = 0
        cdef list trades
        if events.dtype != EVENT_DTYPE or events.ndim != 1:
            raise TypeError("events must be a one-dimensional array of EVENT_DTYPE")
        if not (events.flags.c_contiguous and events.flags.writeable):
            events = np.array(events, dtype=EVENT_DTYPE, order="C")
        rows = <Event*>cnp.PyArray_DATA(events)
        n = events.shape[0]
        try:
            for i in range(n):
                e = &rows[i]
                position = -1
                if run is None:
                    e.command_index = command_index
                else:
                    position = e.command_index
                    if position < 0 or position >= run._count:
                        raise AssertionError(f"event of command {position} outside its run")
                    e.command_index = run._entry_index[position]
                if e.kind == EVENTKIND_BOOK_DELTA:  # the commonest kind first
                    if levels is None or levels_instrument != e.instrument_id:
                        levels = md_levels.get(e.instrument_id)
                        if levels is None:
                            levels = md_levels[e.instrument_id] = {}
                        levels_instrument = e.instrument_id
                    levels[e.side, e.price_ticks] = BookLevel(
                        e.side, e.price_ticks, e.quantity_lots, e.leaves_lots
                    )
                elif e.kind == EVENTKIND_ACCEPTED:
                    held = None
                    if position >= 0:
                        held = pending[position]
                        pending[position] = None
                    if not isinstance(held, OrderHold):
                        raise AssertionError(f"order {e.order_id} accepted without a hold")
                    self._open_order(e.order_id, <OrderHold>held, e.command_index)
                elif e.kind == EVENTKIND_FILLED:
                    self._filled(e)
                    if not e.maker_leaves_lots:
                        self._close_order(e.maker_order_id, ORDERSTATUS_FILLED, 0,
                                          e.command_index)
                    if not e.leaves_lots:
                        self._close_order(e.order_id, ORDERSTATUS_FILLED, 0, e.command_index)
                    trades = md_trades.get(e.instrument_id)
                    if trades is None:
                        trades = md_trades[e.instrument_id] = []
                    trades.append(TradePrint(e.trade_id, e.price_ticks, e.quantity_lots, e.side))
                elif e.kind == EVENTKIND_CANCELLED:
                    self._close_order(e.order_id, ORDERSTATUS_CANCELLED, e.reason,
                                      e.command_index)
                elif e.kind == EVENTKIND_REDUCED:
                    hold = self.orders.get(e.order_id)
                    if hold is not None:
                        self._resize(e.order_id, hold, self._spec_of(hold), e.leaves_lots,
                                     e.command_index)
                elif e.kind == EVENTKIND_AMENDED:
                    held = None
                    if position >= 0:
                        held = pending[position]
                        pending[position] = None
                    self._amended(e.order_id, e.price_ticks, e.leaves_lots,
                                  0 if held is None else held[2], e.command_index)
                elif e.kind == EVENTKIND_REJECTED:
                    held = None
                    if position >= 0:
                        held = pending[position]
                        pending[position] = None
                    if isinstance(held, OrderHold):
                        self._unreserve(<OrderHold>held)
                    elif held is not None and held[2]:  # an amend's (account, asset, extra)
                        pair = self._balance(held[0], held[1])
                        pair.available_minor += <int64_t>held[2]
                elif e.kind == EVENTKIND_INSTRUMENT_STATUS:
                    md_status[e.instrument_id] = e.status
                    instrument_status[e.instrument_id] = e.status
        finally:
            if run is not None:
                run._reset()
        return events

    # -- MONEY IN AND OUT --

    def deposit(self, int64_t account_id, int64_t asset_id, int64_t amount_minor,
                deposit_id, int index):
        cdef Balance external
        if amount_minor <= 0:
            return REASON_AMOUNT_MUST_BE_POSITIVE
        if deposit_id in self.deposits_credited:
            return 0  # credited once: a replayed deposit is a no-op, not an error
        external = self._balance(EXTERNAL, asset_id)
        if (<object>amount_minor - (<object>external.available_minor + external.held_minor)
                > BALANCE_MINOR_MAX):
            return REASON_BALANCE_MUST_STAY_WITHIN_MAXIMUM
        self.deposits_credited.add(deposit_id)
        self._transfer(TRANSFERKIND_DEPOSIT, asset_id, amount_minor, EXTERNAL, False,
                       account_id, False, index, 0, 0)
        return 0

    def hold_withdrawal(self, int64_t account_id, int64_t asset_id, int64_t amount_minor,
                        withdrawal_id, int index):
        if amount_minor <= 0:
            return REASON_AMOUNT_MUST_BE_POSITIVE
        if withdrawal_id in self.withdrawals or withdrawal_id in self.withdrawals_finished:
            return REASON_WITHDRAWAL_ID_MUST_BE_UNIQUE
        # The kill switch (a compliance freeze) blocks withdrawals too, as the reference does.
        if account_id in self.kill_switched:
            return REASON_ACCOUNT_MUST_NOT_BE_KILL_SWITCHED
        if self._balance(account_id, asset_id).available_minor < amount_minor:
            return REASON_FUNDS_MUST_BE_AVAILABLE
        self.withdrawals[withdrawal_id] = (account_id, asset_id, amount_minor)
        self._transfer(TRANSFERKIND_HOLD, asset_id, amount_minor, account_id, False,
                       account_id, True, index, 0, 0)
        return 0

    def finish_withdrawal(self, withdrawal_id, bint settle, int index):
        found = self.withdrawals.pop(withdrawal_id, None)
        if found is None:
            return REASON_WITHDRAWAL_MUST_EXIST
        self.withdrawals_finished.add(withdrawal_id)
        account_id, asset_id, amount = found
        if settle:
            self._transfer(TRANSFERKIND_WITHDRAWAL, asset_id, amount, account_id, True,
                           EXTERNAL, False, index, 0, 0)
        else:
            self._transfer(TRANSFERKIND_RELEASE, asset_id, amount, account_id, True,
                           account_id, False, index, 0, 0)
        return 0

    # -- CHECKS --

    def check_invariants(self):
        """Money is conserved per asset, no customer bucket is negative, and every open order
        holds exactly what it can still spend. Raises AssertionError."""
        cdef Balance pair
        cdef OrderHold hold
        cdef InstrumentSpec spec
        totals = {}
        held = {}
        for account_id, assets in self.balances.items():
            for asset_id, pair in assets.items():
                available, on_hold = pair.available_minor, pair.held_minor
                totals[asset_id] = totals.get(asset_id, 0) + available + on_hold
                if account_id != EXTERNAL and (available < 0 or on_hold < 0):
                    raise AssertionError(f"negative balance: {account_id} {asset_id}")
                held[account_id, asset_id] = on_hold
        if any(totals.values()):
            raise AssertionError(f"money not conserved: {totals}")
        order_held = {}
        for order_id, hold in self.orders.items():
            spec = self.instruments[hold.instrument_id]
            need = _required_any(spec, hold.side, hold.price_ticks, hold.leaves_lots)
            if hold.held_minor != need:
                raise AssertionError(f"order {order_id} holds {hold.held_minor}, needs {need}")
            key = (hold.account_id, _hold_asset(spec, hold.side))
            order_held[key] = order_held.get(key, 0) + hold.held_minor
        for account_id, asset_id, amount in self.withdrawals.values():
            key = (account_id, asset_id)
            order_held[key] = order_held.get(key, 0) + amount
        for key, amount in held.items():
            if amount != order_held.get(key, 0):
                raise AssertionError(f"held {amount} for {key}, orders hold {order_held.get(key)}")
