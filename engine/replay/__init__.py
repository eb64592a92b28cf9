"""Replays of real market data through the engine: LOBSTER (Nasdaq) and Databento MBO (CME)."""

from engine.replay._common import ReplayInputError
from engine.replay.lobster import LobsterReport, replay_lobster
from engine.replay.mbo import MboReport, replay_mbo

__all__ = ["LobsterReport", "MboReport", "ReplayInputError", "replay_lobster", "replay_mbo"]
