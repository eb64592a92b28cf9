"""Goal: the columnar forms of the Trade stream (gateway/columns.py) say exactly what the
message forms say.

- `place_block` gives each order of a PlaceColumns block the reason `place_command` gives the
  same order as a PlaceOrderRequest (prices and quantities written as texts), and journals the
  same PlaceOrder commands (through `PlaceOrders` and `flat_commands`);
- `report_records` gives the reports `execution_reports` gives for the same event rows, field
  for field, for a caller's own commands and for unsolicited reports; the rows come from a real
  shard running random order flow (Hypothesis).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine._codes import EventKind, OrderType, Reason, Side, StpMode, TimeInForce
from engine.markets import funding_commands, market_commands
from engine.messages import (
    CancelOrder,
    JournalEntry,
    MassCancel,
    PlaceOrder,
    PlaceOrders,
    flat_commands,
)
from engine.shard import Shard
from gateway._proto.clearline.v1 import order_entry_pb2
from gateway.columns import (
    REPORT_DTYPE,
    column_length,
    columns_proto,
    count_places,
    place_block,
    report_records,
    sorted_by_command,
)
from gateway.convert import (
    CommandContext,
    InstrumentCatalog,
    execution_reports,
    place_command,
    units_text,
)

ACCOUNTS = [11, 12, 13]
INT63_MAX = (1 << 63) - 1


def demo_shard() -> tuple[Shard, InstrumentCatalog]:
    shard = Shard()
    entry = JournalEntry(
        origin="test",
        batch_id=1,
        ts_ns=1,
        commands=[*market_commands(), *funding_commands(ACCOUNTS)],
    )
    shard.apply(1, entry)
    return shard, InstrumentCatalog.from_result(shard.instrument_list())


SHARD, CATALOG = demo_shard()
BTC = CATALOG.get("BTC-USDT")
assert BTC is not None


# -- places --


def request_of(columns: order_entry_pb2.PlaceColumns, k: int) -> order_entry_pb2.PlaceOrderRequest:
    """Order k of a block as the PlaceOrderRequest that says the same in texts."""
    instrument = CATALOG.get(columns.instrument)
    ticks, lots = columns.price_ticks[k], columns.quantity_lots[k]
    tick_size = BTC.tick_size if instrument is None else instrument.tick_size
    lot_size = BTC.lot_size if instrument is None else instrument.lot_size
    return order_entry_pb2.PlaceOrderRequest(
        instrument=columns.instrument,
        side=columns.sides[k],
        order_type=columns.order_type,
        time_in_force=columns.time_in_force,
        price=units_text(ticks, tick_size) if ticks else "",
        quantity=units_text(lots, lot_size),
        client_order_id=columns.client_order_ids[k],
        post_only=columns.post_only,
        expire_ts_ns=columns.expire_ts_ns,
        stp_mode=columns.stp_mode,
        stp_group=columns.stp_group,
    )


place_columns = st.integers(0, 12).flatmap(
    lambda n: st.builds(
        order_entry_pb2.PlaceColumns,
        instrument=st.sampled_from(["BTC-USDT", "ETH-USDT", "NOPE"]),
        order_type=st.sampled_from([0, OrderType.LIMIT, OrderType.MARKET, 9]),
        time_in_force=st.sampled_from([0, *TimeInForce, 9]),
        post_only=st.booleans(),
        expire_ts_ns=st.sampled_from([0, 5, -1]),
        stp_mode=st.sampled_from([0, *StpMode, 9]),
        stp_group=st.integers(0, 3),
        sides=st.lists(st.sampled_from([0, Side.BUY, Side.SELL, 7]), min_size=n, max_size=n),
        price_ticks=st.lists(st.integers(0, 10**7), min_size=n, max_size=n),
        quantity_lots=st.lists(st.integers(0, 10**4), min_size=n, max_size=n),
        client_order_ids=st.lists(
            st.sampled_from([0, 1, 2, INT63_MAX, INT63_MAX + 1, 2**64 - 1]), min_size=n, max_size=n
        ),
    )
)


@given(columns=place_columns)
@settings(max_examples=300, deadline=None)
def test_each_order_of_a_block_gets_what_place_command_gives_it(
    columns: order_entry_pb2.PlaceColumns,
) -> None:
    block = place_block(columns, 11, CATALOG, first_index=3)
    expected = [place_command(request_of(columns, k), 11, CATALOG) for k in range(block.count)]
    assert block.reasons.tolist() == [int(e) if isinstance(e, Reason) else 0 for e in expected]
    passed = [e for e in expected if isinstance(e, PlaceOrder)]
    if block.command is None:
        assert not passed
    else:
        assert flat_commands([block.command]) == passed
        assert block.journaled_indexes().tolist() == [
            k + 3 for k, e in enumerate(expected) if isinstance(e, PlaceOrder)
        ]
    rejected = block.rejected_records()
    assert rejected["command_index"].tolist() == [
        k + 3 for k, e in enumerate(expected) if isinstance(e, Reason)
    ]
    assert (rejected["kind"] == EventKind.REJECTED).all()


def test_columns_of_different_lengths_reject_every_order_of_the_block() -> None:
    columns = order_entry_pb2.PlaceColumns(
        instrument="BTC-USDT",
        order_type=OrderType.LIMIT,
        sides=[Side.BUY, Side.SELL, Side.BUY],
        price_ticks=[300_000, 300_000],
        quantity_lots=[1, 1, 1],
        client_order_ids=[1, 2, 3],
    )
    block = place_block(columns, 11, CATALOG, first_index=0)
    assert column_length(columns) == 3
    assert block.command is None
    assert block.reasons.tolist() == [Reason.columns_must_be_of_equal_length] * 3
    assert block.rejected_records()["command_index"].tolist() == [0, 1, 2]


def test_a_compliance_refusal_refuses_the_orders_that_passed_and_journals_none() -> None:
    columns = order_entry_pb2.PlaceColumns(
        instrument="BTC-USDT",
        order_type=OrderType.LIMIT,
        sides=[Side.BUY, 0],
        price_ticks=[300_000, 300_000],
        quantity_lots=[1, 1],
        client_order_ids=[1, 2],
    )
    block = place_block(columns, 11, CATALOG, first_index=0)
    block.refuse(Reason.customer_must_not_be_frozen)
    assert block.command is None
    assert block.reasons.tolist() == [Reason.customer_must_not_be_frozen, Reason.side_must_be_given]


def test_a_places_command_applies_as_the_place_orders_it_stands_for() -> None:
    """The same orders as one PlaceOrders and as PlaceOrder commands: equal engine states."""
    columns = order_entry_pb2.PlaceColumns(
        instrument="BTC-USDT",
        order_type=OrderType.LIMIT,
        sides=[Side.BUY, Side.SELL, Side.SELL, Side.BUY],
        price_ticks=[300_000, 299_000, 300_000, 10],
        quantity_lots=[5, 2, 9, 1],
        client_order_ids=[1, 2, 3, 4],
    )
    command = place_block(columns, 11, CATALOG, first_index=0).command
    assert isinstance(command, PlaceOrders)
    shards = [demo_shard()[0], demo_shard()[0]]
    before = CancelOrder(account_id=12, order_id=999)
    columnar = shards[0].apply(
        2, JournalEntry(origin="t", batch_id=2, ts_ns=5, commands=[before, command])
    )
    flat = shards[1].apply(
        2, JournalEntry(origin="t", batch_id=2, ts_ns=5, commands=[before, *command.orders()])
    )
    assert columnar is not None and flat is not None
    # Field by field: padding bytes between the records' fields are not state.
    assert columnar.events.tolist() == flat.events.tolist()
    assert columnar.transfers.tolist() == flat.transfers.tolist()
    assert len(columnar.transfers)
    assert shards[0].state_hash() == shards[1].state_hash()
    assert sorted(set(columnar.events["command_index"].tolist())) == [0, 1, 2, 3, 4]


# -- reports --


def as_tuple(report: order_entry_pb2.ExecutionReport) -> tuple[Any, ...]:
    return (
        report.kind,
        report.reason,
        report.command_index,
        report.order_id,
        report.client_order_id,
        report.instrument,
        report.side,
        report.status,
        report.price,
        report.quantity,
        report.leaves_quantity,
        report.trade_id,
        report.maker,
        report.journal_seq,
        report.ts_ns,
    )


def record_as_tuple(record: Any) -> tuple[Any, ...]:
    """A record as the report of `execution_reports` reads, texts from ticks and lots."""
    instrument = CATALOG.by_id.get(int(record["instrument_id"]))
    kind = int(record["kind"])
    price = quantity = leaves = ""
    if instrument is not None:
        if record["price_ticks"] or kind == EventKind.FILLED:
            price = instrument.price_text(int(record["price_ticks"]))
        quantity = instrument.quantity_text(int(record["quantity_lots"]))
        leaves = instrument.quantity_text(int(record["leaves_lots"]))
    return (
        kind,
        int(record["reason"]),
        int(record["command_index"]),
        int(record["order_id"]),
        int(record["client_order_id"]),
        "" if instrument is None else instrument.symbol,
        int(record["side"]),
        int(record["status"]),
        price,
        quantity,
        leaves,
        int(record["trade_id"]),
        bool(record["maker"]),
        int(record["journal_seq"]),
        int(record["ts_ns"]),
    )


order = st.one_of(
    st.builds(
        PlaceOrder,
        account_id=st.sampled_from(ACCOUNTS),
        instrument_id=st.sampled_from([1, 2]),
        client_order_id=st.integers(1, 6),
        side=st.sampled_from([Side.BUY, Side.SELL]),
        order_type=st.sampled_from([OrderType.LIMIT, OrderType.LIMIT, OrderType.MARKET]),
        time_in_force=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC]),
        price_ticks=st.integers(299_990, 300_010),
        quantity_lots=st.integers(0, 20),
        stp_mode=st.sampled_from([StpMode.CANCEL_TAKER, StpMode.CANCEL_MAKER]),
    ).map(lambda p: p if p.order_type == OrderType.LIMIT else _market(p)),
    st.builds(
        CancelOrder,
        account_id=st.sampled_from(ACCOUNTS),
        client_order_id=st.integers(1, 6),
    ),
    st.builds(CancelOrder, account_id=st.sampled_from(ACCOUNTS), order_id=st.integers(1, 40)),
    st.builds(MassCancel, account_id=st.sampled_from(ACCOUNTS), instrument_id=st.just(-1)),
)


def _market(place: PlaceOrder) -> PlaceOrder:
    fields = {f: getattr(place, f) for f in place.__struct_fields__}
    return PlaceOrder(**(fields | {"price_ticks": 0, "time_in_force": TimeInForce.IOC}))


@given(
    entries=st.lists(st.lists(order, min_size=1, max_size=12), min_size=1, max_size=6),
    data=st.data(),
)
@settings(max_examples=150, deadline=None)
def test_report_records_are_the_execution_reports_of_the_same_rows(
    entries: list[list[Any]], data: st.DataObject
) -> None:
    shard = demo_shard()[0]
    for seq, commands in enumerate(entries, start=2):
        applied = shard.apply(
            seq, JournalEntry(origin="t", batch_id=seq, ts_ns=seq, commands=commands)
        )
        assert applied is not None
        rows = applied.events
        for account_id in ACCOUNTS:
            unsolicited = execution_reports(rows, CATALOG, seq, account_id=account_id)
            records = report_records(rows, seq, account_id)
            assert [as_tuple(r) for r in unsolicited] == [record_as_tuple(r) for r in records]
        # A caller's commands: a stretch of the entry, at batch positions with gaps (the
        # gateway's own rejects between them).
        offset = data.draw(st.integers(0, len(commands) - 1))
        count = data.draw(st.integers(1, len(commands) - offset))
        positions = np.cumsum(
            data.draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
        )
        caller = commands[offset]
        contexts = [
            CommandContext(int(p), CATALOG.by_id.get(getattr(c, "instrument_id", -1)))
            for p, c in zip(positions, commands[offset : offset + count], strict=True)
        ]
        instrument_ids = np.array(
            [-1 if c.instrument is None else c.instrument.instrument_id for c in contexts],
            dtype=np.int32,
        )
        solicited = execution_reports(
            rows,
            CATALOG,
            seq,
            account_id=caller.account_id,
            commands=contexts,
            command_offset=offset,
        )
        records = report_records(
            rows,
            seq,
            caller.account_id,
            positions=positions.astype(np.int64),
            instrument_ids=instrument_ids,
            offset=offset,
        )
        assert [as_tuple(r) for r in solicited] == [record_as_tuple(r) for r in records]
        proto = columns_proto(sorted_by_command(records))
        assert list(proto.kinds) == records["kind"].tolist()
        assert list(proto.instrument_ids) == records["instrument_id"].tolist()


def test_count_places_counts_each_place_once_by_its_first_reject() -> None:
    records = np.zeros(4, dtype=REPORT_DTYPE)
    records["kind"] = [EventKind.REJECTED, EventKind.ACCEPTED, EventKind.REJECTED, EventKind.FILLED]
    records["command_index"] = [0, 1, 5, 1]
    records["reason"] = [Reason.side_must_be_given, 0, Reason.order_must_exist, 0]
    accepted, by_reason = count_places(records, np.array([0, 1, 2]))
    assert accepted == 2
    assert by_reason == {Reason.side_must_be_given: 1}
