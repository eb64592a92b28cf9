from gateway._proto.clearline.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HaltRequest(_message.Message):
    __slots__ = ("instrument", "cancel_resting")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_RESTING_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    cancel_resting: bool
    def __init__(self, instrument: _Optional[str] = ..., cancel_resting: _Optional[bool] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("instrument",)
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    def __init__(self, instrument: _Optional[str] = ...) -> None: ...

class KillSwitchRequest(_message.Message):
    __slots__ = ("account", "on")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    account: int
    on: bool
    def __init__(self, account: _Optional[int] = ..., on: _Optional[bool] = ...) -> None: ...

class CancelAllRequest(_message.Message):
    __slots__ = ("account", "instrument")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    account: int
    instrument: str
    def __init__(self, account: _Optional[int] = ..., instrument: _Optional[str] = ...) -> None: ...

class ControlReply(_message.Message):
    __slots__ = ("reason", "reason_name", "journal_seq", "orders_cancelled", "detail")
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_NAME_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQ_FIELD_NUMBER: _ClassVar[int]
    ORDERS_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    reason: _types_pb2.Reason
    reason_name: str
    journal_seq: int
    orders_cancelled: int
    detail: str
    def __init__(self, reason: _Optional[_Union[_types_pb2.Reason, str]] = ..., reason_name: _Optional[str] = ..., journal_seq: _Optional[int] = ..., orders_cancelled: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class RiskLimitsRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: int
    def __init__(self, account: _Optional[int] = ...) -> None: ...

class RiskLimits(_message.Message):
    __slots__ = ("account", "open_orders_max", "order_notional_max", "open_notional_max", "kill_switch")
    class OrderNotionalMaxEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OpenNotionalMaxEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OPEN_ORDERS_MAX_FIELD_NUMBER: _ClassVar[int]
    ORDER_NOTIONAL_MAX_FIELD_NUMBER: _ClassVar[int]
    OPEN_NOTIONAL_MAX_FIELD_NUMBER: _ClassVar[int]
    KILL_SWITCH_FIELD_NUMBER: _ClassVar[int]
    account: int
    open_orders_max: int
    order_notional_max: _containers.ScalarMap[str, str]
    open_notional_max: _containers.ScalarMap[str, str]
    kill_switch: bool
    def __init__(self, account: _Optional[int] = ..., open_orders_max: _Optional[int] = ..., order_notional_max: _Optional[_Mapping[str, str]] = ..., open_notional_max: _Optional[_Mapping[str, str]] = ..., kill_switch: _Optional[bool] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InstrumentState(_message.Message):
    __slots__ = ("symbol", "status", "best_bid", "best_ask", "orders_resting", "book_sequence")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BEST_BID_FIELD_NUMBER: _ClassVar[int]
    BEST_ASK_FIELD_NUMBER: _ClassVar[int]
    ORDERS_RESTING_FIELD_NUMBER: _ClassVar[int]
    BOOK_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    status: _types_pb2.InstrumentStatus
    best_bid: str
    best_ask: str
    orders_resting: int
    book_sequence: int
    def __init__(self, symbol: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.InstrumentStatus, str]] = ..., best_bid: _Optional[str] = ..., best_ask: _Optional[str] = ..., orders_resting: _Optional[int] = ..., book_sequence: _Optional[int] = ...) -> None: ...

class EngineStatus(_message.Message):
    __slots__ = ("shard", "journal_seq_applied", "journal_seq_last", "snapshot_journal_seq", "orders_resting", "accounts", "kill_switched_accounts", "instruments", "state_hash", "ts_ns", "uptime_ms")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQ_APPLIED_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQ_LAST_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_JOURNAL_SEQ_FIELD_NUMBER: _ClassVar[int]
    ORDERS_RESTING_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    KILL_SWITCHED_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    STATE_HASH_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    shard: str
    journal_seq_applied: int
    journal_seq_last: int
    snapshot_journal_seq: int
    orders_resting: int
    accounts: int
    kill_switched_accounts: _containers.RepeatedScalarFieldContainer[int]
    instruments: _containers.RepeatedCompositeFieldContainer[InstrumentState]
    state_hash: str
    ts_ns: int
    uptime_ms: int
    def __init__(self, shard: _Optional[str] = ..., journal_seq_applied: _Optional[int] = ..., journal_seq_last: _Optional[int] = ..., snapshot_journal_seq: _Optional[int] = ..., orders_resting: _Optional[int] = ..., accounts: _Optional[int] = ..., kill_switched_accounts: _Optional[_Iterable[int]] = ..., instruments: _Optional[_Iterable[_Union[InstrumentState, _Mapping]]] = ..., state_hash: _Optional[str] = ..., ts_ns: _Optional[int] = ..., uptime_ms: _Optional[int] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReconciliationException(_message.Message):
    __slots__ = ("id", "kind", "asset_id", "asset", "owner_id", "bucket", "engine_minor", "ledger_minor", "chain_minor", "journal_seq", "evidence_json", "status", "seen_count", "first_seen_ns", "last_seen_ns", "resolved_by", "resolution")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    ENGINE_MINOR_FIELD_NUMBER: _ClassVar[int]
    LEDGER_MINOR_FIELD_NUMBER: _ClassVar[int]
    CHAIN_MINOR_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQ_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_JSON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SEEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_NS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: str
    asset_id: int
    asset: str
    owner_id: int
    bucket: str
    engine_minor: int
    ledger_minor: int
    chain_minor: int
    journal_seq: int
    evidence_json: str
    status: str
    seen_count: int
    first_seen_ns: int
    last_seen_ns: int
    resolved_by: str
    resolution: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[str] = ..., asset_id: _Optional[int] = ..., asset: _Optional[str] = ..., owner_id: _Optional[int] = ..., bucket: _Optional[str] = ..., engine_minor: _Optional[int] = ..., ledger_minor: _Optional[int] = ..., chain_minor: _Optional[int] = ..., journal_seq: _Optional[int] = ..., evidence_json: _Optional[str] = ..., status: _Optional[str] = ..., seen_count: _Optional[int] = ..., first_seen_ns: _Optional[int] = ..., last_seen_ns: _Optional[int] = ..., resolved_by: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class ReconcileReply(_message.Message):
    __slots__ = ("journal_seq_min", "journal_seq_max", "engine_accounts", "balances_compared", "differences", "new_exceptions")
    JOURNAL_SEQ_MIN_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQ_MAX_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    BALANCES_COMPARED_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    NEW_EXCEPTIONS_FIELD_NUMBER: _ClassVar[int]
    journal_seq_min: int
    journal_seq_max: int
    engine_accounts: int
    balances_compared: int
    differences: _containers.RepeatedCompositeFieldContainer[ReconciliationException]
    new_exceptions: int
    def __init__(self, journal_seq_min: _Optional[int] = ..., journal_seq_max: _Optional[int] = ..., engine_accounts: _Optional[int] = ..., balances_compared: _Optional[int] = ..., differences: _Optional[_Iterable[_Union[ReconciliationException, _Mapping]]] = ..., new_exceptions: _Optional[int] = ...) -> None: ...

class ListReconciliationExceptionsRequest(_message.Message):
    __slots__ = ("include_resolved", "limit")
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    include_resolved: bool
    limit: int
    def __init__(self, include_resolved: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class ReconciliationExceptions(_message.Message):
    __slots__ = ("exceptions",)
    EXCEPTIONS_FIELD_NUMBER: _ClassVar[int]
    exceptions: _containers.RepeatedCompositeFieldContainer[ReconciliationException]
    def __init__(self, exceptions: _Optional[_Iterable[_Union[ReconciliationException, _Mapping]]] = ...) -> None: ...

class ResolveReconciliationExceptionRequest(_message.Message):
    __slots__ = ("id", "resolution")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    id: int
    resolution: str
    def __init__(self, id: _Optional[int] = ..., resolution: _Optional[str] = ...) -> None: ...

class CustomerStateRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: int
    def __init__(self, account: _Optional[int] = ...) -> None: ...

class CustomerStateReply(_message.Message):
    __slots__ = ("account", "known", "kyc_verified", "frozen", "sanctioned", "jurisdiction", "risk_level", "as_of_ns", "reason", "changed_by", "blocked_by", "blocked_by_name")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    KYC_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    SANCTIONED_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    AS_OF_NS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_BY_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_BY_NAME_FIELD_NUMBER: _ClassVar[int]
    account: int
    known: bool
    kyc_verified: bool
    frozen: bool
    sanctioned: bool
    jurisdiction: str
    risk_level: str
    as_of_ns: int
    reason: str
    changed_by: str
    blocked_by: _types_pb2.Reason
    blocked_by_name: str
    def __init__(self, account: _Optional[int] = ..., known: _Optional[bool] = ..., kyc_verified: _Optional[bool] = ..., frozen: _Optional[bool] = ..., sanctioned: _Optional[bool] = ..., jurisdiction: _Optional[str] = ..., risk_level: _Optional[str] = ..., as_of_ns: _Optional[int] = ..., reason: _Optional[str] = ..., changed_by: _Optional[str] = ..., blocked_by: _Optional[_Union[_types_pb2.Reason, str]] = ..., blocked_by_name: _Optional[str] = ...) -> None: ...
