"""The ledger benchmark runs and reports what it claims.

Method: a tiny run of `python -m benchmarks.bench_ledger` on the session's servers (passed as
NATS_URL / DATABASE_URL); its JSON must carry the consumer, the COPY ceiling and the lag run,
and every transfer of the workload must have been booked, through the ledger's fast path. No
timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_ledger_books_everything_and_prints_all_three_modes(
    nats_url: str, database_url: str
) -> None:
    command = [sys.executable, "-m", "benchmarks.bench_ledger", "--json", "--entries", "30"]
    out = subprocess.run(
        [*command, "--lag-duration-s", "0.2"],
        cwd=ROOT,
        env={**os.environ, "NATS_URL": nats_url, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    modes = result["modes"]
    assert modes["consumer"]["entries"] == 31  # the funding entry and 30 more
    assert modes["consumer"]["transfers"] == modes["copy_ceiling"]["rows"] > 0
    assert modes["consumer"]["fast_path_writes"] > 0  # the engine's rounds take the fast path
    assert result["transfers_per_s"] > 0 and result["copy_ceiling_per_s"] > 0
    assert modes["lag"]["fills"] > 0 and result["max_lag_ms_at_5k_fills_per_s"] > 0
    assert set(result["targets_met"]) == set(result["targets"])
