"""What the LOBSTER and MBO replays share: accounts, bounds, the error type, the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Accounts: makers may share one (a replayed book never crosses, so they never meet); the taker
# of a replayed execution must be another, or self-trade prevention would stop the fill.
MAKER_ACCOUNT = 1
TAKER_ACCOUNT = 2

# Largest order the instrument accepts: far above any real order, and small enough that
# price x quantity stays inside int64 up to a band of $900,000 a share.
QUANTITY_MAX_LOTS = 1_000_000_000
# Unexplained mismatches kept word for word in the report; the rest are only counted.
DETAILS_MAX = 20

EngineFactory = Callable[[], Any]
ProgressFn = Callable[[int, int], None]


class ReplayInputError(ValueError):
    """A replay input file is missing, unreadable or malformed; the message names the place."""


def core_engine() -> Any:
    """The compiled core with default limits: what a replay runs on unless told otherwise."""
    from engine._core import Engine

    return Engine()
