from gateway._proto.clearline.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlaceOrderRequest(_message.Message):
    __slots__ = ("instrument", "side", "order_type", "time_in_force", "price", "quantity", "client_order_id", "post_only", "expire_ts_ns", "stp_mode", "stp_group")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    STP_MODE_FIELD_NUMBER: _ClassVar[int]
    STP_GROUP_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    side: _types_pb2.Side
    order_type: _types_pb2.OrderType
    time_in_force: _types_pb2.TimeInForce
    price: str
    quantity: str
    client_order_id: int
    post_only: bool
    expire_ts_ns: int
    stp_mode: _types_pb2.StpMode
    stp_group: int
    def __init__(self, instrument: _Optional[str] = ..., side: _Optional[_Union[_types_pb2.Side, str]] = ..., order_type: _Optional[_Union[_types_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_types_pb2.TimeInForce, str]] = ..., price: _Optional[str] = ..., quantity: _Optional[str] = ..., client_order_id: _Optional[int] = ..., post_only: _Optional[bool] = ..., expire_ts_ns: _Optional[int] = ..., stp_mode: _Optional[_Union[_types_pb2.StpMode, str]] = ..., stp_group: _Optional[int] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("order_id", "client_order_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: int
    client_order_id: int
    def __init__(self, order_id: _Optional[int] = ..., client_order_id: _Optional[int] = ...) -> None: ...

class AmendOrderRequest(_message.Message):
    __slots__ = ("order_id", "price", "quantity")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    order_id: int
    price: str
    quantity: str
    def __init__(self, order_id: _Optional[int] = ..., price: _Optional[str] = ..., quantity: _Optional[str] = ...) -> None: ...

class MassCancelRequest(_message.Message):
    __slots__ = ("instrument",)
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    def __init__(self, instrument: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("place", "cancel", "amend", "mass_cancel")
    PLACE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    AMEND_FIELD_NUMBER: _ClassVar[int]
    MASS_CANCEL_FIELD_NUMBER: _ClassVar[int]
    place: PlaceOrderRequest
    cancel: CancelOrderRequest
    amend: AmendOrderRequest
    mass_cancel: MassCancelRequest
    def __init__(self, place: _Optional[_Union[PlaceOrderRequest, _Mapping]] = ..., cancel: _Optional[_Union[CancelOrderRequest, _Mapping]] = ..., amend: _Optional[_Union[AmendOrderRequest, _Mapping]] = ..., mass_cancel: _Optional[_Union[MassCancelRequest, _Mapping]] = ...) -> None: ...

class CommandBatch(_message.Message):
    __slots__ = ("batch_id", "commands", "places")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    PLACES_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    commands: _containers.RepeatedCompositeFieldContainer[Command]
    places: PlaceColumns
    def __init__(self, batch_id: _Optional[int] = ..., commands: _Optional[_Iterable[_Union[Command, _Mapping]]] = ..., places: _Optional[_Union[PlaceColumns, _Mapping]] = ...) -> None: ...

class PlaceColumns(_message.Message):
    __slots__ = ("instrument", "order_type", "time_in_force", "post_only", "expire_ts_ns", "stp_mode", "stp_group", "sides", "price_ticks", "quantity_lots", "client_order_ids")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    STP_MODE_FIELD_NUMBER: _ClassVar[int]
    STP_GROUP_FIELD_NUMBER: _ClassVar[int]
    SIDES_FIELD_NUMBER: _ClassVar[int]
    PRICE_TICKS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_LOTS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    order_type: _types_pb2.OrderType
    time_in_force: _types_pb2.TimeInForce
    post_only: bool
    expire_ts_ns: int
    stp_mode: _types_pb2.StpMode
    stp_group: int
    sides: _containers.RepeatedScalarFieldContainer[_types_pb2.Side]
    price_ticks: _containers.RepeatedScalarFieldContainer[int]
    quantity_lots: _containers.RepeatedScalarFieldContainer[int]
    client_order_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, instrument: _Optional[str] = ..., order_type: _Optional[_Union[_types_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_types_pb2.TimeInForce, str]] = ..., post_only: _Optional[bool] = ..., expire_ts_ns: _Optional[int] = ..., stp_mode: _Optional[_Union[_types_pb2.StpMode, str]] = ..., stp_group: _Optional[int] = ..., sides: _Optional[_Iterable[_Union[_types_pb2.Side, str]]] = ..., price_ticks: _Optional[_Iterable[int]] = ..., quantity_lots: _Optional[_Iterable[int]] = ..., client_order_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ExecutionReport(_message.Message):
    __slots__ = ("kind", "reason", "reason_name", "command_index", "order_id", "client_order_id", "instrument", "side", "status", "price", "quantity", "leaves_quantity", "trade_id", "maker", "journal_seq", "ts_ns")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_NAME_FIELD_NUMBER: _ClassVar[int]
    COMMAND_INDEX_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LEAVES_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    MAKER_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQ_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    kind: _types_pb2.EventKind
    reason: _types_pb2.Reason
    reason_name: str
    command_index: int
    order_id: int
    client_order_id: int
    instrument: str
    side: _types_pb2.Side
    status: _types_pb2.OrderStatus
    price: str
    quantity: str
    leaves_quantity: str
    trade_id: int
    maker: bool
    journal_seq: int
    ts_ns: int
    def __init__(self, kind: _Optional[_Union[_types_pb2.EventKind, str]] = ..., reason: _Optional[_Union[_types_pb2.Reason, str]] = ..., reason_name: _Optional[str] = ..., command_index: _Optional[int] = ..., order_id: _Optional[int] = ..., client_order_id: _Optional[int] = ..., instrument: _Optional[str] = ..., side: _Optional[_Union[_types_pb2.Side, str]] = ..., status: _Optional[_Union[_types_pb2.OrderStatus, str]] = ..., price: _Optional[str] = ..., quantity: _Optional[str] = ..., leaves_quantity: _Optional[str] = ..., trade_id: _Optional[int] = ..., maker: _Optional[bool] = ..., journal_seq: _Optional[int] = ..., ts_ns: _Optional[int] = ...) -> None: ...

class ReportBatch(_message.Message):
    __slots__ = ("batch_id", "reports", "columns")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    reports: _containers.RepeatedCompositeFieldContainer[ExecutionReport]
    columns: ReportColumns
    def __init__(self, batch_id: _Optional[int] = ..., reports: _Optional[_Iterable[_Union[ExecutionReport, _Mapping]]] = ..., columns: _Optional[_Union[ReportColumns, _Mapping]] = ...) -> None: ...

class ReportColumns(_message.Message):
    __slots__ = ("kinds", "reasons", "command_indexes", "order_ids", "client_order_ids", "instrument_ids", "sides", "statuses", "price_ticks", "quantity_lots", "leaves_lots", "trade_ids", "makers", "journal_seqs", "ts_ns")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_INDEXES_FIELD_NUMBER: _ClassVar[int]
    ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    SIDES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PRICE_TICKS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_LOTS_FIELD_NUMBER: _ClassVar[int]
    LEAVES_LOTS_FIELD_NUMBER: _ClassVar[int]
    TRADE_IDS_FIELD_NUMBER: _ClassVar[int]
    MAKERS_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SEQS_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[_types_pb2.EventKind]
    reasons: _containers.RepeatedScalarFieldContainer[_types_pb2.Reason]
    command_indexes: _containers.RepeatedScalarFieldContainer[int]
    order_ids: _containers.RepeatedScalarFieldContainer[int]
    client_order_ids: _containers.RepeatedScalarFieldContainer[int]
    instrument_ids: _containers.RepeatedScalarFieldContainer[int]
    sides: _containers.RepeatedScalarFieldContainer[_types_pb2.Side]
    statuses: _containers.RepeatedScalarFieldContainer[_types_pb2.OrderStatus]
    price_ticks: _containers.RepeatedScalarFieldContainer[int]
    quantity_lots: _containers.RepeatedScalarFieldContainer[int]
    leaves_lots: _containers.RepeatedScalarFieldContainer[int]
    trade_ids: _containers.RepeatedScalarFieldContainer[int]
    makers: _containers.RepeatedScalarFieldContainer[bool]
    journal_seqs: _containers.RepeatedScalarFieldContainer[int]
    ts_ns: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, kinds: _Optional[_Iterable[_Union[_types_pb2.EventKind, str]]] = ..., reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, str]]] = ..., command_indexes: _Optional[_Iterable[int]] = ..., order_ids: _Optional[_Iterable[int]] = ..., client_order_ids: _Optional[_Iterable[int]] = ..., instrument_ids: _Optional[_Iterable[int]] = ..., sides: _Optional[_Iterable[_Union[_types_pb2.Side, str]]] = ..., statuses: _Optional[_Iterable[_Union[_types_pb2.OrderStatus, str]]] = ..., price_ticks: _Optional[_Iterable[int]] = ..., quantity_lots: _Optional[_Iterable[int]] = ..., leaves_lots: _Optional[_Iterable[int]] = ..., trade_ids: _Optional[_Iterable[int]] = ..., makers: _Optional[_Iterable[bool]] = ..., journal_seqs: _Optional[_Iterable[int]] = ..., ts_ns: _Optional[_Iterable[int]] = ...) -> None: ...
