"""Recovery is replay: snapshot + the commands after it reproduce a straight run exactly.

Method: one realistic stream (the benchmark's exchange-core mix, 20,000 commands with fills,
amends and cancels) is applied straight through the core. Hypothesis then picks cut points; the
run is cut there, snapshotted, restored into a fresh engine, and continued. The state hash and
every event after the cut must equal the straight run's. Snapshots also restore into the
reference book, which must then agree with the core on what follows.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._workload import WorkloadSpec, generate, new_engine
from engine import Engine
from engine._snapshot import decode_state
from engine.reference import ReferenceEngine

STREAM_OPS = 20_000


@cache
def _straight_run() -> tuple[Any, Any, str]:
    workload = generate(WorkloadSpec(ops=STREAM_OPS, seed=7))
    engine = new_engine()
    engine.process(workload.prefill)
    events = engine.process(workload.stream)
    engine.check_invariants()
    return workload, events, engine.state_hash()


def _after(events: Any, first_seq: int, index_offset: int) -> list[tuple[Any, ...]]:
    """Events from first_seq on, with command indexes made relative to the whole stream."""
    tail = events[events["seq"] >= first_seq].copy()
    tail["command_index"] += index_offset
    return tail.tolist()


@settings(max_examples=12, deadline=None)
@given(cut=st.integers(min_value=0, max_value=STREAM_OPS))
def test_restore_and_replay_equals_the_straight_run(cut: int) -> None:
    workload, straight_events, straight_hash = _straight_run()
    engine = new_engine()
    engine.process(workload.prefill)
    engine.process(workload.stream[:cut])
    snapshot = engine.snapshot()

    restored = Engine.restore(snapshot)
    assert restored.state_hash() == engine.state_hash()
    first_seq_after_cut = decode_state(snapshot).seq + 1
    replayed = restored.process(workload.stream[cut:])
    restored.check_invariants()

    assert restored.state_hash() == straight_hash
    assert _after(replayed, first_seq_after_cut, cut) == _after(
        straight_events, first_seq_after_cut, 0
    )


def test_core_snapshot_continues_in_the_reference_book() -> None:
    workload, _, _ = _straight_run()
    cut, span = STREAM_OPS // 2, 2_000
    core = new_engine()
    core.process(workload.prefill)
    core.process(workload.stream[:cut])
    reference = ReferenceEngine.restore(core.snapshot())

    segment = workload.stream[cut : cut + span]
    assert reference.process(segment).tolist() == core.process(segment).tolist()
    assert reference.state_hash() == core.state_hash()
