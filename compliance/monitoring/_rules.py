"""The rules engine: a deterministic function of (state, event, configuration) -> alerts.

`Monitor` holds the compiled configuration and the state the rules keep (per-customer sliding
windows, when each rule last fired per customer, the reference prices learnt from fills). It has
no clock, no I/O and no randomness: the same configuration and the same events in the same order
give the same alerts, byte for byte, so an auditor can replay a decision (`replay`). Alert ids
are ``<rule_id>:<account_id>:<event ref>``: a redelivered event raises the same ids, which the
alerts stream deduplicates.

Per event, in order:
1. check the event (a malformed one raises `EventError` and changes nothing);
2. a fill updates the reference prices;
3. each enabled rule for the event's source and kind runs, in configuration order; a rule that
   needs a USD value and finds no price is skipped, and the configuration's one ``unpriced``
   rule raises an alert for the event instead (never silently ignored);
4. per-account rules run for each account of the event (both sides of a fill).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from compliance.alerts import ComplianceAlert, Evidence, PriceUsed
from compliance.monitoring._config import MonitoringConfig, RuleConfig, check_config, usd_cents
from compliance.monitoring._model import EVENT_KINDS, EVENT_SOURCES, MonitoredEvent
from compliance.monitoring._prices import (
    PRICE_CONTEXT,
    ExchangePrices,
    ReferencePrices,
    price_used,
)
from compliance.monitoring._windows import SlidingWindow

_NS_PER_S = 1_000_000_000
# Kinds that value the event in USD before they can decide.
_VALUE_KINDS = frozenset(
    {"single_value", "window_count_sum", "structuring", "deposit_then_withdrawal"}
)


class EventError(ValueError):
    """The event cannot be evaluated (unknown kind, negative amount...); nothing changed."""


class Window(Protocol):
    """A per-customer window (`SlidingWindow`, or the reference `ReferenceWindow`)."""

    capped: bool

    @property
    def count(self) -> int: ...

    @property
    def total(self) -> int: ...

    @property
    def distinct(self) -> int: ...

    def advance(self, now_ns: int) -> None: ...

    def add(self, ts_ns: int, value: int, key: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule of the configuration with its thresholds parsed (cents, nanoseconds)."""

    id: str
    kind: str
    title: str
    severity: str
    actions: tuple[str, ...]
    applies_to: frozenset[str]
    sources: frozenset[str]
    value_cents_min: int
    threshold_cents: int
    band_cents: int
    withdrawn_ratio_min: Decimal
    count_min: int
    window_ns: int
    cooldown_ns: int
    jurisdictions: frozenset[str]
    labels: frozenset[str]
    addresses: frozenset[str]

    @classmethod
    def compile(cls, rule: RuleConfig) -> Rule:
        def cents(text: str) -> int:
            return usd_cents(text, f"rule {rule.id}") if text else 0

        return cls(
            id=rule.id,
            kind=rule.kind,
            title=rule.title,
            severity=rule.severity,
            actions=tuple(rule.actions),
            applies_to=frozenset(rule.applies_to),
            sources=frozenset(rule.sources),
            value_cents_min=cents(rule.value_usd_min),
            threshold_cents=cents(rule.threshold_usd),
            band_cents=cents(rule.band_usd),
            withdrawn_ratio_min=Decimal(rule.withdrawn_ratio_min or "0"),
            count_min=rule.count_min,
            window_ns=rule.window_s * _NS_PER_S,
            cooldown_ns=rule.cooldown_s * _NS_PER_S,
            jurisdictions=frozenset(rule.jurisdictions),
            labels=frozenset(label.lower() for label in rule.labels),
            addresses=frozenset(rule.addresses),
        )


@dataclass(slots=True)
class _Valued:
    """An event's USD value, or its absence (`cents` None)."""

    cents: int | None
    prices: tuple[PriceUsed, ...]
    asset_id: int


def _usd(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


class Monitor:
    """Transaction monitoring of one stream of events.

    Parameters
    ----------
    config : MonitoringConfig
        The rules (checked again here: a configuration built in code gets the same checks).
    relation_groups : iterable of iterable of int, optional
        More groups of related accounts (from customer data) on top of the configuration's;
        fills between accounts of one group are wash trades.
    prices : ReferencePrices, optional
        Default: `ExchangePrices` over the configuration's assets.
    window_factory : callable, optional
        Builds a window of a given length in ns; default `SlidingWindow` (the reference
        `ReferenceWindow` gives the same alerts, slowly).
    """

    def __init__(
        self,
        config: MonitoringConfig,
        *,
        relation_groups: Iterable[Iterable[int]] = (),
        prices: ReferencePrices | None = None,
        window_factory: Callable[[int], Window] = SlidingWindow,
    ) -> None:
        self.config = check_config(config)
        self.version = config.version
        self.rules = [Rule.compile(r) for r in config.rules if r.enabled]
        self.prices: ReferencePrices = prices or ExchangePrices(config.assets)
        self._assets = dict(config.assets)
        self._window_factory = window_factory
        self._group: dict[int, int] = {}
        for number, group in enumerate([*config.relation_groups, *relation_groups], 1):
            for account in group:
                self._group[account] = number
        self._unpriced = next(r for r in self.rules if r.kind == "unpriced")
        handlers: dict[str, Callable[..., str | None]] = {
            "single_value": self._single_value,
            "window_count_sum": self._window_count_sum,
            "structuring": self._structuring,
            "deposit_then_withdrawal": self._deposit_then_withdrawal,
            "distinct_counterparties": self._distinct_counterparties,
            "jurisdiction": self._jurisdiction,
            "address_label": self._address_label,
            "sanctions_match": self._sanctions_match,
            "wash_trade": self._wash_trade,
        }
        # (source, kind) -> the rules that run on it, in configuration order.
        self._routes: dict[tuple[str, str], list[tuple[Rule, Callable[..., str | None]]]] = {
            (source, kind): [
                (rule, handlers[rule.kind])
                for rule in self.rules
                if rule.kind != "unpriced" and source in rule.sources and kind in rule.applies_to
            ]
            for source in EVENT_SOURCES
            for kind in EVENT_KINDS
        }
        # State: (rule id, account) -> window; (rule id, account) -> event time it last fired.
        self.windows: dict[tuple[str, int], Window] = {}
        self.fired_ns: dict[tuple[str, int], int] = {}
        self.events_evaluated = 0
        self._detail: dict[str, str] = {}

    # -- COMMANDS --

    def evaluate(self, event: MonitoredEvent) -> list[ComplianceAlert]:
        """Run every rule on one event; returns the alerts it raised, in rule order.

        O(rules applying to the event) amortised: each window entry is added and dropped once.

        Raises
        ------
        EventError
            The event is malformed; no state changed.
        """
        self._check(event)
        self.events_evaluated += 1
        if event.kind == "fill":
            self.prices.observe_fill(
                event.asset_id, event.amount_minor, event.quote_asset_id, event.quote_minor,
                event.ts_ns,
            )  # fmt: skip
        routes = self._routes[(event.source, event.kind)]
        if not routes:
            return []
        alerts: list[ComplianceAlert] = []
        valued: _Valued | None = None
        skipped: list[str] = []
        if event.kind == "fill" and event.counter_account_id != event.account_id:
            accounts: tuple[int, ...] = (event.account_id, event.counter_account_id)
        else:
            accounts = (event.account_id,)
        for rule, handler in routes:
            if rule.kind in _VALUE_KINDS:
                if valued is None:
                    valued = self._value(event)
                if valued.cents is None:
                    skipped.append(rule.id)
                    continue
            for account in accounts if rule.kind != "wash_trade" else accounts[:1]:
                self._detail = {}
                summary = handler(rule, event, account, valued)
                if summary is not None:
                    alerts.append(self._alert(rule, event, account, summary, valued))
        if skipped and valued is not None:
            self._detail = {
                "asset_id": str(valued.asset_id),
                "unpriced": "true",
                "rules_skipped": ",".join(skipped),
            }
            summary = (
                f"no USD price for asset {valued.asset_id}: rules {', '.join(skipped)} could not"
                " value this event"
            )
            alerts.append(self._alert(self._unpriced, event, event.account_id, summary, None))
        return alerts

    def evaluate_many(self, events: Iterable[MonitoredEvent]) -> list[ComplianceAlert]:
        """`evaluate` each event in order; all their alerts."""
        alerts: list[ComplianceAlert] = []
        for event in events:
            alerts.extend(self.evaluate(event))
        return alerts

    # -- the rules: each returns the alert's summary, or None --

    def _window(self, rule: Rule, account: int) -> Window:
        key = (rule.id, account)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = self._window_factory(rule.window_ns)
        return window

    def _cooling(self, rule: Rule, account: int, ts_ns: int) -> bool:
        """True while the rule is quiet for the account after firing; else records a firing."""
        key = (rule.id, account)
        last = self.fired_ns.get(key)
        if last is not None and rule.cooldown_ns and ts_ns < last + rule.cooldown_ns:
            return True
        self.fired_ns[key] = ts_ns
        return False

    def _single_value(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued
    ) -> str | None:
        assert valued.cents is not None
        if valued.cents < rule.value_cents_min:
            return None
        return f"{event.kind} worth {_usd(valued.cents)} USD, at least {_usd(rule.value_cents_min)}"

    def _window_count_sum(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued
    ) -> str | None:
        assert valued.cents is not None
        window = self._window(rule, account)
        window.add(event.ts_ns, valued.cents)
        count, total = window.count, window.total
        if count < rule.count_min or total < rule.value_cents_min:
            return None
        if self._cooling(rule, account, event.ts_ns):
            return None
        self._window_detail(window)
        return (
            f"{count} transactions totalling {_usd(total)} USD within"
            f" {rule.window_ns // _NS_PER_S} s (at least {rule.count_min} and"
            f" {_usd(rule.value_cents_min)})"
        )

    def _structuring(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued
    ) -> str | None:
        assert valued.cents is not None
        window = self._window(rule, account)
        low = rule.threshold_cents - rule.band_cents
        if not low <= valued.cents < rule.threshold_cents:
            window.advance(event.ts_ns)
            return None
        window.add(event.ts_ns, valued.cents)
        if window.count < rule.count_min or self._cooling(rule, account, event.ts_ns):
            return None
        self._window_detail(window)
        return (
            f"{window.count} transactions between {_usd(low)} and {_usd(rule.threshold_cents)}"
            f" USD within {rule.window_ns // _NS_PER_S} s"
        )

    def _deposit_then_withdrawal(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued
    ) -> str | None:
        assert valued.cents is not None
        deposits = self._window(rule, account)
        if event.kind == "deposit":
            deposits.add(event.ts_ns, valued.cents)
            return None
        if event.kind != "withdrawal":
            return None
        deposits.advance(event.ts_ns)
        deposited = deposits.total
        if deposited < rule.value_cents_min or deposited <= 0:
            return None
        if Decimal(valued.cents) < PRICE_CONTEXT.multiply(rule.withdrawn_ratio_min, deposited):
            return None
        self._window_detail(deposits)
        self._detail["withdrawn_usd"] = _usd(valued.cents)
        return (
            f"withdrawal of {_usd(valued.cents)} USD within {rule.window_ns // _NS_PER_S} s of"
            f" deposits totalling {_usd(deposited)} USD"
        )

    def _distinct_counterparties(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued | None
    ) -> str | None:
        window = self._window(rule, account)
        if not event.counterparty_address:
            window.advance(event.ts_ns)
            return None
        window.add(event.ts_ns, 0, f"{event.chain}:{event.counterparty_address}")
        distinct = window.distinct
        if distinct < rule.count_min or self._cooling(rule, account, event.ts_ns):
            return None
        self._detail = {"distinct_counterparties": str(distinct), "window_count": str(window.count)}
        return (
            f"{distinct} different counterparty addresses within {rule.window_ns // _NS_PER_S} s"
            f" (at least {rule.count_min})"
        )

    def _jurisdiction(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued | None
    ) -> str | None:
        if event.counterparty_jurisdiction not in rule.jurisdictions:
            return None
        self._detail = {"counterparty_jurisdiction": event.counterparty_jurisdiction}
        return f"counterparty in high-risk jurisdiction {event.counterparty_jurisdiction}"

    def _address_label(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued | None
    ) -> str | None:
        hits = sorted(rule.labels.intersection(label.lower() for label in event.address_labels))
        if not hits:
            return None
        self._detail = {"labels": ",".join(hits)}
        return f"counterparty address {event.counterparty_address} labelled {', '.join(hits)}"

    def _sanctions_match(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued | None
    ) -> str | None:
        hits = sorted(rule.labels.intersection(label.lower() for label in event.address_labels))
        listed = event.counterparty_address in rule.addresses
        if not hits and not listed:
            return None
        self._detail = {"labels": ",".join(hits), "address_listed": str(listed).lower()}
        return f"counterparty address {event.counterparty_address} matches a sanctions list"

    def _wash_trade(
        self, rule: Rule, event: MonitoredEvent, account: int, valued: _Valued | None
    ) -> str | None:
        buyer, seller = event.account_id, event.counter_account_id
        if buyer == seller:
            self._detail = {"relation": "same_account"}
            return f"account {buyer} traded with itself"
        group = self._group.get(buyer)
        if group is None or group != self._group.get(seller):
            return None
        self._detail = {"relation": "related_accounts", "relation_group": str(group)}
        return f"related accounts {buyer} (buyer) and {seller} (seller) traded with each other"

    # -- helpers --

    def _window_detail(self, window: Window) -> None:
        self._detail = {
            "window_count": str(window.count),
            "window_total_usd": _usd(window.total),
            "window_capped": str(window.capped).lower(),
        }

    def _value(self, event: MonitoredEvent) -> _Valued:
        """The event's USD value in cents (truncated), valued at the quote side of a fill."""
        if event.kind == "fill":
            asset_id, amount = event.quote_asset_id, event.quote_minor
        else:
            asset_id, amount = event.asset_id, event.amount_minor
        config = self._assets.get(asset_id)
        price = self.prices.usd_price(asset_id, event.ts_ns)
        if config is None or price is None:
            return _Valued(None, (), asset_id)
        cents = int(
            PRICE_CONTEXT.multiply(Decimal(amount).scaleb(2 - config.decimals), price.usd_per_unit)
        )
        return _Valued(cents, (price_used(asset_id, config.symbol, price),), asset_id)

    def _alert(
        self,
        rule: Rule,
        event: MonitoredEvent,
        account: int,
        summary: str,
        valued: _Valued | None,
    ) -> ComplianceAlert:
        detail = {
            "kind": event.kind,
            "asset_id": str(event.asset_id),
            "amount_minor": str(event.amount_minor),
            **self._detail,
        }
        if valued is not None and valued.cents is not None:
            detail["value_usd"] = _usd(valued.cents)
        if event.counter_account_id:
            detail["counter_account_id"] = str(event.counter_account_id)
        if event.counterparty_address:
            detail["counterparty_address"] = event.counterparty_address
            detail["chain"] = event.chain
        return ComplianceAlert(
            alert_id=f"{rule.id}:{account}:{event.ref}",
            rule_id=rule.id,
            rule_version=self.version,
            account_id=account,
            severity=rule.severity,  # type: ignore[arg-type]
            actions=rule.actions,  # type: ignore[arg-type]
            summary=f"{rule.title}: {summary}",
            evidence=(Evidence(source=event.source, ref=event.ref, detail=detail),),
            prices=valued.prices if valued is not None else (),
            raised_ts_ns=event.ts_ns,
        )

    @staticmethod
    def _check(event: MonitoredEvent) -> None:
        if event.source not in EVENT_SOURCES or event.kind not in EVENT_KINDS:
            raise EventError(f"event {event.ref!r}: unknown source or kind")
        if not event.ref:
            raise EventError("event without a ref: its alerts would have no stable id")
        if event.ts_ns < 0 or event.amount_minor < 0 or event.quote_minor < 0:
            raise EventError(f"event {event.ref!r}: negative time or amount")
        if event.account_id <= 0:
            raise EventError(f"event {event.ref!r}: account_id must be positive")
        if event.kind == "fill" and (event.counter_account_id <= 0 or event.quote_asset_id <= 0):
            raise EventError(f"event {event.ref!r}: a fill needs both accounts and a quote asset")


def replay(
    config: MonitoringConfig,
    events: Iterable[MonitoredEvent],
    *,
    relation_groups: Iterable[Iterable[int]] = (),
) -> list[ComplianceAlert]:
    """Every alert a fresh monitor raises on `events`: the auditor's replay of a decision."""
    return Monitor(config, relation_groups=relation_groups).evaluate_many(events)


__all__ = ["EventError", "Monitor", "Rule", "Window", "replay"]
