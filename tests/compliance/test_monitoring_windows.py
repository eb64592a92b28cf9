"""The sliding windows equal a brute-force recomputation over the whole history.

Method: Hypothesis drives a `SlidingWindow` and a `ReferenceWindow` (which rescans every entry
it was given on each read) with the same adds and advances, times sometimes going back (late
events), and compares count, sum and distinct keys after each step. A stateful machine then runs
two whole monitors, one on sliding windows and one on the reference, over random events, and
requires the same alerts after every event: the O(1) windows change nothing the rules decide.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from compliance.alerts import ALERT_ENCODER
from compliance.monitoring import (
    Monitor,
    MonitoredEvent,
    ReferenceWindow,
    SlidingWindow,
    load_config,
)

S = 1_000_000_000

steps = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "advance"]),
        st.integers(-50, 400),  # seconds moved, sometimes back
        st.integers(0, 10**9),
        st.sampled_from(["", "a", "b", "c", "d"]),
    ),
    max_size=80,
)


@given(window_s=st.integers(1, 300), steps=steps)
@settings(max_examples=300, deadline=None)
def test_sliding_window_equals_brute_force(window_s: int, steps: list[Any]) -> None:
    fast, slow = SlidingWindow(window_s * S), ReferenceWindow(window_s * S)
    ts = 10**6 * S
    for op, moved_s, value, key in steps:
        ts += moved_s * S
        if op == "add":
            fast.add(ts, value, key)
            slow.add(ts, value, key)
        else:
            fast.advance(ts)
            slow.advance(ts)
        assert (fast.count, fast.total, fast.distinct) == (slow.count, slow.total, slow.distinct)


class TwoMonitors(RuleBasedStateMachine):
    """The shipped rules on sliding windows and on brute-force windows, event by event."""

    def __init__(self) -> None:
        super().__init__()
        config = load_config()
        self.fast = Monitor(config, relation_groups=[[10, 11]])
        self.slow = Monitor(config, relation_groups=[[10, 11]], window_factory=ReferenceWindow)
        self.ts_ns = 0
        self.n = 0
        self.alerts = 0

    def _both(self, event: MonitoredEvent) -> None:
        fast, slow = self.fast.evaluate(event), self.slow.evaluate(event)
        assert [ALERT_ENCODER.encode(a) for a in fast] == [ALERT_ENCODER.encode(a) for a in slow]
        self.alerts += len(fast)

    def _ref(self) -> str:
        self.n += 1
        return f"m/{self.n}"

    @rule(
        kind=st.sampled_from(["deposit", "withdrawal"]),
        account=st.integers(10, 13),
        dollars=st.sampled_from([100, 800, 999, 1000, 4000, 9000, 9500, 9999, 10000, 20000]),
        gap_s=st.integers(0, 30_000),
        btc=st.booleans(),
    )
    def transfer(self, kind: str, account: int, dollars: int, gap_s: int, btc: bool) -> None:
        self.ts_ns += gap_s * S
        asset, amount = (1, dollars * 10**8 // 30_000) if btc else (3, dollars * 10**6)
        self._both(
            MonitoredEvent(
                ref=self._ref(), source="engine", kind=kind, ts_ns=self.ts_ns,  # type: ignore[arg-type]
                account_id=account, asset_id=asset, amount_minor=amount,
            )
        )  # fmt: skip

    @rule(
        kind=st.sampled_from(["deposit", "withdrawal"]),
        account=st.integers(10, 13),
        address=st.integers(0, 15),
        labels=st.sampled_from([(), ("mixer",), ("sanctioned",), ("exchange",)]),
        jurisdiction=st.sampled_from(["", "DE", "KP"]),
        gap_s=st.integers(-100, 5_000),  # custody can be late
    )
    def custody(
        self, kind: str, account: int, address: int, labels: Any, jurisdiction: str, gap_s: int
    ) -> None:
        self.ts_ns = max(0, self.ts_ns + gap_s * S)
        self._both(
            MonitoredEvent(
                ref=self._ref(), source="custody", kind=kind, ts_ns=self.ts_ns,  # type: ignore[arg-type]
                account_id=account, asset_id=3, amount_minor=10**6, chain="bitcoin",
                counterparty_address=f"addr{address}", address_labels=labels,
                counterparty_jurisdiction=jurisdiction,
            )
        )  # fmt: skip

    @rule(buyer=st.integers(10, 13), seller=st.integers(10, 13), price=st.integers(20, 40))
    def fill(self, buyer: int, seller: int, price: int) -> None:
        self._both(
            MonitoredEvent(
                ref=self._ref(), source="engine", kind="fill", ts_ns=self.ts_ns,
                account_id=buyer, counter_account_id=seller, asset_id=1, amount_minor=10**7,
                quote_asset_id=3, quote_minor=price * 100 * 10**6,
            )
        )  # fmt: skip

    @invariant()
    def windows_agree(self) -> None:
        assert self.fast.windows.keys() == self.slow.windows.keys()
        for key, window in self.fast.windows.items():
            other = self.slow.windows[key]
            assert (window.count, window.total, window.distinct) == (
                other.count, other.total, other.distinct,
            )  # fmt: skip
        assert self.fast.fired_ns == self.slow.fired_ns


TestTwoMonitors = TwoMonitors.TestCase
TestTwoMonitors.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
