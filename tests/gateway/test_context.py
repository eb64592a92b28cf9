"""Goal: the gateway's memory of recent orders (for amends) stays bounded at O(1) a order."""

from __future__ import annotations

from gateway.context import RecentOrders


def test_recent_orders_keep_the_last_orders_and_drop_the_oldest_generation_whole() -> None:
    recent = RecentOrders(3)
    recent.update((order_id, (1, 11)) for order_id in range(1, 4))  # full: becomes the old one
    recent.update([(4, (2, 12))])
    assert [recent.get(i) for i in (1, 4, 9)] == [(1, 11), (2, 12), None]
    recent.update((order_id, (1, 11)) for order_id in range(5, 7))  # full again: 1-3 go
    assert recent.get(1) is None and recent.get(4) == (2, 12) and len(recent) == 3
