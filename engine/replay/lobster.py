"""Replay a LOBSTER Nasdaq message file through the engine and check it against the order book.

LOBSTER gives two files of equal length: message row i is an event, orderbook row i is the
visible book (top N levels) after it. The replay feeds every event to the engine as the command
an exchange would have run (1 new order: a GTC limit order; 2 partial cancel: an amend down,
which keeps priority; 3 delete: a cancel; 4 execution: see below; 5 hidden execution and
6 cross trade: nothing; 7 halt: halt or resume) and checks two things:

1. Every type-4 execution names the resting order that was hit. The replay sends an aggressive
   IOC order from a taker account at that price and size; under price-time priority the
   engine must fill exactly the named order.
2. After every event the engine's book, restricted to what the file can show, equals the
   orderbook row (every level down to the row's last one, price and size).

What the file cannot show is handled in the open, and counted apart from what it can:

- The book at the open holds orders entered before the file starts. They are seeded from
  orderbook row 0 with message 0's effect backed out, one synthetic order per level.
- A level-N file carries only events inside the top N levels. Orders resting at a level while
  it is beyond the visible depth may be cancelled, and others may join, without a message.
  When such a level comes back into view the replay sets it to the row (a synthetic order for
  missing quantity, trimming for excess) and counts the difference as explained; a difference
  at a level the previous row could already see is unexplained. Orders that rested out of view
  are marked: only they (and synthetic orders) may absorb quantity the file names under an
  order the engine does not hold, or stand in for an executed order, and every such case is
  counted as explained by out-of-view history, never as a match. On a level-1 file that is
  most of the book; on the AAPL level-10 sample nothing needs it.
- Executions sharing one timestamp (one aggressive order sweeping the book) are not always
  listed in priority order. When the engine filled exactly the named orders by exactly the
  named quantities over the whole sweep, its executions count as explained by sweep order.

Instrument: price ticks are LOBSTER's integer prices (USD x 10000, so one tick is $0.0001) with
a price increment of a cent (100 ticks) unless a booked price needs finer; lots are shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic_ns
from typing import Any

from engine._codes import EventKind, OrderType, Reason, Side, TimeInForce
from engine.replay._common import (
    DETAILS_MAX,
    MAKER_ACCOUNT,
    QUANTITY_MAX_LOTS,
    TAKER_ACCOUNT,
    EngineFactory,
    ProgressFn,
    ReplayInputError,
    core_engine,
)

SEED_ACCOUNT = 3  # synthetic orders for quantity whose orders the file never names

CENT_TICKS = 100
# Events between two progress callbacks.
PROGRESS_EVERY = 2048

EMPTY_ASK_PRICE = 9999999999
EMPTY_BID_PRICE = -9999999999

# Message types (LOBSTER's numbering).
NEW_ORDER = 1
PARTIAL_CANCEL = 2
DELETE = 3
EXECUTION = 4
HIDDEN_EXECUTION = 5
CROSS_TRADE = 6
HALT = 7

# Plain ints: enum attribute lookups are slow on the per-event path.
BUY, SELL = int(Side.BUY), int(Side.SELL)
FILLED, CANCELLED = int(EventKind.FILLED), int(EventKind.CANCELLED)

# -- PARSING --


@dataclass(frozen=True, slots=True)
class Message:
    line: int
    ts_ns: int
    kind: int
    order_id: int
    size: int
    price: int
    direction: int  # 1 buy, -1 sell; for an execution the side of the resting order


# One side of an orderbook row: (price_ticks, quantity_lots), best first, empty levels dropped.
Levels = list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class BookRow:
    line: int
    bids: Levels
    asks: Levels


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        raise ReplayInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReplayInputError(f"{path}: cannot read: {error}") from None


def _parse_int(text: str, path: Path, line: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ReplayInputError(f"{path}:{line}: {what} is not an integer: {text!r}") from None


def parse_time_ns(text: str) -> int:
    """LOBSTER time (seconds after midnight, up to 9 decimals) as integer nanoseconds."""
    seconds, _, fraction = text.partition(".")
    if not seconds.isdigit() or len(fraction) > 9 or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a LOBSTER time: {text!r}")
    # Trailing zeros are dropped in the file ("34200.00426064"): pad on the right.
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or "0")


def parse_message_line(text: str, path: Path, line: int) -> Message:
    fields = text.split(",")
    if len(fields) != 6:
        raise ReplayInputError(
            f"{path}:{line}: a message row has 6 fields (time, type, order id, size, price, "
            f"direction), this one has {len(fields)}: {text!r}"
        )
    try:
        ts_ns = parse_time_ns(fields[0])
    except ValueError as error:
        raise ReplayInputError(f"{path}:{line}: {error}") from None
    kind = _parse_int(fields[1], path, line, "type")
    order_id = _parse_int(fields[2], path, line, "order id")
    size = _parse_int(fields[3], path, line, "size")
    price = _parse_int(fields[4], path, line, "price")
    direction = _parse_int(fields[5], path, line, "direction")
    if not NEW_ORDER <= kind <= HALT:
        raise ReplayInputError(f"{path}:{line}: type must be 1..7, got {kind}")
    if direction not in (1, -1):
        raise ReplayInputError(f"{path}:{line}: direction must be 1 or -1, got {direction}")
    if size < 0 or (kind <= EXECUTION and (size == 0 or price <= 0)):
        raise ReplayInputError(f"{path}:{line}: size {size} or price {price} is not valid")
    return Message(line, ts_ns, kind, order_id, size, price, direction)


def parse_book_line(text: str, path: Path, line: int, levels: int) -> BookRow:
    fields = text.split(",")
    if len(fields) != 4 * levels:
        raise ReplayInputError(
            f"{path}:{line}: an orderbook row of this file has {4 * levels} fields "
            f"(ask price, ask size, bid price, bid size per level), this one has {len(fields)}"
        )
    values = [_parse_int(value, path, line, f"field {i + 1}") for i, value in enumerate(fields)]
    asks: Levels = []
    bids: Levels = []
    for level in range(levels):
        ask_price, ask_size, bid_price, bid_size = values[4 * level : 4 * level + 4]
        if ask_size < 0 or bid_size < 0:
            raise ReplayInputError(f"{path}:{line}: negative size at level {level + 1}")
        if ask_size > 0 and ask_price != EMPTY_ASK_PRICE:
            asks.append((ask_price, ask_size))
        if bid_size > 0 and bid_price != EMPTY_BID_PRICE:
            bids.append((bid_price, bid_size))
    return BookRow(line, bids, asks)


def read_lobster(message_path: Path, book_path: Path) -> tuple[list[Message], list[BookRow], int]:
    """Parse both files: (messages, book rows, levels). Raises ReplayInputError naming the line."""
    message_lines = _read_lines(message_path)
    book_lines = _read_lines(book_path)
    if not message_lines:
        raise ReplayInputError(f"{message_path}: empty message file")
    if len(message_lines) != len(book_lines):
        raise ReplayInputError(
            f"{message_path} has {len(message_lines)} rows but {book_path} has "
            f"{len(book_lines)}: orderbook row i must be the book after message i"
        )
    columns = len(book_lines[0].split(","))
    if columns % 4:
        raise ReplayInputError(f"{book_path}:1: {columns} fields is not 4 per level")
    levels = columns // 4
    messages = [
        parse_message_line(text, message_path, i) for i, text in enumerate(message_lines, 1)
    ]
    rows = [parse_book_line(text, book_path, i, levels) for i, text in enumerate(book_lines, 1)]
    return messages, rows, levels


# -- REPORT --


@dataclass(kw_only=True)
class LobsterReport:
    message_file: str
    orderbook_file: str
    levels: int
    engine: str
    price_increment_ticks: int = 0
    events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    # Type-4 executions of an order the file added: the engine must fill exactly that order.
    executions_checked: int = 0
    executions_matched: int = 0
    # ... or, when the orders filled instead had rested out of view, explained by that history.
    executions_explained: int = 0
    # ... or one instant's executions hit exactly the named orders, listed out of order.
    executions_explained_by_sweep_order: int = 0
    # Type-4 executions of an order entered before the file or while out of view.
    executions_on_unseen_orders: int = 0
    executions_on_unseen_orders_hit_seeded: int = 0
    executions_on_unseen_orders_explained: int = 0
    book_rows_checked: int = 0
    book_rows_matched: int = 0  # engine equal to the row as it stood
    book_rows_explained: int = 0  # differed only at levels that had just come into view
    book_rows_unexplained: int = 0
    mismatches_explained: int = 0  # level differences, one per level and row
    mismatches_unexplained: int = 0
    best_prices_checked: int = 0
    best_prices_matched: int = 0
    engine_book_crossed_rows: int = 0
    seeded_orders: int = 0  # synthetic orders at the open
    hidden_depth_orders_seeded: int = 0  # synthetic orders for quantity that came into view
    hidden_depth_lots_seeded: int = 0
    hidden_depth_lots_trimmed: int = 0  # quantity that left a level while it was out of view
    out_of_view_lots_requeued: int = 0  # were ahead of an executed order: moved behind it
    unseen_lots_taken_from_hidden_history: int = 0  # named quantity found in such orders
    orders_rested_out_of_view: int = 0
    unexplained_events: int = 0  # events the engine could not apply as the file says
    unexplained: list[str] = field(default_factory=list)
    elapsed_ms: int = 0

    @property
    def executions_unexplained(self) -> int:
        return (
            self.executions_checked
            - self.executions_matched
            - self.executions_explained
            - self.executions_explained_by_sweep_order
        )

    @property
    def ok(self) -> bool:
        return (
            self.book_rows_unexplained == 0
            and self.unexplained_events == 0
            and self.executions_unexplained == 0
            and self.engine_book_crossed_rows == 0
        )

    def note(self, text: str) -> None:
        if len(self.unexplained) < DETAILS_MAX:
            self.unexplained.append(text)

    def to_dict(self) -> dict[str, Any]:
        result = {name: getattr(self, name) for name in self.__dataclass_fields__}
        result["executions_unexplained"] = self.executions_unexplained
        result["ok"] = self.ok
        return result

    def summary(self) -> str:
        lines = [
            f"LOBSTER replay of {self.message_file} (level {self.levels}, engine {self.engine})",
            f"  events                  {self.events}  by type {self.events_by_type}",
            f"  executions checked      {self.executions_checked}: hit the named order "
            f"{self.executions_matched}, explained by out-of-view history "
            f"{self.executions_explained}, by sweep order "
            f"{self.executions_explained_by_sweep_order}, unexplained "
            f"{self.executions_unexplained}",
            f"  executions, unseen ids  {self.executions_on_unseen_orders}: hit seeded quantity "
            f"{self.executions_on_unseen_orders_hit_seeded}, explained by out-of-view history "
            f"{self.executions_on_unseen_orders_explained}",
            f"  book rows checked       {self.book_rows_checked}: matched "
            f"{self.book_rows_matched}, explained {self.book_rows_explained}, unexplained "
            f"{self.book_rows_unexplained}",
            f"  level mismatches        explained {self.mismatches_explained} (level had just "
            f"come into view), unexplained {self.mismatches_unexplained}",
            f"  best prices agree       {self.best_prices_matched} of {self.best_prices_checked} "
            f"rows; engine book crossed on {self.engine_book_crossed_rows} rows",
            f"  seeded                  {self.seeded_orders} orders at the open; "
            f"{self.hidden_depth_orders_seeded} orders ({self.hidden_depth_lots_seeded} lots) as "
            f"levels came into view",
            f"  out-of-view history     {self.orders_rested_out_of_view} orders rested out of "
            f"view; lots trimmed {self.hidden_depth_lots_trimmed}, requeued behind an executed "
            f"order {self.out_of_view_lots_requeued}, named unseen quantity found in them "
            f"{self.unseen_lots_taken_from_hidden_history}",
            f"  unexplained events      {self.unexplained_events}",
            f"  result                  {'OK' if self.ok else 'MISMATCH'} in {self.elapsed_ms} ms",
        ]
        lines += [f"  ! {text}" for text in self.unexplained]
        return "\n".join(lines)


# -- REPLAY --


def _side_of(direction: int) -> int:
    return BUY if direction == 1 else SELL


def _opposite(side: int) -> int:
    return SELL if side == BUY else BUY


def _beyond(side: int, price: int, worst: int) -> bool:
    """True when `price` is worse than `worst` on that side (lower bid, higher ask)."""
    return price < worst if side == BUY else price > worst


def _price_increment(messages: list[Message], rows: list[BookRow]) -> int:
    """A cent, unless a price that reaches the book is finer (hidden executions may be)."""
    for message in messages:
        if message.kind <= EXECUTION and message.price % CENT_TICKS:
            return 1
    for row in rows:
        for price, _ in row.bids + row.asks:
            if price % CENT_TICKS:
                return 1
    return CENT_TICKS


def _price_band(
    messages: list[Message], rows: list[BookRow], increment: int, levels_max: int
) -> tuple[int, int]:
    prices = [m.price for m in messages if m.kind <= EXECUTION]
    prices += [price for row in rows for price, _ in row.bids + row.asks]
    low, high = min(prices), max(prices)
    # Wide: up to twice the highest price, so any order the day could hold fits.
    band_max = -(-2 * high // increment) * increment
    if (band_max - increment) // increment + 1 <= levels_max:
        return increment, band_max
    # The engine's ladder cannot span that at this increment: the file's own range then.
    return max(increment, low // increment * increment), -(-high // increment) * increment


@dataclass(frozen=True, slots=True)
class _Execution:
    """One replayed type-4 message and what the engine filled for it."""

    message: Message
    engine_id: int  # the named order in the engine, 0 when it is not resting there
    filled: bool  # the engine filled the whole size
    others: list[int]  # engine ids of makers other than the named order
    inferred: bool  # the replay moved or resized orders first (out-of-view history)
    makers: list[tuple[int, int]]  # (engine maker id, lots) per fill

    @property
    def exact(self) -> bool:
        return self.filled and bool(self.engine_id) and not self.others and not self.inferred


def sweep_continuations(messages: list[Message]) -> set[int]:
    """Lines of executions followed, in the same instant and on the same side, by another.

    Hidden executions and cross trades in between do not break a sweep.
    """
    continues: set[int] = set()
    last: Message | None = None
    for message in messages:
        if message.kind in (HIDDEN_EXECUTION, CROSS_TRADE):
            continue
        if (
            last is not None
            and message.kind == EXECUTION
            and (message.ts_ns, message.direction) == (last.ts_ns, last.direction)
        ):
            continues.add(last.line)
        last = message if message.kind == EXECUTION else None
    return continues


class _Replay:
    """One pass of a LOBSTER day through one engine.

    Every order id the replay holds is the engine's; `known` maps LOBSTER ids to them. Shadow
    queues (engine order ids per level, in arrival order, which is priority order here since
    nothing is re-queued) only choose which order absorbs a change the file cannot attribute.
    Whether an execution hit the named order is always the engine's own fill.
    """

    def __init__(
        self, engine: Any, report: LobsterReport, levels: int, sweep_continues: set[int]
    ) -> None:
        self.engine = engine
        self.report = report
        self.levels = levels
        self.sweep_continues = sweep_continues
        self.sweep: list[_Execution] = []
        self.instrument_id = 0
        self.known: dict[int, int] = {}  # LOBSTER order id -> engine order id
        self.lobster_ids: dict[int, int] = {}  # engine order id -> LOBSTER order id
        self.queues: dict[tuple[int, int], dict[int, None]] = {}
        self.located: dict[int, tuple[int, int]] = {}  # engine order id -> its queue's key
        self.synthetic: set[int] = set()
        # Orders that rested at a level while it was beyond the visible depth: they may have
        # been cancelled or reduced without a message, so only they absorb unseen changes.
        self.suspect: set[int] = set()
        # LOBSTER ids whose quantity the replay changed to match an unseen change: the file
        # may name them after the engine no longer holds them.
        self.presumed_gone: set[int] = set()
        self.next_client_id = 1
        # The previous row's last visible price per side; None when it showed the whole side.
        self.visible_worst: dict[int, int | None] = {BUY: None, SELL: None}

    # -- engine commands --

    def _client_id(self) -> int:
        self.next_client_id += 1
        return self.next_client_id

    def _drain(self) -> Any:
        events = self.engine.drain_events()
        if len(events):
            kinds = events["kind"]
            done = (kinds == FILLED) & (events["maker_leaves_lots"] == 0)
            for order_id in events["maker_order_id"][done].tolist():
                self._forget(order_id)
            for order_id in events["order_id"][kinds == CANCELLED].tolist():
                self._forget(order_id)
        return events

    def _forget(self, order_id: int) -> None:
        key = self.located.pop(order_id, None)
        if key is not None:
            del self.queues[key][order_id]

    def _place_resting(
        self, ts_ns: int, account: int, client_id: int, side: int, price: int, size: int
    ) -> tuple[int, Any]:
        order_id = self.engine.place(
            ts_ns, self.instrument_id, account, client_id, side, price, size
        )
        events = self._drain()
        if order_id and self.engine.order(order_id) is not None:
            self.queues.setdefault((side, price), {})[order_id] = None
            self.located[order_id] = (side, price)
        return order_id, events

    def _place_synthetic(self, ts_ns: int, side: int, price: int, size: int) -> int:
        order_id, events = self._place_resting(
            ts_ns, SEED_ACCOUNT, self._client_id(), side, price, size
        )
        if not order_id or any(e["kind"] == FILLED for e in events):
            self.report.unexplained_events += 1
            self.report.note(f"seeding {size} lots at {price} was rejected or traded")
        self.synthetic.add(order_id)
        return order_id

    def _set_leaves(self, ts_ns: int, engine_id: int, leaves: int) -> None:
        """Reduce an order in place (keeps priority) or cancel it at zero."""
        order = self.engine.order(engine_id)
        account = order["account_id"]
        if leaves > 0:
            reason = self.engine.amend(ts_ns, account, engine_id, 0, leaves)
        else:
            reason = self.engine.cancel(ts_ns, account, engine_id)
        self._drain()
        if reason:
            self.report.unexplained_events += 1
            self.report.note(
                f"engine refused to set order {engine_id} to {leaves} lots: {Reason(reason).name}"
            )

    def _take(
        self, ts_ns: int, key: tuple[int, int], size: int, pick: Callable[[int], bool]
    ) -> int:
        """Take up to `size` lots from the picked orders of a level; returns what is left.

        Newest first: most orders that are cancelled go within moments of arriving, so the
        newest out-of-view order is the likeliest to have gone unseen.
        """
        for engine_id in reversed(list(self.queues.get(key, {}))):
            if size == 0:
                break
            if not pick(engine_id):
                continue
            leaves = self.engine.order(engine_id)["leaves_lots"]
            taken = min(leaves, size)
            if engine_id in self.lobster_ids:
                # Its quantity is a guess from now on: the file may name it after the engine
                # has used it all up.
                self.presumed_gone.add(self.lobster_ids[engine_id])
            self._set_leaves(ts_ns, engine_id, leaves - taken)
            size -= taken
        return size

    def _take_unattributed(self, message: Message, size: int) -> int:
        """Find quantity the file names but the engine holds under no such order.

        Seeded quantity first (that is what it stands for), then orders that rested out of
        view (their loss went unseen while unseen orders joined). Returns what is missing.
        """
        key = (_side_of(message.direction), message.price)
        size = self._take(message.ts_ns, key, size, self.synthetic.__contains__)
        if size:
            missing = self._take(message.ts_ns, key, size, self.suspect.__contains__)
            self.report.unseen_lots_taken_from_hidden_history += size - missing
            size = missing
        return size

    # -- seeding --

    def seed(self, first: Message, row: BookRow) -> None:
        """Seed the book at the open from row 0 with message 0's effect backed out."""
        sides = {BUY: dict(row.bids), SELL: dict(row.asks)}
        if first.kind <= EXECUTION:
            book = sides[_side_of(first.direction)]
            change = first.size if first.kind == NEW_ORDER else -first.size
            before = book.get(first.price, 0) - change
            if before < 0:
                self._unexplained(first, f"row 0 does not hold message 0's {first.size} lots")
                before = 0
            book[first.price] = before
        for side, book in sides.items():
            for price, size in book.items():
                if size > 0:
                    self._place_synthetic(first.ts_ns, side, price, size)
                    self.report.seeded_orders += 1
            prices = sorted((p for p, q in book.items() if q > 0), reverse=side == BUY)
            full = len(prices) >= self.levels
            self.visible_worst[side] = prices[self.levels - 1] if full else None

    # -- messages --

    def _unexplained(self, message: Message, text: str) -> None:
        self.report.unexplained_events += 1
        self.report.note(f"message line {message.line}: {text}")

    def apply(self, message: Message) -> None:
        self.handlers[message.kind](self, message)

    def new_order(self, message: Message) -> None:
        side = _side_of(message.direction)
        order_id, events = self._place_resting(
            message.ts_ns, MAKER_ACCOUNT, message.order_id, side, message.price, message.size
        )
        if not order_id:
            reason = Reason(int(events[-1]["reason"])).name if len(events) else "?"
            self._unexplained(message, f"new order rejected: {reason}")
            return
        if any(e["kind"] == FILLED for e in events):
            self._unexplained(message, "new order traded: the engine's book crossed it")
        self.known[message.order_id] = order_id
        self.lobster_ids[order_id] = message.order_id

    def partial_cancel(self, message: Message) -> None:
        self._remove(message, full=False)

    def delete(self, message: Message) -> None:
        self._remove(message, full=True)

    def _resting(self, lobster_id: int) -> int:
        """The engine id of a LOBSTER order still resting in the engine, else 0."""
        engine_id = self.known.get(lobster_id, 0)
        return engine_id if engine_id and engine_id in self.located else 0

    def _remove(self, message: Message, *, full: bool) -> None:
        engine_id = self._resting(message.order_id)
        if not engine_id:
            self._remove_unattributed(message)
            return
        leaves = self.engine.order(engine_id)["leaves_lots"]
        taken = leaves if full else min(leaves, message.size)
        self._set_leaves(message.ts_ns, engine_id, leaves - taken)
        short, excess = max(0, message.size - taken), max(0, taken - message.size)
        if not short and not excess:
            return
        if engine_id not in self.suspect:
            self._unexplained(
                message,
                f"removes {message.size} lots of order "
                f"{message.order_id}, the engine held {leaves}",
            )
            return
        # The order lost (excess) or we took from it (short) quantity out of view: the level
        # total was right, so the difference sits in other orders of the level.
        if excess:
            self._place_synthetic(message.ts_ns, _side_of(message.direction), message.price, excess)
        elif self._take_unattributed(message, short):
            self._unexplained(message, f"{short} lots of order {message.order_id} not found")

    def _remove_unattributed(self, message: Message) -> None:
        if message.order_id in self.known and message.order_id not in self.presumed_gone:
            self._unexplained(message, f"order {message.order_id} is no longer in the engine")
            return
        missing = self._take_unattributed(message, message.size)
        if missing:
            self._unexplained(
                message,
                f"order {message.order_id} is not in the engine and its level at "
                f"{message.price} holds no seeded or out-of-view quantity for it "
                f"({missing} of {message.size} lots missing)",
            )

    def execution(self, message: Message) -> None:
        engine_id = self._resting(message.order_id)
        if (
            not engine_id
            and not self._filled_earlier_in_sweep(message)
            and not self._seeded_at_head(message)
        ):
            self._execute_unattributed(message)
            if self.sweep and message.line not in self.sweep_continues:
                self._judge_sweep()
            return
        size, inferred = message.size, False
        if engine_id:
            inferred = self._requeue_ahead(message, engine_id)
            leaves = self.engine.order(engine_id)["leaves_lots"]
            if engine_id in self.suspect and leaves < size:
                # Reduced while out of view by a wrong guess: the rest sits in other orders,
                # and so does whatever the order still holds after this execution.
                size, inferred = leaves, True
                self.presumed_gone.add(message.order_id)
        makers = self._execute(message, size)
        missing = self._take_unattributed(message, message.size - size)
        filled = sum(quantity for _, quantity in makers) == size and not missing
        others = [maker for maker, _ in makers if maker != engine_id]
        self.sweep.append(_Execution(message, engine_id, filled, others, inferred, makers))
        if message.line not in self.sweep_continues:
            self._judge_sweep()

    def _judge_sweep(self) -> None:
        """Judge the executions of one instant together when they were listed out of order.

        Executions with one timestamp (one aggressive order sweeping the book) are not always
        listed in priority order in LOBSTER files. If the engine filled exactly the named
        orders by exactly the named quantities over the sweep, their order in the file is
        the only difference, and the book is the same at its end.
        """
        sweep, self.sweep = self.sweep, []
        if len(sweep) > 1 and self._sweep_hit_named_orders(sweep):
            for execution in sweep:
                self.report.executions_checked += 1
                if execution.exact:
                    self.report.executions_matched += 1
                else:
                    self.report.executions_explained_by_sweep_order += 1
            return
        for execution in sweep:
            if execution.message.order_id in self.known:
                self._judge_known(execution)
            else:
                self._judge_unseen(execution)

    def _sweep_hit_named_orders(self, sweep: list[_Execution]) -> bool:
        named: dict[int, int] = {}
        hit: dict[int, int] = {}
        for execution in sweep:
            message = execution.message
            if message.order_id not in self.known or execution.inferred:
                return False
            named[message.order_id] = named.get(message.order_id, 0) + message.size
            for maker, quantity in execution.makers:
                lobster_id = self.lobster_ids.get(maker, 0)
                hit[lobster_id] = hit.get(lobster_id, 0) + quantity
        return named == hit

    def _filled_earlier_in_sweep(self, message: Message) -> bool:
        """An order the file added that the engine filled for an earlier execution of the
        same instant (the sweep is judged as a whole when it ends)."""
        in_sweep = bool(self.sweep) or message.line in self.sweep_continues
        order_id = message.order_id
        return in_sweep and order_id in self.known and order_id not in self.presumed_gone

    def _seeded_at_head(self, message: Message) -> bool:
        """True when seeded orders at the head of the level hold the whole execution: an
        order the file never added must be among them, and the engine's fill can show it."""
        size = message.size
        for engine_id in self.queues.get((_side_of(message.direction), message.price), {}):
            if engine_id not in self.synthetic:
                return False
            size -= self.engine.order(engine_id)["leaves_lots"]
            if size <= 0:
                return True
        return False

    def _execute_unattributed(self, message: Message) -> None:
        """An execution of an order the engine does not hold as such (never added, or
        presumed gone): its quantity is among the level's seeded and out-of-view orders, in
        a place the file does not show, so it is taken from there and no fill is checked."""
        missing = self._take_unattributed(message, message.size)
        report = self.report
        if message.order_id not in self.known:
            report.executions_on_unseen_orders += 1
            if not missing:
                report.executions_on_unseen_orders_explained += 1
                return
        else:
            report.executions_checked += 1
            if not missing and message.order_id in self.presumed_gone:
                report.executions_explained += 1
                return
            report.note(
                f"message line {message.line}: execution of {message.size} lots on "
                f"order {message.order_id}, which the engine no longer holds"
            )
            return
        self._unexplained(
            message,
            f"execution of unseen order {message.order_id}: "
            f"{missing} of {message.size} lots not in the engine",
        )

    def _execute(self, message: Message, size: int) -> list[tuple[int, int]]:
        """The aggressive IOC order that replays an execution: (maker id, lots) per fill."""
        self.engine.place(
            message.ts_ns,
            self.instrument_id,
            TAKER_ACCOUNT,
            self._client_id(),
            _opposite(_side_of(message.direction)),
            message.price,
            size,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.IOC,
        )
        return [
            (int(e["maker_order_id"]), int(e["quantity_lots"]))
            for e in self._drain()
            if e["kind"] == FILLED
        ]

    def _requeue_ahead(self, message: Message, engine_id: int) -> bool:
        """Move out-of-view orders queued ahead of the executed order behind it.

        The executed order was at the head, so they were gone; the level total was right, so
        their quantity is real but sits elsewhere in the level (unseen orders, or the executed
        order itself). Only when every order ahead rested out of view; returns whether any moved.
        """
        key = self.located[engine_id]
        queue = list(self.queues[key])
        ahead = queue[: queue.index(engine_id)]
        if not ahead or not all(order_id in self.suspect for order_id in ahead):
            return False
        moved = 0
        for order_id in ahead:
            moved += self.engine.order(order_id)["leaves_lots"]
            if order_id in self.lobster_ids:
                self.presumed_gone.add(self.lobster_ids[order_id])
            self._set_leaves(message.ts_ns, order_id, 0)
        self.report.out_of_view_lots_requeued += moved
        self.suspect.add(self._place_synthetic(message.ts_ns, key[0], key[1], moved))
        return True

    def _judge_known(self, execution: _Execution) -> None:
        report = self.report
        report.executions_checked += 1
        if execution.exact:
            report.executions_matched += 1
            return
        message, engine_id, others = execution.message, execution.engine_id, execution.others
        gone = not engine_id and message.order_id in self.presumed_gone
        if execution.filled and (engine_id or gone) and all(o in self.suspect for o in others):
            report.executions_explained += 1
            self._presume_gone(others)
            return
        report.note(
            f"message line {message.line}: execution of {message.size} lots on order "
            f"{message.order_id} filled {self._named(execution.makers)} in the engine"
        )
        # Counted once: from here on the filled orders stand for the named one and back.
        self._presume_gone(others)
        if engine_id:
            self.suspect.add(engine_id)

    def _judge_unseen(self, execution: _Execution) -> None:
        report = self.report
        report.executions_on_unseen_orders += 1
        others = execution.others
        if execution.filled and all(o in self.synthetic for o in others):
            report.executions_on_unseen_orders_hit_seeded += 1
        elif execution.filled and all(o in self.synthetic or o in self.suspect for o in others):
            report.executions_on_unseen_orders_explained += 1
            self._presume_gone(others)
        else:
            message = execution.message
            self._unexplained(
                message,
                f"execution of unseen order {message.order_id} "
                f"filled {self._named(execution.makers)}",
            )

    def _named(self, makers: list[tuple[int, int]]) -> str:
        hit = [(self.lobster_ids.get(maker, 0), quantity) for maker, quantity in makers]
        return f"{hit} (LOBSTER ids, 0 = seeded)"

    def _presume_gone(self, engine_ids: list[int]) -> None:
        """Out-of-view orders that absorbed another order's execution: the file may still
        name them, and their quantity is then found among the level's out-of-view orders."""
        for engine_id in engine_ids:
            if engine_id in self.lobster_ids:
                self.presumed_gone.add(self.lobster_ids[engine_id])

    def no_book_change(self, message: Message) -> None:
        """Hidden executions and cross trades leave the visible book as it is."""

    def halt(self, message: Message) -> None:
        # Price -1: trading halted; 0: quoting resumes; 1: trading resumes.
        if message.price == -1:
            reason = self.engine.halt(message.ts_ns, self.instrument_id)
        else:
            reason = self.engine.resume(message.ts_ns, self.instrument_id)
        self._drain()
        if reason:
            self._unexplained(message, f"halt or resume refused: {Reason(reason).name}")

    handlers: dict[int, Callable[[_Replay, Message], None]] = {
        NEW_ORDER: new_order,
        PARTIAL_CANCEL: partial_cancel,
        DELETE: delete,
        EXECUTION: execution,
        HIDDEN_EXECUTION: no_book_change,
        CROSS_TRADE: no_book_change,
        HALT: halt,
    }

    # -- book check --

    def _engine_side(self, side: int, worst: int | None) -> dict[int, int]:
        """The engine's levels on one side down to `worst` (None: the whole side)."""
        wanted = self.levels + 8
        while True:
            bids, asks = self.engine.depth(self.instrument_id, wanted)
            rows = bids if side == BUY else asks
            if len(rows) < wanted or (worst is not None and _beyond(side, rows[-1][0], worst)):
                break
            wanted *= 4
        return {p: q for p, q, _ in rows if worst is None or not _beyond(side, p, worst)}

    def check_row(self, message: Message, row: BookRow) -> None:
        report = self.report
        report.book_rows_checked += 1
        explained = unexplained = 0
        for side, shown in ((BUY, row.bids), (SELL, row.asks)):
            worst = shown[-1][0] if len(shown) == self.levels else None
            engine_levels = self._engine_side(side, worst)
            file_levels = dict(shown)
            for price in sorted(set(engine_levels) | set(file_levels)):
                have, want = engine_levels.get(price, 0), file_levels.get(price, 0)
                if have == want:
                    continue
                if self._came_into_view(side, price):
                    explained += 1
                else:
                    unexplained += 1
                    report.note(
                        f"orderbook line {row.line}: {Side(side).name} {price} holds "
                        f"{have} lots in the engine, {want} in the file"
                    )
                # Set the level to the row either way, so that one fault is counted once.
                self._reconcile(message.ts_ns, side, price, want - have)
            self._hide_beyond(side, worst)
        self._check_best(row)
        report.mismatches_explained += explained
        report.mismatches_unexplained += unexplained
        if unexplained:
            report.book_rows_unexplained += 1
        elif explained:
            report.book_rows_explained += 1
        else:
            report.book_rows_matched += 1

    def _came_into_view(self, side: int, price: int) -> bool:
        """True when the previous row could not see `price` (it lay beyond its last level)."""
        worst = self.visible_worst[side]
        return worst is not None and _beyond(side, price, worst)

    def _hide_beyond(self, side: int, worst: int | None) -> None:
        """Mark the orders of levels that just went out of view: from now on they may change
        without a message."""
        before = self.visible_worst[side]
        self.visible_worst[side] = worst
        if worst is None or (before is not None and not _beyond(side, before, worst)):
            return
        for price in self._engine_side(side, before):
            if _beyond(side, price, worst):
                for order_id in self.queues.get((side, price), {}):
                    if order_id not in self.suspect:
                        self.suspect.add(order_id)
                        self.report.orders_rested_out_of_view += 1

    def _check_best(self, row: BookRow) -> None:
        bid, _, ask, _ = self.engine.bbo(self.instrument_id)
        if bid and ask and bid >= ask:
            self.report.engine_book_crossed_rows += 1
            self.report.note(f"orderbook line {row.line}: engine book crossed {bid} >= {ask}")
        self.report.best_prices_checked += 1
        want_bid = row.bids[0][0] if row.bids else 0
        want_ask = row.asks[0][0] if row.asks else 0
        if (bid, ask) == (want_bid, want_ask):
            self.report.best_prices_matched += 1

    def _reconcile(self, ts_ns: int, side: int, price: int, change: int) -> None:
        if change > 0:
            self._place_synthetic(ts_ns, side, price, change)
            self.report.hidden_depth_orders_seeded += 1
            self.report.hidden_depth_lots_seeded += change
            return
        self.report.hidden_depth_lots_trimmed -= change
        # A level that comes into view holds only orders that rested out of view; seeded ones
        # go first (nothing vouches for them), then the newest. Anything else (after an
        # unexplained mismatch) is trimmed too, so that the next rows compare cleanly.
        key = (side, price)
        left = self._take(ts_ns, key, -change, lambda o: o in self.synthetic and o in self.suspect)
        left = self._take(ts_ns, key, left, self.suspect.__contains__)
        self._take(ts_ns, key, left, lambda order_id: True)


def replay_lobster(
    message_path: str | Path,
    book_path: str | Path,
    *,
    engine_factory: EngineFactory | None = None,
    engine_name: str = "core",
    progress: ProgressFn | None = None,
) -> LobsterReport:
    """Replay a LOBSTER message file and check it against its orderbook file.

    Parameters
    ----------
    message_path, book_path : path
        The two LOBSTER files of one day and one depth.
    engine_factory : callable, optional
        Returns a fresh engine (the Cython core by default).
    engine_name : str
        Name recorded in the report.
    progress : callable, optional
        Called as progress(events_done, events_total) every few thousand events.

    Raises
    ------
    ReplayInputError
        A file is missing or a row is malformed (the message names the file and line).
    """
    started_ns = monotonic_ns()
    message_path, book_path = Path(message_path), Path(book_path)
    messages, rows, levels = read_lobster(message_path, book_path)
    report = LobsterReport(
        message_file=str(message_path),
        orderbook_file=str(book_path),
        levels=levels,
        engine=engine_name,
    )
    engine = (engine_factory or core_engine)()
    replay = _Replay(engine, report, levels, sweep_continuations(messages))
    increment = _price_increment(messages, rows)
    price_min, price_max = _price_band(messages, rows, increment, engine.limits.price_levels_max)
    reason = engine.add_instrument(
        replay.instrument_id,
        price_increment_ticks=increment,
        quantity_increment_lots=1,
        quantity_min_lots=1,
        quantity_max_lots=QUANTITY_MAX_LOTS,
        notional_min=0,
        price_min_ticks=price_min,
        price_max_ticks=price_max,
    )
    if reason:
        raise RuntimeError(f"engine refused the replay instrument: {Reason(reason).name}")
    engine.drain_events()
    report.price_increment_ticks = increment
    replay.seed(messages[0], rows[0])
    for message, row in _with_progress(messages, rows, progress):
        kind = str(message.kind)
        report.events_by_type[kind] = report.events_by_type.get(kind, 0) + 1
        report.events += 1
        replay.apply(message)
        replay.check_row(message, row)
    report.elapsed_ms = (monotonic_ns() - started_ns) // 1_000_000
    return report


def _with_progress(
    messages: list[Message], rows: list[BookRow], progress: ProgressFn | None
) -> Iterator[tuple[Message, BookRow]]:
    total = len(messages)
    for index, pair in enumerate(zip(messages, rows, strict=True)):
        if progress is not None and index % PROGRESS_EVERY == 0:
            progress(index, total)
        yield pair
    if progress is not None:
        progress(total, total)


__all__ = ["LobsterReport", "ReplayInputError", "parse_time_ns", "read_lobster", "replay_lobster"]
