"""One engine shard's state and its deterministic step: apply one journal entry.

`Shard.apply(journal_seq, entry)` is a pure function of the shard's state and the entry: no
clock, no I/O, no randomness. Recovery is therefore a snapshot plus replay, and a state hash
compares a recovered shard with one that never stopped.

How an entry runs (the numbered order path of the README, steps 4 and 5):

1. Each command in order. A place passes the risk pre-checks (engine/risk.py) and reserves its
   hold, or is rejected with a 3xxx reason; cancels, halts and time go straight on.
2. Consecutive core commands form a run, applied by one call of the core's batch path. A
   command that needs exact state (an amend, which resizes a hold) or is not the core's
   (deposits, limits, the kill switch, definitions) first flushes the run.
3. The run's events settle in the risk stage: holds become transfers, fills move money, cancels
   and expiries release holds.
4. The entry's outcome: event rows and transfer rows in command order, and one market data
   update per touched instrument with that instrument's next sequence number.

Run boundaries depend only on the entry's contents, never on timing, so replay reproduces them.

Two risk stages. By default the shard runs the compiled one (engine/_risk.pyx), which also does
the hot steps in C: a place's pre-check writes its command row straight into the run, and step 3
walks the event rows. `Shard(risk="reference")` runs engine/risk.py, the plain-Python reference,
with the steps above in Python; both give the same rows, transfers, market data, queries and
state hashes (tests/engine/test_risk_differential.py).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from engine._codes import (
    CommandKind,
    EventKind,
    InstrumentStatus,
    OrderStatus,
    OrderType,
    Reason,
)
from engine._core import Engine
from engine._dtypes import COMMAND_DTYPE, EVENT_DTYPE, TRANSFER_DTYPE
from engine._limits import EngineLimits
from engine._risk import InstrumentSpec as CompiledInstrumentSpec
from engine._risk import Limits as CompiledLimits
from engine._risk import RiskStage as CompiledRiskStage
from engine._risk import Run
from engine.messages import (
    AdvanceTime,
    AmendOrder,
    BookLevel,
    CancelOrder,
    DefineAsset,
    DefineInstrument,
    Deposit,
    EventBatch,
    HaltInstrument,
    HoldWithdrawal,
    JournalEntry,
    MarketDataUpdate,
    MassCancel,
    PlaceOrder,
    ReleaseWithdrawal,
    ResumeInstrument,
    SetKillSwitch,
    SetRiskLimits,
    SettleWithdrawal,
    TradePrint,
    flat_commands,
)
from engine.risk import (
    BPS,
    FEE_ACCOUNT_ID,
    InstrumentSpec,
    Limits,
    OrderHold,
    RiskStage,
    derive_units,
)

INT64_MAX = (1 << 63) - 1
INT32_MAX = (1 << 31) - 1
SNAPSHOT_MAGIC = b"CLSHARD1"


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one journal entry."""

    events: npt.NDArray[Any]  # EVENT_DTYPE, in command order
    transfers: npt.NDArray[Any]  # TRANSFER_DTYPE, in command order
    market_data: list[MarketDataUpdate]
    instruments_changed: bool


class ShardState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a snapshot holds, in a canonical order (lists sorted by key)."""

    name: str
    journal_seq: int
    ts_ns: int
    core: bytes
    assets: list[DefineAsset]
    instruments: list[DefineInstrument]
    md_sequence: list[tuple[int, int]]
    instrument_status: list[tuple[int, int]]
    balances: list[tuple[int, int, int, int]]
    orders: list[tuple[int, int, int, int, int, int, int, int]]
    limits: list[tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]]]
    kill_switched: list[int]
    withdrawals: list[tuple[str, int, int, int]]
    withdrawals_finished: list[str]
    deposits_credited: list[str]
    terminal: list[tuple[int, int, int, int]]


_STATE_ENCODER = msgspec.msgpack.Encoder(order="deterministic")
_STATE_DECODER = msgspec.msgpack.Decoder(ShardState)


class SnapshotCorrupt(ValueError):
    """A snapshot file that is truncated, altered or of another format."""


_PLACE = int(CommandKind.PLACE)
# The risk stages a shard can run: the compiled one, and the plain-Python reference.
RISK_STAGES = ("compiled", "reference")


def _fits64(*values: int) -> bool:
    return min(values) >= -INT64_MAX and max(values) <= INT64_MAX


class Shard:
    """The state of one engine shard: the matching core plus the risk stage."""

    def __init__(
        self,
        name: str = "0",
        limits: EngineLimits | None = None,
        core_class: Any = Engine,
        risk: str = "compiled",
    ) -> None:
        # core_class: the matching core, Engine or a book with its API (the tests' reference).
        # risk: "compiled" (engine/_risk.pyx) or "reference" (engine/risk.py), see RISK_STAGES.
        if risk not in RISK_STAGES:
            raise ValueError(f"risk must be one of {RISK_STAGES}, not {risk!r}")
        self.name = name
        self.core = core_class(limits)
        self.risk_kind = risk
        self._compiled = risk == "compiled"
        self.risk: Any = CompiledRiskStage() if self._compiled else RiskStage()
        self._spec_class: Any = CompiledInstrumentSpec if self._compiled else InstrumentSpec
        self._limits_class: Any = CompiledLimits if self._compiled else Limits
        self._compiled_run = Run()
        self.journal_seq = 0
        self.ts_ns = 0
        self.assets: dict[int, DefineAsset] = {}
        self.instruments: dict[int, DefineInstrument] = {}
        self.symbols: dict[str, int] = {}
        self.md_sequence: dict[int, int] = {}
        # The core reports status changes as events; the shard keeps the last one for queries.
        self.instrument_status: dict[int, int] = {}
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            PlaceOrder: self._place_compiled if self._compiled else self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            MassCancel: self._mass_cancel,
            HaltInstrument: self._halt,
            ResumeInstrument: self._resume,
            AdvanceTime: self._advance_time,
            SetKillSwitch: self._kill_switch,
            SetRiskLimits: self._set_limits,
            DefineAsset: self._define_asset,
            DefineInstrument: self._define_instrument,
            Deposit: self._deposit,
            HoldWithdrawal: self._hold_withdrawal,
            SettleWithdrawal: self._settle_withdrawal,
            ReleaseWithdrawal: self._release_withdrawal,
        }
        self._reset_entry()

    # -- COMMANDS --

    def apply(self, journal_seq: int, entry: JournalEntry) -> Applied | None:
        """Apply one journal entry; None if it was applied before (journal_seq not new)."""
        if journal_seq <= self.journal_seq:
            return None
        self._reset_entry()
        if entry.ts_ns <= INT64_MAX:  # a wider time fits no row: it would stop every command
            self.ts_ns = max(self.ts_ns, entry.ts_ns)
        commands = flat_commands(entry.commands)
        if self._compiled:
            self._apply_commands_compiled(commands)
        else:
            for index, command in enumerate(commands):
                self._handlers[type(command)](index, command)
        self._flush()
        self.journal_seq = journal_seq
        # Rows are in command order within each chunk; several chunks (runs and the shard's own
        # rows) are merged by command index. One chunk, the common case, needs no sort.
        if len(self._rows) == 1:
            events = self._rows[0]
        elif self._rows:
            events = np.concatenate(self._rows)
            events = events[np.argsort(events["command_index"], kind="stable")]
        else:
            events = np.empty(0, EVENT_DTYPE)
        if self._compiled:
            transfers = self.risk.take_transfers()  # already in command order
        else:
            transfers = np.array(self.risk.transfers, dtype=TRANSFER_DTYPE)
            self.risk.transfers = []
            if len(transfers) > 1 and (np.diff(transfers["command_index"]) < 0).any():
                transfers = transfers[np.argsort(transfers["command_index"], kind="stable")]
        return Applied(events, transfers, self._market_data(), self._instruments_changed)

    def event_batch(self, journal_seq: int, entry: JournalEntry, applied: Applied) -> EventBatch:
        """The EventBatch the engine publishes for an entry it just applied."""
        return EventBatch(
            shard=self.name,
            journal_seq=journal_seq,
            origin=entry.origin,
            batch_id=entry.batch_id,
            ts_ns=self.ts_ns,
            events=applied.events.tobytes(),
            transfers=applied.transfers.tobytes(),
        )

    def _reset_entry(self) -> None:
        self._compiled_run.clear()
        self._rows: list[npt.NDArray[Any]] = []
        self._run: list[tuple[int, tuple[int, ...]]] = []
        self._pending: dict[int, OrderHold | tuple[int, int, int]] = {}  # run position -> hold
        self._pending_orders: dict[int, int] = {}
        self._pending_notional: dict[tuple[int, int], int] = {}
        self._md_levels: dict[int, dict[tuple[int, int], BookLevel]] = {}
        self._md_trades: dict[int, list[TradePrint]] = {}
        self._md_status: dict[int, int] = {}
        self._instruments_changed = False

    def _row(self, index: int, kind: int, **fields: int) -> tuple[int, ...]:
        return (
            self.ts_ns,
            fields.get("account_id", 0),
            fields.get("client_order_id", 0),
            fields.get("order_id", 0),
            fields.get("price_ticks", 0),
            fields.get("quantity_lots", 0),
            fields.get("expire_ts_ns", 0),
            fields.get("instrument_id", 0),
            fields.get("stp_group", 0),
            kind,
            fields.get("side", 0),
            fields.get("order_type", 0),
            fields.get("time_in_force", 0),
            fields.get("stp_mode", 0),
            fields.get("post_only", 0),
            fields.get("cancel_resting", 0),
        )

    def _to_core(self, index: int, row: tuple[int, ...], pending: Any = None) -> bool:
        """Queue a core command; a row whose fields do not fit the record is rejected here."""
        if self._compiled:
            if self._compiled_run.push(index, row, pending):
                return True
            self._event(index, EventKind.REJECTED, Reason.command_must_be_well_formed)
            return False
        wide, narrow, small = row[:7], row[7:9], row[9:]
        if not (
            min(wide) >= -INT64_MAX
            and max(wide) <= INT64_MAX
            and min(narrow) >= -INT32_MAX
            and max(narrow) <= INT32_MAX
            and min(small) >= 0
            and max(small) <= 255
        ):
            self._event(index, EventKind.REJECTED, Reason.command_must_be_well_formed)
            return False
        if pending is not None:
            self._pending[len(self._run)] = pending
        self._run.append((index, row))
        return True

    def _event(self, index: int, kind: int, reason: int = 0, **fields: int) -> None:
        """A row written by the shard itself (risk rejects, APPLIED): seq 0, not the core's."""
        row = np.zeros(1, EVENT_DTYPE)
        row["ts_ns"], row["command_index"], row["kind"], row["reason"] = (
            self.ts_ns,
            index,
            kind,
            reason,
        )
        if kind == EventKind.REJECTED:
            row["status"] = OrderStatus.REJECTED
        for name, value in fields.items():
            # A reject echoes the command's fields; one outside its field's range is written 0.
            bounds = np.iinfo(EVENT_DTYPE[name])
            row[name] = value if _fits64(value) and bounds.min <= value <= bounds.max else 0
        self._rows.append(row)

    def _place(self, index: int, c: PlaceOrder) -> None:
        reason, hold = 0, None
        if _fits64(c.account_id, c.price_ticks, c.quantity_lots):
            reason, hold = self.risk.check_place(
                c.account_id,
                c.instrument_id,
                c.side,
                c.order_type,
                c.price_ticks,
                c.quantity_lots,
                self._pending_orders.get(c.account_id, 0),
                self._pending_notional_of(c.account_id, c.instrument_id),
            )
        if reason:
            self._reject_place(index, reason, c)
            return
        # The `_row` layout, spelled out: places are most of the load.
        row = (
            self.ts_ns,
            c.account_id,
            c.client_order_id,
            0,
            c.price_ticks,
            c.quantity_lots,
            c.expire_ts_ns,
            c.instrument_id,
            c.stp_group,
            _PLACE,
            c.side,
            c.order_type,
            c.time_in_force,
            c.stp_mode,
            int(c.post_only),
            0,
        )
        if not self._to_core(index, row, hold):
            if hold is not None:
                self.risk.unreserve(hold)  # the row did not fit: nothing reached the core
        elif hold is not None:
            self._pending_orders[c.account_id] = self._pending_orders.get(c.account_id, 0) + 1
            key = (c.account_id, self.risk.instruments[c.instrument_id].quote_asset_id)
            self._pending_notional[key] = self._pending_notional.get(key, 0) + hold.notional_minor

    def _reject_place(self, index: int, reason: int, c: PlaceOrder) -> None:
        """A risk reject echoes the order's fields."""
        self._event(
            index,
            EventKind.REJECTED,
            reason,
            account_id=c.account_id,
            client_order_id=c.client_order_id,
            instrument_id=c.instrument_id,
            side=c.side,
            price_ticks=0 if c.order_type == OrderType.MARKET else c.price_ticks,
            quantity_lots=c.quantity_lots,
        )

    def _apply_commands_compiled(self, commands: list[Any]) -> None:
        """Step 1 in the compiled stage: each stretch of places in one call (the stage checks,
        reserves and queues their rows), every other command through its handler."""
        handlers, place_many, run = self._handlers, self.risk.place_many, self._compiled_run
        rejects: list[tuple[int, int]] = []
        index, count = 0, len(commands)
        while index < count:
            command = commands[index]
            if type(command) is not PlaceOrder:
                handlers[type(command)](index, command)
                index += 1
                continue
            # Reject rows land after the stretch's queued rows; `apply` orders rows by command.
            index = place_many(run, commands, index, self.ts_ns, rejects)
            for at, reason in rejects:
                self._place_refused(at, reason, commands[at])
            rejects.clear()

    def _place_compiled(self, index: int, c: PlaceOrder) -> None:
        """`_place` in the compiled stage: check, reserve and queue the row in one call."""
        reason = self.risk.place(self._compiled_run, index, self.ts_ns, c)
        if reason:
            self._place_refused(index, reason, c)

    def _place_refused(self, index: int, reason: int, c: PlaceOrder) -> None:
        if reason == Reason.command_must_be_well_formed:  # a field the row cannot hold
            self._event(index, EventKind.REJECTED, reason)
        else:
            self._reject_place(index, reason, c)

    def _pending_notional_of(self, account_id: int, instrument_id: int) -> int:
        spec = self.risk.instruments.get(instrument_id)
        if spec is None:
            return 0
        return self._pending_notional.get((account_id, spec.quote_asset_id), 0)

    def _cancel(self, index: int, c: CancelOrder) -> None:
        row = self._row(
            index,
            CommandKind.CANCEL,
            account_id=c.account_id,
            order_id=c.order_id,
            client_order_id=c.client_order_id,
        )
        self._to_core(index, row)

    def _amend(self, index: int, c: AmendOrder) -> None:
        self._flush()  # the hold is resized against the order's exact state
        reason, extra = 0, 0
        if _fits64(c.account_id, c.order_id, c.price_ticks, c.quantity_lots):
            reason, extra = self.risk.check_amend(
                c.account_id, c.order_id, c.price_ticks, c.quantity_lots
            )
        if reason:
            self._event(
                index,
                EventKind.REJECTED,
                reason,
                account_id=c.account_id,
                order_id=c.order_id,
                price_ticks=c.price_ticks,
                quantity_lots=c.quantity_lots,
            )
            return
        row = self._row(
            index,
            CommandKind.AMEND,
            account_id=c.account_id,
            order_id=c.order_id,
            price_ticks=c.price_ticks,
            quantity_lots=c.quantity_lots,
        )
        # What a reject gives back, and to whom: the core's expiry pass may end the order
        # before the amend reaches it, so the reject cannot look the order up.
        refund = (c.account_id, 0, 0)
        if extra:
            hold = self.risk.orders[c.order_id]
            asset = self.risk.hold_asset(self.risk.instruments[hold.instrument_id], hold.side)
            refund = (hold.account_id, asset, extra)
        self._to_core(index, row, refund)

    def _mass_cancel(self, index: int, c: MassCancel) -> None:
        if c.account_id:
            accounts = [c.account_id]
        else:  # the risk desk's cancel-all: every account with an open order
            self._flush()
            accounts = sorted(self.risk.open_orders)
        for account_id in accounts:
            row = self._row(
                index, CommandKind.MASS_CANCEL, account_id=account_id, instrument_id=c.instrument_id
            )
            self._to_core(index, row)

    def _halt(self, index: int, c: HaltInstrument) -> None:
        row = self._row(
            index,
            CommandKind.HALT,
            instrument_id=c.instrument_id,
            cancel_resting=int(c.cancel_resting),
        )
        self._to_core(index, row)

    def _resume(self, index: int, c: ResumeInstrument) -> None:
        self._to_core(index, self._row(index, CommandKind.RESUME, instrument_id=c.instrument_id))

    def _advance_time(self, index: int, c: AdvanceTime) -> None:
        self._to_core(index, self._row(index, CommandKind.ADVANCE_TIME))

    def _kill_switch(self, index: int, c: SetKillSwitch) -> None:
        self._flush()
        if not FEE_ACCOUNT_ID < c.account_id <= INT64_MAX:  # 0 would mean every account's orders
            self._event(index, EventKind.REJECTED, Reason.account_must_be_a_customer)
            return
        if c.on:
            self.risk.kill_switched.add(c.account_id)
        else:
            self.risk.kill_switched.discard(c.account_id)
        self._event(index, EventKind.APPLIED, account_id=c.account_id)
        if c.on:
            self._mass_cancel(index, MassCancel(account_id=c.account_id))

    def _set_limits(self, index: int, c: SetRiskLimits) -> None:
        self._flush()
        self.risk.limits[c.account_id] = self._limits_class(
            c.open_orders_max, dict(c.order_notional_max), dict(c.open_notional_max)
        )
        self._event(index, EventKind.APPLIED, account_id=c.account_id)

    def _define_asset(self, index: int, c: DefineAsset) -> None:
        self._flush()
        # Transfer rows carry the asset id in 32 bits: a wider one would fail its first transfer.
        valid = 0 <= c.decimals <= 18 and 0 < c.asset_id <= INT32_MAX
        if c.asset_id in self.assets or not valid:
            self._event(index, EventKind.REJECTED, Reason.asset_must_not_exist)
            return
        self.assets[c.asset_id] = c
        self._event(index, EventKind.APPLIED)

    def _define_instrument(self, index: int, c: DefineInstrument) -> None:
        self._flush()
        base, quote = self.assets.get(c.base_asset_id), self.assets.get(c.quote_asset_id)
        if base is None or quote is None or base is quote:
            self._event(
                index, EventKind.REJECTED, Reason.instrument_assets_must_exist, instrument_id=0
            )
            return
        units = derive_units(c.tick_size, c.lot_size, base.decimals, quote.decimals)
        reason = Reason.instrument_parameters_must_be_valid
        valid = (
            units is not None
            and -INT32_MAX <= c.instrument_id <= INT32_MAX  # the core's argument would overflow
            and _fits64(c.quantity_min_lots, c.quantity_max_lots, c.notional_min)
            and _fits64(c.price_min_ticks, c.price_max_ticks)
            # A fee above the whole, or below zero, would overdraw a trader at a fill.
            and 0 <= c.taker_fee_bps <= BPS
            and 0 <= c.maker_fee_bps <= BPS
        )
        if valid and c.symbol not in self.symbols:
            reason = self.core.add_instrument(
                c.instrument_id,
                price_increment_ticks=1,
                quantity_increment_lots=1,
                quantity_min_lots=c.quantity_min_lots,
                quantity_max_lots=c.quantity_max_lots,
                notional_min=c.notional_min,
                price_min_ticks=c.price_min_ticks,
                price_max_ticks=c.price_max_ticks,
            )
        elif c.symbol in self.symbols:
            reason = Reason.instrument_must_not_exist
        emitted = self.core.drain_events()  # a per-call add reports through the event buffer
        if reason or units is None or not valid:
            self._event(index, EventKind.REJECTED, reason)
            return
        self._add_spec(c, units)
        self._instruments_changed = True
        emitted["command_index"] = index  # the new book's first INSTRUMENT_STATUS
        if self._compiled:
            emitted = self.risk.settle(
                emitted,
                None,
                self._md_levels,
                self._md_trades,
                self._md_status,
                self.instrument_status,
                index,
            )
        else:
            self._settle(emitted, [0] * len(emitted), {})
        self._rows.append(emitted)
        self.md_sequence.setdefault(c.instrument_id, 0)
        self._event(index, EventKind.APPLIED, instrument_id=c.instrument_id)

    def _add_spec(self, c: DefineInstrument, units: tuple[int, int]) -> None:
        self.instruments[c.instrument_id] = c
        self.symbols[c.symbol] = c.instrument_id
        self.risk.instruments[c.instrument_id] = self._spec_class(
            instrument_id=c.instrument_id,
            symbol=c.symbol,
            base_asset_id=c.base_asset_id,
            quote_asset_id=c.quote_asset_id,
            quote_minor_per_tick_lot=units[0],
            base_minor_per_lot=units[1],
            price_max_ticks=c.price_max_ticks,
            fee_bps_max=max(c.taker_fee_bps, c.maker_fee_bps),
            taker_fee_bps=c.taker_fee_bps,
            maker_fee_bps=c.maker_fee_bps,
        )

    def _money(self, index: int, reason: int, account_id: int = 0) -> None:
        if reason:
            self._event(index, EventKind.REJECTED, reason, account_id=account_id)
        else:
            self._event(index, EventKind.APPLIED, account_id=account_id)

    def _deposit(self, index: int, c: Deposit) -> None:
        self._flush()
        reason = Reason.asset_must_exist if c.asset_id not in self.assets else 0
        if not reason and not _fits64(c.amount_minor, c.account_id):
            reason = Reason.command_must_be_well_formed
        if not reason and c.account_id <= 1:
            reason = Reason.account_id_must_be_in_range
        reason = reason or self.risk.deposit(
            c.account_id, c.asset_id, c.amount_minor, c.deposit_id, index
        )
        self._money(index, reason, c.account_id if _fits64(c.account_id) else 0)

    def _hold_withdrawal(self, index: int, c: HoldWithdrawal) -> None:
        self._flush()
        reason = Reason.asset_must_exist if c.asset_id not in self.assets else 0
        if not reason and not _fits64(c.amount_minor, c.account_id):
            reason = Reason.command_must_be_well_formed
        reason = reason or self.risk.hold_withdrawal(
            c.account_id, c.asset_id, c.amount_minor, c.withdrawal_id, index
        )
        self._money(index, reason, c.account_id if _fits64(c.account_id) else 0)

    def _settle_withdrawal(self, index: int, c: SettleWithdrawal) -> None:
        self._flush()
        self._money(index, self.risk.finish_withdrawal(c.withdrawal_id, True, index))

    def _release_withdrawal(self, index: int, c: ReleaseWithdrawal) -> None:
        self._flush()
        self._money(index, self.risk.finish_withdrawal(c.withdrawal_id, False, index))

    # -- the run: one call of the core's batch path, then settlement --

    def _flush(self) -> None:
        if self._compiled:
            self._flush_compiled()
            return
        if not self._run:
            return
        commands = np.array([row for _, row in self._run], dtype=COMMAND_DTYPE)
        entry_index = np.array([index for index, _ in self._run], dtype=np.int32)
        pending = self._pending
        self._run, self._pending = [], {}
        self._pending_orders, self._pending_notional = {}, {}
        events = self.core.process(commands)
        run_index = events["command_index"].copy()
        events["command_index"] = entry_index[run_index]
        self._settle(events, run_index.tolist(), pending)
        self._rows.append(events)

    def _flush_compiled(self) -> None:
        """`_flush` in the compiled stage: the run is already rows, and it settles in C."""
        run = self._compiled_run
        if not len(run):
            return
        events = self.core.process(run.commands())
        events = self.risk.settle(
            events, run, self._md_levels, self._md_trades, self._md_status, self.instrument_status
        )
        self._rows.append(events)

    def _settle(
        self, events: npt.NDArray[Any], run_index: list[int], pending: dict[int, Any]
    ) -> None:
        risk = self.risk
        for position, e in zip(run_index, events.tolist(), strict=True):
            (_, _, order_id, account_id, _, price, quantity, leaves, maker_id, maker_account) = e[
                :10
            ]
            maker_leaves, trade_id, index, instrument_id, reason, kind, side, status = e[11:]
            if kind == EventKind.ACCEPTED:
                hold = pending.pop(position, None)
                if not isinstance(hold, OrderHold):
                    raise AssertionError(f"order {order_id} accepted without a hold")
                risk.open_order(order_id, hold, index)
            elif kind == EventKind.FILLED:
                risk.filled(
                    trade_id,
                    price,
                    quantity,
                    (order_id, account_id, leaves),
                    (maker_id, maker_account, maker_leaves),
                    side,
                    index,
                )
                if not maker_leaves:
                    risk.close_order(maker_id, OrderStatus.FILLED, 0, index)
                if not leaves:
                    risk.close_order(order_id, OrderStatus.FILLED, 0, index)
                self._md_trades.setdefault(instrument_id, []).append(
                    TradePrint(trade_id, price, quantity, side)
                )
            elif kind == EventKind.CANCELLED:
                risk.close_order(order_id, OrderStatus.CANCELLED, reason, index)
            elif kind == EventKind.REDUCED:
                risk.reduced(order_id, leaves, index)
            elif kind == EventKind.AMENDED:
                extra = pending.pop(position, (0, 0, 0))[2]
                risk.amended(order_id, price, leaves, extra, index)
            elif kind == EventKind.REJECTED:
                held = pending.pop(position, None)
                if isinstance(held, OrderHold):
                    risk.unreserve(held)
                elif held is not None and held[2]:  # an amend's extra: (account, asset, extra)
                    risk.balance(held[0], held[1])[0] += held[2]
            elif kind == EventKind.BOOK_DELTA:
                levels = self._md_levels.setdefault(instrument_id, {})
                levels[side, price] = BookLevel(side, price, quantity, leaves)
            elif kind == EventKind.INSTRUMENT_STATUS:
                self._md_status[instrument_id] = status
                self.instrument_status[instrument_id] = status

    def _market_data(self) -> list[MarketDataUpdate]:
        touched = sorted(set(self._md_levels) | set(self._md_trades) | set(self._md_status))
        updates = []
        for instrument_id in touched:
            sequence = self.md_sequence.get(instrument_id, 0) + 1
            self.md_sequence[instrument_id] = sequence
            updates.append(
                MarketDataUpdate(
                    instrument_id=instrument_id,
                    sequence=sequence,
                    ts_ns=self.ts_ns,
                    journal_seq=self.journal_seq,
                    levels=list(self._md_levels.get(instrument_id, {}).values()),
                    trades=self._md_trades.get(instrument_id, []),
                    status=self._md_status.get(instrument_id, 0),
                )
            )
        return updates

    # -- QUERIES (plain data, as the query replies carry it) --

    def balances(self, account_id: int) -> dict[str, Any]:
        assets = self.risk.balances.get(account_id, {})
        return {
            "account_id": account_id,
            "balances": [
                {"asset_id": asset, "available_minor": pair[0], "held_minor": pair[1]}
                for asset, pair in sorted(assets.items())
            ],
        }

    def all_balances(self, after_account_id: int, accounts_max: int) -> dict[str, Any]:
        """Rows [account, asset, available, held] of up to `accounts_max` accounts after
        `after_account_id`, in account order; `next_after` is None on the last page.
        O(accounts log accounts) for the sort."""
        accounts = sorted(a for a in self.risk.balances if a > after_account_id)
        page, more = accounts[:accounts_max], len(accounts) > accounts_max
        rows = [
            [account, asset, pair[0], pair[1]]
            for account in page
            for asset, pair in sorted(self.risk.balances[account].items())
        ]
        return {"balances": rows, "next_after": page[-1] if more else None}

    def open_orders(self, account_id: int) -> list[dict[str, int]]:
        return [dict(o, reason=0) for o in self.core.open_orders(account_id)]

    def order(self, account_id: int, order_id: int, client_order_id: int | None) -> dict | None:
        if client_order_id is not None:
            for o in self.open_orders(account_id):
                if o["client_order_id"] == client_order_id:
                    return o
            return None
        found = self.core.order(order_id)
        if found is not None:
            return dict(found, reason=0) if found["account_id"] == account_id else None
        terminal = self.risk.terminal.get(order_id)
        if terminal is None or terminal[0] != account_id:
            return None
        return {"order_id": order_id, "account_id": account_id, "status": terminal[1],
                "reason": terminal[2], "leaves_lots": 0}  # fmt: skip

    def book(self, instrument_id: int, depth: int) -> dict[str, Any] | None:
        if instrument_id not in self.instruments:
            return None
        bids, asks = self.core.depth(instrument_id, depth)
        return {
            "instrument_id": instrument_id,
            "sequence": self.md_sequence.get(instrument_id, 0),
            "status": self._status_of(instrument_id),
            "bids": [list(level) for level in bids],
            "asks": [list(level) for level in asks],
            "ts_ns": self.ts_ns,
        }

    def _status_of(self, instrument_id: int) -> int:
        return self.instrument_status.get(instrument_id, InstrumentStatus.OPEN)

    def limits(self, account_id: int) -> dict[str, Any]:
        limits = self.risk.limits_of(account_id)
        return {
            "account_id": account_id,
            "open_orders_max": limits.open_orders_max,
            "order_notional_max": dict(limits.order_notional_max),
            "open_notional_max": dict(limits.open_notional_max),
            "kill_switch": account_id in self.risk.kill_switched,
        }

    def instrument_list(self) -> dict[str, Any]:
        return {
            "assets": [msgspec.to_builtins(a) for _, a in sorted(self.assets.items())],
            "instruments": [
                dict(msgspec.to_builtins(d), status=self._status_of(i))
                for i, d in sorted(self.instruments.items())
            ],
        }

    # -- SNAPSHOTS --

    def state(self) -> ShardState:
        risk = self.risk
        return ShardState(
            name=self.name,
            journal_seq=self.journal_seq,
            ts_ns=self.ts_ns,
            core=self.core.snapshot(),
            assets=[a for _, a in sorted(self.assets.items())],
            instruments=[d for _, d in sorted(self.instruments.items())],
            md_sequence=sorted(self.md_sequence.items()),
            instrument_status=sorted(self.instrument_status.items()),
            balances=sorted(
                (account, asset, pair[0], pair[1])
                for account, assets in risk.balances.items()
                for asset, pair in assets.items()
            ),
            orders=sorted(
                (
                    oid,
                    h.account_id,
                    h.instrument_id,
                    h.side,
                    h.price_ticks,
                    h.leaves_lots,
                    h.held_minor,
                    h.notional_minor,
                )
                for oid, h in risk.orders.items()
            ),
            limits=sorted(
                (
                    a,
                    lim.open_orders_max,
                    sorted(lim.order_notional_max.items()),
                    sorted(lim.open_notional_max.items()),
                )
                for a, lim in risk.limits.items()
            ),
            kill_switched=sorted(risk.kill_switched),
            withdrawals=sorted((w, *v) for w, v in risk.withdrawals.items()),
            withdrawals_finished=sorted(risk.withdrawals_finished),
            deposits_credited=sorted(risk.deposits_credited),
            terminal=[(oid, *v) for oid, v in risk.terminal.items()],
        )

    def snapshot(self) -> bytes:
        """The shard's state as bytes: magic, BLAKE2b-256 digest, payload."""
        payload = _STATE_ENCODER.encode(self.state())
        return SNAPSHOT_MAGIC + hashlib.blake2b(payload, digest_size=32).digest() + payload

    def state_hash(self) -> str:
        """Equal for two shards that applied the same journal, however they got there."""
        payload = _STATE_ENCODER.encode(self.state())
        return hashlib.blake2b(payload, digest_size=32).hexdigest()

    @classmethod
    def restore(
        cls,
        data: bytes,
        limits: EngineLimits | None = None,
        core_class: Any = Engine,
        risk: str = "compiled",
    ) -> Shard:
        head = len(SNAPSHOT_MAGIC) + 32
        if len(data) < head or not data.startswith(SNAPSHOT_MAGIC):
            raise SnapshotCorrupt("not a shard snapshot, or truncated")
        digest, payload = data[len(SNAPSHOT_MAGIC) : head], data[head:]
        if hashlib.blake2b(payload, digest_size=32).digest() != digest:
            raise SnapshotCorrupt("snapshot checksum mismatch")
        state = _STATE_DECODER.decode(payload)
        shard = cls(state.name, limits, core_class, risk)
        shard.core = core_class.restore(state.core, limits)
        shard.journal_seq, shard.ts_ns = state.journal_seq, state.ts_ns
        shard.assets = {a.asset_id: a for a in state.assets}
        for d in state.instruments:
            base, quote = shard.assets[d.base_asset_id], shard.assets[d.quote_asset_id]
            units = derive_units(d.tick_size, d.lot_size, base.decimals, quote.decimals)
            assert units is not None
            shard._add_spec(d, units)
        shard.md_sequence = dict(state.md_sequence)
        shard.instrument_status = dict(state.instrument_status)
        stage = shard.risk
        for account, asset, available, held in state.balances:
            pair = stage.balance(account, asset)
            pair[0], pair[1] = available, held
        for oid, account, instrument, side, price, leaves, held, notional in state.orders:
            if shard._compiled:
                stage.restore_order(oid, account, instrument, side, price, leaves, held, notional)
                continue
            stage.orders[oid] = OrderHold(account, instrument, side, price, leaves, held, notional)
            stage.open_orders[account] = stage.open_orders.get(account, 0) + 1
            key = (account, stage.instruments[instrument].quote_asset_id)
            stage.open_notional[key] = stage.open_notional.get(key, 0) + notional
        stage.limits = {a: shard._limits_class(n, dict(o), dict(p)) for a, n, o, p in state.limits}
        stage.kill_switched = set(state.kill_switched)
        stage.withdrawals = {w: (a, s, m) for w, a, s, m in state.withdrawals}
        stage.withdrawals_finished = set(state.withdrawals_finished)
        stage.deposits_credited = set(state.deposits_credited)
        if shard._compiled:
            stage.restore_terminal(state.terminal)
        else:
            stage.terminal = OrderedDict((oid, (a, s, r)) for oid, a, s, r in state.terminal)
        return shard

    def check_invariants(self) -> None:
        """The core's structures and the risk stage's money (raises AssertionError)."""
        if not self.core.check_invariants():
            raise AssertionError("core invariants broken")
        self.risk.check_invariants()
        core_open = {o["order_id"] for a in self.risk.open_orders for o in self.core.open_orders(a)}
        if core_open != set(self.risk.orders):
            raise AssertionError("risk stage and core disagree on the open orders")


__all__ = ["RISK_STAGES", "Applied", "Shard", "ShardState", "SnapshotCorrupt"]
