"""The shard benchmark runs and reports what it claims.

Method: a tiny run of `python -m benchmarks.bench_shard`; its JSON must carry every contender
(the bare core, the shard on the compiled risk stage, the shard on the reference stage) on the
same workload. No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_shard_prints_every_contender() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_shard", "--entries", "20", "--entry-size", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["workload"]["orders"] == 200
    assert result["core_orders_per_s"] > 0 and result["shard_orders_per_s"] > 0
    assert result["risk_stage_cost_ratio"] > 0
    assert result["reference_shard_orders_per_s"] > 0
    assert result["reference_risk_stage_cost_ratio"] > 0
    assert result["compiled_speedup"] > 0
