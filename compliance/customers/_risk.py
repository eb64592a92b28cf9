"""Customer risk scoring: a pure function of (customer facts, dated configuration, date).

Method (the VASP compliance note, with its defect fixed): six factors each score 0..100;
the weighted total is sum(score x weight), weights in basis points summing to 10,000, so the
total is exact integer arithmetic (``weighted_total_bp`` is 10,000 x the 0..100 score: no float
anywhere). A factor named in ``force_high_factors`` that scores 100 forces HIGH whatever the
total (a FATF black-listed country, a sanctions hit, a PEP). Otherwise HIGH at a total >= 70,
MEDIUM at >= 40, else LOW. The level picks the CDD level (simplified / standard / enhanced) and
the next review (36 / 12 / 6 months after the assessment).

The note gave country 0.3, product 0.15, volume 0.2, PEP 0.2, sanctions 0.15 and no weight to
customer type; the shipped configuration (``risk_config_2026-10.json``) gives customer type
0.1 and takes it from country (0.25) and volume (0.15), so every factor counts and the weights
still sum to 1. Both are configuration: a new file with a new version changes them, and every
stored assessment names the version it used.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from compliance.customers._model import Country, Customer, PersonType, Product, VolumeUsdMinor

RiskLevel = Literal["low", "medium", "high"]
Score = Annotated[int, msgspec.Meta(ge=0, le=100)]
WeightBp = Annotated[int, msgspec.Meta(ge=0, le=10_000)]

# The weights' total: 1 expressed in basis points.
weights_total_bp = 10_000
# The score at which a force-high factor forces HIGH.
score_max = 100
DEFAULT_CONFIG_FILE = "risk_config_2026-10.json"


class Factor(enum.StrEnum):
    """A risk factor; every one has a weight in the configuration."""

    country = "country"
    product = "product"
    volume = "volume"
    pep = "pep"
    sanctions = "sanctions"
    customer_type = "customer_type"


class CddLevel(enum.StrEnum):
    """Customer due diligence level, from the risk level."""

    simplified = "simplified"
    standard = "standard"
    enhanced = "enhanced"


CDD_BY_LEVEL: dict[RiskLevel, CddLevel] = {
    "low": CddLevel.simplified,
    "medium": CddLevel.standard,
    "high": CddLevel.enhanced,
}


class RiskConfigError(ValueError):
    """A risk configuration that is malformed or inconsistent; it is never used."""


class VolumeBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Expected monthly volume from ``from_usd_minor`` up (to the next band) scores ``score``."""

    from_usd_minor: VolumeUsdMinor
    score: Score


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A dated, versioned risk scoring configuration.

    Attributes
    ----------
    version : str
        Names the configuration; stored with every assessment made with it.
    effective_on : datetime.date
        From when it applies.
    fatf_lists_as_of : datetime.date
        The FATF plenary whose public statements the two lists copy.
    fatf_source : str
        Where the lists come from (the statements' titles and dates).
    fatf_black_list : list of str
        "High-risk jurisdictions subject to a call for action" (ISO 3166-1 alpha-2).
    fatf_grey_list : list of str
        "Jurisdictions under increased monitoring".
    weights_bp : dict of Factor to int
        Every factor's weight in basis points; they sum to 10,000.
    force_high_factors : list of Factor
        Factors that force HIGH when they score 100.
    high_score_min, medium_score_min : int
        Thresholds on the 0..100 weighted total.
    country_score_black_list, country_score_grey_list, country_score_default : int
        Country scores: FATF black list, grey list, any other country.
    country_scores : dict of str to int
        Scores for particular countries (a national risk assessment); a listed country scores
        the highest of its list score and this.
    product_scores : dict of Product to int
        Every product's score; a customer scores the highest of its expected products.
    volume_bands : list of VolumeBand
        Ascending, the first from 0.
    pep_score, sanctions_score : int
        The PEP and sanctions factors' scores when the flag is set (0 otherwise).
    customer_type_scores : dict of PersonType to int
        Natural and legal persons' scores.
    review_months : dict of level to int
        Months to the next review for each risk level.
    """

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    effective_on: dt.date
    fatf_lists_as_of: dt.date
    fatf_source: str
    fatf_black_list: list[Country]
    fatf_grey_list: list[Country]
    weights_bp: dict[Factor, WeightBp]
    force_high_factors: list[Factor]
    high_score_min: Score
    medium_score_min: Score
    country_score_black_list: Score
    country_score_grey_list: Score
    country_score_default: Score
    country_scores: dict[Country, Score]
    product_scores: dict[Product, Score]
    volume_bands: list[VolumeBand]
    pep_score: Score
    sanctions_score: Score
    customer_type_scores: dict[PersonType, Score]
    review_months: dict[Literal["low", "medium", "high"], Annotated[int, msgspec.Meta(ge=1)]]

    def __post_init__(self) -> None:
        # Raised as ValueError so that msgspec reports it as a ValidationError on decode.
        if set(self.weights_bp) != set(Factor):
            missing = sorted(set(Factor) - set(self.weights_bp))
            raise ValueError(f"weights_bp must weigh every factor; missing {missing}")
        total = sum(self.weights_bp.values())
        if total != weights_total_bp:
            raise ValueError(f"weights_bp sum to {total}; they must sum to {weights_total_bp}")
        if not 0 < self.medium_score_min < self.high_score_min:
            raise ValueError("thresholds must satisfy 0 < medium_score_min < high_score_min")
        if set(self.product_scores) != set(Product):
            raise ValueError("product_scores must score every product")
        if set(self.customer_type_scores) != set(PersonType):
            raise ValueError("customer_type_scores must score every person type")
        if set(self.review_months) != set(CDD_BY_LEVEL):
            raise ValueError("review_months must give every risk level")
        if set(self.fatf_black_list) & set(self.fatf_grey_list):
            raise ValueError("a country cannot be on both FATF lists")
        starts = [band.from_usd_minor for band in self.volume_bands]
        if not starts or starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError("volume_bands must start at 0 and ascend strictly")


def load_risk_config(path: Path | str | None = None) -> RiskConfig:
    """Read and check a risk configuration (default: the one shipped with the package).

    Raises
    ------
    RiskConfigError
        If the file is not a valid, consistent configuration.
    """
    if path is None:
        raw = resources.files(__package__).joinpath(DEFAULT_CONFIG_FILE).read_bytes()
    else:
        raw = Path(path).read_bytes()
    return decode_risk_config(raw)


def decode_risk_config(raw: bytes) -> RiskConfig:
    """Decode and check a risk configuration from JSON bytes.

    Raises
    ------
    RiskConfigError
        If it is not a valid, consistent configuration.
    """
    try:
        return msgspec.json.decode(raw, type=RiskConfig)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise RiskConfigError(f"risk configuration refused: {exc}") from None


class CustomerFacts(msgspec.Struct, frozen=True, kw_only=True):
    """The inputs of one assessment, stored with it so an auditor can replay it."""

    person_type: PersonType
    residence_country: Country
    nationality_country: Country
    expected_products: list[Product]
    expected_monthly_volume_usd_minor: VolumeUsdMinor
    pep: bool
    sanctioned: bool


def facts_of(customer: Customer) -> CustomerFacts:
    """The risk inputs of a stored customer."""
    profile = customer.profile
    return CustomerFacts(
        person_type=profile.person_type,
        residence_country=profile.residence_country,
        nationality_country=profile.nationality_country,
        expected_products=list(profile.expected_products),
        expected_monthly_volume_usd_minor=profile.expected_monthly_volume_usd_minor,
        pep=profile.pep,
        sanctioned=customer.sanctioned,
    )


class FactorScore(msgspec.Struct, frozen=True, kw_only=True):
    """One factor's line of the breakdown.

    ``weighted_bp`` is score x weight_bp: its share of ``Assessment.weighted_total_bp``.
    """

    factor: Factor
    score: int
    weight_bp: int
    weighted_bp: int
    why: str


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of `assess`, with everything needed to explain it.

    Attributes
    ----------
    config_version : str
        The configuration used.
    assessed_on : datetime.date
        The date it was made for.
    factors : list of FactorScore
        Every factor, in `Factor` order.
    weighted_total_bp : int
        Sum of score x weight_bp: 10,000 x the 0..100 weighted score (`weighted_score`).
    level : {"low", "medium", "high"}
        The risk level.
    forced_high_by : list of Factor
        The force-high factors that scored 100 (empty unless they forced HIGH).
    cdd : CddLevel
        The due diligence the level calls for.
    next_review_on : datetime.date
        When the customer must be reviewed again.
    """

    config_version: str
    assessed_on: dt.date
    factors: list[FactorScore]
    weighted_total_bp: int
    level: RiskLevel
    forced_high_by: list[Factor]
    cdd: CddLevel
    next_review_on: dt.date

    @property
    def weighted_score(self) -> Decimal:
        """The weighted total on the 0..100 scale, exactly."""
        return Decimal(self.weighted_total_bp) / weights_total_bp


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole months, clamped to the month's last day (31 Aug + 6 months: 28/29 Feb)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def country_score(country: str, config: RiskConfig) -> tuple[int, str]:
    """One country's score and why (the highest that applies)."""
    if country in config.country_scores:
        candidates = [(config.country_scores[country], "country_scores")]
    else:
        candidates = [(config.country_score_default, "default")]
    if country in config.fatf_grey_list:
        candidates.append((config.country_score_grey_list, "fatf_grey_list"))
    if country in config.fatf_black_list:
        candidates.append((config.country_score_black_list, "fatf_black_list"))
    score, source = max(candidates)
    return score, f"{country}:{source}"


def score_factors(facts: CustomerFacts, config: RiskConfig) -> dict[Factor, tuple[int, str]]:
    """Every factor's score (0..100) and a short why, for ``facts``. Pure."""
    residence = country_score(facts.residence_country, config)
    nationality = country_score(facts.nationality_country, config)
    product_score, product = max(
        (config.product_scores[p], str(p)) for p in facts.expected_products
    )
    volume = facts.expected_monthly_volume_usd_minor
    band = [b for b in config.volume_bands if b.from_usd_minor <= volume][-1]
    return {
        Factor.country: (max(residence[0], nationality[0]), f"{residence[1]} {nationality[1]}"),
        Factor.product: (product_score, product),
        Factor.volume: (band.score, f"from_usd_minor={band.from_usd_minor}"),
        Factor.pep: (config.pep_score if facts.pep else 0, f"pep={facts.pep}"),
        Factor.sanctions: (
            config.sanctions_score if facts.sanctioned else 0,
            f"sanctioned={facts.sanctioned}",
        ),
        Factor.customer_type: (
            config.customer_type_scores[facts.person_type],
            str(facts.person_type),
        ),
    }


def combine(
    scores: Mapping[Factor, tuple[int, str]], config: RiskConfig, assessed_on: dt.date
) -> Assessment:
    """The assessment of given factor scores: weights, forced HIGH, thresholds, CDD, review.

    Pure; monotonic in each score (a higher score never gives a lower level).
    """
    lines = [
        FactorScore(
            factor=factor,
            score=scores[factor][0],
            weight_bp=config.weights_bp[factor],
            weighted_bp=scores[factor][0] * config.weights_bp[factor],
            why=scores[factor][1],
        )
        for factor in Factor
    ]
    total_bp = sum(line.weighted_bp for line in lines)
    forced = [f for f in config.force_high_factors if scores[f][0] >= score_max]
    level: RiskLevel
    if forced or total_bp >= config.high_score_min * weights_total_bp:
        level = "high"
    elif total_bp >= config.medium_score_min * weights_total_bp:
        level = "medium"
    else:
        level = "low"
    return Assessment(
        config_version=config.version,
        assessed_on=assessed_on,
        factors=lines,
        weighted_total_bp=total_bp,
        level=level,
        forced_high_by=forced,
        cdd=CDD_BY_LEVEL[level],
        next_review_on=add_months(assessed_on, config.review_months[level]),
    )


def assess(facts: CustomerFacts, config: RiskConfig, assessed_on: dt.date) -> Assessment:
    """Assess one customer's risk. Pure: no clock (the date is an input), no I/O.

    Parameters
    ----------
    facts : CustomerFacts
        The customer's risk inputs.
    config : RiskConfig
        The configuration in force on ``assessed_on``.
    assessed_on : datetime.date
        The assessment's date (the next review counts from it).

    Returns
    -------
    Assessment
        Per-factor scores, weights, weighted total, level, forced-high factors, CDD level,
        next review date.
    """
    return combine(score_factors(facts, config), config, assessed_on)
