"""The cases service's JetStream consumer: compliance alerts in, stored once each.

Transport only: fetch a round, decode, store the round in one transaction (`store_alerts`,
idempotent on `alert_id`), then acknowledge. A redelivery (killed between commit and ack, an
ack lost) finds its alerts stored and adds nothing. An undecodable message, or one PostgreSQL
cannot hold (a NUL character), goes to the dead-letter stream with its reason and an
operational alert, and is acknowledged: it must not stop the alerts behind it. PostgreSQL
going away is transient: nothing is acknowledged, the connection is reopened with a growing
pause, and the same round is stored again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from compliance.alerts import ALERT_DECODER, ComplianceAlert
from compliance.cases._ingest import store_alerts
from compliance.cases._limits import fetch_messages_max
from compliance.cases._schema import ensure_schema
from engine.topology import Topology
from ledger.alerts import dead_letter, ensure_dead_letter_stream

log = logging.getLogger("clearline.compliance.cases")

CONSUMER = "cases"
# A message not acknowledged in this long is delivered again (the consumer died mid-round).
ack_wait_s = 30.0
# How long a fetch waits for the first message when the stream is quiet.
fetch_wait_s = 1.0
# How often to look again for an alerts stream that does not exist yet.
stream_wait_s = 1.0
# Pauses between attempts to reach PostgreSQL again: doubling from the first to the last.
reconnect_pause_s_min = 0.1
reconnect_pause_s_max = 5.0


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _unstorable(alert: ComplianceAlert) -> str:
    """Why PostgreSQL would refuse `alert` on every retry, or "" if it can store it."""
    # text and jsonb cannot hold NUL (JSON's \u0000 included), wherever it hides.
    if _has_nul(msgspec.to_builtins(alert)):
        return "ComplianceAlert contains a NUL character"
    for name, value in (("account_id", alert.account_id), ("raised_ts_ns", alert.raised_ts_ns)):
        if not -(2**63) <= value < 2**63:
            return f"ComplianceAlert {name} {value} does not fit a bigint"
    return ""


class CasesConsumer:
    """Stores the compliance alerts stream into the cases tables. `await start()`, then
    `await run()` until `stop()`; or `await round()` to store what is there now (tests)."""

    def __init__(
        self,
        nc: Any,
        topology: Topology,
        database_url: str,
        *,
        ack_wait: float = ack_wait_s,
        after_store: Callable[[list[ComplianceAlert]], Awaitable[None]] | None = None,
    ) -> None:
        self.nc = nc
        # Run on every round's alerts once stored, before the ack (the SAR drafting): it must be
        # idempotent, since a round that fails here is delivered again.
        self._after_store = after_store
        self._ack_wait = ack_wait  # shorter in tests that wait for a redelivery
        self.js = nc.jetstream()
        self.topology = topology
        self._database_url = database_url
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._sub: Any = None
        self._stopping = asyncio.Event()
        self.alerts_stored = 0
        self.alerts_redelivered = 0  # stored already by an earlier delivery
        self.dead_lettered = 0

    async def start(self) -> None:
        """Wait for the alerts stream, create what else is missing (dead-letter stream,
        schema), then bind the durable consumer: JetStream keeps its position, so a restart
        continues after the last acknowledged alert. Returns early if stopped meanwhile."""
        if not await self._wait_for_alerts_stream():
            return
        await ensure_dead_letter_stream(self.js, self.topology)
        await self._reopen()
        assert self._conn is not None
        await ensure_schema(self._conn)
        name = self.topology.consumer_name(CONSUMER)
        config = ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_ack_pending=4 * fetch_messages_max,
        )
        self._sub = await self.js.pull_subscribe(
            f"{self.topology.prefix}.compliance.alerts.>",
            durable=name,
            stream=self.topology.compliance_alerts_stream,
            config=config,
        )

    async def _wait_for_alerts_stream(self) -> bool:
        """True once the alerts stream exists; False if stopped first.

        The producer (`compliance.monitoring.ensure_alerts_stream`) owns the stream and its
        duplicate window; a stream created here with other settings would win the race and
        keep them, so this side only waits.
        """
        name = self.topology.compliance_alerts_stream
        while not self._stopping.is_set():
            try:
                await self.js.stream_info(name)
                return True
            except NotFoundError:
                log.warning("waiting for stream %s (the monitoring service creates it)", name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), stream_wait_s)
        return False

    async def _reopen(self) -> None:
        await self._close_conn()
        pause = reconnect_pause_s_min
        while not self._stopping.is_set():
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True
                )
                return
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("cases database unreachable (%s); again in %.1f s", exc, pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
                pause = min(2 * pause, reconnect_pause_s_max)

    async def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self.stop()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        await self._close_conn()

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.round()

    async def round(self, *, wait_s: float = fetch_wait_s, ack: bool = True) -> int:
        """Fetch up to `fetch_messages_max` messages, store their alerts in one transaction,
        then acknowledge them (unless `ack` is False: a test's consumer killed before its ack).
        Returns how many messages were handled."""
        if self._sub is None:
            return 0  # stopped before the stream appeared
        try:
            msgs = await self._sub.fetch(fetch_messages_max, timeout=wait_s)
        except (TimeoutError, nats.errors.TimeoutError):
            return 0
        alerts = [alert for msg in msgs if (alert := await self._parse(msg)) is not None]
        while alerts:
            if self._stopping.is_set():
                return 0  # not stored: all are delivered again
            try:
                if self._conn is None:
                    await self._reopen()
                    continue
                new = await store_alerts(self._conn, alerts)
                self.alerts_stored += len(new)
                self.alerts_redelivered += len(alerts) - len(new)
                break
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                log.warning("cases database failed mid-round (%s); reconnecting", exc)
                await self._reopen()
        if alerts and self._after_store is not None:
            try:
                await self._after_store(alerts)
            except Exception:
                log.exception("alerts stored, but what follows failed; the round comes again")
                return len(msgs)  # not acknowledged: delivered again after ack_wait
        if ack:
            for msg in msgs:
                await msg.ack()
        return len(msgs)

    async def _parse(self, msg: Any) -> ComplianceAlert | None:
        position = msg.metadata.sequence.stream
        try:
            alert = ALERT_DECODER.decode(msg.data)
        except msgspec.DecodeError as exc:
            await self._dead_letter(msg, position, f"undecodable ComplianceAlert: {exc}")
            return None
        reason = _unstorable(alert)
        if reason:
            await self._dead_letter(msg, position, reason)
            return None
        return alert

    async def _dead_letter(self, msg: Any, position: int, reason: str) -> None:
        await dead_letter(
            self.nc,
            self.topology,
            consumer=CONSUMER,
            stream=self.topology.compliance_alerts_stream,
            position=position,
            data=msg.data,
            reason=reason,
            source="compliance.cases",
            summary=f"compliance alert message {position} not stored: {reason[:200]}",
        )
        self.dead_lettered += 1
