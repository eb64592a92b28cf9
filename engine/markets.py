"""The demo market: assets, instruments and funding that `clearline run` journals on first start.

Tests reuse it so that what they trade is what an operator sees. Units are chosen so that a tick
times a lot is a whole number of quote minor units (the engine checks this on definition).
"""

from __future__ import annotations

from engine.messages import Command, DefineAsset, DefineInstrument, Deposit

BTC, ETH, USDT = 1, 2, 3

ASSETS = [
    DefineAsset(asset_id=BTC, symbol="BTC", decimals=8),
    DefineAsset(asset_id=ETH, symbol="ETH", decimals=8),
    DefineAsset(asset_id=USDT, symbol="USDT", decimals=6),
]

INSTRUMENTS = [
    # 0.1 USDT ticks x 0.0001 BTC lots = 10 micro-USDT; band 1,000 - 1,000,000 USDT.
    DefineInstrument(
        instrument_id=1,
        symbol="BTC-USDT",
        base_asset_id=BTC,
        quote_asset_id=USDT,
        tick_size="0.1",
        lot_size="0.0001",
        price_min_ticks=10_000,
        price_max_ticks=10_000_000,
        quantity_min_lots=1,
        quantity_max_lots=1_000_000,
        taker_fee_bps=10,
        maker_fee_bps=2,
    ),
    # 0.01 USDT ticks x 0.001 ETH lots = 10 micro-USDT; band 10 - 100,000 USDT.
    DefineInstrument(
        instrument_id=2,
        symbol="ETH-USDT",
        base_asset_id=ETH,
        quote_asset_id=USDT,
        tick_size="0.01",
        lot_size="0.001",
        price_min_ticks=1_000,
        price_max_ticks=10_000_000,
        quantity_min_lots=1,
        quantity_max_lots=1_000_000,
        taker_fee_bps=10,
        maker_fee_bps=2,
        jurisdictions_allowed=[],
    ),
]

# What each demo account starts with, in minor units: 1,000,000 USDT, 20 BTC, 400 ETH.
FUNDING = {USDT: 1_000_000 * 10**6, BTC: 20 * 10**8, ETH: 400 * 10**8}


def market_commands() -> list[Command]:
    """Define the demo assets and instruments."""
    return [*ASSETS, *INSTRUMENTS]


def funding_commands(account_ids: list[int], tag: str = "demo") -> list[Command]:
    """Fund each account; deposit ids make a repeated bootstrap credit nothing twice."""
    return [
        Deposit(
            account_id=account_id,
            asset_id=asset_id,
            amount_minor=amount,
            deposit_id=f"{tag}:{account_id}:{asset_id}",
        )
        for account_id in account_ids
        for asset_id, amount in FUNDING.items()
    ]


__all__ = [
    "ASSETS",
    "BTC",
    "ETH",
    "FUNDING",
    "INSTRUMENTS",
    "USDT",
    "funding_commands",
    "market_commands",
]
