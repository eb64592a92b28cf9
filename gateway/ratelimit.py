"""Per-key rate limits: a token bucket for each API key, in integers, with an injected clock.

A bucket holds at most ``burst`` tokens and gains ``rate_per_s`` tokens a second; a call (or each
order of a batch) takes tokens, and a call that finds too few is refused whole (the gateway
answers RESOURCE_EXHAUSTED). Over any interval of ``t`` seconds a key is granted at most
``burst + rate_per_s * t`` tokens. Levels are kept in token-nanoseconds, so the arithmetic is
exact integers with no drift.

Buckets are keyed by API key id, after authentication: only real keys get a bucket, so their
number is bounded by the key table and a stranger cannot grow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

_NS_PER_S = 1_000_000_000

# Sustained orders a second per key (each order of a batch counts): above any human trader and
# most algorithms, well below what one gateway can pass to an engine shard.
orders_per_s_max = 500
# Orders a key may send at once after a quiet spell: a market maker's full requote (a batch of
# up to the gateway's batch_commands_max) must fit, so this must not be smaller than that.
orders_burst_max = 1_000
# Sustained non-order calls a second per key (queries, account reads, control): they cost a
# database or engine round trip each, and nobody needs to poll faster.
calls_per_s_max = 50
# Non-order calls a key may send at once: a client's start-up (instruments, balances, orders).
calls_burst_max = 100


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """The per-key limits a gateway applies; each default is the module constant of that name."""

    orders_per_s_max: int = orders_per_s_max
    orders_burst_max: int = orders_burst_max
    calls_per_s_max: int = calls_per_s_max
    calls_burst_max: int = calls_burst_max


class TokenBuckets:
    """One token bucket per key, all with the same rate and burst.

    Parameters
    ----------
    rate_per_s : int
        Tokens each bucket gains per second; positive.
    burst : int
        Most tokens a bucket holds; a new key starts full. Positive.
    clock_ns : callable, optional
        Monotonic time in nanoseconds; `time.monotonic_ns` unless a test injects its own.
    """

    def __init__(
        self, rate_per_s: int, burst: int, clock_ns: Callable[[], int] = time.monotonic_ns
    ) -> None:
        if rate_per_s <= 0 or burst <= 0:
            raise ValueError(f"rate_per_s and burst must be positive: {rate_per_s}, {burst}")
        self._rate_per_s = rate_per_s
        self._capacity = burst * _NS_PER_S  # in token-nanoseconds
        self._clock_ns = clock_ns
        # key -> [level in token-nanoseconds, clock reading of that level]
        self._buckets: dict[str, list[int]] = {}

    def take(self, key_id: str, n: int = 1) -> bool:
        """Take ``n`` tokens from the key's bucket if it holds that many. O(1).

        Parameters
        ----------
        key_id : str
            The API key.
        n : int
            Tokens wanted: 1 for a call, the number of orders for a batch. A request for more
            than ``burst`` can never be granted.

        Returns
        -------
        bool
            True if granted (the tokens are gone); False if refused (nothing taken).
        """
        if n < 0:
            raise ValueError(f"cannot take a negative number of tokens: {n}")
        now_ns = self._clock_ns()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = [self._capacity, now_ns]
        else:
            # max(0, ...): a clock that steps back grants nothing rather than taking away.
            elapsed_ns = max(0, now_ns - bucket[1])
            bucket[0] = min(self._capacity, bucket[0] + elapsed_ns * self._rate_per_s)
            bucket[1] = max(bucket[1], now_ns)
        wanted = n * _NS_PER_S
        if bucket[0] < wanted:
            return False
        bucket[0] -= wanted
        return True

    def forget(self, key_id: str) -> None:
        """Drop a key's bucket (its key was revoked); a later `take` starts it full."""
        self._buckets.pop(key_id, None)

    def _check(self) -> None:
        """Assert every invariant; tests call it after each step."""
        for key_id, (level, _) in self._buckets.items():
            assert 0 <= level <= self._capacity, (key_id, level, self._capacity)


__all__ = [
    "RateLimits",
    "TokenBuckets",
    "calls_burst_max",
    "calls_per_s_max",
    "orders_burst_max",
    "orders_per_s_max",
]
