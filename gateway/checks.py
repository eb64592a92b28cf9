"""Pre-trade compliance checks (step 2 of the order path), in memory, in microseconds.

Each check is a pure function of the customer's state, the instrument, the time and the limits,
so an auditor can replay any decision from the record. The checks run in the order of their
reason numbers and the first failure is the one reported:

    2001 customer_state_must_be_known
    2002 customer_state_must_be_fresh
    2003 customer_must_be_verified
    2004 customer_must_not_be_frozen
    2005 customer_must_not_be_sanctioned
    2006 jurisdiction_must_be_allowed_for_instrument

Fail closed: each check also fails on a missing state, and `first_failure` reports
``customer_state_must_be_fresh`` for every order while the cache is not live (never synced, or
cut off from NATS), because then no state it holds can be trusted to be current.

`CustomerStateCache` is the transport side: it mirrors compliance's key-value bucket
(`compliance.customer_state`) into a dict and knows whether that mirror is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import msgspec
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from compliance.customer_state import CUSTOMER_STATE_DECODER, CustomerState
from engine._codes import Reason
from engine.topology import Topology

log = logging.getLogger(__name__)

# Oldest customer state accepted: compliance reconfirms every customer at least daily, so a state
# older than a day means its confirmation job stopped, and we no longer know the customer.
customer_state_age_max_ns = 24 * 3600 * 1_000_000_000
# Ping period of the cache's NATS connection; two missed pongs mark it disconnected, so a silent
# network partition stops orders within ~3 periods instead of nats-py's default ~6 minutes.
nats_ping_interval_s = 5
# Pause between attempts to (re)open the bucket's watcher: quick enough that a gateway is live
# again a second after NATS or the bucket comes back, slow enough not to spin on a dead server.
watch_retry_pause_ns = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class ComplianceLimits:
    """The bounds the checks apply; each default is the module constant of the same name."""

    customer_state_age_max_ns: int = customer_state_age_max_ns


class InstrumentView(Protocol):
    """What the checks read of an instrument (e.g. `engine.messages.Instrument`)."""

    @property
    def jurisdictions_allowed(self) -> Collection[str]:
        """ISO 3166-1 alpha-2 codes whose customers may trade it; empty: every jurisdiction."""
        ...


Check = Callable[[CustomerState | None, InstrumentView, int, ComplianceLimits], Reason | None]


# -- CHECKS, in the order of their numbers --


def customer_state_must_be_known(
    state: CustomerState | None, instrument: InstrumentView, now_ns: int, limits: ComplianceLimits
) -> Reason | None:
    """2001: compliance has published a state for the customer."""
    return Reason.customer_state_must_be_known if state is None else None


def customer_state_must_be_fresh(
    state: CustomerState | None, instrument: InstrumentView, now_ns: int, limits: ComplianceLimits
) -> Reason | None:
    """2002: compliance confirmed the state at most ``customer_state_age_max_ns`` ago."""
    if state is None or now_ns - state.as_of_ns > limits.customer_state_age_max_ns:
        return Reason.customer_state_must_be_fresh
    return None


def customer_must_be_verified(
    state: CustomerState | None, instrument: InstrumentView, now_ns: int, limits: ComplianceLimits
) -> Reason | None:
    """2003: the customer passed identity verification (KYC)."""
    if state is None or not state.kyc_verified:
        return Reason.customer_must_be_verified
    return None


def customer_must_not_be_frozen(
    state: CustomerState | None, instrument: InstrumentView, now_ns: int, limits: ComplianceLimits
) -> Reason | None:
    """2004: compliance has not frozen the account."""
    if state is None or state.frozen:
        return Reason.customer_must_not_be_frozen
    return None


def customer_must_not_be_sanctioned(
    state: CustomerState | None, instrument: InstrumentView, now_ns: int, limits: ComplianceLimits
) -> Reason | None:
    """2005: the customer has no sanctions hit (confirmed or pending)."""
    if state is None or state.sanctioned:
        return Reason.customer_must_not_be_sanctioned
    return None


def jurisdiction_must_be_allowed_for_instrument(
    state: CustomerState | None, instrument: InstrumentView, now_ns: int, limits: ComplianceLimits
) -> Reason | None:
    """2006: the instrument admits the customer's jurisdiction (an empty list admits all)."""
    allowed = instrument.jurisdictions_allowed
    if state is None or (allowed and state.jurisdiction not in allowed):
        return Reason.jurisdiction_must_be_allowed_for_instrument
    return None


CHECKS: tuple[Check, ...] = (
    customer_state_must_be_known,
    customer_state_must_be_fresh,
    customer_must_be_verified,
    customer_must_not_be_frozen,
    customer_must_not_be_sanctioned,
    jurisdiction_must_be_allowed_for_instrument,
)


def first_failure(
    state: CustomerState | None,
    instrument: InstrumentView,
    now_ns: int,
    limits: ComplianceLimits,
    *,
    cache_live: bool,
) -> Reason | None:
    """Run the checks in order and return the first failing one's reason.

    Parameters
    ----------
    state : CustomerState or None
        The customer's state from the cache; None when unknown.
    instrument : InstrumentView
        The instrument of the order.
    now_ns : int
        Wall-clock time of the decision, nanoseconds since the Unix epoch.
    limits : ComplianceLimits
        The bounds to apply.
    cache_live : bool
        `CustomerStateCache.live` at the time ``state`` was read. Keyword-only and without a
        default so that no caller fails open by forgetting it.

    Returns
    -------
    Reason or None
        None when every check passes. O(number of checks).
    """
    if not cache_live:
        return Reason.customer_state_must_be_fresh
    for check in CHECKS:
        reason = check(state, instrument, now_ns, limits)
        if reason is not None:
            return reason
    return None


# -- THE CACHE (transport: NATS in, a dict out) --

_KEY_RE = re.compile(r"acct\.([0-9]{1,19})")  # compliance.customer_state.customer_state_key
_DELETED = frozenset({"DEL", "PURGE"})


class CustomerStateCache:
    """Every customer's compliance state, mirrored from the JetStream key-value bucket.

    Live only while connected to NATS and after the watcher has delivered the bucket's initial
    values; a disconnect makes it not live at once, and a reconnect rebuilds the mirror from a
    fresh watcher: the one sure way not to miss what changed while away (the server may have
    restarted and lost the old watcher's ephemeral consumer).
    Open with `CustomerStateCache.open`; close with `close`.
    """

    def __init__(self, client: Client, topology: Topology) -> None:
        self._client = client
        self._topology = topology
        self._states: dict[int, CustomerState] = {}
        self._synced = False
        self._watching: asyncio.Task[None] | None = None
        self._closing = False
        self._decoder = CUSTOMER_STATE_DECODER

    @classmethod
    async def open(cls, nats_url: str, topology: Topology) -> CustomerStateCache:
        """Connect to NATS and start mirroring the bucket; not live until it has synced.

        Parameters
        ----------
        nats_url : str
            The NATS server; the cache keeps its own connection so that it alone decides, from
            that connection's state, whether its mirror is current.
        topology : engine.topology.Topology
            Names the bucket. It may not exist yet: the cache retries until it does.

        Returns
        -------
        CustomerStateCache
            Call `wait_synced` to wait for the initial values.
        """
        client = Client()
        cache = cls(client, topology)
        await client.connect(
            nats_url,
            name="clearline-customer-state-cache",
            # A gateway never gives up on NATS: while away it rejects orders, it does not exit.
            max_reconnect_attempts=-1,
            ping_interval=nats_ping_interval_s,
            max_outstanding_pings=2,
            disconnected_cb=cache._on_disconnected,
            reconnected_cb=cache._on_reconnected,
        )
        cache._start_watching()
        return cache

    @property
    def synced(self) -> bool:
        """The initial values of the current watcher are all in."""
        return self._synced

    @property
    def live(self) -> bool:
        """Synced and connected: the states held are current. Pass to `first_failure`."""
        return self._synced and self._client.is_connected

    def get(self, account_id: int) -> CustomerState | None:
        """The account's state, or None if compliance published none. O(1)."""
        return self._states.get(account_id)

    def __len__(self) -> int:
        return len(self._states)

    async def wait_synced(self, timeout_s: float) -> bool:
        """Wait until the cache is live; return whether it became live within the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.live:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        """Stop watching and close the connection; the cache is not live afterwards."""
        self._closing = True
        self._synced = False
        task = self._stop_watching()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await self._client.close()

    # -- connection events --

    async def _on_disconnected(self) -> None:
        self._synced = False
        if not self._closing:
            log.warning("customer state cache cut off from NATS: orders fail closed")
            # Not awaited: nats-py awaits this callback before it starts to reconnect.
            self._stop_watching()

    async def _on_reconnected(self) -> None:
        if not self._closing:
            log.info("customer state cache reconnected: resyncing")
            self._start_watching()

    # -- the watcher --

    def _start_watching(self) -> None:
        if self._watching is None or self._watching.done():
            self._watching = asyncio.get_running_loop().create_task(self._watch_forever())

    def _stop_watching(self) -> asyncio.Task[None] | None:
        task, self._watching = self._watching, None
        if task is not None:
            task.cancel()
        return task

    async def _watch_forever(self) -> None:
        bucket = self._topology.customer_state_bucket
        failures = 0
        while not self._closing:
            try:
                await self._watch(await self._client.jetstream().key_value(bucket))
            except asyncio.CancelledError:
                raise
            except BucketNotFoundError:
                if failures == 0:  # once, not every second until compliance creates it
                    log.warning("bucket %s does not exist yet: orders fail closed", bucket)
            except Exception:
                log.exception("customer state watcher failed; retrying")
            failures += 1
            self._synced = False
            await asyncio.sleep(watch_retry_pause_ns / 1e9)

    async def _watch(self, kv: KeyValue) -> None:
        watcher = await kv.watchall()
        try:
            # The initial values go into a new dict that replaces the old one whole, so that a
            # key deleted while we were away does not survive a resync.
            states: dict[int, CustomerState] = {}
            async for entry in watcher:
                if entry is None:  # nats-py's marker: the initial values are all delivered
                    self._states = states
                    self._synced = True
                    log.info("customer state cache synced: %d customers", len(states))
                    continue
                self._apply(states, entry)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    def _apply(self, states: dict[int, CustomerState], entry: KeyValue.Entry) -> None:
        key = entry.key
        match = _KEY_RE.fullmatch(key)
        if match is None:
            log.error("customer state bucket: ignoring key %r", key)
            return
        account_id = int(match[1])
        if entry.operation in _DELETED:
            states.pop(account_id, None)
            return
        try:
            state = self._decoder.decode(entry.value or b"")
        except msgspec.DecodeError:  # also a ValidationError: valid JSON, wrong shape
            # Fail closed: an undecodable state must not leave an older, looser one in force.
            states.pop(account_id, None)
            log.error("customer state of account %d does not decode; now unknown", account_id)
            return
        if state.account_id != account_id:
            states.pop(account_id, None)
            log.error("customer state under key %r names account %d", key, state.account_id)
            return
        states[account_id] = state


__all__ = [
    "CHECKS",
    "ComplianceLimits",
    "CustomerState",
    "CustomerStateCache",
    "InstrumentView",
    "customer_state_age_max_ns",
    "first_failure",
]
