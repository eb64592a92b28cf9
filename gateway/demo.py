"""`clearline demo`: market makers and takers trading on a running exchange, shown live.

    clearline demo [--config PATH] [--duration-s N] [--rate ORDERS_PER_S] [--json]

Finds the exchange through the client config that `clearline run` writes (as clearctl does)
and drives it through the gateway, as outside clients would:

1. Makers (keys maker-1, maker-2) each keep a two-sided ladder of `ladder_levels` GTC quotes
   per instrument around a mid that drifts at random, over one Trade stream each. Every
   `quote_cycle_s` they requote each instrument in one CommandBatch: every other cycle cancel
   and replace (the cancels first, then the new ladder as one PlaceColumns block in ticks and
   lots), in between an amend of each live quote to its new price.
2. Takers (keys taker-1..taker-4) send `rate` orders a second in all, paced (open loop), each
   an IOC limit order that sweeps at most the ladder or a market order, buy or sell at random;
   every second one goes as a unary PlaceOrder, the others as one-order batches on the
   taker's Trade stream.
3. A StreamBook subscription to BTC-USDT counts updates and checks their sequence: a gap
   (sequence != last + 1) is counted and the stream subscribed again for a new snapshot.

One status line on stderr (rewritten 4 times a second on a terminal, else one line every
`status_line_every_s`): elapsed time, orders sent, acks, fills, rejects by reason, order-to-ack
latency p50 / p99, orders a second, market data. Ctrl-C or ``--duration-s`` ends the run with a
summary (a JSON-able dict, printed as a small table on stdout, or with ``--json`` as one JSON
object for scripts).

Prices and quantities are whole ticks and lots, turned into decimal text exactly
(`gateway.convert.units_text`); no float ever touches one.

Exit status: 0 done; 2 no client config, or no demo market on the exchange; 3 the gateway
cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import grpc

from gateway import client_config
from gateway._proto.clearline.v1 import (
    account_pb2,
    account_pb2_grpc,
    market_data_pb2,
    market_data_pb2_grpc,
    order_entry_pb2,
    order_entry_pb2_grpc,
    types_pb2,
)
from gateway.convert import units_text

EXIT_OK = 0
EXIT_BAD_CONFIG = 2
EXIT_UNREACHABLE = 3

MAKER_KEYS = ("maker-1", "maker-2")
TAKER_KEYS = ("taker-1", "taker-2", "taker-3", "taker-4")
BOOK_INSTRUMENT = "BTC-USDT"


@dataclass(frozen=True)
class MarketPlan:
    """How the demo trades one instrument, in its ticks and lots."""

    symbol: str
    mid_ticks_default: int  # where quoting starts on an empty book
    half_spread_ticks: int  # from the mid to each maker's best quote
    level_step_ticks: int  # between two levels of a ladder
    quote_lots: int  # each quote's size
    taker_lots_max: int  # a taker order is 1..max of these
    drift_ticks_max: int  # the mid moves at most this much per cycle


# Drift at most half the half-spread a cycle: a maker's new quotes never cross its own, or the
# other maker's, still resting from the cycle before (that would need a move of 2 half-spreads).
PLANS = (
    # BTC-USDT: tick 0.1, lot 0.0001. Mid 30000, best quotes 1 USDT away, 0.5 USDT apart.
    MarketPlan("BTC-USDT", 300_000, 10, 5, 100, 50, 5),
    # ETH-USDT: tick 0.01, lot 0.001. Mid 2000, best quotes 0.1 USDT away.
    MarketPlan("ETH-USDT", 200_000, 10, 5, 1_000, 500, 5),
)

# Quotes per side per instrument per maker.
ladder_levels = 5
# A maker requotes each instrument this often.
quote_cycle_s = 0.25
# Waiting for the gateway at start: longer than a local connect takes, short enough that a
# person who forgot `clearline run` hears about it at once.
connect_wait_s = 5.0
# A call not answered in this long counts as failed (the gateway's own engine timeout is 10 s).
call_timeout_s = 15.0
# Taker orders outstanding before the pacer skips one (counted): a slow exchange then shows
# as skipped orders and latency, not as an ever-growing backlog.
taker_in_flight_max = 256
# The pacer's period: orders due since its last wake-up go out together.
pacer_period_s = 0.01
# Status line: refreshed this often on a terminal, else printed this often.
status_refresh_s = 0.25
status_line_every_s = 5.0
# Recent ack latencies the live p50 / p99 are computed over.
live_latency_samples_max = 5_000
# Latencies kept for the summary: a long demo keeps a uniform sample of this many.
summary_latency_samples_max = 200_000
# A broken stream (gateway restarted, rate limit) is opened again after this pause.
reconnect_pause_s = 1.0

# Rejects that are part of normal trading here, with why they happen.
EXPECTED_REJECTS = {
    "order_must_exist": "a quote was filled (or cancelled) before the maker's amend or cancel "
    "of it arrived: the maker learns of the fill on its stream a moment later",
}

_ACK_KINDS = frozenset({types_pb2.EVENT_KIND_ACCEPTED, types_pb2.EVENT_KIND_REJECTED})
_DONE_STATUSES = frozenset({types_pb2.ORDER_STATUS_FILLED, types_pb2.ORDER_STATUS_CANCELLED})


class Unreachable(Exception):
    """The gateway did not answer at start."""


# -- NUMBERS --


@dataclass(frozen=True)
class Units:
    """An instrument's tick and lot sizes, from ListInstruments (decimal text, exact)."""

    tick_size: Decimal
    lot_size: Decimal

    def price(self, ticks: int) -> str:
        return units_text(ticks, self.tick_size)

    def quantity(self, lots: int) -> str:
        return units_text(lots, self.lot_size)

    def ticks(self, price: str) -> int:
        return int(Decimal(price) / self.tick_size)


# -- STATISTICS --


@dataclass
class Stats:
    """What the demo has sent and seen; the status line and the summary read it."""

    started: float = field(default_factory=time.monotonic)
    orders_sent: int = 0  # places, makers' and takers'
    acks: int = 0  # places answered ACCEPTED or REJECTED
    fills: int = 0  # trades, counted once each (the taker's FILLED report)
    maker_fills: int = 0  # FILLED reports of resting quotes, on the makers' streams
    amends: int = 0
    cancels: int = 0
    rejects: Counter[str] = field(default_factory=Counter)  # by reason name, every command
    call_errors: Counter[str] = field(default_factory=Counter)  # by gRPC status code name
    taker_orders_skipped: int = 0
    book_snapshots: int = 0
    book_updates: int = 0
    book_gaps: int = 0
    book_resubscribes: int = 0
    _recent_ns: deque[int] = field(default_factory=lambda: deque(maxlen=live_latency_samples_max))
    _all_ns: list[int] = field(default_factory=list)
    _latencies_seen: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def acknowledged(self, latency_ns: int) -> None:
        self.acks += 1
        self._recent_ns.append(latency_ns)
        self._latencies_seen += 1
        # Reservoir sampling: a uniform sample of every latency, in bounded memory.
        if len(self._all_ns) < summary_latency_samples_max:
            self._all_ns.append(latency_ns)
        else:
            slot = self._rng.randrange(self._latencies_seen)
            if slot < summary_latency_samples_max:
                self._all_ns[slot] = latency_ns

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def latency_ms(self, recent: bool) -> dict[str, float]:
        samples = sorted(self._recent_ns if recent else self._all_ns)
        if not samples:
            return {}

        def pick(q: float) -> float:
            return round(samples[min(len(samples) - 1, int(q * len(samples)))] / 1e6, 3)

        return {"p50": pick(0.5), "p99": pick(0.99)}

    def line(self) -> str:
        elapsed = self.elapsed_s()
        latency = self.latency_ms(recent=True)
        rejects = ", ".join(f"{name} {n:,}" for name, n in self.rejects.most_common()) or "none"
        errors = "".join(f", {code} {n:,}" for code, n in self.call_errors.most_common())
        per_s = self.orders_sent / max(elapsed, 1e-9)
        return (
            f"{elapsed:6.1f}s  orders {self.orders_sent:,} ({per_s:,.0f}/s)"
            f"  acks {self.acks:,}  fills {self.fills:,}  rejects: {rejects}{errors}"
            f"  ack p50 {latency.get('p50', 0):.1f} ms p99 {latency.get('p99', 0):.1f} ms"
            f"  book {self.book_updates:,} updates {self.book_gaps} gaps"
        )

    def summary(self, gateway: str, rate: int, seed: int) -> dict[str, Any]:
        elapsed = self.elapsed_s()
        return {
            "gateway": gateway,
            "elapsed_s": round(elapsed, 2),
            "taker_rate_per_s": rate,
            "seed": seed,
            "orders_sent": self.orders_sent,
            "orders_per_s": round(self.orders_sent / max(elapsed, 1e-9), 1),
            "acks": self.acks,
            "fills": self.fills,
            "maker_fills": self.maker_fills,
            "amends": self.amends,
            "cancels": self.cancels,
            "rejects": dict(self.rejects),
            "unexpected_rejects": {
                name: n for name, n in self.rejects.items() if name not in EXPECTED_REJECTS
            },
            "call_errors": dict(self.call_errors),
            "taker_orders_skipped": self.taker_orders_skipped,
            "ack_latency_ms": self.latency_ms(recent=False) | {"samples": self._latencies_seen},
            "market_data": {
                "instrument": BOOK_INSTRUMENT,
                "snapshots": self.book_snapshots,
                "updates": self.book_updates,
                "gaps": self.book_gaps,
                "resubscribes": self.book_resubscribes,
            },
        }

    def count_reports(self, reports: Iterable[order_entry_pb2.ExecutionReport]) -> None:
        for report in reports:
            if report.kind == types_pb2.EVENT_KIND_REJECTED:
                self.rejects[report.reason_name] += 1
            elif report.kind == types_pb2.EVENT_KIND_FILLED and not report.maker:
                self.fills += 1


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as aligned ``name  value`` lines (nested dicts flattened with dots)."""
    rows: list[tuple[str, str]] = []

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                add(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, dict):
            rows.append((prefix, "none"))
        elif isinstance(value, int) and not prefix.endswith("seed"):
            rows.append((prefix, f"{value:,}"))
        else:
            rows.append((prefix, str(value)))

    add("", summary)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


# -- THE TRADE STREAM --


class TradeStream:
    """One key's Trade stream: `send` a batch and await its ReportBatch; reports about the
    account's other orders (batch_id 0) go to ``on_unsolicited``. Opened again after a break."""

    def __init__(
        self,
        stub: order_entry_pb2_grpc.OrderEntryStub,
        metadata: tuple[tuple[str, str], ...],
        stats: Stats,
        on_unsolicited: Callable[[order_entry_pb2.ReportBatch], None] | None = None,
    ) -> None:
        self._stub, self._metadata, self._stats = stub, metadata, stats
        self._on_unsolicited = on_unsolicited
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[order_entry_pb2.ReportBatch]] = {}
        self._batch_ids = 0
        self._broken_at = 0.0

    def _open(self) -> None:
        self._call = self._stub.Trade(metadata=self._metadata)
        self._reader = asyncio.get_running_loop().create_task(self._read(self._call))

    async def _read(self, call: Any) -> None:
        try:
            while True:
                batch = await call.read()
                if batch is grpc.aio.EOF:
                    break
                future = self._pending.pop(batch.batch_id, None)
                if future is not None and not future.done():
                    future.set_result(batch)
                elif batch.batch_id == 0 and self._on_unsolicited is not None:
                    self._on_unsolicited(batch)
        except grpc.aio.AioRpcError as exc:
            self._stats.call_errors[exc.code().name] += 1
        finally:
            self._broken(call)

    def _broken(self, call: Any) -> None:
        if call is not self._call:
            return
        self._call = None
        self._broken_at = time.monotonic()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the Trade stream ended"))
        self._pending.clear()

    async def send(
        self,
        commands: Sequence[order_entry_pb2.Command],
        places: order_entry_pb2.PlaceColumns | None = None,
    ) -> order_entry_pb2.ReportBatch:
        """Send one batch (``places`` after ``commands``); its ReportBatch. Raises
        ConnectionError when the stream is down."""
        if self._call is None:
            if time.monotonic() - self._broken_at < reconnect_pause_s:
                raise ConnectionError("the Trade stream is reconnecting")
            self._open()
        self._batch_ids += 1
        batch_id = self._batch_ids
        future: asyncio.Future[order_entry_pb2.ReportBatch] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[batch_id] = future
        call = self._call
        try:
            batch = order_entry_pb2.CommandBatch(
                batch_id=batch_id, commands=commands, places=places
            )
            await call.write(batch)
            return await asyncio.wait_for(future, call_timeout_s)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            self._broken(call)
            raise ConnectionError(f"the Trade stream broke: {exc}") from exc
        except TimeoutError:
            self._pending.pop(batch_id, None)
            self._stats.call_errors["DEADLINE_EXCEEDED"] += 1
            raise ConnectionError("no ReportBatch in time") from None

    async def close(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            with contextlib.suppress(Exception):
                await call.done_writing()
            call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


def _place(
    client_order_id: int,
    symbol: str,
    side: types_pb2.Side,
    quantity: str,
    price: str = "",
    time_in_force: types_pb2.TimeInForce = types_pb2.TIME_IN_FORCE_GTC,
) -> order_entry_pb2.PlaceOrderRequest:
    """A place request; no price: a market order (IOC). The client order id must be unique
    among the account's open orders (0 is an id like any other)."""
    market = not price
    return order_entry_pb2.PlaceOrderRequest(
        instrument=symbol,
        side=side,
        order_type=types_pb2.ORDER_TYPE_MARKET if market else types_pb2.ORDER_TYPE_LIMIT,
        time_in_force=types_pb2.TIME_IN_FORCE_IOC if market else time_in_force,
        price=price,
        quantity=quantity,
        client_order_id=client_order_id,
    )


# -- THE PARTICIPANTS --


@dataclass
class Market:
    plan: MarketPlan
    units: Units
    mid_ticks: int


@dataclass
class Quote:
    order_id: int
    side: types_pb2.Side
    level: int
    price_ticks: int


class Maker:
    """One market maker: a ladder per instrument, requoted each cycle in one batch."""

    def __init__(
        self,
        name: str,
        index: int,
        stream_factory: Callable[[Callable[[order_entry_pb2.ReportBatch], None]], TradeStream],
        markets: list[Market],
        stats: Stats,
        next_id: Callable[[], int],
    ) -> None:
        self.name = name
        self._next_id = next_id
        self._offset_ticks = index  # the two makers quote one tick apart: two ladders, not one
        self._markets = markets
        self._stats = stats
        self._quotes: dict[str, dict[int, Quote]] = {m.plan.symbol: {} for m in markets}
        self._cycle = 0
        self.stream = stream_factory(self._on_unsolicited)

    def _on_unsolicited(self, batch: order_entry_pb2.ReportBatch) -> None:
        """Fills and cancels of resting quotes: a quote that is done is not amended again."""
        for report in batch.reports:
            if report.kind == types_pb2.EVENT_KIND_FILLED and report.maker:
                self._stats.maker_fills += 1
            if report.status in _DONE_STATUSES:
                self._quotes.get(report.instrument, {}).pop(report.order_id, None)

    def _ladder(self, market: Market) -> list[tuple[types_pb2.Side, int, int]]:
        """(side, level, price ticks) of every quote around the market's mid."""
        plan = market.plan
        quotes = []
        for level in range(ladder_levels):
            away = plan.half_spread_ticks + self._offset_ticks + level * plan.level_step_ticks
            quotes.append((types_pb2.SIDE_BUY, level, market.mid_ticks - away))
            quotes.append((types_pb2.SIDE_SELL, level, market.mid_ticks + away))
        return quotes

    def _commands(self, market: Market, amend: bool) -> tuple[
        list[order_entry_pb2.Command],
        order_entry_pb2.PlaceColumns | None,
        list[tuple[types_pb2.Side, int, int] | None],
    ]:  # fmt: skip
        """The batch for one instrument: its amends or cancels as commands, its new quotes as
        one PlaceColumns block after them (as a market maker quotes); and, per command index,
        the (side, level, price ticks) that a place quotes (None for an amend or a cancel)."""
        symbol, units = market.plan.symbol, market.units
        live = self._quotes[symbol]
        size = units.quantity(market.plan.quote_lots)
        commands: list[order_entry_pb2.Command] = []
        placed: list[tuple[types_pb2.Side, int, int] | None] = []
        targets = {(side, level): ticks for side, level, ticks in self._ladder(market)}
        if amend and live:
            for quote in live.values():
                ticks = targets.pop((quote.side, quote.level))
                if ticks == quote.price_ticks:
                    continue  # the same price: an amend would be amend_must_change_order
                quote.price_ticks = ticks
                request = order_entry_pb2.AmendOrderRequest(
                    order_id=quote.order_id, price=units.price(ticks), quantity=size
                )
                commands.append(order_entry_pb2.Command(amend=request))
                placed.append(None)
        else:
            for quote in live.values():
                cancel = order_entry_pb2.CancelOrderRequest(order_id=quote.order_id)
                commands.append(order_entry_pb2.Command(cancel=cancel))
                placed.append(None)
            live.clear()
        # Levels with no live quote (filled, or all of them after the cancels) get a new one.
        if not targets:
            return commands, None, placed
        block = order_entry_pb2.PlaceColumns(
            instrument=symbol,
            order_type=types_pb2.ORDER_TYPE_LIMIT,
            time_in_force=types_pb2.TIME_IN_FORCE_GTC,
        )
        for (side, level), ticks in targets.items():
            block.sides.append(side)
            block.price_ticks.append(ticks)
            block.quantity_lots.append(market.plan.quote_lots)
            block.client_order_ids.append(self._next_id())
            placed.append((side, level, ticks))
        return commands, block, placed

    async def requote(self) -> None:
        """One cycle: a batch per instrument (amends on odd cycles, else cancel/replace)."""
        self._cycle += 1
        for market in self._markets:
            commands, block, placed = self._commands(market, amend=self._cycle % 2 == 1)
            if not commands and block is None:
                continue
            places = sum(1 for p in placed if p is not None)
            self._stats.orders_sent += places
            self._stats.amends += sum(1 for c in commands if c.HasField("amend"))
            self._stats.cancels += sum(1 for c in commands if c.HasField("cancel"))
            sent_ns = time.perf_counter_ns()
            try:
                reply = await self.stream.send(commands, block)
            except ConnectionError:
                continue
            latency_ns = time.perf_counter_ns() - sent_ns
            self._stats.count_reports(reply.reports)
            live = self._quotes[market.plan.symbol]
            for report in reply.reports:
                spot = placed[report.command_index] if report.command_index < len(placed) else None
                if spot is not None and report.kind in _ACK_KINDS:
                    self._stats.acknowledged(latency_ns)
                    if report.kind == types_pb2.EVENT_KIND_ACCEPTED:
                        live[report.order_id] = Quote(report.order_id, *spot)
                elif spot is None and report.kind == types_pb2.EVENT_KIND_REJECTED:
                    # An amend of a quote that is gone: forget it, the next cycle replaces it.
                    command = commands[report.command_index]
                    if command.HasField("amend"):
                        live.pop(command.amend.order_id, None)
            for report in reply.reports:
                if report.status in _DONE_STATUSES:
                    live.pop(report.order_id, None)


class Takers:
    """Taker orders at ``rate`` a second in all, open loop, round robin over the taker keys."""

    def __init__(
        self,
        stub: order_entry_pb2_grpc.OrderEntryStub,
        metadata: dict[str, tuple[tuple[str, str], ...]],
        streams: dict[str, TradeStream],
        markets: list[Market],
        stats: Stats,
        rng: random.Random,
        next_id: Callable[[], int],
    ) -> None:
        self._next_id = next_id
        self._stub, self._metadata, self._streams = stub, metadata, streams
        self._markets, self._stats, self._rng = markets, stats, rng
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._sent = 0

    def _order(self) -> order_entry_pb2.PlaceOrderRequest:
        market = self._rng.choice(self._markets)
        plan, units = market.plan, market.units
        side = self._rng.choice((types_pb2.SIDE_BUY, types_pb2.SIDE_SELL))
        quantity = units.quantity(self._rng.randint(1, plan.taker_lots_max))
        if self._rng.random() < 0.25:
            return _place(self._next_id(), plan.symbol, side, quantity)  # market order (IOC)
        # Far enough to sweep the whole ladder, never further.
        reach = plan.half_spread_ticks + 1 + (ladder_levels - 1) * plan.level_step_ticks
        ticks = market.mid_ticks + reach if side == types_pb2.SIDE_BUY else market.mid_ticks - reach
        price = units.price(ticks)
        return _place(
            self._next_id(), plan.symbol, side, quantity, price, types_pb2.TIME_IN_FORCE_IOC
        )

    async def _send(self, n: int) -> None:
        name = TAKER_KEYS[n % len(TAKER_KEYS)]
        request = self._order()
        self._stats.orders_sent += 1
        sent_ns = time.perf_counter_ns()
        try:
            if n % 2 == 0:
                reply = await self._stub.PlaceOrder(
                    request, metadata=self._metadata[name], timeout=call_timeout_s
                )
            else:
                reply = await self._streams[name].send([order_entry_pb2.Command(place=request)])
        except grpc.aio.AioRpcError as exc:
            self._stats.call_errors[exc.code().name] += 1
            return
        except ConnectionError:
            return
        finally:
            self._in_flight -= 1
        latency_ns = time.perf_counter_ns() - sent_ns
        if any(r.kind in _ACK_KINDS and r.command_index == 0 for r in reply.reports):
            self._stats.acknowledged(latency_ns)
        self._stats.count_reports(reply.reports)

    async def run(self, rate: int, stop: asyncio.Event) -> None:
        started = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            while self._sent < due:
                self._sent += 1
                if self._in_flight >= taker_in_flight_max:
                    self._stats.taker_orders_skipped += 1
                    continue
                self._in_flight += 1
                task = asyncio.get_running_loop().create_task(self._send(self._sent))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pacer_period_s)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=call_timeout_s)


async def watch_book(
    stub: market_data_pb2_grpc.MarketDataStub,
    metadata: tuple[tuple[str, str], ...],
    stats: Stats,
    stop: asyncio.Event,
) -> None:
    """StreamBook on BOOK_INSTRUMENT: count updates; a sequence gap means subscribe again."""
    while not stop.is_set():
        call = stub.StreamBook(
            market_data_pb2.BookRequest(instrument=BOOK_INSTRUMENT), metadata=metadata
        )
        expected = None
        try:
            async for update in call:
                if update.snapshot:
                    stats.book_snapshots += 1
                    expected = update.sequence + 1
                    continue
                if expected is not None and update.sequence != expected:
                    stats.book_gaps += 1
                    break
                stats.book_updates += 1
                expected = update.sequence + 1
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                stats.call_errors[exc.code().name] += 1
        finally:
            call.cancel()
        if stop.is_set():
            return
        stats.book_resubscribes += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), reconnect_pause_s)


async def _keep_quoting(maker: Maker, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        await maker.requote()
        pause = max(0.0, quote_cycle_s - (time.monotonic() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


async def _drift(markets: list[Market], rng: random.Random, stop: asyncio.Event) -> None:
    """Move each mid by a random whole number of ticks every cycle."""
    while not stop.is_set():
        for market in markets:
            step = market.plan.drift_ticks_max
            market.mid_ticks = max(1, market.mid_ticks + rng.randint(-step, step))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), quote_cycle_s)


async def _status_line(stats: Stats, stop: asyncio.Event, err: TextIO) -> None:
    terminal = err.isatty()
    every_s = status_refresh_s if terminal else status_line_every_s
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        line = stats.line()
        err.write(f"\r{line}\x1b[K" if terminal else line + "\n")
        err.flush()
    if terminal:
        err.write("\n")
        err.flush()


# -- SETTING UP --


def _channel(config: client_config.ClientConfig) -> grpc.aio.Channel:
    if config.tls_ca:
        credentials = grpc.ssl_channel_credentials(Path(config.tls_ca).read_bytes())
        return grpc.aio.secure_channel(config.gateway, credentials)
    return grpc.aio.insecure_channel(config.gateway)


def _auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def _markets(channel: grpc.aio.Channel, key: str) -> list[Market]:
    """The demo's instruments that the exchange lists, each with its units and starting mid
    (the middle of its book if it has both sides, else the plan's default)."""
    account = account_pb2_grpc.AccountStub(channel)
    market_data = market_data_pb2_grpc.MarketDataStub(channel)
    listed = await account.ListInstruments(
        account_pb2.ListInstrumentsRequest(), metadata=_auth(key), timeout=call_timeout_s
    )
    by_symbol = {i.symbol: i for i in listed.instruments}
    markets = []
    for plan in PLANS:
        instrument = by_symbol.get(plan.symbol)
        if instrument is None:
            continue
        units = Units(Decimal(instrument.tick_size), Decimal(instrument.lot_size))
        book = await market_data.GetBook(
            market_data_pb2.BookRequest(instrument=plan.symbol, depth=1),
            metadata=_auth(key),
            timeout=call_timeout_s,
        )
        mid = plan.mid_ticks_default
        if book.bids and book.asks:
            mid = (units.ticks(book.bids[0].price) + units.ticks(book.asks[0].price)) // 2
        markets.append(Market(plan, units, mid))
    return markets


async def run_demo(
    config: client_config.ClientConfig,
    duration_s: float,
    rate: int,
    *,
    stop: asyncio.Event | None = None,
    err: TextIO | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Trade until ``stop`` is set or ``duration_s`` (0: no limit) has passed; the summary.

    Raises `Unreachable` when the gateway does not answer within `connect_wait_s`, and
    ValueError when the config lacks a demo key or the exchange lists no demo instrument.
    """
    err = err if err is not None else sys.stderr
    stop = stop if stop is not None else asyncio.Event()
    seed = seed if seed is not None else time.time_ns() % 1_000_000
    missing = [name for name in (*MAKER_KEYS, *TAKER_KEYS) if name not in config.keys]
    if missing:
        raise ValueError(f"the client config has no key for {', '.join(missing)}")
    rng = random.Random(seed)
    async with _channel(config) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), connect_wait_s)
        except TimeoutError:
            raise Unreachable(f"no answer from the gateway at {config.gateway}") from None
        try:
            markets = await _markets(channel, config.keys[TAKER_KEYS[0]])
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unreachable(f"{config.gateway}: {exc.details()}") from None
            raise ValueError(
                f"the gateway refused the demo's first call: {exc.code().name}: {exc.details()}"
            ) from None
        if not markets:
            raise ValueError("the exchange lists none of the demo instruments (BTC-USDT, ETH-USDT)")
        stats = Stats()
        orders = order_entry_pb2_grpc.OrderEntryStub(channel)
        metadata = {name: _auth(config.keys[name]) for name in (*MAKER_KEYS, *TAKER_KEYS)}

        def stream_of(name: str) -> Callable[..., TradeStream]:
            return lambda on_unsolicited=None: TradeStream(
                orders, metadata[name], stats, on_unsolicited
            )

        # Starting at the wall clock in ns: a later run never reuses an id still open (below
        # 2^63 until the year 2262).
        next_id = itertools.count(time.time_ns()).__next__
        makers = [
            Maker(name, index, stream_of(name), markets, stats, next_id)
            for index, name in enumerate(MAKER_KEYS)
        ]
        taker_streams = {name: stream_of(name)() for name in TAKER_KEYS}
        takers = Takers(orders, metadata, taker_streams, markets, stats, rng, next_id)
        book = market_data_pb2_grpc.MarketDataStub(channel)
        book_task = asyncio.create_task(watch_book(book, metadata[TAKER_KEYS[0]], stats, stop))
        tasks = [asyncio.create_task(_status_line(stats, stop, err))]
        for maker in makers:  # quotes first, so the first takers find a book
            await maker.requote()
        tasks += [
            asyncio.create_task(_drift(markets, rng, stop)),
            *(asyncio.create_task(_keep_quoting(maker, stop)) for maker in makers),
            asyncio.create_task(takers.run(rate, stop)),
        ]
        if duration_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
            stop.set()
        else:
            await stop.wait()
        book_task.cancel()  # it waits for the next update, which may never come now
        await asyncio.gather(book_task, *tasks, return_exceptions=True)
        summary = stats.summary(config.gateway, rate, seed)
        # Leave the book as found: the makers' quotes go.
        for name in MAKER_KEYS:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await orders.MassCancel(
                    order_entry_pb2.MassCancelRequest(), metadata=metadata[name], timeout=5.0
                )
        for stream in [*taker_streams.values(), *(m.stream for m in makers)]:
            await stream.close()
    return summary


@dataclass(frozen=True)
class DemoResult:
    exit_status: int
    summary: dict[str, Any] | None


def run(
    config_path: Path | None,
    duration_s: float,
    rate: int,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    as_json: bool = False,
) -> DemoResult:
    """`main` with its summary returned: load the config, trade, print the summary (a table,
    or one JSON object)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        config = client_config.load(config_path)
    except (client_config.ConfigNotFound, ValueError, TypeError) as exc:
        print(f"clearline demo: {exc}", file=err)
        return DemoResult(EXIT_BAD_CONFIG, None)

    async def trade() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                loop.add_signal_handler(sig, stop.set)  # the main thread only
        return await run_demo(config, duration_s, rate, stop=stop, err=err)

    import uvloop

    try:
        summary = uvloop.run(trade())
    except Unreachable as exc:
        print(
            f"clearline demo: cannot reach the gateway: {exc}. Is the exchange running "
            "(`clearline run`), and is the client config the one it wrote?",
            file=err,
        )
        return DemoResult(EXIT_UNREACHABLE, None)
    except ValueError as exc:
        print(f"clearline demo: {exc}", file=err)
        return DemoResult(EXIT_BAD_CONFIG, None)
    print(json.dumps(summary) if as_json else summary_table(summary), file=out)
    return DemoResult(EXIT_OK, summary)


def main(config_path: Path | None, duration_s: int, rate: int, *, as_json: bool = False) -> int:
    """`clearline demo`; returns the exit status (module docstring)."""
    if rate <= 0:
        print("clearline demo: --rate must be positive", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return run(config_path, duration_s, rate, as_json=as_json).exit_status


__all__ = [
    "EXIT_BAD_CONFIG",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXPECTED_REJECTS",
    "DemoResult",
    "main",
    "run",
    "run_demo",
    "summary_table",
]
