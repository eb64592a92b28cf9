"""Clearline's gateway: gRPC order entry, market data, account and control, in front of the engine.

Authentication (API keys stored hashed, roles), rate limits, validation and the pre-trade
compliance checks run here; everything that passes is journaled for the engine. `clearctl` (the
risk desk's CLI) and `clearline run` / `clearline demo` live here too.
"""

import os

# gRPC's fork handlers crash a child forked while gRPC threads run (seen: initdb, forked to run
# as another user for the private PostgreSQL, died of SIGSEGV). Our children exec at once and
# need none of gRPC's state, so the handlers are off; this must precede the first grpc import.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from gateway.server import Gateway, GatewayConfig, main, start_gateway

__all__ = ["Gateway", "GatewayConfig", "main", "start_gateway"]
