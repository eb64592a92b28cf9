"""Stable numbered codes of the matching engine.

This module is the one definition of every code the engine emits. The Cython core does not
restate them: ``setup.py`` writes ``engine/_codes.pxi`` from these enums at build time.
Never renumber a value; retire it and add a new one.

Reasons carry their stage in their number (1xxx gateway validation, 2xxx compliance, 3xxx risk,
4xxx matching). Rejects of one command are checked in the order of their numbers within a
stage, so the first failing check is the one reported (precedence order).
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1  # good till cancelled
    IOC = 2  # immediate or cancel: the unfilled remainder is cancelled
    FOK = 3  # fill or kill: fills in full at once or is cancelled with nothing done
    GTD = 4  # good till date: expires when sequenced time reaches expire_ts_ns


class StpMode(IntEnum):
    """Self-trade prevention; the taker's mode decides."""

    CANCEL_TAKER = 1  # cancel the incoming order's remainder, leave the resting order
    CANCEL_MAKER = 2  # cancel the resting order and go on matching
    CANCEL_BOTH = 3  # cancel the resting order and the incoming remainder
    DECREMENT_AND_CANCEL = 4  # reduce both by the smaller quantity; an order at zero is cancelled


class CommandKind(IntEnum):
    PLACE = 1
    CANCEL = 2
    AMEND = 3
    MASS_CANCEL = 4
    HALT = 5
    RESUME = 6
    ADVANCE_TIME = 7


class EventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    FILLED = 3
    CANCELLED = 4
    AMENDED = 5
    REDUCED = 6  # quantity taken away by self-trade prevention (decrement-and-cancel)
    BOOK_DELTA = 7
    INSTRUMENT_STATUS = 8


class OrderStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5


class InstrumentStatus(IntEnum):
    OPEN = 1
    HALTED = 2


class Reason(IntEnum):
    """Why a command was rejected (40xx) or an order was cancelled or reduced (41xx)."""

    OK = 0
    # -- rejects, in precedence order --
    command_kind_must_be_valid = 4001
    side_must_be_valid = 4002
    order_type_must_be_valid = 4003
    time_in_force_must_be_valid = 4004
    stp_mode_must_be_valid = 4005
    account_id_must_be_in_range = 4006
    instrument_must_exist = 4007
    instrument_must_be_open = 4008
    quantity_must_be_positive = 4009
    quantity_must_be_multiple_of_increment = 4010
    quantity_must_be_at_least_minimum = 4011
    quantity_must_be_at_most_maximum = 4012
    price_must_be_multiple_of_increment = 4013
    price_must_be_within_band = 4014
    notional_must_be_at_least_minimum = 4015
    market_order_must_be_ioc_or_fok = 4016
    post_only_order_must_be_gtc_or_gtd_limit = 4017
    expire_time_must_be_given_for_gtd_only = 4018
    expire_time_must_be_in_future = 4019
    client_order_id_must_be_unique = 4020
    order_must_exist = 4021
    order_must_belong_to_account = 4022
    amend_must_change_order = 4023
    book_must_have_capacity = 4024  # orders_per_book_max reached
    engine_must_have_order_capacity = 4025  # orders_max reached
    post_only_order_must_not_cross = 4026
    instrument_id_must_be_in_range = 4027
    instrument_must_not_exist = 4028
    instrument_parameters_must_be_valid = 4029
    price_levels_must_not_exceed_maximum = 4030
    # -- cancel and reduce reasons --
    cancelled_by_user = 4101
    unfilled_remainder_cancelled = 4102  # IOC and market orders
    fill_or_kill_not_fillable = 4103
    self_trade_prevented = 4104
    order_expired = 4105
    mass_cancelled = 4106
    instrument_halted = 4107


__all__ = [
    "CommandKind",
    "EventKind",
    "InstrumentStatus",
    "OrderStatus",
    "OrderType",
    "Reason",
    "Side",
    "StpMode",
    "TimeInForce",
]
