"""Every bound of the engine, named, with the reason for its default.

A limit reached is a rejected command with its own reason, never a crash or a silent drop.
"""

from __future__ import annotations

from dataclasses import dataclass

# Resting orders across all books: sizes the order pool allocated up front (~128 B an order).
orders_max = 1 << 20
# Resting orders in one instrument's book: stops one market from taking the whole pool.
orders_per_book_max = 1 << 18
# Engine account ids are dense indexes into per-account arrays (12 B an account).
accounts_max = 1 << 20
# Instrument ids are dense indexes into the instrument table.
instruments_max = 1 << 12
# Price levels one side of a book may span, (price_max - price_min) / increment + 1: the ladder
# for a side keeps one 1,024-level chunk pointer per 1,024 levels of the band.
price_levels_max = 1 << 24


@dataclass(frozen=True, kw_only=True)
class EngineLimits:
    orders_max: int = orders_max
    orders_per_book_max: int = orders_per_book_max
    accounts_max: int = accounts_max
    instruments_max: int = instruments_max
    price_levels_max: int = price_levels_max


__all__ = ["EngineLimits"]
