"""Clearline's gateway: gRPC order entry, market data, account and control, in front of the engine.

Authentication (API keys stored hashed, roles), rate limits, validation and the pre-trade
compliance checks run here; everything that passes is journaled for the engine. `clearctl` (the
risk desk's CLI) and `clearline run` / `clearline demo` live here too.
"""

from gateway.server import Gateway, GatewayConfig, main, start_gateway

__all__ = ["Gateway", "GatewayConfig", "main", "start_gateway"]
