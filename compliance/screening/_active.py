"""The list version screening uses now, and the one guarded way to replace it.

A list update must never leave the exchange screening against less than it had: a file that
does not parse is refused whole by the loaders (`ListFileError`), and a file that parses but
was cut short at a line or element boundary is caught here by comparing each source's counts
with the active version's. Either way the previous version stays active and the refusal is
returned for the caller to raise as an alert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import msgspec

from compliance.screening._limits import list_shrink_fraction_max
from compliance.screening._loaders import ListFileError, load_lists
from compliance.screening._matcher import ScreeningIndex
from compliance.screening._model import ListVersion

Outcome = Literal["activated", "unchanged", "refused"]


class ListUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one attempt to load new lists.

    Attributes
    ----------
    outcome : {"activated", "unchanged", "refused"}
    active_version_id : str
        The version in force after the attempt.
    candidate_version_id : str
        The version the files hold; ``""`` when they did not load.
    reason : str
        Why it was refused, naming the file, line or source; ``""`` otherwise.
    counts : dict
        Entries and addresses per source in the candidate (``"ofac_sdn:entries"``, ...).
    """

    outcome: Outcome
    active_version_id: str
    candidate_version_id: str = ""
    reason: str = ""
    counts: dict[str, int] = {}


def source_counts(version: ListVersion) -> Counter[str]:
    """Entries and crypto addresses per source: the figures a truncated file shrinks."""
    counts: Counter[str] = Counter()
    for entry in version.entries:
        counts[f"{entry.source}:entries"] += 1
    for address in version.crypto_addresses:
        counts[f"{address.source}:addresses"] += 1
    return counts


def shrinkage(active: ListVersion, candidate: ListVersion) -> str:
    """Why ``candidate`` looks cut short next to ``active``, or ``""`` if it does not."""
    before, after = source_counts(active), source_counts(candidate)
    for key in sorted(before):
        if after[key] < before[key] * (1 - list_shrink_fraction_max):
            return (
                f"{key} would drop from {before[key]} to {after[key]} (more than "
                f"{list_shrink_fraction_max:.0%}): a truncated file? an officer must accept it"
            )
    return ""


class ActiveLists:
    """Holds the active `ListVersion` and its `ScreeningIndex`; replaced only by `update`.

    Parameters
    ----------
    version : ListVersion
        The version to start with (typically ``load_lists()``, which raises if it cannot).
    """

    def __init__(self, version: ListVersion) -> None:
        self.version = version
        self.index = ScreeningIndex(version)

    def update(
        self,
        data_dir: Path,
        *,
        accept_shrink: bool = False,
        loader: Callable[[Path], ListVersion] = load_lists,
    ) -> ListUpdate:
        """Load the lists in ``data_dir`` and make them active if they are whole.

        Parameters
        ----------
        data_dir : Path
            A folder laid out as `load_lists` expects.
        accept_shrink : bool
            An officer has checked a large delisting: activate even if a source shrinks.
        loader : callable
            Parses a folder into a version (`load_lists`).

        Returns
        -------
        ListUpdate
            ``refused`` leaves the active version untouched; the caller raises the alert.
        """
        active_id = self.version.version_id
        try:
            candidate = loader(data_dir)
        except (ListFileError, OSError) as exc:
            return ListUpdate(outcome="refused", active_version_id=active_id, reason=str(exc))
        counts = dict(sorted(source_counts(candidate).items()))
        if candidate.version_id == active_id:
            return ListUpdate(
                outcome="unchanged",
                active_version_id=active_id,
                candidate_version_id=active_id,
                counts=counts,
            )
        reason = "" if accept_shrink else shrinkage(self.version, candidate)
        if reason:
            return ListUpdate(
                outcome="refused",
                active_version_id=active_id,
                candidate_version_id=candidate.version_id,
                reason=reason,
                counts=counts,
            )
        # Index first: if building it fails, nothing has changed.
        index = ScreeningIndex(candidate)
        self.version, self.index = candidate, index
        return ListUpdate(
            outcome="activated",
            active_version_id=candidate.version_id,
            candidate_version_id=candidate.version_id,
            counts=counts,
        )


__all__ = ["ActiveLists", "ListUpdate", "shrinkage", "source_counts"]
