"""Sequenced ids: stored without a unique index entry, still unique, found, and upgraded to.

Goal: the engine's postings (ids from `sequenced_id_min` up) are stored without PostgreSQL's
unique index, and nothing a client sees changes: a retry of a sequenced id is `exists` (or
`exists_with_different_fields`) after a restart emptied the caches, a lookup finds it, verify
names a repeated sequenced id that a faulty writer let through, and a version 1 schema opens
as version 2 with what it held. The compiled loops of the fast path give what their NumPy
references give, byte for byte (the stateful equivalence of whole writes, both id spaces, is
tests/ledger/test_ledger_fast.py's).
Method: real PostgreSQL in a private schema per test; Hypothesis for the loops.
"""

from __future__ import annotations

import asyncio

import numpy as np
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from psycopg import sql

from engine._codes import TransferResult
from ledger import Ledger, Transfer, _fast, _kernels
from ledger._columns import COLUMNS_DTYPE
from ledger.model import sequenced_id_min
from ledger.postings import shard_code, transfer_id
from tests.ledger.ledger_fixtures import STANDARD_ACCOUNTS, USDT

H, A, B = (a.id for a in STANDARD_ACCOUNTS[:3])


def t(id: int, amount: int = 10, debit: int = H, credit: int = A) -> Transfer:
    return Transfer(id=id, debit_account_id=debit, credit_account_id=credit,
                    amount_minor=amount, ledger=USDT, code=1)  # fmt: skip


def test_engine_transfer_ids_are_sequenced_and_ascend_with_the_journal() -> None:
    ids = [transfer_id("0", seq, row) for seq in (1, 2, (1 << 72) - 1) for row in (0, 1)]
    assert all(i >= sequenced_id_min for i in ids) and ids == sorted(ids)
    assert 0 < shard_code("0") < 1 << 31 and shard_code("") == 1  # crc32("") is 0


def test_a_sequenced_id_is_unique_and_found_after_a_restart(database_url: str, schema: str) -> None:
    first, second = sequenced_id_min + 5, sequenced_id_min + 6

    async def run() -> None:
        ledger = await Ledger.open(database_url, schema=schema, transfers_cached_max=1)
        try:
            assert await ledger.create_accounts(STANDARD_ACCOUNTS) == []
            assert (await ledger.commit([t(first), t(second)], journal_seq=1)).results == []
        finally:
            await ledger.close()
        # A new writer: nothing in memory but what PostgreSQL says.
        ledger = await Ledger.open(database_url, schema=schema, transfers_cached_max=1)
        try:
            again = await ledger.commit([t(first), t(second, amount=11)], journal_seq=2)
            assert again.results == [
                (0, TransferResult.exists),
                (1, TransferResult.exists_with_different_fields),
            ]
            # Below the largest stored: looked for, not found, booked.
            assert (await ledger.commit([t(sequenced_id_min + 1)], journal_seq=3)).results == []
            found = await ledger.lookup_transfers([second, first, sequenced_id_min + 99])
            assert [r.id for r in found] == [second, first]
            assert (await ledger.verify()).ok
        finally:
            await ledger.close()

    asyncio.run(run())
    with psycopg.connect(database_url) as conn:
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'transfers'",
            (schema,),
        ).fetchall()
        stored_max = conn.execute(
            sql.SQL("SELECT value FROM {}.meta WHERE key = 'sequenced_id_max'").format(
                sql.Identifier(schema)
            )
        ).fetchone()
    unique = [d for (d,) in indexes if "UNIQUE" in d]
    assert len(unique) == 1 and "80000000-0000-0000-0000-000000000000" in unique[0]
    assert stored_max == (str(second),)


def test_verify_names_a_sequenced_id_a_faulty_writer_stored_twice(
    database_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> tuple[bool, str | None, int | None]:
        ledger = await Ledger.open(database_url, schema=schema, transfers_cached_max=1)
        try:
            assert await ledger.create_accounts(STANDARD_ACCOUNTS) == []
            await ledger.commit([t(sequenced_id_min + 7)], journal_seq=1)
            await ledger.commit([t(sequenced_id_min + 8)], journal_seq=2)
            # The writer forgets to look its sequenced ids up: the repeat is stored and chained.
            monkeypatch.setattr(ledger, "_sequenced_id_max", 0)
            await ledger.commit([t(sequenced_id_min + 7, amount=3)], journal_seq=3)
            report = await ledger.verify()
            return report.ok, report.problem, report.first_bad_link
        finally:
            await ledger.close()

    assert asyncio.run(run()) == (False, "sequenced_id_repeated", 3)


def test_a_version_1_schema_opens_as_version_2_with_what_it_held(
    database_url: str, schema: str
) -> None:
    ids = [3, sequenced_id_min + 40, sequenced_id_min + 41]

    async def book() -> None:
        ledger = await Ledger.open(database_url, schema=schema)
        try:
            assert await ledger.create_accounts(STANDARD_ACCOUNTS) == []
            await ledger.commit([t(i) for i in ids], journal_seq=1)
        finally:
            await ledger.close()

    asyncio.run(book())
    # Back to version 1's shape: every id in the primary key, the BRIN on (position,
    # journal_seq), no record of the largest sequenced id.
    s = sql.Identifier(schema)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in (
            "DROP INDEX {s}.transfers_client_id",
            "DROP INDEX {s}.transfers_id_position_journal_seq",
            "ALTER TABLE {s}.transfers ADD PRIMARY KEY (id)",
            "CREATE INDEX transfers_position_journal_seq ON {s}.transfers"
            " USING brin (position, journal_seq)",
            "DELETE FROM {s}.meta WHERE key = 'sequenced_id_max'",
            "UPDATE {s}.meta SET value = '1' WHERE key = 'schema_version'",
        ):
            conn.execute(sql.SQL(statement).format(s=s))

    async def reopen() -> list[tuple[int, TransferResult]]:
        ledger = await Ledger.open(database_url, schema=schema, transfers_cached_max=1)
        try:
            assert (await ledger.verify()).ok
            return (await ledger.commit([t(i) for i in ids], journal_seq=2)).results
        finally:
            await ledger.close()

    assert asyncio.run(reopen()) == [(k, TransferResult.exists) for k in range(3)]
    with psycopg.connect(database_url) as conn:
        meta = dict(conn.execute(sql.SQL("SELECT key, value FROM {}.meta").format(s)).fetchall())
        constraints = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = to_regclass(%s)"
            " AND contype IN ('p', 'u')",
            (f"{schema}.transfers",),
        ).fetchone()
    assert meta["schema_version"] == "2" and meta["sequenced_id_max"] == str(ids[-1])
    assert constraints == (0,)


# -- THE COMPILED LOOPS --

U64 = st.integers(0, (1 << 64) - 1)


@st.composite
def columns(draw: st.DrawFn) -> np.ndarray:
    count = draw(st.integers(0, 40))
    rows = np.zeros(count, dtype=COLUMNS_DTYPE)
    for name in COLUMNS_DTYPE.names:
        kind = COLUMNS_DTYPE[name]
        values = draw(st.lists(U64, min_size=count, max_size=count))
        rows[name] = np.array(values, dtype=np.uint64).view(kind)
    return rows


@settings(max_examples=200, deadline=None)
@given(rows=columns(), first=st.integers(1, 1 << 62), seed=st.integers(0, 1 << 32))
def test_compiled_copy_rows_are_the_reference_byte_for_byte(
    rows: np.ndarray, first: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    journal_seq = rng.integers(0, 1 << 63, len(rows), dtype=np.int64)
    ts_ns = rng.integers(0, 1 << 63, len(rows), dtype=np.int64)
    compiled = _fast.copy_rows(rows, first, journal_seq, ts_ns)
    assert bytes(compiled) == _fast.copy_rows_reference(rows, first, journal_seq, ts_ns)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_sums_and_running_check_are_the_references(data: st.DataObject) -> None:
    touched = data.draw(st.integers(2, 6))
    count = data.draw(st.integers(0, 30))
    sides = hnp.arrays(np.intp, count, elements=st.integers(0, touched - 1))
    debit_of = data.draw(sides)
    credit_of = (debit_of + data.draw(sides) % (touched - 1) + 1) % touched  # never the debit
    amount = data.draw(hnp.arrays(np.int64, count, elements=st.integers(1, 1 << 40)))
    bounds = hnp.arrays(np.int64, touched, elements=st.integers(-(1 << 45), 1 << 45))
    low, high = data.draw(bounds), data.draw(bounds)
    debits, credits = _kernels.account_sums(debit_of, credit_of, amount, touched)
    expected_debits, expected_credits = np.zeros(touched, np.int64), np.zeros(touched, np.int64)
    np.add.at(expected_debits, debit_of, amount)
    np.add.at(expected_credits, credit_of, amount)
    assert debits.tolist() == expected_debits.tolist()
    assert credits.tolist() == expected_credits.tolist()
    assert _kernels.running_within(debit_of, credit_of, amount, low, high) == (
        _fast.running_within(debit_of, credit_of, amount, low, high)
    )


def test_compiled_loops_refuse_indexes_outside_the_accounts() -> None:
    one = np.array([0], dtype=np.intp)
    outside = np.array([5], dtype=np.intp)
    amount = np.array([1], dtype=np.int64)
    bound = np.zeros(2, dtype=np.int64)
    with pytest.raises(IndexError):
        _kernels.account_sums(one, outside, amount, 2)
    with pytest.raises(IndexError):
        _kernels.running_within(outside, one, amount, bound, bound)
