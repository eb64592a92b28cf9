"""Monitoring's JetStream consumer: engine and custody events in, alerts carried out, then ack.

Transport only: it fetches, decodes (`_adapters.py`), hands each event to the `Monitor`
(`_rules.py`, which decides) and each alert to the actions adapter (`_actions.py`, which acts);
a message is acknowledged only after every alert it raised is carried out.

Two durable pull consumers: the shard's engine events stream (entry k's EventBatch at position
k) and custody's events stream (`Topology.custody_events_subject`, `CustodyTransfer` JSON). A round
takes what each has, engine first.

Failures:
- An undecodable message, or an EventBatch not at its position or of another shard, goes to the
  dead-letter stream with its reason and an operational alert, then is acknowledged.
- NATS failing while alerts are carried out is transient: the alerts of that message are carried
  out again with a growing pause (their ids make a second publish a no-op) until it works or
  the consumer stops; nothing is acknowledged before.
- A redelivered message this process has already evaluated is acknowledged without evaluating it
  again: its windows must not count it twice, and its alerts were carried out before the
  consumer moved past it.
- One process per shard: the windows are its state. After a restart they are rebuilt: the last
  `warmup_messages_max` messages of each stream up to the durable consumer's acknowledged floor
  are evaluated again with their alerts dropped (they were carried out before), then the
  consumer resumes after the floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from compliance.alerts import ComplianceAlert
from compliance.monitoring._adapters import BatchError, event_from_custody, events_from_batch
from compliance.monitoring._model import CUSTODY_DECODER, MonitoredEvent
from compliance.monitoring._rules import EventError, Monitor
from engine.journal import ensure_streams
from engine.messages import EVENTS_DECODER
from engine.topology import Topology
from ledger.alerts import dead_letter, ensure_dead_letter_stream

log = logging.getLogger("clearline.compliance.monitoring")

CONSUMER = "monitoring"
CUSTODY_CONSUMER = "monitoring_custody"
# Messages fetched per round: amortises a fetch, stays far inside ack_wait.
fetch_messages_max = 500
# Unacknowledged messages JetStream lets the consumer hold: a few rounds' worth.
ack_pending_max = 4 * fetch_messages_max
# A message not acknowledged in this long is delivered again (the consumer died mid-round).
ack_wait_s = 30.0
# How long a fetch waits for the first message when the stream is quiet.
fetch_wait_s = 1.0
# Messages per stream evaluated again at start to rebuild the windows: bounds the start time;
# windows longer than this much history start partly empty (said in the log).
warmup_messages_max = 200_000
# Pauses between attempts to carry out alerts while NATS fails: doubling up to the last.
retry_pause_s_min = 0.1
retry_pause_s_max = 5.0


class AlertActions(Protocol):
    """What the consumer needs from the actions adapter (`Actions`, or a test double)."""

    async def start(self) -> None: ...

    async def carry_out(self, alert: ComplianceAlert) -> None: ...


class MonitoringConsumer:
    """Runs the monitor on one shard's events. `await start()`, then `await run()` until
    `stop()`; or `await round()` to handle what is there now (tests)."""

    def __init__(self, nc: Any, topology: Topology, monitor: Monitor, actions: AlertActions):
        self.nc = nc
        self.js = nc.jetstream()
        self.topology = topology
        self.monitor = monitor
        self.actions = actions
        self._subs: list[tuple[str, Any, Callable[[Any, int], Awaitable[list[MonitoredEvent]]]]]
        self._subs = []
        self._stopping = asyncio.Event()
        # stream -> the highest position evaluated by this process.
        self.evaluated: dict[str, int] = {}
        self.messages_handled = 0
        self.events_evaluated = 0
        self.alerts_raised = 0
        self.redelivered = 0
        self.dead_lettered = 0
        self.warmed_up = 0
        self._warming = False

    async def start(self) -> None:
        """Create what is missing (streams, bucket, consumers), rebuild the windows, subscribe."""
        await ensure_streams(self.js, self.topology)
        await self.actions.start()
        await ensure_dead_letter_stream(self.js, self.topology)
        custody_stream = self.topology.custody_events_stream
        await self._ensure_stream(custody_stream, self.topology.custody_events_subject)
        custody_subject = self.topology.custody_events_subject
        for consumer, stream, subject, decode in (
            (CONSUMER, self.topology.events_stream, self.topology.events_subject, self._batch),
            (CUSTODY_CONSUMER, custody_stream, custody_subject, self._custody),
        ):
            name = self.topology.consumer_name(consumer)
            floor = await self._ack_floor(stream, name)
            await self._warm_up(stream, subject, floor, decode)
            # Recreated from the floor: what a previous process held unacknowledged comes now,
            # not after ack_wait (messages are acknowledged in order, so none above is done).
            with contextlib.suppress(NotFoundError):
                await self.js.delete_consumer(stream, name)
            config = ConsumerConfig(
                durable_name=name,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=floor + 1,
                ack_wait=ack_wait_s,
                max_ack_pending=ack_pending_max,
            )
            sub = await self.js.pull_subscribe(subject, durable=name, stream=stream, config=config)
            self._subs.append((stream, sub, decode))

    async def _ensure_stream(self, name: str, subject: str) -> None:
        try:
            await self.js.stream_info(name)
        except NotFoundError:
            await self.js.add_stream(StreamConfig(name=name, subjects=[subject]))

    async def _ack_floor(self, stream: str, name: str) -> int:
        try:
            info = await self.js.consumer_info(stream, name)
        except NotFoundError:
            return 0
        return info.ack_floor.stream_seq if info.ack_floor and info.ack_floor.stream_seq else 0

    async def _warm_up(
        self,
        stream: str,
        subject: str,
        floor: int,
        decode: Callable[[Any, int], Awaitable[list[MonitoredEvent]]],
    ) -> None:
        """Evaluate positions up to `floor` again, dropping their alerts (carried out before)."""
        if floor <= 0:
            return
        start = max(1, floor - warmup_messages_max + 1)
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            inactive_threshold=60.0,
        )
        sub = await self.js.pull_subscribe(subject, stream=stream, config=config)
        self._warming = True
        try:
            position = start - 1
            while position < floor:
                try:
                    msgs = await sub.fetch(fetch_messages_max, timeout=fetch_wait_s)
                except (TimeoutError, nats.errors.TimeoutError):
                    break  # the floor's messages are gone (stream limits): warm what there was
                for msg in msgs:
                    position = msg.metadata.sequence.stream
                    if position > floor:
                        break
                    events = await decode(msg, position)
                    for event in events:
                        self.monitor.evaluate(event)
                    self.evaluated[stream] = position
                    self.warmed_up += 1
        finally:
            self._warming = False
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if start > 1:
            log.warning("%s: windows rebuilt from position %d only", stream, start)

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self.stop()
        for _, sub, _ in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = []

    async def run(self) -> None:
        while not self._stopping.is_set():
            if not await self.round():
                await asyncio.sleep(0)

    async def round(self, *, wait_s: float = fetch_wait_s) -> int:
        """Fetch from each stream, evaluate, carry out, acknowledge. Returns messages acked."""
        acked = 0
        for stream, sub, decode in self._subs:
            try:
                msgs = await sub.fetch(fetch_messages_max, timeout=wait_s)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                if not await self._handle(stream, msg, decode):
                    return acked  # stopping: the rest is delivered again
                await msg.ack()
                acked += 1
        return acked

    async def _handle(
        self,
        stream: str,
        msg: Any,
        decode: Callable[[Any, int], Awaitable[list[MonitoredEvent]]],
    ) -> bool:
        """Evaluate one message and carry out its alerts; False when stopped before done."""
        position = msg.metadata.sequence.stream
        if position <= self.evaluated.get(stream, 0):
            self.redelivered += 1
            return True
        alerts: list[ComplianceAlert] = []
        for event in await decode(msg, position):
            try:
                alerts.extend(self.monitor.evaluate(event))
            except EventError as exc:  # the adapters build valid events: this is a bug
                await self._dead_letter(msg, stream, position, f"event not evaluable: {exc}")
                break
            self.events_evaluated += 1
        pause = retry_pause_s_min
        for alert in alerts:
            while True:
                if self._stopping.is_set():
                    return False
                try:
                    await self.actions.carry_out(alert)
                    break
                except (nats.errors.Error, OSError, TimeoutError) as exc:
                    log.warning("alert %s not carried out (%s); again", alert.alert_id, exc)
                    await asyncio.sleep(pause)
                    pause = min(2 * pause, retry_pause_s_max)
        self.evaluated[stream] = position
        self.messages_handled += 1
        self.alerts_raised += len(alerts)
        return True

    async def _batch(self, msg: Any, position: int) -> list[MonitoredEvent]:
        stream = self.topology.events_stream
        try:
            batch = EVENTS_DECODER.decode(msg.data)
        except msgspec.DecodeError as exc:
            await self._dead_letter(msg, stream, position, f"undecodable EventBatch: {exc}")
            return []
        if batch.shard != self.topology.shard or batch.journal_seq != position:
            await self._dead_letter(
                msg,
                stream,
                position,
                f"EventBatch of shard {batch.shard!r} entry {batch.journal_seq} at position"
                f" {position} of shard {self.topology.shard!r}'s events stream",
            )
            return []
        try:
            return events_from_batch(batch)
        except BatchError as exc:
            await self._dead_letter(msg, stream, position, f"EventBatch not monitorable: {exc}")
            return []

    async def _custody(self, msg: Any, position: int) -> list[MonitoredEvent]:
        try:
            transfer = CUSTODY_DECODER.decode(msg.data)
        except msgspec.DecodeError as exc:
            stream = self.topology.custody_events_stream
            await self._dead_letter(msg, stream, position, f"undecodable CustodyTransfer: {exc}")
            return []
        return [event_from_custody(transfer)]

    async def _dead_letter(self, msg: Any, stream: str, position: int, reason: str) -> None:
        """Keep the message with its reason in the dead-letter stream, then alert. Skipped
        during warm-up (the message was dead-lettered when first met)."""
        if self._warming:
            return
        await dead_letter(
            self.nc,
            self.topology,
            consumer=CONSUMER,
            stream=stream,
            position=position,
            data=msg.data,
            reason=reason,
            source="compliance.monitoring",
            summary=f"{stream} message {position} not monitored: {reason[:200]}",
            journal_seq=position if stream == self.topology.events_stream else 0,
        )
        self.dead_lettered += 1


__all__ = [
    "CONSUMER",
    "CUSTODY_CONSUMER",
    "AlertActions",
    "MonitoringConsumer",
    "fetch_messages_max",
    "warmup_messages_max",
]
