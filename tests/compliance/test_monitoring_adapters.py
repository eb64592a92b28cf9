"""The EventBatch adapter finds every fill, deposit and withdrawal request, with the right sides.

Method: a seeded engine flow (engine/simulate.py) applied to a real shard; the adapter's events
are checked against the transfer rows counted one by one and against the engine's own FILLED
event rows (taker side says who bought). Broken batches raise `BatchError`.
"""

from __future__ import annotations

import collections

import msgspec
import numpy as np
import pytest

from compliance.monitoring import BatchError, events_from_batch
from engine._codes import EventKind, Side, TransferKind
from engine.simulate import applied_flow


def test_every_money_movement_becomes_one_event_with_its_accounts() -> None:
    _, batches = applied_flow(list(range(10, 25)), 80, 40, seed=4)
    counts: collections.Counter[str] = collections.Counter()
    expected: collections.Counter[str] = collections.Counter()
    for batch in batches:
        rows = batch.transfer_rows()
        events = events_from_batch(batch)
        counts.update(e.kind for e in events)
        expected["deposit"] += int((rows["kind"] == TransferKind.DEPOSIT).sum())
        expected["withdrawal"] += int(
            ((rows["kind"] == TransferKind.HOLD) & (rows["order_id"] == 0)).sum()
        )
        expected["fill"] += int((rows["kind"] == TransferKind.TRADE).sum()) // 2
        # Who bought: the taker on a BUY, else the maker.
        fills = batch.event_rows()
        fills = fills[fills["kind"] == EventKind.FILLED]
        buyer_of = {
            int(f["trade_id"]): (
                (int(f["account_id"]), int(f["maker_account_id"]))
                if f["side"] == Side.BUY
                else (int(f["maker_account_id"]), int(f["account_id"]))
            )
            for f in fills
        }
        for event in events:
            row = rows[int(event.ref.rsplit("/", 1)[1])]
            assert event.ref.startswith(f"ev:0:{batch.journal_seq}/")
            assert event.ts_ns == batch.ts_ns and event.source == "engine"
            if event.kind == "fill":
                assert buyer_of[int(row["trade_id"])] == (
                    event.account_id, event.counter_account_id,
                )  # fmt: skip
                assert (event.asset_id, event.quote_asset_id) == (1, 3)  # BTC-USDT
                assert event.quote_minor == int(row["amount_minor"])
            else:
                assert event.amount_minor == int(row["amount_minor"])
                assert event.asset_id == int(row["asset_id"])
    assert counts == expected
    assert min(counts.values()) > 10


def test_a_batch_that_is_not_the_engines_shape_is_refused() -> None:
    _, batches = applied_flow(list(range(10, 20)), 20, 30, seed=2)
    batch = next(b for b in batches if (b.transfer_rows()["kind"] == TransferKind.TRADE).any())
    with pytest.raises(BatchError, match="do not decode"):
        events_from_batch(msgspec.structs.replace(batch, transfers=batch.transfers[:-3]))
    rows = batch.transfer_rows().copy()
    first_trade = int(np.flatnonzero(rows["kind"] == TransferKind.TRADE)[0])
    odd = np.delete(rows, first_trade)
    with pytest.raises(BatchError, match="trade"):
        events_from_batch(msgspec.structs.replace(batch, transfers=odd.tobytes()))
    with pytest.raises(BatchError, match="layout"):
        events_from_batch(msgspec.structs.replace(batch, layout=2))
