"""Book benchmark: the exchange-core order mix through four books, same stream, same run.

Workload (details and rationale in ``benchmarks/_workload.py``): one instrument; a pre-fill of
1,000 passive GTC orders over ~750 price levels (not timed); then ``--ops`` commands (default
2,000,000): 82% amend-price (move a resting order to a new price, keeping its leaves; some
cross and trade), 9% GTC limit place, 6% cancel, 3% IOC limit place; the book holds ~1,000
orders throughout; 1,000 accounts, buys and sells from disjoint halves (no self-trades);
events on. The stream is generated once from ``--seed`` against the compiled engine and then
replayed identically by every contender:

- ``batch``: ``Engine.process`` over chunks of 4,096 commands; per-op latency is the core's
  own per-command clock (``latency_ns``, CLOCK_MONOTONIC inside the core).
- ``per_call``: one ``Engine.place`` / ``cancel`` / ``amend`` Python call per command, events
  drained every 4,096 commands.
- ``reference``: ``ReferenceEngine`` (plain Python), the same calls, on a prefix of the stream.
- ``liquibook``: the liquibook C++ book (SWIG binding) from Python, add / cancel / replace, no
  Python listeners (see ``benchmarks/_liquibook_peer.py`` for what that costs and favours).

Method: every contender runs from a fresh, pre-filled book. Throughput (``ops_per_s``) comes
from passes with no per-op timer, best of ``--repeat`` (default 5), run round-robin across the
contenders so that other load on the machine hits them alike; latency percentiles come from one
more pass that times each op (perf_counter_ns around each Python call; for ``batch`` the core's
clock, which leaves out the per-chunk Python call). Python's GC is off while a Python-driven
pass runs. Correctness is checked outside the clock:
the core's state hash after each replay equals the generator's, the reference's equals the
core's on its prefix, and liquibook's fills equal the core's, one by one, on a prefix.

Usage: ``python -m benchmarks.bench_book [--json] [--ops N] [--seed S]``. A status line per
phase goes to stderr. Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks import _liquibook_peer as peer
from benchmarks._chart import render_svg
from benchmarks._machine import load_average, machine_during
from benchmarks._workload import (
    AMEND,
    INSTRUMENT,
    INSTRUMENT_ID,
    MIX,
    Workload,
    WorkloadSpec,
    generate,
)
from engine import CommandKind, Engine, EventKind, TimeInForce
from engine.reference import ReferenceEngine

CHUNK_COMMANDS = 4_096  # commands per process() call, and per-call commands per drain
REFERENCE_OPS = 100_000  # the plain-Python book would take minutes on the full stream
LIQUIBOOK_CHECK_OPS = 100_000  # prefix on which liquibook's fills are compared one by one
NAMES = ("batch", "per_call", "reference", "liquibook")
# Reported against, never asserted (house style: speed lives here, not in tests).
TARGETS = {
    "batch_ops_per_s_min": 5_000_000,
    "batch_vs_liquibook_min": 3.0,
    "per_call_vs_liquibook_min": 1.0,
    "batch_vs_reference_min": 20.0,
}

_FILLED = int(EventKind.FILLED)
_REJECTED = int(EventKind.REJECTED)
DESCRIPTION = (
    "exchange-core mix on one instrument: ~82% amend-price (move a resting order to a new "
    "price, leaves kept; may cross and trade), ~9% GTC limit place, ~6% cancel, ~3% IOC limit "
    "place; pre-fill of 1,000 passive GTC orders (not timed); ~1,000 resting orders spanning "
    "~750 price levels; 1,000 accounts, buys from 0-499 and sells from 500-999 (no self-trades; "
    "STP mode CANCEL_TAKER); events on for our engines (per call: drained every 4,096 commands; "
    "batch: returned per 4,096-command chunk). Generated adaptively from the seed against the "
    "core, then replayed identically by every contender (reference: a prefix). liquibook: the "
    "plain C++ OrderBook from Python with no Python listeners (its C++ callbacks only), which "
    "favours it; it emits no events to Python."
)
TIMING = (
    "ops_per_s: best of `repeat` passes with no per-op timer, run round-robin across "
    "contenders, each from a fresh pre-filled book, over the whole timed run (stream "
    "generation, pre-fill and building call tables are outside). A fresh engine first touches "
    "its pre-allocated tables inside the timed pass (see minor_page_faults_per_pass). "
    "Percentiles: one further pass timing every op. Python GC off during Python-driven passes."
)
# Op codes of the per-call replay table.
_OP_AMEND, _OP_GTC, _OP_CANCEL, _OP_IOC = 0, 1, 2, 3


def _status(message: str) -> None:
    print(f"[bench_book {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- ENGINES --


def _fresh(factory: Callable[[], Any], workload: Workload) -> Any:
    """An engine of ``factory`` with the instrument and the pre-fill applied. Not timed."""
    engine = factory()
    if engine.add_instrument(INSTRUMENT_ID, **INSTRUMENT):
        raise RuntimeError("add_instrument rejected")
    engine.drain_events()
    events = engine.process(workload.prefill)
    if np.count_nonzero(events["kind"] == _REJECTED):
        raise RuntimeError("pre-fill rejected")
    return engine


def _call_table(stream: npt.NDArray[Any]) -> list[tuple[int, ...]]:
    """The stream as (op, ts, account, a, b, c, d) tuples for the per-call loops. Not timed.

    amend: a=order id, b=price, c=leaves; place: a=client order id, b=side, c=price, d=qty;
    cancel: a=order id.
    """
    kind = stream["kind"]
    place = kind == CommandKind.PLACE
    op = np.full(len(stream), _OP_AMEND, dtype=np.int64)
    op[place & (stream["time_in_force"] == TimeInForce.GTC)] = _OP_GTC
    op[place & (stream["time_in_force"] == TimeInForce.IOC)] = _OP_IOC
    op[kind == CommandKind.CANCEL] = _OP_CANCEL
    unknown = ~(place | (kind == CommandKind.CANCEL) | (kind == CommandKind.AMEND))
    if unknown.any():
        raise ValueError("the per-call replay handles place, cancel and amend only")
    a = np.where(place, stream["client_order_id"], stream["order_id"])
    b = np.where(place, stream["side"], stream["price_ticks"])
    c = np.where(place, stream["price_ticks"], stream["quantity_lots"])
    d = np.where(place, stream["quantity_lots"], 0)
    columns = [op, stream["ts_ns"], stream["account_id"], a, b, c, d]
    return list(zip(*(col.tolist() for col in columns), strict=True))


def _chunks(items: list[tuple[int, ...]]) -> list[list[tuple[int, ...]]]:
    return [items[i : i + CHUNK_COMMANDS] for i in range(0, len(items), CHUNK_COMMANDS)]


def _per_call_throughput(engine: Any, chunks: list[list[tuple[int, ...]]]) -> tuple[int, int]:
    """One Python call per command, no per-op timer. Returns (elapsed ns, events)."""
    place, cancel, amend, drain = engine.place, engine.cancel, engine.amend, engine.drain_events
    ioc = int(TimeInForce.IOC)
    events = 0
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for chunk in chunks:
            for op, ts, account, a, b, c, d in chunk:
                if op == _OP_AMEND:
                    amend(ts, account, a, b, c)
                elif op == _OP_GTC:
                    place(ts, INSTRUMENT_ID, account, a, b, c, d)
                elif op == _OP_CANCEL:
                    cancel(ts, account, a)
                else:
                    place(ts, INSTRUMENT_ID, account, a, b, c, d, time_in_force=ioc)
            events += len(drain())  # events on: they are produced and handed over
        return time.perf_counter_ns() - t0, events
    finally:
        gc.enable()


@dataclass
class _Tally:
    """Outcome counts of one replay, from its events."""

    events: int = 0
    fills: int = 0
    rejects: int = 0
    fill_rows: list[tuple[int, int, int, int]] = field(default_factory=list)

    def add(self, events: npt.NDArray[Any], keep_fills: bool = False) -> None:
        self.events += len(events)
        filled = events["kind"] == _FILLED
        self.fills += int(np.count_nonzero(filled))
        self.rejects += int(np.count_nonzero(events["kind"] == _REJECTED))
        if keep_fills:
            f = events[filled]
            self.fill_rows += zip(
                f["order_id"].tolist(),
                f["maker_order_id"].tolist(),
                f["quantity_lots"].tolist(),
                f["price_ticks"].tolist(),
                strict=True,
            )


def _per_call_latency(
    engine: Any, chunks: list[list[tuple[int, ...]]]
) -> tuple[int, npt.NDArray[np.int64], _Tally]:
    """One Python call per command, perf_counter_ns around each call."""
    place, cancel, amend, drain = engine.place, engine.cancel, engine.amend, engine.drain_events
    ioc = int(TimeInForce.IOC)
    clock = time.perf_counter_ns
    samples: list[int] = []
    record = samples.append
    tally = _Tally()
    gc.disable()
    try:
        start = clock()
        for chunk in chunks:
            for op, ts, account, a, b, c, d in chunk:
                if op == _OP_AMEND:
                    t0 = clock()
                    amend(ts, account, a, b, c)
                    record(clock() - t0)
                elif op == _OP_GTC:
                    t0 = clock()
                    place(ts, INSTRUMENT_ID, account, a, b, c, d)
                    record(clock() - t0)
                elif op == _OP_CANCEL:
                    t0 = clock()
                    cancel(ts, account, a)
                    record(clock() - t0)
                else:
                    t0 = clock()
                    place(ts, INSTRUMENT_ID, account, a, b, c, d, time_in_force=ioc)
                    record(clock() - t0)
            tally.add(drain())
        elapsed = clock() - start
    finally:
        gc.enable()
    return elapsed, np.asarray(samples, dtype=np.int64), tally


def _batch_throughput(engine: Engine, chunks: list[npt.NDArray[Any]]) -> tuple[int, int]:
    process = engine.process
    events = 0
    t0 = time.perf_counter_ns()
    for chunk in chunks:
        events += len(process(chunk))
    return time.perf_counter_ns() - t0, events


def _batch_latency(
    engine: Engine, chunks: list[npt.NDArray[Any]], keep_fills_ops: int = 0
) -> tuple[npt.NDArray[np.int64], _Tally, _Tally]:
    """process() with latency_ns: per-command ns from the core's own clock.

    Also returns the tally of every event and, apart, of the first ``keep_fills_ops`` commands
    with their fills (for the liquibook check).
    """
    latency = np.zeros(sum(len(c) for c in chunks), dtype=np.int64)
    tally, prefix = _Tally(), _Tally()
    at = 0
    for chunk in chunks:
        events = engine.process(chunk, latency[at : at + len(chunk)])
        tally.add(events)
        if at < keep_fills_ops:
            # command_index restarts at 0 in every chunk; `at` is the chunk's first command.
            prefix.add(events[events["command_index"] + at < keep_fills_ops], keep_fills=True)
        at += len(chunk)
    return latency, tally, prefix


# -- RESULTS --


def _percentiles(samples: npt.NDArray[np.int64]) -> dict[str, int]:
    if len(samples) == 0:
        return {"p50_ns": 0, "p99_ns": 0, "p999_ns": 0, "max_ns": 0, "mean_ns": 0}
    # inverted_cdf: every percentile is an observed sample, an integer.
    p50, p99, p999 = np.quantile(samples, [0.5, 0.99, 0.999], method="inverted_cdf")
    return {
        "p50_ns": int(p50),
        "p99_ns": int(p99),
        "p999_ns": int(p999),
        "max_ns": int(samples.max()),
        "mean_ns": round(float(samples.mean())),
    }


def _result(
    name: str,
    ops: int,
    runs_ns: list[int],
    samples: npt.NDArray[np.int64],
    latency_source: str,
    **extra: Any,
) -> dict[str, Any]:
    best_ns = min(runs_ns)
    return {
        "name": name,
        "ops": ops,
        "ops_per_s": int(ops * 1_000_000_000 // max(1, best_ns)),
        **_percentiles(samples),
        "seconds_best": round(best_ns / 1e9, 6),
        "ops_per_s_runs": [int(ops * 1_000_000_000 // max(1, r)) for r in runs_ns],
        "latency_samples": len(samples),
        "latency_source": latency_source,
        **extra,
    }


def _ratio(results: dict[str, dict[str, Any]], a: str, b: str) -> float | None:
    if a not in results or b not in results or not results[b]["ops_per_s"]:
        return None
    return round(results[a]["ops_per_s"] / results[b]["ops_per_s"], 2)


# -- RUN --


@dataclass
class _Contender:
    """How to time one contender: fresh state (not timed), a timed pass, a latency pass."""

    name: str
    ops: int
    make: Callable[[], Any]
    timed: Callable[[Any], int]  # elapsed ns of one throughput pass over fresh state
    measure: Callable[[list[int]], dict[str, Any]]  # latency pass + result, given the runs


def _batch(
    workload: Workload, check_ops: int, core_fills: list[tuple[int, int, int, int]]
) -> _Contender:
    """``Engine.process`` over chunks. Its latency pass also fills ``core_fills`` with the
    core's fills on the first ``check_ops`` commands, for the liquibook check."""
    stream, ops = workload.stream, workload.spec.ops
    expected_hash = workload.stats["final_state_hash"]
    chunks = [stream[i : i + CHUNK_COMMANDS] for i in range(0, ops, CHUNK_COMMANDS)]

    def timed(engine: Engine) -> int:
        elapsed, _ = _batch_throughput(engine, chunks)
        if engine.state_hash() != expected_hash:
            raise RuntimeError("batch replay diverged from the generated stream")
        return elapsed

    def measure(runs: list[int]) -> dict[str, Any]:
        engine = _fresh(Engine, workload)
        samples, tally, prefix = _batch_latency(engine, chunks, keep_fills_ops=check_ops)
        core_fills[:] = prefix.fill_rows
        return _result(
            "batch",
            ops,
            runs,
            samples,
            "core clock_gettime(CLOCK_MONOTONIC) around each "
            "command inside process(); excludes the Python call, amortised over the chunk",
            events=tally.events,
            fills=tally.fills,
            rejects=tally.rejects,
            state_hash_matches=engine.state_hash() == expected_hash,
            chunk_commands=CHUNK_COMMANDS,
        )

    return _Contender("batch", ops, lambda: _fresh(Engine, workload), timed, measure)


def _per_call(name: str, factory: Callable[[], Any], workload: Workload, ops: int) -> _Contender:
    """A per-call contender (the core's or the reference's methods) on the first ``ops``."""
    stream = workload.stream[:ops]
    table = _chunks(_call_table(stream))
    if ops == workload.spec.ops:
        expected_hash = workload.stats["final_state_hash"]
    else:
        core = _fresh(Engine, workload)
        core.process(stream)
        expected_hash = core.state_hash()

    def timed(engine: Any) -> int:
        elapsed, _ = _per_call_throughput(engine, table)
        if engine.state_hash() != expected_hash:
            raise RuntimeError(f"{name} replay diverged from the core on the same commands")
        return elapsed

    def measure(runs: list[int]) -> dict[str, Any]:
        engine = _fresh(factory, workload)
        _, samples, tally = _per_call_latency(engine, table)
        return _result(
            name,
            ops,
            runs,
            samples,
            "time.perf_counter_ns around each Python call",
            events=tally.events,
            fills=tally.fills,
            rejects=tally.rejects,
            state_hash_matches=engine.state_hash() == expected_hash,
        )

    return _Contender(name, ops, lambda: _fresh(factory, workload), timed, measure)


def _liquibook(
    workload: Workload, ops: int, check_ops: int, core_fills: list[tuple[int, int, int, int]]
) -> _Contender:
    """liquibook from Python. Its measure step first proves it makes the core's trades."""

    def measure(runs: list[int]) -> dict[str, Any]:
        check = peer.check_fills(workload, check_ops, core_fills)
        if not check["same_fills"] or check["rejects"]:
            raise RuntimeError(f"liquibook does not make the core's trades: {check}")
        _, samples = peer.run_latency(peer.prepare(workload, ops))
        amends = workload.counts(ops)[AMEND]
        sync_ns = peer.sync_call_ns()
        return _result(
            "liquibook",
            ops,
            runs,
            samples,
            "time.perf_counter_ns around each op's binding calls (replace + price sync for amends)",
            book_class="liquibook_book_OrderBook (OrderBook<shared_ptr<SimpleOrder>>)",
            fill_check=check,
            price_sync_calls=amends,
            price_sync_call_ns=round(sync_ns, 1),
            # Throughput if the price sync (bookkeeping SimpleOrderBook would do in C++) were
            # free: a bound in liquibook's favour.
            ops_per_s_without_price_sync=int(ops * 1e9 / max(1.0, min(runs) - amends * sync_ns)),
        )

    return _Contender(
        "liquibook", ops, lambda: peer.prepare(workload, ops), peer.run_throughput, measure
    )


def _measure_all(contenders: list[_Contender], repeat: int) -> dict[str, dict[str, Any]]:
    """Throughput passes round-robin (so a noisy neighbour hits every contender alike, and
    the order rotates each round), then each contender's latency pass."""
    runs: dict[str, list[int]] = {c.name: [] for c in contenders}
    # A fresh engine first touches its pre-allocated tables inside the timed pass; the page
    # faults that costs are counted so that a reader can tell it from matching work.
    faults: dict[str, list[int]] = {c.name: [] for c in contenders}
    for round_index in range(repeat):
        shift = round_index % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            _status(
                f"round {round_index + 1}/{repeat}: {c.name} throughput over {c.ops:,} commands"
            )
            state = c.make()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            runs[c.name].append(c.timed(state))
            faults[c.name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            del state
    results = {}
    for c in contenders:
        _status(f"{c.name}: latency pass over {c.ops:,} commands")
        results[c.name] = c.measure(runs[c.name])
        results[c.name]["minor_page_faults_per_pass"] = faults[c.name]
    return results


def run_benchmark(
    *,
    ops: int = 2_000_000,
    seed: int = 1,
    reference_ops: int = REFERENCE_OPS,
    liquibook_ops: int | None = None,
    liquibook_check_ops: int = LIQUIBOOK_CHECK_OPS,
    repeat: int = 5,
    workload: Workload | None = None,
) -> dict[str, Any]:
    """Generate the stream, run every contender on it, and return the JSON-ready report.

    ``reference_ops`` and ``liquibook_ops`` (default: all) are prefixes of the same stream.
    A given ``workload`` replaces generation (``ops`` and ``seed`` are then its own).
    """
    started = time.perf_counter()
    load_at_start = load_average()  # other work on the machine shows up in the figures
    generation_s = 0.0
    if workload is None:
        _status(f"generating {ops:,} commands (seed {seed}) against the core in the loop")
        t0 = time.perf_counter()
        workload = generate(WorkloadSpec(ops=ops, seed=seed))
        generation_s = time.perf_counter() - t0
    spec = workload.spec
    ops = spec.ops
    reference_ops = min(reference_ops, ops)
    liquibook_ops = ops if liquibook_ops is None else min(liquibook_ops, ops)
    check_ops = min(liquibook_check_ops, liquibook_ops)
    core_fills: list[tuple[int, int, int, int]] = []  # filled by batch's latency pass
    results = _measure_all(
        [
            _batch(workload, check_ops, core_fills),
            _per_call("per_call", Engine, workload, ops),
            _per_call("reference", ReferenceEngine, workload, reference_ops),
            _liquibook(workload, liquibook_ops, check_ops, core_fills),
        ],
        repeat,
    )

    ratios = {
        "batch_vs_liquibook": _ratio(results, "batch", "liquibook"),
        "per_call_vs_liquibook": _ratio(results, "per_call", "liquibook"),
        "batch_vs_reference": _ratio(results, "batch", "reference"),
        "per_call_vs_reference": _ratio(results, "per_call", "reference"),
        "batch_vs_per_call": _ratio(results, "batch", "per_call"),
        "liquibook_vs_reference": _ratio(results, "liquibook", "reference"),
    }
    targets_met = {
        "batch_ops_per_s_min": results["batch"]["ops_per_s"] >= TARGETS["batch_ops_per_s_min"],
        "batch_vs_liquibook_min": (ratios["batch_vs_liquibook"] or 0)
        >= TARGETS["batch_vs_liquibook_min"],
        "per_call_vs_liquibook_min": (ratios["per_call_vs_liquibook"] or 0)
        >= TARGETS["per_call_vs_liquibook_min"],
        "batch_vs_reference_min": (ratios["batch_vs_reference"] or 0)
        >= TARGETS["batch_vs_reference_min"],
    }
    stats = {k: v for k, v in workload.stats.items() if k != "final_state_hash"}
    report = {
        "results": [results[name] for name in NAMES],
        "workload": {
            "description": DESCRIPTION,
            "seed": spec.seed,
            "ops": ops,
            "ops_by_kind": workload.counts(),
            "mix_target": MIX,
            "ops_per_contender": {name: results[name]["ops"] for name in NAMES},
            "prefill_orders": len(workload.prefill),
            "resting_orders_target": spec.resting_target,
            "accounts": spec.accounts,
            "price_span_target_levels": spec.levels,
            "quantity_lots_range": [1, spec.quantity_max_lots],
            **stats,
            # liquibook emits no events to Python; its fills are counted only in the check.
            "events_emitted": {name: results[name].get("events") for name in NAMES},
            "fills": {name: results[name].get("fills") for name in NAMES},
            "liquibook_fill_check": results["liquibook"]["fill_check"],
            "instrument": INSTRUMENT,
            "generation_s": round(generation_s, 2),
            "repeat": repeat,
            "timing": TIMING,
        },
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": targets_met,
        "machine": machine_during(
            ("numpy", "liquibook", "sortedcontainers", "Cython"), load_at_start
        ),
    }
    _status(f"done in {time.perf_counter() - started:.1f} s")
    return report


def _table(report: dict[str, Any]) -> Iterator[str]:
    w = report["workload"]
    yield (
        f"book benchmark: {w['ops']:,} commands, seed {w['seed']}, "
        f"~{w['resting_orders_mean']:.0f} resting orders over ~{w['price_span_levels_mean']:.0f}"
        f" levels, {w['accounts']:,} accounts"
    )
    yield "mix: " + ", ".join(f"{k} {v:,}" for k, v in w["ops_by_kind"].items())
    yield ""
    header = (
        f"{'contender':<10} {'ops':>10} {'ops/s':>12} {'p50 ns':>8} {'p99 ns':>8} "
        f"{'p99.9 ns':>9} {'max ns':>10}"
    )
    yield header
    yield "-" * len(header)
    for r in report["results"]:
        yield (
            f"{r['name']:<10} {r['ops']:>10,} {r['ops_per_s']:>12,} {r['p50_ns']:>8,} "
            f"{r['p99_ns']:>8,} {r['p999_ns']:>9,} {r['max_ns']:>10,}"
        )
    yield ""
    for name, value in report["ratios"].items():
        yield f"{name:<24} {value}x"
    yield ""
    for name, met in report["targets_met"].items():
        yield f"target {name:<26} {report['targets'][name]:>12,} {'met' if met else 'NOT met'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_book",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--ops", type=int, default=2_000_000, help="measured commands")
    parser.add_argument("--seed", type=int, default=1, help="stream seed")
    parser.add_argument(
        "--reference-ops",
        type=int,
        default=REFERENCE_OPS,
        help="prefix the plain-Python reference replays",
    )
    parser.add_argument(
        "--liquibook-ops",
        type=int,
        default=None,
        help="prefix liquibook replays (default: the whole stream)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="throughput passes per contender, round-robin (best kept)",
    )
    parser.add_argument("--chart", metavar="SVG", help="also draw the results into this file")
    args = parser.parse_args(argv)
    if args.ops < 1 or args.repeat < 1:
        parser.error("--ops and --repeat must be at least 1")
    report = run_benchmark(
        ops=args.ops,
        seed=args.seed,
        reference_ops=args.reference_ops,
        liquibook_ops=args.liquibook_ops,
        repeat=args.repeat,
    )
    if args.chart:
        title = f"bench_book: {args.ops:,} commands, exchange-core mix (same stream, same run)"
        Path(args.chart).write_text(render_svg(report, title))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(_table(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
