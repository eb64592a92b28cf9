"""The rule configuration: versioned, dated JSON, validated in full before anything uses it.

Rules are data: a kind (what is computed), its thresholds (USD as Decimal strings, never float),
windows in seconds, a severity and the actions it asks for. The shipped file is
``rules.json`` in this package (`default_config_path`). A configuration that fails any check
raises `ConfigError` naming the rule and the field, and nothing is loaded.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from compliance.alerts import Action, Severity
from compliance.monitoring._limits import (
    config_bytes_max,
    relation_group_accounts_max,
    rules_max,
    window_s_max,
)
from compliance.monitoring._model import EventKind, EventSource

RuleKind = Literal[
    "single_value",  # one event worth at least value_usd_min
    "window_count_sum",  # count_min events totalling value_usd_min within window_s
    "structuring",  # count_min events just under threshold_usd (within band_usd) in window_s
    "deposit_then_withdrawal",  # a withdrawal of most of what came in within window_s
    "distinct_counterparties",  # count_min different counterparty addresses within window_s
    "jurisdiction",  # the counterparty's jurisdiction is listed
    "address_label",  # the counterparty address carries a listed label (mixer, tumbler)
    "sanctions_match",  # the counterparty address is labelled or listed as sanctioned
    "wash_trade",  # a fill between one account or related accounts
    "unpriced",  # an event a value rule needed but no reference price could value
]

_Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,39}$")]


class AssetConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What monitoring needs to value an asset: its units and, optionally, a fixed price."""

    symbol: str
    decimals: Annotated[int, msgspec.Meta(ge=0, le=30)]
    usd_pegged: bool = False  # a stablecoin (or USD itself) counted as 1 USD per unit
    fixed_usd: str = ""  # the last-resort price, Decimal string; "" for none


class RuleConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rule. Which parameters a kind needs is checked by `load_config`."""

    id: _Id
    kind: RuleKind
    title: str
    severity: Severity
    actions: list[Action] = []
    applies_to: tuple[EventKind, ...] = ("fill", "deposit", "withdrawal")
    sources: tuple[EventSource, ...] = ("engine", "custody")
    enabled: bool = True
    value_usd_min: str = ""
    threshold_usd: str = ""
    band_usd: str = ""
    withdrawn_ratio_min: str = ""
    count_min: int = 0
    window_s: int = 0
    cooldown_s: int = 0  # after firing for an account, stay quiet this long (event time)
    jurisdictions: list[str] = []
    labels: list[str] = []
    addresses: list[str] = []


class MonitoringConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A whole configuration; `version` goes on every alert it raises."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    effective_date: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    description: str = ""
    assets: dict[int, AssetConfig] = {}
    relation_groups: list[list[int]] = []
    rules: list[RuleConfig]


class ConfigError(ValueError):
    """The configuration is not valid; the message names the rule and field."""


def usd_cents(text: str, where: str) -> int:
    """A USD Decimal string (at most 2 decimals, not negative) as integer cents."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{where}: {text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{where}: {text!r} must be a finite amount of at least 0")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ConfigError(f"{where}: {text!r} has more than 2 decimals")
    return int(cents)


def _decimal(text: str, where: str, *, low: Decimal, high: Decimal | None = None) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{where}: {text!r} is not a decimal number") from None
    if not value.is_finite() or value < low or (high is not None and value > high):
        raise ConfigError(f"{where}: {text!r} must be within [{low}, {high or 'inf'}]")
    return value


# What each kind needs: (required text fields, count_min needed, window_s needed).
_NEEDS: dict[str, tuple[tuple[str, ...], bool, bool]] = {
    "single_value": (("value_usd_min",), False, False),
    "window_count_sum": (("value_usd_min",), True, True),
    "structuring": (("threshold_usd", "band_usd"), True, True),
    "deposit_then_withdrawal": (("value_usd_min", "withdrawn_ratio_min"), False, True),
    "distinct_counterparties": ((), True, True),
    "jurisdiction": ((), False, False),
    "address_label": ((), False, False),
    "sanctions_match": ((), False, False),
    "wash_trade": ((), False, False),
    "unpriced": ((), False, False),
}
_JURISDICTION = re.compile(r"^[A-Z]{2}$")


def _check_rule(rule: RuleConfig) -> None:
    where = f"rule {rule.id}"
    needed, count_needed, window_needed = _NEEDS[rule.kind]
    for field in needed:
        if not getattr(rule, field):
            raise ConfigError(f"{where}: kind {rule.kind} needs {field}")
    for field in ("value_usd_min", "threshold_usd", "band_usd"):
        if getattr(rule, field):
            usd_cents(getattr(rule, field), f"{where}.{field}")
    if rule.withdrawn_ratio_min:
        _decimal(rule.withdrawn_ratio_min, f"{where}.withdrawn_ratio_min", low=Decimal(0))
    if count_needed and rule.count_min < 1:
        raise ConfigError(f"{where}: kind {rule.kind} needs count_min >= 1")
    if window_needed and not 1 <= rule.window_s <= window_s_max:
        raise ConfigError(f"{where}: window_s must be within [1, {window_s_max}]")
    if not 0 <= rule.cooldown_s <= window_s_max:
        raise ConfigError(f"{where}: cooldown_s must be within [0, {window_s_max}]")
    if rule.kind == "structuring" and usd_cents(rule.band_usd, where) > usd_cents(
        rule.threshold_usd, where
    ):
        raise ConfigError(f"{where}: band_usd must not exceed threshold_usd")
    if rule.kind == "jurisdiction":
        if not rule.jurisdictions:
            raise ConfigError(f"{where}: kind jurisdiction needs jurisdictions")
        for code in rule.jurisdictions:
            if not _JURISDICTION.match(code):
                raise ConfigError(f"{where}: jurisdiction {code!r} is not ISO 3166 alpha-2")
    if rule.kind == "address_label" and not rule.labels:
        raise ConfigError(f"{where}: kind address_label needs labels")
    if rule.kind == "sanctions_match" and not (rule.labels or rule.addresses):
        raise ConfigError(f"{where}: kind sanctions_match needs labels or addresses")
    if rule.kind == "wash_trade" and list(rule.applies_to) != ["fill"]:
        raise ConfigError(f"{where}: kind wash_trade applies to fills only")
    if not rule.applies_to or not rule.sources:
        raise ConfigError(f"{where}: applies_to and sources must not be empty")


def check_config(config: MonitoringConfig) -> MonitoringConfig:
    """Check everything `load_config` checks on a configuration built in code.

    Raises
    ------
    ConfigError
        The first problem found.
    """
    if not config.rules or len(config.rules) > rules_max:
        raise ConfigError(f"rules: between 1 and {rules_max} rules, not {len(config.rules)}")
    ids = [r.id for r in config.rules]
    if len(set(ids)) != len(ids):
        raise ConfigError("rules: rule ids must be unique")
    for rule in config.rules:
        _check_rule(rule)
    unpriced = [r for r in config.rules if r.kind == "unpriced" and r.enabled]
    if len(unpriced) != 1:
        # An event that cannot be valued must raise something, never pass silently.
        raise ConfigError("rules: exactly one enabled rule of kind unpriced is required")
    for asset_id, asset in config.assets.items():
        if asset.fixed_usd:
            _decimal(asset.fixed_usd, f"assets.{asset_id}.fixed_usd", low=Decimal(0))
    seen: set[int] = set()
    for group in config.relation_groups:
        if not 2 <= len(group) <= relation_group_accounts_max:
            raise ConfigError(f"relation_groups: a group has 2 to {relation_group_accounts_max}")
        if seen.intersection(group):
            raise ConfigError("relation_groups: an account is in at most one group")
        seen.update(group)
    return config


_decoder = msgspec.json.Decoder(MonitoringConfig)


def load_config(source: Path | str | bytes | None = None) -> MonitoringConfig:
    """Read and check a rule configuration.

    Parameters
    ----------
    source : path, str path, bytes or None
        A JSON file, or its bytes; None reads the shipped ``rules.json``.

    Returns
    -------
    MonitoringConfig

    Raises
    ------
    ConfigError
        The file is too large, not valid JSON of this shape, or breaks a rule check.
    """
    if source is None:
        source = default_config_path()
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if path.stat().st_size > config_bytes_max:
            raise ConfigError(f"{path}: larger than {config_bytes_max} bytes")
        data = path.read_bytes()
    if len(data) > config_bytes_max:
        raise ConfigError(f"configuration larger than {config_bytes_max} bytes")
    try:
        config = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"configuration does not decode: {exc}") from None
    return check_config(config)


def default_config_path() -> Path:
    """The rule configuration shipped with the package."""
    return Path(__file__).with_name("rules.json")


__all__ = [
    "AssetConfig",
    "ConfigError",
    "MonitoringConfig",
    "RuleConfig",
    "RuleKind",
    "check_config",
    "default_config_path",
    "load_config",
    "usd_cents",
]
