"""The engine process of one shard: the single writer between the journal and the event streams.

It reads the journal in stream order (a JetStream ordered consumer), applies each entry to the
shard (engine/shard.py), publishes the entry's EventBatch to the events stream with the
deterministic message id `ev:{shard}:{journal_seq}` and its market data to core NATS subjects,
answers read-only queries between entries, and writes snapshots that carry the journal sequence
they cover.

Recovery is replay. At start the newest readable snapshot is restored and the journal after it is
applied again. Entries whose EventBatch is already in the events stream (the engine learns the
last one from the stream itself) are applied silently; later ones are published. So a `kill -9`
at any moment loses nothing that was journaled and publishes no outcome twice.

Run: `python -m engine.loop --nats-url URL --data-dir DIR [--prefix cl] [--shard 0]`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import msgspec
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from engine.journal import ensure_streams
from engine.messages import (
    ENCODER,
    EVENTS_DECODER,
    JOURNAL_DECODER,
    QUERY_DECODER,
    AdvanceTime,
    GetAllBalances,
    GetBalances,
    GetBook,
    GetOpenOrders,
    GetOrder,
    GetRiskLimits,
    GetStatus,
    JournalEntry,
    ListInstruments,
    Query,
    QueryReply,
    TakeSnapshot,
    compressed,
)
from engine.shard import Shard, SnapshotCorrupt
from engine.topology import Topology

log = logging.getLogger("clearline.engine")

# A snapshot after this many entries bounds the replay after a crash (about a second of load).
snapshot_every_entries = 100_000
# ... or after this long, so a quiet shard still restarts fast.
snapshot_every_s = 60.0
# Snapshots kept on disk: the newest may be the one a crash cut short.
snapshots_kept_max = 3
# Accounts per GetAllBalances reply: a page stays far below NATS's 1 MB message limit.
all_balances_accounts_max = 5_000
# With no entry for this long, and a GTD order due, the engine journals an AdvanceTime so that
# it expires on a quiet book (time only moves through the journal). Only when one is due: a
# tick every idle second would be 86,400 entries a day for the journal, events and ledger.
idle_tick_s = 1.0
# With no ticks, how long a quiet consumer waits before checking it is not stuck.
quiet_s = 1.0
# An event publish not acknowledged in this long is sent again (the message id dedupes it).
publish_ack_timeout_s = 5.0
# Room left under the NATS server's max_payload for what a publish adds to the encoded batch
# (headers: message id and expected last message id).
payload_headroom_bytes = 1_024


class EngineLoop:
    """One shard's engine. `await start()` returns once it is consuming; `await stop()`."""

    def __init__(
        self,
        nats_url: str,
        topology: Topology,
        data_dir: Path,
        *,
        tick_s: float = idle_tick_s,
    ) -> None:
        self.nats_url = nats_url
        self.topology = topology
        self.snapshot_dir = Path(data_dir) / "snapshots" / topology.shard
        self.tick_s = tick_s
        self.shard = Shard(topology.shard)
        self.published_through = 0  # the newest journal entry whose EventBatch is in the stream
        self.snapshot_journal_seq = 0
        self.journal_seq_last = 0
        self.started_ns = time.monotonic_ns()
        self._unacked: collections.deque[tuple[int, bytes, asyncio.Future[Any], float]] = (
            collections.deque()
        )
        self._task: asyncio.Task[None] | None = None
        self._nc: Any = None
        self._stopping = False
        self.ready = asyncio.Event()

    # -- start and stop --

    async def start(self) -> None:
        self._restore_snapshot()
        self._nc = await nats.connect(
            self.nats_url,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            name=f"engine-{self.topology.shard}",
        )
        self._js = self._nc.jetstream(publish_async_max_pending=10_000)
        await ensure_streams(self._js, self.topology)
        self.published_through = await self._last_published()
        await self._nc.subscribe(self.topology.query_subject, cb=self._on_query)
        await self._subscribe()
        log.info(
            "engine %s consuming from journal entry %d (events published through %d)",
            self.topology.shard,
            self.shard.journal_seq + 1,
            self.published_through,
        )
        self._task = asyncio.create_task(self._run())
        self.ready.set()

    async def _subscribe(self) -> None:
        """An ordered consumer of the journal from the entry after the last one applied."""
        self._sub = await self._js.subscribe(
            self.topology.journal_subject,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.shard.journal_seq + 1,
            ),
            pending_msgs_limit=1_000_000,
            pending_bytes_limit=1 << 30,
        )

    async def _resubscribe_if_behind(self) -> None:
        """After a quiet spell, make sure the consumer is not stuck behind the journal.

        nats-py recreates an ordered consumer after a reconnect, but a recreate that itself
        times out (the server still starting) leaves the subscription silent for good; the
        engine then starts a consumer of its own from the entry it needs next.
        """
        try:
            info = await self._js.stream_info(self.topology.journal_stream)
        except Exception:
            return  # the server is away: try again after the next quiet spell
        self.journal_seq_last = max(self.journal_seq_last, info.state.last_seq)
        if info.state.last_seq <= self.shard.journal_seq:
            return
        log.warning(
            "journal consumer at %d behind the journal (%d); subscribing again",
            self.shard.journal_seq,
            info.state.last_seq,
        )
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
        with contextlib.suppress(Exception):
            await self._subscribe()

    async def stop(self, *, snapshot: bool = True) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._flush_publishes(timeout_s=5.0)
            with contextlib.suppress(Exception):
                await self._nc.drain()
        if snapshot and self.shard.journal_seq > self.snapshot_journal_seq:
            self.write_snapshot()

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    # -- the single writer --

    async def _run(self) -> None:
        last_snapshot = time.monotonic()
        while not self._stopping:
            try:
                msg = await self._sub.next_msg(timeout=self.tick_s if self.tick_s > 0 else quiet_s)
            except (TimeoutError, nats.errors.TimeoutError):
                if self.tick_s > 0:
                    await self._tick()
                await self._check_publishes()
                await self._resubscribe_if_behind()
                continue
            except nats.errors.ConnectionClosedError:
                await asyncio.sleep(quiet_s)
                await self._resubscribe_if_behind()
                continue
            seq = msg.metadata.sequence.stream
            self.journal_seq_last = max(self.journal_seq_last, seq + msg.metadata.num_pending)
            if seq <= self.shard.journal_seq:
                continue  # redelivered after a consumer reset: applied already
            if seq != self.shard.journal_seq + 1:
                raise RuntimeError(
                    f"journal gap: expected entry {self.shard.journal_seq + 1}, got {seq}"
                )
            await self._apply(seq, msg.data)
            await self._check_publishes()
            if (
                self.shard.journal_seq - self.snapshot_journal_seq >= snapshot_every_entries
                or time.monotonic() - last_snapshot >= snapshot_every_s
            ):
                self.write_snapshot()
                last_snapshot = time.monotonic()
            if len(self._unacked) > 5_000:
                await self._flush_publishes(timeout_s=publish_ack_timeout_s)

    async def _apply(self, seq: int, data: bytes) -> None:
        try:
            entry = JOURNAL_DECODER.decode(data)
        except msgspec.DecodeError as exc:
            # Nothing of an undecodable entry is applied; its empty outcome is still published
            # so the sequence of EventBatches stays gap-free, and the error is logged loudly.
            log.error("journal entry %d is undecodable and was skipped: %s", seq, exc)
            entry = JournalEntry(origin="", batch_id=0, ts_ns=0, commands=[])
        applied = self.shard.apply(seq, entry)
        if applied is None or seq <= self.published_through:
            return  # replaying what was published before a restart
        batch = self.shard.event_batch(seq, entry, applied)
        payload = ENCODER.encode(batch)
        if len(payload) > self._nc.max_payload - payload_headroom_bytes:
            # A large entry (many orders that trade, or one that sweeps the book) would stop the
            # engine at this entry on every restart: its outcome goes compressed instead.
            payload = ENCODER.encode(compressed(batch))
            log.info("entry %d: outcome compressed to %d bytes", seq, len(payload))
            if len(payload) > self._nc.max_payload - payload_headroom_bytes:
                raise RuntimeError(
                    f"the outcome of journal entry {seq} is {len(payload):,} bytes compressed, "
                    f"over the NATS server's max_payload of {self._nc.max_payload:,}: raise "
                    "max_payload in the server's configuration and restart the engine"
                )
        await self._publish_events(seq, payload)
        for update in applied.market_data:
            subject = self.topology.market_data_subject(update.instrument_id)
            await self._nc.publish(subject, ENCODER.encode(update))
        if applied.instruments_changed:
            await self._nc.publish(self.topology.instruments_changed_subject, b"")
        self.published_through = seq

    async def _publish_events(self, seq: int, payload: bytes) -> None:
        """Publish without waiting for the acknowledgement (they are checked in order later).

        Each publish names the message id it expects to be last in the stream: if one is lost
        (a reconnect drops a buffer), every later one is refused instead of leaving a gap, and
        the resend below restores the order. So the events stream holds entry k at position k.
        """
        headers = {"Nats-Msg-Id": self.topology.event_message_id(seq)}
        if seq > 1:
            headers["Nats-Expected-Last-Msg-Id"] = self.topology.event_message_id(seq - 1)
        future = await self._js.publish_async(
            self.topology.events_subject, payload, headers=headers
        )
        self._unacked.append((seq, payload, future, time.monotonic()))

    async def _check_publishes(self) -> None:
        """Drop acknowledged publishes from the front; on a failed or overdue one, resend it
        and everything after it, in order.

        Everything after it goes too: each later publish named its predecessor as the last
        message id, so the stream refuses it once one is lost. Resending one at a time would
        add a refusal per new entry as fast as it fixes one, and on a quiet shard fix one per
        `quiet_s`. Publishes that did land are deduplicated by their message id.
        """
        now = time.monotonic()
        while self._unacked:
            seq, _, future, sent = self._unacked[0]
            if not future.done() and now - sent < publish_ack_timeout_s:
                return
            if future.done() and not future.cancelled() and future.exception() is None:
                self._unacked.popleft()
                continue
            resend = list(self._unacked)
            self._unacked.clear()
            log.warning(
                "events of journal entries %d..%d not acknowledged; publishing them again",
                seq,
                resend[-1][0],
            )
            for seq, payload, future, _ in resend:
                if not future.done():
                    future.cancel()  # its late acknowledgement is of no use any more
                await self._publish_events(seq, payload)
            return

    async def _flush_publishes(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._unacked and time.monotonic() < deadline:
            await self._check_publishes()
            if self._unacked:
                await asyncio.sleep(0.001)

    async def _tick(self) -> None:
        """Journal an AdvanceTime when a resting GTD order is due, so it expires on a quiet
        shard."""
        due_ns = self.shard.core.next_expiry_ts_ns
        now_ns = time.time_ns()
        if due_ns == 0 or due_ns > now_ns:
            return
        entry = JournalEntry(
            origin=f"engine-{self.topology.shard}",
            batch_id=now_ns,
            ts_ns=now_ns,
            commands=[AdvanceTime()],
        )
        with contextlib.suppress(Exception):
            await self._js.publish(
                self.topology.journal_subject,
                ENCODER.encode(entry),
                headers={"Nats-Msg-Id": f"tick:{self.topology.shard}:{entry.batch_id}"},
            )

    async def _last_published(self) -> int:
        try:
            msg = await self._js.get_last_msg(
                self.topology.events_stream, self.topology.events_subject
            )
        except NotFoundError:
            return 0
        return EVENTS_DECODER.decode(msg.data).journal_seq

    # -- queries, answered between entries --

    async def _on_query(self, msg: Any) -> None:
        try:
            query = QUERY_DECODER.decode(msg.data)
            reply = self.answer(query)
        except msgspec.DecodeError as exc:
            reply = QueryReply(
                ok=False, journal_seq=self.shard.journal_seq, error=f"bad query: {exc}"
            )
        await msg.respond(ENCODER.encode(reply))

    def answer(self, query: Query) -> QueryReply:
        shard, seq = self.shard, self.shard.journal_seq
        result: Any
        if isinstance(query, GetBalances):
            result = shard.balances(query.account_id)
        elif isinstance(query, GetAllBalances):
            accounts_max = max(1, min(query.accounts_max, all_balances_accounts_max))
            result = shard.all_balances(query.after_account_id, accounts_max)
        elif isinstance(query, GetOpenOrders):
            result = {"orders": shard.open_orders(query.account_id)}
        elif isinstance(query, GetOrder):
            result = shard.order(query.account_id, query.order_id, query.client_order_id)
            if result is None:
                return QueryReply(ok=False, journal_seq=seq, error="order_must_exist")
        elif isinstance(query, GetBook):
            result = shard.book(query.instrument_id, max(1, min(query.depth, 1000)))
            if result is None:
                return QueryReply(ok=False, journal_seq=seq, error="instrument_must_exist")
        elif isinstance(query, GetStatus):
            result = self.status(query.with_state_hash)
        elif isinstance(query, GetRiskLimits):
            result = shard.limits(query.account_id)
        elif isinstance(query, ListInstruments):
            result = shard.instrument_list()
        elif isinstance(query, TakeSnapshot):
            path = self.write_snapshot()
            result = {"journal_seq": seq, "path": str(path), "state_hash": shard.state_hash()}
        else:  # pragma: no cover - the decoder admits only the types above
            return QueryReply(ok=False, journal_seq=seq, error="unknown query")
        return QueryReply(ok=True, journal_seq=seq, result=result)

    def status(self, with_state_hash: bool) -> dict[str, Any]:
        shard = self.shard
        instruments = []
        for instrument_id, definition in sorted(shard.instruments.items()):
            bid, _, ask, _ = shard.core.bbo(instrument_id)
            bids, asks = shard.core.depth(instrument_id, 1_000_000)
            instruments.append(
                {
                    "instrument_id": instrument_id,
                    "symbol": definition.symbol,
                    "status": shard.instrument_status.get(instrument_id, 1),
                    "best_bid_ticks": bid,
                    "best_ask_ticks": ask,
                    "orders_resting": sum(level[2] for level in bids + asks),
                    "sequence": shard.md_sequence.get(instrument_id, 0),
                }
            )
        return {
            "shard": self.topology.shard,
            "journal_seq_applied": shard.journal_seq,
            "journal_seq_last": max(self.journal_seq_last, shard.journal_seq),
            "snapshot_journal_seq": self.snapshot_journal_seq,
            "orders_resting": len(shard.risk.orders),
            "accounts": len(shard.risk.balances),
            "kill_switched_accounts": sorted(shard.risk.kill_switched),
            "instruments": instruments,
            "state_hash": shard.state_hash() if with_state_hash else "",
            "ts_ns": shard.ts_ns,
            "uptime_ms": (time.monotonic_ns() - self.started_ns) // 1_000_000,
        }

    # -- snapshots --

    def write_snapshot(self) -> Path:
        """Write the shard's state atomically (temp file, fsync, rename); keep the newest few."""
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        seq = self.shard.journal_seq
        target = self.snapshot_dir / f"{seq:016d}.snap"
        temp = target.with_suffix(".tmp")
        with open(temp, "wb") as f:
            f.write(self.shard.snapshot())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
        self.snapshot_journal_seq = seq
        for old in sorted(self.snapshot_dir.glob("*.snap"))[:-snapshots_kept_max]:
            old.unlink(missing_ok=True)
        return target

    def _restore_snapshot(self) -> None:
        if not self.snapshot_dir.exists():
            return
        for path in sorted(self.snapshot_dir.glob("*.snap"), reverse=True):
            try:
                self.shard = Shard.restore(path.read_bytes())
            except (SnapshotCorrupt, msgspec.DecodeError, ValueError) as exc:
                log.warning("snapshot %s unusable (%s); trying an older one", path.name, exc)
                continue
            self.snapshot_journal_seq = self.shard.journal_seq
            log.info("restored snapshot at journal entry %d", self.shard.journal_seq)
            return


async def start_engine(
    nats_url: str, topology: Topology, data_dir: Path, *, tick_s: float = idle_tick_s
) -> EngineLoop:
    """Start an engine in this process; returns once it consumes the journal."""
    loop = EngineLoop(nats_url, topology, data_dir, tick_s=tick_s)
    await loop.start()
    return loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one engine shard.")
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--prefix", default="cl")
    parser.add_argument("--shard", default="0")
    parser.add_argument("--tick-s", type=float, default=idle_tick_s)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        engine = await start_engine(
            args.nats_url, Topology(args.prefix, args.shard), args.data_dir, tick_s=args.tick_s
        )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        done = asyncio.ensure_future(engine.wait())
        await asyncio.wait(
            [done, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED"
        )
        if done.done() and done.exception() is not None:
            await engine.stop(snapshot=False)
            raise done.exception()  # type: ignore[misc]
        await engine.stop()

    try:
        import uvloop

        uvloop.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
