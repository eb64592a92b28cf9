"""Scenarios of docs/matching.md, event by event, on the reference book and on the core.

Goal: pin every rule of the contract with a small hand-made book whose outcome can be checked by
eye: priority, partial fills, market, IOC and FOK orders, each self-trade prevention mode, post-
only, amend, cancel, mass cancel, GTD expiry, halts, every reject reason, capacity limits, book
deltas, queries, snapshots and the batch path. Method: each test builds its book through the
public API of an engine from the ``make_engine`` fixture (so it runs on both implementations) and
compares the drained events with the exact expected list; ``seq`` is checked to run on by one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from engine._codes import (
    CommandKind,
    EventKind,
    InstrumentStatus,
    OrderStatus,
    OrderType,
    Reason,
    Side,
    StpMode,
    TimeInForce,
)
from engine._dtypes import COMMAND_DTYPE, EVENT_DTYPE
from engine._limits import EngineLimits
from engine._snapshot import SnapshotError, decode_state, encode_state, state_hash
from engine.reference import ReferenceEngine

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
TS = 1_000  # the sequenced time of most commands below
FIELDS = [name for name in EVENT_DTYPE.names or () if name != "seq"]

# -- EXPECTED EVENTS --


@dataclasses.dataclass(frozen=True)
class Ref:
    """What a test knows of an order: the fields every event about it carries."""

    order_id: int
    account_id: int
    client_order_id: int
    side: int
    price_ticks: int
    instrument_id: int = 0

    def at(self, price_ticks: int) -> Ref:
        return dataclasses.replace(self, price_ticks=price_ticks)


def ev(kind: int, *, ts_ns: int = TS, **fields: int) -> dict[str, int]:
    """An expected event: every field but seq, 0 unless given."""
    row = dict.fromkeys(FIELDS, 0)
    unknown = set(fields) - set(FIELDS)
    assert not unknown, f"not event fields: {unknown}"
    row.update(fields, ts_ns=ts_ns, kind=int(kind))
    return {name: int(value) for name, value in row.items()}


def _ids(order: Ref) -> dict[str, int]:
    return {
        "order_id": order.order_id,
        "account_id": order.account_id,
        "client_order_id": order.client_order_id,
        "side": order.side,
        "price_ticks": order.price_ticks,
        "instrument_id": order.instrument_id,
    }


def accepted(order: Ref, quantity_lots: int, *, ts_ns: int = TS) -> dict[str, int]:
    return ev(
        EventKind.ACCEPTED,
        ts_ns=ts_ns,
        **_ids(order),
        quantity_lots=quantity_lots,
        leaves_lots=quantity_lots,
        status=OrderStatus.NEW,
    )


def cancelled(order: Ref, quantity_lots: int, reason: int, *, ts_ns: int = TS) -> dict[str, int]:
    return ev(
        EventKind.CANCELLED,
        ts_ns=ts_ns,
        **_ids(order),
        quantity_lots=quantity_lots,
        reason=reason,
        status=OrderStatus.CANCELLED,
    )


def reduced(order: Ref, quantity_lots: int, leaves_lots: int, status: int) -> dict[str, int]:
    return ev(
        EventKind.REDUCED,
        **_ids(order),
        quantity_lots=quantity_lots,
        leaves_lots=leaves_lots,
        reason=Reason.self_trade_prevented,
        status=status,
    )


def amended(order: Ref, leaves_lots: int, status: int = OrderStatus.NEW) -> dict[str, int]:
    return ev(
        EventKind.AMENDED,
        **_ids(order),
        quantity_lots=leaves_lots,
        leaves_lots=leaves_lots,
        status=status,
    )


def filled(
    taker: Ref,
    maker: Ref,
    quantity_lots: int,
    *,
    leaves_lots: int,
    maker_leaves_lots: int,
    trade_id: int,
) -> dict[str, int]:
    """A fill at the maker's price; status FILLED exactly when the taker has no leaves left."""
    return ev(
        EventKind.FILLED,
        order_id=taker.order_id,
        account_id=taker.account_id,
        client_order_id=taker.client_order_id,
        instrument_id=taker.instrument_id,
        side=taker.side,
        price_ticks=maker.price_ticks,
        quantity_lots=quantity_lots,
        leaves_lots=leaves_lots,
        maker_order_id=maker.order_id,
        maker_account_id=maker.account_id,
        maker_client_order_id=maker.client_order_id,
        maker_leaves_lots=maker_leaves_lots,
        trade_id=trade_id,
        status=OrderStatus.FILLED if leaves_lots == 0 else OrderStatus.PARTIALLY_FILLED,
    )


def delta(
    side: int,
    price_ticks: int,
    quantity_lots: int,
    count: int,
    *,
    instrument_id: int = 0,
    ts_ns: int = TS,
) -> dict[str, int]:
    return ev(
        EventKind.BOOK_DELTA,
        ts_ns=ts_ns,
        side=side,
        price_ticks=price_ticks,
        quantity_lots=quantity_lots,
        leaves_lots=count,
        instrument_id=instrument_id,
    )


def rejected(reason: int, *, ts_ns: int = TS, **fields: int) -> dict[str, int]:
    return ev(EventKind.REJECTED, ts_ns=ts_ns, reason=reason, status=OrderStatus.REJECTED, **fields)


def instrument_status(instrument_id: int, status: int, *, ts_ns: int = TS) -> dict[str, int]:
    return ev(EventKind.INSTRUMENT_STATUS, ts_ns=ts_ns, instrument_id=instrument_id, status=status)


# -- DRIVING AN ENGINE --


def rows_of(events: np.ndarray) -> list[dict[str, int]]:
    return [dict(zip(EVENT_DTYPE.names or (), row, strict=True)) for row in events.tolist()]


def drained(engine: Any) -> list[dict[str, int]]:
    """The drained events without seq, after checking that seq runs on by one."""
    rows = rows_of(engine.drain_events())
    seqs = [row.pop("seq") for row in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True, seqs
    assert all(row["command_index"] == 0 for row in rows)
    return rows


def place(
    engine: Any,
    account_id: int,
    client_order_id: int,
    side: int,
    price_ticks: int,
    quantity_lots: int,
    *,
    instrument_id: int = 0,
    ts_ns: int = TS,
    **options: Any,
) -> Ref:
    """Place an order that must be accepted; its Ref."""
    order_id = engine.place(
        ts_ns, instrument_id, account_id, client_order_id, side, price_ticks, quantity_lots,
        **options,
    )  # fmt: skip
    assert order_id > 0, engine.drain_events()
    market = options.get("order_type") == MARKET
    return Ref(order_id, account_id, client_order_id, side, 0 if market else price_ticks,
               instrument_id)  # fmt: skip


def rest(engine: Any, *args: Any, **kwargs: Any) -> Ref:
    """Place an order to build a book and drop its events."""
    order = place(engine, *args, **kwargs)
    engine.drain_events()
    return order


def hash_without_seq(engine: Any) -> str:
    """The state hash with the event counter set aside: a reject's REJECTED still takes a seq."""
    state = decode_state(engine.snapshot())
    return state_hash(encode_state(dataclasses.replace(state, seq=0)))


def seq_of(engine: Any) -> int:
    return decode_state(engine.snapshot()).seq


# -- PRIORITY AND FILLS --


def test_price_time_priority_across_and_within_levels(engine: Any) -> None:
    a = rest(engine, 1, 11, SELL, 105, 10)
    b = rest(engine, 2, 21, SELL, 100, 10)
    c = rest(engine, 3, 31, SELL, 100, 10)
    d = rest(engine, 1, 12, SELL, 110, 10)
    taker = place(engine, 4, 41, BUY, 110, 35)
    assert drained(engine) == [
        accepted(taker, 35),
        filled(taker, b, 10, leaves_lots=25, maker_leaves_lots=0, trade_id=1),
        filled(taker, c, 10, leaves_lots=15, maker_leaves_lots=0, trade_id=2),
        filled(taker, a, 10, leaves_lots=5, maker_leaves_lots=0, trade_id=3),
        filled(taker, d, 5, leaves_lots=0, maker_leaves_lots=5, trade_id=4),
        delta(SELL, 100, 0, 0),
        delta(SELL, 105, 0, 0),
        delta(SELL, 110, 5, 1),
    ]
    assert engine.order(taker.order_id) is None
    assert engine.order(d.order_id)["leaves_lots"] == 5
    assert engine.order(d.order_id)["filled_lots"] == 5
    assert engine.order(d.order_id)["status"] == OrderStatus.PARTIALLY_FILLED


def test_sell_taker_walks_bids_from_the_highest(engine: Any) -> None:
    low = rest(engine, 1, 1, BUY, 95, 10)
    high = rest(engine, 2, 1, BUY, 100, 10)
    taker = place(engine, 3, 1, SELL, 95, 20)
    assert drained(engine) == [
        accepted(taker, 20),
        filled(taker, high, 10, leaves_lots=10, maker_leaves_lots=0, trade_id=1),
        filled(taker, low, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=2),
        delta(BUY, 100, 0, 0),
        delta(BUY, 95, 0, 0),
    ]


def test_partial_fill_rests_the_remainder(engine: Any) -> None:
    maker = rest(engine, 1, 1, SELL, 100, 10)
    taker = place(engine, 2, 1, BUY, 100, 30)
    assert drained(engine) == [
        accepted(taker, 30),
        filled(taker, maker, 10, leaves_lots=20, maker_leaves_lots=0, trade_id=1),
        delta(SELL, 100, 0, 0),
        delta(BUY, 100, 20, 1),
    ]
    resting = engine.order(taker.order_id)
    assert resting["leaves_lots"] == 20 and resting["filled_lots"] == 10
    assert resting["status"] == OrderStatus.PARTIALLY_FILLED
    assert engine.bbo(0) == (100, 20, 0, 0)


def test_partially_filled_maker_keeps_its_place(engine: Any) -> None:
    first = rest(engine, 1, 1, SELL, 100, 30)
    second = rest(engine, 2, 1, SELL, 100, 10)
    taker = place(engine, 3, 1, BUY, 100, 10)
    assert drained(engine) == [
        accepted(taker, 10),
        filled(taker, first, 10, leaves_lots=0, maker_leaves_lots=20, trade_id=1),
        delta(SELL, 100, 30, 2),
    ]
    taker = place(engine, 3, 2, BUY, 100, 25)
    assert drained(engine) == [
        accepted(taker, 25),
        filled(taker, first, 20, leaves_lots=5, maker_leaves_lots=0, trade_id=2),
        filled(taker, second, 5, leaves_lots=0, maker_leaves_lots=5, trade_id=3),
        delta(SELL, 100, 5, 1),
    ]


def test_market_order_remainder_is_cancelled_and_price_reported_as_zero(engine: Any) -> None:
    a = rest(engine, 1, 1, SELL, 100, 10)
    b = rest(engine, 2, 1, SELL, 105, 10)
    taker = place(engine, 3, 1, BUY, 555, 30, order_type=MARKET, time_in_force=IOC)
    assert taker.price_ticks == 0
    assert drained(engine) == [
        accepted(taker, 30),
        filled(taker, a, 10, leaves_lots=20, maker_leaves_lots=0, trade_id=1),
        filled(taker, b, 10, leaves_lots=10, maker_leaves_lots=0, trade_id=2),
        cancelled(taker, 10, Reason.unfilled_remainder_cancelled),
        delta(SELL, 100, 0, 0),
        delta(SELL, 105, 0, 0),
    ]


def test_market_order_on_an_empty_book(engine: Any) -> None:
    taker = place(engine, 3, 1, SELL, 0, 30, order_type=MARKET, time_in_force=IOC)
    assert drained(engine) == [
        accepted(taker, 30),
        cancelled(taker, 30, Reason.unfilled_remainder_cancelled),
    ]
    fok = place(engine, 3, 2, SELL, 0, 30, order_type=MARKET, time_in_force=FOK)
    assert drained(engine) == [
        accepted(fok, 30),
        cancelled(fok, 30, Reason.fill_or_kill_not_fillable),
    ]


def test_ioc_fills_what_crosses_and_cancels_the_rest(engine: Any) -> None:
    maker = rest(engine, 1, 1, SELL, 100, 10)
    rest(engine, 1, 2, SELL, 105, 10)
    taker = place(engine, 2, 1, BUY, 100, 20, time_in_force=IOC)
    assert drained(engine) == [
        accepted(taker, 20),
        filled(taker, maker, 10, leaves_lots=10, maker_leaves_lots=0, trade_id=1),
        cancelled(taker, 10, Reason.unfilled_remainder_cancelled),
        delta(SELL, 100, 0, 0),
    ]
    taker = place(engine, 2, 2, BUY, 95, 20, time_in_force=IOC)
    assert drained(engine) == [
        accepted(taker, 20),
        cancelled(taker, 20, Reason.unfilled_remainder_cancelled),
    ]
    assert engine.bbo(0) == (0, 0, 105, 10)


def test_fok_fillable_fills_in_full_across_levels(engine: Any) -> None:
    a = rest(engine, 1, 1, SELL, 100, 10)
    b = rest(engine, 2, 1, SELL, 105, 10)
    taker = place(engine, 3, 1, BUY, 105, 20, time_in_force=FOK)
    assert drained(engine) == [
        accepted(taker, 20),
        filled(taker, a, 10, leaves_lots=10, maker_leaves_lots=0, trade_id=1),
        filled(taker, b, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=2),
        delta(SELL, 100, 0, 0),
        delta(SELL, 105, 0, 0),
    ]


@pytest.mark.parametrize(
    ("price_ticks", "quantity_lots"),
    [(105, 25), (100, 20)],
    ids=["too-little-quantity", "price-limit-stops-the-walk"],
)
def test_fok_not_fillable_has_no_side_effects(
    engine: Any, price_ticks: int, quantity_lots: int
) -> None:
    rest(engine, 1, 1, SELL, 100, 10)
    rest(engine, 2, 1, SELL, 105, 10)
    depth = engine.depth(0, 10)
    before = decode_state(engine.snapshot())
    taker = place(engine, 3, 1, BUY, price_ticks, quantity_lots, time_in_force=FOK)
    assert drained(engine) == [
        accepted(taker, quantity_lots),
        cancelled(taker, quantity_lots, Reason.fill_or_kill_not_fillable),
    ]
    after = decode_state(engine.snapshot())
    assert engine.depth(0, 10) == depth
    assert after.orders.tobytes() == before.orders.tobytes()
    assert after.next_trade_id == before.next_trade_id
    assert engine.order(taker.order_id) is None


def test_fok_dry_walk_skips_self_matches_under_cancel_maker(engine: Any) -> None:
    own = rest(engine, 3, 1, SELL, 100, 10)
    other = rest(engine, 1, 1, SELL, 100, 10)
    taker = place(engine, 3, 2, BUY, 100, 10, time_in_force=FOK, stp_mode=StpMode.CANCEL_MAKER)
    assert drained(engine) == [
        accepted(taker, 10),
        cancelled(own, 10, Reason.self_trade_prevented),
        filled(taker, other, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=1),
        delta(SELL, 100, 0, 0),
    ]


@pytest.mark.parametrize(
    "stp_mode", [StpMode.CANCEL_TAKER, StpMode.CANCEL_BOTH, StpMode.DECREMENT_AND_CANCEL]
)
def test_fok_dry_walk_stops_at_a_self_match_under_other_modes(engine: Any, stp_mode: int) -> None:
    rest(engine, 3, 1, SELL, 100, 10)
    rest(engine, 1, 1, SELL, 100, 10)
    taker = place(engine, 3, 2, BUY, 100, 10, time_in_force=FOK, stp_mode=stp_mode)
    assert drained(engine) == [
        accepted(taker, 10),
        cancelled(taker, 10, Reason.fill_or_kill_not_fillable),
    ]
    assert engine.depth(0, 5) == ([], [(100, 20, 2)])


def test_fok_fillable_before_reaching_a_self_match(engine: Any) -> None:
    other = rest(engine, 1, 1, SELL, 100, 10)
    rest(engine, 3, 1, SELL, 100, 10)
    taker = place(engine, 3, 2, BUY, 100, 10, time_in_force=FOK)
    assert drained(engine) == [
        accepted(taker, 10),
        filled(taker, other, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=1),
        delta(SELL, 100, 10, 1),
    ]


# -- SELF-TRADE PREVENTION --


def _stp_book(engine: Any) -> tuple[Ref, Ref, Ref]:
    """Asks at 100: another account's, then account 1's own, then a third account's."""
    first = rest(engine, 2, 1, SELL, 100, 10)
    own = rest(engine, 1, 1, SELL, 100, 10)
    third = rest(engine, 3, 1, SELL, 100, 10)
    return first, own, third


def test_stp_cancel_taker(engine: Any) -> None:
    first, own, _ = _stp_book(engine)
    taker = place(engine, 1, 2, BUY, 100, 30, stp_mode=StpMode.CANCEL_TAKER)
    assert drained(engine) == [
        accepted(taker, 30),
        filled(taker, first, 10, leaves_lots=20, maker_leaves_lots=0, trade_id=1),
        cancelled(taker, 20, Reason.self_trade_prevented),
        delta(SELL, 100, 20, 2),
    ]
    assert engine.order(taker.order_id) is None
    assert engine.order(own.order_id)["leaves_lots"] == 10


def test_stp_cancel_maker(engine: Any) -> None:
    first, own, third = _stp_book(engine)
    taker = place(engine, 1, 2, BUY, 100, 20, stp_mode=StpMode.CANCEL_MAKER)
    assert drained(engine) == [
        accepted(taker, 20),
        filled(taker, first, 10, leaves_lots=10, maker_leaves_lots=0, trade_id=1),
        cancelled(own, 10, Reason.self_trade_prevented),
        filled(taker, third, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=2),
        delta(SELL, 100, 0, 0),
    ]


def test_stp_cancel_both(engine: Any) -> None:
    first, own, _ = _stp_book(engine)
    taker = place(engine, 1, 2, BUY, 100, 30, stp_mode=StpMode.CANCEL_BOTH)
    assert drained(engine) == [
        accepted(taker, 30),
        filled(taker, first, 10, leaves_lots=20, maker_leaves_lots=0, trade_id=1),
        cancelled(own, 10, Reason.self_trade_prevented),
        cancelled(taker, 20, Reason.self_trade_prevented),
        delta(SELL, 100, 10, 1),
    ]


def test_stp_decrement_equal_sizes_cancels_both(engine: Any) -> None:
    own = rest(engine, 1, 1, SELL, 100, 10)
    taker = place(engine, 1, 2, BUY, 100, 10, stp_mode=StpMode.DECREMENT_AND_CANCEL)
    assert drained(engine) == [
        accepted(taker, 10),
        cancelled(own, 10, Reason.self_trade_prevented),
        cancelled(taker, 10, Reason.self_trade_prevented),
        delta(SELL, 100, 0, 0),
    ]


def test_stp_decrement_larger_taker_goes_on_and_rests(engine: Any) -> None:
    own = rest(engine, 1, 1, SELL, 100, 10)
    other = rest(engine, 2, 1, SELL, 105, 10)
    taker = place(engine, 1, 2, BUY, 105, 30, stp_mode=StpMode.DECREMENT_AND_CANCEL)
    assert drained(engine) == [
        accepted(taker, 30),
        cancelled(own, 10, Reason.self_trade_prevented),
        reduced(taker, 10, 20, OrderStatus.NEW),
        filled(taker, other, 10, leaves_lots=10, maker_leaves_lots=0, trade_id=1),
        delta(SELL, 100, 0, 0),
        delta(SELL, 105, 0, 0),
        delta(BUY, 105, 10, 1),
    ]
    resting = engine.order(taker.order_id)
    assert (resting["leaves_lots"], resting["filled_lots"]) == (10, 10)


def test_stp_decrement_smaller_taker_reduces_the_maker_in_place(engine: Any) -> None:
    own = rest(engine, 1, 1, SELL, 100, 30)
    rest(engine, 2, 1, SELL, 100, 10)
    rest(engine, 3, 1, BUY, 100, 10)  # the own maker is now partially filled
    taker = place(engine, 1, 2, BUY, 100, 10, stp_mode=StpMode.DECREMENT_AND_CANCEL)
    assert drained(engine) == [
        accepted(taker, 10),
        reduced(own, 10, 10, OrderStatus.PARTIALLY_FILLED),
        cancelled(taker, 10, Reason.self_trade_prevented),
        delta(SELL, 100, 20, 2),
    ]
    # The reduced maker kept its place at the head of the level.
    taker = place(engine, 4, 1, BUY, 100, 10)
    assert drained(engine)[1] == filled(
        taker, own, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=2
    )


def test_stp_decrement_reduced_maker_status_new(engine: Any) -> None:
    own = rest(engine, 1, 1, SELL, 100, 30)
    taker = place(engine, 1, 2, BUY, 100, 10, stp_mode=StpMode.DECREMENT_AND_CANCEL)
    assert drained(engine) == [
        accepted(taker, 10),
        reduced(own, 10, 20, OrderStatus.NEW),
        cancelled(taker, 10, Reason.self_trade_prevented),
        delta(SELL, 100, 20, 1),
    ]


def test_stp_by_group_across_accounts(engine: Any) -> None:
    maker = rest(engine, 2, 1, SELL, 100, 10, stp_group=7)
    taker = place(engine, 3, 1, BUY, 100, 10, stp_group=7)
    assert drained(engine) == [
        accepted(taker, 10),
        cancelled(taker, 10, Reason.self_trade_prevented),
    ]
    other_group = place(engine, 3, 2, BUY, 100, 10, stp_group=8)
    assert drained(engine) == [
        accepted(other_group, 10),
        filled(other_group, maker, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=1),
        delta(SELL, 100, 0, 0),
    ]


@pytest.mark.parametrize("stp_mode", list(StpMode))
def test_each_stp_mode_by_group(engine: Any, stp_mode: StpMode) -> None:
    # Accounts 2 and 3 share STP group 7: a self-match as if they were one account.
    maker = rest(engine, 2, 1, SELL, 100, 10, stp_group=7)
    taker = place(engine, 3, 1, BUY, 100, 10, stp_group=7, stp_mode=stp_mode)
    prevented = Reason.self_trade_prevented
    expected = {
        StpMode.CANCEL_TAKER: [cancelled(taker, 10, prevented)],
        StpMode.CANCEL_MAKER: [
            cancelled(maker, 10, prevented),
            delta(SELL, 100, 0, 0),
            delta(BUY, 100, 10, 1),
        ],
        StpMode.CANCEL_BOTH: [
            cancelled(maker, 10, prevented),
            cancelled(taker, 10, prevented),
            delta(SELL, 100, 0, 0),
        ],
        StpMode.DECREMENT_AND_CANCEL: [
            cancelled(maker, 10, prevented),
            cancelled(taker, 10, prevented),
            delta(SELL, 100, 0, 0),
        ],
    }[stp_mode]
    assert drained(engine) == [accepted(taker, 10), *expected]


def test_stp_group_zero_is_no_group(engine: Any) -> None:
    maker = rest(engine, 2, 1, SELL, 100, 10)
    taker = place(engine, 3, 1, BUY, 100, 10)
    assert drained(engine)[1] == filled(
        taker, maker, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=1
    )
    grouped_maker = rest(engine, 2, 2, SELL, 100, 10, stp_group=5)
    taker = place(engine, 3, 2, BUY, 100, 10)  # group 0 against group 5: trades
    assert drained(engine)[1] == filled(
        taker, grouped_maker, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=2
    )


# -- POST-ONLY --


def test_post_only_rejected_when_crossing_and_rests_otherwise(engine: Any) -> None:
    rest(engine, 2, 1, SELL, 100, 10)
    assert engine.place(TS, 0, 1, 1, BUY, 100, 10, post_only=True) == 0
    assert drained(engine) == [
        rejected(
            Reason.post_only_order_must_not_cross,
            account_id=1,
            client_order_id=1,
            side=BUY,
            price_ticks=100,
            quantity_lots=10,
        )
    ]
    order = place(engine, 1, 1, BUY, 95, 10, post_only=True)
    assert drained(engine) == [accepted(order, 10), delta(BUY, 95, 10, 1)]
    assert engine.order(order.order_id)["post_only"] == 1
    # A self-match counts as crossing.
    assert engine.place(TS, 0, 1, 2, SELL, 95, 10, post_only=True) == 0
    assert drained(engine)[0]["reason"] == Reason.post_only_order_must_not_cross


# -- AMEND --


def test_amend_quantity_down_keeps_priority(engine: Any) -> None:
    a = rest(engine, 1, 1, BUY, 100, 20)
    b = rest(engine, 2, 1, BUY, 100, 20)
    assert engine.amend(TS, 1, a.order_id, 0, 10) == 0
    assert drained(engine) == [amended(a, 10), delta(BUY, 100, 30, 2)]
    taker = place(engine, 3, 1, SELL, 100, 10)
    assert drained(engine)[1] == filled(
        taker, a, 10, leaves_lots=0, maker_leaves_lots=0, trade_id=1
    )
    assert engine.order(b.order_id)["leaves_lots"] == 20


def test_amend_quantity_up_loses_priority(engine: Any) -> None:
    a = rest(engine, 1, 1, BUY, 100, 20)
    b = rest(engine, 2, 1, BUY, 100, 20)
    assert engine.amend(TS, 1, a.order_id, 100, 30) == 0
    assert drained(engine) == [amended(a, 30), delta(BUY, 100, 50, 2)]
    taker = place(engine, 3, 1, SELL, 100, 20)
    assert drained(engine)[1] == filled(
        taker, b, 20, leaves_lots=0, maker_leaves_lots=0, trade_id=1
    )


def test_amend_price_loses_priority(engine: Any) -> None:
    a = rest(engine, 1, 1, BUY, 100, 20)
    b = rest(engine, 2, 1, BUY, 100, 20)
    c = rest(engine, 3, 1, BUY, 95, 20)
    assert engine.amend(TS, 1, a.order_id, 95, 20) == 0
    assert drained(engine) == [
        amended(a.at(95), 20),
        delta(BUY, 100, 20, 1),
        delta(BUY, 95, 40, 2),
    ]
    taker = place(engine, 4, 1, SELL, 95, 60)
    assert drained(engine)[1:4] == [
        filled(taker, b, 20, leaves_lots=40, maker_leaves_lots=0, trade_id=1),
        filled(taker, c, 20, leaves_lots=20, maker_leaves_lots=0, trade_id=2),
        filled(taker, a.at(95), 20, leaves_lots=0, maker_leaves_lots=0, trade_id=3),
    ]


def test_amend_that_crosses_trades_then_rests(engine: Any) -> None:
    ask = rest(engine, 2, 1, SELL, 105, 10)
    a = rest(engine, 1, 1, BUY, 100, 20)
    assert engine.amend(TS, 1, a.order_id, 105, 20) == 0
    assert drained(engine) == [
        amended(a.at(105), 20),
        filled(a.at(105), ask, 10, leaves_lots=10, maker_leaves_lots=0, trade_id=1),
        delta(BUY, 100, 0, 0),
        delta(SELL, 105, 0, 0),
        delta(BUY, 105, 10, 1),
    ]
    order = engine.order(a.order_id)
    assert (order["price_ticks"], order["leaves_lots"], order["filled_lots"]) == (105, 10, 10)
    # After a fill, AMENDED says PARTIALLY_FILLED.
    assert engine.amend(TS, 1, a.order_id, 0, 5) == 0
    assert drained(engine) == [
        amended(a.at(105), 5, OrderStatus.PARTIALLY_FILLED),
        delta(BUY, 105, 5, 1),
    ]


def test_amend_that_crosses_a_self_match_is_cancelled_by_stp(engine: Any) -> None:
    rest(engine, 1, 1, SELL, 105, 10)
    a = rest(engine, 1, 2, BUY, 100, 20)
    assert engine.amend(TS, 1, a.order_id, 105, 20) == 0
    assert drained(engine) == [
        amended(a.at(105), 20),
        cancelled(a.at(105), 20, Reason.self_trade_prevented),
        delta(BUY, 100, 0, 0),
    ]
    assert engine.order(a.order_id) is None


def test_amend_fully_filled_leaves_the_book(engine: Any) -> None:
    ask = rest(engine, 2, 1, SELL, 105, 30)
    a = rest(engine, 1, 1, BUY, 100, 20)
    assert engine.amend(TS, 1, a.order_id, 105, 10) == 0
    assert drained(engine) == [
        amended(a.at(105), 10),
        filled(a.at(105), ask, 10, leaves_lots=0, maker_leaves_lots=20, trade_id=1),
        delta(BUY, 100, 0, 0),
        delta(SELL, 105, 20, 1),
    ]
    assert engine.order(a.order_id) is None
    assert engine.open_orders(1) == []


def test_amend_quantity_below_minimum_is_allowed(engine: Any) -> None:
    a = rest(engine, 1, 1, BUY, 100, 20)
    assert engine.amend(TS, 1, a.order_id, 0, 5) == 0  # the instrument's minimum is 10
    assert drained(engine) == [amended(a, 5), delta(BUY, 100, 5, 1)]


@pytest.mark.parametrize("price_ticks", [0, 100])
def test_amend_without_change_is_rejected(engine: Any, price_ticks: int) -> None:
    a = rest(engine, 1, 1, BUY, 100, 20)
    assert engine.amend(TS, 1, a.order_id, price_ticks, 20) == Reason.amend_must_change_order
    assert drained(engine) == [
        rejected(
            Reason.amend_must_change_order,
            order_id=a.order_id,
            account_id=1,
            price_ticks=price_ticks,
            quantity_lots=20,
        )
    ]


# -- CANCEL --


def test_cancel_by_order_id_and_by_client_order_id(engine: Any) -> None:
    a = rest(engine, 1, 11, BUY, 100, 20)
    b = rest(engine, 1, 12, BUY, 100, 10)
    rest(engine, 2, 1, SELL, 105, 10)
    rest(engine, 2, 2, SELL, 100, 10)  # a now has 10 leaves
    assert engine.cancel(TS, 1, order_id=a.order_id) == 0
    assert drained(engine) == [
        cancelled(a, 10, Reason.cancelled_by_user),
        delta(BUY, 100, 10, 1),
    ]
    assert engine.cancel(TS, 1, client_order_id=12) == 0
    assert drained(engine) == [
        cancelled(b, 10, Reason.cancelled_by_user),
        delta(BUY, 100, 0, 0),
    ]
    assert engine.open_orders(1) == []


def test_cancel_of_another_accounts_order_and_unknown_orders(engine: Any) -> None:
    a = rest(engine, 1, 11, BUY, 100, 20)
    before = hash_without_seq(engine)
    assert engine.cancel(TS, 2, order_id=a.order_id) == Reason.order_must_belong_to_account
    assert engine.cancel(TS, 1, order_id=999) == Reason.order_must_exist
    assert engine.cancel(TS, 2, client_order_id=11) == Reason.order_must_exist
    assert engine.cancel(TS, -1, order_id=a.order_id) == Reason.account_id_must_be_in_range
    assert drained(engine) == [
        rejected(Reason.order_must_belong_to_account, order_id=a.order_id, account_id=2),
        rejected(Reason.order_must_exist, order_id=999, account_id=1),
        rejected(Reason.order_must_exist, account_id=2, client_order_id=11),
        rejected(Reason.account_id_must_be_in_range, order_id=a.order_id, account_id=-1),
    ]
    assert hash_without_seq(engine) == before


def test_client_order_id_is_unique_among_resting_orders_only(engine: Any) -> None:
    a = rest(engine, 1, 7, BUY, 100, 20)
    assert engine.place(TS, 0, 1, 7, BUY, 95, 10) == 0
    assert engine.place(TS, 0, 1, 7, SELL, 200, 10, time_in_force=IOC) == 0
    assert [e["reason"] for e in drained(engine)] == [Reason.client_order_id_must_be_unique] * 2
    rest(engine, 2, 7, BUY, 95, 10)  # another account may use the same client order id
    assert engine.cancel(TS, 1, order_id=a.order_id) == 0
    engine.drain_events()
    again = place(engine, 1, 7, BUY, 95, 10)
    assert drained(engine)[0] == accepted(again, 10)
    # Once filled, the client order id is free again too.
    rest(engine, 3, 1, SELL, 95, 20)
    assert engine.order(again.order_id) is None
    place(engine, 1, 7, BUY, 90, 10)


def test_client_order_id_zero_is_an_ordinary_client_order_id(engine: Any) -> None:
    a = rest(engine, 1, 0, BUY, 100, 20)
    assert engine.place(TS, 0, 1, 0, BUY, 95, 10) == 0
    assert drained(engine)[0]["reason"] == Reason.client_order_id_must_be_unique
    assert engine.cancel(TS, 1) == 0  # order id 0: by client order id 0
    assert drained(engine)[0] == cancelled(a, 20, Reason.cancelled_by_user)


# -- MASS CANCEL --


def test_mass_cancel_by_account_in_ascending_order_id(
    engine: Any, standard_instrument: Any
) -> None:
    standard_instrument(engine, 1)
    o1 = rest(engine, 1, 1, BUY, 100, 10)
    o2 = rest(engine, 1, 2, SELL, 200, 10, instrument_id=1)
    o3 = rest(engine, 1, 3, SELL, 300, 10)
    o4 = rest(engine, 2, 1, BUY, 100, 10)
    o5 = rest(engine, 1, 4, BUY, 100, 10)
    assert engine.mass_cancel(TS, 1) == 4
    assert drained(engine) == [
        cancelled(o1, 10, Reason.mass_cancelled),
        cancelled(o2, 10, Reason.mass_cancelled),
        cancelled(o3, 10, Reason.mass_cancelled),
        cancelled(o5, 10, Reason.mass_cancelled),
        delta(BUY, 100, 10, 1),
        delta(SELL, 200, 0, 0, instrument_id=1),
        delta(SELL, 300, 0, 0),
    ]
    assert [o["order_id"] for o in engine.open_orders(2)] == [o4.order_id]
    assert engine.mass_cancel(TS, 1) == 0
    assert drained(engine) == []


def test_mass_cancel_by_account_and_instrument(engine: Any, standard_instrument: Any) -> None:
    standard_instrument(engine, 1)
    o1 = rest(engine, 1, 1, BUY, 100, 10)
    o2 = rest(engine, 1, 2, SELL, 200, 10, instrument_id=1)
    o3 = rest(engine, 1, 3, BUY, 90, 10)
    assert engine.mass_cancel(TS, 1, 0) == 2
    assert drained(engine) == [
        cancelled(o1, 10, Reason.mass_cancelled),
        cancelled(o3, 10, Reason.mass_cancelled),
        delta(BUY, 100, 0, 0),
        delta(BUY, 90, 0, 0),
    ]
    assert [o["order_id"] for o in engine.open_orders(1)] == [o2.order_id]
    assert engine.mass_cancel(TS, 2, 1) == 0
    assert drained(engine) == []


def test_mass_cancel_rejects(engine: Any) -> None:
    rest(engine, 1, 1, BUY, 100, 10)
    before = hash_without_seq(engine)
    assert engine.mass_cancel(TS, -1) == -Reason.account_id_must_be_in_range
    assert engine.mass_cancel(TS, 1, 5) == -Reason.instrument_must_exist
    assert engine.mass_cancel(TS, 1, -2) == -Reason.instrument_must_exist
    assert drained(engine) == [
        rejected(Reason.account_id_must_be_in_range, account_id=-1, instrument_id=-1),
        rejected(Reason.instrument_must_exist, account_id=1, instrument_id=5),
        rejected(Reason.instrument_must_exist, account_id=1, instrument_id=-2),
    ]
    assert hash_without_seq(engine) == before


# -- TIME AND GTD --


def test_gtd_expiry_by_advance_time_in_expiry_then_order_id_order(engine: Any) -> None:
    late = rest(engine, 1, 1, BUY, 100, 10, time_in_force=GTD, expire_ts_ns=TS + 100)
    early_a = rest(engine, 1, 2, BUY, 95, 10, time_in_force=GTD, expire_ts_ns=TS + 50)
    early_b = rest(engine, 2, 1, BUY, 100, 10, time_in_force=GTD, expire_ts_ns=TS + 50)
    rest(engine, 2, 2, BUY, 100, 10)
    assert engine.advance_time(TS + 49) == 0
    assert drained(engine) == []
    assert engine.advance_time(TS + 50) == 2  # expire_ts_ns <= now expires
    t = TS + 50
    assert drained(engine) == [
        cancelled(early_a, 10, Reason.order_expired, ts_ns=t),
        cancelled(early_b, 10, Reason.order_expired, ts_ns=t),
        delta(BUY, 95, 0, 0, ts_ns=t),
        delta(BUY, 100, 20, 2, ts_ns=t),
    ]
    assert engine.advance_time(TS + 10_000) == 1
    assert drained(engine) == [
        cancelled(late, 10, Reason.order_expired, ts_ns=TS + 10_000),
        delta(BUY, 100, 10, 1, ts_ns=TS + 10_000),
    ]


def test_gtd_expiry_order_is_expiry_first(engine: Any) -> None:
    late = rest(engine, 1, 1, BUY, 100, 10, time_in_force=GTD, expire_ts_ns=TS + 100)
    early = rest(engine, 1, 2, BUY, 95, 10, time_in_force=GTD, expire_ts_ns=TS + 50)
    t = TS + 100
    assert engine.advance_time(t) == 2
    assert drained(engine) == [
        cancelled(early, 10, Reason.order_expired, ts_ns=t),
        cancelled(late, 10, Reason.order_expired, ts_ns=t),
        delta(BUY, 95, 0, 0, ts_ns=t),
        delta(BUY, 100, 0, 0, ts_ns=t),
    ]


def test_expiry_runs_before_a_command_with_its_own_deltas(engine: Any) -> None:
    gtd = rest(engine, 1, 1, BUY, 100, 10, time_in_force=GTD, expire_ts_ns=TS + 5)
    t = TS + 5
    new = place(engine, 2, 1, BUY, 100, 20, ts_ns=t)
    assert drained(engine) == [
        cancelled(gtd, 10, Reason.order_expired, ts_ns=t),
        delta(BUY, 100, 0, 0, ts_ns=t),
        accepted(new, 20, ts_ns=t),
        delta(BUY, 100, 20, 1, ts_ns=t),
    ]


def test_expiry_runs_before_a_rejected_command(engine: Any) -> None:
    gtd = rest(engine, 1, 1, BUY, 100, 10, time_in_force=GTD, expire_ts_ns=TS + 5)
    t = TS + 5
    assert engine.cancel(t, 1, order_id=gtd.order_id) == Reason.order_must_exist
    assert drained(engine) == [
        cancelled(gtd, 10, Reason.order_expired, ts_ns=t),
        delta(BUY, 100, 0, 0, ts_ns=t),
        rejected(Reason.order_must_exist, ts_ns=t, order_id=gtd.order_id, account_id=1),
    ]


def test_time_never_goes_back(engine: Any) -> None:
    engine.advance_time(TS)
    assert engine.advance_time(TS - 500) == 0
    assert engine.now_ts_ns == TS
    order = place(engine, 1, 1, BUY, 100, 10, ts_ns=5)
    assert drained(engine)[0] == accepted(order, 10, ts_ns=TS)


@pytest.mark.parametrize(
    ("time_in_force", "expire_ts_ns", "reason"),
    [
        (GTD, TS, Reason.expire_time_must_be_in_future),
        (GTD, TS - 1, Reason.expire_time_must_be_in_future),
        (GTD, 0, Reason.expire_time_must_be_given_for_gtd_only),
        (GTC, TS + 10, Reason.expire_time_must_be_given_for_gtd_only),
        (IOC, -1, Reason.expire_time_must_be_given_for_gtd_only),
    ],
)
def test_gtd_expire_time_checks(
    engine: Any, time_in_force: int, expire_ts_ns: int, reason: int
) -> None:
    engine.advance_time(TS)
    assert engine.place(
        TS, 0, 1, 1, BUY, 100, 10, time_in_force=time_in_force, expire_ts_ns=expire_ts_ns
    ) == 0  # fmt: skip
    assert drained(engine)[0]["reason"] == reason


# -- HALT AND RESUME --


def test_halt_without_cancel_keeps_the_book(engine: Any) -> None:
    a = rest(engine, 1, 1, BUY, 100, 10)
    b = rest(engine, 1, 2, BUY, 95, 10)
    gtd = rest(engine, 2, 1, SELL, 200, 10, time_in_force=GTD, expire_ts_ns=TS + 10)
    assert engine.halt(TS, 0) == 0
    assert drained(engine) == [instrument_status(0, InstrumentStatus.HALTED)]
    assert engine.depth(0, 5) == ([(100, 10, 1), (95, 10, 1)], [(200, 10, 1)])
    assert engine.place(TS, 0, 3, 1, SELL, 100, 10) == 0
    assert engine.amend(TS, 1, a.order_id, 0, 5) == Reason.instrument_must_be_open
    assert drained(engine) == [
        rejected(
            Reason.instrument_must_be_open,
            account_id=3,
            client_order_id=1,
            side=SELL,
            price_ticks=100,
            quantity_lots=10,
        ),
        rejected(
            Reason.instrument_must_be_open, order_id=a.order_id, account_id=1, quantity_lots=5
        ),
    ]
    # Cancel, mass cancel and expiry work while halted.
    assert engine.cancel(TS, 1, order_id=a.order_id) == 0
    assert engine.mass_cancel(TS, 1, 0) == 1
    assert engine.advance_time(TS + 10) == 1
    t = TS + 10
    assert drained(engine) == [
        cancelled(a, 10, Reason.cancelled_by_user),
        delta(BUY, 100, 0, 0),
        cancelled(b, 10, Reason.mass_cancelled),
        delta(BUY, 95, 0, 0),
        cancelled(gtd, 10, Reason.order_expired, ts_ns=t),
        delta(SELL, 200, 0, 0, ts_ns=t),
    ]
    assert engine.resume(TS + 10, 0) == 0
    assert drained(engine) == [instrument_status(0, InstrumentStatus.OPEN, ts_ns=TS + 10)]
    place(engine, 3, 1, SELL, 100, 10)


def test_halt_with_cancel_resting_bids_then_asks_best_first(engine: Any) -> None:
    b1 = rest(engine, 1, 1, BUY, 95, 10)
    b2 = rest(engine, 2, 1, BUY, 100, 10)
    b3 = rest(engine, 3, 1, BUY, 100, 15)
    a1 = rest(engine, 1, 2, SELL, 110, 10)
    a2 = rest(engine, 2, 2, SELL, 105, 10)
    assert engine.halt(TS, 0, cancel_resting=True) == 0
    reason = Reason.instrument_halted
    assert drained(engine) == [
        instrument_status(0, InstrumentStatus.HALTED),
        cancelled(b2, 10, reason),
        cancelled(b3, 15, reason),
        cancelled(b1, 10, reason),
        cancelled(a2, 10, reason),
        cancelled(a1, 10, reason),
        delta(BUY, 100, 0, 0),
        delta(BUY, 95, 0, 0),
        delta(SELL, 105, 0, 0),
        delta(SELL, 110, 0, 0),
    ]
    assert engine.bbo(0) == (0, 0, 0, 0)


def test_halt_and_resume_repeat_and_unknown(engine: Any) -> None:
    assert engine.halt(TS, 0) == 0
    assert engine.halt(TS, 0) == 0
    assert engine.resume(TS, 0) == 0
    assert engine.resume(TS, 0) == 0
    assert engine.halt(TS, 9) == Reason.instrument_must_exist
    assert engine.resume(TS, -1) == Reason.instrument_must_exist
    assert drained(engine) == [
        instrument_status(0, InstrumentStatus.HALTED),
        instrument_status(0, InstrumentStatus.HALTED),
        instrument_status(0, InstrumentStatus.OPEN),
        instrument_status(0, InstrumentStatus.OPEN),
        rejected(Reason.instrument_must_exist, instrument_id=9),
        rejected(Reason.instrument_must_exist, instrument_id=-1),
    ]


def test_halting_a_halted_instrument_can_still_cancel_its_book(engine: Any) -> None:
    a = rest(engine, 1, 1, BUY, 100, 10)
    engine.halt(TS, 0)
    engine.drain_events()
    assert engine.halt(TS, 0, cancel_resting=True) == 0
    assert drained(engine) == [
        instrument_status(0, InstrumentStatus.HALTED),
        cancelled(a, 10, Reason.instrument_halted),
        delta(BUY, 100, 0, 0),
    ]


# -- EVERY REJECT LEAVES THE STATE UNCHANGED --

_BASE_PLACE: dict[str, Any] = {
    "ts_ns": TS,
    "instrument_id": 0,
    "account_id": 1,
    "client_order_id": 5,
    "side": BUY,
    "price_ticks": 100,
    "quantity_lots": 10,
}

PLACE_REJECTS: list[tuple[str, dict[str, Any], Reason]] = [
    ("side-0", {"side": 0}, Reason.side_must_be_valid),
    ("side-3", {"side": 3, "quantity_lots": 0}, Reason.side_must_be_valid),
    ("order-type-0", {"order_type": 0}, Reason.order_type_must_be_valid),
    ("order-type-3", {"order_type": 3, "account_id": -1}, Reason.order_type_must_be_valid),
    ("tif-0", {"time_in_force": 0}, Reason.time_in_force_must_be_valid),
    ("tif-5", {"time_in_force": 5}, Reason.time_in_force_must_be_valid),
    ("stp-0", {"stp_mode": 0}, Reason.stp_mode_must_be_valid),
    ("stp-5", {"stp_mode": 5, "instrument_id": 9}, Reason.stp_mode_must_be_valid),
    ("account-negative", {"account_id": -1}, Reason.account_id_must_be_in_range),
    (
        "account-max",
        {"account_id": 1 << 20, "instrument_id": 9},
        Reason.account_id_must_be_in_range,
    ),
    ("instrument-absent", {"instrument_id": 5}, Reason.instrument_must_exist),
    ("instrument-negative", {"instrument_id": -1}, Reason.instrument_must_exist),
    ("instrument-off-table", {"instrument_id": 1 << 12}, Reason.instrument_must_exist),
    ("instrument-halted", {"instrument_id": 1, "quantity_lots": 0}, Reason.instrument_must_be_open),
    ("quantity-0", {"quantity_lots": 0, "price_ticks": 1}, Reason.quantity_must_be_positive),
    ("quantity-negative", {"quantity_lots": -5}, Reason.quantity_must_be_positive),
    ("quantity-step", {"quantity_lots": 12}, Reason.quantity_must_be_multiple_of_increment),
    ("quantity-min", {"quantity_lots": 5}, Reason.quantity_must_be_at_least_minimum),
    ("quantity-max", {"quantity_lots": 1_005}, Reason.quantity_must_be_at_most_maximum),
    ("price-step", {"price_ticks": 101}, Reason.price_must_be_multiple_of_increment),
    ("price-0", {"price_ticks": 0}, Reason.price_must_be_within_band),
    ("price-negative", {"price_ticks": -5}, Reason.price_must_be_within_band),
    ("price-above", {"price_ticks": 1_005}, Reason.price_must_be_within_band),
    (
        "notional",
        {"price_ticks": 10, "quantity_lots": 10},
        Reason.notional_must_be_at_least_minimum,
    ),
    (
        "market-gtc",
        {"order_type": MARKET, "price_ticks": 101, "post_only": True},
        Reason.market_order_must_be_ioc_or_fok,
    ),
    (
        "post-only-ioc",
        {"post_only": True, "time_in_force": IOC},
        Reason.post_only_order_must_be_gtc_or_gtd_limit,
    ),
    (
        "post-only-market",
        {"post_only": True, "order_type": MARKET, "time_in_force": FOK},
        Reason.post_only_order_must_be_gtc_or_gtd_limit,
    ),
    ("gtd-no-expiry", {"time_in_force": GTD}, Reason.expire_time_must_be_given_for_gtd_only),
    (
        "gtc-with-expiry",
        {"expire_ts_ns": TS + 1, "client_order_id": 7},
        Reason.expire_time_must_be_given_for_gtd_only,
    ),
    (
        "gtd-past",
        {"time_in_force": GTD, "expire_ts_ns": TS},
        Reason.expire_time_must_be_in_future,
    ),
    ("client-id-taken", {"client_order_id": 7}, Reason.client_order_id_must_be_unique),
    (
        "client-id-taken-ioc",
        {"client_order_id": 7, "time_in_force": IOC, "post_only": False},
        Reason.client_order_id_must_be_unique,
    ),
    (
        "post-only-crosses",
        {"post_only": True, "price_ticks": 105},
        Reason.post_only_order_must_not_cross,
    ),
]


def _reject_book(engine: Any, standard_instrument: Any) -> None:
    """A book where every place reject is reachable: an ask at 105, account 1's client id 7."""
    standard_instrument(engine, 1)
    engine.advance_time(TS)
    rest(engine, 2, 1, SELL, 105, 10)
    rest(engine, 1, 7, BUY, 95, 20)
    rest(engine, 1, 8, BUY, 90, 10, post_only=True)
    rest(engine, 1, 9, BUY, 100, 10, instrument_id=1)
    rest(engine, 1, 0, BUY, 85, 10)
    engine.halt(TS, 1)
    engine.drain_events()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [case[1:] for case in PLACE_REJECTS],
    ids=[case[0] for case in PLACE_REJECTS],
)
def test_every_place_reject(
    engine: Any, standard_instrument: Any, changes: dict[str, Any], reason: Reason
) -> None:
    _reject_book(engine, standard_instrument)
    before, seq = hash_without_seq(engine), seq_of(engine)
    command = {**_BASE_PLACE, **changes}
    assert engine.place(**command) == 0
    market = command.get("order_type") == MARKET
    assert drained(engine) == [
        rejected(
            reason,
            account_id=command["account_id"],
            client_order_id=command["client_order_id"],
            instrument_id=command["instrument_id"],
            side=command["side"],
            price_ticks=0 if market else command["price_ticks"],
            quantity_lots=command["quantity_lots"],
        )
    ]
    assert hash_without_seq(engine) == before
    assert seq_of(engine) == seq + 1


def test_a_market_order_with_any_price_is_accepted(engine: Any) -> None:
    order = place(engine, 1, 1, BUY, 101, 10, order_type=MARKET, time_in_force=IOC)
    assert drained(engine)[0] == accepted(order, 10)
    assert order.price_ticks == 0


AMEND_REJECTS: list[tuple[str, int, int, int, int, Reason]] = [
    # (id, account, client order id of the target, price, quantity, reason)
    ("account-negative", -1, 7, 0, 10, Reason.account_id_must_be_in_range),
    ("unknown-order", 1, -1, 0, 10, Reason.order_must_exist),
    ("order-id-0", 1, 0, 0, 10, Reason.order_must_exist),
    ("other-account", 2, 7, 0, 10, Reason.order_must_belong_to_account),
    ("halted", 1, 9, 0, 5, Reason.instrument_must_be_open),
    ("quantity-0", 1, 7, 0, 0, Reason.quantity_must_be_positive),
    ("quantity-step", 1, 7, 101, 12, Reason.quantity_must_be_multiple_of_increment),
    ("quantity-max", 1, 7, 0, 1_005, Reason.quantity_must_be_at_most_maximum),
    ("price-step", 1, 7, 101, 10, Reason.price_must_be_multiple_of_increment),
    ("price-above", 1, 7, 1_005, 10, Reason.price_must_be_within_band),
    ("price-negative", 1, 7, -5, 10, Reason.price_must_be_within_band),
    ("no-change", 1, 7, 0, 20, Reason.amend_must_change_order),
    ("no-change-same-price", 1, 7, 95, 20, Reason.amend_must_change_order),
    ("post-only-crosses", 1, 8, 105, 10, Reason.post_only_order_must_not_cross),
]


@pytest.mark.parametrize(
    ("account_id", "client_order_id", "price_ticks", "quantity_lots", "reason"),
    [case[1:] for case in AMEND_REJECTS],
    ids=[case[0] for case in AMEND_REJECTS],
)
def test_every_amend_reject(
    engine: Any,
    standard_instrument: Any,
    account_id: int,
    client_order_id: int,
    price_ticks: int,
    quantity_lots: int,
    reason: Reason,
) -> None:
    _reject_book(engine, standard_instrument)
    ids = {o["client_order_id"]: o["order_id"] for o in engine.open_orders(1)}
    # -1: an id no order has; 0: order id 0, while account 1 rests client order id 0.
    order_id = {-1: 999, 0: 0}[client_order_id] if client_order_id <= 0 else ids[client_order_id]
    before, seq = hash_without_seq(engine), seq_of(engine)
    assert engine.amend(TS, account_id, order_id, price_ticks, quantity_lots) == reason
    assert drained(engine) == [
        rejected(
            reason,
            order_id=order_id,
            account_id=account_id,
            price_ticks=price_ticks,
            quantity_lots=quantity_lots,
        )
    ]
    assert hash_without_seq(engine) == before
    assert seq_of(engine) == seq + 1


def test_amend_of_a_post_only_order_that_does_not_cross(engine: Any) -> None:
    rest(engine, 2, 1, SELL, 105, 10)
    a = rest(engine, 1, 1, BUY, 90, 10, post_only=True)
    assert engine.amend(TS, 1, a.order_id, 100, 10) == 0
    assert engine.amend(TS, 1, a.order_id, 0, 20) == 0  # same price: no cross check needed


INSTRUMENT_REJECTS: list[tuple[str, int, dict[str, int], Reason]] = [
    ("id-negative", -1, {}, Reason.instrument_id_must_be_in_range),
    ("id-max", 1 << 12, {}, Reason.instrument_id_must_be_in_range),
    ("exists", 0, {"price_increment_ticks": 0}, Reason.instrument_must_not_exist),
    ("price-step-0", 1, {"price_increment_ticks": 0}, Reason.instrument_parameters_must_be_valid),
    (
        "quantity-step-0",
        1,
        {"quantity_increment_lots": 0},
        Reason.instrument_parameters_must_be_valid,
    ),
    ("quantity-min-0", 1, {"quantity_min_lots": 0}, Reason.instrument_parameters_must_be_valid),
    ("min-above-max", 1, {"quantity_min_lots": 2_000}, Reason.instrument_parameters_must_be_valid),
    ("notional-negative", 1, {"notional_min": -1}, Reason.instrument_parameters_must_be_valid),
    ("band-min-0", 1, {"price_min_ticks": 0}, Reason.instrument_parameters_must_be_valid),
    ("band-reversed", 1, {"price_min_ticks": 2_000}, Reason.instrument_parameters_must_be_valid),
    ("band-min-step", 1, {"price_min_ticks": 7}, Reason.instrument_parameters_must_be_valid),
    ("band-max-step", 1, {"price_max_ticks": 999}, Reason.instrument_parameters_must_be_valid),
    (
        "too-many-levels",
        1,
        {"price_increment_ticks": 1, "price_min_ticks": 1, "price_max_ticks": (1 << 24) + 1},
        Reason.price_levels_must_not_exceed_maximum,
    ),
]


@pytest.mark.parametrize(
    ("instrument_id", "changes", "reason"),
    [case[1:] for case in INSTRUMENT_REJECTS],
    ids=[case[0] for case in INSTRUMENT_REJECTS],
)
def test_every_add_instrument_reject(
    engine: Any,
    standard_parameters: dict[str, int],
    instrument_id: int,
    changes: dict[str, int],
    reason: Reason,
) -> None:
    engine.advance_time(TS)
    rest(engine, 1, 1, BUY, 100, 10)
    before, seq = hash_without_seq(engine), seq_of(engine)
    assert engine.add_instrument(instrument_id, **{**standard_parameters, **changes}) == reason
    assert drained(engine) == [rejected(reason, instrument_id=instrument_id)]
    assert hash_without_seq(engine) == before
    assert seq_of(engine) == seq + 1


def test_add_instrument_event_carries_engine_time(
    engine: Any, standard_parameters: dict[str, int]
) -> None:
    engine.advance_time(TS + 7)
    assert engine.add_instrument(3, **standard_parameters) == 0
    assert drained(engine) == [instrument_status(3, InstrumentStatus.OPEN, ts_ns=TS + 7)]
    assert engine.bbo(3) == (0, 0, 0, 0)


# -- CAPACITY LIMITS --


def test_orders_per_book_max(make_engine: Any, standard_instrument: Any) -> None:
    engine = make_engine(EngineLimits(orders_per_book_max=2))
    standard_instrument(engine, 0)
    standard_instrument(engine, 1)
    rest(engine, 1, 1, BUY, 100, 10)
    rest(engine, 1, 2, SELL, 105, 10)
    before = hash_without_seq(engine)
    assert engine.place(TS, 0, 2, 1, BUY, 95, 10) == 0
    # Checked whenever the order may rest, even if it would trade in full.
    assert engine.place(TS, 0, 2, 2, BUY, 105, 10, time_in_force=GTD, expire_ts_ns=TS + 9) == 0
    assert [e["reason"] for e in drained(engine)] == [Reason.book_must_have_capacity] * 2
    assert hash_without_seq(engine) == before
    place(engine, 2, 3, BUY, 105, 10, time_in_force=IOC)  # may not rest: no capacity needed
    rest(engine, 2, 4, BUY, 95, 10)  # the IOC freed a place
    rest(engine, 2, 5, BUY, 95, 10, instrument_id=1)  # another book


def test_orders_max(make_engine: Any, standard_instrument: Any) -> None:
    engine = make_engine(EngineLimits(orders_max=3, orders_per_book_max=2))
    standard_instrument(engine, 0)
    standard_instrument(engine, 1)
    first = rest(engine, 1, 1, BUY, 100, 10)
    rest(engine, 1, 2, BUY, 95, 10)
    rest(engine, 1, 3, BUY, 95, 10, instrument_id=1)
    assert engine.place(TS, 0, 2, 1, BUY, 90, 10) == 0  # the book check comes first
    assert engine.place(TS, 1, 2, 1, BUY, 90, 10) == 0
    assert [e["reason"] for e in drained(engine)] == [
        Reason.book_must_have_capacity,
        Reason.engine_must_have_order_capacity,
    ]
    engine.cancel(TS, 1, order_id=first.order_id)
    engine.drain_events()
    rest(engine, 2, 1, BUY, 90, 10, instrument_id=1)


def test_accounts_max(make_engine: Any, standard_instrument: Any) -> None:
    engine = make_engine(EngineLimits(accounts_max=3))
    standard_instrument(engine)
    rest(engine, 2, 1, BUY, 100, 10)
    assert engine.place(TS, 0, 3, 1, BUY, 100, 10) == 0
    assert engine.cancel(TS, 3, order_id=1) == Reason.account_id_must_be_in_range
    assert engine.amend(TS, 3, 1, 0, 5) == Reason.account_id_must_be_in_range
    assert engine.mass_cancel(TS, 3) == -Reason.account_id_must_be_in_range
    reasons = [e["reason"] for e in drained(engine)]
    assert reasons == [Reason.account_id_must_be_in_range] * 4
    assert engine.open_orders(3) == []


def test_instruments_max(make_engine: Any, standard_parameters: dict[str, int]) -> None:
    engine = make_engine(EngineLimits(instruments_max=2))
    assert engine.add_instrument(1, **standard_parameters) == 0
    assert engine.add_instrument(2, **standard_parameters) == Reason.instrument_id_must_be_in_range
    assert engine.place(TS, 2, 1, 1, BUY, 100, 10) == 0
    assert [e["reason"] for e in drained(engine)] == [
        0,
        Reason.instrument_id_must_be_in_range,
        Reason.instrument_must_exist,
    ]
    with pytest.raises(KeyError):
        engine.bbo(2)


def test_price_levels_max(make_engine: Any, standard_parameters: dict[str, int]) -> None:
    engine = make_engine(EngineLimits(price_levels_max=10))
    band = {**standard_parameters, "price_min_ticks": 5}
    assert engine.add_instrument(0, **{**band, "price_max_ticks": 50}) == 0  # 10 levels
    assert (
        engine.add_instrument(1, **{**band, "price_max_ticks": 55})
        == Reason.price_levels_must_not_exceed_maximum
    )


# -- BOOK DELTAS --


def test_book_deltas_coalesce_per_level_in_first_touch_order(engine: Any) -> None:
    rest(engine, 1, 1, SELL, 105, 10)
    rest(engine, 2, 1, SELL, 100, 10)
    rest(engine, 3, 1, SELL, 100, 20)
    rest(engine, 1, 2, SELL, 100, 10)
    place(engine, 4, 1, BUY, 105, 45)
    events = drained(engine)
    kinds = [EventKind.ACCEPTED] + [EventKind.FILLED] * 4 + [EventKind.BOOK_DELTA] * 2
    assert [e["kind"] for e in events] == kinds
    # One delta per level, the level touched first (100) first, whatever the touches between.
    assert events[-2:] == [delta(SELL, 100, 0, 0), delta(SELL, 105, 5, 1)]


def test_no_delta_for_a_level_that_did_not_change(engine: Any) -> None:
    rest(engine, 1, 1, SELL, 100, 10)
    taker = place(engine, 1, 2, BUY, 100, 10)  # CANCEL_TAKER at the first maker
    assert drained(engine) == [
        accepted(taker, 10),
        cancelled(taker, 10, Reason.self_trade_prevented),
    ]


def test_book_delta_counts_orders(engine: Any) -> None:
    rest(engine, 1, 1, BUY, 100, 10)
    second = place(engine, 2, 1, BUY, 100, 15)
    assert drained(engine) == [accepted(second, 15), delta(BUY, 100, 25, 2)]


# -- QUERIES --


def test_bbo_and_depth(engine: Any) -> None:
    assert engine.bbo(0) == (0, 0, 0, 0)
    assert engine.depth(0, 5) == ([], [])
    rest(engine, 1, 1, BUY, 100, 10)
    rest(engine, 2, 1, BUY, 100, 15)
    rest(engine, 1, 2, BUY, 90, 10)
    rest(engine, 1, 3, BUY, 95, 10)
    rest(engine, 3, 1, SELL, 110, 20)
    rest(engine, 3, 2, SELL, 120, 10)
    assert engine.bbo(0) == (100, 25, 110, 20)
    assert engine.depth(0, 2) == ([(100, 25, 2), (95, 10, 1)], [(110, 20, 1), (120, 10, 1)])
    assert engine.depth(0, 10)[0] == [(100, 25, 2), (95, 10, 1), (90, 10, 1)]
    assert engine.depth(0, 0) == ([], [])
    for query in (lambda: engine.bbo(7), lambda: engine.depth(7, 1), lambda: engine.bbo(-1)):
        with pytest.raises(KeyError):
            query()


def test_order_and_open_orders(engine: Any, standard_instrument: Any) -> None:
    standard_instrument(engine, 1)
    a = rest(engine, 1, 11, BUY, 100, 20, stp_group=3, stp_mode=StpMode.CANCEL_BOTH)
    b = rest(engine, 1, 12, SELL, 200, 10, instrument_id=1, time_in_force=GTD,
             expire_ts_ns=TS + 99, post_only=True)  # fmt: skip
    rest(engine, 2, 1, SELL, 100, 10)  # fills 10 of a
    assert engine.order(a.order_id) == {
        "order_id": a.order_id,
        "account_id": 1,
        "client_order_id": 11,
        "price_ticks": 100,
        "leaves_lots": 10,
        "filled_lots": 10,
        "expire_ts_ns": 0,
        "instrument_id": 0,
        "stp_group": 3,
        "side": BUY,
        "order_type": LIMIT,
        "time_in_force": GTC,
        "stp_mode": StpMode.CANCEL_BOTH,
        "post_only": 0,
        "status": OrderStatus.PARTIALLY_FILLED,
    }
    assert [o["order_id"] for o in engine.open_orders(1)] == [a.order_id, b.order_id]
    second = engine.open_orders(1)[1]
    assert (second["status"], second["post_only"], second["expire_ts_ns"]) == (
        OrderStatus.NEW,
        1,
        TS + 99,
    )
    assert engine.order(3) is None  # filled in full
    assert engine.order(0) is None
    assert engine.order(999) is None
    assert engine.open_orders(2) == []
    assert engine.open_orders(-1) == []


# -- SNAPSHOTS --


def _rich_state(engine: Any, standard_instrument: Any) -> None:
    """Both sides, several levels, partial fills, GTD, groups, post-only, a halted book."""
    standard_instrument(engine, 1)
    standard_instrument(engine, 3, price_increment_ticks=1, price_min_ticks=1)
    rest(engine, 1, 1, BUY, 100, 20)
    rest(engine, 2, 1, BUY, 100, 10, stp_group=4)
    rest(engine, 3, 1, BUY, 95, 30, time_in_force=GTD, expire_ts_ns=TS + 50)
    rest(engine, 1, 2, SELL, 110, 20, post_only=True)
    rest(engine, 2, 2, SELL, 105, 10, time_in_force=GTD, expire_ts_ns=TS + 20)
    rest(engine, 4, 1, SELL, 100, 15)  # partial fills at 100
    rest(engine, 1, 3, BUY, 7, 100, instrument_id=3, stp_mode=StpMode.DECREMENT_AND_CANCEL)
    rest(engine, 2, 3, SELL, 200, 10, instrument_id=1)
    engine.halt(TS, 1)
    engine.drain_events()


def _follow_up(engine: Any) -> list[Any]:
    """Commands after a snapshot; their events, results and final hash."""
    results = [
        engine.place(TS + 1, 0, 5, 1, SELL, 95, 60),
        engine.advance_time(TS + 20),
        engine.place(TS + 21, 0, 2, 9, BUY, 110, 40, stp_group=4),
        engine.mass_cancel(TS + 22, 1),
        engine.advance_time(TS + 50),
        engine.resume(TS + 51, 1),
        engine.place(TS + 52, 1, 1, 1, BUY, 200, 10),
    ]
    return [results, rows_of(engine.drain_events()), engine.state_hash()]


def test_snapshot_restore_gives_same_hash_and_behaviour(
    engine: Any, standard_instrument: Any
) -> None:
    _rich_state(engine, standard_instrument)
    data = engine.snapshot()
    restored = type(engine).restore(data)
    assert restored.state_hash() == engine.state_hash()
    assert restored.snapshot() == data
    assert restored.drain_events().size == 0
    assert restored.now_ts_ns == engine.now_ts_ns
    for account_id in range(5):
        assert restored.open_orders(account_id) == engine.open_orders(account_id)
    for instrument_id in (0, 1, 3):
        assert restored.depth(instrument_id, 10) == engine.depth(instrument_id, 10)
    assert _follow_up(restored) == _follow_up(engine)


def test_snapshot_restores_into_the_other_implementation(
    engine: Any, standard_instrument: Any, core_class: Any
) -> None:
    _rich_state(engine, standard_instrument)
    other: Any = core_class if isinstance(engine, ReferenceEngine) else ReferenceEngine
    restored = other.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    assert _follow_up(restored) == _follow_up(engine)


def test_snapshot_of_a_fresh_engine(make_engine: Any) -> None:
    engine = make_engine()
    restored = type(engine).restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    state = decode_state(engine.snapshot())
    assert (state.seq, state.next_order_id, state.next_trade_id, state.now_ts_ns) == (0, 1, 1, 0)


def test_corrupted_or_truncated_snapshot_raises(engine: Any, standard_instrument: Any) -> None:
    _rich_state(engine, standard_instrument)
    data = engine.snapshot()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    bad_magic = b"X" + data[1:]
    for broken in (bytes(flipped), data[:-1], data[:10], b"", data + b"\x00", bad_magic):
        with pytest.raises(SnapshotError):
            type(engine).restore(broken)


def test_snapshot_that_does_not_fit_the_limits_raises(
    engine: Any, standard_instrument: Any
) -> None:
    _rich_state(engine, standard_instrument)
    data = engine.snapshot()
    for limits in (
        EngineLimits(instruments_max=2),
        EngineLimits(orders_max=3),
        EngineLimits(accounts_max=2),
        EngineLimits(price_levels_max=100),
    ):
        with pytest.raises(SnapshotError):
            type(engine).restore(data, limits)


# -- EVENTS, SEQ AND THE BATCH PATH --


def test_seq_runs_on_over_commands_and_drains(make_engine: Any, standard_instrument: Any) -> None:
    engine = make_engine()
    engine.add_instrument(0, price_increment_ticks=1, quantity_increment_lots=1,
                          quantity_min_lots=1, quantity_max_lots=10, notional_min=0,
                          price_min_ticks=1, price_max_ticks=10)  # fmt: skip
    engine.place(1, 0, 1, 1, BUY, 5, 1)
    first = engine.drain_events()["seq"].tolist()
    engine.place(2, 0, 1, 1, BUY, 5, 1)  # rejected: still one seq
    engine.place(3, 0, 2, 1, SELL, 5, 1)
    second = engine.drain_events()["seq"].tolist()
    assert first == [1, 2, 3]
    assert second == list(range(4, 4 + len(second)))


def _command(kind: int, **fields: int) -> tuple[int, ...]:
    row = dict.fromkeys(COMMAND_DTYPE.names or (), 0)
    row.update(fields, kind=kind)
    return tuple(int(row[name]) for name in COMMAND_DTYPE.names or ())


SCRIPT: list[dict[str, int]] = [
    {"kind": CommandKind.PLACE, "ts_ns": TS, "account_id": 1, "client_order_id": 1,
     "side": BUY, "price_ticks": 100, "quantity_lots": 20, "order_type": LIMIT,
     "time_in_force": GTC, "stp_mode": StpMode.CANCEL_TAKER},
    {"kind": CommandKind.PLACE, "ts_ns": TS, "account_id": 2, "client_order_id": 1,
     "side": SELL, "price_ticks": 105, "quantity_lots": 20, "order_type": LIMIT,
     "time_in_force": GTD, "expire_ts_ns": TS + 10, "stp_mode": StpMode.CANCEL_MAKER},
    {"kind": CommandKind.PLACE, "ts_ns": TS + 1, "account_id": 3, "client_order_id": 1,
     "side": SELL, "price_ticks": 0, "quantity_lots": 15, "order_type": MARKET,
     "time_in_force": IOC, "stp_mode": StpMode.CANCEL_BOTH},
    {"kind": CommandKind.AMEND, "ts_ns": TS + 2, "account_id": 1, "order_id": 1,
     "price_ticks": 105, "quantity_lots": 30},
    {"kind": CommandKind.PLACE, "ts_ns": TS + 2, "account_id": 1, "client_order_id": 2,
     "side": 9, "price_ticks": 100, "quantity_lots": 20, "order_type": LIMIT,
     "time_in_force": GTC, "stp_mode": StpMode.CANCEL_TAKER},
    {"kind": CommandKind.CANCEL, "ts_ns": TS + 3, "account_id": 1, "client_order_id": 1},
    {"kind": CommandKind.HALT, "ts_ns": TS + 3, "instrument_id": 0, "cancel_resting": 1},
    {"kind": CommandKind.RESUME, "ts_ns": TS + 4, "instrument_id": 0},
    {"kind": CommandKind.PLACE, "ts_ns": TS + 5, "account_id": 2, "client_order_id": 3,
     "side": BUY, "price_ticks": 95, "quantity_lots": 10, "order_type": LIMIT,
     "time_in_force": GTD, "expire_ts_ns": TS + 8, "stp_mode": StpMode.CANCEL_TAKER},
    {"kind": CommandKind.MASS_CANCEL, "ts_ns": TS + 6, "account_id": 4, "instrument_id": -1},
    {"kind": CommandKind.ADVANCE_TIME, "ts_ns": TS + 9},
    {"kind": CommandKind.CANCEL, "ts_ns": TS + 9, "account_id": 2, "order_id": 77},
]  # fmt: skip


def _per_call(engine: Any, row: dict[str, int]) -> None:
    kind = row["kind"]
    get = row.get
    if kind == CommandKind.PLACE:
        engine.place(get("ts_ns", 0), get("instrument_id", 0), get("account_id", 0),
                     get("client_order_id", 0), get("side", 0), get("price_ticks", 0),
                     get("quantity_lots", 0), order_type=get("order_type", 0),
                     time_in_force=get("time_in_force", 0), expire_ts_ns=get("expire_ts_ns", 0),
                     post_only=bool(get("post_only", 0)), stp_group=get("stp_group", 0),
                     stp_mode=get("stp_mode", 0))  # fmt: skip
    elif kind == CommandKind.CANCEL:
        engine.cancel(get("ts_ns", 0), get("account_id", 0), get("order_id", 0),
                      get("client_order_id", 0))  # fmt: skip
    elif kind == CommandKind.AMEND:
        engine.amend(get("ts_ns", 0), get("account_id", 0), get("order_id", 0),
                     get("price_ticks", 0), get("quantity_lots", 0))  # fmt: skip
    elif kind == CommandKind.MASS_CANCEL:
        engine.mass_cancel(get("ts_ns", 0), get("account_id", 0), get("instrument_id", 0))
    elif kind == CommandKind.HALT:
        engine.halt(get("ts_ns", 0), get("instrument_id", 0), bool(get("cancel_resting", 0)))
    elif kind == CommandKind.RESUME:
        engine.resume(get("ts_ns", 0), get("instrument_id", 0))
    else:
        engine.advance_time(get("ts_ns", 0))


def test_batch_gives_the_same_events_as_per_call(
    make_engine: Any, standard_instrument: Any
) -> None:
    per_call, batch = make_engine(), make_engine()
    for engine in (per_call, batch):
        standard_instrument(engine)
    for row in SCRIPT:
        _per_call(per_call, row)
    expected = rows_of(per_call.drain_events())
    commands = np.array([_command(**row) for row in SCRIPT], dtype=COMMAND_DTYPE)
    events = rows_of(batch.process(commands))
    assert [{**e, "command_index": 0} for e in events] == expected
    assert batch.state_hash() == per_call.state_hash()
    assert batch.drain_events().size == 0
    # command_index names the causing row: its ACCEPTED or REJECTED tells which.
    firsts = {e["command_index"]: e for e in reversed(events)}
    assert firsts[4]["reason"] == Reason.side_must_be_valid
    assert {e["command_index"] for e in events} <= set(range(len(SCRIPT)))


def test_batch_rejects_an_invalid_kind_after_moving_time(
    make_engine: Any, standard_instrument: Any
) -> None:
    engine = make_engine()
    standard_instrument(engine)
    gtd = rest(engine, 1, 1, BUY, 100, 10, time_in_force=GTD, expire_ts_ns=TS + 5)
    commands = np.zeros(3, dtype=COMMAND_DTYPE)
    commands[1] = _command(0, ts_ns=TS + 5, account_id=3, order_id=4, instrument_id=2,
                           price_ticks=7, quantity_lots=8, side=1, client_order_id=9)  # fmt: skip
    commands[2] = _command(42, ts_ns=TS + 6)
    events = rows_of(engine.process(commands))
    t = TS + 5
    assert [{k: v for k, v in e.items() if k != "seq"} for e in events] == [
        rejected(Reason.command_kind_must_be_valid, ts_ns=TS),
        {**cancelled(gtd, 10, Reason.order_expired, ts_ns=t), "command_index": 1},
        {**delta(BUY, 100, 0, 0, ts_ns=t), "command_index": 1},
        {**rejected(Reason.command_kind_must_be_valid, ts_ns=t, account_id=3, order_id=4,
                    instrument_id=2, price_ticks=7, quantity_lots=8, side=1,
                    client_order_id=9), "command_index": 1},
        {**rejected(Reason.command_kind_must_be_valid, ts_ns=TS + 6), "command_index": 2},
    ]  # fmt: skip


def test_batch_events_do_not_enter_the_drain_buffer(engine: Any) -> None:
    engine.place(TS, 0, 1, 1, BUY, 100, 10)
    events = engine.process(
        np.array([_command(CommandKind.ADVANCE_TIME, ts_ns=TS + 1)], dtype=COMMAND_DTYPE)
    )
    assert events.size == 0 and events.dtype == EVENT_DTYPE
    assert [e["kind"] for e in drained(engine)] == [EventKind.ACCEPTED, EventKind.BOOK_DELTA]
    assert engine.drain_events().size == 0


def test_batch_place_reject_reports_order_id_zero(engine: Any) -> None:
    # The record's order_id is not a field of a place: its REJECTED says 0 whatever it holds.
    row = _command(
        CommandKind.PLACE,
        ts_ns=TS,
        order_id=77,
        account_id=1,
        client_order_id=1,
        side=BUY,
        price_ticks=100,
        quantity_lots=0,
        order_type=LIMIT,
        time_in_force=GTC,
        stp_mode=StpMode.CANCEL_TAKER,
    )
    events = rows_of(engine.process(np.array([row], dtype=COMMAND_DTYPE)))
    assert [{k: v for k, v in e.items() if k != "seq"} for e in events] == [
        rejected(
            Reason.quantity_must_be_positive,
            account_id=1,
            client_order_id=1,
            side=BUY,
            price_ticks=100,
        )
    ]


def test_per_call_arguments_outside_their_fields(engine: Any) -> None:
    # One-byte enums that do not fit become 0 (invalid); other integers must fit.
    assert engine.place(TS, 0, 1, 1, 257, 100, 10) == 0
    assert engine.place(TS, 0, 1, 1, BUY, 100, 10, stp_mode=-1) == 0
    assert drained(engine) == [
        rejected(
            Reason.side_must_be_valid,
            account_id=1,
            client_order_id=1,
            price_ticks=100,
            quantity_lots=10,
        ),
        rejected(
            Reason.stp_mode_must_be_valid,
            account_id=1,
            client_order_id=1,
            side=BUY,
            price_ticks=100,
            quantity_lots=10,
        ),
    ]
    for call in (
        lambda: engine.place(TS, 1 << 31, 1, 1, BUY, 100, 10),
        lambda: engine.place(TS, 0, 1, 1, BUY, 100, 10, stp_group=1 << 31),
        lambda: engine.place(TS, 0, 1 << 63, 1, BUY, 100, 10),
        lambda: engine.cancel(TS, 1, order_id=-(1 << 63) - 1),
        lambda: engine.mass_cancel(TS, 1, instrument_id=-(1 << 31) - 1),
    ):
        with pytest.raises(OverflowError):
            call()
    assert engine.drain_events().size == 0


def test_snapshot_that_would_reuse_ids_or_overfill_a_book_raises(
    make_engine: Any, standard_instrument: Any
) -> None:
    """A restored engine must never hand out an id again, nor hold more than its limits allow."""
    source = make_engine()
    standard_instrument(source)
    for client_order_id in (1, 2, 3):
        assert source.place(TS, 0, 1, client_order_id, Side.BUY, 100, 10)
    state = decode_state(source.snapshot())

    stale = encode_state(dataclasses.replace(state, next_order_id=3))
    with pytest.raises(SnapshotError, match="next_order_id"):
        type(source).restore(stale)
    with pytest.raises(SnapshotError, match="orders_per_book_max"):
        type(source).restore(source.snapshot(), EngineLimits(orders_per_book_max=2))
