"""Transaction monitoring (issue 5, deliverable 3).

A rules engine whose rules are configuration (`load_config`, the shipped ``rules.json``: the
VASP note's VASP-001..005 and the CASP study's typologies), evaluated per customer on sliding
windows of event time by `Monitor`, a deterministic function of (state, event, configuration)
-> `ComplianceAlert`s. Adapters turn the engine's `EventBatch` and custody's `CustodyTransfer`
into `MonitoredEvent`s; `ExchangePrices` values them in USD; `Actions` carries out what the
alerts ask for (alerts stream, freeze, kill switch); `MonitoringConsumer` runs it all on
JetStream: ``python -m compliance.monitoring``.
"""

from compliance.monitoring._actions import Actions, alerts_duplicate_window_s, ensure_alerts_stream
from compliance.monitoring._adapters import BatchError, event_from_custody, events_from_batch
from compliance.monitoring._config import (
    AssetConfig,
    ConfigError,
    MonitoringConfig,
    RuleConfig,
    RuleKind,
    check_config,
    default_config_path,
    load_config,
    usd_cents,
)
from compliance.monitoring._consumer import (
    AlertActions,
    MonitoringConsumer,
)
from compliance.monitoring._limits import (
    address_chars_max,
    address_labels_max,
    config_bytes_max,
    relation_group_accounts_max,
    rules_max,
    window_entries_max,
    window_s_max,
)
from compliance.monitoring._model import (
    CUSTODY_DECODER,
    CUSTODY_ENCODER,
    CustodyTransfer,
    EventKind,
    EventSource,
    MonitoredEvent,
)
from compliance.monitoring._prices import ExchangePrices, ReferencePrices, UsdPrice
from compliance.monitoring._rules import EventError, Monitor, Rule, replay
from compliance.monitoring._windows import ReferenceWindow, SlidingWindow

__all__ = [
    "CUSTODY_DECODER",
    "CUSTODY_ENCODER",
    "Actions",
    "AlertActions",
    "AssetConfig",
    "BatchError",
    "ConfigError",
    "CustodyTransfer",
    "EventError",
    "EventKind",
    "EventSource",
    "ExchangePrices",
    "Monitor",
    "MonitoredEvent",
    "MonitoringConfig",
    "MonitoringConsumer",
    "ReferencePrices",
    "ReferenceWindow",
    "Rule",
    "RuleConfig",
    "RuleKind",
    "SlidingWindow",
    "UsdPrice",
    "address_chars_max",
    "address_labels_max",
    "alerts_duplicate_window_s",
    "check_config",
    "config_bytes_max",
    "default_config_path",
    "ensure_alerts_stream",
    "event_from_custody",
    "events_from_batch",
    "load_config",
    "relation_group_accounts_max",
    "replay",
    "rules_max",
    "usd_cents",
    "window_entries_max",
    "window_s_max",
]
