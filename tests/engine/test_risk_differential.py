"""The compiled risk stage against the plain-Python reference, entry for entry.

Goal: find any journal on which a shard running the compiled risk stage (engine/_risk.pyx, the
default) and one running the reference stage (engine/risk.py, `Shard(risk="reference")`) differ
in anything an outsider can see: event rows, transfer rows, market data, query replies
(balances, every page of all balances, open orders, order status by id and by client order id,
limits, books, the instrument list), the snapshot bytes and state hash; or in the risk state
itself (holds, open order counts, open notional, kill switches, withdrawals, terminal orders).

Method:

- A Hypothesis ``RuleBasedStateMachine`` journals random entries through both shards in
  lockstep, with the generators of tests/engine/test_shard.py: places of every type and time in
  force (market, IOC, FOK, post-only, GTD expiring as time moves), each STP mode, cancels,
  amends, mass cancels, halts and resumes, the kill switch, risk limits, deposits and
  withdrawals, time moving, definitions, and now and then a field outside its record's range.
  Entries go through msgpack as the journal does (values in [-2**63, 2**64)).
- Extreme entries bypass msgpack, which cannot carry them: fields beyond 64 bits in every
  command, risk limits beyond int64, deposits at the balance maximum, and a market whose
  tick x lot is 10**18 quote minor units, so that a sell's notional passes int64 while its hold
  does not, and a fee's product passes int64 while the fee does not. These take the compiled
  stage off its int64 fast paths onto its Python-int fallbacks.
- A third shard is restored now and then from a snapshot of one stage into the other, and must
  go on in lockstep: the snapshot format is one, whichever stage wrote it.
- After each entry: both shards' invariants, the checks of test_shard.py on the compiled shard
  (the transfer rows replayed reproduce its balances, every command has its one outcome), and
  equality of everything listed above.
- Unit checks: the stage is chosen by name and a bad name is refused; the compiled records and
  helpers refuse bad input without changing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import hypothesis.strategies as st
import msgspec
import numpy as np
import pytest
from hypothesis import note
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from engine import _risk
from engine._codes import OrderType, Reason, Side, StpMode, TimeInForce
from engine._dtypes import EVENT_DTYPE, TRANSFER_DTYPE
from engine.markets import USDT
from engine.messages import (
    AmendOrder,
    CancelOrder,
    Command,
    DefineAsset,
    DefineInstrument,
    Deposit,
    HoldWithdrawal,
    JournalEntry,
    MassCancel,
    PlaceOrder,
    SetKillSwitch,
    SetRiskLimits,
)
from engine.shard import RISK_STAGES, Applied, Shard
from tests.engine.test_shard import (
    ACCOUNTS,
    LIMITS,
    STEP_NS,
    Ledger,
    check_entry,
    entries,
    entry_time,
    journaled,
    make_entry,
    opening_entry,
    order_id_max,
    same_outcome,
    time_steps,
)

BUY, SELL = Side.BUY, Side.SELL
# Beyond what msgpack (and so a journal) can carry: only a directly built entry holds these.
HUGE = (1 << 64, 1 << 70, -(1 << 64) - 1, -(1 << 70))
EDGE = (-(1 << 63), (1 << 63) - 1, 1 << 63, (1 << 64) - 1, *HUGE)

# A market priced in a quote asset of 18 decimals with whole ticks and lots: one tick x lot is
# 10**18 quote minor units, so notionals pass int64 from 10 ticks x lots on.
WIDE_QUOTE, WIDE_BASE, WIDE_MARKET = 7, 8, 5
WIDE_COMMANDS: list[Command] = [
    DefineAsset(asset_id=WIDE_QUOTE, symbol="WQ", decimals=18),
    DefineAsset(asset_id=WIDE_BASE, symbol="WB", decimals=0),
    DefineInstrument(
        instrument_id=WIDE_MARKET,
        symbol="WB-WQ",
        base_asset_id=WIDE_BASE,
        quote_asset_id=WIDE_QUOTE,
        tick_size="1",
        lot_size="1",
        price_min_ticks=1,
        price_max_ticks=1_000_000,
        quantity_max_lots=1_000_000,
        taker_fee_bps=10,
        maker_fee_bps=2,
    ),
    # Together 8 * 10**18, close to int64's 9.2 * 10**18: what every balance of WQ must fit.
    *[
        Deposit(account_id=a, asset_id=WIDE_QUOTE, amount_minor=n * 10**18, deposit_id=f"wq{a}")
        for a, n in ((10, 2), (11, 6))
    ],
    *[
        Deposit(account_id=a, asset_id=WIDE_BASE, amount_minor=10**6, deposit_id=f"wb{a}")
        for a in (10, 11, 12)
    ],
]

wide_accounts = st.sampled_from([10, 11, 12, 13])


@st.composite
def wide_places(draw: st.DrawFn) -> PlaceOrder:
    """A place on the wide market: small buys (a buy's hold must fit a balance), sells of any
    notional."""
    side = draw(st.sampled_from([BUY, SELL]))
    market = draw(st.sampled_from([False] * 4 + [True]))
    return PlaceOrder(
        account_id=draw(wide_accounts),
        instrument_id=WIDE_MARKET,
        client_order_id=draw(st.integers(0, 9)),
        side=side,
        order_type=OrderType.MARKET if market else OrderType.LIMIT,
        time_in_force=draw(st.sampled_from([TimeInForce.IOC, TimeInForce.FOK]))
        if market
        else draw(st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC])),
        price_ticks=0 if market else draw(st.sampled_from([1, 2, 3, 9, 100, 10_000, 1_000_000])),
        quantity_lots=draw(st.sampled_from([1, 2, 3, 5, 8, 1_000, 1_000_000])),
        stp_mode=draw(st.sampled_from(list(StpMode))),
    )


# One field of an otherwise ordinary BTC-USDT place set beyond 64 bits (or to an int64 edge).
HUGE_PLACE_FIELDS = [
    "account_id",
    "instrument_id",
    "client_order_id",
    "side",
    "order_type",
    "time_in_force",
    "price_ticks",
    "quantity_lots",
    "expire_ts_ns",
    "stp_mode",
    "stp_group",
]


@st.composite
def huge_places(draw: st.DrawFn) -> PlaceOrder:
    field = draw(st.sampled_from(HUGE_PLACE_FIELDS))
    order = PlaceOrder(
        account_id=draw(st.sampled_from(ACCOUNTS)),
        instrument_id=1,
        client_order_id=draw(st.integers(0, 9)),
        side=draw(st.sampled_from([BUY, SELL])),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price_ticks=500_000,
        quantity_lots=draw(st.integers(1, 5)),
    )
    return msgspec.structs.replace(order, **{field: draw(st.sampled_from(EDGE))})


@st.composite
def huge_amends(draw: st.DrawFn) -> AmendOrder:
    """Amends whose notional or hold passes int64 (reserved extra beyond any balance)."""
    return AmendOrder(
        account_id=draw(st.sampled_from(ACCOUNTS)),
        order_id=draw(st.integers(1, 40)),
        price_ticks=draw(st.sampled_from([0, 500_000, 1 << 40, (1 << 63) - 1, *HUGE])),
        quantity_lots=draw(st.sampled_from([1, 1 << 40, (1 << 62), *HUGE])),
    )


limit_values = st.sampled_from([1, 10**6, 200 * 10**6, (1 << 63) - 1, 1 << 63, 1 << 70, -1])
wide_limits = st.builds(
    SetRiskLimits,
    account_id=st.sampled_from([0, *ACCOUNTS]),
    open_orders_max=st.sampled_from([0, 0, 1, 3, (1 << 63) - 1, 1 << 70, -1]),
    order_notional_max=st.dictionaries(
        st.sampled_from([USDT, WIDE_QUOTE]), limit_values, max_size=2
    ),
    open_notional_max=st.dictionaries(
        st.sampled_from([USDT, WIDE_QUOTE]), limit_values, max_size=2
    ),
)
edge_money = st.one_of(
    st.builds(
        Deposit,
        account_id=st.sampled_from([*ACCOUNTS, *EDGE]),
        asset_id=st.sampled_from([USDT, WIDE_QUOTE, *EDGE]),
        amount_minor=st.sampled_from([1, 10**18, (1 << 63) - 1, *EDGE]),
        deposit_id=st.sampled_from([f"e{i}" for i in range(4)]),
    ),
    st.builds(
        HoldWithdrawal,
        account_id=st.sampled_from([*ACCOUNTS, *EDGE]),
        asset_id=st.sampled_from([USDT, WIDE_QUOTE, *EDGE]),
        amount_minor=st.sampled_from([1, 10**18, (1 << 63) - 1, *EDGE]),
        withdrawal_id=st.sampled_from([f"x{i}" for i in range(4)]),
    ),
    st.builds(SetKillSwitch, account_id=st.sampled_from(EDGE), on=st.booleans()),
    st.builds(CancelOrder, account_id=st.sampled_from(EDGE), order_id=st.sampled_from(EDGE)),
    st.builds(MassCancel, account_id=st.sampled_from(EDGE), instrument_id=st.sampled_from(EDGE)),
)
extreme_commands = st.one_of(
    wide_places(), wide_places(), wide_places(), huge_places(), huge_amends(), wide_limits,
    edge_money,
)  # fmt: skip
extreme_entries = st.lists(extreme_commands, min_size=1, max_size=6)


def as_journaled(seq: int, ts_ns: int, commands: list[Command]) -> JournalEntry:
    """The entry read back from msgpack, or as built when msgpack cannot carry it."""
    try:
        return journaled(seq, ts_ns, commands)
    except (OverflowError, msgspec.EncodeError):
        return JournalEntry(origin="test", batch_id=seq, ts_ns=ts_ns, commands=commands)


def outcome(call: Any) -> Any:
    """A call's result, or its exception's type: a snapshot holding a value beyond what msgpack
    carries fails to encode, and must fail alike whichever stage holds it."""
    try:
        return call()
    except (OverflowError, msgspec.EncodeError) as error:
        return ("raised", type(error).__name__)


HOLD_FIELDS = attrgetter(
    "account_id", "instrument_id", "side", "price_ticks", "leaves_lots", "held_minor",
    "notional_minor",
)  # fmt: skip
SPEC_FIELDS = attrgetter(
    "symbol", "base_asset_id", "quote_asset_id", "quote_minor_per_tick_lot",
    "base_minor_per_lot", "price_max_ticks", "fee_bps_max", "taker_fee_bps", "maker_fee_bps",
)  # fmt: skip
LIMIT_MAPS = attrgetter("order_notional_max", "open_notional_max")


def risk_state(shard: Shard) -> dict[str, Any]:
    """The risk stage's state in plain data: the compiled stage keeps Balance, Exposure and
    OrderHold objects where the reference keeps lists, ints and dataclasses."""
    risk = shard.risk
    # Both stages keep an account's entry at 0 once its orders are gone, and a restored shard
    # has entries for open orders only: 0 and absent are the same state.
    notional = {
        key: getattr(value, "notional_minor", value) for key, value in risk.open_notional.items()
    }
    notional = {key: value for key, value in notional.items() if value}
    return {
        "balances": sorted(
            (account, asset, pair[0], pair[1])
            for account, assets in risk.balances.items()
            for asset, pair in assets.items()
        ),
        "orders": sorted((oid, *HOLD_FIELDS(h)) for oid, h in risk.orders.items()),
        "open_orders": sorted(risk.open_orders.items()),
        "open_notional": sorted(notional.items()),
        "limits": sorted(
            (account, lim.open_orders_max, *(sorted(m.items()) for m in LIMIT_MAPS(lim)))
            for account, lim in risk.limits.items()
        ),
        "kill_switched": sorted(risk.kill_switched),
        "withdrawals": sorted(risk.withdrawals.items()),
        "withdrawals_finished": sorted(risk.withdrawals_finished),
        "deposits_credited": sorted(risk.deposits_credited),
        "terminal": [(oid, *row) for oid, row in risk.terminal.items()],
        "instruments": sorted((i, *SPEC_FIELDS(s)) for i, s in risk.instruments.items()),
    }


QUERIED_ACCOUNTS = [0, 1, *ACCOUNTS, 99]


def queries(shard: Shard, order_id_max: int) -> dict[str, Any]:
    """Every query reply the shard gives, for the accounts and orders a test run can touch."""
    replies: dict[str, Any] = {
        "instrument_list": shard.instrument_list(),
        "books": [shard.book(i, 5) for i in (1, 2, 3, 4, WIDE_MARKET)],
        "pages": [shard.all_balances(after, 2) for after in (-1, 0, 10, 12)],
        "everything": shard.all_balances(-1, 1_000),
    }
    for account in QUERIED_ACCOUNTS:
        replies[f"balances {account}"] = shard.balances(account)
        replies[f"limits {account}"] = shard.limits(account)
        replies[f"open {account}"] = shard.open_orders(account)
        replies[f"by client id {account}"] = [shard.order(account, 0, c) for c in range(10)]
        replies[f"by id {account}"] = [
            shard.order(account, order_id, None)
            for order_id in range(max(0, order_id_max - 12), order_id_max + 2)
        ]
    return replies


def assert_same_shards(compiled: Shard, reference: Shard, order_id_max: int) -> None:
    compiled.check_invariants()
    reference.check_invariants()
    assert risk_state(compiled) == risk_state(reference)
    assert queries(compiled, order_id_max) == queries(reference, order_id_max)
    assert outcome(compiled.snapshot) == outcome(reference.snapshot)
    assert outcome(compiled.state_hash) == outcome(reference.state_hash)


class StageMachine(RuleBasedStateMachine):
    """The compiled stage, the reference stage, and a shard restored across stages, in step."""

    def __init__(self) -> None:
        super().__init__()
        self.compiled = Shard(limits=LIMITS)
        self.reference = Shard(limits=LIMITS, risk="reference")
        self.restored = Shard(limits=LIMITS, risk="reference")
        self.ledger: Ledger = {}
        self.journal_seq = 0
        self.order_id_max = 0

    def journal(self, ts_ns: int, entry_commands: list[Command]) -> None:
        self.journal_seq += 1
        entry = as_journaled(self.journal_seq, ts_ns, entry_commands)
        applied = self.compiled.apply(self.journal_seq, entry)
        assert applied is not None
        assert applied.events.dtype == EVENT_DTYPE and applied.transfers.dtype == TRANSFER_DTYPE
        check_entry(self.compiled, entry, applied, self.ledger)
        for twin in (self.reference, self.restored):
            twin_applied = twin.apply(self.journal_seq, entry)
            assert twin_applied is not None
            same_outcome(twin_applied, applied)
        self.order_id_max = order_id_max(applied, self.order_id_max)
        assert_same_shards(self.compiled, self.reference, self.order_id_max)
        assert_same_shards(self.compiled, self.restored, 0)

    @initialize()
    def open_market(self) -> None:
        self.journal(STEP_NS, [*opening_entry().commands, *WIDE_COMMANDS])

    @rule(steps=time_steps, makers=entries)
    def journal_an_entry(self, steps: int | None, makers: list[Any]) -> None:
        ts_ns = entry_time(steps, self.compiled)
        entry_commands = make_entry(makers, self.compiled, ts_ns, self.order_id_max)
        note(f"entry {self.journal_seq + 1} at {ts_ns}: {entry_commands}")
        self.journal(ts_ns, entry_commands)

    @rule(commands=extreme_entries)
    def journal_an_extreme_entry(self, commands: list[Command]) -> None:
        note(f"extreme entry {self.journal_seq + 1}: {commands}")
        self.journal(self.compiled.ts_ns + STEP_NS, commands)

    @rule(source=st.sampled_from(["compiled", "reference"]), now=st.booleans())
    def restore_across_stages(self, source: str, now: bool) -> None:
        if not now:
            return
        shard = self.compiled if source == "compiled" else self.reference
        snapshot = outcome(shard.snapshot)
        if isinstance(snapshot, tuple):  # holds a value msgpack cannot carry: nothing to restore
            return
        into = "reference" if source == "compiled" else "compiled"
        self.restored = Shard.restore(snapshot, LIMITS, risk=into)
        assert self.restored.snapshot() == snapshot
        assert_same_shards(self.compiled, self.restored, self.order_id_max)


TestStageMachine = StageMachine.TestCase


# -- EXACT PATHS OFF THE INT64 FAST PATHS --


def run_both(*entries_commands: Sequence[Command]) -> list[Applied]:
    """Apply each entry to both stages; assert equal outcomes and state; the compiled ones."""
    compiled, reference = Shard(limits=LIMITS), Shard(limits=LIMITS, risk="reference")
    outcomes = []
    opening = [*opening_entry().commands, *WIDE_COMMANDS]
    for seq, commands in enumerate([opening, *entries_commands], start=1):
        entry = as_journaled(seq, seq * STEP_NS, list(commands))
        applied, expected = compiled.apply(seq, entry), reference.apply(seq, entry)
        assert applied is not None and expected is not None
        same_outcome(applied, expected)
        assert_same_shards(compiled, reference, 20)
        outcomes.append(applied)
    return outcomes[1:]


def wide(account_id: int, side: int, price_ticks: int, quantity_lots: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=account_id,
        instrument_id=WIDE_MARKET,
        client_order_id=0,
        side=side,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price_ticks=price_ticks,
        quantity_lots=quantity_lots,
    )


def test_a_sell_whose_notional_passes_int64_rests_and_fills_alike() -> None:
    # 1,000 x 1,000 ticks x lots at 10**18 each: a notional of 10**24 held by 1,000 base units.
    rest, fill = run_both([wide(10, SELL, 1_000, 1_000)], [wide(11, BUY, 1, 3)])
    assert [int(k) for k in rest.events["kind"]][:1] == [1]  # ACCEPTED
    # The buy does not cross (1 < 1,000); a buy crossing it would need 10**24 of quote.
    assert len(fill.transfers) == 1  # just its HOLD


def test_a_fee_whose_product_passes_int64_is_floored_alike() -> None:
    # 5 ticks x lots = 5 * 10**18 quote minor; x 10 bps passes int64 before the division.
    _, fill = run_both([wide(10, SELL, 1, 5)], [wide(11, BUY, 1, 5)])
    fees = fill.transfers[fill.transfers["kind"] == 4]["amount_minor"].tolist()
    assert fees == [5 * 10**18 * 10 // 10_000, 5 * 10**18 * 2 // 10_000]


def test_a_buy_whose_hold_passes_int64_is_refused_for_funds_alike() -> None:
    (refused,) = run_both([wide(10, BUY, 1_000, 1_000)])
    assert refused.events["reason"].tolist() == [Reason.funds_must_be_available]


def test_fields_beyond_64_bits_are_refused_alike_and_reserve_nothing() -> None:
    places = [
        msgspec.structs.replace(wide(10, BUY, 1, 1), **{field: value})
        for field in HUGE_PLACE_FIELDS
        for value in HUGE
    ]
    (refused,) = run_both(places)
    assert (refused.events["kind"] == 2).all()  # REJECTED, each
    assert len(refused.transfers) == 0


def test_limits_beyond_int64_are_applied_alike() -> None:
    limits = SetRiskLimits(
        account_id=0,
        open_orders_max=1 << 70,
        order_notional_max={WIDE_QUOTE: 1 << 70},
        open_notional_max={WIDE_QUOTE: (1 << 64) + 1},
    )
    # The second sell's open notional, 10**24 + 10**24, passes the open notional limit.
    run_both([limits], [wide(10, SELL, 1_000, 1_000), wide(10, SELL, 1_000, 1_000)])


# -- THE STAGE IS CHOSEN BY NAME; BAD INPUT IS REFUSED --


def test_the_stage_is_chosen_by_name_and_a_bad_name_is_refused() -> None:
    assert RISK_STAGES == ("compiled", "reference")
    assert isinstance(Shard().risk, _risk.RiskStage)
    assert not isinstance(Shard(risk="reference").risk, _risk.RiskStage)
    with pytest.raises(ValueError, match="risk must be one of"):
        Shard(risk="fast")
    with pytest.raises(ValueError, match="risk must be one of"):
        Shard.restore(Shard().snapshot(), risk="fast")


def test_the_transfer_record_matches_its_dtype() -> None:
    assert _risk._record_sizes() == {"TRANSFER_DTYPE": TRANSFER_DTYPE.itemsize}


def test_a_balance_reads_as_the_references_two_item_list() -> None:
    pair = _risk.Balance(5, 7)
    available, held = pair
    assert (available, held, len(pair), pair[0], pair[-1]) == (5, 7, 2, 5, 7)
    assert pair == [5, 7] and list(pair) == [5, 7] and any(pair)
    pair[0], pair[1] = 1, 2
    assert pair == _risk.Balance(1, 2)
    with pytest.raises(IndexError):
        pair[2]
    with pytest.raises(IndexError):
        pair[2] = 3
    with pytest.raises(OverflowError):
        pair[0] = 1 << 63
    assert pair == [1, 2], "a refused write changes nothing"


def test_settle_refuses_rows_of_another_layout_and_changes_nothing() -> None:
    shard = Shard()
    before = shard.state_hash()
    levels: dict[int, Any] = {}
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        shard.risk.settle(np.zeros(3, TRANSFER_DTYPE), None, levels, {}, {}, {})
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        shard.risk.settle(np.zeros((2, 2), EVENT_DTYPE), None, levels, {}, {}, {})
    assert shard.state_hash() == before and not levels


def test_a_run_refuses_a_row_that_does_not_fit_and_queues_nothing() -> None:
    run = _risk.Run()
    row = (1, 10, 0, 0, 500_000, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="16 fields"):
        run.push(0, row[:-1])
    assert not run.push(0, (*row[:4], 1 << 63, *row[5:]))  # price beyond int64
    assert not run.push(0, (*row[:7], 1 << 31, *row[8:]))  # instrument beyond int32
    assert not run.push(0, (*row[:10], 256, *row[11:]))  # side beyond a byte
    assert len(run) == 0 and len(run.commands()) == 0
    assert run.push(3, row)
    (command,) = run.commands().tolist()
    assert command == row
