"""The gateway's conversions between decimal text and the engine's integers, requests and events.

Goal: a client's price or quantity becomes exactly the integer it denotes or a numbered reject,
never a rounded value; requests are validated in the precedence of their reason numbers; every
order-level event becomes the execution reports the contract promises. Method: Hypothesis
properties checked against exact rational arithmetic (`fractions.Fraction`, an independent
oracle), example tables for each reject, and event rows produced by the real engine shard
(`engine.shard.Shard` over the demo market) rather than written by hand.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine._codes import EventKind, InstrumentStatus, OrderStatus, OrderType, Reason, Side
from engine._dtypes import EVENT_DTYPE
from engine.markets import ASSETS, INSTRUMENTS, funding_commands, market_commands
from engine.messages import AmendOrder, CancelOrder, JournalEntry, MassCancel, PlaceOrder
from engine.shard import Shard
from gateway._proto.clearline.v1 import order_entry_pb2
from gateway.convert import (
    CommandContext,
    InstrumentCatalog,
    amend_command,
    book_snapshot_proto,
    cancel_command,
    decimal_text_chars_max,
    execution_reports,
    instrument_proto,
    lots_text,
    mass_cancel_command,
    minor_text,
    parse_decimal,
    place_command,
    reason_name,
    rejected_report,
    risk_limits_amounts,
    ticks_text,
    to_lots,
    to_minor,
    to_ticks,
    units_saturated,
    units_text,
)

ROOT = Path(__file__).resolve().parents[2]


def demo_catalog() -> InstrumentCatalog:
    """The catalog as the engine's ListInstruments result describes the demo market."""
    return InstrumentCatalog.from_result(
        {
            "assets": [msgspec.to_builtins(a) for a in ASSETS],
            "instruments": [dict(msgspec.to_builtins(i), status=1) for i in INSTRUMENTS],
        }
    )


CATALOG = demo_catalog()
BTC_USDT = CATALOG.by_symbol["BTC-USDT"]  # tick 0.1 USDT, lot 0.0001 BTC

# Sizes as instruments write them: a few significant digits times a power of ten.
sizes = st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(-exponent),
    st.integers(1, 999),
    st.integers(-3, 18),
)
unit_counts = st.integers(0, (1 << 63) - 1)


# -- numbers --


@given(unit_counts, sizes)
def test_units_text_round_trips_exactly(units: int, size: Decimal) -> None:
    text = units_text(units, size)
    assert "e" not in text.lower()
    assert not (("." in text) and text.endswith("0")), "not normalized"
    assert Fraction(text) == units * Fraction(size)
    assert to_ticks(text, size) == units
    assert to_lots(text, size) == units


@given(
    st.decimals(min_value=0, max_value=10**12, places=20, allow_nan=False, allow_infinity=False),
    sizes,
)
def test_to_ticks_is_exact_against_rational_arithmetic(value: Decimal, size: Decimal) -> None:
    text = format(value, "f")
    quotient = Fraction(text) / Fraction(size)
    result = to_ticks(text, size)
    if len(text) > decimal_text_chars_max:
        assert result == Reason.price_must_be_decimal
    elif quotient.denominator == 1:
        assert not isinstance(result, Reason)
        assert result == min(quotient.numerator, units_saturated)
    else:
        assert result == Reason.price_must_be_multiple_of_tick_size


@given(st.text(max_size=20))
def test_anything_that_is_not_a_plain_decimal_is_refused(text: str) -> None:
    plain = re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", text) is not None
    assert (parse_decimal(text) is not None) == plain
    if not plain:
        assert to_ticks(text, Decimal("0.01")) == Reason.price_must_be_decimal
        assert to_lots(text, Decimal("0.01")) == Reason.quantity_must_be_decimal


@pytest.mark.parametrize(
    "text",
    ["", ".", "-1", "+1", "1e3", "1E+2", " 1", "1 ", "NaN", "Infinity", "1_000", "\u0661", "0x10"],
)
def test_examples_of_refused_texts(text: str) -> None:
    assert to_ticks(text, Decimal("0.1")) == Reason.price_must_be_decimal


def test_examples_of_exact_conversions() -> None:
    assert to_ticks("30123.45", Decimal("0.01")) == 3_012_345
    assert to_ticks("30123.455", Decimal("0.01")) == Reason.price_must_be_multiple_of_tick_size
    assert to_ticks("007.50", Decimal("0.25")) == 30
    assert to_ticks(".5", Decimal("0.5")) == 1 and to_ticks("5.", Decimal("1")) == 5
    assert to_lots("0.0012", Decimal("0.0001")) == 12
    assert to_lots("0.00015", Decimal("0.0001")) == Reason.quantity_must_be_multiple_of_lot_size
    assert ticks_text(3_012_345, Decimal("0.01")) == "30123.45"
    assert ticks_text(100, Decimal("1")) == "100" and ticks_text(0, Decimal("0.01")) == "0"
    assert lots_text(12, Decimal("0.0001")) == "0.0012"
    assert minor_text(1_500_000, 6) == "1.5" and to_minor("1.5", 6) == 1_500_000
    assert to_minor("1.0000001", 6) is None and to_minor("x", 6) is None


def test_values_past_the_engine_fields_saturate_to_one_the_engine_refuses() -> None:
    huge = "9" * 40
    assert to_ticks(huge, Decimal("0.1")) == units_saturated
    assert to_lots(huge, Decimal("1")) == units_saturated
    assert units_saturated == 1 << 63  # one past int64: the engine's 4031, and still msgpack


def test_no_float_in_the_conversions() -> None:
    """No float literal and no use of the name float: the code, not the docstrings."""
    tree = ast.parse((ROOT / "gateway" / "convert.py").read_text())
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), node.lineno
        assert not (isinstance(node, ast.Name) and node.id == "float"), node.lineno


# -- the catalog --


def test_catalog_is_built_from_the_engine_listing() -> None:
    assert len(CATALOG) == 2
    assert CATALOG.by_id[1] is BTC_USDT and CATALOG.get("nope") is None
    assert BTC_USDT.tick_size == Decimal("0.1") and BTC_USDT.lot_size == Decimal("0.0001")
    assert (BTC_USDT.base_asset, BTC_USDT.quote_asset) == ("BTC", "USDT")
    assert CATALOG.assets_by_symbol["USDT"].decimals == 6
    proto = instrument_proto(BTC_USDT)
    assert (proto.tick_size, proto.lot_size) == ("0.1", "0.0001")
    assert (proto.price_min, proto.price_max) == ("1000", "1000000")
    assert (proto.quantity_min, proto.quantity_max, proto.notional_min) == ("0.0001", "100", "0")
    assert proto.status == InstrumentStatus.OPEN


# -- requests --


def place(**fields: object) -> order_entry_pb2.PlaceOrderRequest:
    base: dict[str, object] = {
        "instrument": "BTC-USDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "price": "30000.1",
        "quantity": "0.5",
        "client_order_id": 7,
    }
    base.update(fields)
    return order_entry_pb2.PlaceOrderRequest(**base)  # type: ignore[arg-type]


def test_a_valid_place_becomes_its_engine_command() -> None:
    command = place_command(place(), 42, CATALOG)
    assert command == PlaceOrder(
        account_id=42,
        instrument_id=1,
        client_order_id=7,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=1,  # GTC by default for a limit order
        price_ticks=300_001,
        quantity_lots=5_000,
        stp_mode=1,
    )
    market = place_command(place(order_type=OrderType.MARKET, price=""), 42, CATALOG)
    assert isinstance(market, PlaceOrder)
    assert (market.time_in_force, market.price_ticks) == (2, 0)  # IOC by default


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"instrument": "DOGE-USDT", "side": 0, "price": "x"}, Reason.instrument_must_be_known),
        ({"side": 0, "order_type": 0}, Reason.side_must_be_given),
        ({"side": 9}, Reason.side_must_be_given),
        ({"order_type": 0, "price": "x"}, Reason.order_type_must_be_given),
        ({"time_in_force": 7, "price": "x"}, Reason.time_in_force_must_be_given),
        ({"price": "1e5", "quantity": "x"}, Reason.price_must_be_decimal),
        ({"price": "30000.15", "quantity": "x"}, Reason.price_must_be_multiple_of_tick_size),
        ({"price": "", "quantity": "x"}, Reason.price_must_be_given_for_limit_order),
        (
            {"order_type": OrderType.MARKET, "quantity": "x"},
            Reason.price_must_not_be_given_for_market_order,
        ),
        ({"quantity": "", "client_order_id": 1 << 63}, Reason.quantity_must_be_decimal),
        ({"quantity": "0.00001"}, Reason.quantity_must_be_multiple_of_lot_size),
        (
            {"client_order_id": 1 << 63, "expire_ts_ns": -1},
            Reason.client_order_id_must_fit_in_63_bits,
        ),
        ({"expire_ts_ns": -1, "client_order_id": 0}, Reason.expire_time_must_fit_in_63_bits),
        ({"client_order_id": 0}, Reason.client_order_id_must_be_given),
    ],
)
def test_place_rejects_report_the_lowest_failing_reason(
    fields: dict[str, object], reason: Reason
) -> None:
    assert place_command(place(**fields), 42, CATALOG) == reason


def test_cancel_amend_and_mass_cancel() -> None:
    by_id = order_entry_pb2.CancelOrderRequest(order_id=5)
    assert cancel_command(by_id, 3) == CancelOrder(account_id=3, order_id=5)
    by_client = order_entry_pb2.CancelOrderRequest(client_order_id=0)
    assert cancel_command(by_client, 3) == CancelOrder(account_id=3, client_order_id=0)
    unnamed = order_entry_pb2.CancelOrderRequest()
    assert cancel_command(unnamed, 3) == Reason.order_must_be_named
    zero = order_entry_pb2.CancelOrderRequest(order_id=0)
    assert cancel_command(zero, 3) == Reason.order_must_be_named
    big = order_entry_pb2.CancelOrderRequest(client_order_id=1 << 63)
    assert cancel_command(big, 3) == Reason.client_order_id_must_fit_in_63_bits

    amend = order_entry_pb2.AmendOrderRequest(order_id=9, price="", quantity="0.25")
    assert amend_command(amend, 3, BTC_USDT) == AmendOrder(
        account_id=3, order_id=9, price_ticks=0, quantity_lots=2_500
    )
    amend.price = "1.05"
    assert amend_command(amend, 3, BTC_USDT) == Reason.price_must_be_multiple_of_tick_size
    assert amend_command(amend, 3, None) == Reason.order_must_exist  # no units: no 1006
    amend.order_id = 0
    assert amend_command(amend, 3, BTC_USDT) == Reason.price_must_be_multiple_of_tick_size
    amend.price = ""
    assert amend_command(amend, 3, BTC_USDT) == Reason.order_must_be_named
    assert amend_command(amend, 3, None) == Reason.order_must_be_named
    amend.order_id, amend.price, amend.quantity = 9, "x", "y"
    assert amend_command(amend, 3, None) == Reason.price_must_be_decimal
    amend.price = ""
    assert amend_command(amend, 3, None) == Reason.quantity_must_be_decimal

    everything = order_entry_pb2.MassCancelRequest()
    assert mass_cancel_command(everything, 3, CATALOG) == MassCancel(account_id=3, instrument_id=-1)
    one = order_entry_pb2.MassCancelRequest(instrument="ETH-USDT")
    assert mass_cancel_command(one, 3, CATALOG) == MassCancel(account_id=3, instrument_id=2)
    unknown = order_entry_pb2.MassCancelRequest(instrument="X")
    assert mass_cancel_command(unknown, 3, CATALOG) == Reason.instrument_must_be_known


def test_risk_limit_amounts_by_asset() -> None:
    assert risk_limits_amounts({"USDT": "1000.5"}, CATALOG) == {3: 1_000_500_000}
    assert isinstance(risk_limits_amounts({"XYZ": "1"}, CATALOG), str)
    assert isinstance(risk_limits_amounts({"USDT": "0.0000001"}, CATALOG), str)


# -- events -> reports --


def apply(shard: Shard, seq: int, commands: list) -> np.ndarray:  # type: ignore[type-arg]
    applied = shard.apply(seq, JournalEntry(origin="t", batch_id=seq, ts_ns=seq, commands=commands))
    assert applied is not None
    return applied.events


def limit(account: int, coid: int, side: Side, price_ticks: int, lots: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=account,
        instrument_id=1,
        client_order_id=coid,
        side=side,
        order_type=OrderType.LIMIT,
        time_in_force=1,
        price_ticks=price_ticks,
        quantity_lots=lots,
    )


def test_a_fill_gives_a_taker_report_and_a_maker_report() -> None:
    shard = Shard()
    apply(shard, 1, [*market_commands(), *funding_commands([10, 11])])
    maker_rows = apply(shard, 2, [limit(11, 1, Side.SELL, 300_000, 50)])
    rows = apply(shard, 3, [limit(10, 2, Side.BUY, 300_001, 20)])
    assert EventKind.BOOK_DELTA in rows["kind"].tolist()

    reports = execution_reports(rows, CATALOG, 3, commands=[CommandContext(4, BTC_USDT)])
    kinds = [(r.kind, r.maker) for r in reports]
    assert kinds == [
        (EventKind.ACCEPTED, False),
        (EventKind.FILLED, False),
        (EventKind.FILLED, True),
    ]
    accepted, taker, maker = reports
    assert (accepted.price, accepted.quantity, accepted.leaves_quantity) == (
        "30000.1",
        "0.002",
        "0.002",
    )
    assert accepted.command_index == 4 and accepted.journal_seq == 3
    assert (taker.price, taker.quantity, taker.leaves_quantity) == ("30000", "0.002", "0")
    assert taker.status == OrderStatus.FILLED and taker.side == Side.BUY
    assert (maker.client_order_id, maker.side, maker.leaves_quantity) == (1, Side.SELL, "0.003")
    assert maker.status == OrderStatus.PARTIALLY_FILLED and maker.trade_id == taker.trade_id
    assert maker.order_id == maker_rows["order_id"][0]

    # As the maker's unsolicited reports: only its own side of the trade.
    mine = execution_reports(rows, CATALOG, 3, account_id=11)
    assert [(r.kind, r.maker, r.command_index) for r in mine] == [(EventKind.FILLED, True, 0)]
    assert execution_reports(rows, CATALOG, 3, account_id=12) == []


def test_rejects_carry_the_commands_instrument_and_are_not_sent_to_others() -> None:
    shard = Shard()
    apply(shard, 1, [*market_commands(), *funding_commands([10])])
    rows = apply(
        shard,
        2,
        [
            limit(10, 1, Side.BUY, 300_000, 1),
            AmendOrder(account_id=10, order_id=999, price_ticks=300_005, quantity_lots=2),
        ],
    )
    contexts = [CommandContext(0, BTC_USDT), CommandContext(3, BTC_USDT)]
    reports = execution_reports(rows, CATALOG, 2, account_id=10, commands=contexts)
    reject = reports[-1]
    assert (reject.kind, reject.reason, reject.command_index) == (EventKind.REJECTED, 4021, 3)
    assert reject.reason_name == "order_must_exist" and reject.instrument == "BTC-USDT"
    assert (reject.price, reject.quantity) == ("30000.5", "0.0002")
    unsolicited = execution_reports(rows, CATALOG, 2, account_id=10)
    assert EventKind.REJECTED not in [r.kind for r in unsolicited]


def test_rows_that_are_not_about_an_order_give_no_report() -> None:
    rows = np.zeros(3, EVENT_DTYPE)
    rows["kind"] = [EventKind.BOOK_DELTA, EventKind.INSTRUMENT_STATUS, EventKind.APPLIED]
    assert execution_reports(rows, CATALOG, 1) == []


def test_gateway_rejects_echo_the_command() -> None:
    command = order_entry_pb2.Command(place=place(price="1.23"))
    report = rejected_report(Reason.customer_state_must_be_known, 2, command)
    assert (report.kind, report.status) == (EventKind.REJECTED, OrderStatus.REJECTED)
    assert (report.reason, report.reason_name) == (2001, "customer_state_must_be_known")
    assert (report.instrument, report.price, report.client_order_id) == ("BTC-USDT", "1.23", 7)
    assert report.journal_seq == 0 and report.command_index == 2
    assert reason_name(0) == "" and reason_name(60_000) == ""


def test_book_snapshot() -> None:
    book = {
        "instrument_id": 1,
        "sequence": 12,
        "status": 1,
        "bids": [[300_000, 5, 1]],
        "asks": [[300_010, 25_000, 3]],
        "ts_ns": 99,
    }
    proto = book_snapshot_proto(book, BTC_USDT)
    assert proto.snapshot and proto.sequence == 12
    assert [(lv.price, lv.quantity, lv.order_count) for lv in proto.bids] == [
        ("30000", "0.0005", 1)
    ]
    assert [(lv.price, lv.quantity) for lv in proto.asks] == [("30001", "2.5")]
