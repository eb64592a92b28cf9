"""Orders and reports as columns on the Trade stream: PlaceColumns in, ReportColumns out.

A market maker sends hundreds of orders a message. Turning each into a Python object and each
of their reports into a protobuf message costs the gateway more than the engine spends on
matching them (the profile in benchmarks/README.md), so here both directions stay in NumPy:

- `place_block` runs the 1xxx checks of `gateway.convert.place_command` that apply to integer
  ticks and lots on whole columns (first failure by reason number, per order) and makes one
  PlaceOrders journal command of the orders that pass;
- `report_records` turns an entry's event rows into report records (REPORT_DTYPE): the reports
  `gateway.convert.execution_reports` gives, in the same order, with ticks and lots for texts;
- `columns_proto` writes report records into a ReportColumns message.

tests/gateway/test_columns.py holds both forms equal.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine._codes import EventKind, OrderStatus, OrderType, Reason, Side
from engine._dtypes import PLACE_DTYPE
from engine.messages import PlaceOrders
from gateway._proto.clearline.v1 import order_entry_pb2
from gateway.convert import (
    ORDER_EVENT_KINDS,
    VALID_ORDER_TYPES,
    CommandContext,
    InstrumentCatalog,
    InstrumentInfo,
    int63_max,
    reason_name,
    stp_mode_of,
    time_in_force_of,
)

# One execution report: the fields of ReportColumns, one record per report.
REPORT_DTYPE = np.dtype(
    [
        ("order_id", "<i8"),
        ("client_order_id", "<i8"),
        ("price_ticks", "<i8"),
        ("quantity_lots", "<i8"),
        ("leaves_lots", "<i8"),
        ("trade_id", "<i8"),
        ("journal_seq", "<i8"),
        ("ts_ns", "<i8"),
        ("command_index", "<i4"),
        ("instrument_id", "<i4"),  # -1: none
        ("reason", "<u2"),
        ("kind", "u1"),
        ("side", "u1"),
        ("status", "u1"),
        ("maker", "?"),
    ],
    align=True,
)
# ReportColumns field of each REPORT_DTYPE field.
_COLUMN_OF = {
    "kind": "kinds",
    "reason": "reasons",
    "command_index": "command_indexes",
    "order_id": "order_ids",
    "client_order_id": "client_order_ids",
    "instrument_id": "instrument_ids",
    "side": "sides",
    "status": "statuses",
    "price_ticks": "price_ticks",
    "quantity_lots": "quantity_lots",
    "leaves_lots": "leaves_lots",
    "trade_id": "trade_ids",
    "maker": "makers",
    "journal_seq": "journal_seqs",
    "ts_ns": "ts_ns",
}
# Event kinds that give reports, as a table indexed by kind (one gather, not an isin).
_GIVES_REPORT = np.zeros(256, dtype=bool)
_GIVES_REPORT[list(ORDER_EVENT_KINDS)] = True


@dataclass
class PlaceBlock:
    """A PlaceColumns block after the gateway's checks.

    ``reasons[k]`` is 0 when order k passed, else why it was refused; ``command`` holds the
    orders that passed (None: none did). ``first_index`` is order 0's command index in its batch.
    """

    first_index: int
    reasons: npt.NDArray[np.uint16]
    command: PlaceOrders | None
    instrument: InstrumentInfo | None
    sides: npt.NDArray[np.int64]
    price_ticks: npt.NDArray[np.int64]
    quantity_lots: npt.NDArray[np.int64]
    client_order_ids: npt.NDArray[np.uint64]

    @property
    def count(self) -> int:
        return len(self.reasons)

    def journaled_indexes(self) -> npt.NDArray[np.int64]:
        """Batch command indexes of the orders in ``command``, in its order."""
        return np.flatnonzero(self.reasons == 0) + self.first_index

    def refuse(self, reason: Reason) -> None:
        """Refuse every order that passed so far (a compliance failure)."""
        self.reasons[self.reasons == 0] = reason
        self.command = None

    def rejected_records(self) -> npt.NDArray[Any]:
        """The REJECTED reports of the refused orders, echoing what the client sent."""
        refused = np.flatnonzero(self.reasons)
        records = np.zeros(len(refused), REPORT_DTYPE)
        if not len(refused):
            return records
        records["kind"] = EventKind.REJECTED
        records["status"] = OrderStatus.REJECTED
        records["reason"] = self.reasons[refused]
        records["command_index"] = refused + self.first_index
        records["instrument_id"] = -1 if self.instrument is None else self.instrument.instrument_id
        columns = (self.sides, self.price_ticks, self.quantity_lots, self.client_order_ids)
        if all(len(column) == self.count for column in columns):  # else echo nothing
            records["side"] = self.sides[refused].clip(0, 255)
            records["price_ticks"] = self.price_ticks[refused]
            records["quantity_lots"] = self.quantity_lots[refused]
            records["client_order_id"] = self.client_order_ids[refused].clip(0, int63_max)
        return records

    def rejected_reports(self) -> list[order_entry_pb2.ExecutionReport]:
        """`rejected_records` as ExecutionReports, for a stream without columns."""
        return rejects_of_records(self.rejected_records(), self.instrument)

    def contexts(self) -> list[CommandContext]:
        """One CommandContext per journaled order, for `gateway.convert.execution_reports`."""
        indexes = self.journaled_indexes().tolist()
        return [CommandContext(index, self.instrument) for index in indexes]


def _lengths(columns: order_entry_pb2.PlaceColumns) -> set[int]:
    return {
        len(columns.sides),
        len(columns.price_ticks),
        len(columns.quantity_lots),
        len(columns.client_order_ids),
    }


def column_length(columns: order_entry_pb2.PlaceColumns) -> int:
    """Orders in a PlaceColumns block: its longest column's length (a shorter one rejects
    them all)."""
    return max(_lengths(columns))


def place_block(
    columns: order_entry_pb2.PlaceColumns,
    account_id: int,
    catalog: InstrumentCatalog,
    first_index: int,
) -> PlaceBlock:
    """Check a PlaceColumns block order by order; O(orders) in NumPy."""
    lengths = _lengths(columns)
    count = max(lengths)
    instrument = catalog.get(columns.instrument)
    sides = np.array(columns.sides, dtype=np.int64)
    prices = np.array(columns.price_ticks, dtype=np.int64)
    quantities = np.array(columns.quantity_lots, dtype=np.int64)
    client_order_ids = np.array(columns.client_order_ids, dtype=np.uint64)
    reasons = np.zeros(count, dtype=np.uint16)
    block = PlaceBlock(
        first_index, reasons, None, instrument, sides, prices, quantities, client_order_ids
    )
    if len(lengths) > 1:
        reasons[:] = Reason.columns_must_be_of_equal_length
        return block
    # From the highest reason number down, so that each order keeps its first failing check.
    market = columns.order_type == OrderType.MARKET
    reasons[client_order_ids == 0] = Reason.client_order_id_must_be_given
    if columns.expire_ts_ns < 0:
        reasons[:] = Reason.expire_time_must_fit_in_63_bits
    reasons[client_order_ids > int63_max] = Reason.client_order_id_must_fit_in_63_bits
    if market:
        reasons[prices != 0] = Reason.price_must_not_be_given_for_market_order
    else:
        reasons[prices == 0] = Reason.price_must_be_given_for_limit_order
    time_in_force = time_in_force_of(columns.order_type, columns.time_in_force)
    if isinstance(time_in_force, Reason):
        reasons[:] = time_in_force
    if columns.order_type not in VALID_ORDER_TYPES:
        reasons[:] = Reason.order_type_must_be_given
    reasons[(sides != Side.BUY) & (sides != Side.SELL)] = Reason.side_must_be_given
    if instrument is None:
        reasons[:] = Reason.instrument_must_be_known
        return block
    passed = reasons == 0
    if not passed.any():
        return block
    rows = np.zeros(int(passed.sum()), dtype=PLACE_DTYPE)
    rows["client_order_id"] = client_order_ids[passed]
    rows["price_ticks"] = prices[passed]
    rows["quantity_lots"] = quantities[passed]
    rows["side"] = sides[passed]
    block.command = PlaceOrders(
        account_id=account_id,
        instrument_id=instrument.instrument_id,
        order_type=columns.order_type,
        time_in_force=time_in_force,
        expire_ts_ns=columns.expire_ts_ns,
        post_only=columns.post_only,
        stp_mode=stp_mode_of(columns.stp_mode),
        stp_group=columns.stp_group,
        rows=rows.tobytes(),
    )
    return block


def report_records(
    rows: npt.NDArray[Any],
    journal_seq: int,
    account_id: int,
    *,
    positions: npt.NDArray[np.int64] | None = None,
    instrument_ids: npt.NDArray[np.int32] | None = None,
    offset: int = 0,
) -> npt.NDArray[Any]:
    """The account's reports of one EventBatch's rows, as `execution_reports` gives them.

    ``positions[i]`` is the batch command index of the caller's command at entry position
    ``offset + i`` and ``instrument_ids[i]`` its instrument (-1: none); rows of other positions
    are left out. Without ``positions`` the rows are unsolicited: their REJECTED rows are left
    out (a reject answers its sender) and the command index is 0. O(rows) in NumPy.
    """
    wanted = _GIVES_REPORT[rows["kind"]]
    if positions is not None:
        position = rows["command_index"].astype(np.int64) - offset
        wanted &= (position >= 0) & (position < len(positions))
    else:
        wanted &= rows["kind"] != EventKind.REJECTED
    filled = rows["kind"] == EventKind.FILLED
    own = np.flatnonzero(wanted & (rows["account_id"] == account_id))
    as_maker = np.flatnonzero(wanted & filled & (rows["maker_account_id"] == account_id))
    # A trade's taker report comes before its maker report, as rows come.
    order = np.argsort(np.concatenate((own * 2, as_maker * 2 + 1)), kind="stable")
    records = np.zeros(len(own) + len(as_maker), REPORT_DTYPE)
    mine, theirs = records[: len(own)], records[len(own) :]  # views: filled in place
    _fill(mine, rows[own], maker=False)
    _fill(theirs, rows[as_maker], maker=True)
    if positions is not None and len(records):
        position = rows["command_index"].astype(np.int64) - offset
        at = np.concatenate((position[own], position[as_maker]))
        records["command_index"] = positions[at]
        if instrument_ids is not None:
            # The engine's reject of a cancel or amend names no instrument: the command's does.
            rejected = records["kind"] == EventKind.REJECTED
            records["instrument_id"][rejected] = instrument_ids[at[rejected]]
    records["journal_seq"] = journal_seq
    return records[order]


def _fill(records: npt.NDArray[Any], rows: npt.NDArray[Any], *, maker: bool) -> None:
    records["kind"] = rows["kind"]
    records["instrument_id"] = rows["instrument_id"]
    records["price_ticks"] = rows["price_ticks"]
    records["quantity_lots"] = rows["quantity_lots"]
    records["ts_ns"] = rows["ts_ns"]
    filled = rows["kind"] == EventKind.FILLED
    records["trade_id"] = np.where(filled, rows["trade_id"], 0)
    if not maker:
        records["reason"] = np.where(filled, 0, rows["reason"])
        records["order_id"] = rows["order_id"]
        records["client_order_id"] = rows["client_order_id"]
        records["side"] = rows["side"]
        records["status"] = rows["status"]
        records["leaves_lots"] = rows["leaves_lots"]
        return
    leaves = rows["maker_leaves_lots"]
    records["maker"] = True
    records["order_id"] = rows["maker_order_id"]
    records["client_order_id"] = rows["maker_client_order_id"]
    records["side"] = np.where(rows["side"] == Side.BUY, Side.SELL, Side.BUY)
    records["status"] = np.where(leaves == 0, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)
    records["leaves_lots"] = leaves


def records_of_reports(
    reports: Sequence[order_entry_pb2.ExecutionReport], catalog: InstrumentCatalog
) -> npt.NDArray[Any]:
    """Reports built as messages (the gateway's rejects of message commands) as records;
    their texts carry no ticks or lots (a refused text may not be a number), so those are 0."""
    records = np.zeros(len(reports), REPORT_DTYPE)
    for record, report in zip(records, reports, strict=True):
        instrument = catalog.get(report.instrument)
        record["kind"] = report.kind
        record["reason"] = report.reason
        record["command_index"] = report.command_index
        record["order_id"] = min(report.order_id, int63_max)
        record["client_order_id"] = min(report.client_order_id, int63_max)
        record["instrument_id"] = -1 if instrument is None else instrument.instrument_id
        record["side"] = report.side if 0 <= report.side <= 255 else 0
        record["status"] = report.status
    return records


def sorted_by_command(*parts: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The parts' records in one array, ordered by command index (stable: a command's reports
    keep their order, and the parts theirs). One part is returned as it is: each part is in
    command order already."""
    if len(parts) == 1:
        return parts[0]
    records = np.concatenate(parts) if parts else np.zeros(0, REPORT_DTYPE)
    return records[np.argsort(records["command_index"], kind="stable")]


def columns_proto(records: npt.NDArray[Any]) -> order_entry_pb2.ReportColumns:
    return order_entry_pb2.ReportColumns(
        **{column: records[field].tolist() for field, column in _COLUMN_OF.items()}
    )


def rejects_of_records(
    records: npt.NDArray[Any], instrument: InstrumentInfo | None
) -> list[order_entry_pb2.ExecutionReport]:
    """REJECTED records of one instrument's orders as ExecutionReports, prices and quantities
    as texts (`instrument` None: none)."""
    reports = []
    for record in records:
        fields: dict[str, Any] = {
            "kind": int(record["kind"]),
            "reason": int(record["reason"]),
            "reason_name": reason_name(int(record["reason"])),
            "command_index": int(record["command_index"]),
            "client_order_id": int(record["client_order_id"]),
            "side": int(record["side"]),
            "status": int(record["status"]),
        }
        report = order_entry_pb2.ExecutionReport(**fields)
        if instrument is not None:
            report.instrument = instrument.symbol
            if record["price_ticks"] > 0:
                report.price = instrument.price_text(int(record["price_ticks"]))
            if record["quantity_lots"] >= 0:
                report.quantity = instrument.quantity_text(int(record["quantity_lots"]))
        reports.append(report)
    return reports


def count_places(records: npt.NDArray[Any], place_indexes: npt.NDArray[np.int64]) -> tuple[
    int, collections.Counter[Reason]
]:  # fmt: skip
    """Of the places at ``place_indexes``: how many were accepted, and the rejected by reason."""
    rejects = records["kind"] == EventKind.REJECTED
    if not rejects.any():
        return len(place_indexes), collections.Counter()
    rejected = records[rejects & np.isin(records["command_index"], place_indexes)]
    _, first = np.unique(rejected["command_index"], return_index=True)
    reasons, counts = np.unique(rejected["reason"][first], return_counts=True)
    by_reason = collections.Counter(
        {Reason(int(r)): int(c) for r, c in zip(reasons, counts, strict=True)}
    )
    return len(place_indexes) - len(first), by_reason


__all__ = [
    "REPORT_DTYPE",
    "PlaceBlock",
    "column_length",
    "columns_proto",
    "count_places",
    "place_block",
    "records_of_reports",
    "rejects_of_records",
    "report_records",
    "sorted_by_command",
]
