"""Per-customer sliding-window aggregates over event time.

A window holds the entries of the last ``window_ns`` (inclusive: an entry ``window_ns`` old is
still in), with their count and sum kept as they enter and leave, so each event costs O(1)
amortised. Time never goes back inside a window: an entry older than the newest one is counted
at the newest one's time (custody and the engine are separate streams; a late event still
counts, it just cannot reopen a window that closed). `ReferenceWindow` recomputes everything
from the full history: the tests' oracle and the benchmark's baseline.
"""

from __future__ import annotations

from collections import deque

from compliance.monitoring._limits import window_entries_max


class SlidingWindow:
    """Count and sum of (ts, value) entries within the window; distinct keys of `add_key`."""

    __slots__ = ("_keys", "capped", "entries", "now_ns", "total", "window_ns")

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self.entries: deque[tuple[int, int, str]] = deque()
        self.total = 0
        self.now_ns = 0
        self.capped = False  # entries were dropped at window_entries_max
        self._keys: dict[str, int] = {}

    def advance(self, now_ns: int) -> None:
        """Move the window's end to `now_ns` (never back) and drop what fell out. Amortised
        O(1): each entry is dropped once."""
        if now_ns > self.now_ns:
            self.now_ns = now_ns
        oldest_ns = self.now_ns - self.window_ns
        entries = self.entries
        while entries and entries[0][0] < oldest_ns:
            self._drop()

    def add(self, ts_ns: int, value: int, key: str = "") -> None:
        """Advance to `ts_ns`, then count one entry. Amortised O(1)."""
        self.advance(ts_ns)
        self.entries.append((self.now_ns, value, key))
        self.total += value
        if key:
            self._keys[key] = self._keys.get(key, 0) + 1
        if len(self.entries) > window_entries_max:
            self._drop()
            self.capped = True

    def _drop(self) -> None:
        _, value, key = self.entries.popleft()
        self.total -= value
        if key:
            left = self._keys[key] - 1
            if left:
                self._keys[key] = left
            else:
                del self._keys[key]

    @property
    def count(self) -> int:
        """Entries in the window. O(1)."""
        return len(self.entries)

    @property
    def distinct(self) -> int:
        """Different keys in the window. O(1)."""
        return len(self._keys)


class ReferenceWindow:
    """The same answers as `SlidingWindow`, recomputed from the whole history on every read.
    O(n) per read: for tests and as the benchmark's baseline only."""

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self.history: list[tuple[int, int, str]] = []
        self.now_ns = 0
        self.capped = False

    def advance(self, now_ns: int) -> None:
        self.now_ns = max(self.now_ns, now_ns)

    def add(self, ts_ns: int, value: int, key: str = "") -> None:
        self.advance(ts_ns)
        self.history.append((self.now_ns, value, key))

    def _inside(self) -> list[tuple[int, int, str]]:
        inside = [e for e in self.history if e[0] >= self.now_ns - self.window_ns]
        return inside[-window_entries_max:]

    @property
    def count(self) -> int:
        return len(self._inside())

    @property
    def total(self) -> int:
        return sum(value for _, value, _ in self._inside())

    @property
    def distinct(self) -> int:
        return len({key for _, _, key in self._inside() if key})


__all__ = ["ReferenceWindow", "SlidingWindow"]
