"""The book benchmark runs end to end, keeps its report shape, and compares like with like.

Goal: ``python -m benchmarks.bench_book`` stays runnable; its JSON keeps the fields readers rely
on; every contender replays the same commands; and the stream is one on which the core and the
reference emit identical events and liquibook makes identical trades, so the figures compare
books doing the same work. Method: a 5,000-command stream from a fixed seed, run through the
benchmark with every contender on the whole stream and one throughput pass. Nothing here
asserts a timing: speed is reported by the benchmark, never tested.

(No ``__init__.py`` here on purpose: it would make this folder a package named ``benchmarks``
under pytest's default import mode and shadow the real one.)
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest

from benchmarks import bench_book
from benchmarks._chart import render_svg
from benchmarks._workload import (
    AMEND,
    CANCEL,
    INSTRUMENT,
    INSTRUMENT_ID,
    MIX,
    PLACE_GTC,
    PLACE_IOC,
    Workload,
    WorkloadSpec,
    generate,
)
from engine import EVENT_DTYPE, Engine, EventKind
from engine.reference import ReferenceEngine

OPS = 5_000
SEED = 7
NAMES = ["batch", "per_call", "reference", "liquibook"]


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(WorkloadSpec(ops=OPS, seed=SEED))


@pytest.fixture(scope="module")
def report(workload: Workload) -> dict[str, Any]:
    return bench_book.run_benchmark(
        workload=workload, reference_ops=OPS, liquibook_ops=OPS, liquibook_check_ops=OPS, repeat=1
    )


def _replay(engine: Any, workload: Workload) -> np.ndarray:
    assert engine.add_instrument(INSTRUMENT_ID, **INSTRUMENT) == 0
    engine.drain_events()
    return np.concatenate([engine.process(workload.prefill), engine.process(workload.stream)])


def test_report_has_the_documented_shape(report: dict[str, Any]) -> None:
    assert set(report) >= {"results", "workload", "ratios", "machine"}
    assert [r["name"] for r in report["results"]] == NAMES
    for r in report["results"]:
        for key in ("ops_per_s", "p50_ns", "p99_ns", "p999_ns", "max_ns"):
            assert isinstance(r[key], int) and r[key] >= 0, (r["name"], key)
        assert r["p50_ns"] <= r["p99_ns"] <= r["p999_ns"] <= r["max_ns"]
        assert r["latency_samples"] == r["ops"]
    assert set(report["ratios"]) >= {
        "batch_vs_liquibook",
        "per_call_vs_liquibook",
        "batch_vs_reference",
    }
    w = report["workload"]
    assert set(w["ops_by_kind"]) == set(MIX)
    assert sum(w["ops_by_kind"].values()) == OPS
    for key in (
        "description",
        "resting_orders_mean",
        "price_span_levels_mean",
        "accounts",
        "ops_per_contender",
        "events_emitted",
        "fills",
    ):
        assert key in w
    assert json.loads(json.dumps(report)) == report  # plain JSON types only


def test_every_contender_replays_the_same_commands(report: dict[str, Any]) -> None:
    results = {r["name"]: r for r in report["results"]}
    assert {r["ops"] for r in results.values()} == {OPS}
    assert report["workload"]["ops_per_contender"] == dict.fromkeys(NAMES, OPS)
    # Our three engines end in the generator's state and agree on every count.
    for name in ("batch", "per_call", "reference"):
        assert results[name]["state_hash_matches"], name
        assert results[name]["rejects"] == 0, name
    assert len({results[n]["events"] for n in ("batch", "per_call", "reference")}) == 1
    assert len({results[n]["fills"] for n in ("batch", "per_call", "reference")}) == 1
    assert results["batch"]["fills"] > 0  # the stream does trade
    check = results["liquibook"]["fill_check"]
    assert check["same_fills"] and check["rejects"] == 0
    assert check["liquibook_fills"] == results["batch"]["fills"]


def test_core_and_reference_emit_identical_events(workload: Workload) -> None:
    core = _replay(Engine(), workload)
    reference = _replay(ReferenceEngine(), workload)
    assert len(core) == len(reference)
    for name in EVENT_DTYPE.names or ():
        differs = np.flatnonzero(core[name] != reference[name])
        assert differs.size == 0, (
            f"field {name} differs first at event {differs[0]}: "
            f"core {core[differs[0]]} reference {reference[differs[0]]}"
        )
    assert not np.any(core["kind"] == EventKind.REJECTED)


def test_stream_is_deterministic_and_follows_the_mix(workload: Workload) -> None:
    again = generate(WorkloadSpec(ops=OPS, seed=SEED))
    assert again.stream.tobytes() == workload.stream.tobytes()
    assert again.prefill.tobytes() == workload.prefill.tobytes()
    other = generate(WorkloadSpec(ops=OPS, seed=SEED + 1))
    assert other.stream.tobytes() != workload.stream.tobytes()
    counts = workload.counts()
    for kind in (AMEND, PLACE_GTC, CANCEL, PLACE_IOC):
        assert abs(counts[kind] / OPS - MIX[kind]) < 0.02, kind
    stats = workload.stats
    assert 900 <= stats["resting_orders_min"] <= stats["resting_orders_max"] <= 1_100
    assert 650 <= stats["price_span_levels_mean"] <= 850


def test_main_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        bench_book.main(
            ["--json", "--ops", "1000", "--seed", "3", "--repeat", "1", "--reference-ops", "1000"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["results"]] == NAMES
    assert out["workload"]["seed"] == 3


def test_chart_draws_every_contender(report: dict[str, Any]) -> None:
    svg = render_svg(report, "bench_book <test>")
    root = ElementTree.fromstring(svg)  # well-formed XML, title escaped
    texts = [element.text or "" for element in root.iter("{http://www.w3.org/2000/svg}text")]
    for result in report["results"]:
        assert result["name"] in texts
        assert f"{result['ops_per_s']:,}/s" in texts
        assert f"p99 {result['p99_ns']:,} ns" in texts
