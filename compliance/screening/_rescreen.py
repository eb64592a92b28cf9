"""Re-screening every customer when a list version changes, reporting only what is new."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from compliance.screening._addresses import AddressHit
from compliance.screening._matcher import (
    Candidate,
    Party,
    ScreeningIndex,
    ScreeningResult,
    default_threshold,
    screen_party,
)


class NewHits(msgspec.Struct, frozen=True, kw_only=True):
    """What a new list version finds for one party that the previous screening did not.

    Attributes
    ----------
    party_id : str
    previous_list_version_id : str
        ``""`` when the party had never been screened.
    list_version_id : str
    candidates : tuple of Candidate
        Entries now at or above the threshold that were not before.
    address_hits : tuple of AddressHit
        Address listings that were not hits before.
    """

    party_id: str
    previous_list_version_id: str
    list_version_id: str
    candidates: tuple[Candidate, ...]
    address_hits: tuple[AddressHit, ...]


def _address_key(hit: AddressHit) -> tuple[str, str, str, str]:
    return (hit.normalised, hit.source, hit.listed_asset, hit.entry_id)


def rescreen(
    parties: Mapping[str, Party],
    index: ScreeningIndex,
    previous: Mapping[str, ScreeningResult],
    threshold: int = default_threshold,
) -> tuple[dict[str, ScreeningResult], tuple[NewHits, ...]]:
    """Screen every party against a new list version and report the new hits.

    A pure function of its inputs: the caller stores the returned results as the next
    ``previous`` and raises an alert (or opens a case) for each `NewHits`.

    Parameters
    ----------
    parties : mapping of party id to Party
    index : ScreeningIndex
        The new list version.
    previous : mapping of party id to ScreeningResult
        Each party's last result (absent for a party never screened).
    threshold : int

    Returns
    -------
    results : dict of party id to ScreeningResult
        Every party's result under the new version.
    new_hits : tuple of NewHits
        In party id order; a party appears only if something is new.
    """
    results: dict[str, ScreeningResult] = {}
    new_hits: list[NewHits] = []
    for party_id in sorted(parties):
        result = screen_party(parties[party_id], index, threshold)
        results[party_id] = result
        before = previous.get(party_id)
        known_entries = {c.entry_id for c in before.candidates} if before else set()
        known_addresses = {_address_key(h) for h in before.address_hits} if before else set()
        candidates = tuple(c for c in result.candidates if c.entry_id not in known_entries)
        addresses = tuple(
            h for h in result.address_hits if _address_key(h) not in known_addresses
        )
        if candidates or addresses:
            new_hits.append(
                NewHits(
                    party_id=party_id,
                    previous_list_version_id=before.list_version_id if before else "",
                    list_version_id=result.list_version_id,
                    candidates=candidates,
                    address_hits=addresses,
                )
            )
    return results, tuple(new_hits)
