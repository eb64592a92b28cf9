"""Fixtures for tests that need the real NATS (JetStream) and PostgreSQL servers.

Goal: every test that touches NATS or PostgreSQL talks to a real server, on a developer's
machine, on this machine's services and on a fresh CI machine alike. Method: ``nats_url`` and
``database_url`` are ``NATS_URL`` and ``DATABASE_URL`` when set, else private servers that
`engine.servers` starts once per session (once per pytest-xdist worker) and stops at its end.
Tests keep out of each other's way on a shared server: ``nats_prefix`` is a unique token for
stream names and subjects, ``pg_database`` a fresh database dropped afterwards. A test that
stops or restarts NATS gets its own server from ``nats_server_factory``, whatever NATS_URL says.

Hypothesis profiles, for every package's tests: ``default`` (modest: the suite stays well under
a minute on two cores) and ``long`` (`make test-long`), chosen by HYPOTHESIS_PROFILE.

The private servers live in a folder of the system temp dir, not under pytest's
``tmp_path_factory``: when we are root, PostgreSQL runs as ``nobody``, which cannot enter
pytest's ``pytest-of-root`` (mode 0700, and pytest tightens it again at each session's start).
"""

from __future__ import annotations

import os

# gRPC's fork handlers crash a child forked while gRPC threads run (seen: initdb, forked to run
# as another user for the private PostgreSQL, died of SIGSEGV). Our children exec at once and
# need none of gRPC's state, so the handlers are off; this must precede the first grpc import.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql

from engine.servers import (
    NatsServer,
    PostgresServer,
    database_server,
    nats_server,
    start_nats,
    start_postgres,
)

settings.register_profile(
    "default",
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2_000,
    stateful_step_count=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _unique_token() -> str:
    """Short, starts with a letter, valid as a NATS stream name, a subject token, a database."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    """This session's folder for private servers, removed at its end."""
    path = Path(tempfile.mkdtemp(prefix="clearline-servers-"))
    path.chmod(0o711)  # others may enter, not list: PostgreSQL runs as nobody when we are root
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server_data_dir(servers_dir: Path) -> Path:
    """A fresh data folder for one test's own server."""
    path = servers_dir / _unique_token()
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def nats_url(servers_dir: Path) -> Iterator[str]:
    """URL of a NATS server with JetStream: NATS_URL, or a private one for the session."""
    with nats_server(servers_dir / "shared") as url:
        yield url


@pytest.fixture(scope="session")
def database_url(servers_dir: Path) -> Iterator[str]:
    """URL of a PostgreSQL superuser connection: DATABASE_URL, or a private server."""
    with database_server(servers_dir / "shared") as url:
        yield url


@pytest.fixture
def nats_prefix() -> str:
    """A token unique to this test, to start its stream names and subjects with."""
    return _unique_token()


@pytest.fixture
def pg_database(database_url: str) -> Iterator[str]:
    """URL of a new, empty database for this test, dropped afterwards."""
    name = _unique_token()
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlsplit(database_url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(database_url, autocommit=True) as admin:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        admin.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
def nats_server_factory(servers_dir: Path) -> Iterator[Callable[[], NatsServer]]:
    """Start private NATS servers this test may stop and restart; all stopped at its end.

    Each call starts a server on a fresh data folder; ``restart()`` keeps its port and store.
    """
    servers: list[NatsServer] = []

    def start() -> NatsServer:
        data_dir = servers_dir / _unique_token()
        servers.append(start_nats(data_dir))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def postgres_server_factory(servers_dir: Path) -> Iterator[Callable[[], PostgresServer]]:
    """Start private PostgreSQL servers this test may stop and restart; all stopped at its end.
    ``restart()`` keeps the port and the data."""
    servers: list[PostgresServer] = []

    def start() -> PostgresServer:
        servers.append(start_postgres(servers_dir / _unique_token()))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
