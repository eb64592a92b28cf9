"""The OrderEntry service: unary order calls and the bidirectional Trade stream.

Each command runs the gateway's part of the order path (README, steps 1 to 3):

1. authorize: the API key names the account and its role must be a trading role;
2. rate limit: one order token per command, else RESOURCE_EXHAUSTED for the whole call;
3. validate (`gateway.convert`): a malformed unary call ends INVALID_ARGUMENT and nothing
   enters; inside a batch the bad command gets a REJECTED report with its 1xxx reason and the
   others go on;
4. pre-trade compliance (`gateway.checks`) for places and amends, never for cancels (taking
   risk off must always be possible): a 2xxx reject is a successful call whose report says
   REJECTED with the reason;
5. journal what passed as one entry and answer with the reports of its EventBatch.

Every place's outcome is counted in `gateway.metrics` (accepted, or rejected by reason).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from engine._codes import EventKind, Reason
from engine.messages import Command, EventBatch, GetOrder
from gateway import metrics
from gateway._proto.clearline.v1 import order_entry_pb2, order_entry_pb2_grpc
from gateway.auth import TRADING_ROLES, Identity
from gateway.checks import first_failure
from gateway.columns import (
    PlaceBlock,
    column_length,
    columns_proto,
    count_places,
    place_block,
    records_of_reports,
    report_records,
    sorted_by_command,
)
from gateway.context import MISSED, OVERFLOWED, GatewayContext, Subscriber, abort
from gateway.convert import (
    CommandContext,
    InstrumentInfo,
    amend_command,
    cancel_command,
    execution_reports,
    mass_cancel_command,
    place_command,
    rejected_report,
)

ReportBatch = order_entry_pb2.ReportBatch
ExecutionReport = order_entry_pb2.ExecutionReport
# Trade stream metadata: "columns" asks for every ReportBatch in ReportColumns.
REPORT_FORMAT_KEY = "clearline-reports"


@dataclass
class _Prepared:
    """A call's commands after the gateway's checks: what goes to the journal, what does not."""

    commands: list[Command] = field(default_factory=list)  # to journal, in batch order
    contexts: list[CommandContext] = field(default_factory=list)  # one per journaled command
    rejects: list[ExecutionReport] = field(default_factory=list)  # refused by the gateway
    places: list[int] = field(default_factory=list)  # batch positions of the places
    block: PlaceBlock | None = None  # the batch's PlaceColumns, journaled last when any passed

    @property
    def journaled_count(self) -> int:
        """Entry positions the journaled commands take."""
        block = self.block
        journaled = 0 if block is None or block.command is None else block.command.count
        return len(self.contexts) + journaled

    def all_contexts(self) -> list[CommandContext]:
        return self.contexts if self.block is None else self.contexts + self.block.contexts()

    def all_rejects(self) -> list[ExecutionReport]:
        return self.rejects if self.block is None else self.rejects + self.block.rejected_reports()

    def place_indexes(self) -> npt.NDArray[np.int64]:
        places = np.array(self.places, dtype=np.int64)
        if self.block is None:
            return places
        block = np.arange(self.block.count, dtype=np.int64) + self.block.first_index
        return np.concatenate((places, block))

    def position_arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """Batch command index and instrument id (-1: none) of each journaled position."""
        positions = [context.command_index for context in self.contexts]
        instruments = [
            -1 if context.instrument is None else context.instrument.instrument_id
            for context in self.contexts
        ]
        block = self.block
        if block is not None and block.command is not None:
            assert block.instrument is not None
            journaled = block.journaled_indexes()
            positions += journaled.tolist()
            instruments += [block.instrument.instrument_id] * len(journaled)
        return np.array(positions, dtype=np.int64), np.array(instruments, dtype=np.int32)


@dataclass(frozen=True)
class _Abort:
    """Queued for a stream's writer: end the call with this status."""

    code: grpc.StatusCode
    details: str


class OrderEntryServicer(order_entry_pb2_grpc.OrderEntryServicer):
    def __init__(self, context: GatewayContext) -> None:
        self._ctx = context

    # -- unary calls --

    async def PlaceOrder(
        self, request: order_entry_pb2.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> ReportBatch:
        return await self._unary(order_entry_pb2.Command(place=request), context)

    async def CancelOrder(
        self, request: order_entry_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> ReportBatch:
        return await self._unary(order_entry_pb2.Command(cancel=request), context)

    async def AmendOrder(
        self, request: order_entry_pb2.AmendOrderRequest, context: grpc.aio.ServicerContext
    ) -> ReportBatch:
        return await self._unary(order_entry_pb2.Command(amend=request), context)

    async def MassCancel(
        self, request: order_entry_pb2.MassCancelRequest, context: grpc.aio.ServicerContext
    ) -> ReportBatch:
        return await self._unary(order_entry_pb2.Command(mass_cancel=request), context)

    async def _unary(
        self, command: order_entry_pb2.Command, context: grpc.aio.ServicerContext
    ) -> ReportBatch:
        started = time.perf_counter()
        identity = await self._ctx.authorize(context, TRADING_ROLES, orders=1)
        try:
            prepared = await self.prepare([command], identity)
            if prepared.rejects:
                report = prepared.rejects[0]
                _count(prepared, prepared.rejects)
                if report.reason < 2000:  # malformed: a gRPC status, not a business reject
                    await abort(
                        context,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"{report.reason_name} ({report.reason})",
                        (("clearline-reason", str(report.reason)),),
                    )
                return ReportBatch(reports=prepared.rejects)
            seq, offset, future = await self.append(prepared)
            batch = await self.outcome(seq, future)
        except _AbortError as exc:
            await abort(context, exc.code, exc.details)
        reports = execution_reports(
            rows_of_commands(batch, offset, len(prepared.contexts)),
            self._ctx.catalog,
            batch.journal_seq,
            account_id=identity.account_id,
            commands=prepared.contexts,
            command_offset=offset,
        )
        _count(prepared, reports)
        metrics.ORDER_ACK_SECONDS.observe(time.perf_counter() - started)
        return ReportBatch(reports=reports)

    # -- the stream --

    async def Trade(
        self,
        request_iterator: AsyncIterator[order_entry_pb2.CommandBatch],
        context: grpc.aio.ServicerContext,
    ) -> None:
        identity = await self._ctx.authorize(context, TRADING_ROLES)
        report_format = dict(context.invocation_metadata() or ()).get(REPORT_FORMAT_KEY, "messages")
        if report_format not in ("messages", "columns"):
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"metadata {REPORT_FORMAT_KEY} must be 'messages' or 'columns', not "
                f"{report_format!r}",
            )
        session = _TradeSession(self, identity, context, columns=report_format == "columns")
        await session.run(request_iterator)

    # -- the steps shared by both --

    async def prepare(
        self,
        commands: Sequence[order_entry_pb2.Command],
        identity: Identity,
        places: order_entry_pb2.PlaceColumns | None = None,
    ) -> _Prepared:
        """Validate and check each command, then each order of ``places`` (after them in the
        batch); sort them into journaled and refused.

        Raises `_AbortError` (UNAVAILABLE) when an amend's order must be looked up and the
        engine does not answer.
        """
        ctx, account_id = self._ctx, identity.account_id
        catalog = ctx.catalog
        prepared = _Prepared()
        now_ns = time.time_ns()
        state, live = ctx.compliance.get(account_id), ctx.compliance.live
        failures: dict[int, Reason | None] = {}

        def compliance_failure(instrument: InstrumentInfo) -> Reason | None:
            # One account, one moment: the checks' answer depends only on the instrument.
            key = instrument.instrument_id
            if key not in failures:
                failures[key] = first_failure(
                    state, instrument, now_ns, ctx.compliance_limits, cache_live=live
                )
            return failures[key]

        for index, command in enumerate(commands):
            which = command.WhichOneof("command")
            instrument: InstrumentInfo | None = None
            result: Command | Reason
            if which == "place":
                prepared.places.append(index)
                result = place_command(command.place, account_id, catalog)
                instrument = catalog.get(command.place.instrument)
            elif which == "cancel":
                result = cancel_command(command.cancel, account_id)
            elif which == "amend":
                # An order unknown to the engine (or someone else's) gets no instrument, and
                # then the engine's own answer, order_must_exist, without a journal entry: there
                # are no units to convert the amend with.
                instrument = await self._order_instrument(identity, command.amend.order_id)
                result = amend_command(command.amend, account_id, instrument)
            elif which == "mass_cancel":
                result = mass_cancel_command(command.mass_cancel, account_id, catalog)
                instrument = catalog.get(command.mass_cancel.instrument)
            else:
                result = Reason.command_must_be_given
            if not isinstance(result, Reason) and which in ("place", "amend"):
                assert instrument is not None
                result = compliance_failure(instrument) or result
            if isinstance(result, Reason):
                prepared.rejects.append(rejected_report(result, index, command))
                continue
            prepared.commands.append(result)
            prepared.contexts.append(CommandContext(index, instrument))
        if places is not None:
            block = prepared.block = place_block(places, account_id, catalog, len(commands))
            if block.command is not None:
                assert block.instrument is not None
                failure = compliance_failure(block.instrument)
                if failure is not None:
                    block.refuse(failure)
                else:
                    prepared.commands.append(block.command)
        return prepared

    async def _order_instrument(self, identity: Identity, order_id: int) -> InstrumentInfo | None:
        """The instrument of an order, from the gateway's memory or else the engine."""
        if order_id == 0:
            return None
        ctx = self._ctx
        known = ctx.order_instruments.get(order_id)
        if known is not None:
            # Another account's order is as unknown as on the query path below (the engine
            # shows no one else's orders), so that an amend cannot probe which ids exist.
            instrument_id, owner = known
            if owner != identity.account_id:
                return None
        else:
            query = GetOrder(account_id=identity.account_id, order_id=order_id)
            try:
                reply = await ctx.engine.query(query)
            except Exception as exc:
                raise _AbortError(
                    grpc.StatusCode.UNAVAILABLE, f"the engine did not answer: {exc}"
                ) from exc
            if not reply.ok or "instrument_id" not in reply.result:
                return None
            instrument_id = int(reply.result["instrument_id"])
        return ctx.catalog.by_id.get(instrument_id)

    async def append(self, prepared: _Prepared) -> tuple[int, int, asyncio.Future[EventBatch]]:
        """Journal the prepared commands with those of concurrent calls (group commit).
        Returns the entry's sequence, the commands' position in it and the future of its
        outcome. Raises `_AbortError` when JetStream refuses."""
        group, offset = self._ctx.engine.join_group(prepared.commands)
        seq, future = await self.journaled(group.journaled)
        return seq, offset, future

    async def journaled(
        self, journaled: asyncio.Future[tuple[int, asyncio.Future[EventBatch]]]
    ) -> tuple[int, asyncio.Future[EventBatch]]:
        """Wait (shielded: the group is shared) until a group is journaled; raises
        `_AbortError` when JetStream refused it."""
        try:
            seq, future = await asyncio.shield(journaled)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _AbortError(
                grpc.StatusCode.UNAVAILABLE, f"the journal did not take the commands: {exc}"
            ) from exc
        self._ctx.events.appended(seq)
        return seq, future

    async def outcome(self, seq: int, future: asyncio.Future[EventBatch]) -> EventBatch:
        try:
            # Shielded: the future may be shared by the calls of one group. (asyncio.timeout,
            # not wait_for: no task of its own per call.)
            async with asyncio.timeout(self._ctx.limits.engine_reply_timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            raise _AbortError(
                grpc.StatusCode.UNAVAILABLE,
                f"journal entry {seq} is journaled but the engine has not applied it in "
                f"{self._ctx.limits.engine_reply_timeout_s} s; it will apply: read the orders' "
                "state with GetOpenOrders",
            ) from None


def rows_of_commands(batch: EventBatch, offset: int, count: int) -> Any:
    """The event rows of commands ``offset`` to ``offset + count`` of a shared entry.

    The engine writes an entry's rows in command order, so a caller's rows are one slice,
    found by binary search: each of many callers sharing an entry then costs its own rows, not
    the whole entry's. O(log rows) (plus one O(rows) check of that order, in NumPy).
    """
    rows = batch.event_rows()
    index = rows["command_index"]
    if len(index) > 1 and bool((index[1:] < index[:-1]).any()):
        return rows  # not in command order: execution_reports filters by index itself
    low, high = np.searchsorted(index, (offset, offset + count))
    return rows[low:high]


class _AbortError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _count(prepared: _Prepared, reports: Sequence[ExecutionReport]) -> None:
    """Count each place of the call as accepted, or rejected by its reason."""
    if not prepared.places and prepared.block is None:
        return
    rejected: dict[int, int] = {}
    for report in reports:
        if report.kind == EventKind.REJECTED:
            rejected.setdefault(report.command_index, report.reason)
    places = set(prepared.place_indexes().tolist())
    by_reason = collections.Counter(
        Reason(reason) for index, reason in rejected.items() if index in places
    )
    metrics.count_orders(len(places) - sum(by_reason.values()), by_reason)


@dataclass(eq=False)
class _Own:
    """One of a stream's batches that went to the journal and is not answered yet."""

    journaled: asyncio.Future[tuple[int, asyncio.Future[EventBatch]]]  # the group's
    positions: range  # its commands' positions in the entry: what its reply answers
    replied: asyncio.Event = field(default_factory=asyncio.Event)


class _TradeSession:
    """One Trade stream: batches in, their ReportBatches and the account's other reports out.

    The reader takes one CommandBatch at a time through the gateway's checks and adds what
    passed to the journal's current group (group commit), which fixes its journal order; it
    then reads on while the batch is journaled and applied (pipelining, up to
    `stream_batches_in_flight_max` batches). One reply task per batch waits for its outcome and
    queues its ReportBatch after the previous batch's, so replies keep the batches' order. The
    pump turns the rest of every EventBatch that concerns the account (fills as maker, expiries,
    the risk desk's cancels, the account's orders sent on other calls), including the rows of
    other calls' commands in an entry this stream shares, into a ReportBatch with batch_id 0,
    in journal order, after the replies of this stream's own batches in that entry or before.
    The writer (the call's own task) sends what is queued.

    A client that disconnects stops them all; whatever was journaled stays journaled and
    applies, and its reports reach the account's other streams.
    """

    def __init__(
        self,
        servicer: OrderEntryServicer,
        identity: Identity,
        context: grpc.aio.ServicerContext,
        *,
        columns: bool = False,
    ) -> None:
        self._servicer = servicer
        self._columns = columns
        self._ctx = servicer._ctx
        self._identity = identity
        self._context = context
        self._out: asyncio.Queue[ReportBatch | _Abort | None] = asyncio.Queue()
        self._in_flight = asyncio.Semaphore(self._ctx.limits.stream_batches_in_flight_max)
        self._own: collections.deque[_Own] = collections.deque()  # journal order
        # Own entries the pump may still see: the positions of own commands in each, whose rows
        # the replies answer (the pump reports the entry's other rows that concern the account).
        self._own_positions: dict[int, list[range]] = {}
        self._last_reply: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Task[None]] = set()

    async def run(self, requests: AsyncIterator[order_entry_pb2.CommandBatch]) -> None:
        subscriber = self._ctx.events.subscribe(self._identity.account_id)
        tasks = [
            asyncio.create_task(self._read(requests)),
            asyncio.create_task(self._pump(subscriber)),
        ]
        try:
            while True:
                item = await self._out.get()
                if item is None:
                    return
                if isinstance(item, _Abort):
                    await abort(self._context, item.code, item.details)
                await self._context.write(item)
        finally:
            self._ctx.events.unsubscribe(self._identity.account_id, subscriber)
            tasks += self._replies
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, requests: AsyncIterator[order_entry_pb2.CommandBatch]) -> None:
        try:
            async for batch in requests:
                await self._in_flight.acquire()
                self._handle(batch, await self._prepare(batch))
        except _AbortError as exc:
            self._out.put_nowait(_Abort(exc.code, exc.details))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client's side broke off; nothing more to answer
            self._out.put_nowait(_Abort(grpc.StatusCode.CANCELLED, f"stream ended: {exc}"))
            return
        if self._last_reply is not None:
            await asyncio.wait((self._last_reply,))
        self._out.put_nowait(None)  # the client half-closed: end once every reply is out

    async def _prepare(self, batch: order_entry_pb2.CommandBatch) -> _Prepared | Reason:
        ctx, identity = self._ctx, self._identity
        places = batch.places if batch.HasField("places") else None
        count = len(batch.commands) + (0 if places is None else column_length(places))
        if count > ctx.limits.batch_commands_max:
            return Reason.batch_must_not_exceed_maximum
        if not ctx.order_buckets.take(identity.key_id, max(1, count)):
            raise _AbortError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"rate limit of API key {identity.key_id} reached for a batch of "
                f"{count} orders; slow down",
            )
        return await self._servicer.prepare(batch.commands, identity, places)

    def _handle(self, batch: order_entry_pb2.CommandBatch, prepared: _Prepared | Reason) -> None:
        """Journal what passed (in arrival order) and start the batch's reply task."""
        own, offset = None, 0
        if isinstance(prepared, _Prepared) and prepared.commands:
            group, offset = self._ctx.engine.join_group(prepared.commands)
            own = _Own(group.journaled, range(offset, offset + prepared.journaled_count))
            self._own.append(own)
        task = asyncio.create_task(
            self._reply(batch.batch_id, prepared, own, offset, self._last_reply)
        )
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)
        self._last_reply = task

    async def _reply(
        self,
        batch_id: int,
        prepared: _Prepared | Reason,
        own: _Own | None,
        offset: int,
        previous: asyncio.Task[None] | None,
    ) -> None:
        started = time.perf_counter()
        try:
            outcome = None
            if own is not None and isinstance(prepared, _Prepared):
                seq, future = await self._servicer.journaled(own.journaled)
                self._learn_own(seq, own)
                outcome = await self._servicer.outcome(seq, future)
            if isinstance(prepared, Reason):
                reply = self._reply_batch(batch_id, [rejected_report(prepared, 0)])
            elif self._columns:
                reply = self._columns_reply(batch_id, prepared, outcome, offset)
            else:
                reply = self._messages_reply(batch_id, prepared, outcome, offset)
            if previous is not None:
                await asyncio.wait((previous,))  # replies in the order of their batches
            self._out.put_nowait(reply)
            metrics.ORDER_ACK_SECONDS.observe(time.perf_counter() - started)
        except _AbortError as exc:
            self._out.put_nowait(_Abort(exc.code, exc.details))
        finally:
            self._in_flight.release()
            if own is not None:
                own.replied.set()
                self._own.remove(own)

    def _reply_batch(self, batch_id: int, reports: list[ExecutionReport]) -> ReportBatch:
        if self._columns:
            records = records_of_reports(reports, self._ctx.catalog)
            return ReportBatch(batch_id=batch_id, columns=columns_proto(records))
        return ReportBatch(batch_id=batch_id, reports=reports)

    def _messages_reply(
        self, batch_id: int, prepared: _Prepared, outcome: EventBatch | None, offset: int
    ) -> ReportBatch:
        reports = list(prepared.all_rejects())
        if outcome is not None:
            reports += execution_reports(
                rows_of_commands(outcome, offset, prepared.journaled_count),
                self._ctx.catalog,
                outcome.journal_seq,
                account_id=self._identity.account_id,
                commands=prepared.all_contexts(),
                command_offset=offset,
            )
            reports.sort(key=lambda report: report.command_index)  # stable: row order kept
        _count(prepared, reports)
        return ReportBatch(batch_id=batch_id, reports=reports)

    def _columns_reply(
        self, batch_id: int, prepared: _Prepared, outcome: EventBatch | None, offset: int
    ) -> ReportBatch:
        """`_messages_reply` in columns: the same reports, built in NumPy."""
        parts = []
        if prepared.rejects:
            parts.append(records_of_reports(prepared.rejects, self._ctx.catalog))
        if prepared.block is not None and prepared.block.reasons.any():
            parts.append(prepared.block.rejected_records())
        if outcome is not None:
            positions, instrument_ids = prepared.position_arrays()
            rows = rows_of_commands(outcome, offset, len(positions))
            parts.append(
                report_records(
                    rows,
                    outcome.journal_seq,
                    self._identity.account_id,
                    positions=positions,
                    instrument_ids=instrument_ids,
                    offset=offset,
                )
            )
        records = sorted_by_command(*parts)
        accepted, by_reason = count_places(records, prepared.place_indexes())
        metrics.count_orders(accepted, by_reason)
        return ReportBatch(batch_id=batch_id, columns=columns_proto(records))

    def _learn_own(self, seq: int, own: _Own) -> None:
        answered = self._own_positions.setdefault(seq, [])
        if own.positions not in answered:
            answered.append(own.positions)

    async def _pump(self, subscriber: Subscriber) -> None:
        ctx, account_id = self._ctx, self._identity.account_id
        while True:
            item = await subscriber.get()
            if item is OVERFLOWED:
                self._out.put_nowait(
                    _Abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "the stream fell too far behind its reports; reconnect and read the "
                        "account's open orders",
                    )
                )
                return
            if item is MISSED:
                self._out.put_nowait(
                    _Abort(
                        grpc.StatusCode.UNAVAILABLE,
                        "the gateway missed some of the engine's events, so reports may be "
                        "missing; reconnect and read the account's open orders",
                    )
                )
                return
            batch: EventBatch = item
            seq = batch.journal_seq
            # An EventBatch can overtake its append's ack: learn where each of the stream's
            # own unanswered entries landed, and let their replies go first.
            for own in list(self._own):
                if not own.journaled.done():
                    await asyncio.wait((own.journaled,))
                if own.journaled.cancelled() or own.journaled.exception() is not None:
                    continue
                own_seq = own.journaled.result()[0]
                self._learn_own(own_seq, own)
                if own_seq > seq:
                    break
                await own.replied.wait()  # the reply first: it may accept what the rest fills
            answered = self._own_positions.pop(seq, []) if batch.origin == ctx.engine.origin else []
            # Batches come in journal order: own entries up to this one are done with.
            for done in [s for s in self._own_positions if s < seq]:
                del self._own_positions[done]
            rows = batch.event_rows()
            if answered:
                # The rest of an entry shared with other calls: e.g. this account's resting
                # order filled by another account's order in the same entry.
                index = rows["command_index"]
                others = np.ones(len(rows), dtype=bool)
                for positions in answered:
                    others &= (index < positions.start) | (index >= positions.stop)
                rows = rows[others]
            if self._columns:
                records = report_records(rows, seq, account_id)
                if len(records):
                    self._out.put_nowait(ReportBatch(batch_id=0, columns=columns_proto(records)))
                continue
            reports = execution_reports(rows, ctx.catalog, seq, account_id=account_id)
            if reports:
                self._out.put_nowait(ReportBatch(batch_id=0, reports=reports))


__all__ = ["OrderEntryServicer"]
