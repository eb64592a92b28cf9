"""Replay a Databento market-by-order (MBO) file through the engine and check queue priority.

MBO data names every order: A add, C cancel (of `size` lots), M modify (new price and size),
R clear the book, T trade (the aggressor's summary) and F fill (the resting order that was hit).
T and F do not change the book: the exchange follows each fill with the C or M that removes or
reduces the resting order. The replay keeps its own book of the file's orders and drives the
engine to match it, and:

1. For every F record it sends an aggressive IOC order from a taker account at the fill's price
   for the fill's size: under price-time priority the engine must fill exactly the named order,
   that is, the named order must be at the head of its queue. CME's self-match prevention can
   cancel resting orders ahead of it inside the same exchange event (records up to the one
   flagged F_LAST); when every order ahead of the named one is cancelled later in that event,
   the replay cancels them first and then requires the named order to be hit
   (`fills_explained_by_self_match_prevention`). The fill stays applied, so the C or M that
   follows only has to bring the engine order to the size the file gives.
2. After every event, every price level the event touched must hold the same quantity in the
   engine (as its book deltas report) as in the file, and the engine's book must not cross; at
   the end the engine's full depth must equal the file's book.

A file that starts mid-session (no R clearing the book first) can name orders added before it
starts: those references are counted as unknown and explained by the mid-session start. After an
R the book is complete, and an unknown order is an unexplained inconsistency.

Prices are in 1e-9 units; an instrument's tick is the greatest common divisor of its prices
(ES: 0.25, 250_000_000 units), and engine price ticks are price // tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from time import monotonic_ns
from typing import Any

import databento_dbn as dbn
import zstandard

from engine._codes import EventKind, OrderType, Reason, Side, TimeInForce
from engine._snapshot import decode_state
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

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_CHUNK_BYTES = 1 << 20
# Records between two progress callbacks.
PROGRESS_EVERY = 4096
# Depth asked of the engine for the final whole-book comparison.
DEPTH_ALL_LEVELS = 1 << 30
# Largest client order id the engine's int64 field holds.
CLIENT_ORDER_ID_MAX = (1 << 63) - 1

BUY, SELL = int(Side.BUY), int(Side.SELL)
FILLED, BOOK_DELTA = int(EventKind.FILLED), int(EventKind.BOOK_DELTA)
SIDES = {"B": BUY, "A": SELL}
PRICED_ACTIONS = frozenset("ACMFT")


# -- DECODING --


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ReplayInputError(f"{path}: no such file") from None
    except OSError as error:
        raise ReplayInputError(f"{path}: cannot read: {error}") from None
    with handle:
        compressed = handle.read(4) == ZSTD_MAGIC
        handle.seek(0)
        reader = zstandard.ZstdDecompressor().stream_reader(handle) if compressed else handle
        try:
            while chunk := reader.read(READ_CHUNK_BYTES):
                yield chunk
        except zstandard.ZstdError as error:
            raise ReplayInputError(f"{path}: broken zstd stream: {error}") from None


def read_records(path: Path) -> Iterator[Any]:
    """Every DBN record of a file (zstd or plain), the Metadata first.

    Raises ReplayInputError for a file that is missing, not DBN, or cut off mid-record.
    """
    decoder = dbn.DBNDecoder()
    count = 0
    for chunk in _decompressed_chunks(path):
        try:
            records = decoder.write_and_decode(chunk)
        except (dbn.DBNError, ValueError) as error:
            raise ReplayInputError(
                f"{path}: not a readable DBN stream after record {count}: {error}"
            ) from None
        count += len(records)
        yield from records
    if count == 0:
        raise ReplayInputError(f"{path}: empty, or too short for a DBN header")
    leftover = len(decoder.buffer())
    if leftover:
        raise ReplayInputError(
            f"{path}: truncated: {leftover} bytes after record {count} do not make a whole record"
        )


# -- INSTRUMENTS --


@dataclass(kw_only=True)
class _InstrumentScan:
    tick_units: int = 0  # gcd of every price seen
    low_units: int = 0
    high_units: int = 0
    records: int = 0

    def add(self, price_units: int) -> None:
        if self.tick_units == 0:
            self.low_units = self.high_units = price_units
        self.tick_units = gcd(self.tick_units, price_units)
        self.low_units = min(self.low_units, price_units)
        self.high_units = max(self.high_units, price_units)


@dataclass(frozen=True, kw_only=True)
class _Instrument:
    """How one DBN instrument maps onto one engine instrument."""

    dbn_id: int
    engine_id: int
    symbol: str
    tick_units: int
    offset_ticks: int  # added so the lowest price is at least one tick
    price_min_ticks: int
    price_max_ticks: int

    def ticks(self, price_units: int) -> int:
        return price_units // self.tick_units + self.offset_ticks


def _scan(path: Path) -> tuple[Any, dict[int, _InstrumentScan], int]:
    """First pass: metadata, per-instrument price grid, record count."""
    records = read_records(path)
    metadata = next(records)
    if not isinstance(metadata, dbn.Metadata):
        raise ReplayInputError(f"{path}: the stream does not start with DBN metadata")
    if metadata.schema is not None and metadata.schema != dbn.Schema.MBO:
        raise ReplayInputError(f"{path}: schema {metadata.schema}, expected mbo")
    scans: dict[int, _InstrumentScan] = {}
    count = 0
    for record in records:
        if not isinstance(record, dbn.MBOMsg):
            continue
        count += 1
        scan = scans.setdefault(record.instrument_id, _InstrumentScan())
        scan.records += 1
        if str(record.action) in PRICED_ACTIONS and record.price != dbn.UNDEF_PRICE:
            scan.add(record.price)
    return metadata, scans, count


def _symbols(metadata: Any) -> dict[int, str]:
    """Instrument id -> raw symbol, from the metadata's symbol mappings."""
    names: dict[int, str] = {}
    for raw_symbol, intervals in (metadata.mappings or {}).items():
        for interval in intervals:
            symbol = interval["symbol"] if isinstance(interval, dict) else interval.symbol
            if str(symbol).isdigit():
                names[int(symbol)] = raw_symbol
    return names


def _layout(
    dbn_id: int, engine_id: int, scan: _InstrumentScan, symbol: str, levels_max: int
) -> _Instrument:
    tick = scan.tick_units or 1
    low, high = scan.low_units // tick, scan.high_units // tick
    offset = max(0, 1 - low)
    # Wide: up to twice the highest price; else just the prices the file holds.
    band = (1, 2 * (high + offset))
    if band[1] > levels_max:
        offset = 1 - low
        band = (1, high + offset)
    if band[1] > levels_max:
        raise ReplayInputError(
            f"instrument {dbn_id}: prices span {band[1]} ticks, more than "
            f"the engine's {levels_max} price levels"
        )
    return _Instrument(
        dbn_id=dbn_id,
        engine_id=engine_id,
        symbol=symbol,
        tick_units=tick,
        offset_ticks=offset,
        price_min_ticks=band[0],
        price_max_ticks=band[1],
    )


# -- REPORT --


@dataclass(kw_only=True)
class MboReport:
    file: str
    engine: str
    dataset: str = ""
    records: int = 0  # MBO records
    records_by_action: dict[str, int] = field(default_factory=dict)
    events: int = 0  # exchange events: runs of records ending with F_LAST
    snapshot_records: int = 0
    started_with_snapshot: bool = False
    instruments: list[dict[str, Any]] = field(default_factory=list)
    trades: int = 0
    fills_checked: int = 0  # F records on orders the replay knows
    fills_at_queue_head: int = 0
    fills_explained_by_self_match_prevention: int = 0
    fills_on_unknown_orders: int = 0
    # Mid-session only: fills on orders first seen in a modify, or queued behind one; their
    # place in the queue is unknown, so the fill is left to the C or M that follows.
    fills_with_unknown_queue_position: int = 0
    unknown_order_references: int = 0  # C, M, F naming an order the replay never saw added
    unknown_references_explained_by_mid_session_start: int = 0
    book_checks: int = 0  # events whose touched levels were compared
    book_levels_compared: int = 0
    book_level_mismatches: int = 0
    engine_book_crossed_events: int = 0
    final_book_levels: int = 0
    final_book_matches: bool = False
    unexplained_events: int = 0
    unexplained: list[str] = field(default_factory=list)
    elapsed_ms: int = 0

    @property
    def fills_unexplained(self) -> int:
        return (
            self.fills_checked
            - self.fills_at_queue_head
            - self.fills_explained_by_self_match_prevention
        )

    @property
    def share_at_queue_head_bp(self) -> int:
        """Fills whose named order was at the head of its queue, in basis points."""
        return self.fills_at_queue_head * 10_000 // self.fills_checked if self.fills_checked else 0

    @property
    def ok(self) -> bool:
        return (
            self.fills_unexplained == 0
            and self.unexplained_events == 0
            and self.book_level_mismatches == 0
            and self.engine_book_crossed_events == 0
            and self.final_book_matches
        )

    def note(self, text: str) -> None:
        if len(self.unexplained) < DETAILS_MAX:
            self.unexplained.append(text)

    def to_dict(self) -> dict[str, Any]:
        result = {name: getattr(self, name) for name in self.__dataclass_fields__}
        result["fills_unexplained"] = self.fills_unexplained
        result["share_at_queue_head_bp"] = self.share_at_queue_head_bp
        result["share_at_queue_head"] = _percent(self.share_at_queue_head_bp)
        result["ok"] = self.ok
        return result

    def summary(self) -> str:
        explained = self.unknown_references_explained_by_mid_session_start
        if self.unknown_order_references == 0:
            unknown_note = "none"
        elif explained == self.unknown_order_references:
            unknown_note = "explained: the file starts mid-session, after they were added"
        else:
            unknown_note = f"only {explained} explained by a mid-session start"
        names = ", ".join(
            f"{i['symbol']} (id {i['instrument_id']}, tick {i['tick_units']})"
            for i in self.instruments
        )
        lines = [
            f"MBO replay of {self.file} ({self.dataset}, engine {self.engine})",
            f"  records                {self.records}  by action {self.records_by_action}",
            f"  events                 {self.events}; snapshot records {self.snapshot_records}"
            f" (starts with a snapshot: {'yes' if self.started_with_snapshot else 'no'})",
            f"  instruments            {names}",
            f"  fills checked          {self.fills_checked}: named order at the head of its "
            f"queue {self.fills_at_queue_head} ({_percent(self.share_at_queue_head_bp)}), "
            f"explained by self-match prevention "
            f"{self.fills_explained_by_self_match_prevention}, unexplained "
            f"{self.fills_unexplained}",
            f"  unknown orders         {self.unknown_order_references} references "
            f"({self.fills_on_unknown_orders} fills), {unknown_note}; fills with an unknown "
            f"queue place {self.fills_with_unknown_queue_position}",
            f"  book                   {self.book_checks} events checked, "
            f"{self.book_levels_compared} levels compared, {self.book_level_mismatches} "
            f"mismatches, crossed after {self.engine_book_crossed_events} events; final book "
            f"({self.final_book_levels} levels) "
            f"{'matches' if self.final_book_matches else 'DIFFERS'}",
            f"  unexplained events     {self.unexplained_events}",
            f"  result                 {'OK' if self.ok else 'MISMATCH'} in {self.elapsed_ms} ms",
        ]
        lines += [f"  ! {text}" for text in self.unexplained]
        return "\n".join(lines)


def _percent(basis_points: int) -> str:
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


# -- REPLAY --


@dataclass(slots=True)
class _Order:
    """One order of the file's book, and the engine order that stands for it."""

    side: int
    price_ticks: int
    size: int
    engine_id: int


class _Replay:
    def __init__(self, engine: Any, report: MboReport, instruments: dict[int, _Instrument]) -> None:
        self.engine = engine
        self.report = report
        self.instruments = instruments
        self.orders: dict[tuple[int, int], _Order] = {}  # (dbn instrument, order id) -> order
        self.keys: dict[int, tuple[int, int]] = {}  # engine order id -> (instrument, order id)
        # Aggregate quantity per level, from the file and from the engine's book deltas.
        self.file_levels: dict[tuple[int, int], dict[int, int]] = {}
        self.engine_levels: dict[tuple[int, int], dict[int, int]] = {}
        self.touched: set[tuple[int, int, int]] = set()  # (dbn instrument, side, price ticks)
        self.complete: set[int] = set()  # instruments whose book was cleared by an R record
        # Orders first seen in a modify (file started mid-session): their queue place is unknown.
        self.unplaced: set[tuple[int, int]] = set()
        self.by_engine_id = {i.engine_id: i.dbn_id for i in instruments.values()}
        self.next_taker_id = 0
        self.ts_ns = 0

    # -- engine --

    def _drain(self) -> Any:
        events = self.engine.drain_events()
        if len(events):
            deltas = events[events["kind"] == BOOK_DELTA]
            for engine_instrument, side, price, quantity in zip(
                deltas["instrument_id"].tolist(),
                deltas["side"].tolist(),
                deltas["price_ticks"].tolist(),
                deltas["quantity_lots"].tolist(),
                strict=True,
            ):
                dbn_id = self.by_engine_id[engine_instrument]
                level = self.engine_levels.setdefault((dbn_id, side), {})
                if quantity:
                    level[price] = quantity
                else:
                    level.pop(price, None)
                self.touched.add((dbn_id, side, price))
        return events

    def setup(self) -> None:
        for instrument in self.instruments.values():
            reason = self.engine.add_instrument(
                instrument.engine_id,
                price_increment_ticks=1,
                quantity_increment_lots=1,
                quantity_min_lots=1,
                quantity_max_lots=QUANTITY_MAX_LOTS,
                notional_min=0,
                price_min_ticks=instrument.price_min_ticks,
                price_max_ticks=instrument.price_max_ticks,
            )
            if reason:
                raise RuntimeError(
                    f"engine refused instrument {instrument.dbn_id}: {Reason(reason).name}"
                )
        self._drain()

    def _unexplained(self, record: Any, text: str) -> None:
        self.report.unexplained_events += 1
        self.report.note(
            f"record seq {record.sequence} ts_recv {record.ts_recv} "
            f"{record.action} order {record.order_id}: {text}"
        )

    def _place(self, record: Any, key: tuple[int, int], order: _Order) -> None:
        instrument = self.instruments[key[0]]
        if key[1] > CLIENT_ORDER_ID_MAX:
            raise ReplayInputError(f"order id {key[1]} does not fit the engine's client order id")
        engine_id = self.engine.place(
            self.ts_ns,
            instrument.engine_id,
            MAKER_ACCOUNT,
            key[1],
            order.side,
            order.price_ticks,
            order.size,
        )
        events = self._drain()
        if not engine_id:
            reason = Reason(int(events[-1]["reason"])).name if len(events) else "?"
            self._unexplained(record, f"the engine rejected the order: {reason}")
        elif (events["kind"] == FILLED).any():
            self._unexplained(record, "the order traded on entry: the engine's book crossed it")
        order.engine_id = engine_id
        if engine_id:
            self.keys[engine_id] = key

    def _sync(
        self,
        record: Any,
        key: tuple[int, int],
        order: _Order | None,
        loses_priority: bool,
        engine_id: int,
    ) -> None:
        """Bring the engine order that stands for `key` to the file's state of it.

        The engine may already be there: a fill applied before this C or M did the work.
        """
        current = self.engine.order(engine_id) if engine_id else None
        if order is None:
            if current is not None:
                self._check(record, self.engine.cancel(self.ts_ns, MAKER_ACCOUNT, engine_id))
            return
        if current is None:
            self.keys.pop(engine_id, None)
            self._place(record, key, order)  # the engine filled it away; it rests again
            return
        same_price = current["price_ticks"] == order.price_ticks
        if same_price and current["leaves_lots"] == order.size:
            return
        if same_price and order.size < current["leaves_lots"] and loses_priority:
            # The exchange re-queued it, but an engine amend down keeps the place.
            self._check(record, self.engine.cancel(self.ts_ns, MAKER_ACCOUNT, engine_id))
            self._place(record, key, order)
            return
        price = 0 if same_price else order.price_ticks
        reason = self.engine.amend(self.ts_ns, MAKER_ACCOUNT, engine_id, price, order.size)
        events = self._drain()
        if reason:
            self._unexplained(record, f"the engine refused the amend: {Reason(reason).name}")
        elif (events["kind"] == FILLED).any():
            self._unexplained(record, "the modify traded: the engine's book crossed it")

    def _check(self, record: Any, reason: int) -> None:
        self._drain()
        if reason:
            self._unexplained(record, f"the engine refused: {Reason(reason).name}")

    # -- the file's book --

    def _level_add(self, dbn_id: int, side: int, price: int, quantity: int) -> None:
        level = self.file_levels.setdefault((dbn_id, side), {})
        total = level.get(price, 0) + quantity
        if total:
            level[price] = total
        else:
            del level[price]
        self.touched.add((dbn_id, side, price))

    def _unknown(self, record: Any) -> None:
        report = self.report
        report.unknown_order_references += 1
        if record.instrument_id in self.complete:
            self._unexplained(
                record,
                "names an order the file never added (the book was complete since its clear)",
            )
        else:
            report.unknown_references_explained_by_mid_session_start += 1

    # -- records --

    def add(self, record: Any, event: list[Any], index: int) -> None:
        side = SIDES.get(str(record.side))
        key = (record.instrument_id, record.order_id)
        if side is None:
            self._unexplained(record, f"add with side {record.side}")
            return
        if key in self.orders:
            self._unexplained(record, "add of an order already in the book (applied as modify)")
            self.modify(record, event, index)
            return
        price = self.instruments[record.instrument_id].ticks(record.price)
        order = _Order(side, price, record.size, 0)
        self.orders[key] = order
        self._level_add(record.instrument_id, side, price, record.size)
        self._place(record, key, order)

    def cancel(self, record: Any, event: list[Any], index: int) -> None:
        key = (record.instrument_id, record.order_id)
        order = self.orders.get(key)
        if order is None:
            self._unknown(record)
            return
        taken = min(record.size, order.size)
        if record.size > order.size:
            self._unexplained(record, f"cancels {record.size} lots of an order of {order.size}")
        order.size -= taken
        self._level_add(record.instrument_id, order.side, order.price_ticks, -taken)
        if order.size == 0:
            del self.orders[key]
            self.unplaced.discard(key)
            self._sync(record, key, None, False, order.engine_id)
            self.keys.pop(order.engine_id, None)
        else:
            self._sync(record, key, order, False, order.engine_id)

    def modify(self, record: Any, event: list[Any], index: int) -> None:
        key = (record.instrument_id, record.order_id)
        order = self.orders.get(key)
        if order is None:
            # Databento's convention: a modify of an order not in the book adds it.
            self._unknown(record)
            self.add(record, event, index)
            if key in self.orders:
                self.unplaced.add(key)
            return
        price = self.instruments[record.instrument_id].ticks(record.price)
        loses_priority = price != order.price_ticks or record.size > order.size
        self._level_add(record.instrument_id, order.side, order.price_ticks, -order.size)
        order.price_ticks, order.size = price, record.size
        self._level_add(record.instrument_id, order.side, price, record.size)
        self._sync(record, key, order, loses_priority, order.engine_id)

    def clear(self, record: Any, event: list[Any], index: int) -> None:
        dbn_id = record.instrument_id
        instrument = self.instruments.get(dbn_id)
        if instrument is None:
            return
        for key in [key for key in self.orders if key[0] == dbn_id]:
            order = self.orders.pop(key)
            self.unplaced.discard(key)
            self._level_add(dbn_id, order.side, order.price_ticks, -order.size)
            self.keys.pop(order.engine_id, None)
        self.engine.mass_cancel(self.ts_ns, MAKER_ACCOUNT, instrument.engine_id)
        self._drain()
        self.complete.add(dbn_id)

    def trade(self, record: Any, event: list[Any], index: int) -> None:
        self.report.trades += 1

    def no_change(self, record: Any, event: list[Any], index: int) -> None:
        """N records carry no book change."""

    def fill(self, record: Any, event: list[Any], index: int) -> None:
        key = (record.instrument_id, record.order_id)
        order = self.orders.get(key)
        report = self.report
        if order is None:
            report.fills_on_unknown_orders += 1
            self._unknown(record)
            return
        if self._behind_unplaced(key, order):
            report.fills_with_unknown_queue_position += 1
            return
        report.fills_checked += 1
        price = self.instruments[record.instrument_id].ticks(record.price)
        if price != order.price_ticks or SIDES.get(str(record.side)) != order.side:
            report.note(
                f"fill seq {record.sequence}: order {record.order_id} rests at "
                f"{order.price_ticks}, side {order.side}, the fill says {price}"
            )
            return
        cleared = self._clear_self_matched(record, event, index, order)
        makers = self._take(record, order, price)
        hit_named = all(maker == order.engine_id for maker, _ in makers)
        if hit_named and sum(quantity for _, quantity in makers) == record.size:
            if cleared:
                report.fills_explained_by_self_match_prevention += 1
            else:
                report.fills_at_queue_head += 1
            return
        hit = [(self.keys.get(maker, (0, 0))[1], quantity) for maker, quantity in makers]
        report.note(
            f"fill seq {record.sequence} ts_recv {record.ts_recv}: {record.size} lots "
            f"of order {record.order_id} at {price}; the engine filled {hit}"
        )

    def _behind_unplaced(self, key: tuple[int, int], order: _Order) -> bool:
        """True when the order, or one queued ahead of it, has an unknown queue place."""
        if key in self.unplaced:
            return True
        same_level = {
            self.orders[other].engine_id
            for other in self.unplaced
            if other[0] == key[0]
            and (self.orders[other].side, self.orders[other].price_ticks)
            == (order.side, order.price_ticks)
        }
        return bool(same_level) and bool(same_level & set(self._queue_ahead(key[0], order)))

    def _take(self, record: Any, order: _Order, price: int) -> list[tuple[int, int]]:
        """The aggressive IOC order that replays a fill: (maker engine id, lots) per fill."""
        instrument = self.instruments[record.instrument_id]
        self.next_taker_id += 1
        taker_side = SELL if order.side == BUY else BUY
        self.engine.place(
            self.ts_ns,
            instrument.engine_id,
            TAKER_ACCOUNT,
            self.next_taker_id,
            taker_side,
            price,
            record.size,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.IOC,
        )
        events = self._drain()
        fills = events[events["kind"] == FILLED]
        return list(
            zip(fills["maker_order_id"].tolist(), fills["quantity_lots"].tolist(), strict=True)
        )

    def _clear_self_matched(self, record: Any, event: list[Any], index: int, order: _Order) -> bool:
        """Cancel, ahead of the fill, orders that self-match prevention removed in this event.

        Only when every order queued ahead of the named one is cancelled later in the same
        event; then the exchange cancelled them instead of trading them. Returns whether any.
        """
        later = {
            (r.instrument_id, r.order_id)
            for r in event[index + 1 :]
            if str(r.action) == "C" and r.instrument_id == record.instrument_id
        }
        later.discard((record.instrument_id, record.order_id))
        candidates = {self.orders[k].engine_id for k in later if k in self.orders}
        if not candidates:
            return False
        ahead = self._queue_ahead(record.instrument_id, order)
        if not ahead or not set(ahead) <= candidates:
            return False
        for engine_id in ahead:
            self._check(record, self.engine.cancel(self.ts_ns, MAKER_ACCOUNT, engine_id))
        return True

    def _queue_ahead(self, dbn_id: int, order: _Order) -> list[int]:
        """Engine ids queued ahead of `order` at its level, read from an engine snapshot.

        The engine has no queue query; its snapshot lists each level head to tail. Costly
        (the whole engine), so it is only read when a fill may be explained by self-match
        prevention or may sit behind an order of unknown queue place.
        """
        engine_instrument = self.instruments[dbn_id].engine_id
        rows = decode_state(self.engine.snapshot()).orders
        level = rows[
            (rows["instrument_id"] == engine_instrument)
            & (rows["side"] == order.side)
            & (rows["price_ticks"] == order.price_ticks)
        ]["order_id"].tolist()
        return level[: level.index(order.engine_id)] if order.engine_id in level else []

    handlers = {
        "A": add,
        "C": cancel,
        "M": modify,
        "R": clear,
        "T": trade,
        "F": fill,
        "N": no_change,
    }

    def apply_event(self, event: list[Any]) -> None:
        for index, record in enumerate(event):
            self.ts_ns = max(self.ts_ns, record.ts_recv)
            action = str(record.action)
            handler = self.handlers.get(action)
            if handler is None:
                self._unexplained(record, f"unknown action {action!r}")
                continue
            handler(self, record, event, index)
        self._check_touched()

    # -- book checks --

    def _check_touched(self) -> None:
        report = self.report
        report.book_checks += 1
        instruments: set[int] = set()
        for dbn_id, side, price in sorted(self.touched):
            report.book_levels_compared += 1
            want = self.file_levels.get((dbn_id, side), {}).get(price, 0)
            have = self.engine_levels.get((dbn_id, side), {}).get(price, 0)
            if want != have:
                report.book_level_mismatches += 1
                report.note(
                    f"event {report.events}: instrument {dbn_id} side {side} level "
                    f"{price} holds {have} lots in the engine, {want} in the file"
                )
            instruments.add(dbn_id)
        self.touched.clear()
        for dbn_id in instruments:
            bid, _, ask, _ = self.engine.bbo(self.instruments[dbn_id].engine_id)
            if bid and ask and bid >= ask:
                report.engine_book_crossed_events += 1
                report.note(
                    f"event {report.events}: engine book of {dbn_id} crossed {bid} >= {ask}"
                )

    def check_final_book(self) -> None:
        matches, levels = True, 0
        for dbn_id, instrument in self.instruments.items():
            bids, asks = self.engine.depth(instrument.engine_id, DEPTH_ALL_LEVELS)
            for side, rows in ((BUY, bids), (SELL, asks)):
                engine_side = {price: quantity for price, quantity, _ in rows}
                levels += len(engine_side)
                if engine_side != self.file_levels.get((dbn_id, side), {}):
                    matches = False
                    self.report.note(f"final book of instrument {dbn_id} side {side} differs")
        self.report.final_book_levels = levels
        self.report.final_book_matches = matches


def _events(
    path: Path, report: MboReport, progress: ProgressFn | None, total: int
) -> Iterator[list[Any]]:
    """The file's MBO records grouped into exchange events (each ends with F_LAST)."""
    event: list[Any] = []
    records = read_records(path)
    next(records)  # metadata
    for record in records:
        if not isinstance(record, dbn.MBOMsg):
            continue
        if progress is not None and report.records % PROGRESS_EVERY == 0:
            progress(report.records, total)
        _count(report, record)
        event.append(record)
        if record.flags & dbn.F_LAST:
            yield event
            event = []
    if event:  # a file cut at an event boundary it did not flag: apply what is there
        yield event
    if progress is not None:
        progress(report.records, total)


def _count(report: MboReport, record: Any) -> None:
    action = str(record.action)
    if report.records == 0:
        report.started_with_snapshot = action == "R" and bool(record.flags & dbn.F_SNAPSHOT)
    report.records += 1
    report.records_by_action[action] = report.records_by_action.get(action, 0) + 1
    if record.flags & dbn.F_SNAPSHOT:
        report.snapshot_records += 1


def replay_mbo(
    path: str | Path,
    *,
    engine_factory: EngineFactory | None = None,
    engine_name: str = "core",
    progress: ProgressFn | None = None,
) -> MboReport:
    """Replay a Databento MBO file (DBN, zstd or plain) and check queue priority.

    Parameters
    ----------
    path : path
        The DBN file.
    engine_factory : callable, optional
        Returns a fresh engine (the Cython core by default).
    engine_name : str
        Name recorded in the report.
    progress : callable, optional
        Called as progress(records_done, records_total) every few thousand records.

    Raises
    ------
    ReplayInputError
        The file is missing, not DBN, not market-by-order, or truncated.
    """
    started_ns = monotonic_ns()
    path = Path(path)
    metadata, scans, total = _scan(path)
    report = MboReport(file=str(path), engine=engine_name, dataset=str(metadata.dataset))
    engine = (engine_factory or core_engine)()
    symbols = _symbols(metadata)
    instruments = {
        dbn_id: _layout(
            dbn_id,
            engine_id,
            scan,
            symbols.get(dbn_id, str(dbn_id)),
            engine.limits.price_levels_max,
        )
        for engine_id, (dbn_id, scan) in enumerate(sorted(scans.items()))
    }
    replay = _Replay(engine, report, instruments)
    replay.setup()
    for event in _events(path, report, progress, total):
        report.events += 1
        replay.apply_event(event)
    replay.check_final_book()
    report.instruments = [
        {
            "instrument_id": i.dbn_id,
            "symbol": i.symbol,
            "engine_instrument_id": i.engine_id,
            "tick_units": i.tick_units,
            "records": scans[i.dbn_id].records,
            "orders_resting_at_end": sum(1 for key in replay.orders if key[0] == i.dbn_id),
        }
        for i in instruments.values()
    ]
    report.elapsed_ms = (monotonic_ns() - started_ns) // 1_000_000
    return report


__all__ = ["MboReport", "read_records", "replay_mbo"]
