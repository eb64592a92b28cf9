"""Each monitoring rule fires at its threshold and not below; bad input changes nothing.

Method: hand-built events (USDT is 1 USD, 6 decimals; BTC 8 decimals, priced by its last trade)
through a `Monitor` on the shipped configuration (or a copy with one field changed), one
scenario per rule at the threshold and just under it; determinism by replaying the same engine
flow twice; configuration errors by loading broken copies of the shipped JSON.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from compliance.alerts import ALERT_ENCODER, ComplianceAlert
from compliance.monitoring import (
    ConfigError,
    EventError,
    Monitor,
    MonitoredEvent,
    MonitoringConfig,
    default_config_path,
    event_from_custody,
    events_from_batch,
    load_config,
    replay,
)
from compliance.monitoring._model import CustodyTransfer
from engine.simulate import applied_flow

BTC, USDT = 1, 3
S = 1_000_000_000  # ns per second
USD = 10**6  # USDT minor units per dollar
_n = 0


def usdt(dollars: str) -> int:
    return int(Decimal(dollars) * USD)


def ev(kind: str, account: int, amount_minor: int, ts_s: float = 0, **kw: Any) -> MonitoredEvent:
    global _n
    _n += 1
    fields: dict[str, Any] = {"asset_id": USDT, "source": "engine"}
    fields.update(kw)
    return MonitoredEvent(
        ref=f"test/{_n}", kind=kind, ts_ns=int(ts_s * S), account_id=account,  # type: ignore[arg-type]
        amount_minor=amount_minor, **fields,
    )  # fmt: skip


def custody(kind: str, account: int, amount_minor: int, ts_s: float = 0, **kw: Any) -> Any:
    return ev(kind, account, amount_minor, ts_s, source="custody", **kw)


def fill(buyer: int, seller: int, btc: str, usdt_total: str, ts_s: float = 0) -> MonitoredEvent:
    return ev(
        "fill", buyer, int(Decimal(btc) * 10**8), ts_s, asset_id=BTC, counter_account_id=seller,
        quote_asset_id=USDT, quote_minor=usdt(usdt_total),
    )  # fmt: skip


def config_with(**changes: Any) -> MonitoringConfig:
    """The shipped configuration with top-level or per-rule changes (`rules={id: {...}}`)."""
    data = json.loads(default_config_path().read_bytes())
    rule_changes = changes.pop("rules", {})
    for rule in data["rules"]:
        rule.update(rule_changes.get(rule["id"], {}))
    data.update(changes)
    return load_config(json.dumps(data).encode())


def fired(alerts: list[ComplianceAlert], rule_id: str) -> list[ComplianceAlert]:
    return [a for a in alerts if a.rule_id == rule_id]


@pytest.fixture
def monitor() -> Monitor:
    return Monitor(load_config())


def test_vasp_001_high_value_fires_at_10000_usd(monitor: Monitor) -> None:
    below = monitor.evaluate(ev("deposit", 10, usdt("9999.99")))
    at = monitor.evaluate(ev("withdrawal", 10, usdt("10000")))
    assert fired(below, "VASP-001") == []
    [alert] = fired(at, "VASP-001")
    assert alert.actions == ("enhanced_monitoring",)
    assert alert.prices[0].asset == "USDT" and alert.prices[0].usd_per_unit == "1"
    assert alert.evidence[0].detail["value_usd"] == "10000.00"
    assert alert.alert_id == f"VASP-001:10:{alert.evidence[0].ref}"
    assert alert.rule_version == "2026-12-01.1"


def test_vasp_002_rapid_succession_needs_five_totalling_5000_within_an_hour() -> None:
    m = Monitor(load_config())
    alerts = [m.evaluate(ev("deposit", 11, usdt("1000"), t)) for t in (0, 900, 1800, 2700)]
    assert not any(fired(a, "VASP-002") for a in alerts)  # four is not five
    [alert] = fired(m.evaluate(ev("withdrawal", 11, usdt("1000"), 3600)), "VASP-002")
    assert alert.actions == ("freeze",) and alert.severity == "high"
    assert alert.evidence[0].detail["window_count"] == "5"
    assert alert.evidence[0].detail["window_total_usd"] == "5000.00"
    # One cent short of 5,000 in total: no alert.
    m = Monitor(load_config())
    amounts = ["1000", "1000", "1000", "1000", "999.99"]
    out = m.evaluate_many([ev("deposit", 12, usdt(a), i) for i, a in enumerate(amounts)])
    assert fired(out, "VASP-002") == []
    # Five, but the first is more than an hour before the fifth.
    m = Monitor(load_config())
    out = m.evaluate_many([ev("deposit", 13, usdt("1000"), t) for t in (0, 1, 2, 3, 3601)])
    assert fired(out, "VASP-002") == []


def test_vasp_002_stays_quiet_for_its_cooldown_then_fires_again() -> None:
    m = Monitor(load_config())
    out = m.evaluate_many([ev("deposit", 14, usdt("1000"), t) for t in range(8)])
    assert len(fired(out, "VASP-002")) == 1  # the 6th..8th fall in the cooldown
    out = m.evaluate_many([ev("deposit", 14, usdt("1000"), 3604 + t) for t in range(5)])
    assert len(fired(out, "VASP-002")) == 1


def test_vasp_003_high_risk_jurisdiction_asks_for_source_of_funds(monitor: Monitor) -> None:
    assert fired(monitor.evaluate(custody("deposit", 10, 1, counterparty_jurisdiction="DE")),
                 "VASP-003") == []  # fmt: skip
    [alert] = fired(
        monitor.evaluate(custody("deposit", 10, 1, counterparty_jurisdiction="KP")), "VASP-003"
    )
    assert alert.actions == ("require_source_of_funds",)
    assert alert.evidence[0].detail["counterparty_jurisdiction"] == "KP"


def test_vasp_004_mixer_exposure_blocks_and_drafts_a_sar(monitor: Monitor) -> None:
    quiet = monitor.evaluate(
        custody("withdrawal", 10, 1, counterparty_address="bc1x", address_labels=("exchange",))
    )
    assert fired(quiet, "VASP-004") == []
    [alert] = fired(
        monitor.evaluate(
            custody("deposit", 10, 1, counterparty_address="bc1y", address_labels=("Tumbler",))
        ),
        "VASP-004",
    )
    assert alert.actions == ("block_and_sar",) and alert.severity == "critical"


def test_vasp_005_sanctions_match_by_label_or_listed_address() -> None:
    m = Monitor(config_with(rules={"VASP-005": {"addresses": ["0xbad"]}}))
    assert fired(m.evaluate(custody("deposit", 10, 1, counterparty_address="0xgood")),
                 "VASP-005") == []  # fmt: skip
    [by_label] = fired(
        m.evaluate(custody("deposit", 10, 1, counterparty_address="0xa",
                           address_labels=("sanctioned",))),
        "VASP-005",
    )  # fmt: skip
    [by_list] = fired(
        m.evaluate(custody("withdrawal", 10, 1, counterparty_address="0xbad")), "VASP-005"
    )
    assert by_label.actions == by_list.actions == ("freeze", "report_immediately")
    assert by_list.evidence[0].detail["address_listed"] == "true"


def test_structuring_counts_transfers_just_under_the_threshold() -> None:
    m = Monitor(load_config())
    # 8,999.99 is under the band, 10,000 is at the threshold (VASP-001's): neither counts.
    amounts = ["9000", "8999.99", "10000", "9999.99"]
    out = m.evaluate_many([ev("deposit", 20, usdt(a), i) for i, a in enumerate(amounts)])
    assert fired(out, "TM-STRUCTURING") == []  # two in the band
    [alert] = fired(m.evaluate(ev("withdrawal", 20, usdt("9500"), 86_400)), "TM-STRUCTURING")
    assert alert.evidence[0].detail["window_count"] == "3"
    assert alert.actions == ("enhanced_monitoring", "block_and_sar")
    # The same three, the first more than a day before the third: no alert.
    m = Monitor(load_config())
    times = (0, 10, 86_401)
    out = m.evaluate_many([ev("deposit", 21, usdt("9500"), t) for t in times])
    assert fired(out, "TM-STRUCTURING") == []


def test_rapid_in_and_out_fires_when_most_of_a_deposit_leaves_within_a_day() -> None:
    m = Monitor(load_config())
    m.evaluate(ev("deposit", 30, usdt("1000"), 0))
    assert fired(m.evaluate(ev("withdrawal", 30, usdt("799.99"), 60)), "TM-RAPID-IN-OUT") == []
    [alert] = fired(m.evaluate(ev("withdrawal", 30, usdt("800"), 86_400)), "TM-RAPID-IN-OUT")
    assert alert.evidence[0].detail["withdrawn_usd"] == "800.00"
    # Deposits under the minimum, or older than the window, raise nothing.
    m = Monitor(load_config())
    m.evaluate(ev("deposit", 31, usdt("999.99"), 0))
    assert fired(m.evaluate(ev("withdrawal", 31, usdt("999.99"), 1)), "TM-RAPID-IN-OUT") == []
    m = Monitor(load_config())
    m.evaluate(ev("deposit", 32, usdt("5000"), 0))
    assert fired(m.evaluate(ev("withdrawal", 32, usdt("5000"), 86_401)), "TM-RAPID-IN-OUT") == []


def test_layering_fires_at_ten_distinct_counterparties_in_a_day() -> None:
    m = Monitor(load_config())
    addresses = [f"bc1q{i}" for i in range(9)] + ["bc1q0"]  # 9 distinct, one repeated
    out = m.evaluate_many(
        [custody("withdrawal", 40, 1, i, counterparty_address=a, chain="bitcoin")
         for i, a in enumerate(addresses)]
    )  # fmt: skip
    assert fired(out, "TM-LAYERING") == []
    [alert] = fired(
        m.evaluate(custody("withdrawal", 40, 1, 20, counterparty_address="bc1qX", chain="bitcoin")),
        "TM-LAYERING",
    )
    assert alert.evidence[0].detail["distinct_counterparties"] == "10"


def test_wash_trade_between_one_account_or_related_accounts() -> None:
    m = Monitor(load_config(), relation_groups=[[50, 51]])
    assert fired(m.evaluate(fill(50, 52, "0.1", "3000")), "TM-WASH-TRADE") == []
    [same] = fired(m.evaluate(fill(52, 52, "0.1", "3000")), "TM-WASH-TRADE")
    [related] = fired(m.evaluate(fill(51, 50, "0.1", "3000")), "TM-WASH-TRADE")
    assert same.evidence[0].detail["relation"] == "same_account"
    assert related.evidence[0].detail["relation"] == "related_accounts"
    assert related.account_id == 51 and related.evidence[0].detail["counter_account_id"] == "50"
    # Groups from the configuration count the same as groups from customer data.
    m = Monitor(config_with(relation_groups=[[60, 61, 62]]))
    assert len(fired(m.evaluate(fill(62, 60, "0.1", "3000")), "TM-WASH-TRADE")) == 1


def test_an_unpriced_event_raises_the_unpriced_rule_then_the_last_trade_prices_it() -> None:
    m = Monitor(load_config())
    [alert] = m.evaluate(ev("deposit", 70, 10**8, asset_id=BTC))  # 1 BTC, no trade yet
    assert alert.rule_id == "TM-UNPRICED"
    assert alert.evidence[0].detail["unpriced"] == "true"
    assert "VASP-001" in alert.evidence[0].detail["rules_skipped"]
    m.evaluate(fill(71, 72, "0.5", "15000"))  # 30,000 USDT per BTC
    [high] = m.evaluate(ev("deposit", 70, 10**8, 1, asset_id=BTC))
    assert high.rule_id == "VASP-001" and high.evidence[0].detail["value_usd"] == "30000.00"
    assert high.prices[0].asset == "BTC" and high.prices[0].source == "last_trade"
    assert Decimal(high.prices[0].usd_per_unit) == Decimal(30000)


def test_mid_then_fixed_price_are_the_fallbacks() -> None:
    config = json.loads(default_config_path().read_bytes())
    config["assets"]["2"]["fixed_usd"] = "2500.50"
    m = Monitor(load_config(json.dumps(config).encode()))
    [fixed] = m.evaluate(ev("deposit", 80, 4 * 10**8, asset_id=2))  # 4 ETH
    assert fixed.prices[0].source == "fixed" and fixed.evidence[0].detail["value_usd"] == "10002.00"
    m.prices.observe_mid(2, Decimal("3000"), 5)  # type: ignore[attr-defined]
    [mid] = m.evaluate(ev("deposit", 80, 4 * 10**8, 6, asset_id=2))
    assert mid.prices[0].source == "mid" and mid.prices[0].as_of_ns == 5


def test_same_events_give_the_same_alerts() -> None:
    """An auditor's replay: a fresh monitor over the same events gives identical bytes."""
    _, batches = applied_flow(list(range(10, 30)), 120, 30, seed=11)
    events = [e for b in batches for e in events_from_batch(b)]
    events += [
        event_from_custody(
            CustodyTransfer(
                transfer_id=f"c{i}", direction="withdrawal", account_id=10 + i % 3, asset_id=USDT,
                amount_minor=usdt("950") * 10, ts_ns=2 * S + i, chain="ethereum",
                address=f"0x{i}", counterparty_jurisdiction="IR" if i % 4 == 0 else "",
                address_labels=["mixer"] if i % 5 == 0 else [],
            )
        )
        for i in range(30)
    ]  # fmt: skip
    first = replay(load_config(), events)
    second = replay(load_config(), events)
    assert len(first) > 20 and {a.rule_id for a in first} >= {"VASP-001", "VASP-003", "VASP-004"}
    assert [ALERT_ENCODER.encode(a) for a in first] == [ALERT_ENCODER.encode(a) for a in second]
    assert len({a.alert_id for a in first}) == len(first)


def test_a_malformed_event_is_refused_and_changes_nothing(monitor: Monitor) -> None:
    monitor.evaluate_many([ev("deposit", 90, usdt("1000"), t) for t in range(4)])
    before = (
        {k: (w.count, w.total) for k, w in monitor.windows.items()},
        dict(monitor.fired_ns),
        monitor.events_evaluated,
    )
    bad = [
        ev("fill", 90, 1),  # a fill without its seller and quote
        ev("deposit", 90, -5),
        ev("deposit", 0, 5),
        ev("transfer", 90, 5),
        msgspec.structs.replace(ev("deposit", 90, 5), ref=""),
    ]
    for event in bad:
        with pytest.raises(EventError):
            monitor.evaluate(event)
    after = (
        {k: (w.count, w.total) for k, w in monitor.windows.items()},
        dict(monitor.fired_ns),
        monitor.events_evaluated,
    )
    assert after == before
    # The fifth deposit still makes five.
    assert fired(monitor.evaluate(ev("deposit", 90, usdt("1000"), 5)), "VASP-002")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rules": {"VASP-001": {"value_usd_min": ""}}}, "needs value_usd_min"),
        ({"rules": {"VASP-001": {"value_usd_min": "ten"}}}, "not a decimal"),
        ({"rules": {"VASP-001": {"value_usd_min": "10.001"}}}, "more than 2 decimals"),
        ({"rules": {"VASP-001": {"value_usd_min": "-1"}}}, "at least 0"),
        ({"rules": {"VASP-002": {"window_s": 0}}}, "window_s"),
        ({"rules": {"VASP-002": {"count_min": 0}}}, "count_min"),
        ({"rules": {"VASP-003": {"jurisdictions": ["Iran"]}}}, "ISO 3166"),
        ({"rules": {"TM-WASH-TRADE": {"applies_to": ["deposit"]}}}, "fills only"),
        ({"rules": {"TM-UNPRICED": {"enabled": False}}}, "unpriced"),
        ({"rules": {"VASP-004": {"id": "VASP-001"}}}, "unique"),
        ({"rules": {"VASP-004": {"colour": "red"}}}, "does not decode"),
        ({"rules": {"VASP-004": {"actions": ["shout"]}}}, "does not decode"),
        ({"rules": {"TM-STRUCTURING": {"band_usd": "20000"}}}, "band_usd"),
        ({"relation_groups": [[1, 2], [2, 3]]}, "at most one group"),
        ({"effective_date": "yesterday"}, "does not decode"),
    ],
)
def test_a_broken_configuration_is_refused_with_its_reason(change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_with(**change)


def test_a_configuration_too_large_or_not_json_is_refused() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        load_config(b" " * (2 * 1024 * 1024))
    with pytest.raises(ConfigError, match="does not decode"):
        load_config(b"{not json")


def test_custody_payload_is_checked_at_decode() -> None:
    from compliance.monitoring import CUSTODY_DECODER, CUSTODY_ENCODER

    good = CustodyTransfer(
        transfer_id="d1", direction="deposit", account_id=10, asset_id=1, amount_minor=5,
        ts_ns=1, chain="bitcoin", address="bc1q", address_labels=["mixer"],
    )  # fmt: skip
    assert CUSTODY_DECODER.decode(CUSTODY_ENCODER.encode(good)) == good
    raw = msgspec.to_builtins(good)
    for field, value in [
        ("amount_minor", 0), ("direction", "refund"), ("account_id", 1),
        ("counterparty_jurisdiction", "iran"), ("transfer_id", ""),
    ]:  # fmt: skip
        with pytest.raises(msgspec.ValidationError):
            CUSTODY_DECODER.decode(json.dumps(dict(raw, **{field: value})))
    # Unknown fields from a newer custody are tolerated.
    assert CUSTODY_DECODER.decode(json.dumps(dict(raw, confirmations=6))) == good
