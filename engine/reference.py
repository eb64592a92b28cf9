"""The plain-Python reference book: docs/matching.md, step by step, clear over fast.

The Cython core (``engine._core.Engine``) is tested against this module event for event, so the
code here follows the contract's wording as closely as Python allows: one method per command,
the checks in their documented precedence order, the matching walk exactly as the contract
describes it. Price levels are ``SortedDict``s of FIFO lists; everything else is a plain dict.

Every per-call command is turned into the same ``_Command`` record that a row of a
``process`` batch becomes, so both ways in share one code path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field

import numpy as np
from sortedcontainers import SortedDict, SortedList

from engine._codes import (
    CommandKind,
    EventKind,
    InstrumentStatus,
    OrderStatus,
    OrderType,
    Reason,
    Side,
    StpMode,
    TimeInForce,
)
from engine._dtypes import COMMAND_DTYPE, EVENT_DTYPE, INSTRUMENT_DTYPE, ORDER_DTYPE
from engine._limits import EngineLimits
from engine._snapshot import EngineState, SnapshotError, decode_state, encode_state
from engine._snapshot import state_hash as _state_hash


def _invariant(condition: bool, message: str) -> None:
    """Always on (``assert`` vanishes under -O): a broken invariant must stop the engine."""
    if not condition:
        raise AssertionError("engine invariant broken: " + message)


def _names(dtype: np.dtype) -> tuple[str, ...]:
    _invariant(dtype.names is not None, "a record dtype has field names")
    return dtype.names or ()


_COMMAND_FIELDS = _names(COMMAND_DTYPE)
_EVENT_FIELDS = _names(EVENT_DTYPE)
_INSTRUMENT_FIELDS = _names(INSTRUMENT_DTYPE)
_ORDER_FIELDS = _names(ORDER_DTYPE)
# The integer range of each command field, for per-call arguments.
_COMMAND_RANGES = {
    name: (int(np.iinfo(COMMAND_DTYPE[name]).min), int(np.iinfo(COMMAND_DTYPE[name]).max))
    for name in _COMMAND_FIELDS
}
_INT64_MIN, _INT64_MAX = _COMMAND_RANGES["ts_ns"]
_INT32_MIN, _INT32_MAX = _COMMAND_RANGES["instrument_id"]
_VALID_SIDES = {int(s) for s in Side}
_VALID_ORDER_TYPES = {int(t) for t in OrderType}
_VALID_TIME_IN_FORCE = {int(t) for t in TimeInForce}
_VALID_STP_MODES = {int(m) for m in StpMode}


def _records(rows: list[tuple[int, ...]], dtype: np.dtype) -> np.ndarray:
    """Rows as a record array whose padding bytes are zero.

    ``np.array(rows, dtype)`` leaves the aligned layouts' padding uninitialised, and snapshots
    hash the raw bytes: equal states must give equal bytes.
    """
    records = np.zeros(len(rows), dtype=dtype)
    if rows:
        records[:] = rows
    return records


# -- RECORDS --


@dataclass(frozen=True, kw_only=True)
class _Command:
    """One command, the same fields as a COMMAND_DTYPE row (unused fields zero)."""

    ts_ns: int = 0
    account_id: int = 0
    client_order_id: int = 0
    order_id: int = 0
    price_ticks: int = 0
    quantity_lots: int = 0
    expire_ts_ns: int = 0
    instrument_id: int = 0
    stp_group: int = 0
    kind: int = 0
    side: int = 0
    order_type: int = 0
    time_in_force: int = 0
    stp_mode: int = 0
    post_only: int = 0
    cancel_resting: int = 0


@dataclass(eq=False, kw_only=True)
class _Order:
    """An order in the book; compared by identity, so a level's list can remove it."""

    order_id: int
    account_id: int
    client_order_id: int
    price_ticks: int  # 0 for a market order
    leaves_lots: int
    filled_lots: int
    expire_ts_ns: int
    instrument_id: int
    stp_group: int
    side: int
    order_type: int
    time_in_force: int
    stp_mode: int
    post_only: int

    @property
    def status(self) -> int:
        if self.filled_lots == 0:
            return OrderStatus.NEW
        if self.leaves_lots == 0:
            return OrderStatus.FILLED
        return OrderStatus.PARTIALLY_FILLED

    def as_dict(self) -> dict[str, int]:
        row = {name: int(getattr(self, name)) for name in _ORDER_FIELDS}
        row["status"] = int(self.status)
        return row


@dataclass(eq=False)
class _Level:
    """One price level: orders head (index 0) to tail, and their total leaves."""

    orders: list[_Order] = field(default_factory=list)
    quantity_lots: int = 0


@dataclass(eq=False, kw_only=True)
class _Book:
    """One instrument: its fixed parameters, its status and its two sides."""

    instrument_id: int
    price_increment_ticks: int
    quantity_increment_lots: int
    quantity_min_lots: int
    quantity_max_lots: int
    notional_min: int
    price_min_ticks: int
    price_max_ticks: int
    status: int = InstrumentStatus.OPEN
    # price_ticks -> _Level; the best bid is the last key, the best ask the first.
    bids: SortedDict = field(default_factory=SortedDict)
    asks: SortedDict = field(default_factory=SortedDict)
    order_count: int = 0

    def side(self, side: int) -> SortedDict:
        return self.bids if side == Side.BUY else self.asks

    def levels_best_first(self, side: int) -> Iterator[tuple[int, _Level]]:
        """(price, level) of one side from the best price to the worst. O(levels)."""
        levels = self.side(side)
        prices = reversed(levels.keys()) if side == Side.BUY else iter(levels.keys())
        for price in prices:
            yield price, levels[price]

    def best_price(self, side: int) -> int | None:
        """The best price of one side, None when it is empty. O(1)."""
        levels = self.side(side)
        if not levels:
            return None
        return levels.peekitem(-1 if side == Side.BUY else 0)[0]


def _opposite(side: int) -> int:
    return Side.SELL if side == Side.BUY else Side.BUY


def _crosses(taker: _Order, maker_price_ticks: int) -> bool:
    """Whether a taker may trade at a resting price (a market order crosses any price)."""
    if taker.order_type == OrderType.MARKET:
        return True
    if taker.side == Side.BUY:
        return maker_price_ticks <= taker.price_ticks
    return maker_price_ticks >= taker.price_ticks


def _is_self_match(taker: _Order, maker: _Order) -> bool:
    if maker.account_id == taker.account_id:
        return True
    return taker.stp_group != 0 and taker.stp_group == maker.stp_group


def _checked(value: int, low: int, high: int) -> int:
    """A per-call integer argument that must fit its record field."""
    value = int(value)
    if not low <= value <= high:
        raise OverflowError(f"{value} does not fit its record field [{low}, {high}]")
    return value


def _command(**arguments: int) -> _Command:
    """The record a per-call command becomes, as a COMMAND_DTYPE row would carry it.

    An integer that does not fit its field raises OverflowError, except the one-byte enum
    fields, where such a value becomes 0: invalid, so the command is rejected for it.
    """
    fields = {}
    for name, value in arguments.items():
        low, high = _COMMAND_RANGES[name]
        if high == 255:
            fields[name] = int(value) if low <= int(value) <= high else 0
        else:
            fields[name] = _checked(value, low, high)
    return _Command(**fields)


class ReferenceEngine:
    """The matching engine of docs/matching.md in plain Python.

    Parameters
    ----------
    limits : EngineLimits, optional
        Capacity bounds; the defaults of ``engine._limits`` when omitted.

    Notes
    -----
    Same public API and same events as ``engine._core.Engine``; only speed differs.
    """

    def __init__(self, limits: EngineLimits | None = None) -> None:
        self.limits = limits if limits is not None else EngineLimits()
        if min(astuple(self.limits)) < 1:
            raise ValueError("every engine limit must be at least 1")
        self._books: dict[int, _Book] = {}
        self._orders: dict[int, _Order] = {}  # resting orders by order id
        self._by_client_id: dict[tuple[int, int], _Order] = {}  # (account, client order id)
        self._expiry: SortedList = SortedList()  # (expire_ts_ns, order_id) of resting GTD
        self._seq = 0
        self._next_order_id = 1
        self._next_trade_id = 1
        self._now_ts_ns = 0
        self._pending: list[tuple[int, ...]] = []  # per-call events not drained yet
        self._events = self._pending  # where events go: the drain buffer or a batch's list
        self._command_index = 0
        # (instrument, side, price) -> level quantity when first touched; dict order = touch order
        self._touched: dict[tuple[int, int, int], int] = {}
        self._handlers: dict[int, Callable[[_Command], int]] = {
            CommandKind.PLACE: self._place,
            CommandKind.CANCEL: self._cancel,
            CommandKind.AMEND: self._amend,
            CommandKind.MASS_CANCEL: self._mass_cancel,
            CommandKind.HALT: self._halt,
            CommandKind.RESUME: self._resume,
        }

    # -- EVENTS --

    def _emit(self, kind: int, **fields: int) -> None:
        """Append one event; seq, ts_ns and command_index are the engine's. O(1)."""
        self._seq += 1
        values = dict.fromkeys(_EVENT_FIELDS, 0)
        values.update(fields)
        values["seq"] = self._seq
        values["ts_ns"] = self._now_ts_ns
        values["command_index"] = self._command_index
        values["kind"] = kind
        self._events.append(tuple(int(values[name]) for name in _EVENT_FIELDS))

    def _emit_order(
        self, kind: int, order: _Order, *, quantity_lots: int, status: int, reason: int = 0
    ) -> None:
        """An event about one order (ACCEPTED, CANCELLED, AMENDED, REDUCED): its own fields."""
        self._emit(
            kind,
            order_id=order.order_id,
            account_id=order.account_id,
            client_order_id=order.client_order_id,
            instrument_id=order.instrument_id,
            side=order.side,
            price_ticks=order.price_ticks,
            quantity_lots=quantity_lots,
            leaves_lots=order.leaves_lots,
            reason=reason,
            status=status,
        )

    def _reject(self, command: _Command, reason: int) -> int:
        """The one REJECTED event of a command: its own fields echoed. Returns the reason."""
        is_place = command.kind == CommandKind.PLACE
        is_market = is_place and command.order_type == OrderType.MARKET
        self._emit(
            EventKind.REJECTED,
            order_id=0 if is_place else command.order_id,
            account_id=command.account_id,
            client_order_id=command.client_order_id,
            instrument_id=command.instrument_id,
            side=command.side,
            price_ticks=0 if is_market else command.price_ticks,
            quantity_lots=command.quantity_lots,
            reason=reason,
            status=OrderStatus.REJECTED,
        )
        return reason

    # -- BOOK --

    def _touch(self, book: _Book, side: int, price_ticks: int) -> None:
        """Remember a level's quantity the first time the current command changes it."""
        key = (book.instrument_id, side, price_ticks)
        if key not in self._touched:
            level = book.side(side).get(price_ticks)
            self._touched[key] = level.quantity_lots if level is not None else 0

    def _flush_deltas(self) -> None:
        """BOOK_DELTA for each touched level whose total changed, in order of first touch."""
        for (instrument_id, side, price_ticks), before_lots in self._touched.items():
            level = self._books[instrument_id].side(side).get(price_ticks)
            quantity_lots = level.quantity_lots if level is not None else 0
            if quantity_lots != before_lots:
                self._emit(
                    EventKind.BOOK_DELTA,
                    instrument_id=instrument_id,
                    side=side,
                    price_ticks=price_ticks,
                    quantity_lots=quantity_lots,
                    leaves_lots=len(level.orders) if level is not None else 0,
                )
        self._touched.clear()

    def _push_tail(self, book: _Book, order: _Order) -> None:
        """Append an order to the tail of its price level. O(log levels)."""
        self._touch(book, order.side, order.price_ticks)
        levels = book.side(order.side)
        level = levels.get(order.price_ticks)
        if level is None:
            level = levels[order.price_ticks] = _Level()
        level.orders.append(order)
        level.quantity_lots += order.leaves_lots

    def _unlink(self, book: _Book, order: _Order) -> None:
        """Take an order out of its level (a level left empty is deleted). O(level size)."""
        self._touch(book, order.side, order.price_ticks)
        levels = book.side(order.side)
        level = levels[order.price_ticks]
        level.orders.remove(order)
        level.quantity_lots -= order.leaves_lots
        if not level.orders:
            _invariant(level.quantity_lots == 0, "an empty level kept quantity")
            del levels[order.price_ticks]

    def _reduce(self, book: _Book, order: _Order, quantity_lots: int) -> None:
        """Take quantity off a resting order in place: it keeps its time priority."""
        self._touch(book, order.side, order.price_ticks)
        order.leaves_lots -= quantity_lots
        book.side(order.side)[order.price_ticks].quantity_lots -= quantity_lots

    def _rest(self, book: _Book, order: _Order) -> None:
        """A new order joins the book: its level's tail, the id maps, the expiry queue."""
        self._push_tail(book, order)
        self._register(book, order)

    def _register(self, book: _Book, order: _Order) -> None:
        self._orders[order.order_id] = order
        self._by_client_id[(order.account_id, order.client_order_id)] = order
        if order.time_in_force == TimeInForce.GTD:
            self._expiry.add((order.expire_ts_ns, order.order_id))
        book.order_count += 1

    def _forget(self, book: _Book, order: _Order) -> None:
        """Drop an order already out of its level from the id maps and the expiry queue."""
        del self._orders[order.order_id]
        del self._by_client_id[(order.account_id, order.client_order_id)]
        if order.time_in_force == TimeInForce.GTD:
            self._expiry.remove((order.expire_ts_ns, order.order_id))
        book.order_count -= 1

    def _cancel_resting(self, book: _Book, order: _Order, reason: int) -> None:
        """CANCELLED (quantity = leaves) for a resting order, which leaves the book."""
        leaves_lots = order.leaves_lots
        self._unlink(book, order)
        order.leaves_lots = 0
        self._emit_order(
            EventKind.CANCELLED,
            order,
            quantity_lots=leaves_lots,
            status=OrderStatus.CANCELLED,
            reason=reason,
        )
        self._forget(book, order)

    # -- MATCHING --

    def _cancel_taker(self, taker: _Order, quantity_lots: int) -> None:
        taker.leaves_lots = 0
        self._emit_order(
            EventKind.CANCELLED,
            taker,
            quantity_lots=quantity_lots,
            status=OrderStatus.CANCELLED,
            reason=Reason.self_trade_prevented,
        )

    def _match(self, book: _Book, taker: _Order) -> bool:
        """Walk the opposite side as the contract's Matching section says.

        Returns True when self-trade prevention cancelled the taker (it must not rest).
        O(levels and orders walked).
        """
        opposite_side = _opposite(taker.side)
        while taker.leaves_lots > 0:
            price_ticks = book.best_price(opposite_side)
            if price_ticks is None or not _crosses(taker, price_ticks):
                return False
            level = book.side(opposite_side)[price_ticks]
            # A copy: makers leave the level while it is walked head to tail.
            for maker in list(level.orders):
                if taker.leaves_lots == 0:
                    break
                if _is_self_match(taker, maker):
                    if self._prevent_self_trade(book, taker, maker):
                        return True
                    continue
                self._fill(book, taker, maker, price_ticks)
        return False

    def _prevent_self_trade(self, book: _Book, taker: _Order, maker: _Order) -> bool:
        """Apply the taker's STP mode to one self-match. True when the taker was cancelled."""
        mode = taker.stp_mode
        if mode == StpMode.CANCEL_TAKER:
            self._cancel_taker(taker, taker.leaves_lots)
            return True
        if mode == StpMode.CANCEL_MAKER:
            self._cancel_resting(book, maker, Reason.self_trade_prevented)
            return False
        if mode == StpMode.CANCEL_BOTH:
            self._cancel_resting(book, maker, Reason.self_trade_prevented)
            self._cancel_taker(taker, taker.leaves_lots)
            return True
        # DECREMENT_AND_CANCEL: both lose the smaller open quantity.
        q = min(taker.leaves_lots, maker.leaves_lots)
        if maker.leaves_lots == q:
            self._cancel_resting(book, maker, Reason.self_trade_prevented)
        else:
            self._reduce(book, maker, q)
            self._emit_order(
                EventKind.REDUCED,
                maker,
                quantity_lots=q,
                status=maker.status,
                reason=Reason.self_trade_prevented,
            )
        if taker.leaves_lots == q:
            self._cancel_taker(taker, q)
            return True
        taker.leaves_lots -= q
        self._emit_order(
            EventKind.REDUCED,
            taker,
            quantity_lots=q,
            status=taker.status,
            reason=Reason.self_trade_prevented,
        )
        return False

    def _fill(self, book: _Book, taker: _Order, maker: _Order, price_ticks: int) -> None:
        """One trade of min(leaves) at the maker's price; a maker at 0 leaves the book."""
        q = min(taker.leaves_lots, maker.leaves_lots)
        taker.leaves_lots -= q
        taker.filled_lots += q
        self._reduce(book, maker, q)
        maker.filled_lots += q
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        self._emit(
            EventKind.FILLED,
            order_id=taker.order_id,
            account_id=taker.account_id,
            client_order_id=taker.client_order_id,
            instrument_id=taker.instrument_id,
            side=taker.side,
            price_ticks=price_ticks,
            quantity_lots=q,
            leaves_lots=taker.leaves_lots,
            maker_order_id=maker.order_id,
            maker_account_id=maker.account_id,
            maker_client_order_id=maker.client_order_id,
            maker_leaves_lots=maker.leaves_lots,
            trade_id=trade_id,
            status=OrderStatus.FILLED if taker.leaves_lots == 0 else OrderStatus.PARTIALLY_FILLED,
        )
        if maker.leaves_lots == 0:
            self._unlink(book, maker)
            self._forget(book, maker)

    def _fok_fillable(self, book: _Book, taker: _Order) -> bool:
        """The FOK dry walk: same rules, no effects. O(levels and orders walked)."""
        count_lots = 0
        for price_ticks, level in book.levels_best_first(_opposite(taker.side)):
            if not _crosses(taker, price_ticks):
                break
            for maker in level.orders:
                if _is_self_match(taker, maker):
                    if taker.stp_mode == StpMode.CANCEL_MAKER:
                        continue
                    return False  # the walk stops short of the quantity
                count_lots += maker.leaves_lots
                if count_lots >= taker.leaves_lots:
                    return True
        return False

    def _post_only_crosses(self, book: _Book, side: int, price_ticks: int) -> bool:
        best = book.best_price(_opposite(side))
        if best is None:
            return False
        return price_ticks >= best if side == Side.BUY else price_ticks <= best

    # -- COMMANDS --

    def _apply(self, command: _Command) -> int:
        """Time, the expiry pass and its deltas, then the command and its deltas."""
        self._now_ts_ns = max(self._now_ts_ns, command.ts_ns)
        expired = self._expire()
        if command.kind == CommandKind.ADVANCE_TIME:
            return expired
        handler = self._handlers.get(command.kind)
        if handler is None:
            result = self._reject(command, Reason.command_kind_must_be_valid)
        else:
            result = handler(command)
        self._flush_deltas()
        return result

    def _expire(self) -> int:
        """Cancel every GTD order with expire_ts_ns <= now, by (expire_ts_ns, order_id)."""
        expired = 0
        while self._expiry and self._expiry[0][0] <= self._now_ts_ns:
            order = self._orders[self._expiry[0][1]]
            self._cancel_resting(self._books[order.instrument_id], order, Reason.order_expired)
            expired += 1
        self._flush_deltas()
        return expired

    def _check_place(self, c: _Command) -> int:
        """The place checks in precedence order; the first failure is the reason."""
        limits = self.limits
        if c.side not in _VALID_SIDES:
            return Reason.side_must_be_valid
        if c.order_type not in _VALID_ORDER_TYPES:
            return Reason.order_type_must_be_valid
        if c.time_in_force not in _VALID_TIME_IN_FORCE:
            return Reason.time_in_force_must_be_valid
        if c.stp_mode not in _VALID_STP_MODES:
            return Reason.stp_mode_must_be_valid
        if not 0 <= c.account_id < limits.accounts_max:
            return Reason.account_id_must_be_in_range
        book = self._books.get(c.instrument_id)
        if book is None:
            return Reason.instrument_must_exist
        if book.status != InstrumentStatus.OPEN:
            return Reason.instrument_must_be_open
        q = c.quantity_lots
        if q <= 0:
            return Reason.quantity_must_be_positive
        if q % book.quantity_increment_lots != 0:
            return Reason.quantity_must_be_multiple_of_increment
        if q < book.quantity_min_lots:
            return Reason.quantity_must_be_at_least_minimum
        if q > book.quantity_max_lots:
            return Reason.quantity_must_be_at_most_maximum
        is_limit = c.order_type == OrderType.LIMIT
        if is_limit:
            if c.price_ticks % book.price_increment_ticks != 0:
                return Reason.price_must_be_multiple_of_increment
            if not book.price_min_ticks <= c.price_ticks <= book.price_max_ticks:
                return Reason.price_must_be_within_band
            if c.price_ticks * q < book.notional_min:
                return Reason.notional_must_be_at_least_minimum
        elif c.time_in_force not in (TimeInForce.IOC, TimeInForce.FOK):
            return Reason.market_order_must_be_ioc_or_fok
        may_rest = is_limit and c.time_in_force in (TimeInForce.GTC, TimeInForce.GTD)
        if c.post_only and not may_rest:
            return Reason.post_only_order_must_be_gtc_or_gtd_limit
        is_gtd = c.time_in_force == TimeInForce.GTD
        if (c.expire_ts_ns != 0) != is_gtd:
            return Reason.expire_time_must_be_given_for_gtd_only
        if is_gtd and c.expire_ts_ns <= self._now_ts_ns:
            return Reason.expire_time_must_be_in_future
        if (c.account_id, c.client_order_id) in self._by_client_id:
            return Reason.client_order_id_must_be_unique
        if may_rest:
            if book.order_count >= limits.orders_per_book_max:
                return Reason.book_must_have_capacity
            if len(self._orders) >= limits.orders_max:
                return Reason.engine_must_have_order_capacity
            if c.post_only and self._post_only_crosses(book, c.side, c.price_ticks):
                return Reason.post_only_order_must_not_cross
        return Reason.OK

    def _place(self, c: _Command) -> int:
        reason = self._check_place(c)
        if reason != Reason.OK:
            self._reject(c, reason)
            return 0
        book = self._books[c.instrument_id]
        is_market = c.order_type == OrderType.MARKET
        taker = _Order(
            order_id=self._next_order_id,
            account_id=c.account_id,
            client_order_id=c.client_order_id,
            price_ticks=0 if is_market else c.price_ticks,
            leaves_lots=c.quantity_lots,
            filled_lots=0,
            expire_ts_ns=c.expire_ts_ns,
            instrument_id=c.instrument_id,
            stp_group=c.stp_group,
            side=c.side,
            order_type=c.order_type,
            time_in_force=c.time_in_force,
            stp_mode=c.stp_mode,
            post_only=1 if c.post_only else 0,
        )
        self._next_order_id += 1
        self._emit_order(
            EventKind.ACCEPTED, taker, quantity_lots=taker.leaves_lots, status=OrderStatus.NEW
        )
        if c.time_in_force == TimeInForce.FOK and not self._fok_fillable(book, taker):
            leaves_lots = taker.leaves_lots
            taker.leaves_lots = 0
            self._emit_order(
                EventKind.CANCELLED,
                taker,
                quantity_lots=leaves_lots,
                status=OrderStatus.CANCELLED,
                reason=Reason.fill_or_kill_not_fillable,
            )
            return taker.order_id
        if self._match(book, taker) or taker.leaves_lots == 0:
            return taker.order_id
        if not is_market and c.time_in_force in (TimeInForce.GTC, TimeInForce.GTD):
            self._rest(book, taker)
            return taker.order_id
        leaves_lots = taker.leaves_lots
        taker.leaves_lots = 0
        self._emit_order(
            EventKind.CANCELLED,
            taker,
            quantity_lots=leaves_lots,
            status=OrderStatus.CANCELLED,
            reason=Reason.unfilled_remainder_cancelled,
        )
        return taker.order_id

    def _cancel(self, c: _Command) -> int:
        if not 0 <= c.account_id < self.limits.accounts_max:
            return self._reject(c, Reason.account_id_must_be_in_range)
        if c.order_id != 0:
            order = self._orders.get(c.order_id)
        else:
            order = self._by_client_id.get((c.account_id, c.client_order_id))
        if order is None:
            return self._reject(c, Reason.order_must_exist)
        if order.account_id != c.account_id:
            return self._reject(c, Reason.order_must_belong_to_account)
        self._cancel_resting(self._books[order.instrument_id], order, Reason.cancelled_by_user)
        return Reason.OK

    def _check_amend(self, c: _Command, order: _Order, book: _Book) -> int:
        """The amend checks after the order is found, in precedence order."""
        if book.status != InstrumentStatus.OPEN:
            return Reason.instrument_must_be_open
        q = c.quantity_lots
        if q <= 0:
            return Reason.quantity_must_be_positive
        if q % book.quantity_increment_lots != 0:
            return Reason.quantity_must_be_multiple_of_increment
        if q > book.quantity_max_lots:
            return Reason.quantity_must_be_at_most_maximum
        if c.price_ticks != 0:
            if c.price_ticks % book.price_increment_ticks != 0:
                return Reason.price_must_be_multiple_of_increment
            if not book.price_min_ticks <= c.price_ticks <= book.price_max_ticks:
                return Reason.price_must_be_within_band
        new_price_ticks = c.price_ticks if c.price_ticks != 0 else order.price_ticks
        if new_price_ticks == order.price_ticks and q == order.leaves_lots:
            return Reason.amend_must_change_order
        if (
            order.post_only
            and new_price_ticks != order.price_ticks
            and self._post_only_crosses(book, order.side, new_price_ticks)
        ):
            return Reason.post_only_order_must_not_cross
        return Reason.OK

    def _amend(self, c: _Command) -> int:
        if not 0 <= c.account_id < self.limits.accounts_max:
            return self._reject(c, Reason.account_id_must_be_in_range)
        order = self._orders.get(c.order_id)
        if order is None:
            return self._reject(c, Reason.order_must_exist)
        if order.account_id != c.account_id:
            return self._reject(c, Reason.order_must_belong_to_account)
        book = self._books[order.instrument_id]
        reason = self._check_amend(c, order, book)
        if reason != Reason.OK:
            return self._reject(c, reason)
        new_price_ticks = c.price_ticks if c.price_ticks != 0 else order.price_ticks
        q = c.quantity_lots
        status = order.status  # NEW unless something was filled before
        if new_price_ticks == order.price_ticks and q < order.leaves_lots:
            self._reduce(book, order, order.leaves_lots - q)
            self._emit_order(EventKind.AMENDED, order, quantity_lots=q, status=status)
            return Reason.OK
        # Quantity up or a new price: the order loses its place, and may trade as a taker.
        self._unlink(book, order)
        order.price_ticks = new_price_ticks
        order.leaves_lots = q
        self._emit_order(EventKind.AMENDED, order, quantity_lots=q, status=status)
        cancelled = self._match(book, order)
        if cancelled or order.leaves_lots == 0:
            self._forget(book, order)
        else:
            self._push_tail(book, order)
        return Reason.OK

    def _mass_cancel(self, c: _Command) -> int:
        if not 0 <= c.account_id < self.limits.accounts_max:
            return -self._reject(c, Reason.account_id_must_be_in_range)
        if c.instrument_id != -1 and c.instrument_id not in self._books:
            return -self._reject(c, Reason.instrument_must_exist)
        doomed = sorted(
            (
                order
                for order in self._orders.values()
                if order.account_id == c.account_id
                and (c.instrument_id == -1 or order.instrument_id == c.instrument_id)
            ),
            key=lambda order: order.order_id,
        )
        for order in doomed:
            self._cancel_resting(self._books[order.instrument_id], order, Reason.mass_cancelled)
        return len(doomed)

    def _set_status(self, c: _Command, status: int) -> int:
        book = self._books.get(c.instrument_id)
        if book is None:
            return self._reject(c, Reason.instrument_must_exist)
        book.status = status
        self._emit(EventKind.INSTRUMENT_STATUS, instrument_id=book.instrument_id, status=status)
        return Reason.OK

    def _halt(self, c: _Command) -> int:
        reason = self._set_status(c, InstrumentStatus.HALTED)
        if reason == Reason.OK and c.cancel_resting:
            book = self._books[c.instrument_id]
            for side in (Side.BUY, Side.SELL):
                for _price_ticks, level in list(book.levels_best_first(side)):
                    for order in list(level.orders):
                        self._cancel_resting(book, order, Reason.instrument_halted)
        return reason

    def _resume(self, c: _Command) -> int:
        return self._set_status(c, InstrumentStatus.OPEN)

    # -- PUBLIC COMMANDS --

    def _call(self, command: _Command) -> int:
        self._events = self._pending
        self._command_index = 0
        return int(self._apply(command))

    def add_instrument(
        self,
        instrument_id: int,
        *,
        price_increment_ticks: int,
        quantity_increment_lots: int,
        quantity_min_lots: int,
        quantity_max_lots: int,
        notional_min: int,
        price_min_ticks: int,
        price_max_ticks: int,
    ) -> int:
        """Add an instrument, open for trading.

        Parameters
        ----------
        instrument_id : int
            Dense id in ``[0, instruments_max)``.
        price_increment_ticks, quantity_increment_lots : int
            Valid prices and quantities are multiples of these (>= 1).
        quantity_min_lots, quantity_max_lots : int
            Order quantity bounds, ``1 <= min <= max``.
        notional_min : int
            Smallest ``price_ticks * quantity_lots`` of a limit order (>= 0).
        price_min_ticks, price_max_ticks : int
            The price band, multiples of the increment, ``1 <= min <= max``.

        Returns
        -------
        int
            The reason, 0 on success. Emits INSTRUMENT_STATUS (OPEN) or REJECTED at the
            current engine time; runs no expiry pass (it carries no ts_ns).
        """
        instrument_id = _checked(instrument_id, _INT32_MIN, _INT32_MAX)
        params = {
            "price_increment_ticks": int(price_increment_ticks),
            "quantity_increment_lots": int(quantity_increment_lots),
            "quantity_min_lots": int(quantity_min_lots),
            "quantity_max_lots": int(quantity_max_lots),
            "notional_min": int(notional_min),
            "price_min_ticks": int(price_min_ticks),
            "price_max_ticks": int(price_max_ticks),
        }
        for value in params.values():
            _checked(value, _INT64_MIN, _INT64_MAX)
        self._events = self._pending
        self._command_index = 0
        reason = self._check_instrument(instrument_id, **params)
        if reason != Reason.OK:
            self._emit(
                EventKind.REJECTED,
                instrument_id=instrument_id,
                reason=reason,
                status=OrderStatus.REJECTED,
            )
            return int(reason)
        self._books[instrument_id] = _Book(instrument_id=instrument_id, **params)
        self._emit(
            EventKind.INSTRUMENT_STATUS,
            instrument_id=instrument_id,
            status=InstrumentStatus.OPEN,
        )
        return int(Reason.OK)

    def _check_instrument(
        self,
        instrument_id: int,
        *,
        price_increment_ticks: int,
        quantity_increment_lots: int,
        quantity_min_lots: int,
        quantity_max_lots: int,
        notional_min: int,
        price_min_ticks: int,
        price_max_ticks: int,
    ) -> int:
        if not 0 <= instrument_id < self.limits.instruments_max:
            return Reason.instrument_id_must_be_in_range
        if instrument_id in self._books:
            return Reason.instrument_must_not_exist
        if (
            price_increment_ticks < 1
            or quantity_increment_lots < 1
            or not 1 <= quantity_min_lots <= quantity_max_lots
            or notional_min < 0
            or not 1 <= price_min_ticks <= price_max_ticks
            or price_min_ticks % price_increment_ticks != 0
            or price_max_ticks % price_increment_ticks != 0
        ):
            return Reason.instrument_parameters_must_be_valid
        levels = (price_max_ticks - price_min_ticks) // price_increment_ticks + 1
        if levels > self.limits.price_levels_max:
            return Reason.price_levels_must_not_exceed_maximum
        return Reason.OK

    def place(
        self,
        ts_ns: int,
        instrument_id: int,
        account_id: int,
        client_order_id: int,
        side: int,
        price_ticks: int,
        quantity_lots: int,
        *,
        order_type: int = OrderType.LIMIT,
        time_in_force: int = TimeInForce.GTC,
        expire_ts_ns: int = 0,
        post_only: bool = False,
        stp_group: int = 0,
        stp_mode: int = StpMode.CANCEL_TAKER,
    ) -> int:
        """Place an order.

        Parameters
        ----------
        ts_ns : int
            Sequenced time of the command.
        instrument_id, account_id, client_order_id : int
            Where and whose; the client order id is unique among the account's resting orders.
        side, order_type, time_in_force, stp_mode : int
            ``Side``, ``OrderType``, ``TimeInForce``, ``StpMode`` values.
        price_ticks, quantity_lots : int
            Limit price (ignored for a market order) and quantity.
        expire_ts_ns : int
            Expiry of a GTD order, 0 otherwise.
        post_only : bool
            Reject rather than trade on arrival.
        stp_group : int
            0 for none; orders of one group never trade with each other.

        Returns
        -------
        int
            The new order id, or 0 when rejected.
        """
        return self._call(
            _command(
                kind=CommandKind.PLACE,
                ts_ns=ts_ns,
                instrument_id=instrument_id,
                account_id=account_id,
                client_order_id=client_order_id,
                side=side,
                price_ticks=price_ticks,
                quantity_lots=quantity_lots,
                order_type=order_type,
                time_in_force=time_in_force,
                expire_ts_ns=expire_ts_ns,
                post_only=1 if post_only else 0,
                stp_group=stp_group,
                stp_mode=stp_mode,
            )
        )

    def cancel(
        self, ts_ns: int, account_id: int, order_id: int = 0, client_order_id: int = 0
    ) -> int:
        """Cancel a resting order by order id, or by client order id when order_id is 0.

        Returns
        -------
        int
            The reason, 0 on success.
        """
        return self._call(
            _command(
                kind=CommandKind.CANCEL,
                ts_ns=ts_ns,
                account_id=account_id,
                order_id=order_id,
                client_order_id=client_order_id,
            )
        )

    def amend(
        self, ts_ns: int, account_id: int, order_id: int, price_ticks: int, quantity_lots: int
    ) -> int:
        """Change a resting order's price (0 keeps it) and/or its leaves.

        Returns
        -------
        int
            The reason, 0 on success.
        """
        return self._call(
            _command(
                kind=CommandKind.AMEND,
                ts_ns=ts_ns,
                account_id=account_id,
                order_id=order_id,
                price_ticks=price_ticks,
                quantity_lots=quantity_lots,
            )
        )

    def mass_cancel(self, ts_ns: int, account_id: int, instrument_id: int = -1) -> int:
        """Cancel an account's resting orders (of one instrument, or all for -1).

        Returns
        -------
        int
            How many were cancelled, or ``-reason`` when rejected.
        """
        return self._call(
            _command(
                kind=CommandKind.MASS_CANCEL,
                ts_ns=ts_ns,
                account_id=account_id,
                instrument_id=instrument_id,
            )
        )

    def halt(self, ts_ns: int, instrument_id: int, cancel_resting: bool = False) -> int:
        """Halt an instrument, optionally cancelling its whole book.

        Returns
        -------
        int
            The reason, 0 on success.
        """
        return self._call(
            _command(
                kind=CommandKind.HALT,
                ts_ns=ts_ns,
                instrument_id=instrument_id,
                cancel_resting=1 if cancel_resting else 0,
            )
        )

    def resume(self, ts_ns: int, instrument_id: int) -> int:
        """Open a halted instrument again.

        Returns
        -------
        int
            The reason, 0 on success.
        """
        return self._call(
            _command(
                kind=CommandKind.RESUME,
                ts_ns=ts_ns,
                instrument_id=instrument_id,
            )
        )

    def advance_time(self, ts_ns: int) -> int:
        """Move sequenced time forward and expire GTD orders.

        Returns
        -------
        int
            How many orders expired.
        """
        return self._call(_command(kind=CommandKind.ADVANCE_TIME, ts_ns=ts_ns))

    def process(self, commands: np.ndarray) -> np.ndarray:
        """Apply a batch of commands and return their events.

        Parameters
        ----------
        commands : numpy.ndarray
            One-dimensional array of COMMAND_DTYPE; row i gets command_index i.

        Returns
        -------
        numpy.ndarray
            The batch's events (EVENT_DTYPE); they do not enter the drain buffer.
        """
        if not isinstance(commands, np.ndarray):
            raise TypeError("commands must be a numpy array of COMMAND_DTYPE")
        if commands.dtype != COMMAND_DTYPE or commands.ndim != 1:
            raise TypeError("commands must be a one-dimensional array of COMMAND_DTYPE")
        batch: list[tuple[int, ...]] = []
        self._events = batch
        try:
            for index, row in enumerate(commands.tolist()):
                self._command_index = index
                self._apply(_Command(**dict(zip(_COMMAND_FIELDS, row, strict=True))))
        finally:
            self._events = self._pending
            self._command_index = 0
        return _records(batch, EVENT_DTYPE)

    def drain_events(self) -> np.ndarray:
        """The events of per-call commands since the last drain (EVENT_DTYPE)."""
        events = _records(self._pending, EVENT_DTYPE)
        self._pending.clear()
        return events

    # -- QUERIES --

    def _book(self, instrument_id: int) -> _Book:
        book = self._books.get(instrument_id)
        if book is None:
            raise KeyError(f"no instrument {instrument_id}")
        return book

    def bbo(self, instrument_id: int) -> tuple[int, int, int, int]:
        """(bid_price_ticks, bid_quantity_lots, ask_price_ticks, ask_quantity_lots).

        Zeros for an empty side; ``KeyError`` for an unknown instrument.
        """
        book = self._book(instrument_id)
        result: list[int] = []
        for side in (Side.BUY, Side.SELL):
            price_ticks = book.best_price(side)
            if price_ticks is None:
                result += [0, 0]
            else:
                result += [price_ticks, book.side(side)[price_ticks].quantity_lots]
        return (result[0], result[1], result[2], result[3])

    def depth(
        self, instrument_id: int, levels: int
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(bids, asks), each up to ``levels`` of (price_ticks, quantity_lots, order_count)."""
        book = self._book(instrument_id)
        sides: list[list[tuple[int, int, int]]] = []
        for side in (Side.BUY, Side.SELL):
            rows: list[tuple[int, int, int]] = []
            for price_ticks, level in book.levels_best_first(side):
                if len(rows) >= levels:
                    break
                rows.append((price_ticks, level.quantity_lots, len(level.orders)))
            sides.append(rows)
        return sides[0], sides[1]

    def order(self, order_id: int) -> dict[str, int] | None:
        """A resting order (ORDER_DTYPE fields plus status), None if unknown or finished."""
        order = self._orders.get(order_id)
        return order.as_dict() if order is not None else None

    def open_orders(self, account_id: int) -> list[dict[str, int]]:
        """An account's resting orders in ascending order id (empty for any unknown id)."""
        return [
            self._orders[order_id].as_dict()
            for order_id in sorted(self._orders)
            if self._orders[order_id].account_id == account_id
        ]

    @property
    def now_ts_ns(self) -> int:
        """Engine time: the greatest ts_ns seen."""
        return self._now_ts_ns

    @property
    def next_expiry_ts_ns(self) -> int:
        """When the earliest resting GTD order expires; 0 when none rests. O(log n)."""
        return self._expiry[0][0] if self._expiry else 0

    # -- SNAPSHOTS --

    def _state(self) -> EngineState:
        instrument_rows = []
        order_rows = []
        for instrument_id in sorted(self._books):
            book = self._books[instrument_id]
            instrument_rows.append(
                tuple(
                    int(book.status) if name == "status" else getattr(book, name)
                    for name in _INSTRUMENT_FIELDS
                )
            )
            for side in (Side.BUY, Side.SELL):
                for _price_ticks, level in book.levels_best_first(side):
                    for order in level.orders:
                        order_rows.append(
                            tuple(int(getattr(order, name)) for name in _ORDER_FIELDS)
                        )
        return EngineState(
            seq=self._seq,
            next_order_id=self._next_order_id,
            next_trade_id=self._next_trade_id,
            now_ts_ns=self._now_ts_ns,
            instruments=_records(instrument_rows, INSTRUMENT_DTYPE),
            orders=_records(order_rows, ORDER_DTYPE),
        )

    def snapshot(self) -> bytes:
        """The engine state in the shared snapshot format (pending events excluded)."""
        return encode_state(self._state())

    def state_hash(self) -> str:
        """Hex BLAKE2b of the canonical snapshot: equal states, equal hashes."""
        return _state_hash(self.snapshot())

    @classmethod
    def restore(cls, data: bytes, limits: EngineLimits | None = None) -> ReferenceEngine:
        """A new engine in the state a snapshot holds.

        Raises
        ------
        SnapshotError
            The bytes are not an intact snapshot, or its contents do not fit these limits.
        """
        state = decode_state(bytes(data))
        engine = cls(limits)
        for row in state.instruments.tolist():
            fields = dict(zip(_INSTRUMENT_FIELDS, row, strict=True))
            instrument_id = fields.pop("instrument_id")
            status = fields.pop("status")
            if engine.add_instrument(instrument_id, **fields) != Reason.OK:
                raise SnapshotError(f"snapshot instrument {instrument_id} does not fit")
            if status not in (InstrumentStatus.OPEN, InstrumentStatus.HALTED):
                raise SnapshotError(f"snapshot instrument {instrument_id} has bad status")
            engine._books[instrument_id].status = status
        engine._pending.clear()
        if len(state.orders) > engine.limits.orders_max:
            raise SnapshotError("snapshot holds more orders than this engine's orders_max")
        for row in state.orders.tolist():
            order = _Order(**dict(zip(_ORDER_FIELDS, row, strict=True)))
            book = engine._books.get(order.instrument_id)
            if (
                book is None
                or not 0 <= order.account_id < engine.limits.accounts_max
                or order.leaves_lots <= 0
                or order.side not in _VALID_SIDES
                or order.order_id in engine._orders
                or (order.account_id, order.client_order_id) in engine._by_client_id
            ):
                raise SnapshotError(f"snapshot order {order.order_id} is not valid here")
            if (
                not book.price_min_ticks <= order.price_ticks <= book.price_max_ticks
                or (order.price_ticks - book.price_min_ticks) % book.price_increment_ticks
            ):
                raise SnapshotError(f"snapshot order {order.order_id} is off its price ladder")
            if book.order_count >= engine.limits.orders_per_book_max:
                raise SnapshotError(
                    f"snapshot book {order.instrument_id} exceeds orders_per_book_max"
                )
            engine._rest(book, order)
        engine._touched.clear()
        engine._seq = state.seq
        engine._next_order_id = state.next_order_id
        engine._next_trade_id = state.next_trade_id
        engine._now_ts_ns = state.now_ts_ns
        return engine

    # -- CHECKS --

    def check_invariants(self) -> bool:
        """Check every internal invariant (sortedcontainers' ``_check`` habit). O(state).

        Raises
        ------
        AssertionError
            On the first broken invariant; returns True otherwise.
        """
        seen = 0
        for instrument_id, book in self._books.items():
            _invariant(book.instrument_id == instrument_id, "book filed under another id")
            book_orders = 0
            for side in (Side.BUY, Side.SELL):
                for price_ticks, level in book.side(side).items():
                    _invariant(bool(level.orders), "an empty level was kept")
                    total_lots = sum(order.leaves_lots for order in level.orders)
                    _invariant(level.quantity_lots == total_lots, "level quantity out of step")
                    for order in level.orders:
                        _invariant(order.leaves_lots > 0, "a resting order has no quantity")
                        _invariant(
                            order.side == side
                            and order.price_ticks == price_ticks
                            and order.instrument_id == instrument_id,
                            "order at the wrong level",
                        )
                        _invariant(
                            self._orders.get(order.order_id) is order, "order id map out of step"
                        )
                        key = (order.account_id, order.client_order_id)
                        _invariant(
                            self._by_client_id.get(key) is order, "client id map out of step"
                        )
                    book_orders += len(level.orders)
            bid, ask = book.best_price(Side.BUY), book.best_price(Side.SELL)
            _invariant(bid is None or ask is None or bid < ask, "the book is crossed")
            _invariant(book_orders == book.order_count, "book order count out of step")
            seen += book_orders
        _invariant(seen == len(self._orders) == len(self._by_client_id), "maps out of step")
        gtd = sorted(
            (order.expire_ts_ns, order.order_id)
            for order in self._orders.values()
            if order.time_in_force == TimeInForce.GTD
        )
        _invariant(list(self._expiry) == gtd, "expiry queue out of step")
        _invariant(not self._touched, "touched levels left over from a command")
        return True


__all__ = ["ReferenceEngine"]
