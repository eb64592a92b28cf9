"""The journal and event streams of one shard in JetStream, and the client that writes to them.

The journal is the order of record: a command exists once JetStream has acknowledged its entry
(stored on disk), and the engine applies entries strictly in stream sequence. The events stream
carries one EventBatch per applied entry. Both streams deduplicate on the message id, so a
sender that retries after a timeout, or an engine that republishes after a crash, adds nothing.
"""

from __future__ import annotations

import asyncio
import collections
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
    command_count,
)
from engine.topology import Topology

# Commands of concurrent callers journaled as one entry at most (group commit): bounds the
# entry's size (and the engine's time on it) while keeping one JetStream round trip per group.
group_commands_max = 1_000
# Groups journaled but not yet applied before the next one waits: two keep the engine busy
# (one applying, one on its way) while each group still waits for the load to fill it.
groups_unapplied_max = 2
# How long the next group waits for the engine to apply the previous one: enough for an engine
# keeping up (a round trip is about a millisecond), short enough that a slow or lost outcome
# costs a group little latency.
group_wait_max_s = 0.002
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
# An entry whose outcome no one has seen this long after journaling is given up on: its callers
# timed out long ago (shared group futures are not cancelled by any one caller's timeout).
pending_forget_s = 10 * reply_timeout_s


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
    published for it; `join_group` adds them to the entry being filled with those of concurrent
    callers (group commit), whose `Group.journaled` says where it landed; `query` asks the
    engine a read-only question. Listeners see every EventBatch (for unsolicited execution
    reports and monitoring).
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
        self._groups: collections.deque[Group] = collections.deque()
        self._group_writer: asyncio.Task[None] | None = None

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
            now = time.monotonic()
            for batch_id, (journal_seq, when) in list(self._journaled.items()):
                if when > now - missed_outcome_s or batch_id not in self._pending:
                    continue
                if when < now - pending_forget_s:
                    self._pending[batch_id].cancel()  # its done callback forgets it
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
        self,
        commands: Sequence[Command],
        *,
        ts_ns: int | None = None,
        actor: str = "",
        batch_id: int = 0,
    ) -> tuple[int, asyncio.Future[EventBatch]]:
        """Journal the commands as one entry; returns its journal sequence and a future of its
        EventBatch. Raises when JetStream does not acknowledge (nothing was journaled, or the
        retry below deduplicated it). `batch_id` 0 takes the next one (a group has its own)."""
        batch_id = batch_id or next(self._batch_ids)
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

    def join_group(self, commands: Sequence[Command]) -> tuple[Group, int]:
        """Add the commands to the group being filled; returns it and their position in it.

        While one group is being journaled the next one fills, so a lone caller waits for no
        timer and many callers share one JetStream round trip and one engine step. Wait on
        ``group.journaled`` (shielded: callers share it) for (journal sequence, outcome future).
        Synchronous, so a caller that joins groups in some order has its commands journaled in
        that order, and knows the group's batch id (its EventBatch's) before the entry exists.
        """
        if not commands:
            raise ValueError("no commands to journal")
        size = sum(map(command_count, commands))
        last = self._groups[-1] if self._groups else None
        if last is None or last.size + size > group_commands_max:
            last = Group(next(self._batch_ids), asyncio.get_running_loop().create_future())
            # Read a failure even when every caller went away, so none is reported as lost.
            last.journaled.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._groups.append(last)
        offset = last.size
        last.commands.extend(commands)
        last.size += size
        if self._group_writer is None or self._group_writer.done():
            self._group_writer = asyncio.create_task(self._write_groups())
        return last, offset

    async def _write_groups(self) -> None:
        unapplied: collections.deque[asyncio.Future[EventBatch]] = collections.deque()
        while self._groups:
            while unapplied and unapplied[0].done():
                unapplied.popleft()
            if len(unapplied) >= groups_unapplied_max:
                # Self-clocking: the next group fills while the engine applies the ones before,
                # so groups grow with the load and each entry costs the engine and NATS once.
                await asyncio.wait((unapplied.popleft(),), timeout=group_wait_max_s)
            group = self._groups.popleft()  # sealed: later callers start the next group
            try:
                result = await self.append(group.commands, batch_id=group.batch_id)
            except BaseException as exc:
                group.journaled.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            group.journaled.set_result(result)
            unapplied.append(result[1])

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


class Group:
    """Commands of concurrent callers on their way into one journal entry, whose EventBatch
    will carry `batch_id`; `journaled` resolves to (journal sequence, future of the outcome)."""

    __slots__ = ("batch_id", "commands", "journaled", "size")

    def __init__(
        self,
        batch_id: int,
        journaled: asyncio.Future[tuple[int, asyncio.Future[EventBatch]]],
    ) -> None:
        self.batch_id = batch_id
        self.commands: list[Command] = []
        self.size = 0  # command positions taken (`command_count`): the next caller's offset
        self.journaled = journaled


__all__ = [
    "EngineClient",
    "Group",
    "ensure_streams",
    "events_duplicate_window_s",
    "group_commands_max",
    "groups_unapplied_max",
    "journal_duplicate_window_s",
    "new_origin",
    "reply_timeout_s",
]
