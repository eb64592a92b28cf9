"""What monitoring evaluates: one normalised event, and the custody payload it reads.

A `MonitoredEvent` is built by an adapter (`_adapters.py`) from an engine `EventBatch` row or a
custody `CustodyTransfer`; the rules never see the raw shapes. A fill carries both accounts
(buyer as ``account_id``, seller as ``counter_account_id``); deposits and withdrawals carry one.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from compliance.monitoring._limits import address_chars_max, address_labels_max

EventKind = Literal["fill", "deposit", "withdrawal"]
EventSource = Literal["engine", "custody"]
EVENT_KINDS: tuple[str, ...] = ("fill", "deposit", "withdrawal")
EVENT_SOURCES: tuple[str, ...] = ("engine", "custody")


class MonitoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One money movement, as the rules see it.

    Attributes
    ----------
    ref : str
        The event's stable id: ``ev:<shard>:<journal_seq>/<transfer row>`` for the engine,
        ``custody:<transfer_id>`` for custody. Part of every alert id.
    source : {"engine", "custody"}
    kind : {"fill", "deposit", "withdrawal"}
    ts_ns : int
        Event time (the journal entry's, or custody's), never the monitor's clock.
    account_id : int
        The customer; the buyer of a fill.
    asset_id : int
        The asset moved; the base asset of a fill.
    amount_minor : int
        In the asset's minor units; the base quantity of a fill.
    counter_account_id : int
        The seller of a fill; 0 otherwise.
    quote_asset_id, quote_minor : int
        The quote asset and amount of a fill (what the fill is valued at); 0 otherwise.
    counterparty_address, chain, counterparty_vasp, counterparty_jurisdiction : str
        From custody: where the money came from or goes to; ``""`` when not known.
    address_labels : tuple of str
        Custody's labels of the counterparty address (``"mixer"``, ``"sanctioned"``...).
    """

    ref: str
    source: EventSource
    kind: EventKind
    ts_ns: int
    account_id: int
    asset_id: int
    amount_minor: int
    counter_account_id: int = 0
    quote_asset_id: int = 0
    quote_minor: int = 0
    counterparty_address: str = ""
    chain: str = ""
    counterparty_vasp: str = ""
    counterparty_jurisdiction: str = ""
    address_labels: tuple[str, ...] = ()


_Text = Annotated[str, msgspec.Meta(max_length=address_chars_max)]


class CustodyTransfer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The contract custody publishes for monitoring: one on-chain deposit or withdrawal.

    Custody (not built yet) must publish one JSON-encoded `CustodyTransfer` per transfer on
    `Topology.custody_events_subject` (``<prefix>.custody.events.<shard>``) with ``Nats-Msg-Id`` =
    ``custody:<transfer_id>``. Schema rules: map encoding, unknown fields ignored, a new field
    always gets a default, a field is never renamed or retyped.

    The engine's events carry the same deposits and withdrawals without their addresses: the
    shipped rules value and count money from the engine (``"sources": ["engine"]``) and read
    addresses, labels and jurisdictions from custody, so nothing is counted twice.

    Attributes
    ----------
    transfer_id : str
        The deposit or withdrawal id, the same the engine's ``Deposit.deposit_id`` /
        ``HoldWithdrawal.withdrawal_id`` carries.
    direction : {"deposit", "withdrawal"}
    account_id : int
        The customer's trading account (>= 2: 0 and 1 are the exchange's own).
    asset_id : int
        The engine's asset id.
    amount_minor : int
        Positive, in the asset's minor units.
    ts_ns : int
        When custody saw it: the block time of a deposit, the request time of a withdrawal.
    chain : str
        ``"bitcoin"``, ``"ethereum"``...
    address : str
        The counterparty address: the source of a deposit, the destination of a withdrawal.
    tx_hash : str
    counterparty_vasp : str
        The other VASP (Travel Rule), ``""`` for an unhosted wallet or when not known.
    counterparty_jurisdiction : str
        ISO 3166-1 alpha-2 of the counterparty, ``""`` when not known.
    address_labels : list of str
        Custody's screening labels of the address, lower case: ``"mixer"``, ``"tumbler"``,
        ``"sanctioned"``, ``"exchange"``...
    """

    transfer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=address_chars_max)]
    direction: Literal["deposit", "withdrawal"]
    account_id: Annotated[int, msgspec.Meta(ge=2, le=2**63 - 1)]
    asset_id: Annotated[int, msgspec.Meta(ge=1, lt=2**31)]
    amount_minor: Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]
    ts_ns: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    chain: _Text
    address: _Text
    tx_hash: _Text = ""
    counterparty_vasp: _Text = ""
    counterparty_jurisdiction: Annotated[str, msgspec.Meta(pattern="^([A-Z]{2})?$")] = ""
    address_labels: Annotated[list[_Text], msgspec.Meta(max_length=address_labels_max)] = []


CUSTODY_ENCODER = msgspec.json.Encoder()
CUSTODY_DECODER = msgspec.json.Decoder(CustodyTransfer)

__all__ = [
    "CUSTODY_DECODER",
    "CUSTODY_ENCODER",
    "EVENT_KINDS",
    "EVENT_SOURCES",
    "CustodyTransfer",
    "EventKind",
    "EventSource",
    "MonitoredEvent",
]
