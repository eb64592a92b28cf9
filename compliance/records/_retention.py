"""How long each record is kept, and which records a purge may delete: pure functions.

Retention is configuration: a table of (record type, jurisdiction) -> years, with ``"*"`` for
any. The most specific entry wins: (type, jurisdiction), then (``*``, jurisdiction), then
(type, ``*``), then the default of 5 years. A record is kept through its ``retain_until`` date
and may be deleted from the next day on (UTC), unless it is under legal hold.

The figures below are the statutory minimums as we read them; they count from the end of the
business relationship or the occasional transaction, which for a record written during the
relationship is later than its write date: pass ``retention_start`` then, or extend the date
when the relationship ends. Have counsel confirm each figure before relying on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from compliance.records._limits import retention_years_max

ANY = "*"

retention_years_default = 5

# (record_type, jurisdiction) -> years. Sources, as read when this table was written:
DEFAULT_RETENTION_YEARS: Mapping[tuple[str, str], int] = {
    # EU: AMLR, Regulation (EU) 2024/1624, Art. 77 (5 years after the relationship or the
    # occasional transaction ends); MiCA, Regulation (EU) 2023/1114, Art. 68(9) (CASPs keep
    # records of all services, orders and transactions for 5 years, up to 7 on request of the
    # competent authority).
    (ANY, "EU"): 5,
    # United Kingdom: Money Laundering Regulations 2017, reg. 40(3): 5 years.
    (ANY, "GB"): 5,
    # United States: 31 CFR 1010.430(d) (Bank Secrecy Act records): 5 years.
    (ANY, "US"): 5,
    # Switzerland: Anti-Money Laundering Act (AMLA, SR 955.0), Art. 7(3): at least 10 years.
    (ANY, "CH"): 10,
    # Japan: Act on Prevention of Transfer of Criminal Proceeds, Arts. 6 and 7: 7 years.
    (ANY, "JP"): 7,
}

_RECORD_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
# ISO 3166-1 alpha-2, optionally an ISO 3166-2 subdivision (US-NY), or EU.
_JURISDICTION_RE = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


class RetentionError(ValueError):
    """A retention table, record type, jurisdiction or clock that cannot be used."""


def check_record_type(record_type: object) -> str:
    """The record type if well formed (``[a-z][a-z0-9_]*``, at most 63 characters)."""
    if not isinstance(record_type, str) or not _RECORD_TYPE_RE.fullmatch(record_type):
        raise RetentionError(f"record type {record_type!r:.80} must match [a-z][a-z0-9_]{{0,62}}")
    return record_type


def check_jurisdiction(jurisdiction: object) -> str:
    """The jurisdiction if well formed: ISO 3166-1 alpha-2 (``FR``), a subdivision (``US-NY``)
    or ``EU``."""
    if not isinstance(jurisdiction, str) or not _JURISDICTION_RE.fullmatch(jurisdiction):
        raise RetentionError(
            f"jurisdiction {jurisdiction!r:.80} must be an ISO 3166 code such as FR, US-NY or EU"
        )
    return jurisdiction


def _add_years(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        # 29 February into a common year: keep one day longer (1 March), never shorter.
        return date(start.year + years, 3, 1)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Years each (record type, jurisdiction) is kept; see the module docstring for precedence.

    Attributes
    ----------
    years : mapping of (str, str) to int
        ``(record_type or "*", jurisdiction or "*") -> years``.
    default_years : int
        For anything the table does not name.
    """

    years: Mapping[tuple[str, str], int] = field(
        default_factory=lambda: dict(DEFAULT_RETENTION_YEARS)
    )
    default_years: int = retention_years_default

    def __post_init__(self) -> None:
        for value in (self.default_years, *self.years.values()):
            if not isinstance(value, int) or not 1 <= value <= retention_years_max:
                raise RetentionError(
                    f"retention of {value!r} years is outside 1..{retention_years_max}"
                )
        for record_type, jurisdiction in self.years:
            if record_type != ANY:
                check_record_type(record_type)
            if jurisdiction != ANY:
                check_jurisdiction(jurisdiction)

    def years_for(self, record_type: str, jurisdiction: str) -> int:
        """Years a record of this type and jurisdiction is kept. O(1)."""
        for key in (
            (record_type, jurisdiction),
            (ANY, jurisdiction),
            (record_type, ANY),
        ):
            if key in self.years:
                return self.years[key]
        return self.default_years

    def retain_until(self, record_type: str, jurisdiction: str, start: date) -> date:
        """The last day a record must be kept, counting from ``start``."""
        return _add_years(start, self.years_for(record_type, jurisdiction))


@dataclass(frozen=True, slots=True)
class RetentionState:
    """What a purge decision needs to know about one stored record."""

    record_id: int
    retain_until: date
    legal_hold: bool


def utc_date(now: datetime) -> date:
    """The UTC date of an aware datetime.

    Raises
    ------
    RetentionError
        For a naive datetime, whose date depends on a time zone nobody named.
    """
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise RetentionError(f"the clock must be a timezone-aware datetime, not {now!r:.80}")
    return now.astimezone(UTC).date()


def due_for_purge(records: Iterable[RetentionState], now: datetime) -> list[int]:
    """Ids of the records whose retention ended before ``now`` and that are not on hold.

    A pure function of its inputs (no clock of its own), so a purge can be replayed. O(records).
    """
    today = utc_date(now)
    return [r.record_id for r in records if not r.legal_hold and r.retain_until < today]
