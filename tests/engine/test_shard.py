"""The shard's deterministic step: money is conserved and every outcome replays exactly.

Goal: find any journal on which `engine.shard.Shard` crashes, breaks a money invariant (an open
order holding other than exactly what it can still spend, a negative customer bucket, an asset
whose balances do not sum to zero), writes transfer rows from which a ledger would compute other
balances, or stops being deterministic: the Cython core and the reference book disagree, or a
shard restored from a snapshot goes on differently.

Method:

- A Hypothesis ``RuleBasedStateMachine`` journals random entries of 1-8 commands on the demo
  market: limit and market places of every time in force (GTD expiring as time moves), post-only,
  each STP mode and group; cancels by order id and by client order id, known and unknown; amends
  of price and quantity up and down; mass cancels of one account and of all; halts and resumes;
  the kill switch; risk limits; deposits (ids repeat); withdrawals held, settled, released (ids
  unknown or reused, amounts too large); time moving (an entry's time now and then beyond
  int64); a third market defined mid-run, and definitions that clash; now and then a value
  outside its field's range. Each entry goes through msgpack first, so it holds only what a
  journal can carry (integers in [-2**63, 2**64)). Accounts 10-12 are funded, 13 barely, 14 not
  at all, so funds rejects are common. The same entry goes to three shards: on the core, on the
  reference book, and one restored from its own snapshot (into either core) at random steps.
  After each entry: the shard's invariants and more (core and risk agree on every open order's
  price and leaves; every command has its one outcome; every REJECTED row has a reason; every
  accepted order's hold was transferred; each transfer kind moves between the buckets it
  should; market data sequences have no gap); the transfer rows replayed onto a balance map
  reproduce the shard's balances exactly, which is what the ledger does; and the three shards
  give identical event rows, transfers, market data and state hashes.
- A journal generated the same way is cut at every entry k: restore(snapshot at k) + entries
  k+1..N must give the straight run's rows and hash, into the core and into the reference book.
- Exact scenarios pin the money of each path by hand-computed amounts: price improvement, taker
  and maker fees, a market buy's hold at the top of the band, the kill switch, amends up and
  down, withdrawals, a repeated deposit id; and regressions of the bugs this file found.

HYPOTHESIS_PROFILE=long (tests/engine/conftest.py) runs many more examples and longer machine runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import msgspec
import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from engine._codes import (
    EventKind,
    OrderStatus,
    OrderType,
    Reason,
    Side,
    StpMode,
    TimeInForce,
    TransferKind,
)
from engine._core import Engine
from engine._limits import EngineLimits
from engine.markets import BTC, ETH, FUNDING, INSTRUMENTS, USDT, funding_commands, market_commands
from engine.messages import (
    ENCODER,
    JOURNAL_DECODER,
    AdvanceTime,
    AmendOrder,
    CancelOrder,
    Command,
    DefineAsset,
    DefineInstrument,
    Deposit,
    HaltInstrument,
    HoldWithdrawal,
    JournalEntry,
    MassCancel,
    PlaceOrder,
    ReleaseWithdrawal,
    ResumeInstrument,
    SetKillSwitch,
    SetRiskLimits,
    SettleWithdrawal,
)
from engine.reference import ReferenceEngine
from engine.risk import EXTERNAL_ACCOUNT_ID, FEE_ACCOUNT_ID
from engine.shard import Applied, Shard

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
HOLD, RELEASE, TRADE, FEE = (
    TransferKind.HOLD,
    TransferKind.RELEASE,
    TransferKind.TRADE,
    TransferKind.FEE,
)
DEPOSIT, WITHDRAWAL = TransferKind.DEPOSIT, TransferKind.WITHDRAWAL

FUNDED = [10, 11, 12]
BARE = 13  # 200 USDT, 10 lots of BTC and of ETH: a few orders, then funds rejects
UNFUNDED = 14
ACCOUNTS = [*FUNDED, BARE, UNFUNDED]
BARE_FUNDING = [
    Deposit(account_id=BARE, asset_id=USDT, amount_minor=200 * 10**6, deposit_id="bare:usdt"),
    Deposit(account_id=BARE, asset_id=BTC, amount_minor=10**5, deposit_id="bare:btc"),
    Deposit(account_id=BARE, asset_id=ETH, amount_minor=10**6, deposit_id="bare:eth"),
]
# Prices near one mid per instrument (50,000 USDT a BTC, 3,000 an ETH), so books cross often.
MID_TICKS = {1: 500_000, 2: 300_000, 3: 500_000}
PRICE_MAX_TICKS = {d.instrument_id: d.price_max_ticks for d in INSTRUMENTS}
# Small pools: the core's capacity rejects (4024, 4025) happen too, and its invariant check,
# which walks the pools, stays cheap. The price band of the demo market needs the default ladder.
LIMITS = EngineLimits(orders_max=48, orders_per_book_max=24, accounts_max=64, instruments_max=8)
STEP_NS = 1_000  # how far time moves per step; GTD expiries are a few steps ahead
INT64_MAX = (1 << 63) - 1
# What msgpack can carry and the records cannot (or only just): the journal holds such values.
WIDE = (-(1 << 63), -1, 1 << 31, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
# Per BTC-USDT lot at one tick: 10 micro-USDT; one lot: 10,000 satoshi (engine/markets.py).
QUOTE_PER_TICK_LOT, BASE_PER_LOT = 10, 10_000


# -- STRATEGIES --
#
# Repeating a branch of one_of does not weight it (nineteen copies of one branch against one of
# another came out half and half), and flatmap builds a strategy per draw, which is slow; so
# weights are repeated sampled_from entries, and a rare value is chosen by a flag drawn alongside
# the common one.

RARELY = st.sampled_from([False] * 19 + [True])


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``common``, about once in twenty times ``rare`` (out-of-range and edge values)."""
    return st.tuples(RARELY, common, rare).map(lambda t: t[2] if t[0] else t[1])


accounts = mostly(st.sampled_from(ACCOUNTS), st.sampled_from([0, 1, 1 << 20, *WIDE]))
instruments = mostly(st.sampled_from([1, 2, 3]), st.sampled_from([0, 4, *WIDE]))
client_order_ids = st.integers(0, 9)
quantities = mostly(st.integers(1, 20), st.sampled_from([0, -5, 1_000_001, *WIDE]))
deposit_ids = st.sampled_from([f"d{i}" for i in range(6)])
withdrawal_ids = st.sampled_from([f"w{i}" for i in range(4)])
assets = mostly(st.sampled_from([BTC, ETH, USDT]), st.sampled_from([0, 4, *WIDE]))
amounts = mostly(st.integers(1, 300 * 10**6), st.sampled_from([0, -1, *WIDE]))
seldom = st.sampled_from([False] * 4 + [True])
traders = st.sampled_from([*FUNDED, *FUNDED, *FUNDED, BARE, UNFUNDED])  # books need money

# A generated command is a maker: given the shard's time, its open orders (order id, account,
# instrument) and the highest order id so far, it returns the command. The strategies are then
# built once (Hypothesis validates a strategy on first use, slow for a tree this big) and still
# name live orders and expiries a few steps ahead of the shard's time.
OpenOrders = list[tuple[int, int, int]]
Maker = Callable[[int, OpenOrders, int], Command]

# One field of an otherwise valid place set to an invalid or out-of-range value.
ODD_PLACE_FIELDS: dict[str, tuple[int, ...]] = {
    "account_id": (0, 1, 1 << 20, *WIDE),
    "instrument_id": (0, 4, *WIDE),
    "client_order_id": WIDE,
    "side": (0, 3, 256, -1),
    "order_type": (0, 3, 256),
    "time_in_force": (0, 5, -1, GTC, GTD),
    "post_only": (True,),
    "price_ticks": (0, -5, 9_999, 10_000_001, *WIDE),
    "quantity_lots": (0, -5, 1_000_001, *WIDE),
    "expire_ts_ns": (1, *WIDE),
    "stp_mode": (0, 5, 256),
    "stp_group": (1 << 31, -1),
}
# About one place in ten has one odd field: which field, then which of its values.
odd_places = st.tuples(
    st.sampled_from([False] * 9 + [True]),
    st.sampled_from(list(ODD_PLACE_FIELDS)),
    st.integers(0, max(map(len, ODD_PLACE_FIELDS.values())) - 1),
).map(
    lambda t: (t[1], ODD_PLACE_FIELDS[t[1]][t[2] % len(ODD_PLACE_FIELDS[t[1]])]) if t[0] else None
)


def _place_maker(drawn: tuple[Any, ...]) -> Maker:
    shape, offset, expire_steps, odd, account_id, client_order_id, side, quantity, stp = drawn
    instrument_id, order_type, tif = shape
    stp_mode, stp_group, post_only = stp
    order = PlaceOrder(
        account_id=account_id,
        instrument_id=instrument_id,
        client_order_id=client_order_id,
        side=side,
        order_type=order_type,
        time_in_force=tif,
        price_ticks=0 if order_type == MARKET else MID_TICKS[instrument_id] + offset,
        quantity_lots=quantity,
        post_only=tif in (GTC, GTD) and post_only,
        stp_mode=stp_mode,
        stp_group=stp_group,
    )

    def make(now_ns: int, orders: OpenOrders, order_id_max: int) -> Command:
        fields = {"expire_ts_ns": now_ns + expire_steps * STEP_NS if tif == GTD else 0}
        if odd is not None:
            fields[odd[0]] = odd[1]
        return msgspec.structs.replace(order, **fields)

    return make


# Few draws per place (generation is most of this file's time): fields that vary together
# are drawn as one choice. (instrument, order type, time in force), a limit order 7 times in 10:
PLACE_SHAPES = [
    *[(i, LIMIT, tif) for i in (1, 1, 2, 2, 3) for tif in (GTC, GTC, GTC, IOC, FOK, GTD, GTD)],
    *[(i, MARKET, tif) for i in (1, 1, 2, 2, 3) for tif in (IOC, IOC, FOK)],
]
# (STP mode, STP group, post-only):
PLACE_STP = [(m, g, p) for m in StpMode for g in (0, 0, 1, 2) for p in (False,) * 4 + (True,)]
places = st.tuples(
    st.sampled_from(PLACE_SHAPES),
    st.integers(-2, 2),  # price: ticks from mid, so that books cross often
    st.integers(-1, 4),  # GTD: steps of time ahead; 0 is now (4019), -1 the past
    odd_places,
    traders,
    client_order_ids,
    st.sampled_from([BUY, SELL]),
    st.integers(1, 20),
    st.sampled_from(PLACE_STP),
).map(_place_maker)

OrderRef = Callable[[OpenOrders, int], tuple[int, int, int]]


def _order_ref(drawn: tuple[int, int, int, int]) -> OrderRef:
    choice, pick, wide, account = drawn

    def ref(orders: OpenOrders, order_id_max: int) -> tuple[int, int, int]:
        if choice == 2 and orders:
            return orders[pick % len(orders)]
        return (wide if choice == 1 else pick % (order_id_max + 3)), account, 1

    return ref


# (order id, account id, instrument id): mostly an open order and its owner, else any order id
# up to a few past the last one (unknown, or done), or one out of range.
order_refs = st.tuples(
    st.sampled_from([2] * 6 + [0, 1]), st.integers(0, 1 << 16), st.sampled_from(WIDE), accounts
).map(_order_ref)


def _cancel_maker(drawn: tuple[OrderRef, bool, int]) -> Maker:
    ref, by_client_id, client_order_id = drawn

    def make(now_ns: int, orders: OpenOrders, order_id_max: int) -> Command:
        order_id, account_id, _ = ref(orders, order_id_max)
        if by_client_id:
            return CancelOrder(account_id=account_id, client_order_id=client_order_id)
        return CancelOrder(account_id=account_id, order_id=order_id)

    return make


cancels = st.tuples(order_refs, st.booleans(), client_order_ids).map(_cancel_maker)


def _amend_maker(drawn: tuple[OrderRef, int, int | None, int]) -> Maker:
    ref, offset, odd_price, quantity = drawn

    def make(now_ns: int, orders: OpenOrders, order_id_max: int) -> Command:
        order_id, account_id, instrument_id = ref(orders, order_id_max)
        price = MID_TICKS.get(instrument_id, MID_TICKS[1]) + offset
        return AmendOrder(
            account_id=account_id,
            order_id=order_id,
            price_ticks=price if odd_price is None else odd_price,
            quantity_lots=quantity,
        )

    return make


amends = st.tuples(
    order_refs,
    st.integers(-4, 4),
    mostly(st.sampled_from([None, None, 0]), st.sampled_from([-5, *WIDE])),  # 0 keeps the price
    quantities,
).map(_amend_maker)


def fixed(strategy: st.SearchStrategy[Command]) -> st.SearchStrategy[Maker]:
    """A command that does not depend on the shard's state."""
    return strategy.map(lambda command: lambda now_ns, orders, order_id_max: command)


# A market opened mid-run (its mid is instrument 1's: 5 BTC an ETH), and definitions that clash.
ETH_BTC = DefineInstrument(
    instrument_id=3,
    symbol="ETH-BTC",
    base_asset_id=ETH,
    quote_asset_id=BTC,
    tick_size="0.00001",  # x 0.001 ETH lots = 1 satoshi
    lot_size="0.001",
    price_min_ticks=1_000,
    price_max_ticks=1_000_000,
    quantity_max_lots=1_000_000,
    taker_fee_bps=10,
    maker_fee_bps=2,
)
# Definitions the shard must refuse (the asset or instrument would crash or trade for nothing).
BAD_DEFINITIONS: list[Command] = [
    DefineAsset(asset_id=USDT, symbol="USDT", decimals=6),  # exists (3010)
    DefineAsset(asset_id=1 << 31, symbol="WIDE", decimals=8),  # transfer rows hold 32 bits
    msgspec.structs.replace(ETH_BTC, instrument_id=4),  # the symbol exists (4028)
    msgspec.structs.replace(ETH_BTC, instrument_id=5, symbol="X", quote_asset_id=9),  # 3011
    msgspec.structs.replace(ETH_BTC, symbol="B", tick_size="0.000000001"),  # not whole (4029)
    msgspec.structs.replace(ETH_BTC, symbol="C", tick_size="1e-999999999"),  # rounds to 0
    msgspec.structs.replace(ETH_BTC, symbol="D", tick_size="1e999999999"),  # overflows
    msgspec.structs.replace(ETH_BTC, symbol="E", tick_size="1e5000"),  # beyond int64
    # Whole only once rounded to 28 digits: the units would not be the declared tick size.
    msgspec.structs.replace(ETH_BTC, symbol="F", tick_size="0.0000100000000000000000000000000001"),
    msgspec.structs.replace(ETH_BTC, symbol="G", price_max_ticks=1 << 63),
    msgspec.structs.replace(ETH_BTC, symbol="H", quantity_max_lots=(1 << 64) - 1),
    msgspec.structs.replace(ETH_BTC, symbol="I", taker_fee_bps=10_001),  # more than the whole
    msgspec.structs.replace(ETH_BTC, symbol="J", maker_fee_bps=-1),
    msgspec.structs.replace(ETH_BTC, instrument_id=-(1 << 40), symbol="K"),
]
DEFINITIONS: list[Command] = [*[ETH_BTC] * 4, *BAD_DEFINITIONS]
# In USDT minor units: 20 lots of BTC near mid are 100 USDT, a market buy of them 2,000.
notional_limits = st.sampled_from([{}, {}, {USDT: 200 * 10**6}, {USDT: 2_000 * 10**6}])
# Each kind of command, repeated by weight: places most often.
COMMAND_KINDS: list[st.SearchStrategy[Maker]] = [
    *[places] * 12,
    *[cancels] * 2,
    *[amends] * 3,
    fixed(
        st.builds(
            MassCancel,
            account_id=st.sampled_from([0, *ACCOUNTS]),  # 0: every account
            instrument_id=st.sampled_from([-1, -1, 1, 2, 3, 4]),
        )
    ),
    fixed(st.builds(HaltInstrument, instrument_id=instruments, cancel_resting=st.booleans())),
    *[fixed(st.builds(ResumeInstrument, instrument_id=instruments))] * 3,
    fixed(st.builds(SetKillSwitch, account_id=accounts, on=st.booleans())),
    fixed(st.builds(SetKillSwitch, account_id=st.sampled_from(ACCOUNTS), on=st.just(False))),
    fixed(
        st.builds(
            SetRiskLimits,
            account_id=st.sampled_from([0, *ACCOUNTS]),  # 0: the defaults of every account
            open_orders_max=st.sampled_from([0, 0, 1, 2, 4]),
            order_notional_max=notional_limits,
            open_notional_max=notional_limits,
        )
    ),
    fixed(
        st.builds(
            Deposit,
            account_id=accounts,
            asset_id=assets,
            amount_minor=amounts,
            deposit_id=deposit_ids,
        )
    ),
    fixed(
        st.builds(
            HoldWithdrawal,
            account_id=accounts,
            asset_id=assets,
            amount_minor=amounts,
            withdrawal_id=withdrawal_ids,
        )
    ),
    fixed(st.builds(SettleWithdrawal, withdrawal_id=withdrawal_ids)),
    fixed(st.builds(ReleaseWithdrawal, withdrawal_id=withdrawal_ids)),
    fixed(st.just(AdvanceTime())),
    fixed(st.sampled_from(DEFINITIONS)),
]


_command_kinds = st.sampled_from(COMMAND_KINDS)


@st.composite
def commands(draw: st.DrawFn) -> Maker:
    """One command of any kind."""
    return draw(draw(_command_kinds))


entries = st.lists(commands(), min_size=1, max_size=8)
# Steps of time per entry: an entry's ts_ns may lag (the shard's time never goes back), and
# now and then it is beyond int64 (None), which the shard must not take.
time_steps = mostly(st.integers(-1, 2), st.sampled_from([None]))


def entry_time(steps: int | None, shard: Shard) -> int:
    return WIDE[-1] if steps is None else max(0, shard.ts_ns + steps * STEP_NS)


def make_entry(makers: list[Maker], shard: Shard, ts_ns: int, order_id_max: int) -> list[Command]:
    orders = [(i, h.account_id, h.instrument_id) for i, h in sorted(shard.risk.orders.items())]
    now_ns = shard.ts_ns if ts_ns > INT64_MAX else max(ts_ns, shard.ts_ns)  # the shard's next
    return [make(now_ns, orders, order_id_max) for make in makers]


# -- CHECKS --

Ledger = dict[tuple[int, int], list[int]]  # (account, asset) -> [available, held]

# Which buckets each transfer kind moves between: (debit held, credit held).
BUCKETS = {HOLD: (0, 1), RELEASE: (1, 0), TRADE: (1, 0), DEPOSIT: (0, 0), WITHDRAWAL: (1, 0)}


def replay_transfers(ledger: Ledger, transfers: Any) -> None:
    """Apply transfer rows as the ledger does, checking each row's shape on the way."""
    for (
        amount,
        debit,
        credit,
        _,
        trade_id,
        asset,
        _,
        kind,
        debit_held,
        credit_held,
    ) in transfers.tolist():
        assert amount > 0, f"transfer of {amount}"
        if kind in BUCKETS:
            assert (debit_held, credit_held) == BUCKETS[kind], f"kind {kind} between wrong buckets"
        if kind in (HOLD, RELEASE):
            assert debit == credit
        elif kind == TRADE:
            assert debit != credit and trade_id > 0
        elif kind == FEE:
            assert credit == FEE_ACCOUNT_ID and not credit_held and trade_id > 0
        elif kind == DEPOSIT:
            assert debit == EXTERNAL_ACCOUNT_ID and credit > FEE_ACCOUNT_ID
        elif kind == WITHDRAWAL:
            assert credit == EXTERNAL_ACCOUNT_ID
        else:
            raise AssertionError(f"unknown transfer kind {kind}")
        ledger.setdefault((debit, asset), [0, 0])[debit_held] -= amount
        ledger.setdefault((credit, asset), [0, 0])[credit_held] += amount


def nonzero_balances(shard: Shard) -> Ledger:
    return {
        (account, asset): list(pair)
        for account, by_asset in shard.risk.balances.items()
        for asset, pair in by_asset.items()
        if any(pair)
    }


# The kinds that make up a command's one outcome, by command type (None: zero or more rows).
OUTCOMES: dict[type, tuple[int, ...] | None] = {
    PlaceOrder: (EventKind.ACCEPTED, EventKind.REJECTED),
    AmendOrder: (EventKind.AMENDED, EventKind.REJECTED),
    CancelOrder: (EventKind.REJECTED,),  # plus its CANCELLED cancelled_by_user, counted below
    Deposit: (EventKind.APPLIED, EventKind.REJECTED),
    HoldWithdrawal: (EventKind.APPLIED, EventKind.REJECTED),
    SettleWithdrawal: (EventKind.APPLIED, EventKind.REJECTED),
    ReleaseWithdrawal: (EventKind.APPLIED, EventKind.REJECTED),
    SetRiskLimits: (EventKind.APPLIED, EventKind.REJECTED),
    SetKillSwitch: (EventKind.APPLIED,),  # its mass cancel may add a core reject (4006, 4031)
    HaltInstrument: (EventKind.INSTRUMENT_STATUS, EventKind.REJECTED),
    ResumeInstrument: (EventKind.INSTRUMENT_STATUS, EventKind.REJECTED),
    DefineAsset: (EventKind.APPLIED, EventKind.REJECTED),
    DefineInstrument: (EventKind.APPLIED, EventKind.REJECTED),
    MassCancel: None,
    AdvanceTime: None,
}


def check_entry(shard: Shard, entry: JournalEntry, applied: Applied, ledger: Ledger) -> None:
    """Everything that must hold after one entry; `ledger` is the replay of all transfers."""
    shard.check_invariants()
    events, transfers = applied.events, applied.transfers
    index = events["command_index"]
    assert (np.diff(index) >= 0).all(), "event rows out of command order"
    assert ((index >= 0) & (index < len(entry.commands))).all()
    assert (np.diff(transfers["command_index"]) >= 0).all(), "transfers out of command order"
    rejected = events[events["kind"] == EventKind.REJECTED]
    assert (rejected["reason"] != 0).all(), "a REJECTED row without a reason"
    assert (rejected["status"] == OrderStatus.REJECTED).all()

    for i, command in enumerate(entry.commands):
        kinds = OUTCOMES[type(command)]
        if kinds is None:
            continue
        mine = events[index == i]
        count = int(np.isin(mine["kind"], kinds).sum())
        if isinstance(command, CancelOrder):
            cancelled = (mine["kind"] == EventKind.CANCELLED) & (
                mine["reason"] == Reason.cancelled_by_user
            )
            count += int(cancelled.sum())
        if isinstance(command, SetKillSwitch):  # refused for the exchange's own accounts
            count += int((mine["reason"] == Reason.account_must_be_a_customer).sum())
        assert count == 1, f"command {i} {command} has {count} outcomes: {mine.tolist()}"

    held = {(t["order_id"], t["command_index"]) for t in transfers[transfers["kind"] == HOLD]}
    for accepted in events[events["kind"] == EventKind.ACCEPTED]:
        assert (accepted["order_id"], accepted["command_index"]) in held, "accepted, not held"
    trades = transfers[transfers["kind"] == TRADE]["trade_id"]
    for fill in events[events["kind"] == EventKind.FILLED]:
        assert (trades == fill["trade_id"]).sum() == 2, "a fill is two TRADE transfers"

    replay_transfers(ledger, transfers)
    assert {k: v for k, v in ledger.items() if any(v)} == nonzero_balances(shard)

    # Stronger than check_invariants: every account with money or an order, price and leaves too.
    known = {*ACCOUNTS, *shard.risk.balances, *(h.account_id for h in shard.risk.orders.values())}
    resting = {o["order_id"]: o for a in sorted(known) for o in shard.core.open_orders(a)}
    assert set(resting) == set(shard.risk.orders)
    for order_id, hold in shard.risk.orders.items():
        order = resting[order_id]
        assert (hold.account_id, hold.price_ticks, hold.leaves_lots) == (
            order["account_id"],
            order["price_ticks"],
            order["leaves_lots"],
        )


def same_outcome(actual: Applied, expected: Applied) -> None:
    assert actual.events.tolist() == expected.events.tolist()
    assert actual.transfers.tolist() == expected.transfers.tolist()
    assert actual.market_data == expected.market_data
    assert actual.instruments_changed == expected.instruments_changed


def journaled(batch_id: int, ts_ns: int, entry_commands: list[Command]) -> JournalEntry:
    """The entry as the engine reads it back from the journal (msgpack)."""
    entry = JournalEntry(origin="test", batch_id=batch_id, ts_ns=ts_ns, commands=entry_commands)
    return JOURNAL_DECODER.decode(ENCODER.encode(entry))


def apply_new(shard: Shard, journal_seq: int, entry: JournalEntry) -> Applied:
    applied = shard.apply(journal_seq, entry)
    assert applied is not None, f"entry {journal_seq} taken for one applied before"
    return applied


def opening_entry() -> JournalEntry:
    return journaled(1, STEP_NS, [*market_commands(), *funding_commands(FUNDED), *BARE_FUNDING])


def order_id_max(applied: Applied, before: int) -> int:
    accepted = applied.events[applied.events["kind"] == EventKind.ACCEPTED]["order_id"]
    return max(before, int(accepted.max())) if len(accepted) else before


# -- 1 and 2: THE STATE MACHINE, THREE SHARDS IN LOCKSTEP --


class ShardMachine(RuleBasedStateMachine):
    """One shard on the core (never restored, its rows are the expected ones), one on the
    reference book, one restored from its own snapshot at random steps."""

    def __init__(self) -> None:
        super().__init__()
        self.straight = Shard(limits=LIMITS)
        self.reference = Shard(limits=LIMITS, core_class=ReferenceEngine)
        self.restored = Shard(limits=LIMITS)
        self.ledger: Ledger = {}
        self.journal_seq = 0
        self.order_id_max = 0
        self.md_sequence: dict[int, int] = {}

    def journal(self, ts_ns: int, entry_commands: list[Command]) -> None:
        self.journal_seq += 1
        entry = journaled(self.journal_seq, ts_ns, entry_commands)
        applied = apply_new(self.straight, self.journal_seq, entry)
        check_entry(self.straight, entry, applied, self.ledger)
        assert self.straight.apply(self.journal_seq, entry) is None, "applied twice"
        for twin in (self.reference, self.restored):
            same_outcome(apply_new(twin, self.journal_seq, entry), applied)
            twin.check_invariants()
        expected_hash = self.straight.state_hash()
        assert self.reference.state_hash() == expected_hash
        assert self.restored.state_hash() == expected_hash
        self.order_id_max = order_id_max(applied, self.order_id_max)
        for update in applied.market_data:  # one per touched instrument, gapless
            assert update.sequence == self.md_sequence.get(update.instrument_id, 0) + 1
            self.md_sequence[update.instrument_id] = update.sequence

    @initialize()
    def open_market(self) -> None:
        self.journal(STEP_NS, list(opening_entry().commands))

    @rule(steps=time_steps, makers=entries)
    def journal_an_entry(self, steps: int | None, makers: list[Maker]) -> None:
        ts_ns = entry_time(steps, self.straight)
        entry_commands = make_entry(makers, self.straight, ts_ns, self.order_id_max)
        note(f"entry {self.journal_seq + 1} at {ts_ns}: {entry_commands}")
        self.journal(ts_ns, entry_commands)

    @rule(core_class=st.sampled_from([Engine, ReferenceEngine]), now=seldom)
    def snapshot_and_restore(self, core_class: type, now: bool) -> None:
        if not now:
            return
        snapshot = self.restored.snapshot()
        self.restored = Shard.restore(snapshot, LIMITS, core_class)
        assert self.restored.state_hash() == self.straight.state_hash()
        self.restored.check_invariants()


# Three shards a step, each entry up to eight commands: half the profile's examples keep the
# default run at a few seconds; HYPOTHESIS_PROFILE=long still runs a thousand.
TestShardMachine = ShardMachine.TestCase
TestShardMachine.settings = settings(max_examples=max(10, settings().max_examples // 2))


# -- 3: RESTORE AT EVERY CUT --


@given(generated=st.lists(st.tuples(time_steps, entries), min_size=1, max_size=14))
def test_restore_at_every_cut_continues_like_the_straight_run(
    generated: list[tuple[int | None, list[Maker]]],
) -> None:
    straight = Shard(limits=LIMITS)
    journal = [opening_entry()]
    snapshots = [straight.snapshot()]
    outcomes = [apply_new(straight, 1, journal[0])]
    id_max = 0
    for seq, (steps, makers) in enumerate(generated, start=2):
        ts_ns = entry_time(steps, straight)
        journal.append(journaled(seq, ts_ns, make_entry(makers, straight, ts_ns, id_max)))
        snapshots.append(straight.snapshot())
        outcomes.append(apply_new(straight, seq, journal[-1]))
        id_max = order_id_max(outcomes[-1], id_max)
    note(f"journal: {journal[1:]}")
    final_hash = straight.state_hash()

    for cut, snapshot in enumerate(snapshots):
        core_class = Engine if cut % 2 else ReferenceEngine
        shard = Shard.restore(snapshot, LIMITS, core_class)
        for seq in range(cut + 1, len(journal) + 1):
            same_outcome(apply_new(shard, seq, journal[seq - 1]), outcomes[seq - 1])
        shard.check_invariants()
        assert shard.state_hash() == final_hash, f"cut at {cut} into {core_class.__name__}"


# -- 4: THE MONEY OF EACH PATH, EXACTLY --


class Desk:
    """A shard on the demo market with helpers to journal entries and read money."""

    def __init__(self, funded: list[int], core_class: type = Engine) -> None:
        self.shard = Shard(limits=LIMITS, core_class=core_class)
        self.ledger: Ledger = {}
        self.seq = 0
        self.now_ns = STEP_NS
        self.apply(*market_commands(), *funding_commands(funded))

    def apply(self, *entry_commands: Command, ts_ns: int | None = None) -> Applied:
        self.seq += 1
        self.now_ns = self.now_ns if ts_ns is None else ts_ns
        entry = journaled(self.seq, self.now_ns, list(entry_commands))
        applied = apply_new(self.shard, self.seq, entry)
        check_entry(self.shard, entry, applied, self.ledger)
        return applied

    def money(self, account_id: int, asset_id: int) -> tuple[int, int]:
        """(available, held)."""
        available, held = self.shard.risk.balances.get(account_id, {}).get(asset_id, [0, 0])
        return available, held


def moves(applied: Applied) -> list[tuple[int, ...]]:
    """(kind, asset, amount, debit account, debit held, credit account, credit held, order)."""
    return [(t[7], t[5], t[0], t[1], t[8], t[2], t[9], t[3]) for t in applied.transfers.tolist()]


def outcomes_of(applied: Applied) -> list[tuple[int, int, int]]:
    """(kind, order id, reason) of the rows that are not book deltas or status."""
    quiet = (EventKind.BOOK_DELTA, EventKind.INSTRUMENT_STATUS)
    return [
        (int(e["kind"]), int(e["order_id"]), int(e["reason"]))
        for e in applied.events
        if e["kind"] not in quiet
    ]


def limit(
    account_id: int,
    side: int,
    price_ticks: int,
    quantity_lots: int,
    tif: int = GTC,
    **fields: Any,
) -> PlaceOrder:
    return PlaceOrder(
        account_id=account_id,
        instrument_id=1,
        client_order_id=fields.pop("client_order_id", 0),
        side=side,
        order_type=LIMIT,
        time_in_force=tif,
        price_ticks=price_ticks,
        quantity_lots=quantity_lots,
        **fields,
    )


def market(account_id: int, side: int, quantity_lots: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=account_id,
        instrument_id=1,
        client_order_id=0,
        side=side,
        order_type=MARKET,
        time_in_force=IOC,
        quantity_lots=quantity_lots,
    )


def buy_hold(price_ticks: int, quantity_lots: int) -> int:
    """What a BTC-USDT buy holds: its notional plus the larger fee (10 bps), floored."""
    notional = price_ticks * quantity_lots * QUOTE_PER_TICK_LOT
    return notional + notional * 10 // 10_000


@pytest.fixture(params=[Engine, ReferenceEngine], ids=["core", "reference"])
def core_class(request: pytest.FixtureRequest) -> type:
    return request.param


F_USDT, F_BTC = FUNDING[USDT], FUNDING[BTC]


def test_the_demo_fees_are_the_ones_these_scenarios_compute_with() -> None:
    btc_usdt = next(d for d in INSTRUMENTS if d.instrument_id == 1)
    assert (btc_usdt.taker_fee_bps, btc_usdt.maker_fee_bps) == (10, 2)
    spec = Desk([]).shard.risk.instruments[1]
    assert (spec.quote_minor_per_tick_lot, spec.base_minor_per_lot) == (
        QUOTE_PER_TICK_LOT,
        BASE_PER_LOT,
    )


def test_a_taker_buy_with_price_improvement_releases_the_difference(core_class: type) -> None:
    desk = Desk([10, 11], core_class)
    sell = desk.apply(limit(11, SELL, 500_000, 10))
    assert moves(sell) == [(HOLD, BTC, 100_000, 11, 0, 11, 1, 1)]

    buy = desk.apply(limit(10, BUY, 500_100, 10))
    held = buy_hold(500_100, 10)  # 50,010,000 + 50,010
    assert held == 50_060_010
    assert moves(buy) == [
        (HOLD, USDT, held, 10, 0, 10, 1, 2),
        (TRADE, USDT, 50_000_000, 10, 1, 11, 0, 2),  # at the maker's price
        (FEE, USDT, 50_000, 10, 1, FEE_ACCOUNT_ID, 0, 2),  # taker: 10 bps, from the hold
        (TRADE, BTC, 100_000, 11, 1, 10, 0, 1),
        (FEE, USDT, 10_000, 11, 0, FEE_ACCOUNT_ID, 0, 1),  # maker: 2 bps, from the proceeds
        (RELEASE, USDT, held - 50_050_000, 10, 1, 10, 0, 2),  # price improvement + its fee
    ]
    assert desk.money(10, USDT) == (F_USDT - 50_050_000, 0)
    assert desk.money(10, BTC) == (F_BTC + 100_000, 0)
    assert desk.money(11, USDT) == (F_USDT + 49_990_000, 0)
    assert desk.money(11, BTC) == (F_BTC - 100_000, 0)
    assert desk.money(FEE_ACCOUNT_ID, USDT) == (60_000, 0)


def test_a_maker_buy_pays_the_maker_fee_and_gets_the_rest_of_its_fee_hold_back(
    core_class: type,
) -> None:
    desk = Desk([10, 11], core_class)
    desk.apply(limit(10, BUY, 500_000, 10))
    assert desk.money(10, USDT) == (F_USDT - 50_050_000, 50_050_000)

    sell = desk.apply(market(11, SELL, 10))
    assert moves(sell) == [
        (HOLD, BTC, 100_000, 11, 0, 11, 1, 2),
        (TRADE, USDT, 50_000_000, 10, 1, 11, 0, 1),
        (FEE, USDT, 10_000, 10, 1, FEE_ACCOUNT_ID, 0, 1),  # maker buyer: 2 bps
        (TRADE, BTC, 100_000, 11, 1, 10, 0, 2),
        (FEE, USDT, 50_000, 11, 0, FEE_ACCOUNT_ID, 0, 2),  # taker seller: 10 bps
        (RELEASE, USDT, 40_000, 10, 1, 10, 0, 1),  # held at 10 bps, paid 2
    ]
    assert desk.money(10, USDT) == (F_USDT - 50_010_000, 0)
    assert desk.money(11, USDT) == (F_USDT + 49_950_000, 0)
    assert desk.money(FEE_ACCOUNT_ID, USDT) == (60_000, 0)


def test_an_ioc_market_buy_holds_at_the_top_of_the_band_and_releases_the_rest(
    core_class: type,
) -> None:
    desk = Desk([10, 11], core_class)
    desk.apply(limit(11, SELL, 500_000, 5))
    buy = desk.apply(market(10, BUY, 10))

    top = buy_hold(PRICE_MAX_TICKS[1], 10)
    assert top == 1_001_000_000
    after_fill = top - 25_025_000  # 5 lots at 500,000 and their taker fee
    still_needed = buy_hold(PRICE_MAX_TICKS[1], 5)
    assert moves(buy) == [
        (HOLD, USDT, top, 10, 0, 10, 1, 2),
        (TRADE, USDT, 25_000_000, 10, 1, 11, 0, 2),
        (FEE, USDT, 25_000, 10, 1, FEE_ACCOUNT_ID, 0, 2),
        (TRADE, BTC, 50_000, 11, 1, 10, 0, 1),
        (FEE, USDT, 5_000, 11, 0, FEE_ACCOUNT_ID, 0, 1),
        (RELEASE, USDT, after_fill - still_needed, 10, 1, 10, 0, 2),  # leaves 5 at the top
        (RELEASE, USDT, still_needed, 10, 1, 10, 0, 2),  # the remainder is cancelled
    ]
    assert (EventKind.CANCELLED, 2, Reason.unfilled_remainder_cancelled) in outcomes_of(buy)
    assert desk.money(10, USDT) == (F_USDT - 25_025_000, 0)
    assert desk.money(10, BTC) == (F_BTC + 50_000, 0)
    assert not desk.shard.risk.orders


def test_the_kill_switch_cancels_and_releases_everything(core_class: type) -> None:
    desk = Desk([10, 11], core_class)
    desk.apply(
        limit(10, BUY, 499_000, 3, client_order_id=1),
        limit(10, SELL, 501_000, 2, client_order_id=2),
        limit(10, BUY, 498_000, 1, GTD, client_order_id=3, expire_ts_ns=10 * STEP_NS),
        limit(11, BUY, 499_000, 4),  # another account's order stays
    )
    usdt_held = buy_hold(499_000, 3) + buy_hold(498_000, 1)
    assert desk.money(10, USDT) == (F_USDT - usdt_held, usdt_held)
    assert desk.money(10, BTC) == (F_BTC - 20_000, 20_000)

    killed = desk.apply(SetKillSwitch(account_id=10, on=True))
    assert outcomes_of(killed) == [
        (EventKind.APPLIED, 0, 0),
        (EventKind.CANCELLED, 1, Reason.mass_cancelled),
        (EventKind.CANCELLED, 2, Reason.mass_cancelled),
        (EventKind.CANCELLED, 3, Reason.mass_cancelled),
    ]
    assert sorted(moves(killed)) == sorted(
        [
            (RELEASE, USDT, buy_hold(499_000, 3), 10, 1, 10, 0, 1),
            (RELEASE, BTC, 20_000, 10, 1, 10, 0, 2),
            (RELEASE, USDT, buy_hold(498_000, 1), 10, 1, 10, 0, 3),
        ]
    )
    assert desk.money(10, USDT) == (F_USDT, 0)
    assert desk.money(10, BTC) == (F_BTC, 0)
    assert list(desk.shard.risk.orders) == [4]

    refused = desk.apply(
        limit(10, BUY, 499_000, 1), AmendOrder(account_id=10, order_id=4, quantity_lots=1)
    )
    assert [(k, r) for k, _, r in outcomes_of(refused)] == [
        (EventKind.REJECTED, Reason.account_must_not_be_kill_switched),
        (EventKind.REJECTED, Reason.account_must_not_be_kill_switched),
    ]
    assert not len(refused.transfers)
    # A compliance freeze is a kill switch: the account's money stays too.
    withdrawal = desk.apply(
        HoldWithdrawal(account_id=10, asset_id=USDT, amount_minor=1, withdrawal_id="frozen")
    )
    assert [r for _, _, r in outcomes_of(withdrawal)] == [Reason.account_must_not_be_kill_switched]
    assert not len(withdrawal.transfers)

    desk.apply(SetKillSwitch(account_id=10, on=False))
    again = desk.apply(limit(10, BUY, 499_000, 1))
    assert outcomes_of(again) == [(EventKind.ACCEPTED, 5, 0)]
    held = desk.apply(
        HoldWithdrawal(account_id=10, asset_id=USDT, amount_minor=1, withdrawal_id="thawed")
    )
    assert moves(held) == [(HOLD, USDT, 1, 10, 0, 10, 1, 0)]


def test_an_amend_up_needs_funds_and_an_amend_down_releases(core_class: type) -> None:
    desk = Desk([], core_class)
    desk.apply(Deposit(account_id=20, asset_id=USDT, amount_minor=50_050_000, deposit_id="a"))
    desk.apply(limit(20, BUY, 500_000, 10))
    assert desk.money(20, USDT) == (0, 50_050_000)

    up = desk.apply(AmendOrder(account_id=20, order_id=1, quantity_lots=11))
    assert outcomes_of(up) == [(EventKind.REJECTED, 1, Reason.funds_must_be_available)]
    assert not len(up.transfers)
    assert desk.money(20, USDT) == (0, 50_050_000)

    down = desk.apply(AmendOrder(account_id=20, order_id=1, quantity_lots=6))
    assert outcomes_of(down) == [(EventKind.AMENDED, 1, 0)]
    assert moves(down) == [(RELEASE, USDT, 20_020_000, 20, 1, 20, 0, 1)]

    up = desk.apply(AmendOrder(account_id=20, order_id=1, quantity_lots=8))
    assert outcomes_of(up) == [(EventKind.AMENDED, 1, 0)]
    assert moves(up) == [(HOLD, USDT, 10_010_000, 20, 0, 20, 1, 1)]
    assert desk.money(20, USDT) == (10_010_000, buy_hold(500_000, 8))

    cheaper = desk.apply(
        AmendOrder(account_id=20, order_id=1, price_ticks=499_000, quantity_lots=8)
    )
    assert moves(cheaper) == [
        (RELEASE, USDT, buy_hold(500_000, 8) - buy_hold(499_000, 8), 20, 1, 20, 0, 1)
    ]
    dearer = desk.apply(AmendOrder(account_id=20, order_id=1, price_ticks=510_000, quantity_lots=8))
    extra = buy_hold(510_000, 8) - buy_hold(499_000, 8)
    assert moves(dearer) == [(HOLD, USDT, extra, 20, 0, 20, 1, 1)]
    assert desk.money(20, USDT) == (50_050_000 - buy_hold(510_000, 8), buy_hold(510_000, 8))

    # An amend the core rejects gives back what it reserved: no change at all (4023).
    same = desk.apply(AmendOrder(account_id=20, order_id=1, price_ticks=510_000, quantity_lots=8))
    assert outcomes_of(same) == [(EventKind.REJECTED, 1, Reason.amend_must_change_order)]
    assert not len(same.transfers)


def test_a_withdrawal_is_held_then_settled_to_the_outside_or_released(core_class: type) -> None:
    desk = Desk([], core_class)
    desk.apply(Deposit(account_id=20, asset_id=USDT, amount_minor=1_000_000, deposit_id="a"))
    held = desk.apply(
        HoldWithdrawal(account_id=20, asset_id=USDT, amount_minor=600_000, withdrawal_id="w1")
    )
    assert moves(held) == [(HOLD, USDT, 600_000, 20, 0, 20, 1, 0)]
    assert desk.money(20, USDT) == (400_000, 600_000)

    settled = desk.apply(SettleWithdrawal(withdrawal_id="w1"), SettleWithdrawal(withdrawal_id="w1"))
    assert moves(settled) == [(WITHDRAWAL, USDT, 600_000, 20, 1, EXTERNAL_ACCOUNT_ID, 0, 0)]
    assert outcomes_of(settled) == [
        (EventKind.APPLIED, 0, 0),
        (EventKind.REJECTED, 0, Reason.withdrawal_must_exist),
    ]
    assert desk.money(20, USDT) == (400_000, 0)
    assert desk.money(EXTERNAL_ACCOUNT_ID, USDT) == (-400_000, 0)

    released = desk.apply(
        HoldWithdrawal(account_id=20, asset_id=USDT, amount_minor=300_000, withdrawal_id="w2"),
        ReleaseWithdrawal(withdrawal_id="w2"),
    )
    assert moves(released) == [
        (HOLD, USDT, 300_000, 20, 0, 20, 1, 0),
        (RELEASE, USDT, 300_000, 20, 1, 20, 0, 0),
    ]
    assert desk.money(20, USDT) == (400_000, 0)

    refused = desk.apply(
        HoldWithdrawal(account_id=20, asset_id=USDT, amount_minor=500_000, withdrawal_id="w3"),
        HoldWithdrawal(account_id=20, asset_id=USDT, amount_minor=100, withdrawal_id="w4"),
        HoldWithdrawal(account_id=20, asset_id=USDT, amount_minor=100, withdrawal_id="w4"),
        HoldWithdrawal(account_id=20, asset_id=USDT, amount_minor=0, withdrawal_id="w5"),
        HoldWithdrawal(account_id=20, asset_id=9, amount_minor=100, withdrawal_id="w6"),
        ReleaseWithdrawal(withdrawal_id="nowhere"),
    )
    assert [r for _, _, r in outcomes_of(refused)] == [
        Reason.funds_must_be_available,
        0,
        Reason.withdrawal_id_must_be_unique,
        Reason.amount_must_be_positive,
        Reason.asset_must_exist,
        Reason.withdrawal_must_exist,
    ]
    assert desk.money(20, USDT) == (399_900, 100)


def test_a_repeated_deposit_id_credits_once(core_class: type) -> None:
    desk = Desk([], core_class)
    deposit = Deposit(account_id=20, asset_id=USDT, amount_minor=700, deposit_id="custody:1")
    first = desk.apply(deposit, deposit)
    again = desk.apply(deposit)
    assert moves(first) == [(DEPOSIT, USDT, 700, EXTERNAL_ACCOUNT_ID, 0, 20, 0, 0)]
    assert outcomes_of(first) == [(EventKind.APPLIED, 0, 0), (EventKind.APPLIED, 0, 0)]
    assert outcomes_of(again) == [(EventKind.APPLIED, 0, 0)] and not len(again.transfers)
    assert desk.money(20, USDT) == (700, 0)

    refused = desk.apply(
        Deposit(account_id=FEE_ACCOUNT_ID, asset_id=USDT, amount_minor=1, deposit_id="x"),
        Deposit(account_id=20, asset_id=USDT, amount_minor=-1, deposit_id="y"),
        Deposit(account_id=20, asset_id=USDT, amount_minor=1 << 63, deposit_id="z"),
    )
    assert [r for _, _, r in outcomes_of(refused)] == [
        Reason.account_id_must_be_in_range,
        Reason.amount_must_be_positive,
        Reason.command_must_be_well_formed,
    ]


# -- REGRESSIONS: bugs this file found --


def test_a_kill_switched_place_with_out_of_range_fields_is_rejected_not_a_crash(
    core_class: type,
) -> None:
    """The 3001 reject wrote instrument_id 2**40 into an int32 field: OverflowError."""
    desk = Desk([10], core_class)
    desk.apply(SetKillSwitch(account_id=10, on=True))
    wild = PlaceOrder(
        account_id=10,
        instrument_id=1 << 40,
        client_order_id=1,
        side=300,
        order_type=LIMIT,
        time_in_force=GTC,
        price_ticks=500_000,
        quantity_lots=1,
    )
    refused = desk.apply(wild)
    assert outcomes_of(refused) == [
        (EventKind.REJECTED, 0, Reason.account_must_not_be_kill_switched)
    ]
    row = refused.events[0]
    assert (row["instrument_id"], row["side"], row["account_id"]) == (0, 0, 10)


def test_an_amend_up_of_an_order_that_expires_first_gives_its_reservation_back(
    core_class: type,
) -> None:
    """The core's expiry pass ended the order before the amend; the reject then looked the
    order up to return the extra hold it had reserved: KeyError."""
    desk = Desk([10], core_class)
    desk.apply(limit(10, BUY, 500_000, 1, GTD, expire_ts_ns=2 * STEP_NS))
    amended = desk.apply(AmendOrder(account_id=10, order_id=1, quantity_lots=5), ts_ns=3 * STEP_NS)
    assert outcomes_of(amended) == [
        (EventKind.CANCELLED, 1, Reason.order_expired),
        (EventKind.REJECTED, 1, Reason.order_must_exist),
    ]
    assert moves(amended) == [(RELEASE, USDT, buy_hold(500_000, 1), 10, 1, 10, 0, 1)]
    assert desk.money(10, USDT) == (F_USDT, 0)


def test_a_deposit_that_would_take_a_balance_beyond_int64_is_rejected(core_class: type) -> None:
    """Two deposits summing beyond 2**63 - 1 left the external account below -2**63: the next
    snapshot and state hash raised OverflowError. An 18-decimal asset gets there in 10 units."""
    desk = Desk([], core_class)
    desk.apply(
        Deposit(account_id=20, asset_id=BTC, amount_minor=INT64_MAX - 5, deposit_id="a"),
        Deposit(account_id=21, asset_id=BTC, amount_minor=5, deposit_id="b"),  # just fits
    )
    refused = desk.apply(Deposit(account_id=21, asset_id=BTC, amount_minor=1, deposit_id="c"))
    assert outcomes_of(refused) == [
        (EventKind.REJECTED, 0, Reason.balance_must_stay_within_maximum)
    ]
    assert desk.money(EXTERNAL_ACCOUNT_ID, BTC) == (-INT64_MAX, 0)
    restored = Shard.restore(desk.shard.snapshot(), LIMITS, core_class)
    assert restored.state_hash() == desk.shard.state_hash()
    # The id was not used up: once money has left, the same deposit credits.
    desk.apply(HoldWithdrawal(account_id=20, asset_id=BTC, amount_minor=10, withdrawal_id="w"))
    desk.apply(SettleWithdrawal(withdrawal_id="w"))
    credited = desk.apply(Deposit(account_id=21, asset_id=BTC, amount_minor=1, deposit_id="c"))
    assert moves(credited) == [(DEPOSIT, BTC, 1, EXTERNAL_ACCOUNT_ID, 0, 21, 0, 0)]


def test_an_entry_time_beyond_int64_is_not_taken(core_class: type) -> None:
    """The shard took an entry's ts_ns of 2**63 or more as its time: every row it wrote after
    that raised OverflowError, and every core command was rejected as not well formed."""
    desk = Desk([10], core_class)
    desk.apply(limit(10, BUY, 500_000, 1, GTD, expire_ts_ns=5 * STEP_NS), ts_ns=2 * STEP_NS)
    wild = desk.apply(
        Deposit(account_id=10, asset_id=USDT, amount_minor=1, deposit_id="x"),
        limit(10, BUY, 500_000, 1, client_order_id=1),
        ts_ns=WIDE[-1],
    )
    assert desk.shard.ts_ns == 2 * STEP_NS
    assert (wild.events["ts_ns"] == 2 * STEP_NS).all()
    assert outcomes_of(wild) == [(EventKind.APPLIED, 0, 0), (EventKind.ACCEPTED, 2, 0)]
    expired = desk.apply(AdvanceTime(), ts_ns=5 * STEP_NS)  # time goes on from where it was
    assert (EventKind.CANCELLED, 1, Reason.order_expired) in outcomes_of(expired)


@pytest.mark.parametrize("definition", BAD_DEFINITIONS, ids=lambda d: getattr(d, "symbol", ""))
def test_a_definition_that_could_not_trade_safely_is_rejected(
    definition: Command, core_class: type
) -> None:
    """Were accepted and then crashed the shard (an asset id beyond 32 bits at its first transfer,
    a price or quantity beyond 64 bits in the core, a fee above 100 % or below 0 at a fill, a
    tick size beyond the decimal context), or defined a market whose base traded for nothing (a
    tick size the decimal context rounded to 0) or whose units were inexact."""
    desk = Desk([10], core_class)
    desk.apply(ETH_BTC)
    before = (dict(desk.shard.assets), dict(desk.shard.instruments))
    refused = desk.apply(definition)
    assert [k for k, _, _ in outcomes_of(refused)] == [EventKind.REJECTED]
    assert (dict(desk.shard.assets), dict(desk.shard.instruments)) == before


def test_the_exchanges_own_accounts_never_trade(core_class: type) -> None:
    """Account 0 (the outside world) and 1 (fee income) may not place, amend or be
    kill-switched: account 0 would mean every account, and fees are not trading money."""
    desk = Desk([], core_class)
    refused = desk.apply(
        limit(EXTERNAL_ACCOUNT_ID, BUY, 500_000, 1),
        limit(FEE_ACCOUNT_ID, SELL, 500_000, 1),
        SetKillSwitch(account_id=EXTERNAL_ACCOUNT_ID, on=True),
    )
    assert [r for _, _, r in outcomes_of(refused)] == [Reason.account_must_be_a_customer] * 3
    assert not desk.shard.risk.kill_switched
