from gateway._proto.clearline.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BookRequest(_message.Message):
    __slots__ = ("instrument", "depth")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    depth: int
    def __init__(self, instrument: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class InstrumentRequest(_message.Message):
    __slots__ = ("instrument",)
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    def __init__(self, instrument: _Optional[str] = ...) -> None: ...

class Level(_message.Message):
    __slots__ = ("price", "quantity", "order_count")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    price: str
    quantity: str
    order_count: int
    def __init__(self, price: _Optional[str] = ..., quantity: _Optional[str] = ..., order_count: _Optional[int] = ...) -> None: ...

class BookUpdate(_message.Message):
    __slots__ = ("instrument", "sequence", "snapshot", "bids", "asks", "ts_ns", "status")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    sequence: int
    snapshot: bool
    bids: _containers.RepeatedCompositeFieldContainer[Level]
    asks: _containers.RepeatedCompositeFieldContainer[Level]
    ts_ns: int
    status: _types_pb2.InstrumentStatus
    def __init__(self, instrument: _Optional[str] = ..., sequence: _Optional[int] = ..., snapshot: _Optional[bool] = ..., bids: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[Level, _Mapping]]] = ..., ts_ns: _Optional[int] = ..., status: _Optional[_Union[_types_pb2.InstrumentStatus, str]] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("instrument", "sequence", "trade_id", "price", "quantity", "aggressor_side", "ts_ns")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AGGRESSOR_SIDE_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    sequence: int
    trade_id: int
    price: str
    quantity: str
    aggressor_side: _types_pb2.Side
    ts_ns: int
    def __init__(self, instrument: _Optional[str] = ..., sequence: _Optional[int] = ..., trade_id: _Optional[int] = ..., price: _Optional[str] = ..., quantity: _Optional[str] = ..., aggressor_side: _Optional[_Union[_types_pb2.Side, str]] = ..., ts_ns: _Optional[int] = ...) -> None: ...

class Bbo(_message.Message):
    __slots__ = ("instrument", "sequence", "bid_price", "bid_quantity", "ask_price", "ask_quantity", "ts_ns")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    sequence: int
    bid_price: str
    bid_quantity: str
    ask_price: str
    ask_quantity: str
    ts_ns: int
    def __init__(self, instrument: _Optional[str] = ..., sequence: _Optional[int] = ..., bid_price: _Optional[str] = ..., bid_quantity: _Optional[str] = ..., ask_price: _Optional[str] = ..., ask_quantity: _Optional[str] = ..., ts_ns: _Optional[int] = ...) -> None: ...
