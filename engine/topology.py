"""Names of the NATS streams, subjects and buckets of one engine shard.

Everything is derived from a prefix and a shard name, so tests (and side-by-side deployments)
isolate themselves by choosing their own prefix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topology:
    prefix: str = "cl"
    shard: str = "0"

    @property
    def journal_stream(self) -> str:
        return f"{self.prefix}_journal_{self.shard}".upper()

    @property
    def journal_subject(self) -> str:
        return f"{self.prefix}.journal.{self.shard}"

    @property
    def events_stream(self) -> str:
        return f"{self.prefix}_events_{self.shard}".upper()

    @property
    def events_subject(self) -> str:
        return f"{self.prefix}.events.{self.shard}"

    def market_data_subject(self, instrument_id: int | str = "*") -> str:
        return f"{self.prefix}.md.{self.shard}.{instrument_id}"

    @property
    def query_subject(self) -> str:
        return f"{self.prefix}.query.{self.shard}"

    @property
    def instruments_changed_subject(self) -> str:
        return f"{self.prefix}.instruments.{self.shard}"

    @property
    def customer_state_bucket(self) -> str:
        """JetStream key-value bucket: compliance's view of each customer (gateway/checks)."""
        return f"{self.prefix}_customer_state".upper()

    @property
    def dead_letter_stream(self) -> str:
        """Messages a consumer could not decode, kept for a person to look at."""
        return f"{self.prefix}_dead_letter".upper()

    def dead_letter_subject(self, consumer: str) -> str:
        return f"{self.prefix}.dead_letter.{consumer}.{self.shard}"

    @property
    def alerts_subject(self) -> str:
        """Operational alerts (a dead letter, a reconciliation break) for whoever watches."""
        return f"{self.prefix}.alerts.{self.shard}"

    @property
    def compliance_alerts_stream(self) -> str:
        """Compliance alerts (monitoring rules, screening hits): durable, cases consume them."""
        return f"{self.prefix}_compliance_alerts".upper()

    @property
    def compliance_alerts_subject(self) -> str:
        return f"{self.prefix}.compliance.alerts.{self.shard}"

    @property
    def custody_events_stream(self) -> str:
        """Custody's transfers (`compliance.monitoring.CustodyTransfer`) for monitoring."""
        return f"{self.prefix}_custody_events_{self.shard}".upper()

    @property
    def custody_events_subject(self) -> str:
        return f"{self.prefix}.custody.events.{self.shard}"

    def consumer_name(self, consumer: str) -> str:
        """A durable JetStream consumer's name on this shard's events stream."""
        return f"{self.prefix}_{consumer}_{self.shard}".upper()

    def event_message_id(self, journal_seq: int) -> str:
        return f"ev:{self.shard}:{journal_seq}"


__all__ = ["Topology"]
