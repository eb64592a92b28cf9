"""The MarketData service: book snapshots, gap-free book streams, trades and best bid/offer.

A book stream starts listening before it asks the engine for a snapshot, so nothing published
in between is missed: updates that arrive while the snapshot is fetched wait in the stream's
queue, those at or below the snapshot's sequence are dropped, and the rest follow one by one.
If the gateway itself sees a gap (an update lost between the engine and this gateway, or a
client too slow for its queue), the stream sends a fresh snapshot and goes on from there; the
client only ever sees a snapshot followed by contiguous sequences.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from sortedcontainers import SortedDict

from engine._codes import Side
from engine.messages import GetBook, MarketDataUpdate
from gateway._proto.clearline.v1 import market_data_pb2, market_data_pb2_grpc
from gateway.auth import ALL_ROLES
from gateway.context import OVERFLOWED, GatewayContext, abort
from gateway.convert import (
    InstrumentInfo,
    bbo_proto,
    book_snapshot_proto,
    book_update_proto,
    trade_protos,
)

log = logging.getLogger(__name__)


class _BookFeed:
    """One instrument's book as a snapshot (a GetBook result dict) then MarketDataUpdates with
    contiguous sequences; after a gap, another snapshot. `resync` asks for one early."""

    def __init__(
        self,
        context: GatewayContext,
        instrument: InstrumentInfo,
        depth: int,
        call: grpc.aio.ServicerContext,
    ) -> None:
        self._ctx = context
        self._instrument = instrument
        self._depth = depth
        self._call = call
        self._resync = False

    def resync(self) -> None:
        self._resync = True

    async def __aiter__(self) -> AsyncIterator[dict[str, Any] | MarketDataUpdate]:
        hub, instrument_id = self._ctx.market_data, self._instrument.instrument_id
        subscriber = hub.subscribe(instrument_id)  # before the snapshot: nothing falls between
        try:
            while True:
                book = await _book(self._ctx, self._instrument, self._depth, self._call)
                self._resync = False
                yield book
                expected = book["sequence"] + 1
                while not self._resync:
                    item = await subscriber.get()
                    if item is OVERFLOWED:
                        log.warning("book stream of %s fell behind", self._instrument.symbol)
                        break
                    if item.sequence < expected:
                        continue  # covered by the snapshot
                    if item.sequence > expected:
                        log.warning(
                            "market data gap on %s: expected %d, got %d; resnapshotting",
                            self._instrument.symbol,
                            expected,
                            item.sequence,
                        )
                        break
                    yield item
                    expected += 1
        finally:
            hub.unsubscribe(instrument_id, subscriber)


async def _book(
    context: GatewayContext,
    instrument: InstrumentInfo,
    depth: int,
    call: grpc.aio.ServicerContext,
) -> dict[str, Any]:
    reply = await context.query(call, GetBook(instrument_id=instrument.instrument_id, depth=depth))
    if not reply.ok:
        await abort(call, grpc.StatusCode.NOT_FOUND, f"{instrument.symbol}: {reply.error}")
    result: dict[str, Any] = reply.result
    return result


class MarketDataServicer(market_data_pb2_grpc.MarketDataServicer):
    def __init__(self, context: GatewayContext) -> None:
        self._ctx = context

    async def _instrument(self, symbol: str, call: grpc.aio.ServicerContext) -> InstrumentInfo:
        await self._ctx.authorize(call, ALL_ROLES)
        instrument = self._ctx.catalog.get(symbol)
        if instrument is None:
            await abort(
                call,
                grpc.StatusCode.NOT_FOUND,
                f"instrument_must_be_known (1001): {symbol!r}",
                (("clearline-reason", "1001"),),
            )
        return instrument

    def _depth(self, depth: int) -> int:
        default = self._ctx.limits.book_depth_default
        return default if depth == 0 else min(depth, default)

    async def GetBook(
        self, request: market_data_pb2.BookRequest, context: grpc.aio.ServicerContext
    ) -> market_data_pb2.BookUpdate:
        instrument = await self._instrument(request.instrument, context)
        book = await _book(self._ctx, instrument, self._depth(request.depth), context)
        return book_snapshot_proto(book, instrument)

    async def StreamBook(
        self, request: market_data_pb2.BookRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[market_data_pb2.BookUpdate]:
        instrument = await self._instrument(request.instrument, context)
        status = 0
        async for item in _BookFeed(self._ctx, instrument, self._depth(request.depth), context):
            if isinstance(item, dict):
                status = item["status"]
                yield book_snapshot_proto(item, instrument)
            else:
                status = item.status or status
                yield book_update_proto(item, instrument, status)

    async def StreamTrades(
        self, request: market_data_pb2.InstrumentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[market_data_pb2.Trade]:
        instrument = await self._instrument(request.instrument, context)
        hub = self._ctx.market_data
        subscriber = hub.subscribe(instrument.instrument_id)
        try:
            while True:
                item = await subscriber.get()
                if item is OVERFLOWED:
                    await abort(
                        context,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "the trade stream fell too far behind; reconnect",
                    )
                for trade in trade_protos(item, instrument):
                    yield trade
        finally:
            hub.unsubscribe(instrument.instrument_id, subscriber)

    async def StreamBbo(
        self, request: market_data_pb2.InstrumentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[market_data_pb2.Bbo]:
        """Best bid and offer, each time either changes, from a book the gateway keeps."""
        instrument = await self._instrument(request.instrument, context)
        depth = self._ctx.limits.book_depth_default
        feed = _BookFeed(self._ctx, instrument, depth, context)
        bids: SortedDict = SortedDict()  # price_ticks -> quantity_lots
        asks: SortedDict = SortedDict()
        truncated = {Side.BUY: False, Side.SELL: False}
        last: tuple[Any, Any] | None = None
        async for item in feed:
            if isinstance(item, dict):
                bids = SortedDict({price: quantity for price, quantity, _ in item["bids"]})
                asks = SortedDict({price: quantity for price, quantity, _ in item["asks"]})
                truncated = {Side.BUY: len(bids) >= depth, Side.SELL: len(asks) >= depth}
                sequence, ts_ns = item["sequence"], item["ts_ns"]
            else:
                for level in item.levels:
                    side = bids if level.side == Side.BUY else asks
                    if level.quantity_lots:
                        side[level.price_ticks] = level.quantity_lots
                    else:
                        side.pop(level.price_ticks, None)
                sequence, ts_ns = item.sequence, item.ts_ns
                # A side emptied down past a truncated snapshot may still have levels beyond
                # it: only a new snapshot can tell.
                if (not bids and truncated[Side.BUY]) or (not asks and truncated[Side.SELL]):
                    feed.resync()
                    continue
            bid = bids.peekitem(-1) if bids else None
            ask = asks.peekitem(0) if asks else None
            if (bid, ask) != last:
                last = (bid, ask)
                yield bbo_proto(instrument, sequence, ts_ns, bid, ask)


__all__ = ["MarketDataServicer"]
