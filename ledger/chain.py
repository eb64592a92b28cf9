"""The ledger's hash chain: one link per commit, so that a changed, missing or added row shows.

Link k's hash is SHA-256 over, in this order:

1. link k-1's hash (32 zero bytes for the first link);
2. the header ``>qqqii``: commit_no, journal_seq, first_position, transfers_count, failed_count;
3. each transfer of the commit in position order, as its PostgreSQL binary COPY tuple (field
   count, then each field's length and big-endian bytes; a NULL pending_id is length -1) over
   the columns of ``transfers`` in table order: position, id, debit_account_id,
   credit_account_id, amount_minor, pending_id, ledger, code, flags, user_data_1, user_data_2,
   journal_seq, ts_ns. These are the very bytes the commit COPYs into the table;
4. each id the commit refused, in input order, as the tuple ``(id uuid, result integer)``;
5. the event id: ``>i`` length then UTF-8 bytes, or ``>i`` -1 when the commit had none.

`verify` recomputes every link from the tables and names the first one that differs; it also
checks that every account's balances equal the sums of its transfers. The chain shows changes
made by anyone who cannot also rewrite every later link: to guard against that, anchor the head
hash (`ChainReport.head_hash`) somewhere else now and then.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from typing import Any

import msgspec
import psycopg

from ledger._schema import effects_sql, q

GENESIS = bytes(32)
# The binary COPY file header (signature, flags, no extension) and trailer.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"
# Transfer tuples: without and with a pending_id. Arguments in order: 13, 8, position, 16, id
# (16 bytes), 8, debit, 8, credit, 8, amount, [16, pending_id (16 bytes) | -1], 4, ledger, 4,
# code, 4, flags, 8, user_data_1, 8, user_data_2, 8, journal_seq, 8, ts_ns.
ROW = struct.Struct(">h" + "iq" + "i16s" + "iq" * 3 + "i" + "ii" * 3 + "iq" * 4)
ROW_PENDING = struct.Struct(">hiqi16siqiqiqi16siiiiiiiqiqiqiq")
FAILED_ROW = struct.Struct(">hi16sii")
LINK_HEADER = struct.Struct(">qqqii")
EVENT_LENGTH = struct.Struct(">i")
TRANSFER_COLUMNS = (
    "position, id, debit_account_id, credit_account_id, amount_minor, pending_id, ledger, code,"
    " flags, user_data_1, user_data_2, journal_seq, ts_ns"
)


def transfer_tuple(
    position: int,
    id: int,
    debit_account_id: int,
    credit_account_id: int,
    amount_minor: int,
    pending_id: int,
    ledger: int,
    code: int,
    flags: int,
    user_data_1: int,
    user_data_2: int,
    journal_seq: int,
    ts_ns: int,
) -> bytes:
    """The canonical bytes of one stored transfer (pending_id 0: none)."""
    if pending_id:
        return ROW_PENDING.pack(
            13, 8, position, 16, id.to_bytes(16, "big"), 8, debit_account_id,
            8, credit_account_id, 8, amount_minor, 16, pending_id.to_bytes(16, "big"),
            4, ledger, 4, code, 4, flags, 8, user_data_1, 8, user_data_2, 8, journal_seq,
            8, ts_ns,
        )  # fmt: skip
    return ROW.pack(
        13, 8, position, 16, id.to_bytes(16, "big"), 8, debit_account_id,
        8, credit_account_id, 8, amount_minor, -1,
        4, ledger, 4, code, 4, flags, 8, user_data_1, 8, user_data_2, 8, journal_seq,
        8, ts_ns,
    )  # fmt: skip


def failed_tuple(id: int, result: int) -> bytes:
    """The canonical bytes of one refused id."""
    return FAILED_ROW.pack(2, 16, id.to_bytes(16, "big"), 4, result)


def event_bytes(event_id: str | None) -> bytes:
    if event_id is None:
        return EVENT_LENGTH.pack(-1)
    data = event_id.encode()
    return EVENT_LENGTH.pack(len(data)) + data


def link_header(
    commit_no: int, journal_seq: int, first_position: int, transfers_count: int, failed_count: int
) -> bytes:
    return LINK_HEADER.pack(commit_no, journal_seq, first_position, transfers_count, failed_count)


class ChainReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `verify` found.

    `problem` names the first thing wrong, or is None: ``link_missing`` (a commit number
    skipped), ``transfers_missing`` (a link's positions are not all there, or not in order),
    ``transfer_not_in_chain`` (a second row at a position the link covers: a row added),
    ``failed_ids_missing``, ``failed_id_not_in_chain`` (a refused id beyond its link's count),
    ``hash_mismatch`` (a row of the link, or the link, was changed), ``rows_beyond_chain``
    (transfers or refused ids after the last link: `first_bad_link` is the link they would
    need, one past the last), ``sequenced_id_repeated`` (two transfers share a sequenced id,
    whose uniqueness the writer keeps rather than an index: `first_bad_link` covers the
    second), ``balances_mismatch`` (an account's balances are not the sums of its transfers:
    `first_bad_account_id`).
    """

    ok: bool
    links_checked: int
    transfers_checked: int
    first_bad_link: int | None = None  # the commit_no of the first link that does not verify
    first_bad_account_id: int | None = None
    problem: str | None = None
    head_hash: str = GENESIS.hex()  # the last link's hash (hex), to anchor elsewhere


class _Rows:
    """A server-side cursor read in large batches, one row at a time."""

    def __init__(self, cursor: psycopg.AsyncServerCursor[Any]) -> None:
        self._cursor = cursor
        self._rows: list[Any] = []
        self._next = 0
        self._done = False

    async def next(self) -> Any | None:
        if self._next == len(self._rows):
            if self._done:
                return None
            self._rows = await self._cursor.fetchmany(20_000)
            self._next = 0
            if not self._rows:
                self._done = True
                return None
        row = self._rows[self._next]
        self._next += 1
        return row


async def verify(conn: psycopg.AsyncConnection[Any], schema: str) -> ChainReport:
    """Recompute every link of `schema`'s chain and check balances against transfers.

    Runs in one read-only repeatable-read transaction, so it sees one consistent state even
    while a writer commits. Time O(transfers), memory O(1) (rows are streamed).
    """
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return await _verify(conn, schema)


async def _verify(conn: psycopg.AsyncConnection[Any], schema: str) -> ChainReport:
    links_cur = conn.cursor(name="ledger_verify_links")
    transfers_cur = conn.cursor(name="ledger_verify_transfers")
    failed_cur = conn.cursor(name="ledger_verify_failed")
    try:
        return await _verify_rows(conn, schema, links_cur, transfers_cur, failed_cur)
    finally:
        for cur in (links_cur, transfers_cur, failed_cur):
            # In a failed transaction CLOSE fails too; the error that matters is the first.
            with contextlib.suppress(psycopg.Error):
                await cur.close()


async def _verify_rows(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    links_cur: psycopg.AsyncServerCursor[Any],
    transfers_cur: psycopg.AsyncServerCursor[Any],
    failed_cur: psycopg.AsyncServerCursor[Any],
) -> ChainReport:
    await links_cur.execute(
        q(
            "SELECT commit_no, journal_seq, first_position, transfers_count, failed_count,"
            " event_id, hash FROM {schema}.chain ORDER BY commit_no",
            schema,
        )
    )
    # Ties on position (a row added behind the ledger's back) come out next to each other, so
    # the duplicate shows at the link that covers its position (or the one right after).
    await transfers_cur.execute(
        q(f"SELECT {TRANSFER_COLUMNS} FROM {{schema}}.transfers ORDER BY position, id", schema)
    )
    await failed_cur.execute(
        q(
            "SELECT id, result, commit_no FROM {schema}.failed_transfers"
            " ORDER BY commit_no, index_in_commit, id",
            schema,
        )
    )
    links, transfers, failed = _Rows(links_cur), _Rows(transfers_cur), _Rows(failed_cur)
    prev = GENESIS
    links_checked = transfers_checked = 0
    expected_commit_no = expected_position = 1

    def bad(problem: str, link: int | None) -> ChainReport:
        return ChainReport(
            ok=False,
            links_checked=links_checked,
            transfers_checked=transfers_checked,
            first_bad_link=link,
            problem=problem,
            head_hash=prev.hex(),
        )

    while (link := await links.next()) is not None:
        commit_no, journal_seq, first_position, transfers_count, failed_count, event_id, hash_ = (
            link
        )
        if commit_no != expected_commit_no:
            return bad("link_missing", expected_commit_no)
        if first_position != expected_position:
            return bad("transfers_missing", commit_no)
        digest = hashlib.sha256(prev)
        digest.update(
            link_header(commit_no, journal_seq, first_position, transfers_count, failed_count)
        )
        for _ in range(transfers_count):
            row = await transfers.next()
            if row is not None and row[0] < expected_position:
                # A second row at a position already hashed: the link covering it is this one,
                # or the one before when that position was the previous link's last.
                covering = commit_no if row[0] >= first_position else commit_no - 1
                return bad("transfer_not_in_chain", covering)
            if row is None or row[0] != expected_position:
                return bad("transfers_missing", commit_no)
            (position, id_, debit, credit, amount, pending, ledger, code, flags, ud1, ud2) = row[
                :11
            ]
            digest.update(
                transfer_tuple(
                    position, id_.int, debit, credit, amount, pending.int if pending else 0,
                    ledger, code, flags, ud1, ud2, row[11], row[12],
                )
            )  # fmt: skip
            expected_position += 1
            transfers_checked += 1
        for _ in range(failed_count):
            frow = await failed.next()
            if frow is not None and frow[2] < commit_no:
                return bad("failed_id_not_in_chain", frow[2])
            if frow is None or frow[2] != commit_no:
                return bad("failed_ids_missing", commit_no)
            digest.update(failed_tuple(frow[0].int, frow[1]))
        digest.update(event_bytes(event_id))
        if digest.digest() != bytes(hash_):
            return bad("hash_mismatch", commit_no)
        prev = bytes(hash_)
        links_checked += 1
        expected_commit_no += 1
    last = expected_commit_no - 1
    row = await transfers.next()
    if row is not None:
        if row[0] < expected_position:
            return bad("transfer_not_in_chain", last)
        return bad("rows_beyond_chain", last + 1)
    frow = await failed.next()
    if frow is not None:
        if frow[2] <= last:
            return bad("failed_id_not_in_chain", frow[2])
        return bad("rows_beyond_chain", last + 1)
    repeated_at = await _first_repeated_sequenced_id(conn, schema)
    if repeated_at is not None:
        return bad("sequenced_id_repeated", repeated_at)
    account_id = await _first_unbalanced_account(conn, schema)
    if account_id is not None:
        report = bad("balances_mismatch", None)
        return msgspec.structs.replace(report, first_bad_account_id=account_id)
    return ChainReport(
        ok=True,
        links_checked=links_checked,
        transfers_checked=transfers_checked,
        head_hash=prev.hex(),
    )


async def _first_repeated_sequenced_id(
    conn: psycopg.AsyncConnection[Any], schema: str
) -> int | None:
    """The commit_no of the link holding the first transfer (by position) whose sequenced id
    a transfer before it has. O(sequenced transfers log them): one sort."""
    cur = await conn.execute(
        q(
            "SELECT c.commit_no FROM {schema}.chain c, (SELECT min(position) AS position FROM"
            " (SELECT position, id = lag(id) OVER (ORDER BY id, position) AS again"
            " FROM {schema}.transfers WHERE id >= {sequenced_id_min}) r WHERE again) d"
            " WHERE d.position >= c.first_position"
            " AND d.position < c.first_position + c.transfers_count",
            schema,
        )
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def _first_unbalanced_account(conn: psycopg.AsyncConnection[Any], schema: str) -> int | None:
    """The smallest account id whose stored balances differ from its transfers' sums."""
    text = (
        "WITH e AS (" + effects_sql(schema, "true") + "),"
        " s AS (SELECT account_id, sum(dp) AS dp, sum(cp) AS cp, sum(dpe) AS dpe,"
        " sum(cpe) AS cpe FROM e GROUP BY account_id)"
        " SELECT coalesce(a.id, s.account_id) FROM {schema}.accounts a"
        " FULL JOIN s ON s.account_id = a.id"
        " WHERE a.id IS NULL OR (a.debits_posted, a.credits_posted, a.debits_pending,"
        " a.credits_pending) IS DISTINCT FROM (coalesce(s.dp, 0), coalesce(s.cp, 0),"
        " coalesce(s.dpe, 0), coalesce(s.cpe, 0))"
        " ORDER BY 1 LIMIT 1"
    )
    cur = await conn.execute(q(text, schema))
    row = await cur.fetchone()
    return None if row is None else int(row[0])


__all__ = ["ChainReport", "transfer_tuple", "verify"]
