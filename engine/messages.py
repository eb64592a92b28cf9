"""What the engine reads from its journal and writes to NATS: msgspec Structs owned by the engine.

Schema rules (so old consumers survive new producers): map encoding, unknown fields ignored, a
new field always gets a default, a field is never renamed or retyped, a tag never reused.
Commands are imperative (`PlaceOrder`), results past tense (`EventBatch` rows say what happened).

The event rows of one journal entry travel as raw NumPy records (`EVENT_DTYPE`,
`TRANSFER_DTYPE`) inside one map-encoded `EventBatch`: the entry's outcome costs one decode per
batch instead of one Python object per event. `layout` names the record layout version.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from engine._dtypes import EVENT_DTYPE, PLACE_DTYPE, TRANSFER_DTYPE


class _Message(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=False
):
    pass


# -- COMMANDS (journal entries carry a list of them) --


class PlaceOrder(_Message, tag="place", frozen=True, kw_only=True):
    account_id: int
    instrument_id: int
    client_order_id: int
    side: int  # Side
    order_type: int  # OrderType
    time_in_force: int  # TimeInForce
    price_ticks: int = 0  # 0 on a market order
    quantity_lots: int
    expire_ts_ns: int = 0
    post_only: bool = False
    stp_mode: int = 1  # StpMode.CANCEL_TAKER
    stp_group: int = 0


class PlaceOrders(_Message, tag="places", frozen=True, kw_only=True):
    """Places of one account on one instrument in one command: `rows` holds a PLACE_DTYPE
    record per order, the other fields are every order's. Order k takes command position
    (this command's position + k) of its entry and applies exactly as the PlaceOrder it stands
    for (`flat_commands`): the gateway journals a client's PlaceColumns without building a
    Python object per order."""

    account_id: int
    instrument_id: int
    order_type: int
    time_in_force: int
    expire_ts_ns: int = 0
    post_only: bool = False
    stp_mode: int = 1
    stp_group: int = 0
    rows: bytes

    def __post_init__(self) -> None:
        # Raised while decoding: the entry is then undecodable and skipped whole (engine/loop).
        if len(self.rows) % PLACE_DTYPE.itemsize:
            raise ValueError(f"rows must be whole {PLACE_DTYPE.itemsize}-byte PLACE_DTYPE records")

    @property
    def count(self) -> int:
        return len(self.rows) // PLACE_DTYPE.itemsize

    def orders(self) -> list[PlaceOrder]:
        rows = np.frombuffer(self.rows, dtype=PLACE_DTYPE)
        make = functools.partial(
            PlaceOrder,
            account_id=self.account_id,
            instrument_id=self.instrument_id,
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            expire_ts_ns=self.expire_ts_ns,
            post_only=self.post_only,
            stp_mode=self.stp_mode,
            stp_group=self.stp_group,
        )
        return [
            make(client_order_id=coid, price_ticks=price, quantity_lots=quantity, side=side)
            for coid, price, quantity, side in rows.tolist()
        ]


class CancelOrder(_Message, tag="cancel", frozen=True, kw_only=True):
    account_id: int
    order_id: int = 0  # 0: by client order id
    client_order_id: int = 0


class AmendOrder(_Message, tag="amend", frozen=True, kw_only=True):
    account_id: int
    order_id: int
    price_ticks: int = 0  # 0 keeps the price
    quantity_lots: int  # the new open quantity


class MassCancel(_Message, tag="mass_cancel", frozen=True, kw_only=True):
    account_id: int  # 0: every account (the risk desk's cancel-all)
    instrument_id: int = -1  # -1: every instrument


class HaltInstrument(_Message, tag="halt", frozen=True, kw_only=True):
    instrument_id: int
    cancel_resting: bool = False


class ResumeInstrument(_Message, tag="resume", frozen=True, kw_only=True):
    instrument_id: int


class SetKillSwitch(_Message, tag="kill_switch", frozen=True, kw_only=True):
    account_id: int
    on: bool


class SetRiskLimits(_Message, tag="risk_limits", frozen=True, kw_only=True):
    """Limits of one account, or the defaults (account 0). 0 / absent: no limit."""

    account_id: int
    open_orders_max: int = 0
    order_notional_max: dict[int, int] = {}  # quote asset id -> quote minor units
    open_notional_max: dict[int, int] = {}


class DefineAsset(_Message, tag="asset", frozen=True, kw_only=True):
    asset_id: int
    symbol: str
    decimals: int  # minor units per unit = 10 ** decimals


class DefineInstrument(_Message, tag="instrument", frozen=True, kw_only=True):
    """A market. Prices are ticks of tick_size quote units; quantities lots of lot_size base units.

    One lot at one tick is worth `quote_minor_per_tick_lot` quote minor units and one lot is
    `base_minor_per_lot` base minor units: both must be whole numbers (checked when applied).
    """

    instrument_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    tick_size: str  # decimal, quote units per base unit
    lot_size: str  # decimal, base units
    price_min_ticks: int
    price_max_ticks: int
    quantity_min_lots: int = 1
    quantity_max_lots: int
    notional_min: int = 0  # ticks x lots
    taker_fee_bps: int = 0
    maker_fee_bps: int = 0
    jurisdictions_allowed: list[str] = []  # ISO 3166 alpha-2; empty: every jurisdiction


class Deposit(_Message, tag="deposit", frozen=True, kw_only=True):
    account_id: int
    asset_id: int
    amount_minor: int
    deposit_id: str  # the custody reference; one deposit is credited once


class HoldWithdrawal(_Message, tag="hold_withdrawal", frozen=True, kw_only=True):
    account_id: int
    asset_id: int
    amount_minor: int
    withdrawal_id: str


class SettleWithdrawal(_Message, tag="settle_withdrawal", frozen=True, kw_only=True):
    withdrawal_id: str  # the held amount leaves for the external account


class ReleaseWithdrawal(_Message, tag="release_withdrawal", frozen=True, kw_only=True):
    withdrawal_id: str  # the held amount goes back to available


class AdvanceTime(_Message, tag="advance_time", frozen=True, kw_only=True):
    """Moves sequenced time to the entry's ts_ns (expires GTD orders) when nothing else does."""


Command = (
    PlaceOrder
    | PlaceOrders
    | CancelOrder
    | AmendOrder
    | MassCancel
    | HaltInstrument
    | ResumeInstrument
    | SetKillSwitch
    | SetRiskLimits
    | DefineAsset
    | DefineInstrument
    | Deposit
    | HoldWithdrawal
    | SettleWithdrawal
    | ReleaseWithdrawal
    | AdvanceTime
)


def command_count(command: Command) -> int:
    """Command positions `command` takes in its entry: a PlaceOrders one per order."""
    return command.count if type(command) is PlaceOrders else 1


def flat_commands(commands: list[Command]) -> list[Command]:
    """The entry's commands with each PlaceOrders replaced by its orders, so that each
    command's index is its position; `commands` itself when there is no PlaceOrders."""
    if not any(type(c) is PlaceOrders for c in commands):
        return commands
    flat: list[Command] = []
    for command in commands:
        if type(command) is PlaceOrders:
            flat.extend(command.orders())
        else:
            flat.append(command)
    return flat


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One message of the journal: commands applied as one unit, in order.

    `(origin, batch_id)` is the JetStream message id, so a sender that retries a publish after a
    timeout cannot journal the same batch twice. ts_ns is stamped by the sender; the engine's
    time is the running maximum of the ts_ns it has applied, so it never goes back.
    """

    origin: str  # who sent it: a gateway instance, clearctl via the gateway, the demo bootstrap
    batch_id: int
    ts_ns: int
    commands: list[Command]
    actor: str = ""  # the API key id behind an admin command, for the audit trail


# -- RESULTS --


class EventBatch(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """Everything one journal entry caused, published once per entry with message id
    `ev:{shard}:{journal_seq}`. Event rows' `command_index` is the command's position in the
    entry; transfers are double-entry moves between balances (see TRANSFER_DTYPE).

    `codec` 1: `events` and `transfers` are each zlib-compressed (`compressed`), for an entry
    whose outcome would not fit in one NATS message as it is. Read rows through `event_rows`
    and `transfer_rows`, which undo it (once per batch: the arrays are kept)."""

    shard: str
    journal_seq: int
    origin: str
    batch_id: int
    ts_ns: int
    events: bytes
    transfers: bytes = b""
    layout: int = 1
    codec: int = 0  # 0: rows as they are; 1: zlib

    def event_rows(self) -> npt.NDArray[Any]:
        return self._rows[0]

    def transfer_rows(self) -> npt.NDArray[Any]:
        return self._rows[1]

    @functools.cached_property
    def _rows(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        events, transfers = self.events, self.transfers
        if self.codec == CODEC_ZLIB:
            events, transfers = zlib.decompress(events), zlib.decompress(transfers)
        elif self.codec != CODEC_RAW:
            raise ValueError(f"EventBatch {self.journal_seq} has unknown codec {self.codec}")
        return (
            np.frombuffer(events, dtype=EVENT_DTYPE),
            np.frombuffer(transfers, dtype=TRANSFER_DTYPE),
        )


CODEC_RAW, CODEC_ZLIB = 0, 1


def compressed(batch: EventBatch) -> EventBatch:
    """The batch with its rows zlib-compressed (level 1: about 8x on engine rows, ~3 ms a
    MB); only for outcomes too large to publish as they are, since every reader pays to undo it."""
    if batch.codec != CODEC_RAW:
        return batch
    return msgspec.structs.replace(
        batch,
        events=zlib.compress(batch.events, 1),
        transfers=zlib.compress(batch.transfers, 1),
        codec=CODEC_ZLIB,
    )


class BookLevel(msgspec.Struct, frozen=True, array_like=True):
    """One side's level: new total (0: gone) and order count. Array-like: it is the bulk of
    every market data message and its shape is fixed."""

    side: int
    price_ticks: int
    quantity_lots: int
    order_count: int


class TradePrint(msgspec.Struct, frozen=True, array_like=True):
    trade_id: int
    price_ticks: int
    quantity_lots: int
    aggressor_side: int


class MarketDataUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One instrument's change from one journal entry, on subject `{prefix}.md.{shard}.{id}`.
    `sequence` grows by one per update of the instrument; a gap means a missed update."""

    instrument_id: int
    sequence: int
    ts_ns: int
    journal_seq: int
    levels: list[BookLevel] = []
    trades: list[TradePrint] = []
    status: int = 0  # InstrumentStatus when it changed, else 0


# -- QUERIES (request/reply on `{prefix}.query.{shard}`, answered between journal entries) --


class GetBalances(_Message, tag="balances", frozen=True, kw_only=True):
    account_id: int


class GetAllBalances(_Message, tag="all_balances", frozen=True, kw_only=True):
    """Every account's balances, a page of accounts at a time (for reconciliation): accounts
    after `after_account_id`, at most `accounts_max` of them. Each page is exact as of its
    reply's journal_seq; pages may be of different entries."""

    after_account_id: int = -1
    accounts_max: int = 2_000


class GetOpenOrders(_Message, tag="open_orders", frozen=True, kw_only=True):
    account_id: int


class GetOrder(_Message, tag="order", frozen=True, kw_only=True):
    account_id: int
    order_id: int = 0
    client_order_id: int | None = None  # among the account's open orders


class GetBook(_Message, tag="book", frozen=True, kw_only=True):
    instrument_id: int
    depth: int = 20


class GetStatus(_Message, tag="status", frozen=True, kw_only=True):
    with_state_hash: bool = False


class GetRiskLimits(_Message, tag="limits", frozen=True, kw_only=True):
    account_id: int


class ListInstruments(_Message, tag="instruments", frozen=True, kw_only=True):
    pass


class TakeSnapshot(_Message, tag="snapshot", frozen=True, kw_only=True):
    pass


Query = (
    GetBalances
    | GetAllBalances
    | GetOpenOrders
    | GetOrder
    | GetBook
    | GetStatus
    | GetRiskLimits
    | ListInstruments
    | TakeSnapshot
)


class QueryReply(msgspec.Struct, frozen=True, kw_only=True):
    """`ok` false: `error` says why (unknown account, order, instrument...); `result` is the
    query's answer as plain data (dicts and lists of ints and strings)."""

    ok: bool
    journal_seq: int  # the answer is as of this journal entry
    result: Any = None
    error: str = ""


# One encoder and decoder per process: building them is the expensive part.
ENCODER = msgspec.msgpack.Encoder()
JOURNAL_DECODER = msgspec.msgpack.Decoder(JournalEntry)
EVENTS_DECODER = msgspec.msgpack.Decoder(EventBatch)
MARKET_DATA_DECODER = msgspec.msgpack.Decoder(MarketDataUpdate)
QUERY_DECODER = msgspec.msgpack.Decoder(Query)
REPLY_DECODER = msgspec.msgpack.Decoder(QueryReply)

__all__ = [
    "ENCODER",
    "EVENTS_DECODER",
    "JOURNAL_DECODER",
    "MARKET_DATA_DECODER",
    "QUERY_DECODER",
    "REPLY_DECODER",
    "AdvanceTime",
    "AmendOrder",
    "BookLevel",
    "CancelOrder",
    "Command",
    "DefineAsset",
    "DefineInstrument",
    "Deposit",
    "EventBatch",
    "GetAllBalances",
    "GetBalances",
    "GetBook",
    "GetOpenOrders",
    "GetOrder",
    "GetRiskLimits",
    "GetStatus",
    "HaltInstrument",
    "HoldWithdrawal",
    "JournalEntry",
    "ListInstruments",
    "MarketDataUpdate",
    "MassCancel",
    "PlaceOrder",
    "PlaceOrders",
    "Query",
    "QueryReply",
    "ReleaseWithdrawal",
    "ResumeInstrument",
    "SetKillSwitch",
    "SetRiskLimits",
    "SettleWithdrawal",
    "TakeSnapshot",
    "TradePrint",
    "command_count",
    "compressed",
    "flat_commands",
]
