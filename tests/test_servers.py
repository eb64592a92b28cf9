"""The real servers that every other test relies on: NATS with JetStream, and PostgreSQL.

Goal: show that the fixtures of tests/conftest.py hand out working servers, and that the private
servers of `engine.servers` keep their data across a stop and a start on the same data folder,
the property "run again resumes from the journal" rests on. Method: real round trips only: a
stream created, published to and read back through nats-py; a table written and read through
psycopg; servers stopped and started between the write and the read. Run with and without
NATS_URL / DATABASE_URL: the first two tests then hit the machine's services, the rest always
start private servers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import nats
import psycopg
import pytest

from engine.servers import (
    NatsServer,
    PostgresServer,
    ServerStartError,
    database_server,
    nats_server,
    start_nats,
    start_postgres,
)


async def _publish(url: str, stream: str, payloads: list[bytes], create: bool = True) -> None:
    """Publish the payloads to the stream (subjects ``<stream>.>``), creating it if asked."""
    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        if create:
            await jetstream.add_stream(name=stream, subjects=[f"{stream}.>"])
        for payload in payloads:
            await jetstream.publish(f"{stream}.event", payload)
    finally:
        await client.close()


async def _read(url: str, stream: str, delete: bool = False) -> list[bytes]:
    """Every message of the stream, in order, through a pull consumer; delete it if asked."""
    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        count = (await jetstream.stream_info(stream)).state.messages
        subscription = await jetstream.pull_subscribe(f"{stream}.>", stream=stream)
        messages = await subscription.fetch(count, timeout=5) if count else []
        for message in messages:
            await message.ack()
        if delete:
            await jetstream.delete_stream(stream)
        return [message.data for message in messages]
    finally:
        await client.close()


def test_jetstream_round_trip(nats_url: str, nats_prefix: str) -> None:
    payloads = [b"first", b"second", b"third"]
    asyncio.run(_publish(nats_url, nats_prefix, payloads))
    assert asyncio.run(_read(nats_url, nats_prefix, delete=True)) == payloads


def test_pg_database_is_fresh_and_usable(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        name = pg_database.rsplit("/", 1)[1]
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
        conn.execute("CREATE TABLE fills (fill_id bigint PRIMARY KEY, quantity_lots bigint)")
        conn.execute("INSERT INTO fills VALUES (1, 10), (2, 25)")
        assert conn.execute("SELECT sum(quantity_lots) FROM fills").fetchone() == (35,)


def test_private_nats_keeps_stream_across_restart(
    nats_server_factory: Callable[[], NatsServer], nats_prefix: str
) -> None:
    server = nats_server_factory()
    url = server.url
    asyncio.run(_publish(url, nats_prefix, [b"a", b"b"]))

    server.restart()
    assert server.url == url  # same port: clients reconnect to where they were
    asyncio.run(_publish(url, nats_prefix, [b"c"], create=False))
    assert asyncio.run(_read(url, nats_prefix)) == [b"a", b"b", b"c"]

    # A new server on the same data folder finds the stream too.
    server.stop()
    with start_nats(server.data_dir) as again:
        assert asyncio.run(_read(again.url, nats_prefix)) == [b"a", b"b", b"c"]


def test_private_postgres_keeps_data_across_restart(server_data_dir: Path) -> None:
    with start_postgres(server_data_dir) as server:
        url = server.url
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE journal (seq bigint PRIMARY KEY)")
            conn.execute("INSERT INTO journal SELECT generate_series(1, 100)")
        server.restart()
        assert server.url == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM journal").fetchone() == (100,)
    assert not server.running

    # A new server on the same data folder reuses the cluster rather than running initdb.
    with PostgresServer(server_data_dir) as again, psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT max(seq) FROM journal").fetchone() == (100,)


def test_private_servers_recover_from_a_crash(
    nats_server_factory: Callable[[], NatsServer], server_data_dir: Path, nats_prefix: str
) -> None:
    # SIGKILL, no shutdown: what an acknowledged write must survive.
    nats_ = nats_server_factory()
    asyncio.run(_publish(nats_.url, nats_prefix, [b"acked"]))
    nats_.kill()
    nats_.start()
    assert asyncio.run(_read(nats_.url, nats_prefix)) == [b"acked"]

    with start_postgres(server_data_dir) as postgres:
        with psycopg.connect(postgres.url) as conn:
            conn.execute("CREATE TABLE journal (seq bigint PRIMARY KEY)")
            conn.execute("INSERT INTO journal VALUES (1)")
        postgres.kill()
        postgres.start()
        with psycopg.connect(postgres.url) as conn:
            assert conn.execute("SELECT seq FROM journal").fetchall() == [(1,)]


def test_stopped_servers_leave_nothing_listening(server_data_dir: Path) -> None:
    nats_server_ = start_nats(server_data_dir)
    postgres = start_postgres(server_data_dir)
    ports = [nats_server_.port, postgres.port]
    nats_server_.stop()
    postgres.stop()
    nats_server_.stop()  # idempotent
    for port in ports:
        assert port is not None
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_one_server_per_data_folder(server_data_dir: Path) -> None:
    # A server left behind by a killed run must not share its store with the next one.
    with start_nats(server_data_dir) as first_nats, start_postgres(server_data_dir) as first_pg:
        with pytest.raises(ServerStartError, match=f"pid {first_nats.pid}"):
            start_nats(server_data_dir)
        with pytest.raises(ServerStartError, match=r"postmaster\.pid"):
            start_postgres(server_data_dir)
        assert first_nats.running and first_pg.running


def test_start_failure_quotes_the_server_log(server_data_dir: Path) -> None:
    server = start_nats(server_data_dir)
    server.stop()
    assert server.port is not None
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        with pytest.raises(ServerStartError, match="nats-server exited") as failure:
            server.start()
    assert "address already in use" in str(failure.value)
    assert not server.running


def test_environment_urls_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NATS_URL", "nats://nats.example:4222")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example/app")
    with nats_server(tmp_path) as nats_url, database_server(tmp_path) as database_url:
        assert nats_url == "nats://nats.example:4222"
        assert database_url == "postgresql://app@db.example/app"
    assert not any(tmp_path.iterdir())  # nothing started
