"""The compliance benchmark runs and reports what it claims.

Method: a tiny run of `python -m benchmarks.bench_compliance`; its JSON must carry the issue's
fields and both contenders (the index and the exhaustive scan) on the same names, and for
monitoring the events/s with its brute-force-window baseline on the same events, raising the
same alerts. No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_compliance_prints_the_index_and_its_baseline() -> None:
    command = [sys.executable, "-m", "benchmarks.bench_compliance", "--json"]
    tiny_monitoring = ["--monitoring-events", "3000", "--monitoring-accounts", "200"]
    tiny_monitoring += ["--monitoring-baseline-events", "1000"]
    out = subprocess.run(
        [*command, "--names", "5", "--baseline-names", "2", *tiny_monitoring],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["names_indexed"] > 20_000 and result["entries"] > 9_000
    assert result["screen_p50_ms"] > 0 and result["screen_p99_ms"] >= result["screen_p50_ms"]
    assert result["monitoring_events_per_s"] > 0
    monitoring = result["monitoring"]
    assert monitoring["events"] == 3000
    assert monitoring["event_kinds"]["fill"] > monitoring["event_kinds"]["deposit"] > 0
    assert monitoring["alerts"]["VASP-001"] > 0
    baseline = monitoring["baseline_brute_force_windows"]
    assert baseline["events"] == 1000 and baseline["same_alerts"] is True
    assert baseline["events_per_s"] > 0 and baseline["sliding_windows_events_per_s"] > 0
    assert "monitoring_events_per_s_min" in result["targets_met"]
    modes = result["modes"]
    assert modes["indexed_warm"]["names"] == 10
    assert modes["exhaustive_baseline"]["names"] == modes["indexed_on_baseline_names"]["names"] == 2
