"""What every servicer of one gateway shares: the engine link, the catalog, the keys, the hubs.

Transport only: nothing here decides an order's fate. `GatewayContext` holds the connections
and the current `InstrumentCatalog`; `EventHub` fans the engine's EventBatches out to the Trade
streams of the accounts they concern; `MarketDataHub` fans market data updates out to the
market data streams of their instrument. One NATS subscription each, however many clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import numpy as np

from engine._codes import EventKind
from engine.journal import EngineClient, reply_timeout_s
from engine.messages import (
    MARKET_DATA_DECODER,
    EventBatch,
    ListInstruments,
    MarketDataUpdate,
    Query,
    QueryReply,
)
from gateway import metrics
from gateway.auth import AuditLog, Identity, KeyStore, authorize
from gateway.checks import ComplianceLimits, CustomerStateCache
from gateway.convert import InstrumentCatalog
from gateway.ratelimit import TokenBuckets

log = logging.getLogger(__name__)

# Commands in one CommandBatch: a market maker's full requote fits, and the rate limiter's burst
# (ratelimit.orders_burst_max) is at least this, so a full batch can be granted at once.
batch_commands_max = 1_000
# CommandBatches of one Trade stream journaled but not yet answered: enough to keep the journal
# busy while earlier batches apply (a client may pipeline), few enough that a stream cannot
# tie up much of the gateway's memory; past it the gateway reads no more from that stream.
stream_batches_in_flight_max = 64
# Levels per side of a book snapshot when the request says 0: the engine's own maximum, so a
# StreamBook client keeps the whole book (updates beyond a shallower snapshot would leave holes).
book_depth_default = 1_000
# Updates or batches queued for one slow stream before the gateway gives up on it: a book
# stream then starts over from a fresh snapshot, other streams end with RESOURCE_EXHAUSTED.
stream_queue_max = 10_000
# Orders whose instrument the gateway remembers for amends (which name only the order): the
# last this many at least (RecentOrders); an older one costs an engine query instead.
order_instruments_max = 1 << 18
# How often the in-memory API keys are re-read: a revoked key stops working within this.
key_refresh_s = 10.0
# Between attempts to load the catalog while the engine does not answer yet.
catalog_retry_s = 0.5


@dataclass(frozen=True, kw_only=True)
class GatewayLimits:
    """The gateway's own bounds; each default is the module constant of the same name."""

    batch_commands_max: int = batch_commands_max
    book_depth_default: int = book_depth_default
    stream_queue_max: int = stream_queue_max
    stream_batches_in_flight_max: int = stream_batches_in_flight_max
    order_instruments_max: int = order_instruments_max
    key_refresh_s: float = key_refresh_s
    engine_reply_timeout_s: float = reply_timeout_s


class Lost:
    """Queued for a stream in place of what it will never get: `OVERFLOWED` (its queue was
    full and was emptied) or `MISSED` (the gateway itself missed some of the engine's output)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


OVERFLOWED = Lost("OVERFLOWED")
MISSED = Lost("MISSED")


class Subscriber:
    """A bounded queue of one stream; a full queue is emptied and marked `OVERFLOWED`."""

    def __init__(self, queue_max: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue_max = queue_max

    def put(self, item: Any) -> None:
        if self.queue.qsize() >= self._queue_max:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(OVERFLOWED)
            return
        self.queue.put_nowait(item)

    async def get(self) -> Any:
        return await self.queue.get()


class EventHub:
    """Every EventBatch of the shard, once each, to the subscribers of the accounts it names.

    A batch names an account when one of its rows is about that account's order (a FILLED row
    names its taker and its maker). Batches arrive in journal order; a batch not newer than the
    last one seen is a republication (or a late recovery of an outcome already answered) and is
    dropped, so no report goes out twice. Every journal entry has a batch, so a jump in journal
    sequence means the gateway missed some (a NATS outage): every subscriber then gets `MISSED`,
    since the reports it should have had are gone.
    """

    def __init__(self, context: GatewayContext) -> None:
        self._context = context
        self._by_account: dict[int, set[Subscriber]] = {}
        self.journal_seq_seen = 0
        self.journal_seq_appended = 0

    def subscribe(self, account_id: int) -> Subscriber:
        subscriber = Subscriber(self._context.limits.stream_queue_max)
        self._by_account.setdefault(account_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, account_id: int, subscriber: Subscriber) -> None:
        subscribers = self._by_account.get(account_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._by_account[account_id]

    def appended(self, journal_seq: int) -> None:
        self.journal_seq_appended = max(self.journal_seq_appended, journal_seq)
        metrics.JOURNAL_LAG.set(max(0, self.journal_seq_appended - self.journal_seq_seen))

    def on_batch(self, batch: EventBatch) -> None:
        """The EngineClient listener. O(rows) plus one queue put per concerned subscriber."""
        if batch.journal_seq <= self.journal_seq_seen:
            return
        if self.journal_seq_seen and batch.journal_seq > self.journal_seq_seen + 1:
            log.warning(
                "missed the events of journal entries %d to %d",
                self.journal_seq_seen + 1,
                batch.journal_seq - 1,
            )
            for subscribers in self._by_account.values():
                for subscriber in subscribers:
                    subscriber.put(MISSED)
        self.journal_seq_seen = batch.journal_seq
        metrics.JOURNAL_LAG.set(max(0, self.journal_seq_appended - self.journal_seq_seen))
        rows = batch.event_rows()
        if not len(rows):
            return
        self._context.learn(rows)
        if not self._by_account:
            return
        fills = rows[rows["kind"] == EventKind.FILLED]
        accounts = np.union1d(rows["account_id"], fills["maker_account_id"]).tolist()
        for account_id in accounts:
            for subscriber in self._by_account.get(account_id, ()):
                subscriber.put(batch)


class RecentOrders:
    """Order id -> (instrument id, owner) of the last `size_max` orders or more, at most twice
    that: two generations, the older dropped whole when the newer is full, so remembering an
    order costs O(1) and nothing is evicted one key at a time."""

    def __init__(self, size_max: int) -> None:
        self._size_max = size_max
        self._new: dict[int, tuple[int, int]] = {}
        self._old: dict[int, tuple[int, int]] = {}

    def update(self, items: Iterable[tuple[int, tuple[int, int]]]) -> None:
        self._new.update(items)
        if len(self._new) >= self._size_max:
            self._old, self._new = self._new, {}

    def get(self, order_id: int) -> tuple[int, int] | None:
        found = self._new.get(order_id)
        return self._old.get(order_id) if found is None else found

    def clear(self) -> None:
        self._new.clear()
        self._old.clear()

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


class MarketDataHub:
    """One subscription to every instrument's market data, fanned out per instrument."""

    def __init__(self, context: GatewayContext) -> None:
        self._context = context
        self._by_instrument: dict[int, set[Subscriber]] = {}
        self._subscription: Any = None

    async def start(self) -> None:
        nc = self._context.engine.nc
        subject = self._context.engine.topology.market_data_subject("*")
        self._subscription = await nc.subscribe(
            subject, cb=self._on_message, pending_msgs_limit=1_000_000
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    def subscribe(self, instrument_id: int) -> Subscriber:
        subscriber = Subscriber(self._context.limits.stream_queue_max)
        self._by_instrument.setdefault(instrument_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, instrument_id: int, subscriber: Subscriber) -> None:
        subscribers = self._by_instrument.get(instrument_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._by_instrument[instrument_id]

    async def _on_message(self, msg: Any) -> None:
        try:
            update: MarketDataUpdate = MARKET_DATA_DECODER.decode(msg.data)
        except Exception:
            # A stream that misses it sees a sequence gap and resnapshots.
            log.exception("undecodable market data on %s", msg.subject)
            return
        for subscriber in self._by_instrument.get(update.instrument_id, ()):
            subscriber.put(update)


class GatewayContext:
    """The connections and state the servicers share; built and closed by `gateway.server`."""

    def __init__(
        self,
        *,
        engine: EngineClient,
        keystore: KeyStore,
        audit: AuditLog,
        compliance: CustomerStateCache,
        compliance_limits: ComplianceLimits,
        order_buckets: TokenBuckets,
        call_buckets: TokenBuckets,
        limits: GatewayLimits,
        database_url: str = "",
    ) -> None:
        self.engine = engine
        self.database_url = database_url  # the ledger's reads and the exception queue
        self.keystore = keystore
        self.audit = audit
        self.compliance = compliance
        self.compliance_limits = compliance_limits
        self.order_buckets = order_buckets
        self.call_buckets = call_buckets
        self.limits = limits
        self.catalog = InstrumentCatalog([], [])
        self.catalog_loaded = asyncio.Event()
        self.events = EventHub(self)
        self.market_data = MarketDataHub(self)
        # order id -> (instrument id, account id) of the orders accepted lately
        self.order_instruments = RecentOrders(self.limits.order_instruments_max)
        self._reload: asyncio.Task[None] | None = None

    # -- the catalog --

    async def load_catalog(self) -> InstrumentCatalog:
        """Ask the engine for its instruments and replace the catalog whole."""
        reply = await self.engine.query(ListInstruments())
        if not reply.ok:
            raise RuntimeError(f"ListInstruments failed: {reply.error}")
        self.catalog = InstrumentCatalog.from_result(reply.result)
        self.catalog_loaded.set()
        return self.catalog

    def reload_catalog_soon(self) -> None:
        """Reload in the background (an instrument was defined); one reload at a time."""
        if self._reload is None or self._reload.done():
            self._reload = asyncio.get_running_loop().create_task(self._load_until_answered())

    async def _load_until_answered(self) -> None:
        while True:
            try:
                await self.load_catalog()
                return
            except Exception as exc:  # the engine is not up yet, or restarting
                log.info("instrument catalog not loaded yet: %s", exc)
                await asyncio.sleep(catalog_retry_s)

    def learn(self, rows: Any) -> None:
        """What the gateway keeps from every batch: each new order's instrument, for amends;
        and a reload when a status names an instrument the catalog does not know."""
        accepted = rows[rows["kind"] == EventKind.ACCEPTED]
        instruments = accepted["instrument_id"].tolist()
        owners = zip(instruments, accepted["account_id"].tolist(), strict=True)
        self.order_instruments.update(zip(accepted["order_id"].tolist(), owners, strict=True))
        statuses = rows[rows["kind"] == EventKind.INSTRUMENT_STATUS]["instrument_id"].tolist()
        if any(i not in self.catalog.by_id for i in statuses):
            self.reload_catalog_soon()

    # -- helpers for the servicers --

    async def authorize(
        self, context: grpc.aio.ServicerContext, roles: Any, *, orders: int = 0
    ) -> Identity:
        """Authenticate, check the role, then take rate-limit tokens: ``orders`` order tokens,
        or one call token when 0. Aborts UNAUTHENTICATED, PERMISSION_DENIED or
        RESOURCE_EXHAUSTED."""
        identity = await authorize(context, self.keystore, roles)
        await self.take_tokens(context, identity, orders=orders)
        return identity

    async def take_tokens(
        self, context: grpc.aio.ServicerContext, identity: Identity, *, orders: int = 0
    ) -> None:
        granted = (
            self.order_buckets.take(identity.key_id, orders)
            if orders
            else self.call_buckets.take(identity.key_id)
        )
        if not granted:
            what = f"{orders} orders" if orders else "a call"
            await abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"rate limit of API key {identity.key_id} reached for {what}; slow down",
            )

    async def query(self, context: grpc.aio.ServicerContext, query: Query) -> QueryReply:
        """Ask the engine; UNAVAILABLE when it does not answer."""
        try:
            return await self.engine.query(query)
        except Exception as exc:
            await abort(context, grpc.StatusCode.UNAVAILABLE, f"the engine did not answer: {exc}")


async def abort(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    details: str,
    trailing_metadata: tuple[tuple[str, str], ...] = (),
) -> NoReturn:
    """End the call with a status (``context.abort`` raises; this tells mypy so)."""
    await context.abort(code, details, trailing_metadata)
    raise AssertionError("unreachable: ServicerContext.abort raises")


__all__ = [
    "MISSED",
    "OVERFLOWED",
    "EventHub",
    "GatewayContext",
    "GatewayLimits",
    "Lost",
    "MarketDataHub",
    "RecentOrders",
    "Subscriber",
    "abort",
    "batch_commands_max",
    "book_depth_default",
    "catalog_retry_s",
    "key_refresh_s",
    "order_instruments_max",
    "stream_batches_in_flight_max",
    "stream_queue_max",
]
