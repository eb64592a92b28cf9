"""Replays a benchmark stream through liquibook, the C++ book, driven from Python.

What the binding (liquibook 2.0.1, SWIG) offers, checked by hand before writing this:

- ``liquibook.SimpleOrderBook`` is an empty shell here: it has no ``add``, ``cancel`` or
  ``replace``. The usable books are ``liquibook_book_OrderBook`` (``OrderBook<shared_ptr<
  SimpleOrder>>``: matching only) and ``DepthOrderBook`` (the same plus aggregated depth). We
  drive the plain ``OrderBook``: it is the lighter of the two (so this favours liquibook), and
  the depth kept by ``DepthOrderBook`` is wrong anyway unless something calls
  ``SimpleOrder.fill`` on every fill, which only a Python listener could do here.
- The book finds an order for ``cancel`` and ``replace`` by the order object's own price, and
  the book never updates that price; ``SimpleOrderBook``'s C++ callbacks would. So after every
  replace that moves the price we call ``SimpleOrder.replace(0, new_price)`` from Python, and
  that only takes effect once ``SimpleOrder.accept()`` has been called. Without it, the next
  cancel or replace of that order is silently rejected ("not found").
- Immediate-or-cancel must be passed to ``add(order, oc_immediate_or_cancel)``: the condition
  given to the ``SimpleOrder`` constructor is ignored (such an order rests).
- No listener is attached during timed runs, so liquibook does no Python callbacks at all:
  matching, accepts and fills stay in C++. Our engines emit every event into a buffer that the
  benchmark drains; liquibook emits nothing. Both choices favour liquibook.

Mapping: GTC place -> ``add(order, 0)``, IOC place -> ``add(order, oc_immediate_or_cancel)``,
amend-price -> ``replace(order, 0, new_price)`` (size delta 0: our amend keeps the leaves),
cancel -> ``cancel(order)``. The workload has no self-matches (buys and sells come from
disjoint accounts), liquibook fills at the maker's price in price-time order like our engine,
so both books make the same trades; ``check_fills`` proves it on a prefix.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import liquibook
import numpy as np
import numpy.typing as npt

from benchmarks._workload import Workload
from engine import CommandKind, Side, TimeInForce

_AMEND, _PLACE, _CANCEL = 0, 1, 2
_IOC = int(liquibook.oc_immediate_or_cancel)


@dataclass
class Session:
    """A fresh liquibook book with the pre-fill applied, and the stream as ready-made calls."""

    book: Any
    ops: list[tuple[int, Any, int]]  # (op, SimpleOrder, new price or add condition)
    orders: dict[int, Any]  # our order id -> SimpleOrder


def prepare(workload: Workload, ops: int) -> Session:
    """Build a book, pre-fill it, and turn the first ``ops`` commands into liquibook calls.

    Every ``SimpleOrder`` is created (and marked accepted) here, before any clock starts: it
    is input, like the command array our engines get. Not timed.
    """
    prefill, stream = workload.prefill, workload.stream[:ops]
    place_ids = workload.place_order_ids.tolist()
    orders: dict[int, Any] = {}
    next_place = 0

    def new_order(row: dict[str, int]) -> Any:
        nonlocal next_place
        order = liquibook.SimpleOrder(
            row["side"] == Side.BUY, row["price_ticks"], row["quantity_lots"]
        )
        order.accept()  # SimpleOrder.replace (the price sync) is a no-op before this
        orders[place_ids[next_place]] = order
        next_place += 1
        return order

    book = liquibook.liquibook_book_OrderBook()
    for row in _rows(prefill):
        book.add(new_order(row), 0)
    calls: list[tuple[int, Any, int]] = []
    for row in _rows(stream):
        kind = row["kind"]
        if kind == CommandKind.AMEND:
            calls.append((_AMEND, orders[row["order_id"]], row["price_ticks"]))
        elif kind == CommandKind.PLACE:
            condition = _IOC if row["time_in_force"] == TimeInForce.IOC else 0
            calls.append((_PLACE, new_order(row), condition))
        elif kind == CommandKind.CANCEL:
            calls.append((_CANCEL, orders[row["order_id"]], 0))
        else:
            raise ValueError(f"no liquibook mapping for command kind {kind}")
    return Session(book=book, ops=calls, orders=orders)


def _rows(commands: npt.NDArray[Any]) -> list[dict[str, int]]:
    names = ("kind", "side", "price_ticks", "quantity_lots", "time_in_force", "order_id")
    columns = [commands[name].tolist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def run_throughput(session: Session) -> int:
    """Replay every op with no per-op timer; returns elapsed ns. GC is off while timed."""
    book = session.book
    add, cancel, replace = book.add, book.cancel, book.replace
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for op, order, x in session.ops:
            if op == _AMEND:
                replace(order, 0, x)
                order.replace(0, x)  # keep the order's own price in step (see module doc)
            elif op == _PLACE:
                add(order, x)
            else:
                cancel(order)
        return time.perf_counter_ns() - t0
    finally:
        gc.enable()


def run_latency(session: Session) -> tuple[int, npt.NDArray[np.int64]]:
    """Replay every op with perf_counter_ns around each; returns (elapsed ns, per-op ns)."""
    book = session.book
    add, cancel, replace = book.add, book.cancel, book.replace
    clock = time.perf_counter_ns
    samples: list[int] = []
    record = samples.append
    gc.disable()
    try:
        start = clock()
        for op, order, x in session.ops:
            if op == _AMEND:
                t0 = clock()
                replace(order, 0, x)
                order.replace(0, x)
                record(clock() - t0)
            elif op == _PLACE:
                t0 = clock()
                add(order, x)
                record(clock() - t0)
            else:
                t0 = clock()
                cancel(order)
                record(clock() - t0)
        elapsed = clock() - start
    finally:
        gc.enable()
    return elapsed, np.asarray(samples, dtype=np.int64)


def sync_call_ns(calls: int = 200_000) -> float:
    """What one ``SimpleOrder.replace`` price sync costs from Python, in ns (best of 3)."""
    order = liquibook.SimpleOrder(True, 100, 1)
    order.accept()
    sync = order.replace
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            sync(0, 100)
        best = min(best, (time.perf_counter_ns() - t0) / calls)
    return best


class _FillRecorder(liquibook.OrderListener):  # type: ignore[misc]
    """Records fills and rejects. Only for ``check_fills``: a Python listener slows the book."""

    def __init__(self) -> None:
        liquibook.OrderListener.__init__(self)
        self.fills: list[tuple[int, int, int, int]] = []  # liquibook ids: taker, maker, qty, px
        self.rejects: list[str] = []

    def on_fill(self, order: Any, matched: Any, quantity: int, cost: int) -> None:
        # The binding passes the fill price as ``cost`` (checked by hand against a cross).
        self.fills.append((order.order_id_, matched.order_id_, quantity, cost))

    # Every callback is pure virtual in the binding: the ones we do not need still exist.
    def on_accept(self, order: Any) -> None:
        pass

    def on_cancel(self, order: Any) -> None:
        pass

    def on_replace(self, order: Any, size_delta: int, new_price: int) -> None:
        pass

    def on_trigger_stop(self, order: Any) -> None:
        pass

    def on_reject(self, order: Any, reason: str) -> None:
        self.rejects.append(f"add {order.order_id_}: {reason}")

    def on_cancel_reject(self, order: Any, reason: str) -> None:
        self.rejects.append(f"cancel {order.order_id_}: {reason}")

    def on_replace_reject(self, order: Any, reason: str) -> None:
        self.rejects.append(f"replace {order.order_id_}: {reason}")


def check_fills(
    workload: Workload, ops: int, core_fills: Sequence[tuple[int, int, int, int]]
) -> dict[str, Any]:
    """Replay ``ops`` commands with a listener and compare every fill with the core's.

    ``core_fills`` are (taker order id, maker order id, quantity, price) of the core's FILLED
    events for the same commands, in order. Not timed.
    """
    session = prepare(workload, ops)
    recorder = _FillRecorder()
    session.book.set_order_listener(recorder)
    run_throughput(session)
    ours = {order.order_id_: order_id for order_id, order in session.orders.items()}
    fills = [(ours[t], ours[m], q, p) for t, m, q, p in recorder.fills]
    first_difference = next(
        (i for i, (a, b) in enumerate(zip(fills, core_fills, strict=False)) if a != b), None
    )
    same = fills == list(core_fills)
    return {
        "ops": ops,
        "liquibook_fills": len(fills),
        "core_fills": len(core_fills),
        "same_fills": same,
        "first_difference": None
        if same
        else (
            first_difference if first_difference is not None else min(len(fills), len(core_fills))
        ),
        "rejects": len(recorder.rejects),
        "reject_examples": recorder.rejects[:3],
    }


__all__ = ["Session", "check_fills", "prepare", "run_latency", "run_throughput", "sync_call_ns"]
