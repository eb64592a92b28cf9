"""From the shapes other services publish to `MonitoredEvent`s.

Engine: an `EventBatch`'s transfer rows (engine/_dtypes.py `TRANSFER_DTYPE`) say every money
movement of one journal entry. Selected with NumPy masks over the whole batch, then built into
events in row order:
- DEPOSIT rows (outside world -> available): a deposit;
- HOLD rows with no order (available -> held for a withdrawal): a withdrawal, monitored when it
  is requested, so a freeze can still stop it; its later WITHDRAWAL (settle) or RELEASE row is
  not monitored again;
- TRADE rows, two per trade in the order engine/risk.py writes them: quote (buyer -> seller),
  then base (seller -> buyer): one fill with both accounts.
Event refs are ``ev:<shard>:<journal_seq>/<transfer row>``; times are the entry's ``ts_ns``.

Custody: one `CustodyTransfer` is one deposit or withdrawal with its address facts, ref
``custody:<transfer_id>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compliance.monitoring._model import CustodyTransfer, MonitoredEvent
from engine._codes import TransferKind
from engine.messages import EventBatch


class BatchError(ValueError):
    """An EventBatch whose rows do not have the shape the engine writes (dead-letter it)."""


def events_from_batch(batch: EventBatch) -> list[MonitoredEvent]:
    """The fills, deposits and withdrawal requests of one EventBatch, in transfer row order.

    Raises
    ------
    BatchError
        The transfer bytes do not decode, or a trade lacks its quote or base row.
    """
    if batch.layout != 1:
        raise BatchError(f"EventBatch layout {batch.layout} is not known to monitoring")
    try:
        rows = batch.transfer_rows()
    except ValueError as exc:
        raise BatchError(f"transfer rows do not decode: {exc}") from None
    if not len(rows):
        return []
    kind = rows["kind"]
    deposit = kind == TransferKind.DEPOSIT
    withdrawal = (kind == TransferKind.HOLD) & (rows["order_id"] == 0)
    trade = kind == TransferKind.TRADE
    picked = np.flatnonzero(deposit | withdrawal | trade)
    if not len(picked):
        return []
    prefix = f"ev:{batch.shard}:{batch.journal_seq}/"
    ts = batch.ts_ns
    trade_rows = np.flatnonzero(trade)
    if len(trade_rows) % 2:
        raise BatchError(f"{prefix}: a trade without both its quote and base transfer")
    quote, base = rows[trade_rows[0::2]], rows[trade_rows[1::2]]
    if (quote["trade_id"] != base["trade_id"]).any() or (
        quote["debit_account_id"] != base["credit_account_id"]
    ).any():
        raise BatchError(f"{prefix}: trade transfers are not in quote, base pairs")
    # Column lists once per batch: per-row NumPy scalar access is the slow part.
    base_of: dict[int, tuple[Any, ...]] = dict(
        zip(
            trade_rows[0::2].tolist(),
            zip(base["asset_id"].tolist(), base["amount_minor"].tolist(), strict=True),
            strict=True,
        )
    )
    kinds = kind[picked].tolist()
    amounts = rows["amount_minor"][picked].tolist()
    assets = rows["asset_id"][picked].tolist()
    debits = rows["debit_account_id"][picked].tolist()
    credits = rows["credit_account_id"][picked].tolist()
    events: list[MonitoredEvent] = []
    append = events.append
    for i, row in enumerate(picked.tolist()):
        k = kinds[i]
        if k == TransferKind.TRADE:
            pair = base_of.get(row)
            if pair is None:
                continue  # the base row of a trade: its fill was built at the quote row
            append(
                MonitoredEvent(
                    ref=prefix + str(row),
                    source="engine",
                    kind="fill",
                    ts_ns=ts,
                    account_id=debits[i],  # the buyer pays the quote
                    counter_account_id=credits[i],
                    asset_id=pair[0],
                    amount_minor=pair[1],
                    quote_asset_id=assets[i],
                    quote_minor=amounts[i],
                )
            )
        elif k == TransferKind.DEPOSIT:
            append(
                MonitoredEvent(
                    ref=prefix + str(row),
                    source="engine",
                    kind="deposit",
                    ts_ns=ts,
                    account_id=credits[i],
                    asset_id=assets[i],
                    amount_minor=amounts[i],
                )
            )
        else:
            append(
                MonitoredEvent(
                    ref=prefix + str(row),
                    source="engine",
                    kind="withdrawal",
                    ts_ns=ts,
                    account_id=debits[i],
                    asset_id=assets[i],
                    amount_minor=amounts[i],
                )
            )
    return events


def event_from_custody(transfer: CustodyTransfer) -> MonitoredEvent:
    """The monitored event of one custody deposit or withdrawal."""
    return MonitoredEvent(
        ref=f"custody:{transfer.transfer_id}",
        source="custody",
        kind=transfer.direction,
        ts_ns=transfer.ts_ns,
        account_id=transfer.account_id,
        asset_id=transfer.asset_id,
        amount_minor=transfer.amount_minor,
        counterparty_address=transfer.address,
        chain=transfer.chain,
        counterparty_vasp=transfer.counterparty_vasp,
        counterparty_jurisdiction=transfer.counterparty_jurisdiction,
        address_labels=tuple(label.lower() for label in transfer.address_labels),
    )


__all__ = ["BatchError", "event_from_custody", "events_from_batch"]
