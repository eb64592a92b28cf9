"""How much the risk stage costs: the shard's `apply` against the bare core on the same orders.

Workload: 100 funded accounts on the demo BTC-USDT market place random limit orders within
50 ticks of a mid (so about half trade), in journal entries of `--entry-size` commands. The
baseline is the matching core's batch path alone on the same orders in the same run; the
shard adds decoding each entry, the risk pre-checks and holds, and the settlement of every
event into transfers and market data. The shard runs twice on the same entries: with the
compiled risk stage (engine/_risk.pyx, the default; the `shard_*` keys) and with the
plain-Python reference stage (engine/risk.py; the `reference_shard_*` keys). Prints JSON.

    python -m benchmarks.bench_shard [--entries N] [--entry-size K] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np

from engine._codes import CommandKind, OrderType, Side, TimeInForce
from engine._core import Engine
from engine._dtypes import COMMAND_DTYPE
from engine.markets import INSTRUMENTS, funding_commands, market_commands
from engine.messages import ENCODER, JOURNAL_DECODER, JournalEntry, PlaceOrder
from engine.shard import Shard

ACCOUNTS = list(range(100, 200))


def generate(entries: int, entry_size: int, seed: int) -> list[list[PlaceOrder]]:
    rng = random.Random(seed)
    out, coid = [], 0
    for _ in range(entries):
        batch = []
        for _ in range(entry_size):
            coid += 1
            batch.append(
                PlaceOrder(
                    account_id=rng.choice(ACCOUNTS),
                    instrument_id=1,
                    client_order_id=coid,
                    side=rng.choice([Side.BUY, Side.SELL]),
                    order_type=OrderType.LIMIT,
                    time_in_force=TimeInForce.GTC,
                    price_ticks=300_000 + rng.randint(-50, 50),
                    quantity_lots=rng.randint(1, 20),
                )
            )
        out.append(batch)
    return out


def run_shard(batches: list[list[PlaceOrder]], risk: str = "compiled") -> float:
    shard = Shard(risk=risk)
    setup = [*market_commands(), *funding_commands(ACCOUNTS)]
    shard.apply(1, JournalEntry(origin="bench", batch_id=1, ts_ns=1, commands=setup))
    payloads = [
        ENCODER.encode(JournalEntry(origin="bench", batch_id=i, ts_ns=i, commands=list(batch)))
        for i, batch in enumerate(batches, start=2)
    ]
    started = time.perf_counter()
    for seq, payload in enumerate(payloads, start=2):
        shard.apply(seq, JOURNAL_DECODER.decode(payload))
    return time.perf_counter() - started


def run_core(batches: list[list[PlaceOrder]]) -> float:
    core = Engine()
    d = INSTRUMENTS[0]
    core.add_instrument(
        d.instrument_id,
        price_increment_ticks=1,
        quantity_increment_lots=1,
        quantity_min_lots=d.quantity_min_lots,
        quantity_max_lots=d.quantity_max_lots,
        notional_min=d.notional_min,
        price_min_ticks=d.price_min_ticks,
        price_max_ticks=d.price_max_ticks,
    )
    arrays = []
    for i, batch in enumerate(batches, start=2):
        rows = np.zeros(len(batch), COMMAND_DTYPE)
        rows["ts_ns"], rows["kind"], rows["instrument_id"] = i, CommandKind.PLACE, 1
        rows["account_id"] = [c.account_id for c in batch]
        rows["client_order_id"] = [c.client_order_id for c in batch]
        rows["side"] = [c.side for c in batch]
        rows["price_ticks"] = [c.price_ticks for c in batch]
        rows["quantity_lots"] = [c.quantity_lots for c in batch]
        rows["order_type"], rows["time_in_force"], rows["stp_mode"] = 1, 1, 1
        arrays.append(rows)
    started = time.perf_counter()
    for rows in arrays:
        core.process(rows)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2_000)
    parser.add_argument("--entry-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    batches = generate(args.entries, args.entry_size, args.seed)
    orders = args.entries * args.entry_size
    print(f"bench_shard: {orders:,} orders in entries of {args.entry_size}", file=sys.stderr)
    core_s, shard_s = run_core(batches), run_shard(batches)
    reference_s = run_shard(batches, risk="reference")
    result = {
        "workload": {"orders": orders, "entry_size": args.entry_size, "seed": args.seed},
        "core_orders_per_s": round(orders / core_s),
        "shard_orders_per_s": round(orders / shard_s),
        "shard_entries_per_s": round(args.entries / shard_s),
        "risk_stage_cost_ratio": round(shard_s / core_s, 1),
        "reference_shard_orders_per_s": round(orders / reference_s),
        "reference_shard_entries_per_s": round(args.entries / reference_s),
        "reference_risk_stage_cost_ratio": round(reference_s / core_s, 1),
        "compiled_speedup": round(reference_s / shard_s, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
