from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FOK: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTD: _ClassVar[TimeInForce]

class StpMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STP_MODE_UNSPECIFIED: _ClassVar[StpMode]
    STP_MODE_CANCEL_TAKER: _ClassVar[StpMode]
    STP_MODE_CANCEL_MAKER: _ClassVar[StpMode]
    STP_MODE_CANCEL_BOTH: _ClassVar[StpMode]
    STP_MODE_DECREMENT_AND_CANCEL: _ClassVar[StpMode]

class CommandKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_KIND_UNSPECIFIED: _ClassVar[CommandKind]
    COMMAND_KIND_PLACE: _ClassVar[CommandKind]
    COMMAND_KIND_CANCEL: _ClassVar[CommandKind]
    COMMAND_KIND_AMEND: _ClassVar[CommandKind]
    COMMAND_KIND_MASS_CANCEL: _ClassVar[CommandKind]
    COMMAND_KIND_HALT: _ClassVar[CommandKind]
    COMMAND_KIND_RESUME: _ClassVar[CommandKind]
    COMMAND_KIND_ADVANCE_TIME: _ClassVar[CommandKind]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_ACCEPTED: _ClassVar[EventKind]
    EVENT_KIND_REJECTED: _ClassVar[EventKind]
    EVENT_KIND_FILLED: _ClassVar[EventKind]
    EVENT_KIND_CANCELLED: _ClassVar[EventKind]
    EVENT_KIND_AMENDED: _ClassVar[EventKind]
    EVENT_KIND_REDUCED: _ClassVar[EventKind]
    EVENT_KIND_BOOK_DELTA: _ClassVar[EventKind]
    EVENT_KIND_INSTRUMENT_STATUS: _ClassVar[EventKind]
    EVENT_KIND_APPLIED: _ClassVar[EventKind]

class TransferKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_KIND_UNSPECIFIED: _ClassVar[TransferKind]
    TRANSFER_KIND_HOLD: _ClassVar[TransferKind]
    TRANSFER_KIND_RELEASE: _ClassVar[TransferKind]
    TRANSFER_KIND_TRADE: _ClassVar[TransferKind]
    TRANSFER_KIND_FEE: _ClassVar[TransferKind]
    TRANSFER_KIND_DEPOSIT: _ClassVar[TransferKind]
    TRANSFER_KIND_WITHDRAWAL: _ClassVar[TransferKind]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_NEW: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELLED: _ClassVar[OrderStatus]
    ORDER_STATUS_REJECTED: _ClassVar[OrderStatus]

class InstrumentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTRUMENT_STATUS_UNSPECIFIED: _ClassVar[InstrumentStatus]
    INSTRUMENT_STATUS_OPEN: _ClassVar[InstrumentStatus]
    INSTRUMENT_STATUS_HALTED: _ClassVar[InstrumentStatus]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_TRADER: _ClassVar[Role]
    ROLE_MARKET_MAKER: _ClassVar[Role]
    ROLE_RISK_OFFICER: _ClassVar[Role]
    ROLE_COMPLIANCE_OFFICER: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_OK: _ClassVar[Reason]
    instrument_must_be_known: _ClassVar[Reason]
    side_must_be_given: _ClassVar[Reason]
    order_type_must_be_given: _ClassVar[Reason]
    time_in_force_must_be_given: _ClassVar[Reason]
    price_must_be_decimal: _ClassVar[Reason]
    price_must_be_multiple_of_tick_size: _ClassVar[Reason]
    price_must_be_given_for_limit_order: _ClassVar[Reason]
    price_must_not_be_given_for_market_order: _ClassVar[Reason]
    quantity_must_be_decimal: _ClassVar[Reason]
    quantity_must_be_multiple_of_lot_size: _ClassVar[Reason]
    client_order_id_must_fit_in_63_bits: _ClassVar[Reason]
    order_must_be_named: _ClassVar[Reason]
    batch_must_not_exceed_maximum: _ClassVar[Reason]
    command_must_be_given: _ClassVar[Reason]
    expire_time_must_fit_in_63_bits: _ClassVar[Reason]
    client_order_id_must_be_given: _ClassVar[Reason]
    columns_must_be_of_equal_length: _ClassVar[Reason]
    customer_state_must_be_known: _ClassVar[Reason]
    customer_state_must_be_fresh: _ClassVar[Reason]
    customer_must_be_verified: _ClassVar[Reason]
    customer_must_not_be_frozen: _ClassVar[Reason]
    customer_must_not_be_sanctioned: _ClassVar[Reason]
    jurisdiction_must_be_allowed_for_instrument: _ClassVar[Reason]
    account_must_not_be_kill_switched: _ClassVar[Reason]
    open_orders_must_not_exceed_limit: _ClassVar[Reason]
    order_notional_must_not_exceed_limit: _ClassVar[Reason]
    open_notional_must_not_exceed_limit: _ClassVar[Reason]
    funds_must_be_available: _ClassVar[Reason]
    asset_must_exist: _ClassVar[Reason]
    amount_must_be_positive: _ClassVar[Reason]
    withdrawal_must_exist: _ClassVar[Reason]
    withdrawal_id_must_be_unique: _ClassVar[Reason]
    asset_must_not_exist: _ClassVar[Reason]
    instrument_assets_must_exist: _ClassVar[Reason]
    balance_must_stay_within_maximum: _ClassVar[Reason]
    account_must_be_a_customer: _ClassVar[Reason]
    command_kind_must_be_valid: _ClassVar[Reason]
    side_must_be_valid: _ClassVar[Reason]
    order_type_must_be_valid: _ClassVar[Reason]
    time_in_force_must_be_valid: _ClassVar[Reason]
    stp_mode_must_be_valid: _ClassVar[Reason]
    account_id_must_be_in_range: _ClassVar[Reason]
    instrument_must_exist: _ClassVar[Reason]
    instrument_must_be_open: _ClassVar[Reason]
    quantity_must_be_positive: _ClassVar[Reason]
    quantity_must_be_multiple_of_increment: _ClassVar[Reason]
    quantity_must_be_at_least_minimum: _ClassVar[Reason]
    quantity_must_be_at_most_maximum: _ClassVar[Reason]
    price_must_be_multiple_of_increment: _ClassVar[Reason]
    price_must_be_within_band: _ClassVar[Reason]
    notional_must_be_at_least_minimum: _ClassVar[Reason]
    market_order_must_be_ioc_or_fok: _ClassVar[Reason]
    post_only_order_must_be_gtc_or_gtd_limit: _ClassVar[Reason]
    expire_time_must_be_given_for_gtd_only: _ClassVar[Reason]
    expire_time_must_be_in_future: _ClassVar[Reason]
    client_order_id_must_be_unique: _ClassVar[Reason]
    order_must_exist: _ClassVar[Reason]
    order_must_belong_to_account: _ClassVar[Reason]
    amend_must_change_order: _ClassVar[Reason]
    book_must_have_capacity: _ClassVar[Reason]
    engine_must_have_order_capacity: _ClassVar[Reason]
    post_only_order_must_not_cross: _ClassVar[Reason]
    instrument_id_must_be_in_range: _ClassVar[Reason]
    instrument_must_not_exist: _ClassVar[Reason]
    instrument_parameters_must_be_valid: _ClassVar[Reason]
    price_levels_must_not_exceed_maximum: _ClassVar[Reason]
    command_must_be_well_formed: _ClassVar[Reason]
    cancelled_by_user: _ClassVar[Reason]
    unfilled_remainder_cancelled: _ClassVar[Reason]
    fill_or_kill_not_fillable: _ClassVar[Reason]
    self_trade_prevented: _ClassVar[Reason]
    order_expired: _ClassVar[Reason]
    mass_cancelled: _ClassVar[Reason]
    instrument_halted: _ClassVar[Reason]

class TransferResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_RESULT_OK: _ClassVar[TransferResult]
    linked_event_failed: _ClassVar[TransferResult]
    linked_event_chain_open: _ClassVar[TransferResult]
    id_must_be_in_range: _ClassVar[TransferResult]
    flags_must_be_known: _ClassVar[TransferResult]
    exists_with_different_fields: _ClassVar[TransferResult]
    exists: _ClassVar[TransferResult]
    id_already_failed: _ClassVar[TransferResult]
    flags_are_mutually_exclusive: _ClassVar[TransferResult]
    pending_id_must_be_zero: _ClassVar[TransferResult]
    pending_id_must_be_in_range: _ClassVar[TransferResult]
    pending_id_must_be_different: _ClassVar[TransferResult]
    amount_must_not_be_negative: _ClassVar[TransferResult]
    amount_must_not_be_zero: _ClassVar[TransferResult]
    code_must_be_in_range: _ClassVar[TransferResult]
    user_data_must_fit_in_64_bits: _ClassVar[TransferResult]
    accounts_must_be_different: _ClassVar[TransferResult]
    debit_account_must_exist: _ClassVar[TransferResult]
    credit_account_must_exist: _ClassVar[TransferResult]
    ledgers_must_match: _ClassVar[TransferResult]
    pending_transfer_not_found: _ClassVar[TransferResult]
    pending_transfer_not_pending: _ClassVar[TransferResult]
    pending_transfer_already_posted: _ClassVar[TransferResult]
    pending_transfer_already_voided: _ClassVar[TransferResult]
    pending_transfer_has_different_accounts: _ClassVar[TransferResult]
    pending_transfer_has_different_ledger: _ClassVar[TransferResult]
    exceeds_pending_transfer_amount: _ClassVar[TransferResult]
    pending_transfer_has_different_amount: _ClassVar[TransferResult]
    overflows_debits: _ClassVar[TransferResult]
    overflows_credits: _ClassVar[TransferResult]
    exceeds_credits: _ClassVar[TransferResult]
    exceeds_debits: _ClassVar[TransferResult]

class AccountResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_RESULT_OK: _ClassVar[AccountResult]
    account_id_must_be_positive: _ClassVar[AccountResult]
    account_flags_must_be_known: _ClassVar[AccountResult]
    account_exists_with_different_fields: _ClassVar[AccountResult]
    account_exists: _ClassVar[AccountResult]
    account_flags_are_mutually_exclusive: _ClassVar[AccountResult]
    account_ledger_must_be_in_range: _ClassVar[AccountResult]
    owner_id_must_be_in_range: _ClassVar[AccountResult]
    purpose_must_be_known: _ClassVar[AccountResult]
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_MARKET: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_GTC: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
TIME_IN_FORCE_FOK: TimeInForce
TIME_IN_FORCE_GTD: TimeInForce
STP_MODE_UNSPECIFIED: StpMode
STP_MODE_CANCEL_TAKER: StpMode
STP_MODE_CANCEL_MAKER: StpMode
STP_MODE_CANCEL_BOTH: StpMode
STP_MODE_DECREMENT_AND_CANCEL: StpMode
COMMAND_KIND_UNSPECIFIED: CommandKind
COMMAND_KIND_PLACE: CommandKind
COMMAND_KIND_CANCEL: CommandKind
COMMAND_KIND_AMEND: CommandKind
COMMAND_KIND_MASS_CANCEL: CommandKind
COMMAND_KIND_HALT: CommandKind
COMMAND_KIND_RESUME: CommandKind
COMMAND_KIND_ADVANCE_TIME: CommandKind
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_ACCEPTED: EventKind
EVENT_KIND_REJECTED: EventKind
EVENT_KIND_FILLED: EventKind
EVENT_KIND_CANCELLED: EventKind
EVENT_KIND_AMENDED: EventKind
EVENT_KIND_REDUCED: EventKind
EVENT_KIND_BOOK_DELTA: EventKind
EVENT_KIND_INSTRUMENT_STATUS: EventKind
EVENT_KIND_APPLIED: EventKind
TRANSFER_KIND_UNSPECIFIED: TransferKind
TRANSFER_KIND_HOLD: TransferKind
TRANSFER_KIND_RELEASE: TransferKind
TRANSFER_KIND_TRADE: TransferKind
TRANSFER_KIND_FEE: TransferKind
TRANSFER_KIND_DEPOSIT: TransferKind
TRANSFER_KIND_WITHDRAWAL: TransferKind
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_NEW: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELLED: OrderStatus
ORDER_STATUS_REJECTED: OrderStatus
INSTRUMENT_STATUS_UNSPECIFIED: InstrumentStatus
INSTRUMENT_STATUS_OPEN: InstrumentStatus
INSTRUMENT_STATUS_HALTED: InstrumentStatus
ROLE_UNSPECIFIED: Role
ROLE_TRADER: Role
ROLE_MARKET_MAKER: Role
ROLE_RISK_OFFICER: Role
ROLE_COMPLIANCE_OFFICER: Role
ROLE_ADMIN: Role
REASON_OK: Reason
instrument_must_be_known: Reason
side_must_be_given: Reason
order_type_must_be_given: Reason
time_in_force_must_be_given: Reason
price_must_be_decimal: Reason
price_must_be_multiple_of_tick_size: Reason
price_must_be_given_for_limit_order: Reason
price_must_not_be_given_for_market_order: Reason
quantity_must_be_decimal: Reason
quantity_must_be_multiple_of_lot_size: Reason
client_order_id_must_fit_in_63_bits: Reason
order_must_be_named: Reason
batch_must_not_exceed_maximum: Reason
command_must_be_given: Reason
expire_time_must_fit_in_63_bits: Reason
client_order_id_must_be_given: Reason
columns_must_be_of_equal_length: Reason
customer_state_must_be_known: Reason
customer_state_must_be_fresh: Reason
customer_must_be_verified: Reason
customer_must_not_be_frozen: Reason
customer_must_not_be_sanctioned: Reason
jurisdiction_must_be_allowed_for_instrument: Reason
account_must_not_be_kill_switched: Reason
open_orders_must_not_exceed_limit: Reason
order_notional_must_not_exceed_limit: Reason
open_notional_must_not_exceed_limit: Reason
funds_must_be_available: Reason
asset_must_exist: Reason
amount_must_be_positive: Reason
withdrawal_must_exist: Reason
withdrawal_id_must_be_unique: Reason
asset_must_not_exist: Reason
instrument_assets_must_exist: Reason
balance_must_stay_within_maximum: Reason
account_must_be_a_customer: Reason
command_kind_must_be_valid: Reason
side_must_be_valid: Reason
order_type_must_be_valid: Reason
time_in_force_must_be_valid: Reason
stp_mode_must_be_valid: Reason
account_id_must_be_in_range: Reason
instrument_must_exist: Reason
instrument_must_be_open: Reason
quantity_must_be_positive: Reason
quantity_must_be_multiple_of_increment: Reason
quantity_must_be_at_least_minimum: Reason
quantity_must_be_at_most_maximum: Reason
price_must_be_multiple_of_increment: Reason
price_must_be_within_band: Reason
notional_must_be_at_least_minimum: Reason
market_order_must_be_ioc_or_fok: Reason
post_only_order_must_be_gtc_or_gtd_limit: Reason
expire_time_must_be_given_for_gtd_only: Reason
expire_time_must_be_in_future: Reason
client_order_id_must_be_unique: Reason
order_must_exist: Reason
order_must_belong_to_account: Reason
amend_must_change_order: Reason
book_must_have_capacity: Reason
engine_must_have_order_capacity: Reason
post_only_order_must_not_cross: Reason
instrument_id_must_be_in_range: Reason
instrument_must_not_exist: Reason
instrument_parameters_must_be_valid: Reason
price_levels_must_not_exceed_maximum: Reason
command_must_be_well_formed: Reason
cancelled_by_user: Reason
unfilled_remainder_cancelled: Reason
fill_or_kill_not_fillable: Reason
self_trade_prevented: Reason
order_expired: Reason
mass_cancelled: Reason
instrument_halted: Reason
TRANSFER_RESULT_OK: TransferResult
linked_event_failed: TransferResult
linked_event_chain_open: TransferResult
id_must_be_in_range: TransferResult
flags_must_be_known: TransferResult
exists_with_different_fields: TransferResult
exists: TransferResult
id_already_failed: TransferResult
flags_are_mutually_exclusive: TransferResult
pending_id_must_be_zero: TransferResult
pending_id_must_be_in_range: TransferResult
pending_id_must_be_different: TransferResult
amount_must_not_be_negative: TransferResult
amount_must_not_be_zero: TransferResult
code_must_be_in_range: TransferResult
user_data_must_fit_in_64_bits: TransferResult
accounts_must_be_different: TransferResult
debit_account_must_exist: TransferResult
credit_account_must_exist: TransferResult
ledgers_must_match: TransferResult
pending_transfer_not_found: TransferResult
pending_transfer_not_pending: TransferResult
pending_transfer_already_posted: TransferResult
pending_transfer_already_voided: TransferResult
pending_transfer_has_different_accounts: TransferResult
pending_transfer_has_different_ledger: TransferResult
exceeds_pending_transfer_amount: TransferResult
pending_transfer_has_different_amount: TransferResult
overflows_debits: TransferResult
overflows_credits: TransferResult
exceeds_credits: TransferResult
exceeds_debits: TransferResult
ACCOUNT_RESULT_OK: AccountResult
account_id_must_be_positive: AccountResult
account_flags_must_be_known: AccountResult
account_exists_with_different_fields: AccountResult
account_exists: AccountResult
account_flags_are_mutually_exclusive: AccountResult
account_ledger_must_be_in_range: AccountResult
owner_id_must_be_in_range: AccountResult
purpose_must_be_known: AccountResult
