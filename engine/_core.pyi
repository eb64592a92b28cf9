"""Typing for the compiled matching core (engine/_core.pyx)."""

from typing import Any

import numpy as np
import numpy.typing as npt

from engine._limits import EngineLimits

class Engine:
    limits: EngineLimits
    def __init__(self, limits: EngineLimits | None = None) -> None: ...
    # -- commands --
    def add_instrument(
        self,
        instrument_id: int,
        *,
        price_increment_ticks: int,
        quantity_increment_lots: int,
        quantity_min_lots: int,
        quantity_max_lots: int,
        notional_min: int,
        price_min_ticks: int,
        price_max_ticks: int,
    ) -> int: ...
    def place(
        self,
        ts_ns: int,
        instrument_id: int,
        account_id: int,
        client_order_id: int,
        side: int,
        price_ticks: int,
        quantity_lots: int,
        *,
        order_type: int = ...,
        time_in_force: int = ...,
        expire_ts_ns: int = 0,
        post_only: bool = False,
        stp_group: int = 0,
        stp_mode: int = ...,
    ) -> int: ...
    def cancel(
        self, ts_ns: int, account_id: int, order_id: int = 0, client_order_id: int = 0
    ) -> int: ...
    def amend(
        self, ts_ns: int, account_id: int, order_id: int, price_ticks: int, quantity_lots: int
    ) -> int: ...
    def mass_cancel(self, ts_ns: int, account_id: int, instrument_id: int = -1) -> int: ...
    def halt(self, ts_ns: int, instrument_id: int, cancel_resting: bool = False) -> int: ...
    def resume(self, ts_ns: int, instrument_id: int) -> int: ...
    def advance_time(self, ts_ns: int) -> int: ...
    def process(
        self, commands: npt.NDArray[Any], latency_ns: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[Any]: ...
    def drain_events(self) -> npt.NDArray[Any]: ...
    # -- queries --
    def bbo(self, instrument_id: int) -> tuple[int, int, int, int]: ...
    def depth(
        self, instrument_id: int, levels: int
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]: ...
    def order(self, order_id: int) -> dict[str, int] | None: ...
    def open_orders(self, account_id: int) -> list[dict[str, int]]: ...
    @property
    def now_ts_ns(self) -> int: ...
    @property
    def next_expiry_ts_ns(self) -> int: ...
    # -- snapshots and checks --
    def snapshot(self) -> bytes: ...
    def state_hash(self) -> str: ...
    @classmethod
    def restore(cls, data: bytes, limits: EngineLimits | None = None) -> Engine: ...
    def check_invariants(self) -> bool: ...
