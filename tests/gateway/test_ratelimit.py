"""Per-key token buckets (gateway.ratelimit).

Goal: a key gets its burst at once, then exactly its rate, never more; keys do not share tokens;
a batch takes one token per order and is refused whole. Method: a fake monotonic clock that the
test advances by hand, worked examples, and a Hypothesis property over random schedules of
takes and clock steps: the tokens granted up to any moment never exceed
``burst + rate * elapsed``, and the bucket's invariants hold after every step.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from gateway.ratelimit import RateLimits, TokenBuckets, orders_burst_max

NS_PER_S = 1_000_000_000


class FakeClock:
    """Monotonic nanoseconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now_ns = 1_000 * NS_PER_S

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, ns: int) -> None:
        self.now_ns += ns


def test_burst_then_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=10, burst=5, clock_ns=clock)
    assert all(buckets.take("k") for _ in range(5))
    assert not buckets.take("k")
    clock.advance(NS_PER_S // 10 - 1)  # just short of one token
    assert not buckets.take("k")
    clock.advance(1)
    assert buckets.take("k")
    assert not buckets.take("k")
    clock.advance(3600 * NS_PER_S)  # a long rest refills to the burst, no further
    assert all(buckets.take("k") for _ in range(5))
    assert not buckets.take("k")
    buckets._check()


def test_batch_takes_one_token_per_order_and_is_refused_whole() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=1, burst=10, clock_ns=clock)
    assert buckets.take("k", 7)
    assert not buckets.take("k", 4)  # 3 left: refused, and nothing taken
    assert buckets.take("k", 3)
    assert not buckets.take("k", 11)  # more than the burst can never pass
    assert buckets.take("k", 0)


def test_keys_do_not_share_tokens_and_forget_refills() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=1, burst=2, clock_ns=clock)
    assert buckets.take("a", 2)
    assert not buckets.take("a")
    assert buckets.take("b", 2)
    buckets.forget("a")
    assert buckets.take("a", 2)


def test_clock_stepping_back_grants_nothing() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=1, burst=1, clock_ns=clock)
    assert buckets.take("k")
    clock.advance(-10 * NS_PER_S)
    assert not buckets.take("k")
    clock.advance(10 * NS_PER_S)  # back where it was: still no time has passed
    assert not buckets.take("k")
    clock.advance(NS_PER_S)
    assert buckets.take("k")
    buckets._check()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate_per_s=0, burst=1)
    with pytest.raises(ValueError):
        TokenBuckets(rate_per_s=1, burst=0)
    with pytest.raises(ValueError):
        TokenBuckets(rate_per_s=1, burst=1).take("k", -1)


def test_default_limits_admit_a_full_batch() -> None:
    limits = RateLimits()
    assert limits.orders_burst_max == orders_burst_max
    assert limits.orders_per_s_max <= limits.orders_burst_max
    assert limits.calls_per_s_max <= limits.calls_burst_max


@settings(deadline=None)
@given(
    rate_per_s=st.integers(1, 1_000),
    burst=st.integers(1, 1_000),
    steps=st.lists(
        st.tuples(
            st.integers(0, 2 * NS_PER_S),  # clock step before the take
            st.sampled_from(["a", "b"]),
            st.integers(0, 50),  # tokens asked
        ),
        max_size=200,
    ),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate_per_s: int, burst: int, steps: list[tuple[int, str, int]]
) -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=rate_per_s, burst=burst, clock_ns=clock)
    first_take_ns: dict[str, int] = {}
    granted: dict[str, int] = {"a": 0, "b": 0}
    for step_ns, key, n in steps:
        clock.advance(step_ns)
        first_take_ns.setdefault(key, clock.now_ns)
        if buckets.take(key, n):
            granted[key] += n
        elapsed_ns = clock.now_ns - first_take_ns[key]
        # Compared in token-nanoseconds so that the bound is exact, with no rounding.
        assert granted[key] * NS_PER_S <= burst * NS_PER_S + rate_per_s * elapsed_ns
        buckets._check()
