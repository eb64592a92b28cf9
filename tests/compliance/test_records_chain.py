"""The hash-chained audit log (compliance.records: append_audit, verify_chain).

Goal: rows appended by any number of concurrent writers form one unbroken chain; the database
itself refuses UPDATE, DELETE and TRUNCATE; any single tampering a superuser can do with the
trigger disabled (a changed field, a deleted row, two rows swapped) is found at the right seq
with the right reason, and rows cut from the end are found against an anchor; bad input is
refused and changes nothing. Method: a real PostgreSQL database per test; tampering runs as the
superuser with ``session_replication_role = replica`` (which disables triggers) inside a
transaction that verifies and then rolls back, so Hypothesis can try many tamperings on one
chain.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg
import psycopg.sql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.records import (
    GENESIS_HASH,
    AuditEntryError,
    AuditRow,
    ChainBreakReason,
    append_audit,
    check_chain,
    ensure_audit_schema,
    row_hash,
    verify_chain,
)

CHAIN_ROWS = 7


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def append(conn: psycopg.AsyncConnection[Any], n: int, actor: str = "system") -> int:
    async with conn.transaction():
        return await append_audit(
            conn,
            actor,
            f"action_{n % 3}",
            None if n % 2 else f"account:{n}",
            {"n": n, "ratio": n / 7, "nested": {"b": [1, 2], "a": "é"}},
            "ok" if n % 4 else "rejected",
        )


def test_rows_chain_from_genesis_and_verify(pg_database: str) -> None:
    async def run() -> None:
        async with await connect(pg_database) as conn:
            await ensure_audit_schema(conn)
            await ensure_audit_schema(conn)  # idempotent
            empty = await verify_chain(conn)
            assert empty.intact and empty.rows_checked == 0 and empty.head_hash == GENESIS_HASH
            seqs = [await append(conn, n) for n in range(5)]
            assert seqs == [1, 2, 3, 4, 5]
            cursor = await conn.execute(
                "SELECT id, at, actor, action, target, detail::text, outcome, prev_hash, hash"
                " FROM audit_log ORDER BY id"
            )
            rows = await cursor.fetchall()
            previous = GENESIS_HASH
            for seq, at, actor, action, target, detail, outcome, prev, digest in rows:
                assert bytes(prev) == previous
                assert bytes(digest) == row_hash(
                    seq, at, actor, action, target, detail, outcome, previous
                )
                previous = bytes(digest)
            # The detail is stored as canonical JSON: keys sorted, compact.
            assert rows[0][5] == '{"n":0,"nested":{"a":"é","b":[1,2]},"ratio":0.0}'
            report = await verify_chain(conn)
            assert report.intact
            assert (report.rows_checked, report.head_seq, report.head_hash) == (5, 5, previous)
            assert (await verify_chain(conn, (5, previous))).intact
            assert (await verify_chain(conn, (3, bytes(rows[2][8])))).intact

    asyncio.run(run())


def test_an_audit_log_from_before_the_chain_is_set_aside_and_named(pg_database: str) -> None:
    async def run() -> None:
        async with await connect(pg_database) as conn:
            # The table as gateway/auth.py created it before the audit log was chained.
            await conn.execute(
                "CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL"
                " DEFAULT now(), actor text NOT NULL, action text NOT NULL, target text,"
                " detail jsonb, outcome text)"
            )
            await conn.execute(
                "INSERT INTO audit_log (actor, action, outcome) VALUES ('k1', 'halt', 'ok')"
            )
            await ensure_audit_schema(conn)
            await ensure_audit_schema(conn)  # once only
            cursor = await conn.execute("SELECT action, target FROM audit_log ORDER BY id")
            [(action, legacy)] = await cursor.fetchall()
            assert action == "audit_log_chained" and legacy.startswith("audit_log_legacy_")
            cursor = await conn.execute(
                psycopg.sql.SQL("SELECT actor, action FROM {}").format(
                    psycopg.sql.Identifier(legacy)
                )
            )
            assert await cursor.fetchall() == [("k1", "halt")]
            await append(conn, 1)
            assert (await verify_chain(conn)).intact

    asyncio.run(run())


def test_concurrent_writers_do_not_fork_the_chain(pg_database: str) -> None:
    writers, each = 6, 12

    async def writer(w: int) -> list[int]:
        async with await connect(pg_database) as conn:
            return [await append(conn, n, actor=f"writer{w}") for n in range(each)]

    async def run() -> None:
        async with await connect(pg_database) as conn:
            await ensure_audit_schema(conn)
            results = await asyncio.gather(*(writer(w) for w in range(writers)))
            seqs = sorted(s for r in results for s in r)
            assert seqs == list(range(1, writers * each + 1))
            report = await verify_chain(conn)
            assert report.intact and report.head_seq == writers * each

    asyncio.run(run())


def test_the_database_refuses_changes_and_forks(pg_database: str) -> None:
    async def run() -> None:
        async with await connect(pg_database) as conn:
            await ensure_audit_schema(conn)
            for n in range(3):
                await append(conn, n)
            for statement in (
                "UPDATE audit_log SET actor = 'mallory' WHERE id = 2",
                "UPDATE audit_log SET outcome = outcome",
                "DELETE FROM audit_log WHERE id = 3",
                "DELETE FROM audit_log WHERE id = 99",  # refused even when no row matches
                "TRUNCATE audit_log",
            ):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    await conn.execute(statement)
            # A second row after row 2 (a fork) is refused by the unique prev_hash, even from
            # a writer that skipped the append lock.
            with pytest.raises(psycopg.errors.UniqueViolation):
                await conn.execute(
                    "INSERT INTO audit_log (id, at, actor, action, target, detail, outcome,"
                    " prev_hash, hash) SELECT 4, at, actor, action, target, detail, outcome,"
                    " prev_hash, hash FROM audit_log WHERE id = 3"
                )
            assert (await verify_chain(conn)).head_seq == 3

    asyncio.run(run())


def test_bad_input_is_refused_and_changes_nothing(pg_database: str) -> None:
    async def run() -> None:
        async with await connect(pg_database) as conn:
            await ensure_audit_schema(conn)
            await append(conn, 0)
            bad: list[tuple[Any, ...]] = [
                ("", "act", None, {}, "ok"),
                ("   ", "act", None, {}, "ok"),
                ("a" * 201, "act", None, {}, "ok"),
                ("actor", "", None, {}, "ok"),
                ("actor", "act", "", {}, "ok"),
                ("actor", "act", "t\x00", {}, "ok"),
                ("actor", "act", None, ["not", "a", "mapping"], "ok"),
                ("actor", "act", None, {"x": object()}, "ok"),
                ("actor", "act", None, {"big": "x" * 70_000}, "ok"),
                ("actor", "act", None, {}, ""),
                (None, "act", None, {}, "ok"),
            ]
            for args in bad:
                with pytest.raises(AuditEntryError):
                    async with conn.transaction():
                        await append_audit(conn, *args)
            with pytest.raises(AuditEntryError, match="open transaction"):
                await append_audit(conn, "actor", "act", None, {}, "ok")
            report = await verify_chain(conn)
            assert report.intact and report.head_seq == 1

    asyncio.run(run())


# -- tampering, by a superuser who disables the trigger --

FIELDS = ("at", "actor", "action", "target", "detail", "outcome", "prev_hash", "hash")
CHANGE = {
    "at": "at + interval '1 microsecond'",
    "actor": "actor || 'x'",
    "action": "'forged_' || action",
    "target": "CASE WHEN target IS NULL THEN 'account:0' ELSE NULL END",
    "detail": "('{\"forged\":' || detail::text || '}')::json",
    "outcome": "CASE WHEN outcome = 'ok' THEN 'rejected' ELSE 'ok' END",
    "prev_hash": "sha256(prev_hash)",
    "hash": "sha256(hash)",
}
EXPECTED_REASON = {
    "prev_hash": ChainBreakReason.prev_hash_must_equal_previous_hash,
    **{f: ChainBreakReason.hash_must_match_row_contents for f in FIELDS if f != "prev_hash"},
}

tamperings = st.one_of(
    st.tuples(st.just("change"), st.integers(1, CHAIN_ROWS), st.sampled_from(FIELDS)),
    st.tuples(st.just("delete"), st.integers(1, CHAIN_ROWS), st.just("")),
    st.tuples(
        st.just("swap"),
        st.integers(1, CHAIN_ROWS - 1),
        st.integers(1, CHAIN_ROWS - 1).map(str),  # the distance to the other row
    ),
)


def test_any_single_tampering_is_found(pg_database: str) -> None:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(connect(pg_database))

    async def setup() -> bytes:
        await ensure_audit_schema(conn)
        for n in range(CHAIN_ROWS):
            await append(conn, n)
        report = await verify_chain(conn)
        assert report.intact
        return report.head_hash

    head_hash = loop.run_until_complete(setup())

    async def tamper_and_verify(kind: str, seq: int, arg: str) -> None:
        expected_seq = seq
        async with conn.transaction(force_rollback=True):
            await conn.execute("SET LOCAL session_replication_role = replica")
            if kind == "change":
                await conn.execute(
                    f"UPDATE audit_log SET {arg} = {CHANGE[arg]} WHERE id = %s", (seq,)
                )
                reasons = {EXPECTED_REASON[arg]}
            elif kind == "delete":
                await conn.execute("DELETE FROM audit_log WHERE id = %s", (seq,))
                expected_seq = seq + 1
                reasons = {ChainBreakReason.seq_must_follow_previous_seq}
            else:
                other = min(seq + int(arg), CHAIN_ROWS)
                if other == seq:
                    other = seq - 1 if seq > 1 else seq + 1
                expected_seq = min(seq, other)
                # Swap the two rows' places in the log: their seqs, through a free one (the
                # primary key is checked row by row).
                for old, new in ((seq, 1_000_000), (other, seq), (1_000_000, other)):
                    await conn.execute("UPDATE audit_log SET id = %s WHERE id = %s", (new, old))
                reasons = {
                    ChainBreakReason.prev_hash_must_equal_previous_hash,
                    ChainBreakReason.hash_must_match_row_contents,
                }
            report = await verify_chain(conn)
            anchored = await verify_chain(conn, (CHAIN_ROWS, head_hash))
        if kind == "delete" and seq == CHAIN_ROWS:
            # The chain alone cannot see its last row go; the anchor can.
            assert report.intact and report.head_seq == CHAIN_ROWS - 1
            assert anchored.first_break is not None
            assert anchored.first_break.reason is ChainBreakReason.anchor_must_match_chain
            assert anchored.first_break.seq == CHAIN_ROWS
            return
        assert report.first_break is not None, (kind, seq, arg)
        assert report.first_break.seq == expected_seq, (kind, seq, arg, report)
        assert report.first_break.reason in reasons, (kind, seq, arg, report)
        assert str(expected_seq) in report.first_break.explanation
        assert report.rows_checked == report.head_seq + 1
        assert anchored.first_break == report.first_break

    @settings(max_examples=60)
    @given(tamperings)
    def check(tampering: tuple[str, int, str]) -> None:
        loop.run_until_complete(tamper_and_verify(*tampering))

    try:
        check()
        # Every tampering was rolled back: the chain is intact again.
        assert loop.run_until_complete(verify_chain(conn)).intact
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def test_check_chain_is_a_pure_function_of_the_rows() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[AuditRow] = []
    previous = GENESIS_HASH
    for seq in range(1, 4):
        args = (seq, at + timedelta(seconds=seq), "a", "b", None, "{}", "ok", previous)
        digest = row_hash(*args)
        rows.append(AuditRow(*args, digest))
        previous = digest
    assert check_chain(rows).intact
    out_of_order = check_chain([rows[0], rows[2], rows[1]])
    assert out_of_order.first_break is not None and out_of_order.first_break.seq == 3
    assert check_chain(rows[1:]).first_break.seq == 2  # type: ignore[union-attr]
    wrong_anchor = check_chain(rows, (2, bytes(32)))
    assert wrong_anchor.first_break is not None
    assert wrong_anchor.first_break.reason is ChainBreakReason.anchor_must_match_chain
