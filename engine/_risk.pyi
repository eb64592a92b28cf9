"""Typing for the compiled risk stage (engine/_risk.pyx); semantics are engine/risk.py's."""

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.messages import BookLevel, PlaceOrder, TradePrint

def _record_sizes() -> dict[str, int]: ...

class InstrumentSpec:
    instrument_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    quote_minor_per_tick_lot: int
    base_minor_per_lot: int
    price_max_ticks: int
    fee_bps_max: int
    taker_fee_bps: int
    maker_fee_bps: int
    def __init__(
        self,
        instrument_id: int,
        symbol: str,
        base_asset_id: int,
        quote_asset_id: int,
        quote_minor_per_tick_lot: int,
        base_minor_per_lot: int,
        price_max_ticks: int,
        fee_bps_max: int,
        taker_fee_bps: int,
        maker_fee_bps: int,
    ) -> None: ...

class Balance:
    """[available, held] of one account in one asset."""

    available_minor: int
    held_minor: int
    def __init__(self, available_minor: int = 0, held_minor: int = 0) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, bucket: int) -> int: ...
    def __setitem__(self, bucket: int, amount_minor: int) -> None: ...
    def __iter__(self) -> Iterator[int]: ...

class Exposure:
    notional_minor: int
    def __init__(self, notional_minor: int = 0) -> None: ...

class OrderHold:
    account_id: int
    instrument_id: int
    side: int
    price_ticks: int
    leaves_lots: int
    held_minor: int
    notional_minor: int
    def __init__(
        self,
        account_id: int,
        instrument_id: int,
        side: int,
        price_ticks: int,
        leaves_lots: int,
        held_minor: int,
        notional_minor: int,
    ) -> None: ...

class Limits:
    open_orders_max: int
    order_notional_max: dict[int, int]
    open_notional_max: dict[int, int]
    def __init__(
        self,
        open_orders_max: int = 0,
        order_notional_max: dict[int, int] | None = None,
        open_notional_max: dict[int, int] | None = None,
    ) -> None: ...

class Run:
    def __len__(self) -> int: ...
    def clear(self) -> None: ...
    def push(self, index: int, row: tuple[int, ...], pending: Any = None) -> bool: ...
    def commands(self) -> npt.NDArray[np.void]: ...

class RiskStage:
    balances: dict[int, dict[int, Balance]]
    instruments: dict[int, InstrumentSpec]
    orders: dict[int, OrderHold]
    open_orders: dict[int, int]
    open_notional: dict[tuple[int, int], Exposure]
    limits: dict[int, Limits]
    kill_switched: set[int]
    withdrawals: dict[str, tuple[int, int, int]]
    withdrawals_finished: set[str]
    deposits_credited: set[str]
    terminal: dict[int, tuple[int, int, int]]
    @property
    def transfers(self) -> list[tuple[int, ...]]: ...
    def __init__(self) -> None: ...
    # -- balances --
    def balance(self, account_id: int, asset_id: int) -> Balance: ...
    def take_transfers(self) -> npt.NDArray[np.void]: ...
    # -- holds --
    def required_hold(
        self, spec: InstrumentSpec, side: int, price_ticks: int, lots: int
    ) -> int: ...
    def hold_asset(self, spec: InstrumentSpec, side: int) -> int: ...
    def limits_of(self, account_id: int) -> Limits: ...
    def check_place(
        self,
        account_id: int,
        instrument_id: int,
        side: int,
        order_type: int,
        price_ticks: int,
        quantity_lots: int,
        pending_orders: int = 0,
        pending_notional: int = 0,
    ) -> tuple[int, OrderHold | None]: ...
    def place(self, run: Run, index: int, ts_ns: int, c: PlaceOrder) -> int: ...
    def place_many(
        self,
        run: Run,
        commands: Sequence[Any],
        start: int,
        ts_ns: int,
        rejects: list[tuple[int, int]],
    ) -> int: ...
    def unreserve(self, hold: OrderHold) -> None: ...
    def open_order(self, order_id: int, hold: OrderHold, command_index: int) -> None: ...
    def restore_order(
        self,
        order_id: int,
        account_id: int,
        instrument_id: int,
        side: int,
        price_ticks: int,
        leaves_lots: int,
        held_minor: int,
        notional_minor: int,
    ) -> None: ...
    def check_amend(
        self, account_id: int, order_id: int, price_ticks: int, quantity_lots: int
    ) -> tuple[int, int]: ...
    def amended(
        self, order_id: int, price_ticks: int, leaves_lots: int, extra: int, command_index: int
    ) -> None: ...
    def close_order(self, order_id: int, status: int, reason: int, command_index: int) -> None: ...
    def remember_terminal(
        self, order_id: int, hold: OrderHold, status: int, reason: int
    ) -> None: ...
    def restore_terminal(self, rows: Iterable[tuple[int, int, int, int]]) -> None: ...
    def reduced(self, order_id: int, leaves_lots: int, command_index: int) -> None: ...
    def filled(
        self,
        trade_id: int,
        price_ticks: int,
        quantity_lots: int,
        taker: tuple[int, int, int],
        maker: tuple[int, int, int],
        taker_side: int,
        command_index: int,
    ) -> None: ...
    # -- settlement --
    def settle(
        self,
        events: npt.NDArray[Any],
        run: Run | None,
        md_levels: dict[int, dict[tuple[int, int], BookLevel]],
        md_trades: dict[int, list[TradePrint]],
        md_status: dict[int, int],
        instrument_status: dict[int, int],
        command_index: int = 0,
    ) -> npt.NDArray[Any]: ...
    # -- money in and out --
    def deposit(
        self, account_id: int, asset_id: int, amount_minor: int, deposit_id: str, index: int
    ) -> int: ...
    def hold_withdrawal(
        self, account_id: int, asset_id: int, amount_minor: int, withdrawal_id: str, index: int
    ) -> int: ...
    def finish_withdrawal(self, withdrawal_id: str, settle: bool, index: int) -> int: ...
    # -- checks --
    def check_invariants(self) -> None: ...
