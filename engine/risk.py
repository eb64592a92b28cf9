"""The risk stage: balances, holds, limits and the kill switch, on sequenced state.

Deterministic and I/O-free like the core: the shard (engine/shard.py) calls it before and after
each run of core commands. Money is integers in each asset's minor unit.

Holds. An order holds exactly what it can still spend: a buy holds quote for its leaves at its
limit price (a market buy at the top of the price band) plus the taker fee on that notional; a
sell holds base for its leaves. After every event the hold is recomputed from the leaves and the
surplus is released, so `held == required(leaves)` is an invariant per order. Fees are floored
per fill: the fees of several fills then never exceed the fee held for their total.

Pre-checks reserve. A place is checked and its hold reserved (taken from available) before the
core sees it; the hold becomes a HOLD transfer when the core accepts the order and is given back
untransferred when the core rejects it. Settlement only ever adds to available, so a check made
before the settlements of earlier commands in the same run is conservative, never optimistic.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal, Inexact, localcontext

from engine._codes import OrderType, Reason, Side, TransferKind

# Account 0 is the outside world: deposits come from it and withdrawals go to it, so its balance
# is minus everything the exchange holds for its customers.
EXTERNAL_ACCOUNT_ID = 0
# Account 1 collects the exchange's fees.
FEE_ACCOUNT_ID = 1
# Basis points in one whole.
BPS = 10_000
# Every balance must fit the 64-bit integers of snapshots and of the ledger. The external
# account holds minus the sum of all others, so keeping it in range keeps every balance in range.
balance_minor_max = (1 << 63) - 1
# Terminal orders remembered for order-status queries: enough for a client to read the outcome
# of everything it sent in the last minutes, bounded so memory does not grow with history.
terminal_orders_kept_max = 100_000


@dataclass(slots=True)
class InstrumentSpec:
    instrument_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    quote_minor_per_tick_lot: int
    base_minor_per_lot: int
    price_max_ticks: int
    fee_bps_max: int  # the larger of taker and maker: what a hold must cover
    taker_fee_bps: int
    maker_fee_bps: int


@dataclass(slots=True)
class OrderHold:
    """What one open order holds. `price_ticks` is the price its hold is computed at."""

    account_id: int
    instrument_id: int
    side: int
    price_ticks: int
    leaves_lots: int
    held_minor: int
    notional_minor: int  # price x leaves in quote minor units: its share of open notional


@dataclass(slots=True)
class Limits:
    open_orders_max: int = 0  # 0: no limit
    order_notional_max: dict[int, int] = field(default_factory=dict)  # quote asset -> minor
    open_notional_max: dict[int, int] = field(default_factory=dict)


def derive_units(
    tick_size: str, lot_size: str, base_decimals: int, quote_decimals: int
) -> tuple[int, int] | None:
    """(quote minor per tick x lot, base minor per lot), or None if either is not whole, or
    not in [1, balance_minor_max]."""
    # Exact or nothing: by default a product is rounded to 28 digits, an underflow becomes 0 (a
    # market whose base trades for nothing) and an overflow raises.
    with localcontext() as context:
        context.traps[Inexact] = True
        try:
            tick, lot = Decimal(tick_size), Decimal(lot_size)
            if not (tick.is_finite() and lot.is_finite()) or tick <= 0 or lot <= 0:
                return None
            quote = tick * lot * (Decimal(10) ** quote_decimals)
            base = lot * (Decimal(10) ** base_decimals)
        except ArithmeticError:
            return None
    if quote != quote.to_integral_value() or base != base.to_integral_value():
        return None
    if not (1 <= quote <= balance_minor_max and 1 <= base <= balance_minor_max):
        return None
    return int(quote), int(base)


class RiskStage:
    """Balances and holds of every account. Transfers are appended to `transfers` as tuples in
    TRANSFER_DTYPE field order; the shard drains them after each journal entry."""

    def __init__(self) -> None:
        self.balances: dict[int, dict[int, list[int]]] = {}  # account -> asset -> [avail, held]
        self.instruments: dict[int, InstrumentSpec] = {}
        self.orders: dict[int, OrderHold] = {}
        self.open_orders: dict[int, int] = {}  # account -> count
        self.open_notional: dict[tuple[int, int], int] = {}  # (account, quote asset) -> minor
        self.limits: dict[int, Limits] = {0: Limits()}  # account 0: the defaults
        self.kill_switched: set[int] = set()
        self.withdrawals: dict[str, tuple[int, int, int]] = {}  # id -> (account, asset, amount)
        # Settled or released ids: like deposit ids, a withdrawal id is used once for good.
        self.withdrawals_finished: set[str] = set()
        self.deposits_credited: set[str] = set()
        # order id -> (account, status, reason). An OrderedDict: evicting the oldest of a plain
        # dict scans the holes its earlier deletions left at the front (seen in a profile).
        self.terminal: OrderedDict[int, tuple[int, int, int]] = OrderedDict()
        self.transfers: list[tuple[int, ...]] = []

    # -- balances --

    def balance(self, account_id: int, asset_id: int) -> list[int]:
        assets = self.balances.get(account_id)
        if assets is None:
            assets = self.balances[account_id] = {}
        pair = assets.get(asset_id)
        if pair is None:
            pair = assets[asset_id] = [0, 0]
        return pair

    def _transfer(
        self,
        kind: int,
        asset_id: int,
        amount_minor: int,
        debit: tuple[int, bool],
        credit: tuple[int, bool],
        command_index: int,
        order_id: int = 0,
        trade_id: int = 0,
    ) -> None:
        """Move money between two buckets and record the move. The debit side may only be
        the external account when it goes negative: anything else is a broken invariant."""
        if amount_minor == 0:
            return
        debit_pair = self.balance(debit[0], asset_id)
        credit_pair = self.balance(credit[0], asset_id)
        debit_pair[debit[1]] -= amount_minor
        credit_pair[credit[1]] += amount_minor
        if debit_pair[debit[1]] < 0 and debit[0] != EXTERNAL_ACCOUNT_ID:
            raise AssertionError(f"balance overdrawn: account {debit[0]} asset {asset_id}")
        self.transfers.append(
            (
                amount_minor,
                debit[0],
                credit[0],
                order_id,
                trade_id,
                asset_id,
                command_index,
                kind,
                int(debit[1]),
                int(credit[1]),
            )
        )

    # -- holds --

    def required_hold(self, spec: InstrumentSpec, side: int, price_ticks: int, lots: int) -> int:
        if side == Side.BUY:
            notional = price_ticks * lots * spec.quote_minor_per_tick_lot
            return notional + notional * spec.fee_bps_max // BPS
        return lots * spec.base_minor_per_lot

    def hold_asset(self, spec: InstrumentSpec, side: int) -> int:
        return spec.quote_asset_id if side == Side.BUY else spec.base_asset_id

    def limits_of(self, account_id: int) -> Limits:
        return self.limits.get(account_id) or self.limits[0]

    def check_place(
        self,
        account_id: int,
        instrument_id: int,
        side: int,
        order_type: int,
        price_ticks: int,
        quantity_lots: int,
        pending_orders: int,
        pending_notional: int,
    ) -> tuple[int, OrderHold | None]:
        """The 3xxx checks of a place in number order, and the hold it would take.

        Returns (reason, None) on a reject, (0, hold) when the order may go to the core, and
        (0, None) when the core will reject it anyway (unknown instrument, invalid fields): the
        core's reason is then the one reported. pending_* count this run's earlier orders.
        """
        if account_id <= FEE_ACCOUNT_ID:
            return Reason.account_must_be_a_customer, None
        if account_id in self.kill_switched:
            return Reason.account_must_not_be_kill_switched, None
        spec = self.instruments.get(instrument_id)
        if spec is None or side not in (Side.BUY, Side.SELL) or quantity_lots <= 0:
            return 0, None
        if order_type == OrderType.MARKET:
            price_ticks = spec.price_max_ticks
        elif price_ticks <= 0:
            return 0, None
        limits = self.limits_of(account_id)
        if limits.open_orders_max and (
            self.open_orders.get(account_id, 0) + pending_orders + 1 > limits.open_orders_max
        ):
            return Reason.open_orders_must_not_exceed_limit, None
        notional = price_ticks * quantity_lots * spec.quote_minor_per_tick_lot
        quote = spec.quote_asset_id
        order_max = limits.order_notional_max.get(quote, 0)
        if order_max and notional > order_max:
            return Reason.order_notional_must_not_exceed_limit, None
        open_max = limits.open_notional_max.get(quote, 0)
        open_now = self.open_notional.get((account_id, quote), 0) + pending_notional
        if open_max and open_now + notional > open_max:
            return Reason.open_notional_must_not_exceed_limit, None
        required = self.required_hold(spec, side, price_ticks, quantity_lots)
        pair = self.balance(account_id, self.hold_asset(spec, side))
        if pair[0] < required:
            return Reason.funds_must_be_available, None
        pair[0] -= required  # reserved: becomes a HOLD transfer if the core accepts
        return 0, OrderHold(
            account_id, instrument_id, side, price_ticks, quantity_lots, required, notional
        )

    def unreserve(self, hold: OrderHold) -> None:
        """Give back a reservation the core rejected."""
        spec = self.instruments[hold.instrument_id]
        self.balance(hold.account_id, self.hold_asset(spec, hold.side))[0] += hold.held_minor

    def open_order(self, order_id: int, hold: OrderHold, command_index: int) -> None:
        """The core accepted a reserved order: record the hold as a transfer."""
        spec = self.instruments[hold.instrument_id]
        asset = self.hold_asset(spec, hold.side)
        pair = self.balance(hold.account_id, asset)
        pair[0] += hold.held_minor  # undo the reservation; the transfer moves it properly
        self._transfer(
            TransferKind.HOLD,
            asset,
            hold.held_minor,
            (hold.account_id, False),
            (hold.account_id, True),
            command_index,
            order_id,
        )
        self.orders[order_id] = hold
        self.open_orders[hold.account_id] = self.open_orders.get(hold.account_id, 0) + 1
        key = (hold.account_id, spec.quote_asset_id)
        self.open_notional[key] = self.open_notional.get(key, 0) + hold.notional_minor

    def check_amend(
        self, account_id: int, order_id: int, price_ticks: int, quantity_lots: int
    ) -> tuple[int, int]:
        """(reason, extra reserved) for an amend, on exact state (the shard flushes first)."""
        if account_id <= FEE_ACCOUNT_ID:
            return Reason.account_must_be_a_customer, 0
        if account_id in self.kill_switched:
            return Reason.account_must_not_be_kill_switched, 0
        hold = self.orders.get(order_id)
        if hold is None or hold.account_id != account_id or quantity_lots <= 0:
            return 0, 0  # the core rejects it with its own reason
        spec = self.instruments[hold.instrument_id]
        new_price = price_ticks or hold.price_ticks
        limits = self.limits_of(account_id)
        notional = new_price * quantity_lots * spec.quote_minor_per_tick_lot
        order_max = limits.order_notional_max.get(spec.quote_asset_id, 0)
        if order_max and notional > order_max:
            return Reason.order_notional_must_not_exceed_limit, 0
        open_max = limits.open_notional_max.get(spec.quote_asset_id, 0)
        open_now = self.open_notional.get((account_id, spec.quote_asset_id), 0)
        if open_max and open_now - hold.notional_minor + notional > open_max:
            return Reason.open_notional_must_not_exceed_limit, 0
        extra = max(
            0, self.required_hold(spec, hold.side, new_price, quantity_lots) - hold.held_minor
        )
        pair = self.balance(account_id, self.hold_asset(spec, hold.side))
        if pair[0] < extra:
            return Reason.funds_must_be_available, 0
        pair[0] -= extra
        return 0, extra

    def amended(
        self, order_id: int, price_ticks: int, leaves_lots: int, extra: int, command_index: int
    ) -> None:
        hold = self.orders.get(order_id)
        if hold is None:
            return
        spec = self.instruments[hold.instrument_id]
        asset = self.hold_asset(spec, hold.side)
        if extra:
            self.balance(hold.account_id, asset)[0] += extra
            self._transfer(
                TransferKind.HOLD,
                asset,
                extra,
                (hold.account_id, False),
                (hold.account_id, True),
                command_index,
                order_id,
            )
            hold.held_minor += extra
        hold.price_ticks = price_ticks
        self._resize(order_id, hold, spec, leaves_lots, command_index)

    def _resize(
        self, order_id: int, hold: OrderHold, spec: InstrumentSpec, leaves: int, command_index: int
    ) -> None:
        """Set the order's leaves and release what its hold no longer needs."""
        key = (hold.account_id, spec.quote_asset_id)
        notional = hold.price_ticks * leaves * spec.quote_minor_per_tick_lot
        self.open_notional[key] += notional - hold.notional_minor
        hold.notional_minor = notional
        hold.leaves_lots = leaves
        surplus = hold.held_minor - self.required_hold(spec, hold.side, hold.price_ticks, leaves)
        if surplus < 0:
            raise AssertionError(f"order {order_id} holds less than it needs")
        if surplus:
            self._transfer(
                TransferKind.RELEASE,
                self.hold_asset(spec, hold.side),
                surplus,
                (hold.account_id, True),
                (hold.account_id, False),
                command_index,
                order_id,
            )
            hold.held_minor -= surplus

    def close_order(self, order_id: int, status: int, reason: int, command_index: int) -> None:
        """A terminal event: release the rest of the hold and forget the order."""
        hold = self.orders.pop(order_id, None)
        if hold is None:
            return
        spec = self.instruments[hold.instrument_id]
        self._resize(order_id, hold, spec, 0, command_index)
        self.open_orders[hold.account_id] -= 1
        if not self.open_orders[hold.account_id]:
            del self.open_orders[hold.account_id]
        self.remember_terminal(order_id, hold, status, reason)

    def remember_terminal(self, order_id: int, hold: OrderHold, status: int, reason: int) -> None:
        self.terminal[order_id] = (hold.account_id, status, reason)
        if len(self.terminal) > terminal_orders_kept_max:
            self.terminal.popitem(last=False)

    def reduced(self, order_id: int, leaves_lots: int, command_index: int) -> None:
        hold = self.orders.get(order_id)
        if hold is not None:
            self._resize(
                order_id, hold, self.instruments[hold.instrument_id], leaves_lots, command_index
            )

    def filled(
        self,
        trade_id: int,
        price_ticks: int,
        quantity_lots: int,
        taker: tuple[int, int, int],  # (order id, account id, leaves after)
        maker: tuple[int, int, int],
        taker_side: int,
        command_index: int,
    ) -> None:
        """Settle one trade: quote from the buyer's hold to the seller, base the other way, fees
        to the fee account (the buyer's from its hold, the seller's from its proceeds)."""
        taker_hold = self.orders[taker[0]]
        spec = self.instruments[taker_hold.instrument_id]
        quote_minor = price_ticks * quantity_lots * spec.quote_minor_per_tick_lot
        base_minor = quantity_lots * spec.base_minor_per_lot
        if taker_side == Side.BUY:
            buyer, seller = taker, maker
            buyer_bps, seller_bps = spec.taker_fee_bps, spec.maker_fee_bps
        else:
            buyer, seller = maker, taker
            buyer_bps, seller_bps = spec.maker_fee_bps, spec.taker_fee_bps
        quote, base = spec.quote_asset_id, spec.base_asset_id
        buyer_fee = quote_minor * buyer_bps // BPS
        seller_fee = quote_minor * seller_bps // BPS
        t = TransferKind
        self._transfer(
            t.TRADE, quote, quote_minor, (buyer[1], True), (seller[1], False),
            command_index, buyer[0], trade_id,
        )  # fmt: skip
        self._transfer(
            t.FEE, quote, buyer_fee, (buyer[1], True), (FEE_ACCOUNT_ID, False),
            command_index, buyer[0], trade_id,
        )  # fmt: skip
        self._transfer(
            t.TRADE, base, base_minor, (seller[1], True), (buyer[1], False),
            command_index, seller[0], trade_id,
        )  # fmt: skip
        self._transfer(
            t.FEE, quote, seller_fee, (seller[1], False), (FEE_ACCOUNT_ID, False),
            command_index, seller[0], trade_id,
        )  # fmt: skip
        for order_id, spent in ((buyer[0], quote_minor + buyer_fee), (seller[0], base_minor)):
            hold = self.orders[order_id]
            hold.held_minor -= spent
            leaves = buyer[2] if order_id == buyer[0] else seller[2]
            self._resize(order_id, hold, spec, leaves, command_index)

    # -- money in and out --

    def deposit(
        self, account_id: int, asset_id: int, amount_minor: int, deposit_id: str, index: int
    ) -> int:
        if amount_minor <= 0:
            return Reason.amount_must_be_positive
        if deposit_id in self.deposits_credited:
            return 0  # credited once: a replayed deposit is a no-op, not an error
        if amount_minor - sum(self.balance(EXTERNAL_ACCOUNT_ID, asset_id)) > balance_minor_max:
            return Reason.balance_must_stay_within_maximum
        self.deposits_credited.add(deposit_id)
        self._transfer(
            TransferKind.DEPOSIT,
            asset_id,
            amount_minor,
            (EXTERNAL_ACCOUNT_ID, False),
            (account_id, False),
            index,
        )
        return 0

    def hold_withdrawal(
        self, account_id: int, asset_id: int, amount_minor: int, withdrawal_id: str, index: int
    ) -> int:
        if amount_minor <= 0:
            return Reason.amount_must_be_positive
        if withdrawal_id in self.withdrawals or withdrawal_id in self.withdrawals_finished:
            return Reason.withdrawal_id_must_be_unique
        # A frozen customer's money stays: compliance's freeze sets the kill switch, which
        # blocks withdrawals as well as orders (settling or releasing a held one still works).
        if account_id in self.kill_switched:
            return Reason.account_must_not_be_kill_switched
        if self.balance(account_id, asset_id)[0] < amount_minor:
            return Reason.funds_must_be_available
        self.withdrawals[withdrawal_id] = (account_id, asset_id, amount_minor)
        self._transfer(
            TransferKind.HOLD,
            asset_id,
            amount_minor,
            (account_id, False),
            (account_id, True),
            index,
        )
        return 0

    def finish_withdrawal(self, withdrawal_id: str, settle: bool, index: int) -> int:
        found = self.withdrawals.pop(withdrawal_id, None)
        if found is None:
            return Reason.withdrawal_must_exist
        self.withdrawals_finished.add(withdrawal_id)
        account_id, asset_id, amount = found
        if settle:
            self._transfer(
                TransferKind.WITHDRAWAL,
                asset_id,
                amount,
                (account_id, True),
                (EXTERNAL_ACCOUNT_ID, False),
                index,
            )
        else:
            self._transfer(
                TransferKind.RELEASE,
                asset_id,
                amount,
                (account_id, True),
                (account_id, False),
                index,
            )
        return 0

    # -- checks --

    def check_invariants(self) -> None:
        """Money is conserved per asset, no customer bucket is negative, and every open order
        holds exactly what it can still spend. Raises AssertionError."""
        totals: dict[int, int] = {}
        held: dict[tuple[int, int], int] = {}
        for account_id, assets in self.balances.items():
            for asset_id, (available, on_hold) in assets.items():
                totals[asset_id] = totals.get(asset_id, 0) + available + on_hold
                if account_id != EXTERNAL_ACCOUNT_ID and (available < 0 or on_hold < 0):
                    raise AssertionError(f"negative balance: {account_id} {asset_id}")
                held[account_id, asset_id] = on_hold
        if any(totals.values()):
            raise AssertionError(f"money not conserved: {totals}")
        order_held: dict[tuple[int, int], int] = {}
        for order_id, hold in self.orders.items():
            spec = self.instruments[hold.instrument_id]
            need = self.required_hold(spec, hold.side, hold.price_ticks, hold.leaves_lots)
            if hold.held_minor != need:
                raise AssertionError(f"order {order_id} holds {hold.held_minor}, needs {need}")
            key = (hold.account_id, self.hold_asset(spec, hold.side))
            order_held[key] = order_held.get(key, 0) + hold.held_minor
        for account_id, asset_id, amount in self.withdrawals.values():
            key = (account_id, asset_id)
            order_held[key] = order_held.get(key, 0) + amount
        for key, amount in held.items():
            if amount != order_held.get(key, 0):
                raise AssertionError(f"held {amount} for {key}, orders hold {order_held.get(key)}")


__all__ = [
    "BPS",
    "EXTERNAL_ACCOUNT_ID",
    "FEE_ACCOUNT_ID",
    "InstrumentSpec",
    "Limits",
    "OrderHold",
    "RiskStage",
    "derive_units",
    "terminal_orders_kept_max",
]
