"""NumPy record layouts shared by the batch path, the reference book and snapshots.

The Cython core declares C structs with the same fields in the same order; a test checks that
their sizes and offsets agree with these dtypes. Fields run from widest to narrowest so that the
aligned layouts need no hidden padding between fields.
"""

from __future__ import annotations

import numpy as np

# One command into the engine. Unused fields are zero.
COMMAND_DTYPE = np.dtype(
    [
        ("ts_ns", "<i8"),  # sequenced time given by the journal; the engine has no clock
        ("account_id", "<i8"),
        ("client_order_id", "<i8"),
        ("order_id", "<i8"),  # cancel and amend
        ("price_ticks", "<i8"),
        ("quantity_lots", "<i8"),
        ("expire_ts_ns", "<i8"),  # GTD only
        ("instrument_id", "<i4"),  # -1 on mass cancel means every instrument
        ("stp_group", "<i4"),  # 0: none; orders of one group never trade with each other
        ("kind", "u1"),  # CommandKind
        ("side", "u1"),  # Side
        ("order_type", "u1"),  # OrderType
        ("time_in_force", "u1"),  # TimeInForce
        ("stp_mode", "u1"),  # StpMode
        ("post_only", "u1"),
        ("cancel_resting", "u1"),  # halt: also cancel the instrument's resting orders
    ],
    align=True,
)

# One outcome out of the engine. What each field means per kind is in docs/matching.md.
EVENT_DTYPE = np.dtype(
    [
        ("seq", "<i8"),  # engine sequence: strictly increasing over the engine's life
        ("ts_ns", "<i8"),
        ("order_id", "<i8"),
        ("account_id", "<i8"),
        ("client_order_id", "<i8"),
        ("price_ticks", "<i8"),
        ("quantity_lots", "<i8"),
        ("leaves_lots", "<i8"),
        ("maker_order_id", "<i8"),
        ("maker_account_id", "<i8"),
        ("maker_client_order_id", "<i8"),
        ("maker_leaves_lots", "<i8"),
        ("trade_id", "<i8"),
        ("command_index", "<i4"),  # position of the causing command in its batch
        ("instrument_id", "<i4"),
        ("reason", "<u2"),  # Reason
        ("kind", "u1"),  # EventKind
        ("side", "u1"),
        ("status", "u1"),  # OrderStatus, or InstrumentStatus on INSTRUMENT_STATUS
    ],
    align=True,
)

# Snapshot rows: one per instrument, one per resting order in book priority order.
INSTRUMENT_DTYPE = np.dtype(
    [
        ("price_increment_ticks", "<i8"),
        ("quantity_increment_lots", "<i8"),
        ("quantity_min_lots", "<i8"),
        ("quantity_max_lots", "<i8"),
        ("notional_min", "<i8"),  # in ticks x lots
        ("price_min_ticks", "<i8"),
        ("price_max_ticks", "<i8"),
        ("instrument_id", "<i4"),
        ("status", "u1"),
    ],
    align=True,
)

ORDER_DTYPE = np.dtype(
    [
        ("order_id", "<i8"),
        ("account_id", "<i8"),
        ("client_order_id", "<i8"),
        ("price_ticks", "<i8"),
        ("leaves_lots", "<i8"),
        ("filled_lots", "<i8"),
        ("expire_ts_ns", "<i8"),
        ("instrument_id", "<i4"),
        ("stp_group", "<i4"),
        ("side", "u1"),
        ("order_type", "u1"),
        ("time_in_force", "u1"),
        ("stp_mode", "u1"),
        ("post_only", "u1"),
    ],
    align=True,
)

# One double-entry move of money, written by the engine's risk stage (engine/risk.py): amount
# leaves the debit account's bucket and enters the credit account's bucket of the same asset. A
# bucket is the account's available (0) or held (1) amount. Account 0 is the outside world
# (deposits and withdrawals), account 1 the exchange's fee income.
TRANSFER_DTYPE = np.dtype(
    [
        ("amount_minor", "<i8"),
        ("debit_account_id", "<i8"),
        ("credit_account_id", "<i8"),
        ("order_id", "<i8"),  # the order the money is held for or traded by; 0: none
        ("trade_id", "<i8"),  # TRADE and FEE only
        ("asset_id", "<i4"),
        ("command_index", "<i4"),  # the causing command's position in its journal entry
        ("kind", "u1"),  # TransferKind
        ("debit_held", "u1"),
        ("credit_held", "u1"),
    ],
    align=True,
)

# One order of a PlaceOrders journal command (engine/messages.py): what differs between the
# orders of a client's PlaceColumns; the rest is the command's, shared by all of them.
PLACE_DTYPE = np.dtype(
    [
        ("client_order_id", "<i8"),
        ("price_ticks", "<i8"),
        ("quantity_lots", "<i8"),
        ("side", "u1"),  # Side
    ],
    align=True,
)

__all__ = [
    "COMMAND_DTYPE",
    "EVENT_DTYPE",
    "INSTRUMENT_DTYPE",
    "ORDER_DTYPE",
    "PLACE_DTYPE",
    "TRANSFER_DTYPE",
]
