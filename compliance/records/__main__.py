"""Command line: ``python -m compliance.records {verify,init-keys,new-key,reencrypt,purge}``.

verify [--database-url URL] [--anchor SEQ:HASH] [--json]
        check the audit chain; exit 0 intact, 1 broken (names the first bad seq and why),
        2 unusable input (no or bad URL, no audit_log table, malformed anchor)
init-keys --records-dir DIR
        create the master key file (unless $CLEARLINE_RECORDS_MASTER_KEY is set) and a key ring
new-key --records-dir DIR [--database-url URL]
        add a data key and make it current (audited); restart or reload writers afterwards
reencrypt --records-dir DIR [--database-url URL]
        move every record to the current key
purge --records-dir DIR [--database-url URL] [--now ISO-8601]
        delete the records whose retention ended (never those on legal hold)

The database URL defaults to ``$DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from compliance.records._chain import append_audit, verify_chain
from compliance.records._keys import (
    KEY_RING_FILE,
    MASTER_KEY_ENV,
    KeyRing,
    KeyRingError,
    create_master_key_file,
    load_key_ring,
    load_master_key,
    save_key_ring,
)
from compliance.records._retention import RetentionError
from compliance.records._store import RecordStore, ensure_schema


class _UsageError(Exception):
    """Input the command cannot use: exit status 2."""


def _database_url(args: argparse.Namespace) -> str:
    url: str | None = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise _UsageError("no database: pass --database-url or set DATABASE_URL")
    return url


def _anchor(text: str | None) -> tuple[int, bytes] | None:
    if text is None:
        return None
    seq_text, _, hash_text = text.partition(":")
    try:
        seq, digest = int(seq_text), bytes.fromhex(hash_text)
    except ValueError:
        raise _UsageError(f"anchor {text!r} is not SEQ:HEX (from a previous verify)") from None
    if seq < 0 or len(digest) != 32:
        raise _UsageError(f"anchor {text!r} needs a seq >= 0 and a 64-hex-digit hash")
    return seq, digest


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


async def _verify(args: argparse.Namespace) -> int:
    anchor = _anchor(args.anchor)
    async with await psycopg.AsyncConnection.connect(_database_url(args)) as conn:
        report = await verify_chain(conn, anchor)
    broken = report.first_break
    if args.json:
        out: dict[str, Any] = {
            "intact": report.intact,
            "rows_checked": report.rows_checked,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash.hex(),
            "first_break": None
            if broken is None
            else {
                "seq": broken.seq,
                "reason": str(broken.reason),
                "explanation": broken.explanation,
            },
        }
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    elif broken is None:
        print(
            f"audit chain intact: {report.rows_checked} rows;"
            f" head {report.head_seq}:{report.head_hash.hex()}"
        )
    else:
        print(f"audit chain broken at seq {broken.seq}: {broken.reason}: {broken.explanation}")
    return 0 if broken is None else 1


def _records_dir(args: argparse.Namespace) -> Path:
    return Path(args.records_dir)


def _load_ring(args: argparse.Namespace) -> tuple[KeyRing, bytes]:
    master = load_master_key(_records_dir(args))
    return load_key_ring(_records_dir(args) / KEY_RING_FILE, master), master


async def _init_keys(args: argparse.Namespace) -> int:
    records_dir = _records_dir(args)
    ring_path = records_dir / KEY_RING_FILE
    if ring_path.exists():
        raise _UsageError(f"{ring_path} exists: use new-key to rotate")
    records_dir.mkdir(parents=True, exist_ok=True)
    if not os.environ.get(MASTER_KEY_ENV):
        print(f"created {create_master_key_file(records_dir)}")
    save_key_ring(KeyRing.generate(), ring_path, load_master_key(records_dir))
    print(f"created {ring_path} with key 1")
    return 0


async def _new_key(args: argparse.Namespace) -> int:
    ring, master = _load_ring(args)
    new_ring = ring.with_new_key()
    async with await psycopg.AsyncConnection.connect(_database_url(args)) as conn:
        await ensure_schema(conn)
        # The audit row commits only after the new ring is on disk: a key that was never saved
        # is never claimed to exist.
        async with conn.transaction():
            save_key_ring(new_ring, _records_dir(args) / KEY_RING_FILE, master)
            await append_audit(
                conn,
                _actor(),
                "records_key_added",
                f"key:{new_ring.current_key_id}",
                {"key_ids": sorted(new_ring.key_ids)},
                "ok",
            )
    print(f"key {new_ring.current_key_id} is current; run reencrypt to move old records")
    return 0


async def _reencrypt(args: argparse.Namespace) -> int:
    ring, _ = _load_ring(args)
    store = await RecordStore.open(_database_url(args), ring)
    try:
        moved = await store.rotate(_actor())
    finally:
        await store.close()
    print(f"re-encrypted {moved} records under key {ring.current_key_id}")
    return 0


async def _purge(args: argparse.Namespace) -> int:
    if args.now is None:
        now = datetime.now(UTC)
    else:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise _UsageError(f"--now {args.now!r} is not ISO 8601") from None
    ring, _ = _load_ring(args)
    store = await RecordStore.open(_database_url(args), ring)
    try:
        purged = await store.purge(now, _actor())
    finally:
        await store.close()
    print(f"purged {len(purged)} records")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m compliance.records")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check the audit chain")
    verify.add_argument("--database-url", help="default: $DATABASE_URL")
    verify.add_argument("--anchor", help="SEQ:HASH of a head recorded earlier")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(run=_verify)
    for name, run, help_text in (
        ("init-keys", _init_keys, "create the master key and key ring"),
        ("new-key", _new_key, "add a data key and make it current"),
        ("reencrypt", _reencrypt, "move every record to the current key"),
        ("purge", _purge, "delete records whose retention ended"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--records-dir", required=True, help="the key ring's folder")
        if name != "init-keys":
            command.add_argument("--database-url", help="default: $DATABASE_URL")
        if name == "purge":
            command.add_argument("--now", help="the clock, ISO 8601 with a zone (default: now)")
        command.set_defaults(run=run)
    args = parser.parse_args(argv)
    try:
        status: int = asyncio.run(args.run(args))
    except (_UsageError, KeyRingError, RetentionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        # Connection refused, bad URL, no audit_log table: nothing to verify against.
        print(f"error: database: {str(exc).strip()}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
