"""The ledger's speed: transfers per second from the events stream into PostgreSQL through the
consumer, against a bare COPY of the same rows, and how far the ledger trails the engine at
5,000 fills per second.

Workload: a seeded flow (engine/simulate.py: 1,000 accounts depositing, placing orders that
trade with fees and are cancelled, holding and settling withdrawals) applied to a shard in
process; each entry's EventBatch is published to a private events stream as the engine does.

- `consumer`: the stream is filled first, then the ledger consumer (ledger/consumer.py) books
  all of it from a fresh schema: decode, posting rules, account creation, transfer checks,
  COPY, balances, hash chain, event id, ack. Transfers booked per second of that run.
- `copy_ceiling`: the same transfer rows, as the ledger's own binary COPY tuples, COPYed into a
  bare table with the same columns and no index, 10,000 rows a transaction: what PostgreSQL
  takes with no ledger in front of it.
- `copy_ledger_table`: the same COPY into the ledger's own ``transfers`` table (the unique index
  of client ids, which the engine's sequenced ids skip, the BRIN and the partial index;
  ledger/_schema.py) and nothing else: the most PostgreSQL takes into the table the ledger must
  write, so the most any consumer could reach. The ceilings' rows are built after the consumer
  has run: two million of them in memory made the consumer a quarter slower.
- `lag`: the consumer runs while entries are published at the pace that gives 5,000 fills per
  second; each entry is stamped when published, and its lag is from then to its commit.

Starts NATS and PostgreSQL itself when NATS_URL / DATABASE_URL are not set. Prints JSON:

    python -m benchmarks.bench_ledger --json [--entries N] [--lag-duration-s S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import psycopg
import uvloop
from psycopg import sql

from benchmarks._machine import load_average, machine_during
from engine._codes import EventKind
from engine.journal import ensure_streams
from engine.messages import ENCODER, EventBatch
from engine.servers import database_server, nats_server
from engine.simulate import applied_flow
from engine.topology import Topology
from ledger import chain
from ledger._schema import ensure_schema
from ledger.consumer import LedgerConsumer
from ledger.postings import postings

ACCOUNTS = list(range(1_000, 2_000))
# Rows per COPY transaction of the ceiling.
copy_chunk_rows = 10_000
TARGETS = {"transfers_per_s_min": 50_000, "share_of_copy_min": 0.5, "max_lag_ms_max": 1_000}


def progress(text: str) -> None:
    print(f"[bench_ledger {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str, str]]:
    """(nats_url, database_url, where they came from)."""
    if os.environ.get("NATS_URL") and os.environ.get("DATABASE_URL"):
        yield os.environ["NATS_URL"], os.environ["DATABASE_URL"], "NATS_URL and DATABASE_URL"
        return
    with tempfile.TemporaryDirectory(prefix="clearline-bench-ledger-") as folder:
        Path(folder).chmod(0o711)  # PostgreSQL runs as nobody when we are root
        with nats_server(Path(folder)) as nats_url, database_server(Path(folder)) as db_url:
            yield nats_url, db_url, "private servers started by the benchmark"


@contextlib.contextmanager
def fresh_database(database_url: str) -> Iterator[str]:
    name = "bench_ledger_" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(database_url, dbname=name)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


async def publish(js: Any, topology: Topology, batch: EventBatch) -> None:
    await js.publish(
        topology.events_subject,
        ENCODER.encode(batch),
        headers={"Nats-Msg-Id": topology.event_message_id(batch.journal_seq)},
    )


async def run_consumer(nats_url: str, database_url: str, batches: list[EventBatch]) -> dict:
    topology = Topology("bl" + uuid.uuid4().hex[:8], "0")
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, topology)
        for batch in batches:
            await publish(js, topology, batch)
        consumer = LedgerConsumer.for_database(nc, topology, database_url)
        await consumer.start()
        started = time.perf_counter()
        last_report = started
        while consumer.journal_seq_booked < len(batches):
            await consumer.round(wait_s=1.0)
            if time.perf_counter() - last_report > 2:
                last_report = time.perf_counter()
                progress(
                    f"consumer: {consumer.journal_seq_booked:,} of {len(batches):,} entries,"
                    f" {consumer.transfers_booked:,} transfers"
                )
        elapsed = time.perf_counter() - started
        # Writes the ledger's fast path took (ledger/_fast.py); the others took the exact path.
        fast_path_writes = consumer.ledger.fast_path_writes if consumer.ledger else None
        await consumer.close()
        await js.delete_stream(topology.events_stream)
    finally:
        await nc.close()
    return {
        "entries": len(batches),
        "transfers": consumer.transfers_booked,
        "fast_path_writes": fast_path_writes,
        "elapsed_s": round(elapsed, 3),
        "transfers_per_s": round(consumer.transfers_booked / elapsed),
        "entries_per_s": round(len(batches) / elapsed),
    }


def copy_rows(batches: list[EventBatch]) -> list[bytes]:
    """The ledger's binary COPY tuple of every transfer, positions 1, 2, 3..."""
    rows, position = [], 0
    for batch in batches:
        for t in postings(batch)[1]:
            position += 1
            fields = (t.id, t.debit_account_id, t.credit_account_id, t.amount_minor, t.pending_id)
            more = (t.ledger, t.code, t.flags, t.user_data_1, t.user_data_2)
            rows.append(
                chain.transfer_tuple(position, *fields, *more, batch.journal_seq, batch.ts_ns)
            )
    return rows


def run_copy(database_url: str, rows: list[bytes], *, ledger_table: bool = False) -> dict:
    """COPY the rows into a bare table, or (``ledger_table``) into the ledger's own transfers
    table with its primary key and indexes (ledger/_schema.py), and nothing else."""
    if ledger_table:
        asyncio.run(_ledger_schema(database_url, "ceiling"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        table = "ceiling.transfers" if ledger_table else "bare_transfers"
        if not ledger_table:
            conn.execute(
                "CREATE TABLE bare_transfers (position bigint, id uuid, debit_account_id bigint,"
                " credit_account_id bigint, amount_minor bigint, pending_id uuid, ledger integer,"
                " code integer, flags integer, user_data_1 bigint, user_data_2 bigint,"
                " journal_seq bigint, ts_ns bigint)"
            )
        started = time.perf_counter()
        copy_sql = f"COPY {table} FROM STDIN (FORMAT BINARY)"
        for first in range(0, len(rows), copy_chunk_rows):
            chunk = b"".join(rows[first : first + copy_chunk_rows])
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.write(chain.COPY_HEADER + chunk + chain.COPY_TRAILER)
        elapsed = time.perf_counter() - started
        stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert stored is not None and stored[0] == len(rows)
    return {
        "rows": len(rows),
        "elapsed_s": round(elapsed, 3),
        "rows_per_s": round(len(rows) / elapsed),
        "rows_per_transaction": copy_chunk_rows,
    }


async def _ledger_schema(database_url: str, schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await ensure_schema(conn, schema)


async def run_lag(
    nats_url: str, database_url: str, batches: list[EventBatch], fills_per_s: int
) -> dict:
    """Publish at `fills_per_s` while the consumer books; lag per entry from publish to commit."""
    topology = Topology("bl" + uuid.uuid4().hex[:8], "0")
    fills = [int((b.event_rows()["kind"] == EventKind.FILLED).sum()) for b in batches]
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, topology)
        consumer = LedgerConsumer.for_database(nc, topology, database_url)
        await consumer.start()
        running = asyncio.create_task(consumer.run())
        started = time.perf_counter()
        sent_fills = 0
        for batch, batch_fills in zip(batches, fills, strict=True):
            # Open loop: entry k leaves when the fills before it are due at the target rate.
            due = started + sent_fills / fills_per_s
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            await publish(js, topology, msgspec.structs.replace(batch, ts_ns=time.time_ns()))
            sent_fills += batch_fills
        publish_s = time.perf_counter() - started
        while consumer.journal_seq_booked < len(batches):
            await asyncio.sleep(0.01)
        drained_s = time.perf_counter() - started
        await consumer.stop()
        await asyncio.wait_for(running, 10)
        await consumer.close()
        await js.delete_stream(topology.events_stream)
    finally:
        await nc.close()
    return {
        "fills_per_s_target": fills_per_s,
        "fills_per_s_sent": round(sent_fills / publish_s),
        "entries": len(batches),
        "fills": sent_fills,
        "publish_s": round(publish_s, 3),
        "booked_all_after_s": round(drained_s, 3),
        "max_lag_ms": round(consumer.lag_ns_max / 1e6, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # Entries enough for the consumer's rounds to overlap (2,000 a round): its steady state.
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--commands-per-entry", type=int, default=25)
    parser.add_argument("--lag-duration-s", type=float, default=5.0)
    parser.add_argument("--fills-per-s", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    progress(f"applying {args.entries:,} entries of {args.commands_per_entry} commands")
    _, batches = applied_flow(ACCOUNTS, args.entries, args.commands_per_entry, seed=args.seed)
    fills_per_entry = sum(
        int((b.event_rows()["kind"] == EventKind.FILLED).sum()) for b in batches
    ) / len(batches)
    lag_entries = max(10, int(args.fills_per_s * args.lag_duration_s / max(fills_per_entry, 1)))
    _, lag_batches = applied_flow(
        ACCOUNTS, lag_entries, args.commands_per_entry, seed=args.seed + 1
    )
    load_start = load_average()
    with servers() as (nats_url, database_url, origin):
        with fresh_database(database_url) as db:
            progress(f"consumer: booking {len(batches):,} entries")
            consumer = uvloop.run(run_consumer(nats_url, db, batches))
        rows = copy_rows(batches)
        with fresh_database(database_url) as db:
            progress(f"copy_ceiling: {len(rows):,} rows")
            ceiling = run_copy(db, rows)
        with fresh_database(database_url) as db:
            progress(f"copy_ledger_table: {len(rows):,} rows")
            ledger_table = run_copy(db, rows, ledger_table=True)
        with fresh_database(database_url) as db:
            progress(f"lag: {lag_entries:,} entries at {args.fills_per_s:,} fills/s")
            lag = uvloop.run(run_lag(nats_url, db, lag_batches, args.fills_per_s))
    share = consumer["transfers_per_s"] / ceiling["rows_per_s"]
    result = {
        "transfers_per_s": consumer["transfers_per_s"],
        "copy_ceiling_per_s": ceiling["rows_per_s"],
        "share_of_copy_ceiling": round(share, 4),
        # What PostgreSQL itself takes into the table the ledger must write (primary key for
        # idempotent ids, BRIN, pending index): the most any consumer could reach.
        "copy_ledger_table_per_s": ledger_table["rows_per_s"],
        "ledger_table_share_of_copy_ceiling": round(
            ledger_table["rows_per_s"] / ceiling["rows_per_s"], 4
        ),
        "share_of_ledger_table_copy": round(
            consumer["transfers_per_s"] / ledger_table["rows_per_s"], 4
        ),
        "max_lag_ms_at_5k_fills_per_s": lag["max_lag_ms"],
        "modes": {
            "consumer": consumer,
            "copy_ceiling": ceiling,
            "copy_ledger_table": ledger_table,
            "lag": lag,
        },
        "workload": {
            "accounts": len(ACCOUNTS),
            "entries": args.entries,
            "commands_per_entry": args.commands_per_entry,
            "transfers_per_entry": round(len(rows) / len(batches), 1),
            "fills_per_entry": round(fills_per_entry, 1),
            "seed": args.seed,
        },
        "targets": TARGETS,
        "targets_met": {
            "transfers_per_s_min": consumer["transfers_per_s"] >= TARGETS["transfers_per_s_min"],
            "share_of_copy_min": share >= TARGETS["share_of_copy_min"],
            "max_lag_ms_max": lag["max_lag_ms"] <= TARGETS["max_lag_ms_max"],
        },
        "settings": {"servers": origin},
        "machine": machine_during(("psycopg", "nats-py", "msgspec", "numpy"), load_start),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"consumer {result['transfers_per_s']:,} transfers/s, COPY ceiling"
            f" {result['copy_ceiling_per_s']:,} rows/s ({share:.0%}); max lag at"
            f" {args.fills_per_s:,} fills/s: {lag['max_lag_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
