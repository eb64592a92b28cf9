"""clearctl against a running exchange, as the risk desk uses it.

Goal: show that each clearctl command does what the desk expects to a real engine (status,
book, halt and resume, kill switch, cancel-all, risk limits, snapshot), that its exit status
tells a script what happened (0 done, 1 rejected, 2 usage or no config, 3 unreachable, 4 key
refused), that --json gives one parseable object, and that no output ever shows an API key.

Method: one exchange for the module (`gateway.exchange.exchange_running`, as `make run` starts
it) on the session's NATS and a PostgreSQL database of the module's own, served by an event loop
in a background thread so the tests are plain synchronous code. clearctl runs as a subprocess,
exactly as an operator runs it, finding its config through $CLEARLINE_CONFIG; every run is
checked for leaked keys. Orders are placed with a synchronous OrderEntry stub and the demo
traders' keys, and their outcomes read from the execution reports. Each test keeps to its own
accounts and instrument, or restores what it changed, so the tests hold in any order and split
across xdist workers (each worker then starts an exchange of its own).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import msgspec
import nats
import psycopg
import pytest
import uvloop
from psycopg import sql

from compliance.customer_state import CustomerState, publish_customer_state
from compliance.customers import CustomerStore, NatsStatePublisher
from engine._codes import EventKind, OrderType, Reason, Side
from engine.journal import EngineClient, new_origin
from engine.markets import USDT as USDT_ASSET_ID
from engine.messages import Deposit, HoldWithdrawal
from gateway._proto.clearline.v1 import order_entry_pb2, order_entry_pb2_grpc
from gateway.auth import AuditLog
from gateway.clearctl import key_id
from gateway.exchange import RunningExchange, RunOptions, exchange_running
from ledger.model import Purpose, account_id_for

# Generous: a subprocess's Python start plus one call; a hang fails the test instead of CI.
clearctl_timeout_s = 60.0
# Starting or stopping the exchange: the engine process, the bootstrap, the gateway.
exchange_timeout_s = 120.0
# The gateway's compliance cache fills just after start; until then orders get 2001/2002.
compliance_sync_s = 10.0

_client_order_ids = itertools.count(1)


@pytest.fixture(scope="module")
def exchange(
    nats_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningExchange]:
    """One running exchange for the module, on a fresh database and NATS prefix.

    Module scope cannot use the function-scoped ``pg_database`` and ``nats_prefix``, so this
    makes its own of both the same way.
    """
    token = "t" + uuid.uuid4().hex[:10]
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(token)))
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="exchange-loop", daemon=True)
    thread.start()

    def on_loop(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(exchange_timeout_s)

    options = RunOptions(
        tmp_path_factory.mktemp("clearctl"), listen="127.0.0.1:0", metrics_port=0, prefix=token
    )
    running = exchange_running(
        options, nats_url, urlsplit(database_url)._replace(path=f"/{token}").geturl()
    )
    try:
        yield on_loop(running.__aenter__())
        on_loop(running.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(exchange_timeout_s)
        loop.close()
        with psycopg.connect(database_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(token)))


def run_clearctl(
    *argv: str, env: dict[str, str], cwd: Path, secrets: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """clearctl as a subprocess; fails the test if any of ``secrets`` shows in its output."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway.clearctl", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=clearctl_timeout_s,
    )
    for secret in secrets:
        assert secret not in result.stdout + result.stderr, "clearctl printed an API key"
    return result


def bare_env(home: Path) -> dict[str, str]:
    """The environment without clearline's variables and with an empty home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARLINE_")}
    env["HOME"] = str(home)
    return env


def clearctl(
    exchange: RunningExchange, *argv: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """clearctl on the module's exchange; ``key`` (a demo key name) in $CLEARLINE_API_KEY."""
    env = bare_env(exchange.config_path.parent)
    env["CLEARLINE_CONFIG"] = str(exchange.config_path)
    if key is not None:
        env["CLEARLINE_API_KEY"] = exchange.config.keys[key]
    secrets = tuple(k.split("_", 2)[2] for k in exchange.config.keys.values())
    return run_clearctl(*argv, env=env, cwd=exchange.config_path.parent, secrets=secrets)


def ok_json(exchange: RunningExchange, *argv: str) -> Any:
    result = clearctl(exchange, "--json", *argv)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def place(
    exchange: RunningExchange,
    who: str,
    side: Side,
    price: str,
    quantity: str,
    instrument: str = "BTC-USDT",
) -> list[tuple[int, int]]:
    """Place a limit order as demo key ``who``; its reports as (kind, reason)."""
    request = order_entry_pb2.PlaceOrderRequest(
        instrument=instrument,
        side=side,  # type: ignore[arg-type]
        order_type=OrderType.LIMIT,  # type: ignore[arg-type]
        price=price,
        quantity=quantity,
        client_order_id=next(_client_order_ids),
    )
    metadata = (("authorization", "Bearer " + exchange.config.keys[who]),)
    unsynced = {Reason.customer_state_must_be_known, Reason.customer_state_must_be_fresh}
    deadline = time.monotonic() + compliance_sync_s
    with grpc.insecure_channel(exchange.address) as channel:
        stub = order_entry_pb2_grpc.OrderEntryStub(channel)
        while True:
            batch = stub.PlaceOrder(request, metadata=metadata, timeout=10)
            reports = [(report.kind, report.reason) for report in batch.reports]
            if reports[0][1] not in unsynced or time.monotonic() > deadline:
                return reports
            time.sleep(0.05)


ACCEPTED = [(EventKind.ACCEPTED, 0)]


def rejected(reason: Reason) -> list[tuple[int, int]]:
    return [(EventKind.REJECTED, reason)]


def instrument_status(exchange: RunningExchange, symbol: str) -> str:
    status = ok_json(exchange, "status")
    [state] = [s for s in status["instruments"] if s["symbol"] == symbol]
    return str(state["status"])


# -- reading --


def test_status_shows_the_engine_and_its_instruments(exchange: RunningExchange) -> None:
    table = clearctl(exchange, "status")
    assert table.returncode == 0, table.stderr
    for label in ("shard", "journal", "snapshot", "resting orders", "kill-switched", "uptime"):
        assert label in table.stdout
    header = next(line for line in table.stdout.splitlines() if line.startswith("instrument"))
    assert " ".join(header.split()) == "instrument status best bid best ask orders book seq"
    assert any(line.split()[:2] == ["ETH-USDT", "OPEN"] for line in table.stdout.splitlines())

    # the global flags go before the command or after it
    before = json.loads(clearctl(exchange, "--json", "status").stdout)
    after = json.loads(clearctl(exchange, "status", "--json").stdout)
    assert before.keys() == after.keys()
    assert after["shard"] == "0"
    assert isinstance(after["journal_seq_applied"], int) and after["journal_seq_applied"] > 0
    assert after["journal_seq_last"] >= after["journal_seq_applied"]
    assert {s["symbol"] for s in after["instruments"]} == {"BTC-USDT", "ETH-USDT"}
    assert after["state_hash"]


def test_book_shows_both_sides_and_cancel_all_empties_it(exchange: RunningExchange) -> None:
    for side, price, quantity in (
        (Side.BUY, "2000", "1"),
        (Side.BUY, "2000.00", "1"),
        (Side.BUY, "1999.5", "0.5"),
        (Side.SELL, "2001", "0.25"),
    ):
        assert place(exchange, "maker-1", side, price, quantity, "ETH-USDT") == ACCEPTED

    table = clearctl(exchange, "book", "ETH-USDT")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["ETH-USDT", "OPEN"]
    header = lines.index(next(line for line in lines if "quantity" in line))
    assert lines[header].split() == ["orders", "quantity", "bid", "|", "ask", "quantity", "orders"]
    assert lines[header + 1].split() == ["2", "2", "2000", "|", "2001", "0.25", "1"]
    assert lines[header + 2].split() == ["1", "0.5", "1999.5", "|"]

    book = ok_json(exchange, "book", "ETH-USDT", "--depth", "1")
    assert book["bids"] == [{"price": "2000", "quantity": "2", "order_count": 2}]
    assert book["asks"] == [{"price": "2001", "quantity": "0.25", "order_count": 1}]
    assert book["status"] == "OPEN" and book["sequence"] > 0

    cancelled = clearctl(exchange, "cancel-all", "--account", "1001", "--instrument", "ETH-USDT")
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith("4 orders cancelled of account 1001 in ETH-USDT (journal")
    assert "the book is empty" in clearctl(exchange, "book", "ETH-USDT").stdout

    unknown = clearctl(exchange, "book", "NOPE-USDT")
    assert unknown.returncode == 1
    assert "rejected: instrument_must_be_known (1001)" in unknown.stderr


# -- acting --


def test_halt_rejects_new_orders_until_resume(exchange: RunningExchange) -> None:
    assert place(exchange, "maker-2", Side.SELL, "40000", "0.1") == ACCEPTED

    halted = clearctl(exchange, "halt", "BTC-USDT", "--cancel-resting")
    assert halted.returncode == 0, halted.stderr
    assert halted.stdout.startswith("halted BTC-USDT, 1 order cancelled (journal seq ")
    assert instrument_status(exchange, "BTC-USDT") == "HALTED"
    assert place(exchange, "taker-1", Side.BUY, "30000", "0.1") == rejected(
        Reason.instrument_must_be_open
    )

    resumed = clearctl(exchange, "resume", "BTC-USDT")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed BTC-USDT (journal seq ")
    assert instrument_status(exchange, "BTC-USDT") == "OPEN"
    assert place(exchange, "taker-1", Side.BUY, "30000", "0.1") == ACCEPTED
    assert ok_json(exchange, "cancel-all", "--account", "2001")["orders_cancelled"] == 1

    unknown = clearctl(exchange, "halt", "NOPE-USDT")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == "clearctl: rejected: instrument_must_be_known (1001)\n"
    reply = json.loads(clearctl(exchange, "--json", "halt", "NOPE-USDT").stdout)
    assert (reply["reason"], reply["reason_name"]) == (1001, "instrument_must_be_known")


def test_kill_switch_cancels_and_blocks_an_account_until_off(exchange: RunningExchange) -> None:
    assert place(exchange, "taker-2", Side.BUY, "30000", "0.1") == ACCEPTED

    on = clearctl(exchange, "kill-switch", "2002", "on")
    assert on.returncode == 0, on.stderr
    assert on.stdout.startswith("kill switch on for account 2002, 1 order cancelled (journal seq")
    assert 2002 in ok_json(exchange, "status")["kill_switched_accounts"]
    assert ok_json(exchange, "limits", "get", "2002")["kill_switch"] is True
    assert place(exchange, "taker-2", Side.BUY, "30000", "0.1") == rejected(
        Reason.account_must_not_be_kill_switched
    )

    off = clearctl(exchange, "kill-switch", "2002", "off")
    assert off.returncode == 0, off.stderr
    assert 2002 not in ok_json(exchange, "status")["kill_switched_accounts"]
    assert place(exchange, "taker-2", Side.BUY, "30000", "0.1") == ACCEPTED
    assert ok_json(exchange, "cancel-all", "--account", "2002")["orders_cancelled"] == 1

    usage = clearctl(exchange, "kill-switch", "0", "on")
    assert usage.returncode == 2 and "ACCOUNT must be from 1" in usage.stderr


def publish_state(exchange: RunningExchange, state: CustomerState) -> None:
    async def put() -> None:
        nc = await nats.connect(exchange.nats_url)
        try:
            await publish_customer_state(nc.jetstream(), exchange.topology, state)
        finally:
            await nc.close()

    asyncio.run(put())


def test_customer_shows_why_compliance_blocks_an_account(exchange: RunningExchange) -> None:
    """Compliance freezes a customer: the next order is refused, and the desk sees why."""
    assert place(exchange, "taker-4", Side.BUY, "30000", "0.1") == ACCEPTED
    clean = ok_json(exchange, "customer", "2004")
    assert (clean["known"], clean["frozen"], clean.get("blocked_by", 0)) == (True, False, 0)

    frozen = CustomerState(
        account_id=2004,
        kyc_verified=True,
        frozen=True,
        sanctioned=False,
        jurisdiction="DE",
        risk_level="high",
        as_of_ns=time.time_ns(),
        reason="VASP-002 rapid succession: 6 transfers, 7,200 USD in 1 h (alert 17)",
        changed_by="compliance.monitoring",
    )
    publish_state(exchange, frozen)
    deadline = time.monotonic() + compliance_sync_s
    while ok_json(exchange, "customer", "2004").get("blocked_by", 0) == 0:
        assert time.monotonic() < deadline, "the gateway never saw the frozen state"
        time.sleep(0.05)
    assert place(exchange, "taker-4", Side.BUY, "30000", "0.1") == rejected(
        Reason.customer_must_not_be_frozen
    )
    shown = clearctl(exchange, "customer", "2004")
    assert shown.returncode == 0, shown.stderr
    assert "frozen          yes" in shown.stdout
    assert "VASP-002 rapid succession" in shown.stdout
    assert "customer_must_not_be_frozen (2004)" in shown.stdout
    assert "compliance.monitoring" in shown.stdout

    publish_state(exchange, msgspec.structs.replace(frozen, frozen=False, as_of_ns=time.time_ns()))
    while ok_json(exchange, "customer", "2004").get("blocked_by", 0):
        assert time.monotonic() < deadline + compliance_sync_s
        time.sleep(0.05)
    assert place(exchange, "taker-4", Side.BUY, "30000", "0.1") == ACCEPTED
    assert ok_json(exchange, "cancel-all", "--account", "2004")["orders_cancelled"] == 2
    unknown = ok_json(exchange, "customer", "999999")
    assert unknown["known"] is False
    assert unknown["blocked_by_name"] == "customer_state_must_be_known"


def test_risk_limits_round_trip_and_bind_orders(exchange: RunningExchange) -> None:
    account = "2003"
    set_ = clearctl(
        exchange, "limits", "set", account, "--open-orders-max", "1",
        "--order-notional-max", "USDT=1000",
    )  # fmt: skip
    assert set_.returncode == 0, set_.stderr
    assert set_.stdout.startswith(f"set the risk limits of account {account} (journal seq ")
    table = clearctl(exchange, "limits", "get", account)
    assert table.returncode == 0, table.stderr
    assert "open_orders_max  1" in table.stdout
    assert any(
        line.split() == ["order_notional_max", "USDT", "1000"] for line in table.stdout.splitlines()
    )
    assert ok_json(exchange, "limits", "get", account) == {
        "account": 2003,
        "open_orders_max": 1,
        "order_notional_max": {"USDT": "1000"},
        "open_notional_max": {},
        "kill_switch": False,
    }

    # 0.1 BTC at 30,000 is 3,000 USDT; 0.01 is 300
    assert place(exchange, "taker-3", Side.BUY, "30000", "0.1") == rejected(
        Reason.order_notional_must_not_exceed_limit
    )
    assert place(exchange, "taker-3", Side.BUY, "30000", "0.01") == ACCEPTED
    assert place(exchange, "taker-3", Side.BUY, "30000", "0.01") == rejected(
        Reason.open_orders_must_not_exceed_limit
    )
    assert ok_json(exchange, "cancel-all", "--account", account)["orders_cancelled"] == 1

    # a set changes what it names and keeps the rest; ASSET=0 removes; --replace starts empty
    clearctl(exchange, "limits", "set", account, "--open-notional-max", "USDT=5000.5")
    merged = ok_json(exchange, "limits", "get", account)
    assert (merged["open_orders_max"], merged["order_notional_max"]) == (1, {"USDT": "1000"})
    assert merged["open_notional_max"] == {"USDT": "5000.5"}
    clearctl(exchange, "limits", "set", account, "--order-notional-max", "USDT=0")
    assert ok_json(exchange, "limits", "get", account)["order_notional_max"] == {}
    replaced = ok_json(exchange, "limits", "set", account, "--replace")
    assert replaced["reason"] == 0 and replaced["limits"]["open_notional_max"] == {}
    assert ok_json(exchange, "limits", "get", account)["open_orders_max"] == 0

    defaults = clearctl(exchange, "limits", "get")
    assert defaults.returncode == 0 and "0 (the defaults)" in defaults.stdout

    unknown_asset = clearctl(exchange, "limits", "set", account, "--order-notional-max", "XYZ=1")
    assert unknown_asset.returncode == 2 and "asset 'XYZ' is not known" in unknown_asset.stderr
    nothing = clearctl(exchange, "limits", "set", account)
    assert nothing.returncode == 2 and "name a limit" in nothing.stderr


def test_snapshot_reports_the_journal_seq_it_covers(exchange: RunningExchange) -> None:
    reply = ok_json(exchange, "snapshot")
    assert reply["reason"] == 0 and reply["journal_seq"] > 0 and reply["detail"]
    assert ok_json(exchange, "status")["snapshot_journal_seq"] >= reply["journal_seq"]
    table = clearctl(exchange, "snapshot")
    assert table.returncode == 0 and table.stdout.startswith("took a snapshot ")


# -- refusals --


def test_reconcile_is_clean_then_queues_a_tampered_balance_until_resolved(
    exchange: RunningExchange,
) -> None:
    """The ledger service books the engine's events; reconcile finds the books equal. A balance
    changed behind the ledger's back (as fraud or a bad migration would) is found, queued once
    with its evidence however often it is seen, and stays queued until a person resolves it."""
    assert place(exchange, "maker-2", Side.SELL, "30000", "0.01") == ACCEPTED
    assert place(exchange, "taker-3", Side.BUY, "30000", "0.01")[0] == (EventKind.ACCEPTED, 0)

    clean = clearctl(exchange, "reconcile")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip().endswith(": clean")
    assert "compared" in clean.stdout

    usdt_available = account_id_for(2003, USDT_ASSET_ID, Purpose.AVAILABLE)
    tamper = "UPDATE ledger.accounts SET credits_posted = credits_posted + %s WHERE id = %s"
    with psycopg.connect(exchange.database_url, autocommit=True) as conn:
        assert conn.execute(tamper, (7, usdt_available)).rowcount == 1
    try:
        for _ in range(2):  # seen twice, queued once
            breaks = clearctl(exchange, "--json", "reconcile")
            assert breaks.returncode == 1
            assert "difference(s)" in breaks.stderr
        found = json.loads(breaks.stdout)["differences"]
        by_kind = {d["kind"]: d for d in found}
        assert set(by_kind) == {"balance_must_match_engine", "asset_must_sum_to_zero"}
        moved = by_kind["balance_must_match_engine"]
        assert (moved["owner_id"], moved["bucket"], moved["asset"]) == (2003, "available", "USDT")
        assert moved["ledger_minor"] - moved["engine_minor"] == 7
        summed = by_kind["asset_must_sum_to_zero"]
        assert (summed["ledger_minor"], summed["engine_minor"]) == (7, None)

        queued = ok_json(exchange, "exceptions", "list")["exceptions"]
        assert sorted(e["kind"] for e in queued) == sorted(by_kind)
        assert {e["seen_count"] for e in queued} == {2}
        for exception in queued:
            resolved = clearctl(
                exchange, "exceptions", "resolve", str(exception["id"]), "--resolution",
                "test: tampered on purpose, restored",
            )  # fmt: skip
            assert resolved.returncode == 0, resolved.stderr
        assert "no open exceptions" in clearctl(exchange, "exceptions", "list").stdout
        history = ok_json(exchange, "exceptions", "list", "--all")["exceptions"]
        assert {e["status"] for e in history} == {"resolved"}
        assert {e["resolved_by"] for e in history} == {key_id(exchange.config.api_key)}
        again = clearctl(
            exchange, "exceptions", "resolve", str(queued[0]["id"]), "--resolution", "x"
        )
        assert again.returncode == 1 and "not open" in again.stderr
    finally:
        with psycopg.connect(exchange.database_url, autocommit=True) as conn:
            conn.execute(tamper, (-7, usdt_available))
    assert clearctl(exchange, "reconcile").returncode == 0


def test_monitoring_freezes_a_customer_and_the_next_order_and_withdrawal_are_refused(
    exchange: RunningExchange,
) -> None:
    """The whole loop on the running exchange: deposits in rapid succession reach transaction
    monitoring through the events stream; VASP-002 freezes the customer in the customer
    records and sets the engine's kill switch; the gateway refuses the next order, the engine
    the next withdrawal, the risk desk sees why, and the alert waits in the case queue."""
    account = 2004
    topology = exchange.topology

    async def deposit_five() -> None:
        client = await EngineClient.connect(exchange.nats_url, topology, new_origin("test"))
        try:
            for n in range(5):
                await client.submit(
                    [Deposit(account_id=account, asset_id=USDT_ASSET_ID,
                             amount_minor=1_100 * 10**6, deposit_id=f"e2e:{uuid.uuid4()}:{n}")]
                )  # fmt: skip
        finally:
            await client.close()

    asyncio.run(deposit_five())
    deadline = time.monotonic() + exchange_timeout_s
    while (state := ok_json(exchange, "customer", str(account))).get("blocked_by", 0) == 0:
        assert time.monotonic() < deadline, "monitoring never froze the customer"
        time.sleep(0.2)
    assert state["blocked_by_name"] == "customer_must_not_be_frozen"
    assert "VASP-002" in state["reason"]
    assert place(exchange, "taker-4", Side.BUY, "30000", "0.1") == rejected(
        Reason.customer_must_not_be_frozen
    )
    while account not in ok_json(exchange, "status")["kill_switched_accounts"]:
        assert time.monotonic() < deadline, "the kill switch never came"
        time.sleep(0.2)

    async def withdraw_and_restore() -> tuple[list[int], list[str]]:
        client = await EngineClient.connect(exchange.nats_url, topology, new_origin("test"))
        audit = await AuditLog.open(exchange.database_url)
        store = await CustomerStore.open(
            exchange.database_url, audit, NatsStatePublisher(client.js, topology)
        )
        try:
            held = await client.submit(
                [HoldWithdrawal(account_id=account, asset_id=USDT_ASSET_ID, amount_minor=1,
                                withdrawal_id=f"e2e:{uuid.uuid4()}")]
            )  # fmt: skip
            reasons = held.event_rows()["reason"].tolist()
            async with await psycopg.AsyncConnection.connect(exchange.database_url) as conn:
                cursor = await conn.execute(
                    "SELECT rule_id FROM cases.alerts WHERE account_id = %s", (account,)
                )
                queued = [row[0] for row in await cursor.fetchall()]
            customer = await store.by_account(account)
            assert customer is not None
            await store.unfreeze(customer.customer_id, "test", "end of the scenario")
            return reasons, queued
        finally:
            await store.close()
            await audit.close()
            await client.close()

    reasons, queued = asyncio.run(withdraw_and_restore())
    assert reasons == [Reason.account_must_not_be_kill_switched]
    assert "VASP-002" in queued
    assert clearctl(exchange, "kill-switch", str(account), "off").returncode == 0
    while ok_json(exchange, "customer", str(account)).get("blocked_by", 0):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert place(exchange, "taker-4", Side.BUY, "30000", "0.1") == ACCEPTED
    assert ok_json(exchange, "cancel-all", "--account", str(account))["orders_cancelled"] == 1


def test_the_compliance_dashboard_runs_beside_the_exchange(exchange: RunningExchange) -> None:
    """`make run` starts the dashboard too: it answers, and sends a stranger to sign in."""
    assert exchange.dashboard_url.startswith("http://127.0.0.1:")
    deadline = time.monotonic() + exchange_timeout_s
    while True:
        try:
            with urllib.request.urlopen(exchange.dashboard_url + "healthz", timeout=5) as reply:
                assert reply.read() == b"ok"
                break
        except OSError:
            assert time.monotonic() < deadline, "the dashboard never answered"
            time.sleep(0.2)
    with urllib.request.urlopen(exchange.dashboard_url, timeout=5) as home:
        assert home.url.endswith("/login") and b"Sign in" in home.read()


def test_keys_without_the_role_or_not_known_exit_4(exchange: RunningExchange) -> None:
    trader = clearctl(exchange, "halt", "BTC-USDT", key="taker-1")
    trader_id = exchange.config.keys["taker-1"].split("_")[1]
    assert (trader.returncode, trader.stdout) == (4, "")
    message = trader.stderr
    assert f"key {trader_id} from $CLEARLINE_API_KEY lacks the role for halt" in message
    assert "role TRADER" in message and "RISK_OFFICER" in message and "ADMIN" in message
    assert instrument_status(exchange, "BTC-USDT") == "OPEN"

    assert clearctl(exchange, "status", key="compliance-officer").returncode == 4
    assert clearctl(exchange, "status", key="risk-officer").returncode == 0

    secret = "s" * 43
    bogus = clearctl(exchange, "--api-key", f"clk_0123456789ab_{secret}", "status")
    assert bogus.returncode == 4 and secret not in bogus.stderr + bogus.stdout
    assert "does not accept the key 0123456789ab from --api-key" in bogus.stderr


def test_an_unreachable_gateway_exits_3_quickly(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    env = dict(bare_env(tmp_path), CLEARLINE_API_KEY="clk_0123456789ab_not-a-real-secret")
    result = run_clearctl(
        "--gateway", address, "status", env=env, cwd=tmp_path, secrets=("not-a-real-secret",)
    )
    elapsed_s = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert f"cannot reach the gateway at {address}: is `make run` running?" in result.stderr
    assert elapsed_s < 10  # no retrying until the deadline: connection refused is final


def test_without_a_config_exit_2_and_say_where_it_looked(tmp_path: Path) -> None:
    result = run_clearctl("status", env=bare_env(tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert str(tmp_path / ".clearline" / "client.json") in result.stderr
    assert "make run" in result.stderr

    missing = tmp_path / "elsewhere.json"
    named = run_clearctl("--config", str(missing), "status", env=bare_env(tmp_path), cwd=tmp_path)
    assert named.returncode == 2 and str(missing) in named.stderr

    broken = tmp_path / "tls.json"
    broken.write_text(
        json.dumps(
            {"gateway": "127.0.0.1:1", "api_key": "clk_0123456789ab_x", "tls_ca": "/no/ca.pem"}
        )
    )
    tls = run_clearctl("--config", str(broken), "status", env=bare_env(tmp_path), cwd=tmp_path)
    assert tls.returncode == 2 and "cannot read the TLS CA bundle" in tls.stderr

    usage = run_clearctl("frobnicate", env=bare_env(tmp_path), cwd=tmp_path)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
