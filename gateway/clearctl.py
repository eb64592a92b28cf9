"""`clearctl`: the risk desk's control of a running exchange, over the gRPC Control service.

    clearctl status                                   engine, journal and instruments
    clearctl book INSTRUMENT [--depth N]              the L2 book, bids and asks side by side
    clearctl halt INSTRUMENT [--cancel-resting]
    clearctl resume INSTRUMENT
    clearctl kill-switch ACCOUNT on|off
    clearctl customer ACCOUNT                         compliance state, and why orders are refused
    clearctl cancel-all [--account N] [--instrument SYM]
    clearctl limits get [ACCOUNT]                     account 0: the defaults
    clearctl limits set ACCOUNT [--open-orders-max N] [--order-notional-max ASSET=DEC ...]
                                [--open-notional-max ASSET=DEC ...] [--replace]
    clearctl snapshot
    clearctl reconcile                                engine balances against the ledger's
    clearctl exceptions list [--all] [--limit N]      the reconciliation exception queue
    clearctl exceptions resolve ID --resolution TEXT

Where it connects: the client config that `clearline run` writes (`--config`, else as
`gateway.client_config.load` finds it), with `--gateway` and `--api-key` / $CLEARLINE_API_KEY
overriding its address and key; with both given no config is needed. The key is a secret: no
output ever shows more of it than its key id.

Output: plain aligned tables for people; with `--json`, one JSON object on stdout per call the
gateway answered, which is the reply message with its proto field names, every field present,
integers as numbers, decimals as strings, enums by name (a reason as its number, beside its
``reason_name``) and an unset optional field as null. Messages about failures go to stderr.

Exit status:

- 0: done.
- 1: refused: the engine rejected the action (``rejected: instrument_must_be_known (1001)``),
  or the gateway refused it for another cause than the ones below (rate limit, not found), or
  reconcile found differences.
- 2: usage: bad arguments (argparse's, or INVALID_ARGUMENT from the gateway), no client config.
- 3: the gateway cannot be reached, or answered UNAVAILABLE, or not within ``--timeout-s``.
- 4: the key is not accepted (UNAUTHENTICATED) or its role may not do this (PERMISSION_DENIED).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from gateway import client_config
from gateway._proto.clearline.v1 import (
    control_pb2,
    control_pb2_grpc,
    market_data_pb2,
    market_data_pb2_grpc,
    types_pb2,
)

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_DENIED = 4

API_KEY_ENV = "CLEARLINE_API_KEY"
# Longer than the gateway's own wait for the engine (engine.journal.reply_timeout_s, 10 s), so
# that a slow engine is explained by the gateway's message rather than by our deadline.
timeout_s_default = 15.0
# After a call failed UNAVAILABLE, how long to wait for the channel to be connected: connected
# means the gateway itself said UNAVAILABLE; never connected means nothing answers there.
connected_probe_s = 0.5
# Levels per side that `book` shows unless told: a screenful.
book_depth_default = 10
# Account ids travel in the engine's signed 64-bit fields.
account_id_max = (1 << 63) - 1
# The gateway's metadata key for the reason of a refused call (gateway/market_data.py).
_REASON_METADATA = "clearline-reason"


# -- WHERE TO CONNECT --


class Failure(Exception):
    """What went wrong, for stderr, and the exit status it ends with."""

    def __init__(self, exit_status: int, message: str) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.message = message


@dataclass(frozen=True)
class Target:
    address: str  # host:port
    api_key: str = field(repr=False)
    key_source: str  # where the key came from, named in messages about it
    tls_ca: Path | None = None


def key_id(api_key: str) -> str:
    """The public id of a ``clk_<key_id>_<secret>`` key (gateway.auth); never the secret."""
    prefix, _, rest = api_key.partition("_")
    candidate = rest.partition("_")[0]
    if prefix == "clk" and len(candidate) == 12:
        return candidate
    return "(malformed)"


def resolve_target(config_path: Path | None, gateway: str | None, api_key: str | None) -> Target:
    """The address and key from the flags, $CLEARLINE_API_KEY and the client config.

    Raises
    ------
    Failure
        EXIT_USAGE when a config is needed and none is found (the message says where it
        looked), or when it cannot be read.
    """
    source = "--api-key"
    if not api_key and os.environ.get(API_KEY_ENV):
        api_key, source = os.environ[API_KEY_ENV], f"${API_KEY_ENV}"
    try:
        config = client_config.load(config_path)
    except client_config.ConfigNotFound as error:
        if config_path is None and gateway and api_key:
            return Target(gateway, api_key, source)
        raise Failure(
            EXIT_USAGE, f"{error}; or give --gateway and --api-key (or ${API_KEY_ENV})"
        ) from None
    except (OSError, ValueError, TypeError) as error:
        where = config_path or "the client config"
        raise Failure(EXIT_USAGE, f"cannot read {where}: {error}") from None
    if not api_key:
        api_key, source = config.api_key, "the client config"
    tls_ca = Path(config.tls_ca) if config.tls_ca else None
    return Target(gateway or config.gateway, api_key, source, tls_ca)


class Gateway:
    """One channel to the gateway and the calls clearctl makes on it, failures as `Failure`."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        if target.tls_ca is None:
            self.channel = grpc.insecure_channel(target.address)
        else:
            try:
                ca = target.tls_ca.read_bytes()
            except OSError as error:
                raise Failure(EXIT_USAGE, f"cannot read the TLS CA bundle: {error}") from None
            credentials = grpc.ssl_channel_credentials(ca)
            self.channel = grpc.secure_channel(target.address, credentials)
        self.control = control_pb2_grpc.ControlStub(self.channel)
        self.market_data = market_data_pb2_grpc.MarketDataStub(self.channel)
        self._metadata = (("authorization", "Bearer " + target.api_key),)

    def close(self) -> None:
        self.channel.close()

    def call(self, action: str, method: Callable[..., Any], request: Message) -> Any:
        """Make one unary call; ``action`` names the command in messages."""
        try:
            return method(request, metadata=self._metadata, timeout=self.timeout_s)
        except grpc.RpcError as error:
            raise self._failure(action, error) from None

    def _connected(self) -> bool:
        ready = grpc.channel_ready_future(self.channel)
        try:
            ready.result(timeout=connected_probe_s)
        except grpc.FutureTimeoutError:
            return False
        finally:
            ready.cancel()
        return True

    def _failure(self, action: str, error: grpc.RpcError) -> Failure:
        code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        details: str = error.details() or code.name  # type: ignore[attr-defined]
        address = self.target.address
        key = f"key {key_id(self.target.api_key)} from {self.target.key_source}"
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return Failure(EXIT_DENIED, f"the gateway does not accept the {key}: {details}")
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return Failure(EXIT_DENIED, f"the {key} lacks the role for {action}: {details}")
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            if not self._connected():
                return Failure(
                    EXIT_UNREACHABLE,
                    f"cannot reach the gateway at {address}: is `make run` running? ({details})",
                )
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return Failure(
                    EXIT_UNREACHABLE,
                    f"no answer to {action} from the gateway at {address} within "
                    f"{self.timeout_s:g} s; an action may still have been carried out: "
                    "check `clearctl status`",
                )
            return Failure(EXIT_UNREACHABLE, f"the gateway at {address}: {details}")
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return Failure(EXIT_USAGE, f"{action}: the gateway refused the arguments: {details}")
        trailing = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
        if _REASON_METADATA in trailing:
            reason = int(trailing[_REASON_METADATA])
            return Failure(EXIT_REJECTED, f"rejected: {reason_text(reason)}: {details}")
        return Failure(EXIT_REJECTED, f"{action} refused: {code.name}: {details}")


# -- FROM REPLIES TO OUTPUT --


@dataclass(frozen=True)
class Outcome:
    """What a command prints: ``data`` with --json, else ``text``; ``rejected`` means exit 1."""

    data: dict[str, Any]
    text: str
    rejected: str = ""


def reason_text(number: int, name: str = "") -> str:
    """``instrument_must_be_known (1001)``."""
    if not name:
        try:
            name = types_pb2.Reason.Name(number)  # type: ignore[arg-type]
        except ValueError:
            name = "unknown reason"
    return f"{name} ({number})"


def enum_name(enum: EnumDescriptor, number: int) -> str:
    """A value's name without its enum's prefix (``INSTRUMENT_STATUS_OPEN`` -> ``OPEN``)."""
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)
    prefix = "".join("_" + c if c.isupper() else c.upper() for c in enum.name).lstrip("_") + "_"
    return value.name.removeprefix(prefix)


def message_json(message: Message) -> dict[str, Any]:
    """A reply as the --json object (see the module docstring).

    Not protobuf's own JSON mapping: that writes 64-bit integers (journal sequences, account
    ids) as strings, which scripts would then have to convert back.
    """
    data: dict[str, Any] = {}
    for descriptor in message.DESCRIPTOR.fields:
        value = getattr(message, descriptor.name)
        kind = descriptor.message_type
        if kind is not None and kind.GetOptions().map_entry:
            data[descriptor.name] = dict(sorted(value.items()))  # only map<string, string> here
        elif descriptor.is_repeated:
            data[descriptor.name] = [_json_value(descriptor, item) for item in value]
        elif kind is None and descriptor.has_presence and not message.HasField(descriptor.name):
            data[descriptor.name] = None  # an `optional` scalar that was not set
        else:
            data[descriptor.name] = _json_value(descriptor, value)
    return data


def _json_value(descriptor: Any, value: Any) -> Any:
    if isinstance(value, Message):
        return message_json(value)
    enum = descriptor.enum_type
    if enum is not None and enum.name != "Reason":
        return enum_name(enum, value)
    return value


def table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int]) -> str:
    """Columns padded to their widest cell; the ``right`` columns (numbers) right-aligned."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    aligned = set(right)
    return "\n".join(
        "  ".join(
            cell.rjust(widths[i]) if i in aligned else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    )


def pairs(items: Iterable[tuple[str, str]]) -> str:
    """``label  value`` lines with the values in one column."""
    items = list(items)
    width = max(len(label) for label, _ in items)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in items)


def duration_text(ms: int) -> str:
    """``3d 04h 05m 06s``, from the largest unit that is not zero."""
    seconds = ms // 1000
    parts = [(seconds // 86_400, "d"), (seconds // 3600 % 24, "h"), (seconds // 60 % 60, "m")]
    text = ""
    for number, unit in parts:
        if number or text:
            text += f"{number:02d}{unit} " if text else f"{number}{unit} "
    return text + (f"{seconds % 60:02d}s" if text else f"{seconds % 60}s")


def _control_outcome(reply: control_pb2.ControlReply, done: str) -> Outcome:
    """A mutating call's reply; ``done`` is the human line, to which the journal seq is added."""
    data = message_json(reply)
    if reply.reason:
        rejected = "rejected: " + reason_text(reply.reason, reply.reason_name)
        return Outcome(data, "", rejected + (f": {reply.detail}" if reply.detail else ""))
    return Outcome(data, f"{done} (journal seq {reply.journal_seq})")


def _cancelled(count: int) -> str:
    return f"{count} order{'' if count == 1 else 's'} cancelled"


# -- COMMANDS: each takes the gateway and the parsed arguments, and returns an Outcome --


def status(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    reply: control_pb2.EngineStatus = gateway.call(
        "status", gateway.control.GetStatus, control_pb2.StatusRequest()
    )
    applied, last = reply.journal_seq_applied, reply.journal_seq_last
    engine_time = (
        datetime.fromtimestamp(reply.ts_ns // 10**9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if reply.ts_ns > 0
        else "-"
    )
    summary = pairs(
        [
            ("shard", reply.shard),
            ("journal", f"applied {applied}, last {last}, lag {max(last - applied, 0)}"),
            (
                "snapshot",
                f"journal seq {reply.snapshot_journal_seq}"
                if reply.snapshot_journal_seq
                else "none yet",
            ),
            ("resting orders", str(reply.orders_resting)),
            ("accounts", str(reply.accounts)),
            (
                "kill-switched",
                ", ".join(str(a) for a in reply.kill_switched_accounts) or "none",
            ),
            ("engine time", engine_time),
            ("uptime", duration_text(reply.uptime_ms)),
            ("state hash", reply.state_hash or "-"),
        ]
    )
    rows = [
        (
            s.symbol,
            enum_name(types_pb2.InstrumentStatus.DESCRIPTOR, s.status),
            s.best_bid or "-",
            s.best_ask or "-",
            str(s.orders_resting),
            str(s.book_sequence),
        )
        for s in reply.instruments
    ]
    header = ("instrument", "status", "best bid", "best ask", "orders", "book seq")
    instruments = table(header, rows, right=(2, 3, 4, 5)) if rows else "no instruments"
    return Outcome(message_json(reply), f"{summary}\n\n{instruments}")


def book(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = market_data_pb2.BookRequest(instrument=args.instrument, depth=args.depth)
    reply: market_data_pb2.BookUpdate = gateway.call("book", gateway.market_data.GetBook, request)
    title = (
        f"{reply.instrument}  {enum_name(types_pb2.InstrumentStatus.DESCRIPTOR, reply.status)}"
        f"  book seq {reply.sequence}"
    )
    if not reply.bids and not reply.asks:
        return Outcome(message_json(reply), f"{title}\n\nthe book is empty")
    rows = []
    for i in range(max(len(reply.bids), len(reply.asks))):
        bid = reply.bids[i] if i < len(reply.bids) else None
        ask = reply.asks[i] if i < len(reply.asks) else None
        rows.append(
            (
                str(bid.order_count) if bid else "",
                bid.quantity if bid else "",
                bid.price if bid else "",
                "|",
                ask.price if ask else "",
                ask.quantity if ask else "",
                str(ask.order_count) if ask else "",
            )
        )
    header = ("orders", "quantity", "bid", "|", "ask", "quantity", "orders")
    return Outcome(
        message_json(reply), f"{title}\n\n{table(header, rows, right=(0, 1, 2, 4, 5, 6))}"
    )


def halt(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = control_pb2.HaltRequest(
        instrument=args.instrument, cancel_resting=args.cancel_resting
    )
    reply = gateway.call("halt", gateway.control.HaltInstrument, request)
    done = f"halted {args.instrument}"
    if args.cancel_resting:
        done += f", {_cancelled(reply.orders_cancelled)}"
    return _control_outcome(reply, done)


def resume(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = control_pb2.ResumeRequest(instrument=args.instrument)
    reply = gateway.call("resume", gateway.control.ResumeInstrument, request)
    return _control_outcome(reply, f"resumed {args.instrument}")


def kill_switch(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    on = args.state == "on"
    request = control_pb2.KillSwitchRequest(account=args.account, on=on)
    reply = gateway.call("kill-switch", gateway.control.SetKillSwitch, request)
    done = f"kill switch {args.state} for account {args.account}"
    if on:
        done += f", {_cancelled(reply.orders_cancelled)}"
    return _control_outcome(reply, done)


def cancel_all(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = control_pb2.CancelAllRequest(account=args.account, instrument=args.instrument)
    reply = gateway.call("cancel-all", gateway.control.CancelAll, request)
    accounts = f"account {args.account}" if args.account else "every account"
    instruments = args.instrument or "every instrument"
    done = f"{_cancelled(reply.orders_cancelled)} of {accounts} in {instruments}"
    return _control_outcome(reply, done)


def _limits_text(limits: control_pb2.RiskLimits) -> str:
    summary = pairs(
        [
            (
                "account",
                f"{limits.account} (the defaults)" if limits.account == 0 else str(limits.account),
            ),
            ("kill switch", "on" if limits.kill_switch else "off"),
            ("open_orders_max", str(limits.open_orders_max or "no limit")),
        ]
    )
    rows = [
        (name, asset, amount)
        for name, amounts in (
            ("order_notional_max", limits.order_notional_max),
            ("open_notional_max", limits.open_notional_max),
        )
        for asset, amount in sorted(amounts.items())
    ]
    notional = (
        table(("notional limit", "asset", "max"), rows, right=(2,))
        if rows
        else "no notional limits"
    )
    return f"{summary}\n\n{notional}"


def limits_get(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = control_pb2.RiskLimitsRequest(account=args.account)
    reply = gateway.call("limits get", gateway.control.GetRiskLimits, request)
    return Outcome(message_json(reply), _limits_text(reply))


def _merge(amounts: dict[str, str], changes: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Apply ASSET=DEC changes; a zero amount removes the asset's limit (0 is no limit)."""
    merged = dict(amounts)
    for asset, amount in changes:
        try:
            zero = Decimal(amount) == 0
        except InvalidOperation:
            zero = False  # not a number: the gateway refuses it with the reason
        if zero:
            merged.pop(asset, None)
        else:
            merged[asset] = amount
    return merged


def limits_set(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    changes = (args.open_orders_max, args.order_notional_max, args.open_notional_max)
    if not args.replace and changes == (None, [], []):
        raise Failure(EXIT_USAGE, "limits set: name a limit to change, or --replace to clear all")
    if args.replace:
        current = control_pb2.RiskLimits(account=args.account)
    else:
        # Read, change, write: a concurrent change by another officer in between is lost.
        request = control_pb2.RiskLimitsRequest(account=args.account)
        current = gateway.call("limits set", gateway.control.GetRiskLimits, request)
    limits = control_pb2.RiskLimits(
        account=args.account,
        open_orders_max=(
            current.open_orders_max if args.open_orders_max is None else args.open_orders_max
        ),
        order_notional_max=_merge(dict(current.order_notional_max), args.order_notional_max),
        open_notional_max=_merge(dict(current.open_notional_max), args.open_notional_max),
    )
    reply = gateway.call("limits set", gateway.control.SetRiskLimits, limits)
    outcome = _control_outcome(reply, f"set the risk limits of account {args.account}")
    data = dict(outcome.data, limits=message_json(limits))
    if outcome.rejected:
        return Outcome(data, "", outcome.rejected)
    limits.kill_switch = current.kill_switch  # for the table: the switch is not ours to set
    return Outcome(data, f"{outcome.text}\n\n{_limits_text(limits)}")


def snapshot(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    reply = gateway.call("snapshot", gateway.control.TakeSnapshot, control_pb2.SnapshotRequest())
    return _control_outcome(reply, f"took a {reply.detail}" if reply.detail else "took a snapshot")


def _exception_rows(exceptions: Iterable[control_pb2.ReconciliationException]) -> str:
    def amount(message: control_pb2.ReconciliationException, name: str) -> str:
        return str(getattr(message, name)) if message.HasField(name) else "-"

    return table(
        ["id", "kind", "asset", "owner", "bucket", "engine", "ledger", "journal seq", "status"],
        (
            [
                str(e.id) if e.id else "-",
                e.kind,
                e.asset or str(e.asset_id),
                str(e.owner_id),
                e.bucket,
                amount(e, "engine_minor"),
                amount(e, "ledger_minor"),
                str(e.journal_seq),
                e.status or "new",
            ]
            for e in exceptions
        ),
        right=(0, 3, 5, 6, 7),
    )


def reconcile(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    reply: control_pb2.ReconcileReply = gateway.call(
        "reconcile", gateway.control.Reconcile, control_pb2.ReconcileRequest()
    )
    data = message_json(reply)
    seqs = f"{reply.journal_seq_min}..{reply.journal_seq_max}"
    if reply.journal_seq_min == reply.journal_seq_max:
        seqs = str(reply.journal_seq_max)
    head = (
        f"compared {reply.balances_compared} balances of {reply.engine_accounts} accounts with "
        f"the ledger at journal seq {seqs}"
    )
    if not reply.differences:
        return Outcome(data, f"{head}: clean")
    text = f"{head}\n\n{_exception_rows(reply.differences)}\n\namounts in minor units"
    return Outcome(
        data,
        text,
        f"{len(reply.differences)} difference(s), {reply.new_exceptions} new in the exception "
        "queue (clearctl exceptions list)",
    )


def exceptions_list(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = control_pb2.ListReconciliationExceptionsRequest(
        include_resolved=args.all, limit=args.limit
    )
    reply = gateway.call("exceptions list", gateway.control.ListReconciliationExceptions, request)
    if not reply.exceptions:
        return Outcome(message_json(reply), "no exceptions" if args.all else "no open exceptions")
    return Outcome(
        message_json(reply), f"{_exception_rows(reply.exceptions)}\n\namounts in minor units"
    )


def exceptions_resolve(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = control_pb2.ResolveReconciliationExceptionRequest(
        id=args.id, resolution=args.resolution
    )
    reply = gateway.call(
        "exceptions resolve", gateway.control.ResolveReconciliationException, request
    )
    return Outcome(message_json(reply), reply.detail)


def customer(gateway: Gateway, args: argparse.Namespace) -> Outcome:
    request = control_pb2.CustomerStateRequest(account=args.account)
    reply = gateway.call("customer", gateway.control.GetCustomerState, request)
    blocked = reason_text(reply.blocked_by, reply.blocked_by_name) if reply.blocked_by else "no"
    if not reply.known:
        lines = [("account", str(reply.account)), ("state", "unknown to compliance")]
    else:
        as_of = datetime.fromtimestamp(reply.as_of_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        lines = [
            ("account", str(reply.account)),
            ("kyc verified", "yes" if reply.kyc_verified else "no"),
            ("frozen", "yes" if reply.frozen else "no"),
            ("sanctioned", "yes" if reply.sanctioned else "no"),
            ("jurisdiction", reply.jurisdiction),
            ("risk level", reply.risk_level),
            ("as of", as_of),
            ("why", reply.reason or "-"),
            ("changed by", reply.changed_by or "-"),
        ]
    lines.append(("orders blocked", blocked))
    return Outcome(message_json(reply), pairs(lines))


COMMANDS: dict[str, Callable[[Gateway, argparse.Namespace], Outcome]] = {
    "status": status,
    "book": book,
    "halt": halt,
    "resume": resume,
    "kill-switch": kill_switch,
    "customer": customer,
    "cancel-all": cancel_all,
    "limits get": limits_get,
    "limits set": limits_set,
    "snapshot": snapshot,
    "reconcile": reconcile,
    "exceptions list": exceptions_list,
    "exceptions resolve": exceptions_resolve,
}


# -- THE COMMAND LINE --


def _number_type(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low} to {high}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value


def _asset_amount(text: str) -> tuple[str, str]:
    asset, equals, amount = text.partition("=")
    if not equals or not asset or not amount:
        raise argparse.ArgumentTypeError(f"expected ASSET=DECIMAL (e.g. USDT=250000), not {text!r}")
    return asset, amount


def _add_global_flags(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--config",
        type=Path,
        default=default(None),
        metavar="PATH",
        help="client config (default: $CLEARLINE_CONFIG, ./.clearline/client.json, "
        "~/.clearline/client.json)",
    )
    parser.add_argument(
        "--gateway",
        default=default(None),
        metavar="HOST:PORT",
        help="gateway address (default: the config's)",
    )
    parser.add_argument(
        "--api-key",
        default=default(None),
        metavar="KEY",
        help=f"API key (default: ${API_KEY_ENV}, else the config's admin key); other users "
        "may see a command line: prefer the variable",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print one JSON object"
    )
    parser.add_argument(
        "--timeout-s",
        type=_seconds,
        default=default(timeout_s_default),
        metavar="S",
        help=f"give up waiting for an answer after this long (default {timeout_s_default:g})",
    )


def _parser() -> argparse.ArgumentParser:
    # The global flags are accepted before the command and after it (`clearctl status --json`):
    # the command's copies default to SUPPRESS so they override the top level's only when given.
    top = argparse.ArgumentParser(
        prog="clearctl",
        description="Control a running Clearline exchange (the risk desk's tool).",
        epilog="Exit status: 0 done, 1 rejected or refused, 2 usage or no config, "
        "3 gateway unreachable or unavailable, 4 key not accepted or role not allowed.",
    )
    late = argparse.ArgumentParser(add_help=False)
    _add_global_flags(top, defaults=True)
    _add_global_flags(late, defaults=False)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, under: Any = commands) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = under.add_parser(
            name, help=help, description=help, parents=[late]
        )
        return parser

    instrument_help = "instrument symbol, e.g. BTC-USDT"
    add("status", "engine status: journal, snapshot, orders, accounts, instruments")
    book_parser = add("book", "the L2 book of an instrument, bids and asks side by side")
    book_parser.add_argument("instrument", help=instrument_help)
    book_parser.add_argument(
        "--depth",
        type=_number_type(1, 1_000, "depth"),
        default=book_depth_default,
        help=f"levels per side (default {book_depth_default})",
    )
    halt_parser = add("halt", "halt trading in an instrument: new orders are rejected")
    halt_parser.add_argument("instrument", help=instrument_help)
    halt_parser.add_argument(
        "--cancel-resting", action="store_true", help="also cancel its resting orders"
    )
    add("resume", "resume trading in a halted instrument").add_argument(
        "instrument", help=instrument_help
    )
    kill = add(
        "kill-switch",
        "on: cancel every open order of the account and reject its new orders; off: allow again",
    )
    kill.add_argument("account", type=_number_type(1, account_id_max, "ACCOUNT"))
    kill.add_argument("state", choices=("on", "off"))
    add(
        "customer",
        "an account's compliance state as the gateway's pre-trade checks see it, and why its "
        "orders are refused",
    ).add_argument("account", type=_number_type(1, account_id_max, "ACCOUNT"))
    cancel = add("cancel-all", "cancel open orders: of every account and instrument unless named")
    cancel.add_argument("--account", type=_number_type(1, account_id_max, "--account"), default=0)
    cancel.add_argument("--instrument", default="", metavar="SYM")
    limits = add("limits", "read or change an account's risk limits (account 0: the defaults)")
    limits_commands = limits.add_subparsers(dest="limits_command", required=True, metavar="ACTION")
    account_type = _number_type(0, account_id_max, "ACCOUNT")
    get = add("get", "show the limits that apply to an account", limits_commands)
    get.add_argument(
        "account", type=account_type, nargs="?", default=0, help="default 0: the defaults"
    )
    set_parser = add(
        "set",
        "change an account's limits; those not named keep their current values (an account "
        "without limits of its own starts from the defaults); 0 removes a limit",
        limits_commands,
    )
    set_parser.add_argument("account", type=account_type, help="0: the defaults")
    set_parser.add_argument(
        "--open-orders-max",
        type=_number_type(0, (1 << 32) - 1, "--open-orders-max"),
        metavar="N",
        help="open orders of the account at most (0: no limit)",
    )
    for flag, what in (
        ("--order-notional-max", "one order's notional"),
        ("--open-notional-max", "the notional of all open orders"),
    ):
        set_parser.add_argument(
            flag,
            type=_asset_amount,
            nargs="+",
            action="extend",
            default=[],
            metavar="ASSET=DEC",
            help=f"{what} at most, per quote asset (ASSET=0: no limit)",
        )
    set_parser.add_argument(
        "--replace",
        action="store_true",
        help="start from no limits instead of the current ones: what is not named is removed",
    )
    add("snapshot", "have the engine write a snapshot now")
    add(
        "reconcile",
        "compare the engine's balances with the ledger's; differences go to the exception queue",
    )
    exceptions = add("exceptions", "the reconciliation exception queue")
    exceptions_commands = exceptions.add_subparsers(
        dest="exceptions_command", required=True, metavar="ACTION"
    )
    listing = add("list", "open exceptions, newest first", exceptions_commands)
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.add_argument("--limit", type=_number_type(1, 1_000, "--limit"), default=100)
    resolve = add("resolve", "close an exception, saying what was done", exceptions_commands)
    resolve.add_argument("id", type=_number_type(1, account_id_max, "ID"))
    resolve.add_argument("--resolution", required=True, metavar="TEXT")
    return top


def _print(text: str, api_key: str, stream: Any) -> None:
    # The key must never reach a terminal or a log, whatever a message happens to quote.
    if api_key:
        text = text.replace(api_key, f"<key {key_id(api_key)}>")
    print(text, file=stream, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run clearctl; returns the exit status (see the module docstring)."""
    args = _parser().parse_args(argv)
    action = {"limits": "limits_command", "exceptions": "exceptions_command"}.get(args.command)
    command = args.command + (f" {getattr(args, action)}" if action else "")
    api_key = args.api_key or os.environ.get(API_KEY_ENV, "")
    try:
        target = resolve_target(args.config, args.gateway, args.api_key)
        api_key = target.api_key
        gateway = Gateway(target, args.timeout_s)
        try:
            outcome = COMMANDS[command](gateway, args)
        finally:
            gateway.close()
        if args.json:
            _print(json.dumps(outcome.data, indent=2), api_key, sys.stdout)
        elif outcome.text:
            _print(outcome.text, api_key, sys.stdout)
        if outcome.rejected:
            _print(f"clearctl: {outcome.rejected}", api_key, sys.stderr)
            return EXIT_REJECTED
        return EXIT_OK
    except Failure as failure:
        _print(f"clearctl: {failure.message}", api_key, sys.stderr)
        return failure.exit_status
    except BrokenPipeError:  # `clearctl status | head`: the reader left, the outcome stands
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the exit flush quiet
        return EXIT_OK


__all__ = [
    "COMMANDS",
    "EXIT_DENIED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Failure",
    "Gateway",
    "Outcome",
    "Target",
    "key_id",
    "main",
    "message_json",
    "resolve_target",
]


if __name__ == "__main__":
    sys.exit(main())
