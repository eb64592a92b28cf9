"""Exact address screening, after each address format's own normalisation.

- Hex (``0x`` + 40 hex digits: ETH and every EVM chain, USDT/USDC on Ethereum, ARB, BSC, ETC):
  the EIP-55 checksum is only letter case, so compare lower-case.
- Bech32 / bech32m (``bc1``, ``ltc1``, ``tb1``...) and Bitcoin Cash cashaddr (``q``/``p``...,
  optionally ``bitcoincash:``): case-insensitive by their specs, but never mixed case; lower-case.
- Base58 (legacy Bitcoin, LTC, TRX, XRP, DASH, ZEC t-addresses, XMR...): case is part of the
  address; compare exactly.

An address hits whatever asset it is listed under: the same EVM account is the same owner on
every EVM chain, and an address of one base58 chain cannot be valid on another.
"""

from __future__ import annotations

import re

import msgspec

from compliance.screening._model import ListVersion

_HEX = re.compile(r"^0[xX][0-9a-fA-F]{40}$")
_BARE_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_BECH32 = re.compile(r"^(bc|tb|bcrt|ltc|tltc)1[02-9ac-hj-np-z]{6,87}$", re.IGNORECASE)
_CASHADDR = re.compile(r"^(bitcoincash:)?[qp][02-9ac-hj-np-z]{41}$", re.IGNORECASE)
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{20,110}$")
# Assets that only live on EVM chains: anything but a hex address is a mistake.
_EVM_ONLY = frozenset({"ETH", "ETC", "ARB", "BSC", "MATIC", "OP", "AVAX"})


class AddressFormatError(ValueError):
    """An address does not have the shape its asset requires (or any known shape)."""


class AddressHit(msgspec.Struct, frozen=True, kw_only=True):
    """A screened address found on a list.

    Attributes
    ----------
    address : str
        As given.
    normalised : str
        As compared.
    listed_asset, listed_address : str
        As listed.
    source : str
        The list.
    entry_id : str
        The entry holding it, ``""`` for the per-asset files.
    """

    address: str
    normalised: str
    listed_asset: str
    listed_address: str
    source: str
    entry_id: str


def normalise_address(address: str, asset: str | None = None) -> str:
    """The comparable form of an address.

    Parameters
    ----------
    address : str
    asset : str, optional
        The asset code; for EVM-only assets a non-hex address is refused.

    Returns
    -------
    str

    Raises
    ------
    AddressFormatError
        Unknown shape, a non-hex address for an EVM-only asset, or mixed-case bech32.
    """
    text = address.strip()
    if _HEX.match(text):
        return "0x" + text[2:].lower()
    if asset is not None and asset.upper() in _EVM_ONLY:
        raise AddressFormatError(f"{asset} address must be 0x and 40 hex digits: {text!r}")
    if _BECH32.match(text) or _CASHADDR.match(text):
        if text != text.lower() and text != text.upper():
            raise AddressFormatError(f"bech32/cashaddr must not mix case: {text!r}")
        return text.lower().removeprefix("bitcoincash:")
    if _BARE_HEX.match(text):
        return text.lower()
    if _BASE58.match(text):
        return text
    raise AddressFormatError(f"not an address format we know: {text!r}")


def _lenient_key(address: str) -> str:
    text = address.strip()
    return text.lower() if re.match(r"^0[xX][0-9a-fA-F]+$", text) else text


class AddressIndex:
    """Every listed address by its normalised form.

    Parameters
    ----------
    version : ListVersion

    Notes
    -----
    Build O(addresses); `screen` O(1) plus the hits.
    """

    def __init__(self, version: ListVersion) -> None:
        self._by_address: dict[str, list[AddressHit]] = {}
        for listed in version.crypto_addresses:
            try:
                key = normalise_address(listed.address)
            except AddressFormatError:
                # The list itself holds a malformed address (the 2021 SDN has an ETH address
                # one digit short): index it by the same rule a screened input would meet.
                key = _lenient_key(listed.address)
            self._by_address.setdefault(key, []).append(
                AddressHit(
                    address=listed.address,
                    normalised=key,
                    listed_asset=listed.asset,
                    listed_address=listed.address,
                    source=listed.source,
                    entry_id=listed.entry_id,
                )
            )

    def screen(self, address: str, asset: str | None = None) -> tuple[AddressHit, ...]:
        """Every listing of an address, in list order (empty when it is not listed).

        Parameters
        ----------
        address : str
        asset : str, optional
            Checks the address's shape (see `normalise_address`).

        Raises
        ------
        AddressFormatError
        """
        try:
            key = normalise_address(address, asset)
        except AddressFormatError:
            # A malformed input can still equal a malformed listing exactly: report that hit
            # rather than let a list typo hide a sanctioned address; otherwise refuse.
            key = _lenient_key(address)
            if key not in self._by_address:
                raise
        return tuple(
            msgspec.structs.replace(hit, address=address) for hit in self._by_address.get(key, ())
        )
