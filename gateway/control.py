"""The Control service: what the risk desk does to a running engine (clearctl speaks it), and
reconciliation of the engine with the ledger and its exception queue.

Every call needs a key of a role in `CONTROL_ROLES` and lands in the audit log with the key id
as actor, a refused one included. A call that changes something is recorded twice: once as
``requested`` before it is journaled (an action that cannot be recorded must not happen, so a
failed write refuses the call) and once with its outcome. Its journal entry carries the key id
too (`JournalEntry.actor`), so the journal itself says who halted what.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import msgspec
import psycopg

from engine._codes import EventKind, Reason
from engine.messages import (
    Command,
    GetRiskLimits,
    GetStatus,
    HaltInstrument,
    MassCancel,
    ResumeInstrument,
    SetKillSwitch,
    SetRiskLimits,
    TakeSnapshot,
)
from gateway._proto.clearline.v1 import control_pb2, control_pb2_grpc
from gateway.auth import ALL_ROLES, CONTROL_ROLES, Identity
from gateway.checks import first_failure
from gateway.context import GatewayContext, abort
from gateway.convert import (
    InstrumentInfo,
    engine_status_proto,
    int63_max,
    reason_name,
    risk_limits_amounts,
    risk_limits_proto,
)
from ledger.exceptions import Difference, ExceptionNotOpen, ExceptionQueue, QueuedException
from ledger.reader import LedgerReader
from ledger.reconcile import reconcile

log = logging.getLogger(__name__)

ControlReply = control_pb2.ControlReply


@dataclass(frozen=True)
class _AnyInstrument:
    """GetCustomerState asks about the customer alone: an instrument open to everyone."""

    jurisdictions_allowed: frozenset[str] = frozenset()


_EVERY_JURISDICTION = _AnyInstrument()


class ControlServicer(control_pb2_grpc.ControlServicer):
    def __init__(self, context: GatewayContext) -> None:
        self._ctx = context

    # -- authorization and the audit log --

    async def _authorize(
        self, call: grpc.aio.ServicerContext, action: str, target: str | None, detail: Any
    ) -> Identity:
        identity = await self._ctx.authorize(call, ALL_ROLES)
        if identity.role not in CONTROL_ROLES:
            await self._record(identity, action, target, detail, "permission_denied")
            await abort(
                call,
                grpc.StatusCode.PERMISSION_DENIED,
                f"API key {identity.key_id} has role {identity.role.name}; control calls need "
                f"one of: {', '.join(sorted(role.name for role in CONTROL_ROLES))}",
            )
        return identity

    async def _record(
        self, identity: Identity, action: str, target: str | None, detail: Any, outcome: str
    ) -> bool:
        try:
            await self._ctx.audit.record(identity.key_id, action, target, detail, outcome)
        except Exception:
            log.exception("audit log: could not record %s by %s", action, identity.key_id)
            return False
        return True

    async def _record_or_refuse(
        self,
        call: grpc.aio.ServicerContext,
        identity: Identity,
        action: str,
        target: str | None,
        detail: Any,
        outcome: str,
    ) -> None:
        if not await self._record(identity, action, target, detail, outcome):
            await abort(
                call,
                grpc.StatusCode.UNAVAILABLE,
                "the audit log cannot record the call, so it was not carried out",
            )

    async def _refuse(
        self,
        call: grpc.aio.ServicerContext,
        identity: Identity,
        action: str,
        target: str | None,
        detail: Any,
        details: str,
    ) -> None:
        await self._record(identity, action, target, detail, "invalid_argument")
        await abort(call, grpc.StatusCode.INVALID_ARGUMENT, details)

    async def _journal(
        self,
        call: grpc.aio.ServicerContext,
        identity: Identity,
        action: str,
        target: str | None,
        detail: Mapping[str, Any],
        commands: Sequence[Command],
    ) -> ControlReply:
        """Record the request, journal the commands as the key, record and return the outcome."""
        await self._record_or_refuse(call, identity, action, target, detail, "requested")
        try:
            batch = await self._ctx.engine.submit(
                commands, actor=identity.key_id, timeout_s=self._ctx.limits.engine_reply_timeout_s
            )
        except Exception as exc:
            await self._record(identity, action, target, dict(detail, error=str(exc)), "unknown")
            await abort(
                call,
                grpc.StatusCode.UNAVAILABLE,
                f"no answer from the engine ({exc!r}); the command may still apply: check "
                "GetStatus",
            )
        rows = batch.event_rows()
        rejected: list[Any] = rows[rows["kind"] == EventKind.REJECTED]["reason"].tolist()
        reason: Any = rejected[0] if rejected else 0
        reply = ControlReply(
            reason=reason,
            reason_name=reason_name(rejected[0]) if rejected else "",
            journal_seq=batch.journal_seq,
            orders_cancelled=int((rows["kind"] == EventKind.CANCELLED).sum()),
        )
        outcome = reply.reason_name or "ok"
        full = dict(detail, journal_seq=reply.journal_seq, orders_cancelled=reply.orders_cancelled)
        await self._record(identity, action, target, full, outcome)
        return reply

    async def _unknown_instrument(
        self, identity: Identity, action: str, target: str, detail: Any
    ) -> ControlReply:
        reason = Reason.instrument_must_be_known
        await self._record(identity, action, target, detail, reason.name)
        return ControlReply(reason=int(reason), reason_name=reason.name)  # type: ignore[arg-type]

    def _instrument(self, symbol: str) -> InstrumentInfo | None:
        return self._ctx.catalog.get(symbol)

    # -- the calls --

    async def HaltInstrument(
        self, request: control_pb2.HaltRequest, context: grpc.aio.ServicerContext
    ) -> ControlReply:
        action, target = "halt_instrument", f"instrument:{request.instrument}"
        detail = {"cancel_resting": request.cancel_resting}
        identity = await self._authorize(context, action, target, detail)
        instrument = self._instrument(request.instrument)
        if instrument is None:
            return await self._unknown_instrument(identity, action, target, detail)
        command = HaltInstrument(
            instrument_id=instrument.instrument_id, cancel_resting=request.cancel_resting
        )
        return await self._journal(context, identity, action, target, detail, [command])

    async def ResumeInstrument(
        self, request: control_pb2.ResumeRequest, context: grpc.aio.ServicerContext
    ) -> ControlReply:
        action, target = "resume_instrument", f"instrument:{request.instrument}"
        identity = await self._authorize(context, action, target, {})
        instrument = self._instrument(request.instrument)
        if instrument is None:
            return await self._unknown_instrument(identity, action, target, {})
        command = ResumeInstrument(instrument_id=instrument.instrument_id)
        return await self._journal(context, identity, action, target, {}, [command])

    async def SetKillSwitch(
        self, request: control_pb2.KillSwitchRequest, context: grpc.aio.ServicerContext
    ) -> ControlReply:
        action, target = "set_kill_switch", f"account:{request.account}"
        detail = {"on": request.on}
        identity = await self._authorize(context, action, target, detail)
        if not 0 < request.account <= int63_max:
            await self._refuse(
                context, identity, action, target, detail, "name the account (1 to 2^63 - 1)"
            )
        command = SetKillSwitch(account_id=request.account, on=request.on)
        return await self._journal(context, identity, action, target, detail, [command])

    async def CancelAll(
        self, request: control_pb2.CancelAllRequest, context: grpc.aio.ServicerContext
    ) -> ControlReply:
        action = "cancel_all"
        target = f"account:{request.account or 'all'}"
        detail = {"instrument": request.instrument or "all"}
        identity = await self._authorize(context, action, target, detail)
        if request.account > int63_max:
            await self._refuse(context, identity, action, target, detail, "account too large")
        instrument_id = -1
        if request.instrument:
            instrument = self._instrument(request.instrument)
            if instrument is None:
                return await self._unknown_instrument(identity, action, target, detail)
            instrument_id = instrument.instrument_id
        command = MassCancel(account_id=request.account, instrument_id=instrument_id)
        return await self._journal(context, identity, action, target, detail, [command])

    async def GetRiskLimits(
        self, request: control_pb2.RiskLimitsRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.RiskLimits:
        action, target = "get_risk_limits", f"account:{request.account}"
        identity = await self._authorize(context, action, target, {})
        if request.account > int63_max:
            await self._refuse(context, identity, action, target, {}, "account too large")
        await self._record_or_refuse(context, identity, action, target, {}, "ok")
        reply = await self._ctx.query(context, GetRiskLimits(account_id=request.account))
        if not reply.ok:
            await abort(context, grpc.StatusCode.NOT_FOUND, reply.error)
        return risk_limits_proto(reply.result, self._ctx.catalog)

    async def GetCustomerState(
        self, request: control_pb2.CustomerStateRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.CustomerStateReply:
        action, target = "get_customer_state", f"account:{request.account}"
        identity = await self._authorize(context, action, target, {})
        if not 0 < request.account <= int63_max:
            await self._refuse(
                context, identity, action, target, {}, "name the account (1 to 2^63 - 1)"
            )
        ctx = self._ctx
        state = ctx.compliance.get(request.account)
        blocked = first_failure(
            state,
            _EVERY_JURISDICTION,
            time.time_ns(),
            ctx.compliance_limits,
            cache_live=ctx.compliance.live,
        )
        outcome = "ok" if blocked is None else blocked.name
        await self._record_or_refuse(context, identity, action, target, {}, outcome)
        reply = control_pb2.CustomerStateReply(
            account=request.account,
            known=state is not None,
            blocked_by=0 if blocked is None else int(blocked),  # type: ignore[arg-type]
            blocked_by_name="" if blocked is None else blocked.name,
        )
        if state is not None:
            reply.kyc_verified, reply.frozen, reply.sanctioned = (
                state.kyc_verified,
                state.frozen,
                state.sanctioned,
            )
            reply.jurisdiction, reply.risk_level = state.jurisdiction, state.risk_level
            reply.as_of_ns, reply.reason, reply.changed_by = (
                state.as_of_ns,
                state.reason,
                state.changed_by,
            )
        return reply

    async def SetRiskLimits(
        self, request: control_pb2.RiskLimits, context: grpc.aio.ServicerContext
    ) -> ControlReply:
        action, target = "set_risk_limits", f"account:{request.account}"
        detail = {
            "open_orders_max": request.open_orders_max,
            "order_notional_max": dict(request.order_notional_max),
            "open_notional_max": dict(request.open_notional_max),
        }
        identity = await self._authorize(context, action, target, detail)
        catalog = self._ctx.catalog
        order_notional = risk_limits_amounts(request.order_notional_max, catalog)
        open_notional = risk_limits_amounts(request.open_notional_max, catalog)
        for parsed in (order_notional, open_notional):
            if isinstance(parsed, str):
                await self._refuse(context, identity, action, target, detail, parsed)
        if request.account > int63_max:
            await self._refuse(context, identity, action, target, detail, "account too large")
        assert isinstance(order_notional, dict) and isinstance(open_notional, dict)
        command = SetRiskLimits(
            account_id=request.account,
            open_orders_max=request.open_orders_max,
            order_notional_max=order_notional,
            open_notional_max=open_notional,
        )
        return await self._journal(context, identity, action, target, detail, [command])

    async def GetStatus(
        self, request: control_pb2.StatusRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.EngineStatus:
        action = "get_status"
        identity = await self._authorize(context, action, None, {})
        await self._record_or_refuse(context, identity, action, None, {}, "ok")
        reply = await self._ctx.query(context, GetStatus(with_state_hash=True))
        if not reply.ok:
            await abort(context, grpc.StatusCode.UNAVAILABLE, reply.error)
        return engine_status_proto(reply.result, self._ctx.catalog)

    async def TakeSnapshot(
        self, request: control_pb2.SnapshotRequest, context: grpc.aio.ServicerContext
    ) -> ControlReply:
        action = "take_snapshot"
        identity = await self._authorize(context, action, None, {})
        await self._record_or_refuse(context, identity, action, None, {}, "requested")
        reply = await self._ctx.query(context, TakeSnapshot())
        if not reply.ok:
            await self._record(identity, action, None, {"error": reply.error}, "failed")
            await abort(context, grpc.StatusCode.UNAVAILABLE, reply.error)
        result = reply.result
        detail = {"path": result["path"], "state_hash": result["state_hash"]}
        await self._record(
            identity, action, None, dict(detail, journal_seq=reply.journal_seq), "ok"
        )
        return ControlReply(
            journal_seq=result["journal_seq"],
            detail=f"snapshot {result['path']} state_hash {result['state_hash']}",
        )

    # -- reconciliation --

    @contextlib.asynccontextmanager
    async def _books(
        self, call: grpc.aio.ServicerContext
    ) -> AsyncIterator[tuple[LedgerReader, ExceptionQueue]]:
        """The ledger's reader and the exception queue, for one call (reconciliation is rare:
        a connection per call keeps the gateway free of the ledger's lifecycle)."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                reader = await LedgerReader.open(self._ctx.database_url)
                stack.push_async_callback(reader.close)
                queue = await ExceptionQueue.open(self._ctx.database_url)
                stack.push_async_callback(queue.close)
            except (psycopg.Error, OSError) as exc:
                await abort(
                    call, grpc.StatusCode.UNAVAILABLE, f"ledger database unreachable: {exc}"
                )
            yield reader, queue

    async def Reconcile(
        self, request: control_pb2.ReconcileRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.ReconcileReply:
        action = "reconcile"
        identity = await self._authorize(context, action, None, {})
        await self._record_or_refuse(context, identity, action, None, {}, "requested")
        async with self._books(context) as (reader, queue):
            try:
                report = await reconcile(self._ctx.engine, reader)
            except psycopg.errors.UndefinedTable:
                await self._record(identity, action, None, {}, "ledger_empty")
                await abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "the ledger has booked nothing yet (is its consumer running?)",
                )
            except (TimeoutError, RuntimeError, psycopg.Error) as exc:
                await self._record(identity, action, None, {"error": str(exc)}, "failed")
                await abort(context, grpc.StatusCode.UNAVAILABLE, f"reconciliation: {exc!r}")
            new = await queue.record(report.differences)
        detail = {
            "journal_seq_max": report.journal_seq_max,
            "balances_compared": report.balances_compared,
            "differences": len(report.differences),
            "new_exceptions": new,
        }
        await self._record(identity, action, None, detail, "clean" if report.clean else "breaks")
        return control_pb2.ReconcileReply(
            journal_seq_min=report.journal_seq_min,
            journal_seq_max=report.journal_seq_max,
            engine_accounts=report.engine_accounts,
            balances_compared=report.balances_compared,
            differences=[self._exception_proto(d) for d in report.differences],
            new_exceptions=new,
        )

    async def ListReconciliationExceptions(
        self,
        request: control_pb2.ListReconciliationExceptionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> control_pb2.ReconciliationExceptions:
        action = "list_reconciliation_exceptions"
        detail = {"include_resolved": request.include_resolved}
        identity = await self._authorize(context, action, None, detail)
        await self._record_or_refuse(context, identity, action, None, detail, "ok")
        async with self._books(context) as (_, queue):
            queued = await queue.fetch(
                status=None if request.include_resolved else "open",
                limit=min(request.limit or 100, exceptions_listed_max),
            )
        return control_pb2.ReconciliationExceptions(
            exceptions=[self._exception_proto(q.difference, q) for q in queued]
        )

    async def ResolveReconciliationException(
        self,
        request: control_pb2.ResolveReconciliationExceptionRequest,
        context: grpc.aio.ServicerContext,
    ) -> ControlReply:
        action, target = "resolve_reconciliation_exception", f"exception:{request.id}"
        detail = {"resolution": request.resolution}
        identity = await self._authorize(context, action, target, detail)
        if not request.resolution.strip():
            await self._refuse(
                context, identity, action, target, detail, "say what was done (--resolution)"
            )
        await self._record_or_refuse(context, identity, action, target, detail, "requested")
        async with self._books(context) as (_, queue):
            try:
                await queue.resolve(
                    request.id, resolved_by=identity.key_id, resolution=request.resolution
                )
            except ExceptionNotOpen as exc:
                await self._record(identity, action, target, detail, "not_open")
                await abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
        await self._record(identity, action, target, detail, "ok")
        return ControlReply(detail=f"exception {request.id} resolved")

    def _exception_proto(
        self, d: Difference, queued: QueuedException | None = None
    ) -> control_pb2.ReconciliationException:
        asset = self._ctx.catalog.assets_by_id.get(d.asset_id)
        message = control_pb2.ReconciliationException(
            kind=d.kind.value,
            asset_id=d.asset_id,
            asset=asset.symbol if asset else "",
            owner_id=d.owner_id,
            bucket=d.bucket,
            journal_seq=d.journal_seq,
            evidence_json=msgspec.json.encode(d.evidence).decode(),
        )
        for name in ("engine_minor", "ledger_minor", "chain_minor"):
            value = getattr(d, name)
            if value is not None:
                setattr(message, name, value)
        if queued is not None:
            message.id = queued.id
            message.status = queued.status
            message.seen_count = queued.seen_count
            message.first_seen_ns = queued.first_seen_ns
            message.last_seen_ns = queued.last_seen_ns
            message.resolved_by = queued.resolved_by or ""
            message.resolution = queued.resolution or ""
        return message


# Exceptions one ListReconciliationExceptions call returns at the most.
exceptions_listed_max = 1_000


__all__ = ["ControlServicer"]
