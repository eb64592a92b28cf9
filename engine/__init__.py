"""Clearline matching engine: the Cython price-time core and what surrounds it.

Semantics: docs/matching.md. `Engine` is the compiled core; `ReferenceEngine` is the plain-Python
book with the same semantics that the core is tested against.
"""

from engine._codes import (
    CommandKind,
    EventKind,
    InstrumentStatus,
    OrderStatus,
    OrderType,
    Reason,
    Role,
    Side,
    StpMode,
    TimeInForce,
    TransferKind,
)
from engine._core import Engine
from engine._dtypes import COMMAND_DTYPE, EVENT_DTYPE, INSTRUMENT_DTYPE, ORDER_DTYPE
from engine._limits import EngineLimits
from engine._snapshot import SnapshotError
from engine.reference import ReferenceEngine

__all__ = [
    "COMMAND_DTYPE",
    "EVENT_DTYPE",
    "INSTRUMENT_DTYPE",
    "ORDER_DTYPE",
    "CommandKind",
    "Engine",
    "EngineLimits",
    "EventKind",
    "InstrumentStatus",
    "OrderStatus",
    "OrderType",
    "Reason",
    "ReferenceEngine",
    "Role",
    "Side",
    "SnapshotError",
    "StpMode",
    "TimeInForce",
    "TransferKind",
]
