"""A bare grpc.aio echo server: the ceiling any gRPC service of ours can reach on this machine.

``python -m benchmarks._echo --port-file PATH`` serves one unary method, ``ECHO_METHOD``, that
answers each request with its own bytes: no servicer class, no protobuf parsing (a generic
handler with identity serializers), no interceptor, no authentication. It runs as the gateway
does (its own process, grpc.aio on uvloop, plaintext HTTP/2 on 127.0.0.1), so a client that
drives it as it drives the gateway measures what gRPC and Python cost before any work of ours.
The chosen port is written to the port file once the server accepts calls; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

import grpc

SERVICE = "clearline.bench.Echo"
ECHO_METHOD = f"/{SERVICE}/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


def _handler() -> grpc.GenericRpcHandler:
    # No serializers: grpc passes the raw bytes both ways.
    return grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )


async def serve(port_file: Path) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    temp = port_file.with_suffix(".tmp")
    temp.write_text(f"{port}\n")
    os.replace(temp, port_file)  # the reader never sees a half-written port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._echo", description=__doc__)
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(serve(args.port_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
