"""The gateway benchmark runs end to end, keeps its report shape, and fails loudly on lost acks.

Goal: ``python -m benchmarks.bench_gateway`` stays runnable against a service it starts
itself; its JSON keeps the fields readers rely on, with sane values; every order it sent came
back with its ACCEPTED or REJECTED report; and a reply that lacks one is counted, not missed.
Method: the benchmark's command line in a tiny mode (``--duration-s 1 --batch-size 10``) with
NATS_URL and DATABASE_URL pointing at the session's servers (a fresh database), so the service
it starts in its own process uses them; then the JSON it printed is read back. Nothing here
asserts a timing: speed is reported by the benchmark, never tested.

(No ``__init__.py`` here on purpose: it would make this folder a package named ``benchmarks``
under pytest's default import mode and shadow the real one.)
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from benchmarks import bench_gateway
from gateway._proto.clearline.v1 import order_entry_pb2, types_pb2

BATCH_SIZE = 10
ORDER_MODES = ("single_order", "batched", "paced", "paced_stream")
REQUIRED = {
    "echo_ceiling_per_s",
    "single_order_per_s",
    "batched_orders_per_s",
    "batch_size",
    "p99_ack_ms_at_5k_per_s",
    "share_of_echo_ceiling",
    "all_orders_acknowledged",
    "paced_achieved_per_s",
    "modes",
    "settings",
    "machine",
    "targets",
    "targets_met",
}


@pytest.fixture(scope="module")
def report(
    nats_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One tiny run of the command line; its JSON. Module scope: the run takes ~20 s.

    Module scope cannot use the function-scoped ``pg_database``, so this makes its own fresh
    database the same way; the benchmark picks a fresh NATS prefix itself.
    """
    token = "t" + uuid.uuid4().hex[:10]
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(token)))
    patch = pytest.MonkeyPatch()
    patch.setenv("NATS_URL", nats_url)
    patch.setenv("DATABASE_URL", urlsplit(database_url)._replace(path=f"/{token}").geturl())
    capture = tmp_path_factory.mktemp("bench_gateway") / "out.json"
    try:
        with open(capture, "w") as out, contextlib.redirect_stdout(out):
            status = bench_gateway.main(
                ["--json", "--duration-s", "1", "--batch-size", str(BATCH_SIZE)]
            )
        assert status == 0, "the benchmark failed (lost acks or failed calls): see its stderr"
        yield json.loads(capture.read_text())
    finally:
        patch.undo()
        with psycopg.connect(database_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(token)))


def test_the_report_has_every_required_figure(report: dict[str, Any]) -> None:
    assert set(report) >= REQUIRED
    assert report["batch_size"] == BATCH_SIZE
    for key in ("echo_ceiling_per_s", "single_order_per_s", "batched_orders_per_s"):
        assert isinstance(report[key], int) and report[key] > 0, key
    assert report["share_of_echo_ceiling"] > 0
    assert report["p99_ack_ms_at_5k_per_s"] > 0
    assert report["paced_achieved_per_s"] > 0
    assert set(report["targets_met"]) == set(bench_gateway.TARGETS)


def test_every_order_got_its_report(report: dict[str, Any]) -> None:
    assert report["all_orders_acknowledged"] is True
    for name in ORDER_MODES:
        mode = report["modes"][name]
        assert mode["orders_sent"] > 0, name
        assert mode["orders_acknowledged"] == mode["orders_sent"], name
        assert mode["missing_acks"] == 0 and mode["grpc_errors"] == {}, name
        # The workload is one price, sides alternating: orders rest and trade.
        assert mode["accepted"] > 0 and mode["fills"] > 0, name
        assert mode["rejected_by_reason"] == {}, name
    echo = report["modes"]["echo"]
    assert echo["orders_acknowledged"] == echo["orders_sent"] > 0


def test_latencies_and_settings_are_reported(report: dict[str, Any]) -> None:
    for name, mode in report["modes"].items():
        latency = mode["latency_ms"]
        assert latency["samples"] > 0, name
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p999"], name
        assert latency["p999"] <= latency["max"], name
    assert report["modes"]["batched"]["batch_size"] == BATCH_SIZE
    for name in ("paced", "paced_stream"):
        paced = report["modes"][name]
        assert paced["target_per_s"] == bench_gateway.paced_rate_per_s_default
        assert paced["latency_from_send_ms"]["samples"] == paced["orders_acknowledged"]
    assert report["p99_ack_ms_at_5k_per_s"] == report["modes"]["paced_stream"]["latency_ms"]["p99"]
    assert report["p99_ack_ms_at_5k_per_s_unary"] == report["modes"]["paced"]["latency_ms"]["p99"]
    settings = report["settings"]
    limits = bench_gateway.RATE_LIMITS
    assert settings["rate_limits"]["orders_per_s_max"] == limits.orders_per_s_max
    assert settings["rate_limits"]["orders_burst_max"] == limits.orders_burst_max
    assert settings["concurrency"] == bench_gateway.concurrency_default
    # The books are left as found: everything the benchmark left resting was mass-cancelled.
    assert report["orders_resting_after"] == 0


def test_cpu_of_each_process_and_the_machine_are_reported(report: dict[str, Any]) -> None:
    cpu = report["modes"]["single_order"]["cpu_cores_busy"]
    assert {"client", "gateway", "engine"} <= set(cpu)
    assert all(value is None or value >= 0 for value in cpu.values())
    echo_cpu = report["modes"]["echo"]["cpu_cores_busy"]
    assert {"client", "echo_server", "machine", "others"} <= set(echo_cpu)
    machine = report["machine"]
    assert machine["logical_cpus"] == os.cpu_count()
    assert machine["python"] == platform.python_version()


def test_a_reply_without_an_ack_is_counted_as_missing() -> None:
    tally = bench_gateway.Tally()
    tally.sending(3)
    accepted = order_entry_pb2.ExecutionReport(kind=types_pb2.EVENT_KIND_ACCEPTED)
    rejected = order_entry_pb2.ExecutionReport(
        kind=types_pb2.EVENT_KIND_REJECTED, command_index=2, reason_name="funds_must_be_available"
    )
    filled = order_entry_pb2.ExecutionReport(kind=types_pb2.EVENT_KIND_FILLED, command_index=1)

    tally.answered([accepted, filled, rejected], 3)  # index 1 filled, never acknowledged

    assert (tally.acked, tally.missing_acks, tally.fills) == (2, 1, 1)
    assert tally.rejected == {"funds_must_be_available": 1}
    assert not tally.complete()
