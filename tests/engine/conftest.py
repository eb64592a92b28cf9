"""Shared fixtures of the engine tests: both implementations behind one factory.

Goal: every engine test runs against the plain-Python reference book and the Cython core, so a
scenario that passes proves both follow docs/matching.md. Method: ``make_engine`` is
parametrized over ``["reference", "core"]``; ``engine`` is one of them holding the standard test
instrument. Hypothesis profiles live in
tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from engine._core import Engine
from engine._limits import EngineLimits
from engine.reference import ReferenceEngine

# The standard test instrument: increments above 1 so that every 40xx check can be reached.
# Valid prices 5, 10, ..., 1000; valid quantities 10, 15, 20, ... up to 1000; notional >= 500.
STANDARD_INSTRUMENT: dict[str, int] = {
    "price_increment_ticks": 5,
    "quantity_increment_lots": 5,
    "quantity_min_lots": 10,
    "quantity_max_lots": 1_000,
    "notional_min": 500,
    "price_min_ticks": 5,
    "price_max_ticks": 1_000,
}

EngineFactory = Callable[..., Any]


def add_standard_instrument(engine: Any, instrument_id: int = 0, **overrides: int) -> None:
    """Add the standard test instrument (or a variant of it) and drain its OPEN event."""
    reason = engine.add_instrument(instrument_id, **{**STANDARD_INSTRUMENT, **overrides})
    assert reason == 0, f"the standard instrument was rejected with {reason}"
    engine.drain_events()


@pytest.fixture(params=["reference", "core"])
def make_engine(request: pytest.FixtureRequest) -> EngineFactory:
    """A factory ``make_engine(limits=None)`` of one implementation (both, by parametrization)."""
    engine_class = ReferenceEngine if request.param == "reference" else Engine

    def factory(limits: EngineLimits | None = None) -> Any:
        return engine_class(limits)

    return factory


@pytest.fixture
def engine(make_engine: EngineFactory) -> Any:
    """An engine with default limits and the standard instrument 0, events drained."""
    engine = make_engine()
    add_standard_instrument(engine)
    return engine


@pytest.fixture
def standard_instrument() -> Callable[..., None]:
    """The ``add_standard_instrument(engine, instrument_id=0, **overrides)`` helper."""
    return add_standard_instrument


@pytest.fixture(scope="session")
def core_class() -> type:
    """``engine._core.Engine``, the compiled core."""
    return Engine


@pytest.fixture(scope="session")
def peer_engine_class() -> type:
    """The engine the differential tests compare the reference with: the core.

    CLEARLINE_DIFF_PEER=reference compares the reference with itself, to debug strategies.
    """
    if os.environ.get("CLEARLINE_DIFF_PEER") == "reference":
        return ReferenceEngine
    return Engine


@pytest.fixture
def standard_parameters() -> dict[str, int]:
    """A copy of the standard instrument's parameters."""
    return dict(STANDARD_INSTRUMENT)
