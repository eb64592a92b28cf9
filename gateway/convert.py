"""The gateway's edge between the gRPC contracts and the engine: pure functions, no I/O.

Clients speak decimal strings in the instrument's units ("30123.45", "0.0012"); the engine
speaks integers (ticks, lots, minor units). Every conversion here is exact, through `Decimal`
with a context that traps rounding, and never through float: a price that is not a whole number
of ticks is rejected, never rounded.

Three groups:

- numbers: `to_ticks` / `to_lots` / `to_minor` (text -> int) and `ticks_text` / `lots_text` /
  `minor_text` (int -> normalized text, no exponent);
- requests: `place_command`, `cancel_command`, `amend_command`, `mass_cancel_command` turn a
  proto request into an engine command or the first failing 1xxx `Reason` (checks run in the
  order of their numbers);
- results: `execution_reports` turns an EventBatch's rows into ExecutionReport protos, and the
  `*_proto` functions turn query results and market data into their protos.

`to_ticks` and friends return ``int | Reason``, and `Reason` is an `IntEnum`, so an int: test
``isinstance(result, Reason)`` before using the number.
"""

from __future__ import annotations

import collections
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow, Rounded
from typing import Any

import numpy as np
import numpy.typing as npt

from engine._codes import (
    EventKind,
    InstrumentStatus,
    OrderStatus,
    OrderType,
    Reason,
    Side,
    StpMode,
    TimeInForce,
)
from engine._dtypes import EVENT_DTYPE
from engine.messages import (
    AmendOrder,
    CancelOrder,
    MarketDataUpdate,
    MassCancel,
    PlaceOrder,
)
from gateway._proto.clearline.v1 import (
    account_pb2,
    control_pb2,
    market_data_pb2,
    order_entry_pb2,
)

# A price or quantity text longer than this is refused as not decimal: no real price needs it,
# and it bounds the work one field of one request can cost.
decimal_text_chars_max = 64
# Client order ids and expiry times travel in the engine's signed 64-bit fields.
int63_max = (1 << 63) - 1
# Ticks, lots or minor units past int63_max saturate to this one value past it: the engine
# rejects it as `command_must_be_well_formed` (4031), the outcome every such value would get,
# and it still fits the journal's msgpack encoding (which stops at 2**64 - 1).
units_saturated = 1 << 63

# Exact decimal arithmetic: any rounding, overflow or invalid operation raises instead of
# silently changing a price. 200 digits hold a 64-character text divided by any sane size.
_EXACT = Context(
    prec=200,
    Emax=10_000,
    Emin=-10_000,
    traps=[Inexact, Rounded, InvalidOperation, DivisionByZero, Overflow],
)
# Unsigned plain decimals only: no sign, exponent, whitespace, underscore or non-ASCII digit.
# An exponent is refused outright: "1e999999999" would cost a billion-digit integer.
_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_VALID_SIDES = frozenset(int(s) for s in Side)
VALID_ORDER_TYPES = frozenset(int(t) for t in OrderType)
_VALID_TIME_IN_FORCE = frozenset(int(t) for t in TimeInForce)
_VALID_STP_MODES = frozenset(int(m) for m in StpMode)
# Order-level events: each gives one report (FILLED gives two, one per side of the trade).
ORDER_EVENT_KINDS = frozenset(
    {
        EventKind.ACCEPTED,
        EventKind.REJECTED,
        EventKind.FILLED,
        EventKind.CANCELLED,
        EventKind.AMENDED,
        EventKind.REDUCED,
    }
)
_ORDER_EVENT_KIND_ARRAY = np.array(sorted(ORDER_EVENT_KINDS))
# Below this many rows a few NumPy calls cost more than looking at each row.
bulk_filter_rows_min = 32


# -- NUMBERS --


def parse_decimal(text: str) -> Decimal | None:
    """The exact value of an unsigned plain decimal text, or None if it is not one.

    Accepts ``"12"``, ``"12.50"``, ``".5"``, ``"5."``; refuses signs, exponents, whitespace,
    ``"NaN"``, ``"Infinity"`` and texts over `decimal_text_chars_max` characters. O(len(text)).
    """
    if len(text) > decimal_text_chars_max or _DECIMAL_TEXT.fullmatch(text) is None:
        return None
    return _EXACT.create_decimal(text)


# Decimal texts and their values remembered: orders and reports repeat the same few prices and
# quantities, and one Decimal parse or format costs more than the rest of a command's fields.
texts_cached_max = 65_536


@functools.lru_cache(maxsize=texts_cached_max)
def _to_units(text: str, size: Decimal, not_decimal: Reason, not_multiple: Reason) -> int | Reason:
    value = parse_decimal(text)
    if value is None:
        return not_decimal
    quotient, remainder = _EXACT.divmod(value, size)
    if remainder != 0:
        return not_multiple
    return min(int(quotient), units_saturated)


def to_ticks(text: str, tick_size: Decimal) -> int | Reason:
    """A price text in ticks of ``tick_size``.

    Returns
    -------
    int or Reason
        The number of ticks (saturated at `units_saturated`); `Reason.price_must_be_decimal`
        for a text that is not an unsigned plain decimal; and
        `Reason.price_must_be_multiple_of_tick_size` for a price between two ticks.
    """
    return _to_units(
        text,
        tick_size,
        Reason.price_must_be_decimal,
        Reason.price_must_be_multiple_of_tick_size,
    )


def to_lots(text: str, lot_size: Decimal) -> int | Reason:
    """A quantity text in lots of ``lot_size``; the Reasons are the quantity ones (1009, 1010)."""
    return _to_units(
        text,
        lot_size,
        Reason.quantity_must_be_decimal,
        Reason.quantity_must_be_multiple_of_lot_size,
    )


def minor_size(decimals: int) -> Decimal:
    """The size of one minor unit of an asset with ``decimals`` decimals (2 -> 0.01)."""
    return Decimal(1).scaleb(-decimals, _EXACT)


def to_minor(text: str, decimals: int) -> int | None:
    """An amount text in minor units of an asset with ``decimals`` decimals; None if it is not
    an unsigned plain decimal with at most ``decimals`` decimals."""
    result = _to_units(text, minor_size(decimals), Reason.OK, Reason.OK)
    return None if isinstance(result, Reason) else result


@functools.lru_cache(maxsize=texts_cached_max)
def units_text(units: int, size: Decimal) -> str:
    """``units * size`` as a normalized plain decimal: no exponent, no trailing zeros.

    ``units_text(12345, Decimal("0.01")) == "123.45"``; ``units_text(100, Decimal("1"))`` is
    ``"100"``, not ``"1E+2"``. Exact for every int64 count and every size.
    """
    value = _EXACT.multiply(Decimal(units), size)
    if value == 0:
        return "0"
    return format(value.normalize(_EXACT), "f")


def ticks_text(price_ticks: int, tick_size: Decimal) -> str:
    """A price in ticks as decimal text."""
    return units_text(price_ticks, tick_size)


def lots_text(quantity_lots: int, lot_size: Decimal) -> str:
    """A quantity in lots as decimal text."""
    return units_text(quantity_lots, lot_size)


def minor_text(amount_minor: int, decimals: int) -> str:
    """An amount in minor units as decimal text in the asset's units."""
    return units_text(amount_minor, minor_size(decimals))


# -- THE CATALOG --


@dataclass(frozen=True, slots=True)
class AssetInfo:
    asset_id: int
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """One instrument as the gateway needs it: symbol, units and what the checks read.

    Satisfies `gateway.checks.InstrumentView` (``jurisdictions_allowed``).
    """

    instrument_id: int
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    lot_size: Decimal
    price_min_ticks: int
    price_max_ticks: int
    quantity_min_lots: int
    quantity_max_lots: int
    notional_min: int  # ticks x lots
    taker_fee_bps: int
    maker_fee_bps: int
    jurisdictions_allowed: frozenset[str]
    status: int  # InstrumentStatus

    def price_text(self, price_ticks: int) -> str:
        return units_text(price_ticks, self.tick_size)

    def quantity_text(self, quantity_lots: int) -> str:
        return units_text(quantity_lots, self.lot_size)


class InstrumentCatalog:
    """Instruments and assets by symbol and by id, built from a ListInstruments result.

    Immutable: a change (a new instrument) builds a new catalog that replaces the old one whole,
    so a request sees one consistent catalog.
    """

    def __init__(self, assets: Iterable[AssetInfo], instruments: Iterable[InstrumentInfo]) -> None:
        self.assets_by_id: dict[int, AssetInfo] = {a.asset_id: a for a in assets}
        self.assets_by_symbol: dict[str, AssetInfo] = {
            a.symbol: a for a in self.assets_by_id.values()
        }
        self.by_id: dict[int, InstrumentInfo] = {i.instrument_id: i for i in instruments}
        self.by_symbol: dict[str, InstrumentInfo] = {i.symbol: i for i in self.by_id.values()}

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> InstrumentCatalog:
        """Build from the engine's ListInstruments result (see engine/loop.py)."""
        assets = [
            AssetInfo(int(a["asset_id"]), str(a["symbol"]), int(a["decimals"]))
            for a in result.get("assets", [])
        ]
        symbols = {a.asset_id: a.symbol for a in assets}
        instruments = [
            InstrumentInfo(
                instrument_id=int(d["instrument_id"]),
                symbol=str(d["symbol"]),
                base_asset=symbols.get(int(d["base_asset_id"]), ""),
                quote_asset=symbols.get(int(d["quote_asset_id"]), ""),
                tick_size=_EXACT.create_decimal(str(d["tick_size"])),
                lot_size=_EXACT.create_decimal(str(d["lot_size"])),
                price_min_ticks=int(d["price_min_ticks"]),
                price_max_ticks=int(d["price_max_ticks"]),
                quantity_min_lots=int(d.get("quantity_min_lots", 1)),
                quantity_max_lots=int(d["quantity_max_lots"]),
                notional_min=int(d.get("notional_min", 0)),
                taker_fee_bps=int(d.get("taker_fee_bps", 0)),
                maker_fee_bps=int(d.get("maker_fee_bps", 0)),
                jurisdictions_allowed=frozenset(d.get("jurisdictions_allowed", ())),
                status=int(d.get("status", InstrumentStatus.OPEN)),
            )
            for d in result.get("instruments", [])
        ]
        return cls(assets, instruments)

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, symbol: str) -> InstrumentInfo | None:
        return self.by_symbol.get(symbol)


# -- REQUESTS -> COMMANDS (checks in the order of their reason numbers) --


def place_command(
    request: order_entry_pb2.PlaceOrderRequest, account_id: int, catalog: InstrumentCatalog
) -> PlaceOrder | Reason:
    """The engine command of a place request, or the first failing 1xxx reason.

    An enum value outside the contract counts as not given (proto3 passes unknown numbers
    through). Time in force defaults to GTC for a limit order and IOC for a market order; STP
    mode to CANCEL_TAKER, and an STP mode outside the contract is passed on as 0, which the
    engine rejects (4005). Bounds that need the instrument's rules (band, minimums, increments,
    GTD times) are the engine's checks, not repeated here.
    """
    instrument = catalog.get(request.instrument)
    if instrument is None:
        return Reason.instrument_must_be_known
    if request.side not in _VALID_SIDES:
        return Reason.side_must_be_given
    if request.order_type not in VALID_ORDER_TYPES:
        return Reason.order_type_must_be_given
    market = request.order_type == OrderType.MARKET
    time_in_force = time_in_force_of(request.order_type, request.time_in_force)
    if isinstance(time_in_force, Reason):
        return time_in_force
    price_ticks = 0
    if request.price:
        price = to_ticks(request.price, instrument.tick_size)
        if isinstance(price, Reason):
            return price
        price_ticks = price
    if not market and not request.price:
        return Reason.price_must_be_given_for_limit_order
    if market and request.price:
        return Reason.price_must_not_be_given_for_market_order
    quantity = to_lots(request.quantity, instrument.lot_size)
    if isinstance(quantity, Reason):
        return quantity
    if request.client_order_id > int63_max:
        return Reason.client_order_id_must_fit_in_63_bits
    if request.expire_ts_ns < 0:
        return Reason.expire_time_must_fit_in_63_bits
    if request.client_order_id == 0:
        return Reason.client_order_id_must_be_given
    return PlaceOrder(
        account_id=account_id,
        instrument_id=instrument.instrument_id,
        client_order_id=request.client_order_id,
        side=request.side,
        order_type=request.order_type,
        time_in_force=time_in_force,
        price_ticks=price_ticks,
        quantity_lots=quantity,
        expire_ts_ns=request.expire_ts_ns,
        post_only=request.post_only,
        stp_mode=stp_mode_of(request.stp_mode),
        stp_group=request.stp_group,
    )


def time_in_force_of(order_type: int, time_in_force: int) -> int | Reason:
    """A place's time in force: as given, or unset (0) GTC for a limit order and IOC for a
    market order; a value outside the contract is `Reason.time_in_force_must_be_given`."""
    if time_in_force == 0:
        return TimeInForce.IOC if order_type == OrderType.MARKET else TimeInForce.GTC
    if time_in_force not in _VALID_TIME_IN_FORCE:
        return Reason.time_in_force_must_be_given
    return time_in_force


def stp_mode_of(stp_mode: int) -> int:
    """Unset: CANCEL_TAKER; outside the contract: 0, which the engine rejects (4005)."""
    stp_mode = stp_mode or StpMode.CANCEL_TAKER
    return stp_mode if stp_mode in _VALID_STP_MODES else 0


def cancel_command(
    request: order_entry_pb2.CancelOrderRequest, account_id: int
) -> CancelOrder | Reason:
    """A cancel by order id, or by client order id among the account's open orders.

    Order id 0 names no order (the engine's ids start at 1): `Reason.order_must_be_named`.
    """
    named = request.WhichOneof("order")
    if named == "order_id" and request.order_id != 0:
        return CancelOrder(account_id=account_id, order_id=min(request.order_id, units_saturated))
    if named == "client_order_id":
        if request.client_order_id > int63_max:
            return Reason.client_order_id_must_fit_in_63_bits
        return CancelOrder(account_id=account_id, client_order_id=request.client_order_id)
    return Reason.order_must_be_named


def amend_command(
    request: order_entry_pb2.AmendOrderRequest, account_id: int, instrument: InstrumentInfo | None
) -> AmendOrder | Reason:
    """An amend of the order, whose instrument (for its units) the caller looked up.

    An empty price keeps the order's price; the quantity is the new open quantity. ``instrument``
    None means the caller found no such order of the account: once every 1xxx check that can
    run without units has passed, that is `Reason.order_must_exist`, the engine's own answer.
    """
    if request.price and parse_decimal(request.price) is None:
        return Reason.price_must_be_decimal
    price_ticks = 0
    if request.price and instrument is not None:
        price = to_ticks(request.price, instrument.tick_size)
        if isinstance(price, Reason):
            return price
        price_ticks = price
    if parse_decimal(request.quantity) is None:
        return Reason.quantity_must_be_decimal
    quantity_lots = 0
    if instrument is not None:
        quantity = to_lots(request.quantity, instrument.lot_size)
        if isinstance(quantity, Reason):
            return quantity
        quantity_lots = quantity
    if request.order_id == 0:
        return Reason.order_must_be_named
    if instrument is None:
        return Reason.order_must_exist
    return AmendOrder(
        account_id=account_id,
        order_id=min(request.order_id, units_saturated),
        price_ticks=price_ticks,
        quantity_lots=quantity_lots,
    )


def mass_cancel_command(
    request: order_entry_pb2.MassCancelRequest, account_id: int, catalog: InstrumentCatalog
) -> MassCancel | Reason:
    """Cancel the account's open orders, of one instrument or (empty symbol) of all."""
    if not request.instrument:
        return MassCancel(account_id=account_id, instrument_id=-1)
    instrument = catalog.get(request.instrument)
    if instrument is None:
        return Reason.instrument_must_be_known
    return MassCancel(account_id=account_id, instrument_id=instrument.instrument_id)


# -- EVENTS -> EXECUTION REPORTS --


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What the gateway knows of one journaled command when its events come back.

    ``command_index`` is the command's position in the client's batch (the journal entry holds
    only the commands that passed the gateway, so positions differ); ``instrument`` gives units
    to rows that carry no instrument of their own (the engine's rejects of cancels and amends).
    """

    command_index: int
    instrument: InstrumentInfo | None


def reason_name(reason: int) -> str:
    """The reason's sentence, e.g. ``"funds_must_be_available"``; "" for 0 or an unknown code."""
    if reason == 0:
        return ""
    try:
        return Reason(reason).name
    except ValueError:
        return ""


def rejected_report(
    reason: Reason,
    command_index: int,
    command: order_entry_pb2.Command | None = None,
) -> order_entry_pb2.ExecutionReport:
    """The REJECTED report of a command refused before the journal (1xxx or 2xxx).

    It echoes what the client sent (texts as given); it has no journal_seq and no sequenced
    time, since it never entered the journal.
    """
    report = order_entry_pb2.ExecutionReport(
        kind=EventKind.REJECTED,  # type: ignore[arg-type]
        reason=int(reason),  # type: ignore[arg-type]
        reason_name=reason.name,
        command_index=command_index,
        status=OrderStatus.REJECTED,  # type: ignore[arg-type]
    )
    which = None if command is None else command.WhichOneof("command")
    if command is None or which is None:
        return report
    if which == "place":
        place = command.place
        report.instrument = place.instrument
        report.client_order_id = place.client_order_id
        report.side = place.side
        report.price = place.price
        report.quantity = place.quantity
    elif which == "cancel":
        report.order_id = command.cancel.order_id
        report.client_order_id = command.cancel.client_order_id
    elif which == "amend":
        report.order_id = command.amend.order_id
        report.price = command.amend.price
        report.quantity = command.amend.quantity
    elif which == "mass_cancel":
        report.instrument = command.mass_cancel.instrument
    return report


# An event row as a tuple with names: much cheaper per row than a dict, and read-only.
# (Any to mypy, which cannot see fields named at run time.)
_EventRow: Any = collections.namedtuple("_EventRow", EVENT_DTYPE.names or ())  # type: ignore[misc]


def execution_reports(
    rows: npt.NDArray[Any],
    catalog: InstrumentCatalog,
    journal_seq: int,
    *,
    account_id: int | None = None,
    commands: Sequence[CommandContext] | None = None,
    command_offset: int = 0,
) -> list[order_entry_pb2.ExecutionReport]:
    """The execution reports of one EventBatch's rows, in row order.

    One report per order-level event (ACCEPTED, REJECTED, CANCELLED, AMENDED, REDUCED); a
    FILLED row is one trade and gives two, the taker's then the maker's (``maker`` true, side
    opposite to the aggressor's). Book deltas, instrument status and APPLIED rows give none.

    Parameters
    ----------
    rows : numpy array of EVENT_DTYPE
        ``EventBatch.event_rows()``.
    catalog : InstrumentCatalog
        Symbols and units of the rows' instruments.
    journal_seq : int
        The journal entry that caused the rows; copied into every report.
    account_id : int, optional
        Keep only the reports about this account's orders.
    commands : sequence of CommandContext, optional
        The entry's commands as the caller sent them: rows then carry the caller's command
        index. Without it the rows are someone else's (unsolicited reports): their REJECTED
        rows are left out, since a reject answers its sender and no one else, and their
        command index is 0.

    Returns
    -------
    list of ExecutionReport
        O(len(rows)).
    """
    reports: list[order_entry_pb2.ExecutionReport] = []
    if len(rows) > bulk_filter_rows_min:
        # Rows that can give no report are dropped in bulk first: most rows of a busy entry
        # are book deltas, or other calls' and other accounts' orders.
        wanted = np.isin(rows["kind"], _ORDER_EVENT_KIND_ARRAY)
        if commands is not None:
            position = rows["command_index"] - command_offset
            wanted &= (position >= 0) & (position < len(commands))
        if account_id is not None:
            wanted &= (rows["account_id"] == account_id) | (
                (rows["kind"] == EventKind.FILLED) & (rows["maker_account_id"] == account_id)
            )
        rows = rows[wanted]
    row: Any
    for row in map(_EventRow._make, rows.tolist()):
        kind = row.kind
        if kind not in ORDER_EVENT_KINDS:
            continue
        if commands is None:
            if kind == EventKind.REJECTED:
                continue
            command_index, command_instrument = 0, None
        else:
            position = row.command_index - command_offset
            if not 0 <= position < len(commands):
                continue  # another call's command in the same entry
            context = commands[position]
            command_index, command_instrument = context.command_index, context.instrument
        # A reject of a cancel or amend carries no instrument of its own (its field is 0, which
        # may also be a real instrument's id): the command's instrument is the one to use.
        if kind == EventKind.REJECTED:
            instrument = command_instrument
        else:
            instrument = catalog.by_id.get(row.instrument_id)
        common = {
            "kind": kind,
            "command_index": command_index,
            "instrument": "" if instrument is None else instrument.symbol,
            "journal_seq": journal_seq,
            "ts_ns": row.ts_ns,
        }
        if kind == EventKind.FILLED:
            if account_id is None or row.account_id == account_id:
                reports.append(_fill_report(row, instrument, common, maker=False))
            if account_id is None or row.maker_account_id == account_id:
                reports.append(_fill_report(row, instrument, common, maker=True))
            continue
        if account_id is not None and row.account_id != account_id:
            continue
        reason = row.reason
        if instrument is not None:
            # Price 0 is no price: a market order's, or an amend that keeps its price.
            # (Set in the constructor: each field set on a message afterwards costs as much.)
            if row.price_ticks:
                common["price"] = instrument.price_text(row.price_ticks)
            common["quantity"] = instrument.quantity_text(row.quantity_lots)
            common["leaves_quantity"] = instrument.quantity_text(row.leaves_lots)
        reports.append(
            order_entry_pb2.ExecutionReport(
                reason=reason,
                reason_name=reason_name(reason),
                order_id=row.order_id,
                client_order_id=row.client_order_id,
                side=row.side,
                status=row.status,
                **common,
            )
        )
    return reports


def _fill_report(
    row: Any, instrument: InstrumentInfo | None, common: dict[str, Any], *, maker: bool
) -> order_entry_pb2.ExecutionReport:
    fields: dict[str, Any] = dict(common, trade_id=row.trade_id, maker=maker)
    if maker:
        leaves = row.maker_leaves_lots
        fields.update(
            order_id=row.maker_order_id,
            client_order_id=row.maker_client_order_id,
            side=Side.SELL if row.side == Side.BUY else Side.BUY,
            status=OrderStatus.FILLED if leaves == 0 else OrderStatus.PARTIALLY_FILLED,
        )
    else:
        leaves = row.leaves_lots
        fields.update(
            order_id=row.order_id,
            client_order_id=row.client_order_id,
            side=row.side,
            status=row.status,
        )
    if instrument is not None:
        fields["price"] = instrument.price_text(row.price_ticks)
        fields["quantity"] = instrument.quantity_text(row.quantity_lots)
        fields["leaves_quantity"] = instrument.quantity_text(leaves)
    report = order_entry_pb2.ExecutionReport(**fields)
    return report


# -- QUERY RESULTS AND MARKET DATA -> PROTOS --


def order_proto(order: Mapping[str, Any], catalog: InstrumentCatalog) -> account_pb2.Order:
    """An engine order dict (GetOrder, GetOpenOrders) as an Order.

    A finished order the engine only remembers by status carries no instrument: its texts stay
    empty.
    """
    result = account_pb2.Order(
        order_id=order["order_id"],
        client_order_id=order.get("client_order_id", 0),
        side=order.get("side", 0),
        order_type=order.get("order_type", 0),
        time_in_force=order.get("time_in_force", 0),
        status=order.get("status", 0),
        reason=order.get("reason", 0),
        expire_ts_ns=order.get("expire_ts_ns", 0),
    )
    instrument = catalog.by_id.get(order["instrument_id"]) if "instrument_id" in order else None
    if instrument is not None:
        result.instrument = instrument.symbol
        if order.get("price_ticks"):
            result.price = instrument.price_text(order["price_ticks"])
        result.leaves_quantity = instrument.quantity_text(order.get("leaves_lots", 0))
        result.filled_quantity = instrument.quantity_text(order.get("filled_lots", 0))
    return result


def balances_proto(
    result: Mapping[str, Any], catalog: InstrumentCatalog, journal_seq: int
) -> account_pb2.Balances:
    """A GetBalances result as Balances, amounts in each asset's units."""
    balances = []
    for b in result.get("balances", []):
        asset = catalog.assets_by_id.get(b["asset_id"])
        if asset is None:
            continue  # an asset defined after the catalog was built; the next reload has it
        balances.append(
            account_pb2.Balance(
                asset=asset.symbol,
                available=minor_text(b["available_minor"], asset.decimals),
                held=minor_text(b["held_minor"], asset.decimals),
            )
        )
    return account_pb2.Balances(
        account=result["account_id"], balances=balances, journal_seq=journal_seq
    )


def instrument_proto(instrument: InstrumentInfo) -> account_pb2.Instrument:
    """An instrument with its bounds in its own units (notional in the quote asset)."""
    return account_pb2.Instrument(
        symbol=instrument.symbol,
        base_asset=instrument.base_asset,
        quote_asset=instrument.quote_asset,
        tick_size=units_text(1, instrument.tick_size),
        lot_size=units_text(1, instrument.lot_size),
        quantity_min=instrument.quantity_text(instrument.quantity_min_lots),
        quantity_max=instrument.quantity_text(instrument.quantity_max_lots),
        notional_min=units_text(
            instrument.notional_min, _EXACT.multiply(instrument.tick_size, instrument.lot_size)
        ),
        price_min=instrument.price_text(instrument.price_min_ticks),
        price_max=instrument.price_text(instrument.price_max_ticks),
        status=instrument.status,  # type: ignore[arg-type]
        taker_fee_bps=instrument.taker_fee_bps,
        maker_fee_bps=instrument.maker_fee_bps,
        jurisdictions_allowed=sorted(instrument.jurisdictions_allowed),
    )


def _levels(
    levels: Iterable[Sequence[int]], instrument: InstrumentInfo
) -> list[market_data_pb2.Level]:
    return [
        market_data_pb2.Level(
            price=instrument.price_text(price),
            quantity=instrument.quantity_text(quantity),
            order_count=count,
        )
        for price, quantity, count in levels
    ]


def book_snapshot_proto(
    book: Mapping[str, Any], instrument: InstrumentInfo
) -> market_data_pb2.BookUpdate:
    """A GetBook result as a snapshot BookUpdate, each side best first."""
    return market_data_pb2.BookUpdate(
        instrument=instrument.symbol,
        sequence=book["sequence"],
        snapshot=True,
        bids=_levels(book["bids"], instrument),
        asks=_levels(book["asks"], instrument),
        ts_ns=book["ts_ns"],
        status=book["status"],
    )


def book_update_proto(
    update: MarketDataUpdate, instrument: InstrumentInfo, status: int
) -> market_data_pb2.BookUpdate:
    """An incremental BookUpdate: each changed level's new total ("0": gone)."""
    bids = [
        (lv.price_ticks, lv.quantity_lots, lv.order_count)
        for lv in update.levels
        if lv.side == Side.BUY
    ]
    asks = [
        (lv.price_ticks, lv.quantity_lots, lv.order_count)
        for lv in update.levels
        if lv.side == Side.SELL
    ]
    return market_data_pb2.BookUpdate(
        instrument=instrument.symbol,
        sequence=update.sequence,
        snapshot=False,
        bids=_levels(bids, instrument),
        asks=_levels(asks, instrument),
        ts_ns=update.ts_ns,
        status=status,  # type: ignore[arg-type]
    )


def trade_protos(
    update: MarketDataUpdate, instrument: InstrumentInfo
) -> list[market_data_pb2.Trade]:
    """The trades of one market data update, in the order they happened."""
    return [
        market_data_pb2.Trade(
            instrument=instrument.symbol,
            sequence=update.sequence,
            trade_id=trade.trade_id,
            price=instrument.price_text(trade.price_ticks),
            quantity=instrument.quantity_text(trade.quantity_lots),
            aggressor_side=trade.aggressor_side,  # type: ignore[arg-type]
            ts_ns=update.ts_ns,
        )
        for trade in update.trades
    ]


def bbo_proto(
    instrument: InstrumentInfo,
    sequence: int,
    ts_ns: int,
    bid: tuple[int, int] | None,
    ask: tuple[int, int] | None,
) -> market_data_pb2.Bbo:
    """Best bid and offer as (price_ticks, quantity_lots); None: that side is empty."""
    result = market_data_pb2.Bbo(instrument=instrument.symbol, sequence=sequence, ts_ns=ts_ns)
    if bid is not None:
        result.bid_price = instrument.price_text(bid[0])
        result.bid_quantity = instrument.quantity_text(bid[1])
    if ask is not None:
        result.ask_price = instrument.price_text(ask[0])
        result.ask_quantity = instrument.quantity_text(ask[1])
    return result


def engine_status_proto(
    status: Mapping[str, Any], catalog: InstrumentCatalog
) -> control_pb2.EngineStatus:
    """A GetStatus result as EngineStatus; an empty best price: that side is empty."""
    states = []
    for s in status.get("instruments", []):
        instrument = catalog.by_id.get(s["instrument_id"])
        state = control_pb2.InstrumentState(
            symbol=s["symbol"],
            status=s["status"],
            orders_resting=s["orders_resting"],
            book_sequence=s["sequence"],
        )
        if instrument is not None:
            if s["best_bid_ticks"]:
                state.best_bid = instrument.price_text(s["best_bid_ticks"])
            if s["best_ask_ticks"]:
                state.best_ask = instrument.price_text(s["best_ask_ticks"])
        states.append(state)
    return control_pb2.EngineStatus(
        shard=status["shard"],
        journal_seq_applied=status["journal_seq_applied"],
        journal_seq_last=status["journal_seq_last"],
        snapshot_journal_seq=status["snapshot_journal_seq"],
        orders_resting=status["orders_resting"],
        accounts=status["accounts"],
        kill_switched_accounts=status["kill_switched_accounts"],
        instruments=states,
        state_hash=status.get("state_hash", ""),
        ts_ns=status["ts_ns"],
        uptime_ms=status["uptime_ms"],
    )


def risk_limits_proto(
    limits: Mapping[str, Any], catalog: InstrumentCatalog
) -> control_pb2.RiskLimits:
    """A GetRiskLimits result, notional limits keyed by asset symbol in the asset's units."""

    def amounts(by_asset: Mapping[Any, int]) -> dict[str, str]:
        named = {}
        for asset_id, minor in by_asset.items():
            asset = catalog.assets_by_id.get(int(asset_id))
            if asset is not None:
                named[asset.symbol] = minor_text(minor, asset.decimals)
        return named

    return control_pb2.RiskLimits(
        account=limits["account_id"],
        open_orders_max=limits["open_orders_max"],
        order_notional_max=amounts(limits["order_notional_max"]),
        open_notional_max=amounts(limits["open_notional_max"]),
        kill_switch=limits["kill_switch"],
    )


def risk_limits_amounts(
    amounts: Mapping[str, str], catalog: InstrumentCatalog
) -> dict[int, int] | str:
    """Notional limits by asset symbol and decimal text -> by asset id in minor units.

    Returns the mapping, or a description of the first bad entry (unknown asset, or an amount
    that is not a plain decimal in whole minor units).
    """
    by_id: dict[int, int] = {}
    for symbol, text in sorted(amounts.items()):
        asset = catalog.assets_by_symbol.get(symbol)
        if asset is None:
            return f"asset {symbol!r} is not known"
        minor = to_minor(text, asset.decimals)
        if minor is None or minor > int63_max:
            return (
                f"{symbol} amount {text!r} must be a decimal with at most {asset.decimals} decimals"
            )
        by_id[asset.asset_id] = minor
    return by_id


__all__ = [
    "ORDER_EVENT_KINDS",
    "VALID_ORDER_TYPES",
    "AssetInfo",
    "CommandContext",
    "InstrumentCatalog",
    "InstrumentInfo",
    "amend_command",
    "balances_proto",
    "bbo_proto",
    "book_snapshot_proto",
    "book_update_proto",
    "cancel_command",
    "decimal_text_chars_max",
    "engine_status_proto",
    "execution_reports",
    "instrument_proto",
    "int63_max",
    "lots_text",
    "mass_cancel_command",
    "minor_size",
    "minor_text",
    "order_proto",
    "parse_decimal",
    "place_command",
    "reason_name",
    "rejected_report",
    "risk_limits_amounts",
    "risk_limits_proto",
    "stp_mode_of",
    "ticks_text",
    "time_in_force_of",
    "to_lots",
    "to_minor",
    "to_ticks",
    "trade_protos",
    "units_saturated",
    "units_text",
]
