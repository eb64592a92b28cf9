"""The book benchmark's command stream: the exchange-core mix, deterministic from a seed.

Workload (one instrument, tick 1, lot 1, 1,000 accounts, events on):

- Pre-fill: 1,000 GTC limit orders, alternating buy and sell, bids drawn uniformly from the
  375 ticks below a fixed centre price and asks from the 375 above, so the resting orders span
  about 750 price levels. Pre-fill is applied to every contender before its clock starts.
- Then ``ops`` commands, each drawn independently: 82% amend-price (move a resting order to a
  new price, keeping its leaves), 9% GTC limit place, 6% cancel, 3% IOC limit place.
- Buys come from accounts 0..499 and sells from 500..999, so no order ever meets its own
  account: there is no self-trade prevention in the flow (the taker's mode is CANCEL_TAKER
  anyway), and a peer book without STP makes exactly the same trades.
- Passive prices are drawn as in the pre-fill (never through the opposite best). An aggressive
  command prices 0-2 ticks through the opposite best, so it trades and may sweep a level or two.
  How often amends, IOCs and GTC places are aggressive follows the resting count: above the
  1,000 target they cross more (fills take orders out), below it less, which holds the book at
  about 1,000 orders without changing the mix of command kinds.

The stream is generated adaptively against the compiled engine in the loop (amends and cancels
pick uniformly among the orders resting at that moment, with their exact leaves), then frozen as
a COMMAND_DTYPE array that every contender replays identically. Every command in it is valid:
the generator raises if the engine rejects one. Order ids are assigned 1, 2, 3... to accepted
places, so ``place_order_ids`` (the id each place gets) is known before any replay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    CommandKind,
    Engine,
    EventKind,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
)

INSTRUMENT_ID = 0
# The instrument every contender trades: a wide band so no draw ever leaves it.
INSTRUMENT: dict[str, int] = {
    "price_increment_ticks": 1,
    "quantity_increment_lots": 1,
    "quantity_min_lots": 1,
    "quantity_max_lots": 1_000_000,
    "notional_min": 0,
    "price_min_ticks": 1,
    "price_max_ticks": 200_000,
}
CENTRE_PRICE_TICKS = 100_000
# Clock step between commands; only ordering matters (no GTD orders in this workload).
TS_STEP_NS = 1_000

# Op kinds of the stream, as named in the benchmark's JSON.
AMEND = "amend_price"
PLACE_GTC = "place_gtc"
CANCEL = "cancel"
PLACE_IOC = "place_ioc"
MIX: dict[str, float] = {AMEND: 0.82, PLACE_GTC: 0.09, CANCEL: 0.06, PLACE_IOC: 0.03}

_FILLED = int(EventKind.FILLED)
_CANCELLED = int(EventKind.CANCELLED)
_REJECTED = int(EventKind.REJECTED)
# Column positions in an EVENT_DTYPE row as a tuple (ndarray.tolist()): tuples are the cheapest
# way to read a handful of events from Python.
_EVENT_FIELDS = list(EVENT_DTYPE.names or ())
_E_ORDER_ID = _EVENT_FIELDS.index("order_id")
_E_LEAVES = _EVENT_FIELDS.index("leaves_lots")
_E_MAKER_ORDER_ID = _EVENT_FIELDS.index("maker_order_id")
_E_MAKER_LEAVES = _EVENT_FIELDS.index("maker_leaves_lots")
_E_REASON = _EVENT_FIELDS.index("reason")
_E_KIND = _EVENT_FIELDS.index("kind")


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    """What to generate. Defaults are the benchmark's stated workload."""

    ops: int = 2_000_000
    seed: int = 1
    resting_target: int = 1_000
    levels: int = 750  # price span of passive orders, both sides together
    accounts: int = 1_000
    quantity_max_lots: int = 100  # places draw 1..this
    # At full aggression (resting count well above target) this share of amends and GTC places
    # cross; IOCs then always cross. Half of it at the target.
    amend_cross_max: float = 0.10
    gtc_cross_max: float = 0.10
    # Resting-count distance from target that moves aggression from 0.5 to 0 or 1.
    control_band: int = 50


@dataclass(frozen=True, kw_only=True)
class Workload:
    """A frozen stream: pre-fill, then the measured commands, with what generation saw."""

    spec: WorkloadSpec
    prefill: npt.NDArray[Any]  # COMMAND_DTYPE, all passive GTC places
    stream: npt.NDArray[Any]  # COMMAND_DTYPE, the measured commands
    # Order id each PLACE of prefill + stream gets, in order (ids are 1, 2, 3...; one per place).
    place_order_ids: npt.NDArray[np.int64]
    stats: dict[str, Any] = field(default_factory=dict)

    def counts(self, ops: int | None = None) -> dict[str, int]:
        """Commands of each op kind in the first ``ops`` commands of the stream."""
        s = self.stream[: self.spec.ops if ops is None else ops]
        place = s["kind"] == CommandKind.PLACE
        return {
            AMEND: int(np.count_nonzero(s["kind"] == CommandKind.AMEND)),
            PLACE_GTC: int(np.count_nonzero(place & (s["time_in_force"] == TimeInForce.GTC))),
            CANCEL: int(np.count_nonzero(s["kind"] == CommandKind.CANCEL)),
            PLACE_IOC: int(np.count_nonzero(place & (s["time_in_force"] == TimeInForce.IOC))),
        }


def new_engine() -> Engine:
    """An empty core engine with the benchmark's instrument."""
    engine = Engine()
    reason = engine.add_instrument(INSTRUMENT_ID, **INSTRUMENT)
    if reason:
        raise RuntimeError(f"add_instrument rejected: {reason}")
    engine.drain_events()
    return engine


class _Commands:
    """Commands as Python tuples, one per command: far cheaper than assigning array rows."""

    NAMES = (
        "ts_ns",
        "account_id",
        "client_order_id",
        "order_id",
        "price_ticks",
        "quantity_lots",
        "kind",
        "side",
        "time_in_force",
    )

    def __init__(self) -> None:
        self.rows: list[tuple[int, ...]] = []

    def array(self) -> npt.NDArray[Any]:
        table = np.array(self.rows, dtype=np.int64).reshape(-1, len(self.NAMES))
        out = np.zeros(len(self.rows), dtype=COMMAND_DTYPE)
        for j, name in enumerate(self.NAMES):
            out[name] = table[:, j]
        out["instrument_id"] = INSTRUMENT_ID
        place = out["kind"] == CommandKind.PLACE
        out["order_type"][place] = OrderType.LIMIT
        out["stp_mode"][place] = StpMode.CANCEL_TAKER
        return out


class _Book:
    """The generator's model of what rests, exact: a passive command changes only its own
    order, and the events of a command that may trade say what it did to every maker."""

    def __init__(self) -> None:
        self.ids: list[int] = []  # for uniform choice; swap-remove keeps it dense
        self.pos: dict[int, int] = {}
        self.info: dict[int, list[int]] = {}  # order id -> [side, price_ticks, leaves, account]

    def add(self, order_id: int, side: int, price_ticks: int, leaves: int, account: int) -> None:
        self.pos[order_id] = len(self.ids)
        self.ids.append(order_id)
        self.info[order_id] = [side, price_ticks, leaves, account]

    def remove(self, order_id: int) -> None:
        i = self.pos.pop(order_id)
        last = self.ids.pop()
        if last != order_id:
            self.ids[i] = last
            self.pos[last] = i
        del self.info[order_id]

    def apply_events(self, rows: list[tuple[int, ...]], taker_id: int) -> tuple[int, bool]:
        """Update makers from fills; return the taker's last leaves (-1: none) and whether it
        was cancelled."""
        leaves = -1
        cancelled = False
        for row in rows:
            kind = row[_E_KIND]
            if kind == _FILLED:
                maker = row[_E_MAKER_ORDER_ID]
                if row[_E_MAKER_LEAVES] == 0:
                    self.remove(maker)
                else:
                    self.info[maker][2] = row[_E_MAKER_LEAVES]
                leaves = row[_E_LEAVES]
            elif kind == _CANCELLED and row[_E_ORDER_ID] == taker_id:
                cancelled = True
            elif kind == _REJECTED:
                raise RuntimeError(f"generated an invalid command (reason {row[_E_REASON]})")
        return leaves, cancelled


def generate(spec: WorkloadSpec) -> Workload:
    """Generate the stream for ``spec`` against a core engine in the loop. Deterministic."""
    rng = random.Random(spec.seed)
    draw = rng.random  # ints come from random() scaled: several times cheaper than randint
    engine = new_engine()
    book = _Book()
    half = spec.levels // 2
    centre = CENTRE_PRICE_TICKS
    buy, sell = int(Side.BUY), int(Side.SELL)
    gtc, ioc = int(TimeInForce.GTC), int(TimeInForce.IOC)
    place_kind, cancel_kind, amend_kind = (
        int(CommandKind.PLACE),
        int(CommandKind.CANCEL),
        int(CommandKind.AMEND),
    )
    buy_accounts = spec.accounts // 2
    sell_accounts = spec.accounts - buy_accounts
    qmax = spec.quantity_max_lots
    next_client_order_id = 1
    place_ids: list[int] = []
    ts_ns = 0

    def passive_price(side: int, bid: int, ask: int) -> int:
        # Uniform over this side's half of the span, never through the opposite best.
        if side == buy:
            hi = min(centre - 1, ask - 1) if ask else centre - 1
            lo = min(centre - half, hi)
            return lo + int(draw() * (hi - lo + 1))
        lo = max(centre + 1, bid + 1) if bid else centre + 1
        hi = max(centre + half, lo)
        return lo + int(draw() * (hi - lo + 1))

    def aggressive_price(side: int, bid: int, ask: int) -> int:
        # 0-2 ticks through the opposite best; passive when that side is empty.
        if side == buy:
            return ask + int(draw() * 3) if ask else passive_price(side, bid, ask)
        return bid - int(draw() * 3) if bid else passive_price(side, bid, ask)

    def place(rows: list[tuple[int, ...]], side: int, price: int, tif: int, crossing: bool) -> None:
        nonlocal next_client_order_id, ts_ns
        ts_ns += TS_STEP_NS
        quantity = 1 + int(draw() * qmax)
        if side == buy:
            account = int(draw() * buy_accounts)
        else:
            account = buy_accounts + int(draw() * sell_accounts)
        rows.append(
            (ts_ns, account, next_client_order_id, 0, price, quantity, place_kind, side, tif)
        )
        if crossing:
            engine.drain_events()  # earlier passive commands' events: nothing to learn
        order_id = engine.place(
            ts_ns,
            INSTRUMENT_ID,
            account,
            next_client_order_id,
            side,
            price,
            quantity,
            time_in_force=tif,
        )
        next_client_order_id += 1
        if order_id == 0:
            raise RuntimeError("generated an invalid place")
        place_ids.append(order_id)
        leaves, cancelled = quantity, False
        if crossing:
            last, cancelled = book.apply_events(engine.drain_events().tolist(), order_id)
            if last >= 0:
                leaves = last
        if tif == gtc and leaves > 0 and not cancelled:
            book.add(order_id, side, price, leaves, account)

    # -- pre-fill: passive only, so it never trades --
    pre = _Commands()
    for i in range(spec.resting_target):
        side = buy if i % 2 == 0 else sell
        bid, _, ask, _ = engine.bbo(INSTRUMENT_ID)
        place(pre.rows, side, passive_price(side, bid, ask), gtc, False)
    engine.drain_events()

    # -- the measured stream --
    cols = _Commands()
    rows = cols.rows
    kinds = list(MIX)
    # Draw every op kind up front: the mix is fixed, independent of the book.
    chosen = rng.choices(range(len(kinds)), weights=[MIX[k] for k in kinds], k=spec.ops)
    amend_i, gtc_i, cancel_i = kinds.index(AMEND), kinds.index(PLACE_GTC), kinds.index(CANCEL)
    aggressive = {AMEND: 0, PLACE_GTC: 0, PLACE_IOC: 0}
    ids, info = book.ids, book.info
    resting_sum = 0
    resting_min = resting_max = len(ids)
    span_samples: list[int] = []
    level_samples: list[int] = []
    for n, k in enumerate(chosen):
        count = len(ids)
        resting_sum += count
        if count < resting_min:
            resting_min = count
        elif count > resting_max:
            resting_max = count
        if n % 1_000 == 0:
            prices = [v[1] for v in info.values()]
            level_samples.append(len({(v[0], v[1]) for v in info.values()}))
            span_samples.append(max(prices) - min(prices) + 1)
        if n % 4_096 == 0:
            engine.drain_events()  # passive commands' events are never read: bound the buffer
        aggression = min(1.0, max(0.0, 0.5 + (count - spec.resting_target) / spec.control_band))
        bid, _, ask, _ = engine.bbo(INSTRUMENT_ID)
        if not ids and k in (amend_i, cancel_i):
            k = gtc_i  # an empty book has nothing to move; never happens near the target
        if k == amend_i:
            order_id = ids[int(draw() * count)]
            side, old_price, leaves, account = info[order_id]
            crossing = draw() < aggression * spec.amend_cross_max
            if crossing:
                price = aggressive_price(side, bid, ask)
                aggressive[AMEND] += 1
            else:
                price = passive_price(side, bid, ask)
            if price == old_price:
                price += -1 if side == buy else 1  # an amend must change something
            ts_ns += TS_STEP_NS
            rows.append((ts_ns, account, 0, order_id, price, leaves, amend_kind, side, 0))
            if crossing:
                engine.drain_events()
            reason = engine.amend(ts_ns, account, order_id, price, leaves)
            if reason:
                raise RuntimeError(f"generated an invalid amend (reason {reason})")
            new_leaves, cancelled = leaves, False
            if crossing:
                last, cancelled = book.apply_events(engine.drain_events().tolist(), order_id)
                if last >= 0:
                    new_leaves = last
            if cancelled or new_leaves == 0:
                book.remove(order_id)
            else:
                entry = info[order_id]
                entry[1] = price
                entry[2] = new_leaves
        elif k == cancel_i:
            order_id = ids[int(draw() * count)]
            account = info[order_id][3]
            ts_ns += TS_STEP_NS
            rows.append((ts_ns, account, 0, order_id, 0, 0, cancel_kind, 0, 0))
            reason = engine.cancel(ts_ns, account, order_id)
            if reason:
                raise RuntimeError(f"generated an invalid cancel (reason {reason})")
            book.remove(order_id)
        else:
            tif = gtc if k == gtc_i else ioc
            side = buy if draw() < 0.5 else sell
            crossing = draw() < (aggression * spec.gtc_cross_max if tif == gtc else aggression)
            if crossing:
                price = aggressive_price(side, bid, ask)
                aggressive[PLACE_GTC if tif == gtc else PLACE_IOC] += 1
            else:
                price = passive_price(side, bid, ask)
            place(rows, side, price, tif, crossing)
    engine.drain_events()

    stats: dict[str, Any] = {
        "aggressive_by_kind": aggressive,
        "resting_orders_mean": round(resting_sum / max(1, spec.ops), 1),
        "resting_orders_min": resting_min,
        "resting_orders_max": resting_max,
        "price_levels_occupied_mean": round(sum(level_samples) / max(1, len(level_samples)), 1),
        "price_span_levels_mean": round(sum(span_samples) / max(1, len(span_samples)), 1),
        "final_state_hash": engine.state_hash(),
    }
    return Workload(
        spec=spec,
        prefill=pre.array(),
        stream=cols.array(),
        place_order_ids=np.asarray(place_ids, dtype=np.int64),
        stats=stats,
    )


__all__ = [
    "INSTRUMENT",
    "INSTRUMENT_ID",
    "MIX",
    "Workload",
    "WorkloadSpec",
    "generate",
    "new_engine",
]
