"""Compliance speed: screening one name against every sanctions list, with the blocking index
and against an exhaustive scan of every listed name in the same run.

Workload: the OFAC SDN (2021), UN consolidated (2026) and sanctioned-address lists of
`../shared/data/compliance`; the query names are 300 listed primary names (seeded sample) and
the first 300 `name1` values of the labelled name pairs, so about half should hit. Each name is
screened once to warm the token-similarity cache, then timed; `cold` clears that cache before
every name. The baseline scores the query against every indexed name (`compare_tokens`), which
is what the index saves, on the first `--baseline-names` names. Transaction monitoring is not
built yet: `monitoring_events_per_s` is null.

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

from benchmarks._machine import load_average, machine_during
from compliance.screening import ScreeningIndex, default_threshold, load_lists
from compliance.screening._evaluate import default_cases_path
from compliance.screening._matcher import compare_tokens
from compliance.screening._normalise import name_tokens
from compliance.screening._similarity import token_similarity

TARGET_P99_MS = 1.0


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
    for name in names:
        if cold:
            token_similarity.cache_clear()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--names", type=int, default=300, help="of each kind")
    parser.add_argument("--baseline-names", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
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
    result: dict[str, Any] = {
        "screen_p50_ms": warm_ms["p50"],
        "screen_p99_ms": warm_ms["p99"],
        "names_indexed": index.names_indexed,
        "monitoring_events_per_s": None,  # transaction monitoring is not built yet
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
        "targets": {"screen_p99_ms_max": TARGET_P99_MS},
        "targets_met": {"screen_p99_ms_max": warm_ms["p99"] < TARGET_P99_MS},
        "machine": machine_during(("msgspec",), load_start),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"screening p50 {warm_ms['p50']} ms, p99 {warm_ms['p99']} ms over"
            f" {index.names_indexed:,} names; exhaustive scan p50"
            f" {baseline_ms['p50']} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
