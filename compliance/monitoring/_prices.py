"""USD reference prices: what an asset was worth when a rule valued an event.

`ReferencePrices` is the interface; `ExchangePrices`, the default, keeps the exchange's own last
trade price per asset from the fills it is shown, falls back to a mid price it is given, then to
the configuration's fixed price. Assets marked ``usd_pegged`` (USD, stablecoins) are 1 USD per
unit. Everything it knows comes from the events it observed, so replaying the same events gives
the same prices; each alert stores the price it used (`compliance.alerts.PriceUsed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import NamedTuple, Protocol

from compliance.alerts import PriceUsed
from compliance.monitoring._config import AssetConfig


class UsdPrice(NamedTuple):
    """One asset's USD price: ``(usd_per_unit, source, as_of_ns)``; source is ``"pegged"``,
    ``"last_trade"``, ``"mid"`` or ``"fixed"``."""

    usd_per_unit: Decimal
    source: str
    as_of_ns: int = 0


class ReferencePrices(Protocol):
    """Where monitoring gets USD prices from."""

    def usd_price(self, asset_id: int, ts_ns: int) -> UsdPrice | None:
        """The asset's USD price per whole unit as of `ts_ns`, or None when it has none."""
        ...

    def observe_fill(
        self, base_asset_id: int, base_minor: int, quote_asset_id: int, quote_minor: int, ts_ns: int
    ) -> None:
        """Learn from one fill of the exchange (a provider with an outside feed may ignore it)."""
        ...


_ONE = Decimal(1)
# One fixed arithmetic context, not the thread's (which any library may change): a replay must
# compute the same digits. 34 digits is IEEE decimal128, far past any price's precision.
PRICE_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)


class ExchangePrices:
    """The default `ReferencePrices`: last trade, then mid, then fixed.

    Parameters
    ----------
    assets : mapping of int to AssetConfig
        Units, pegs and fixed prices of the assets monitoring knows; an asset not in it has no
        price (its events raise the unpriced rule).
    """

    def __init__(self, assets: Mapping[int, AssetConfig]) -> None:
        self._assets = dict(assets)
        self._fixed = {a: Decimal(c.fixed_usd) for a, c in assets.items() if c.fixed_usd}
        self._pegged = {a for a, c in assets.items() if c.usd_pegged}
        # asset -> (quote asset, quote minor, base minor, ts): kept raw, valued when asked.
        self._last: dict[int, tuple[int, int, int, int]] = {}
        self._mid: dict[int, UsdPrice] = {}
        self._cache: dict[int, UsdPrice | None] = {}

    def observe_fill(
        self, base_asset_id: int, base_minor: int, quote_asset_id: int, quote_minor: int, ts_ns: int
    ) -> None:
        """Remember the fill as its base asset's last trade. O(1)."""
        if base_minor <= 0 or quote_minor <= 0:
            return
        self._last[base_asset_id] = (quote_asset_id, quote_minor, base_minor, ts_ns)
        if quote_asset_id in self._pegged:
            self._cache.pop(base_asset_id, None)
        else:  # other assets may be quoted in this one: value them afresh
            self._cache.clear()

    def observe_mid(self, asset_id: int, usd_per_unit: Decimal, ts_ns: int) -> None:
        """Remember a mid price in USD (from a book or a feed), used when no trade is known."""
        if not usd_per_unit.is_finite() or usd_per_unit <= 0:
            raise ValueError(f"mid price of asset {asset_id} must be positive: {usd_per_unit}")
        self._mid[asset_id] = UsdPrice(usd_per_unit, "mid", ts_ns)
        self._cache.pop(asset_id, None)

    def usd_price(self, asset_id: int, ts_ns: int = 0) -> UsdPrice | None:
        """The asset's price: pegged, else last trade, else mid, else fixed, else None."""
        if asset_id in self._cache:
            return self._cache[asset_id]
        price = self._price(asset_id, depth=0)
        self._cache[asset_id] = price
        return price

    def _price(self, asset_id: int, depth: int) -> UsdPrice | None:
        if asset_id in self._pegged:
            return UsdPrice(_ONE, "pegged", 0)
        last = self._last.get(asset_id)
        # depth bounds a chain of cross quotes (A quoted in B quoted in A...).
        if last is not None and depth < 2:
            quote_asset_id, quote_minor, base_minor, ts = last
            quote = self._price(quote_asset_id, depth + 1)
            base_cfg = self._assets.get(asset_id)
            quote_cfg = self._assets.get(quote_asset_id)
            if quote is not None and base_cfg is not None and quote_cfg is not None:
                c = PRICE_CONTEXT
                units = c.multiply(
                    Decimal(quote_minor).scaleb(-quote_cfg.decimals), quote.usd_per_unit
                )
                per_unit = c.divide(units, Decimal(base_minor).scaleb(-base_cfg.decimals))
                return UsdPrice(per_unit, "last_trade", ts)
        if asset_id in self._mid:
            return self._mid[asset_id]
        if asset_id in self._fixed:
            return UsdPrice(self._fixed[asset_id], "fixed", 0)
        return None

    def decimals(self, asset_id: int) -> int | None:
        """The asset's decimals, or None for an asset the configuration does not know."""
        config = self._assets.get(asset_id)
        return None if config is None else config.decimals


def price_used(asset_id: int, symbol: str, price: UsdPrice) -> PriceUsed:
    """The alert's record of a price."""
    return PriceUsed(
        asset=symbol or str(asset_id),
        usd_per_unit=str(price.usd_per_unit),
        source=price.source,
        as_of_ns=price.as_of_ns,
    )


__all__ = ["PRICE_CONTEXT", "ExchangePrices", "ReferencePrices", "UsdPrice", "price_used"]
