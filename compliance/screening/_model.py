"""The list-version data model: immutable, content-hashed, and encodable for the record."""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

Source = Literal["ofac_sdn", "un_consolidated", "ofac_crypto_addresses"]
# Vessels and aircraft are kept apart from other entities because the SDN list says so.
EntryKind = Literal["person", "entity", "vessel", "aircraft"]


class Alias(msgspec.Struct, frozen=True, kw_only=True):
    """One other name of a list entry.

    Attributes
    ----------
    name : str
        The alias as the list writes it.
    quality : str
        The list's own grade, lower case: OFAC ``aka``/``fka``/``nka``; UN ``good``, ``low``,
        ``a.k.a.``, ``f.k.a.`` or ``""``; ``original_script`` for a UN name in its own script.
    """

    name: str
    quality: str


class CryptoAddress(msgspec.Struct, frozen=True, kw_only=True):
    """A sanctioned digital currency address.

    Attributes
    ----------
    asset : str
        The list's asset code (``XBT``, ``ETH``, ``USDT``, ...).
    address : str
        The address exactly as listed.
    source : str
        The list it came from.
    entry_id : str
        The list entry that holds it, or ``""`` when the list names no entry (the per-asset files).
    """

    asset: str
    address: str
    source: Source
    entry_id: str = ""


class ListEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One sanctioned person or entity.

    Attributes
    ----------
    id : str
        ``<source>:<the list's own id>`` (``ofac_sdn:36``, ``un_consolidated:QDi.001``).
    source : str
        The list it came from.
    kind : {"person", "entity", "vessel", "aircraft"}
        What the list says it is.
    primary_name : str
        The name as the list writes it.
    aliases : tuple of Alias
        Other names, in list order.
    addresses : tuple of str
        Postal addresses, one line each, in list order.
    programs : tuple of str
        Sanctions programmes (OFAC) or the UN list type.
    crypto_addresses : tuple of CryptoAddress
        Digital currency addresses the entry lists.
    """

    id: str
    source: Source
    kind: EntryKind
    primary_name: str
    aliases: tuple[Alias, ...] = ()
    addresses: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    crypto_addresses: tuple[CryptoAddress, ...] = ()


class ListVersion(msgspec.Struct, frozen=True, kw_only=True):
    """Every loaded list at once, named by a hash of its content.

    Attributes
    ----------
    version_id : str
        ``sha256:<hex>`` of the canonical JSON of `entries` and `crypto_addresses`: the same
        parsed lists give the same id on any machine, any change gives another.
    entries : tuple of ListEntry
        All entries, OFAC SDN first then UN, each in file order.
    crypto_addresses : tuple of CryptoAddress
        Every sanctioned address: those in list entries, then the per-asset files.
    """

    version_id: str
    entries: tuple[ListEntry, ...]
    crypto_addresses: tuple[CryptoAddress, ...]


def make_list_version(
    entries: tuple[ListEntry, ...], crypto_addresses: tuple[CryptoAddress, ...]
) -> ListVersion:
    """Name parsed lists by their content hash.

    Parameters
    ----------
    entries, crypto_addresses
        The parsed lists, in a fixed order (the hash depends on it, as the decision would).

    Returns
    -------
    ListVersion
    """
    # msgspec encodes structs in field order and tuples as arrays: a canonical byte string.
    payload = msgspec.json.encode({"entries": entries, "crypto_addresses": crypto_addresses})
    digest = hashlib.sha256(payload).hexdigest()
    return ListVersion(
        version_id=f"sha256:{digest}", entries=entries, crypto_addresses=crypto_addresses
    )
