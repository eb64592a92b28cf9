"""A seeded flow of journal entries that moves money every way the engine can: deposits, orders
that rest, trade (with fees) and are cancelled, and withdrawals held, settled and released.

For tests and benchmarks of whatever consumes the engine's events (the ledger, monitoring):
the same seed gives the same entries, so a failure reproduces.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from engine._codes import OrderType, Side, TimeInForce
from engine.markets import BTC, INSTRUMENTS, USDT, funding_commands, market_commands
from engine.messages import (
    CancelOrder,
    Command,
    Deposit,
    EventBatch,
    HoldWithdrawal,
    JournalEntry,
    PlaceOrder,
    ReleaseWithdrawal,
    SettleWithdrawal,
)
from engine.shard import Shard

BTC_USDT = INSTRUMENTS[0].instrument_id
# Around this price (ticks of 0.1 USDT) orders cross often enough that about half trade.
mid_price_ticks = 300_000


def flow(
    accounts: list[int], entries: int, commands_per_entry: int, *, seed: int = 1
) -> Iterator[JournalEntry]:
    """Entry 1 defines the demo market and funds the accounts; then `entries` entries of
    `commands_per_entry` random commands each. Timestamps are 1 ms apart from 1 s."""
    rng = random.Random(seed)
    yield JournalEntry(
        origin="simulate",
        batch_id=1,
        ts_ns=1_000_000_000,
        commands=[*market_commands(), *funding_commands(accounts, tag="sim")],
    )
    coid = 0
    withdrawals: list[str] = []
    for n in range(2, entries + 2):
        commands: list[Command] = []
        for _ in range(commands_per_entry):
            account = rng.choice(accounts)
            roll = rng.random()
            if roll < 0.8:
                coid += 1
                commands.append(
                    PlaceOrder(
                        account_id=account,
                        instrument_id=BTC_USDT,
                        client_order_id=coid,
                        side=rng.choice((Side.BUY, Side.SELL)),
                        order_type=OrderType.LIMIT,
                        time_in_force=TimeInForce.GTC,
                        price_ticks=mid_price_ticks + rng.randint(-30, 30),
                        quantity_lots=rng.randint(1, 50),
                    )
                )
            elif roll < 0.9 and coid:
                commands.append(
                    CancelOrder(account_id=account, client_order_id=rng.randint(1, coid))
                )
            elif roll < 0.94:
                asset = rng.choice((BTC, USDT))
                commands.append(
                    Deposit(
                        account_id=account,
                        asset_id=asset,
                        amount_minor=rng.randint(1, 10**8),
                        deposit_id=f"sim-dep-{n}-{len(commands)}",
                    )
                )
            elif roll < 0.97 or not withdrawals:
                withdrawal_id = f"sim-wd-{n}-{len(commands)}"
                withdrawals.append(withdrawal_id)
                commands.append(
                    HoldWithdrawal(
                        account_id=account,
                        asset_id=rng.choice((BTC, USDT)),
                        amount_minor=rng.randint(1, 10**6),
                        withdrawal_id=withdrawal_id,
                    )
                )
            else:
                withdrawal_id = withdrawals.pop(rng.randrange(len(withdrawals)))
                finish = SettleWithdrawal if rng.random() < 0.7 else ReleaseWithdrawal
                commands.append(finish(withdrawal_id=withdrawal_id))
        yield JournalEntry(
            origin="simulate", batch_id=n, ts_ns=1_000_000_000 + n * 1_000_000, commands=commands
        )


def applied_flow(
    accounts: list[int], entries: int, commands_per_entry: int, *, seed: int = 1, shard: str = "0"
) -> tuple[Shard, list[EventBatch]]:
    """The flow applied to a fresh shard, as the engine would: the shard after it and the
    EventBatch of each entry (journal sequences 1, 2, 3...)."""
    state = Shard(shard)
    batches = []
    for seq, entry in enumerate(flow(accounts, entries, commands_per_entry, seed=seed), 1):
        applied = state.apply(seq, entry)
        assert applied is not None
        batches.append(state.event_batch(seq, entry, applied))
    return state, batches


__all__ = ["applied_flow", "flow", "mid_price_ticks"]
