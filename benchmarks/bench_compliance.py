"""Compliance speed: screening one name against every sanctions list, with the blocking index
and against an exhaustive scan of every listed name in the same run.

Workload: the OFAC SDN (2021), UN consolidated (2026) and sanctioned-address lists of
`../shared/data/compliance`; the query names are 300 listed primary names (seeded sample) and
the first 300 `name1` values of the labelled name pairs, so about half should hit. Each name is
screened once to warm the token-similarity cache, then timed; `cold` clears that cache before
every name. The baseline scores the query against every indexed name (`compare_tokens`), which
is what the index saves, on the first `--baseline-names` names.

Transaction monitoring: a synthetic shard stream of `--monitoring-events` events over
`--monitoring-accounts` accounts, shaped as the engine writes it (EventBatches of 100 events:
85% fills with their fee and order-hold transfer rows, 10% deposits, 5% withdrawal requests;
amounts from 10 to 50,000 USD in USDT or BTC; account activity skewed 1/rank) plus custody
transfers (one per 50 events, with addresses, some labelled or from listed jurisdictions), 10 ms
of event time per batch. Timed: EventBatch bytes decoded, turned into monitored events and run
through every shipped rule (`monitoring_events_per_s`); also the rules alone on the decoded
events. The baseline is the same monitor with brute-force windows that rescan each customer's
whole history on every read, on the first `--monitoring-baseline-events` events, which must
raise the same alerts.

    python -m benchmarks.bench_compliance --json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from typing import Any

import numpy as np

from benchmarks._machine import load_average, machine_during
from compliance.alerts import ComplianceAlert
from compliance.monitoring import (
    CUSTODY_DECODER,
    CUSTODY_ENCODER,
    CustodyTransfer,
    Monitor,
    MonitoredEvent,
    ReferenceWindow,
    event_from_custody,
    events_from_batch,
    load_config,
)
from compliance.screening import ScreeningIndex, default_threshold, load_lists
from compliance.screening._evaluate import default_cases_path
from compliance.screening._matcher import compare_tokens
from compliance.screening._normalise import name_tokens
from compliance.screening._similarity import token_similarity
from engine._codes import TransferKind
from engine._dtypes import TRANSFER_DTYPE
from engine.messages import ENCODER, EVENTS_DECODER, EventBatch

TARGET_P99_MS = 1.0
TARGET_MONITORING_EVENTS_PER_S = 50_000


def progress(text: str) -> None:
    print(f"[bench_compliance {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def percentiles_ms(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1e6, 3)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1] / 1e6, 3)}


def query_names(entries: list[Any], count: int, seed: int) -> list[str]:
    listed = [e.primary_name for e in random.Random(seed).sample(entries, count)]
    with open(default_cases_path(), newline="") as f:
        pairs = [row["name1"] for row in csv.DictReader(f)][:count]
    return listed + pairs


def time_index(index: ScreeningIndex, names: list[str], *, cold: bool) -> list[int]:
    samples = []
    if not cold:
        # Warm means every name seen once: the index caches each query token's neighbourhood,
        # which a cold run (or the exhaustive baseline) would otherwise leave half-filled.
        for name in names:
            index.screen_name(name, default_threshold)
    for name in names:
        if cold:
            # Both caches: token pairs, and the index's per-query-token blocking work.
            token_similarity.cache_clear()
            index.cache_clear()
        started = time.perf_counter_ns()
        index.screen_name(name, default_threshold)
        samples.append(time.perf_counter_ns() - started)
    return samples


def time_exhaustive(index: ScreeningIndex, names: list[str]) -> list[int]:
    listed = [row[3] for row in index._names]  # every indexed name's tokens
    samples = []
    for name in names:
        query = name_tokens(name)
        started = time.perf_counter_ns()
        best = 0
        for tokens in listed:
            best = max(best, compare_tokens(query, tokens).score)
        samples.append(time.perf_counter_ns() - started)
    return samples


# -- transaction monitoring --

_BTC, _USDT = 1, 3
_MONITORING_BATCH_EVENTS = 100
_LABELS: tuple[list[str], ...] = ([], [], [], [], [], [], ["exchange"], ["mixer"], ["sanctioned"])
_JURISDICTIONS = ("", "", "", "DE", "FR", "US", "SG", "IR")


def monitoring_workload(
    events: int, accounts: int, seed: int
) -> tuple[list[tuple[bytes, list[bytes]]], int]:
    """(EventBatch bytes, custody messages after it) per batch, and the monitored event count."""
    rng = np.random.default_rng(seed)
    account_ids = np.arange(100, 100 + accounts)
    # Activity is skewed as on a real exchange: the k-th busiest account has weight 1/k, so a
    # few accounts (market makers, heavy traders) carry long window histories.
    weights = 1.0 / np.arange(1, accounts + 1)
    weights /= weights.sum()
    work: list[tuple[bytes, list[bytes]]] = []
    made = trade_id = order_id = custody_n = 0
    seq = 0
    while made < events:
        seq += 1
        ts_ns = 1_700_000_000 * 10**9 + seq * 10_000_000
        rows: list[tuple[int, ...]] = []
        n = min(_MONITORING_BATCH_EVENTS, events - made)
        kinds = rng.choice(3, size=n, p=[0.85, 0.10, 0.05])
        usd = np.exp(rng.uniform(np.log(10), np.log(50_000), size=n)).astype(np.int64)
        who = rng.choice(account_ids, size=(n, 2), p=weights)
        for i in range(n):
            a, b, dollars = int(who[i, 0]), int(who[i, 1]), int(usd[i])
            if a == b:  # self-trade prevention stops most of these in the engine
                b = 100 + (b - 99) % accounts
            if kinds[i] == 0:  # fill: quote one way, base the other, fees, the taker's hold
                trade_id += 1
                order_id += 2
                quote = dollars * 10**6
                base = max(1, dollars * 10**8 // 30_000)
                rows += [
                    (quote + quote // 1000, a, a, order_id, 0, _USDT, i, TransferKind.HOLD, 0, 1),
                    (quote, a, b, order_id, trade_id, _USDT, i, TransferKind.TRADE, 1, 0),
                    (quote // 1000, a, 1, order_id, trade_id, _USDT, i, TransferKind.FEE, 1, 0),
                    (base, b, a, order_id - 1, trade_id, _BTC, i, TransferKind.TRADE, 1, 0),
                    (quote // 5000, b, 1, order_id - 1, trade_id, _USDT, i, TransferKind.FEE, 0, 0),
                ]
            elif kinds[i] == 1:  # deposit, in USDT or BTC
                asset, amount = (_USDT, dollars * 10**6) if i % 3 else (_BTC, dollars * 3_333)
                rows.append((amount, 0, a, 0, 0, asset, i, TransferKind.DEPOSIT, 0, 0))
            else:  # withdrawal request: available -> held, no order
                rows.append((dollars * 10**6, a, a, 0, 0, _USDT, i, TransferKind.HOLD, 0, 1))
        batch = EventBatch(
            shard="0", journal_seq=seq, origin="bench", batch_id=seq, ts_ns=ts_ns,
            events=b"", transfers=np.array(rows, dtype=TRANSFER_DTYPE).tobytes(),
        )  # fmt: skip
        custody: list[bytes] = []
        for _ in range(n // 50):
            custody_n += 1
            custody.append(
                CUSTODY_ENCODER.encode(
                    CustodyTransfer(
                        transfer_id=f"c{custody_n}",
                        direction="deposit" if custody_n % 2 else "withdrawal",
                        account_id=int(rng.choice(account_ids, p=weights)), asset_id=_USDT,
                        amount_minor=int(usd[custody_n % n]) * 10**6, ts_ns=ts_ns,
                        chain="ethereum", address=f"0x{int(rng.integers(0, 5_000)):040x}",
                        counterparty_jurisdiction=_JURISDICTIONS[custody_n % 8],
                        address_labels=_LABELS[custody_n % 9],
                    )
                )
            )  # fmt: skip
        work.append((ENCODER.encode(batch), custody))
        made += n + len(custody)
    return work, made


def run_monitoring(
    monitor: Monitor, work: list[tuple[bytes, list[bytes]]]
) -> tuple[int, list[ComplianceAlert]]:
    """Decode, adapt and evaluate everything, in stream order: (events evaluated, alerts)."""
    alerts: list[ComplianceAlert] = []
    evaluate = monitor.evaluate
    events = 0
    for data, custody in work:
        for event in events_from_batch(EVENTS_DECODER.decode(data)):
            alerts += evaluate(event)
            events += 1
        for message in custody:
            alerts += evaluate(event_from_custody(CUSTODY_DECODER.decode(message)))
            events += 1
    return events, alerts


def decoded_events(work: list[tuple[bytes, list[bytes]]]) -> list[MonitoredEvent]:
    events: list[MonitoredEvent] = []
    for data, custody in work:
        events += events_from_batch(EVENTS_DECODER.decode(data))
        events += [event_from_custody(CUSTODY_DECODER.decode(m)) for m in custody]
    return events


def bench_monitoring(events: int, accounts: int, baseline_events: int, seed: int) -> dict[str, Any]:
    progress(f"monitoring: {events:,} events over {accounts:,} accounts")
    config = load_config()
    work, _ = monitoring_workload(events, accounts, seed)
    run_monitoring(Monitor(config), work[: max(1, len(work) // 10)])  # warm-up
    started = time.perf_counter()
    evaluated, alerts = run_monitoring(Monitor(config), work)
    end_to_end_s = time.perf_counter() - started
    plain = decoded_events(work)
    monitor = Monitor(config)
    started = time.perf_counter()
    rule_alerts = monitor.evaluate_many(plain)
    rules_s = time.perf_counter() - started
    assert len(rule_alerts) == len(alerts)
    prefix = plain[:baseline_events]
    progress(f"monitoring baseline: brute-force windows on {len(prefix):,} events")
    started = time.perf_counter()
    baseline_alerts = Monitor(config, window_factory=ReferenceWindow).evaluate_many(prefix)
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    fast_alerts = Monitor(config).evaluate_many(prefix)
    fast_s = time.perf_counter() - started
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.rule_id] = counts.get(alert.rule_id, 0) + 1
    kinds: dict[str, int] = {}
    for event in plain:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
    return {
        "monitoring_events_per_s": round(evaluated / end_to_end_s),
        "monitoring": {
            "events": evaluated,
            "accounts": accounts,
            "event_kinds": dict(sorted(kinds.items())),
            "batches": len(work),
            "alerts": dict(sorted(counts.items())),
            "end_to_end_events_per_s": round(evaluated / end_to_end_s),
            "rules_only_events_per_s": round(len(plain) / rules_s),
            "baseline_brute_force_windows": {
                "events": len(prefix),
                "events_per_s": round(len(prefix) / baseline_s),
                "sliding_windows_events_per_s": round(len(prefix) / fast_s),
                "same_alerts": baseline_alerts == fast_alerts,
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--names", type=int, default=300, help="of each kind")
    parser.add_argument("--baseline-names", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--monitoring-events", type=int, default=300_000)
    parser.add_argument("--monitoring-accounts", type=int, default=10_000)
    parser.add_argument("--monitoring-baseline-events", type=int, default=50_000)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    version = load_lists()
    loaded_s = time.perf_counter() - started
    index = ScreeningIndex(version)
    indexed_s = time.perf_counter() - started - loaded_s
    progress(f"{index.names_indexed:,} names of {len(version.entries):,} entries indexed")
    names = query_names(list(version.entries), args.names, args.seed)
    load_start = load_average()
    time_index(index, names, cold=False)  # warm-up
    warm = time_index(index, names, cold=False)
    cold = time_index(index, names, cold=True)
    progress(f"exhaustive baseline on {args.baseline_names} names")
    baseline = time_exhaustive(index, names[: args.baseline_names])
    indexed_same = time_index(index, names[: args.baseline_names], cold=False)
    warm_ms = percentiles_ms(warm)
    baseline_ms = percentiles_ms(baseline)
    monitoring = bench_monitoring(
        args.monitoring_events,
        args.monitoring_accounts,
        args.monitoring_baseline_events,
        args.seed,
    )
    result: dict[str, Any] = {
        "screen_p50_ms": warm_ms["p50"],
        "screen_p99_ms": warm_ms["p99"],
        "names_indexed": index.names_indexed,
        "monitoring_events_per_s": monitoring["monitoring_events_per_s"],
        "entries": len(version.entries),
        "list_version_id": version.version_id,
        "load_s": round(loaded_s, 3),
        "index_build_s": round(indexed_s, 3),
        "modes": {
            "indexed_warm": dict(warm_ms, names=len(warm)),
            "indexed_cold": dict(percentiles_ms(cold), names=len(cold)),
            "exhaustive_baseline": dict(baseline_ms, names=len(baseline)),
            "indexed_on_baseline_names": dict(
                percentiles_ms(indexed_same), names=len(indexed_same)
            ),
        },
        "speedup_over_exhaustive_p50": round(
            baseline_ms["p50"] / max(percentiles_ms(indexed_same)["p50"], 0.001), 1
        ),
        "monitoring": monitoring["monitoring"],
        "targets": {
            "screen_p99_ms_max": TARGET_P99_MS,
            "monitoring_events_per_s_min": TARGET_MONITORING_EVENTS_PER_S,
        },
        "targets_met": {
            "screen_p99_ms_max": warm_ms["p99"] < TARGET_P99_MS,
            "monitoring_events_per_s_min": monitoring["monitoring_events_per_s"]
            >= TARGET_MONITORING_EVENTS_PER_S,
        },
        "machine": machine_during(("msgspec",), load_start),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"screening p50 {warm_ms['p50']} ms, p99 {warm_ms['p99']} ms over"
            f" {index.names_indexed:,} names; exhaustive scan p50"
            f" {baseline_ms['p50']} ms; monitoring"
            f" {monitoring['monitoring_events_per_s']:,} events/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
