"""The ledger's JetStream consumer: one shard's EventBatches in, their transfers booked exactly
once, in journal order.

Transport only: it fetches a round of messages, decodes them, hands them to the posting rules
(ledger/postings.py: the whole round at once, as columns) and books the round in one ledger
write (`Ledger.commit_events`: one hash chain link per event, one transaction per round, so a
consumer that is behind catches up in large steps), then acknowledges. Rounds overlap: while
PostgreSQL stores one (`Ledger.stage_events`), the next is fetched, decided and queued.

Exactly once is the Ledger's: each event id is recorded in the same PostgreSQL transaction as
its transfers, and a message is acknowledged only after that transaction commits. So a
redelivery (a consumer killed between commit and ack, an ack lost, ack_wait passed) finds its
event id applied and books nothing again; and a new consumer starts from the entry after the
last one the ledger booked.

Failures:
- An undecodable message, or one that is not the EventBatch its stream position says, goes to
  the dead-letter stream with the reason and an alert, and is then acknowledged: it cannot be
  booked, and it must not stop the events behind it.
- A transfer the ledger refuses (it would overdraw a protected account, say) is not booked; the
  event is still applied (its refused ids stay refused), and the refusal becomes an exception in
  the reconciliation queue and an alert. The engine decided that money moved; a person decides
  what the books do about it.
- PostgreSQL going away (restart, network) is transient: nothing is acknowledged, the ledger is
  reopened with a growing pause, and the same messages are booked again.

Run inside the ledger service: `python -m ledger.service` (ledger/service.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats
import numpy as np
import numpy.typing as npt
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from engine._codes import AccountResult, TransferResult
from engine.messages import EVENTS_DECODER, EventBatch
from engine.pull import BatchPull, stream_position
from engine.topology import Topology
from ledger._columns import TransferColumns
from ledger.alerts import Alert, dead_letter, ensure_dead_letter_stream, raise_alert
from ledger.exceptions import Difference, ExceptionKind, ExceptionQueue
from ledger.ledger import CommitResult, EventCommit, Ledger
from ledger.postings import posting_account, postings_of_batches

log = logging.getLogger("clearline.ledger")

CONSUMER = "ledger"
# Messages fetched and booked per round: large enough to amortise a fetch at the target rate,
# small enough that a round stays far inside ack_wait.
fetch_messages_max = 2000
# The first round after (re)subscribing is this small, and each round after it twice the one
# before, up to the most: so the first write starts while the rest of a backlog is still read,
# rather than after a whole round (about a tenth of a 20,000-entry catch-up, measured).
fetch_messages_first = 250
# Unacknowledged messages JetStream lets the consumer hold: a few rounds' worth.
ack_pending_max = 4 * fetch_messages_max
# A message not acknowledged in this long is delivered again (the consumer died mid-round).
ack_wait_s = 30.0
# How long a fetch waits for the first message when the stream is quiet.
fetch_wait_s = 1.0
# Account ids remembered as created (8 B each in a set, ~60 B with its overhead); when full the
# set starts again, and the ids come back as the ledger answers account_exists for them.
known_accounts_max = 1 << 20
# Pauses between attempts to reach PostgreSQL again: doubling from the first to the last.
reconnect_pause_s_min = 0.1
reconnect_pause_s_max = 5.0


# An EventBatch that can be booked, with its transfers (ledger/postings.py).
_Bookable = tuple[EventBatch, TransferColumns]
# A round being stored: the ledger's write, the messages to acknowledge, what it books.
_Staged = tuple["asyncio.Task[list[CommitResult]]", list[Any], list[_Bookable]]
# A round read and decoded: its messages (all to acknowledge once booked), what can be booked,
# and every account id that names.
_Round = tuple[list[Any], list[_Bookable], npt.NDArray[np.int64]]


class LedgerConsumer:
    """Books one shard's events into the ledger. `await start()`, then `await run()` until
    `stop()`; or `await round()` to book what is there now (tests, benchmarks)."""

    def __init__(
        self,
        nc: Any,
        topology: Topology,
        open_ledger: Callable[[], Awaitable[Ledger]],
        open_exceptions: Callable[[], Awaitable[ExceptionQueue]],
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.topology = topology
        self._open_ledger = open_ledger
        self._open_exceptions = open_exceptions
        self.ledger: Ledger | None = None
        self.exceptions: ExceptionQueue | None = None
        self._sub: Any = None
        self._fetch_size = fetch_messages_first  # see fetch_messages_first
        self._stopping = asyncio.Event()
        # Accounts this consumer has seen created: an event touching only these needs no
        # create_accounts round trip (ledger accounts are never deleted).
        self._known: set[int] = set()
        # The next round, fetched and decoded while PostgreSQL writes the current one.
        self._next_round: asyncio.Task[_Round | None] | None = None
        # The round PostgreSQL is storing (`Ledger.stage_events`), acknowledged once stored.
        self._in_flight: _Staged | None = None
        # What it has done, for status lines, metrics and the benchmark.
        self.journal_seq_booked = 0
        self.events_booked = 0
        self.events_redelivered = 0  # found applied already: booked by an earlier delivery
        self.transfers_booked = 0
        self.dead_lettered = 0
        self.lag_ns_last = 0  # from the entry's journal time to its commit
        self.lag_ns_max = 0

    @classmethod
    def for_database(cls, nc: Any, topology: Topology, database_url: str) -> LedgerConsumer:
        """A consumer that books into the ledger and exception queue at `database_url`."""
        return cls(
            nc,
            topology,
            lambda: Ledger.open(database_url),
            lambda: ExceptionQueue.open(database_url),
        )

    async def start(self) -> None:
        """Open the ledger (refused while another writer holds it), then consume the events
        stream from the entry after the last one the ledger booked.

        The ledger, not JetStream's acknowledgements, says where to start: a consumer killed
        with a round in hand would otherwise leave that round with JetStream until ack_wait
        passes, and the ledger that far behind.
        """
        await ensure_dead_letter_stream(self.js, self.topology)
        await self._reopen()
        await self._subscribe()

    async def _subscribe(self) -> None:
        """(Re)create the durable consumer at the entry after the ledger's last."""
        assert self.ledger is not None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        booked = await self.ledger.journal_seq_booked()
        name = self.topology.consumer_name(CONSUMER)
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.topology.events_stream, name)
        config = ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=booked + 1,
            ack_wait=ack_wait_s,
            max_ack_pending=ack_pending_max,
            filter_subject=self.topology.events_subject,
        )
        await self.js.add_consumer(self.topology.events_stream, config)
        self._sub = await BatchPull.subscribe(self.nc, self.topology.events_stream, name)
        self._fetch_size = min(fetch_messages_first, fetch_messages_max)
        self.journal_seq_booked = booked

    async def _reopen(self) -> None:
        """(Re)connect to PostgreSQL, pausing longer after each failure, until it answers or
        the consumer is stopped."""
        await self._close_books()
        pause = reconnect_pause_s_min
        while not self._stopping.is_set():
            try:
                self.ledger = await self._open_ledger()
                self.exceptions = await self._open_exceptions()
                return
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("ledger database unreachable (%s); again in %.1f s", exc, pause)
                await self._close_books()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
                pause = min(2 * pause, reconnect_pause_s_max)

    async def _close_books(self) -> None:
        for books in (self.ledger, self.exceptions):
            if books is not None:
                with contextlib.suppress(Exception):
                    await books.close()
        self.ledger = self.exceptions = None

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self.stop()
        await self._drop_next_round()
        with contextlib.suppress(Exception):  # stored or not, the ledger says where to resume
            await self._settle()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        await self._close_books()

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.round()

    async def round(self, *, wait_s: float = fetch_wait_s) -> int:
        """Fetch up to `fetch_messages_max` messages, book them in one ledger write, then
        acknowledge them. Returns how many were acknowledged.

        Rounds overlap: while PostgreSQL stores one round (`Ledger.stage_events`), the next is
        fetched, decoded and decided, and its write queued behind; a round is acknowledged once
        stored, by the call after the one that staged it (or the first call that finds its
        write done before a new round came). A round that cannot be staged is booked alone
        (`commit_events`, after the staged ones). When the read found nothing, the call reads
        again, so a round returns 0 only when nothing came within `wait_s`.
        """
        task, self._next_round = self._next_round, None
        if task is not None and self._in_flight is not None and not task.done():
            await asyncio.wait([task, self._in_flight[0]], return_when=asyncio.FIRST_COMPLETED)
            if not task.done():  # the write landed first: acknowledge it, the read goes on
                self._next_round = task
                return await self._settle() or 0
        prepared = await task if task is not None else None
        if prepared is None:
            if self._in_flight is not None:
                return await self._settle() or 0
            prepared = await self._read_round(wait_s)
            if prepared is None:
                return 0
        msgs, bookable, account_ids = prepared
        if not self._stopping.is_set():
            self._next_round = asyncio.create_task(self._read_round(wait_s))
        try:
            staged = await self._stage(bookable, account_ids)
            if staged is not None:
                previous, self._in_flight = self._in_flight, (staged, msgs, bookable)
                return await self._settle(previous) or 0 if previous is not None else 0
            acked = await self._settle()
            if acked is None:  # resumed from the ledger's last entry: this round comes again
                return 0
            booked = await self._handle(bookable, account_ids)
        except BaseException:
            await self._drop_next_round()  # the next round is never booked before this one
            raise
        if not booked:
            # Stopped before they were booked: these and the next round are delivered again.
            await self._drop_next_round()
            return acked
        for msg in msgs:
            await msg.ack()
        return acked + len(msgs)

    async def _stage(
        self, bookable: list[_Bookable], account_ids: npt.NDArray[np.int64]
    ) -> asyncio.Task[list[CommitResult]] | None:
        """Stage the round's write (its new accounts created beside it), when the ledger can
        decide it without a query; None otherwise."""
        if self.ledger is None or not bookable or self._stopping.is_set():
            return None
        unknown = [i for i in account_ids.tolist() if i not in self._known]
        if unknown:
            try:
                created = await self.ledger.create_accounts_aside(
                    [posting_account(i) for i in unknown]
                )
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError):
                return None  # `_book` waits PostgreSQL out
            self._known.update(created)
            if len(created) != len(unknown):
                return None  # an account PostgreSQL holds already: `_book` reads it
        return await self.ledger.stage_events(self._event_commits(bookable))

    async def _settle(self, staged: _Staged | None = None) -> int | None:
        """Wait for a staged round (by default the one in flight) to be stored, count what it
        booked and acknowledge it; how many messages that acknowledged. A database failure
        drops it and everything read after it, and resumes from the ledger's last entry: None
        (what the caller holds was read after it, and comes again)."""
        if staged is None:
            staged, self._in_flight = self._in_flight, None
            if staged is None:
                return 0
        task, msgs, bookable = staged
        try:
            outcomes = await task
        except (psycopg.Error, OSError, RuntimeError) as exc:
            await self._recover(exc)
            return None
        self._count(bookable, outcomes)
        for msg in msgs:
            await msg.ack()
        return len(msgs)

    async def _recover(self, exc: BaseException) -> None:
        """After a failed staged write: nothing read since is booked or acknowledged; the
        consumer starts again at the entry after the ledger's last."""
        log.warning("ledger write failed (%s); resuming from the ledger's last entry", exc)
        await self._drop_next_round()
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            with contextlib.suppress(BaseException):
                await in_flight[0]
        await self._reopen()
        if self.ledger is not None:
            await self._subscribe()

    async def _read_round(self, wait_s: float) -> _Round | None:
        """Fetch a round and decode it (dead-lettering what cannot be booked); None when no
        message came within `wait_s`."""
        try:
            msgs = await self._sub.fetch(self._fetch_size, wait_s)
        except (TimeoutError, nats.errors.TimeoutError):
            return None
        self._fetch_size = min(2 * self._fetch_size, fetch_messages_max)
        bookable, account_ids = await self._prepare(msgs)
        return msgs, bookable, account_ids

    async def _prepare(self, msgs: list[Any]) -> tuple[list[_Bookable], npt.NDArray[np.int64]]:
        """A round's messages decoded and posted: what can be booked, and the accounts it
        names; what cannot be booked is dead-lettered."""
        # In a thread: meanwhile the event loop feeds PostgreSQL the round being stored.
        decoded, posted = await asyncio.to_thread(self._decode_round, msgs)
        parsed: list[tuple[Any, EventBatch]] = []
        for msg, batch in zip(msgs, decoded, strict=True):
            if isinstance(batch, str):
                await self._dead_letter(msg, stream_position(msg), batch)
            else:
                parsed.append((msg, batch))
        if posted is not None:
            account_ids, columns = posted
            return list(zip((b for _, b in parsed), columns, strict=True)), account_ids
        return await self._postings_one_by_one(parsed)

    def _decode_round(
        self, msgs: list[Any]
    ) -> tuple[list[EventBatch | str], tuple[npt.NDArray[np.int64], list[TransferColumns]] | None]:
        """Each message's EventBatch or why it cannot be booked, and the postings of the
        EventBatches (None when one of them cannot be posted). Pure: runs in a thread."""
        decoded = [self._decoded(msg) for msg in msgs]
        try:
            return decoded, postings_of_batches([b for b in decoded if not isinstance(b, str)])
        except ValueError:
            return decoded, None

    def _decoded(self, msg: Any) -> EventBatch | str:
        """The message's EventBatch, or why it cannot be booked."""
        position = stream_position(msg)
        try:
            batch = EVENTS_DECODER.decode(msg.data)
        except msgspec.DecodeError as exc:
            return f"undecodable EventBatch: {exc}"
        # The engine puts entry k's EventBatch at position k of its shard's events stream.
        if batch.shard != self.topology.shard or batch.journal_seq != position:
            return (
                f"EventBatch of shard {batch.shard!r} entry {batch.journal_seq} at position"
                f" {position} of shard {self.topology.shard!r}'s events stream"
            )
        return batch

    async def _drop_next_round(self) -> None:
        """Forget the round read ahead: unacknowledged, its messages are delivered again."""
        task, self._next_round = self._next_round, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _handle(self, bookable: list[_Bookable], account_ids: npt.NDArray[np.int64]) -> bool:
        """Book a round; retried while PostgreSQL is away (the event ids make a second write
        of what did land a no-op). False when stopped before the booking was done."""
        while bookable:
            if self._stopping.is_set():
                return False
            try:
                if await self._book(bookable, account_ids):
                    return True
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                log.warning("ledger database failed mid-round (%s); reconnecting", exc)
                await self._reopen()
        return True

    async def _postings_one_by_one(
        self, parsed: list[tuple[Any, EventBatch]]
    ) -> tuple[list[_Bookable], npt.NDArray[np.int64]]:
        """The round's transfers and the accounts they name, one batch at a time, when one
        cannot be posted: only it is dead-lettered."""
        bookable: list[_Bookable] = []
        named: list[npt.NDArray[np.int64]] = []
        for msg, batch in parsed:
            try:
                ids, [transfers] = postings_of_batches([batch])
            except ValueError as exc:  # a row that fits no transfer id: it cannot be booked
                position = stream_position(msg)
                await self._dead_letter(msg, position, f"EventBatch not bookable: {exc}")
                continue
            bookable.append((batch, transfers))
            named.append(ids)
        return bookable, np.unique(np.concatenate(named)) if named else np.empty(0, np.int64)

    async def _book(self, bookable: list[_Bookable], account_ids: npt.NDArray[np.int64]) -> bool:
        """Book in one ledger write; False when there is no ledger to write to (stopping)."""
        if self.ledger is None:
            await self._reopen()
            if self.ledger is None:
                return False
        # Accounts first, in their own transaction: creating one again is a no-op.
        unknown = [i for i in account_ids.tolist() if i not in self._known]
        if unknown:
            created = await self.ledger.create_accounts([posting_account(i) for i in unknown])
            wrong = [(i, r) for i, r in created if r != AccountResult.account_exists]
            if wrong:  # the posting rules made an account the ledger refuses: a bug, not data
                raise RuntimeError(f"ledger refused accounts: {wrong}")
            if len(self._known) + len(unknown) > known_accounts_max:
                self._known.clear()
            self._known.update(unknown)
        outcomes = await self.ledger.commit_events(self._event_commits(bookable))
        for (batch, transfers), outcome in zip(bookable, outcomes, strict=True):
            # An event applied before (a redelivery) books nothing, and reports nothing again.
            refused = [] if outcome.event_already_applied else outcome.results
            if refused:
                await self._report_refused(batch, transfers, refused)
        self._count(bookable, outcomes)
        return True

    def _event_commits(self, bookable: list[_Bookable]) -> list[EventCommit]:
        return [
            EventCommit(
                event_id=self.topology.event_message_id(batch.journal_seq),
                journal_seq=batch.journal_seq,
                transfers=transfers,
                ts_ns=batch.ts_ns,
            )
            for batch, transfers in bookable
        ]

    def _count(self, bookable: list[_Bookable], outcomes: list[CommitResult]) -> None:
        """What a booked round did, for status lines, metrics and the benchmark."""
        now_ns = time.time_ns()
        for (batch, transfers), outcome in zip(bookable, outcomes, strict=True):
            self.events_redelivered += outcome.event_already_applied
            refused = 0 if outcome.event_already_applied else len(outcome.results)
            self.journal_seq_booked = max(self.journal_seq_booked, batch.journal_seq)
            self.events_booked += 1
            self.transfers_booked += len(transfers) - refused
            self.lag_ns_last = max(0, now_ns - batch.ts_ns)
            self.lag_ns_max = max(self.lag_ns_max, self.lag_ns_last)

    async def _report_refused(
        self,
        batch: EventBatch,
        transfers: TransferColumns,
        refused: list[tuple[int, TransferResult]],
    ) -> None:
        differences = [
            Difference(
                kind=ExceptionKind.ENGINE_TRANSFER_MUST_BE_BOOKED,
                asset_id=transfers[i].ledger,
                journal_seq=batch.journal_seq,
                bucket=f"transfer {transfers[i].id:x}",
                evidence={
                    "transfer": msgspec.to_builtins(transfers[i]),
                    "result": TransferResult(result).name,
                    "result_code": int(result),
                },
            )
            for i, result in refused
        ]
        assert self.exceptions is not None
        await self.exceptions.record(differences)
        await raise_alert(
            self.nc,
            self.topology,
            Alert(
                source="ledger.consumer",
                kind=ExceptionKind.ENGINE_TRANSFER_MUST_BE_BOOKED.value,
                severity="critical",
                summary=f"the ledger refused {len(refused)} transfer(s) of journal entry"
                f" {batch.journal_seq}; see the exception queue",
                journal_seq=batch.journal_seq,
            ),
        )

    async def _dead_letter(self, msg: Any, position: int, reason: str) -> None:
        await dead_letter(
            self.nc,
            self.topology,
            consumer=CONSUMER,
            stream=self.topology.events_stream,
            position=position,
            data=msg.data,
            reason=reason,
            source="ledger.consumer",
            summary=f"events stream message {position} not booked: {reason[:200]}",
            journal_seq=position,
        )
        self.dead_lettered += 1


__all__ = [
    "CONSUMER",
    "LedgerConsumer",
    "fetch_messages_first",
    "fetch_messages_max",
    "known_accounts_max",
]
