from gateway._proto.clearline.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccountRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: int
    def __init__(self, account: _Optional[int] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("account", "order_id", "client_order_id")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    account: int
    order_id: int
    client_order_id: int
    def __init__(self, account: _Optional[int] = ..., order_id: _Optional[int] = ..., client_order_id: _Optional[int] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("asset", "available", "held")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    asset: str
    available: str
    held: str
    def __init__(self, asset: _Optional[str] = ..., available: _Optional[str] = ..., held: _Optional[str] = ...) -> None: ...

class Balances(_message.Message):
    __slots__ = ("account", "balances", "journal_seq")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQ_FIELD_NUMBER: _ClassVar[int]
    account: int
    balances: _containers.RepeatedCompositeFieldContainer[Balance]
    journal_seq: int
    def __init__(self, account: _Optional[int] = ..., balances: _Optional[_Iterable[_Union[Balance, _Mapping]]] = ..., journal_seq: _Optional[int] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "client_order_id", "instrument", "side", "order_type", "time_in_force", "price", "leaves_quantity", "filled_quantity", "status", "reason", "expire_ts_ns")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    LEAVES_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    order_id: int
    client_order_id: int
    instrument: str
    side: _types_pb2.Side
    order_type: _types_pb2.OrderType
    time_in_force: _types_pb2.TimeInForce
    price: str
    leaves_quantity: str
    filled_quantity: str
    status: _types_pb2.OrderStatus
    reason: _types_pb2.Reason
    expire_ts_ns: int
    def __init__(self, order_id: _Optional[int] = ..., client_order_id: _Optional[int] = ..., instrument: _Optional[str] = ..., side: _Optional[_Union[_types_pb2.Side, str]] = ..., order_type: _Optional[_Union[_types_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_types_pb2.TimeInForce, str]] = ..., price: _Optional[str] = ..., leaves_quantity: _Optional[str] = ..., filled_quantity: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.OrderStatus, str]] = ..., reason: _Optional[_Union[_types_pb2.Reason, str]] = ..., expire_ts_ns: _Optional[int] = ...) -> None: ...

class Orders(_message.Message):
    __slots__ = ("account", "orders")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    account: int
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    def __init__(self, account: _Optional[int] = ..., orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ...) -> None: ...

class ListInstrumentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Instrument(_message.Message):
    __slots__ = ("symbol", "base_asset", "quote_asset", "tick_size", "lot_size", "quantity_min", "quantity_max", "notional_min", "price_min", "price_max", "status", "taker_fee_bps", "maker_fee_bps", "jurisdictions_allowed", "instrument_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BASE_ASSET_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ASSET_FIELD_NUMBER: _ClassVar[int]
    TICK_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOT_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_MIN_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_MAX_FIELD_NUMBER: _ClassVar[int]
    NOTIONAL_MIN_FIELD_NUMBER: _ClassVar[int]
    PRICE_MIN_FIELD_NUMBER: _ClassVar[int]
    PRICE_MAX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAKER_FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    MAKER_FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    JURISDICTIONS_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    lot_size: str
    quantity_min: str
    quantity_max: str
    notional_min: str
    price_min: str
    price_max: str
    status: _types_pb2.InstrumentStatus
    taker_fee_bps: int
    maker_fee_bps: int
    jurisdictions_allowed: _containers.RepeatedScalarFieldContainer[str]
    instrument_id: int
    def __init__(self, symbol: _Optional[str] = ..., base_asset: _Optional[str] = ..., quote_asset: _Optional[str] = ..., tick_size: _Optional[str] = ..., lot_size: _Optional[str] = ..., quantity_min: _Optional[str] = ..., quantity_max: _Optional[str] = ..., notional_min: _Optional[str] = ..., price_min: _Optional[str] = ..., price_max: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.InstrumentStatus, str]] = ..., taker_fee_bps: _Optional[int] = ..., maker_fee_bps: _Optional[int] = ..., jurisdictions_allowed: _Optional[_Iterable[str]] = ..., instrument_id: _Optional[int] = ...) -> None: ...

class Instruments(_message.Message):
    __slots__ = ("instruments",)
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedCompositeFieldContainer[Instrument]
    def __init__(self, instruments: _Optional[_Iterable[_Union[Instrument, _Mapping]]] = ...) -> None: ...
