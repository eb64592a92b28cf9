"""What machine and code a benchmark ran on: CPU, Python, package versions, git commit, load.

A figure without its machine cannot be compared with another; the load averages show whether
something else was running at the same time (on a 2-core machine, a neighbour halves a result).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: how busy the machine was around the run."""
    return [round(x, 2) for x in os.getloadavg()]


def machine(packages: tuple[str, ...]) -> dict[str, Any]:
    """The machine, the interpreter, the versions of ``packages`` and the git commit."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
        "perf_counter_resolution_ns": time.get_clock_info("perf_counter").resolution * 1e9,
    }


def machine_during(packages: tuple[str, ...], load_at_start: list[float]) -> dict[str, Any]:
    """`machine` plus the load average when the run started and now: how busy the machine was
    with other work while it measured."""
    return machine(packages) | {
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


__all__ = ["load_average", "machine", "machine_during"]
