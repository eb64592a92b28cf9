"""CPU time of the processes a benchmark drives, from /proc: which one saturates.

On a machine shared by client, gateway, engine, NATS and PostgreSQL, throughput alone does not
say where the time goes; the CPU each process burned during a phase, divided by the phase's
wall time, does (1.0 = one core busy the whole phase). Linux only: elsewhere every figure is
None. No psutil: it is not one of our dependencies, and two fields of /proc/PID/stat suffice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

_PROC = Path("/proc")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds user + system) of a live process, else None."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may itself hold spaces or parentheses.
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): state; ppid is field 4, utime 14, stime 15.
    ppid = int(fields[1])
    cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
    return name, ppid, cpu_s


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...). O(processes)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[1], []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def name_of(pid: int) -> str | None:
    stat = _stat(pid)
    return None if stat is None else stat[0]


def _machine_busy_s() -> float | None:
    """CPU seconds all cores spent busy since boot (not idle, not waiting for I/O)."""
    try:
        fields = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS_PER_S


class CpuMeter:
    """CPU seconds of named groups of processes between `start` and `stop`.

    Parameters
    ----------
    groups : mapping of str to list of int
        A name ("gateway", "engine", ...) to the pids whose CPU time it adds up.
    """

    def __init__(self, groups: Mapping[str, list[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items() if pids}
        self._start: dict[str, float | None] = {}
        self._wall_start = 0.0

    def _sample(self) -> dict[str, float | None]:
        sample: dict[str, float | None] = {"machine": _machine_busy_s()}
        for name, pids in self._groups.items():
            stats = [_stat(pid) for pid in pids]
            seconds = [s[2] for s in stats if s is not None]
            sample[name] = sum(seconds) if seconds else None
        return sample

    def start(self) -> None:
        self._wall_start = time.monotonic()
        self._start = self._sample()

    def stop(self) -> dict[str, float | None]:
        """Cores busy per group over the interval: CPU seconds / wall seconds, 2 decimals;
        also ``machine`` (all cores, every process) and ``others`` (machine minus groups)."""
        wall_s = max(1e-9, time.monotonic() - self._wall_start)
        end = self._sample()
        busy: dict[str, float | None] = {}
        for name, before in self._start.items():
            after = end.get(name)
            busy[name] = (
                None if before is None or after is None else round((after - before) / wall_s, 2)
            )
        # Whatever else ran meanwhile: another job on a shared machine shows here.
        ours = [v for k, v in busy.items() if k != "machine" and v is not None]
        machine = busy.get("machine")
        busy["others"] = None if machine is None else round(max(0.0, machine - sum(ours)), 2)
        return busy


__all__ = ["CpuMeter", "descendants", "name_of"]
