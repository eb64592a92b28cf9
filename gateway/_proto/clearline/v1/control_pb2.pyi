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
