"""The journal and event streams of one shard in JetStream, and the client that writes to them.

The journal is the order of record: a command exists once JetStream has acknowledged its entry
(stored on disk), and the engine applies entries strictly in stream sequence. The events stream
carries one EventBatch per applied entry. Both streams deduplicate on the message id, so a
sender that retries after a timeout, or an engine that republishes after a crash, adds nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from engine.messages import (
    ENCODER,
    EVENTS_DECODER,
    REPLY_DECODER,
    Command,
    EventBatch,
    JournalEntry,
    Query,
    QueryReply,
)
from engine.topology import Topology

# How long JetStream remembers a message id: a sender's retries fall well inside it.
journal_duplicate_window_s = 120
# The events stream must remember ids at least as long as an engine restart may take, as a
# second guard behind the engine's own check of the last published entry.
events_duplicate_window_s = 600
# A reply that takes longer than this means the engine is down or far behind.
reply_timeout_s = 10.0
# An outcome not seen on the events subject this long after its entry was journaled is looked
# up in the events stream: core NATS delivery is at most once, and a reconnect loses messages.
missed_outcome_s = 1.0


async def ensure_streams(js: JetStreamContext, topology: Topology) -> None:
    """Create the shard's journal and events streams if they do not exist (idempotent)."""
    wanted = [
        StreamConfig(
            name=topology.journal_stream,
            subjects=[topology.journal_subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=journal_duplicate_window_s,
        ),
        StreamConfig(
            name=topology.events_stream,
            subjects=[topology.events_subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=events_duplicate_window_s,
        ),
    ]
    for config in wanted:
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)


def new_origin(kind: str) -> str:
    """A sender id unique across restarts: its batch ids can then start at 1 every time."""
    return f"{kind}-{os.getpid()}-{time.time_ns():x}"


class EngineClient:
    """What a gateway (or an admin tool) uses to talk to one engine shard.

    `submit` journals a list of commands as one entry and returns the EventBatch the engine
    published for it; `query` asks the engine a read-only question. Listeners see every
    EventBatch (for unsolicited execution reports and monitoring).
    """

    def __init__(self, nc: NatsClient, topology: Topology, origin: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.topology = topology
        self.origin = origin
        self._batch_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[EventBatch]] = {}
        self._journaled: dict[int, tuple[int, float]] = {}  # batch id -> (journal seq, when)
        self._recovery: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[EventBatch], Any]] = []
        self._subscription: Any = None

    @classmethod
    async def connect(cls, url: str, topology: Topology, origin: str) -> EngineClient:
        nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        client = cls(nc, topology, origin)
        await client.start()
        return client

    async def start(self) -> None:
        await ensure_streams(self.js, self.topology)
        self._subscription = await self.nc.subscribe(
            self.topology.events_subject, cb=self._on_events, pending_msgs_limit=1_000_000
        )
        self._recovery = asyncio.create_task(self._recover_missed())

    async def _recover_missed(self) -> None:
        """Read outcomes the subscription missed from the events stream, where the engine puts
        entry k's EventBatch at position k."""
        while True:
            await asyncio.sleep(missed_outcome_s)
            overdue = time.monotonic() - missed_outcome_s
            for batch_id, (journal_seq, when) in list(self._journaled.items()):
                if when > overdue or batch_id not in self._pending:
                    continue
                try:
                    msg = await self.js.get_msg(self.topology.events_stream, seq=journal_seq)
                except Exception:
                    continue  # not published yet (engine behind or down): try again later
                data = msg.data or b""
                batch = EVENTS_DECODER.decode(data)
                if batch.origin == self.origin and batch.batch_id == batch_id:
                    self._deliver(batch)

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        await self.nc.drain()

    def add_listener(self, listener: Callable[[EventBatch], Any]) -> None:
        self._listeners.append(listener)

    async def _on_events(self, msg: Any) -> None:
        self._deliver(EVENTS_DECODER.decode(msg.data))

    def _deliver(self, batch: EventBatch) -> None:
        if batch.origin == self.origin:
            future = self._pending.pop(batch.batch_id, None)
            if future is not None and not future.done():
                future.set_result(batch)
        for listener in self._listeners:
            listener(batch)

    async def append(
        self, commands: Sequence[Command], *, ts_ns: int | None = None, actor: str = ""
    ) -> tuple[int, asyncio.Future[EventBatch]]:
        """Journal the commands as one entry; returns its journal sequence and a future of its
        EventBatch. Raises when JetStream does not acknowledge (nothing was journaled, or the
        retry below deduplicated it)."""
        batch_id = next(self._batch_ids)
        entry = JournalEntry(
            origin=self.origin,
            batch_id=batch_id,
            ts_ns=time.time_ns() if ts_ns is None else ts_ns,
            commands=list(commands),
            actor=actor,
        )
        future: asyncio.Future[EventBatch] = asyncio.get_running_loop().create_future()
        self._pending[batch_id] = future
        # A caller that stops waiting (timeout, disconnect) must not leave its entry behind.
        future.add_done_callback(lambda _: self._forget(batch_id))
        try:
            ack = await self.js.publish(
                self.topology.journal_subject,
                ENCODER.encode(entry),
                headers={"Nats-Msg-Id": f"{self.origin}:{batch_id}"},
            )
        except BaseException:
            self._pending.pop(batch_id, None)
            raise
        if batch_id in self._pending:
            self._journaled[batch_id] = (ack.seq, time.monotonic())
        return ack.seq, future

    def _forget(self, batch_id: int) -> None:
        self._pending.pop(batch_id, None)
        self._journaled.pop(batch_id, None)

    async def submit(
        self,
        commands: Sequence[Command],
        *,
        ts_ns: int | None = None,
        actor: str = "",
        timeout_s: float = reply_timeout_s,
    ) -> EventBatch:
        """Journal the commands and wait for their outcome."""
        _, future = await self.append(commands, ts_ns=ts_ns, actor=actor)
        return await asyncio.wait_for(future, timeout_s)

    async def query(self, query: Query, *, timeout_s: float = reply_timeout_s) -> QueryReply:
        msg = await self.nc.request(
            self.topology.query_subject, ENCODER.encode(query), timeout=timeout_s
        )
        return REPLY_DECODER.decode(msg.data)


__all__ = [
    "EngineClient",
    "ensure_streams",
    "events_duplicate_window_s",
    "journal_duplicate_window_s",
    "new_origin",
    "reply_timeout_s",
]
