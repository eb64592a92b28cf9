"""``python -m ledger``: commands over a ledger schema in PostgreSQL.

``verify`` recomputes the hash chain (`ledger.chain.verify`) with a connection of its own and
without the writer's lock, so it can run beside the writer. Exit codes: 0 the chain and the
balances verify, 1 they do not (the first bad link is named), 2 the input is unusable (cannot
connect, or no ledger in that schema).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec
import psycopg

from ledger._schema import CONNECT_OPTIONS
from ledger.chain import ChainReport, verify
from ledger.ledger import DEFAULT_SCHEMA

EXIT_INTACT = 0
EXIT_BROKEN = 1
EXIT_UNUSABLE = 2


class _Unusable(Exception):
    """The command cannot say anything about the chain."""


async def _verify(database_url: str, schema: str) -> ChainReport:
    try:
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, options=CONNECT_OPTIONS
        )
    except psycopg.Error as error:
        raise _Unusable(f"cannot connect: {error}") from error
    try:
        cur = await conn.execute("SELECT to_regclass(format('%%I.chain', %s::text))", (schema,))
        row = await cur.fetchone()
        if row is None or row[0] is None:
            raise _Unusable(f"no ledger in schema {schema!r}")
        return await verify(conn, schema)
    except psycopg.Error as error:  # e.g. the server went away: nothing was verified
        raise _Unusable(f"cannot verify: {error}") from error
    finally:
        await conn.close()


def _describe(report: ChainReport) -> str:
    if report.ok:
        return (
            f"intact: {report.links_checked} links, {report.transfers_checked} transfers,"
            f" head {report.head_hash}"
        )
    where = (
        f"account {report.first_bad_account_id}"
        if report.first_bad_account_id is not None
        else f"link {report.first_bad_link}"
    )
    return (
        f"broken: {report.problem} at {where} (after {report.links_checked} good links,"
        f" {report.transfers_checked} transfers)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run a ledger command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ledger", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify_parser = commands.add_parser("verify", help="verify the ledger's hash chain")
    verify_parser.add_argument("--database-url", required=True)
    verify_parser.add_argument("--schema", default=DEFAULT_SCHEMA)
    verify_parser.add_argument("--json", action="store_true", help="print the report as JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on bad usage, as we do on unusable input
        return int(exit_.code or 0)
    try:
        report = asyncio.run(_verify(args.database_url, args.schema))
    except _Unusable as error:
        out: Any = {"ok": False, "error": str(error)}
        if args.json:
            print(msgspec.json.encode(out).decode())
        else:
            print(f"unusable: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(_describe(report))
    return EXIT_INTACT if report.ok else EXIT_BROKEN


__all__ = ["EXIT_BROKEN", "EXIT_INTACT", "EXIT_UNUSABLE", "main"]
