"""Reading the ledger: balances (now and as of a journal sequence), transfers, accounts, the
chain. Any number of readers may be open beside the one writer (`ledger.ledger.Ledger`, which
reads through the same methods on its own connection).

Every read is one statement, so it sees one snapshot of the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from ledger import chain
from ledger._schema import CONNECT_OPTIONS, effects_sql, ids_in, q, split_ids
from ledger.model import Account, Balance, TransferRecord, account_id_max, transfer_id_max

DEFAULT_SCHEMA = "ledger"


def _in_transfer_id_range(value: int) -> bool:
    return 0 < value <= transfer_id_max


def _in_account_id_range(value: int) -> bool:
    return 0 < value <= account_id_max


def _record_of_row(row: Sequence[Any]) -> TransferRecord:
    """A TransferRecord from a row of ``chain.TRANSFER_COLUMNS``."""
    return TransferRecord(
        position=row[0],
        id=row[1].int,
        debit_account_id=row[2],
        credit_account_id=row[3],
        amount_minor=row[4],
        pending_id=row[5].int if row[5] is not None else 0,
        ledger=row[6],
        code=row[7],
        flags=row[8],
        user_data_1=row[9],
        user_data_2=row[10],
        journal_seq=row[11],
        ts_ns=row[12],
    )


def _balance(row: Sequence[Any]) -> Balance:
    return Balance(
        debits_posted=int(row[0]),
        credits_posted=int(row[1]),
        debits_pending=int(row[2]),
        credits_pending=int(row[3]),
    )


class LedgerReader:
    """Reads of one ledger schema over one connection; open with `LedgerReader.open`.

    Reads serialize on a lock: the writer shares it, so that no read runs inside one of its
    transactions on the same connection.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str) -> None:
        self._conn = conn
        self._schema = schema
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, database_url: str, *, schema: str = DEFAULT_SCHEMA) -> LedgerReader:
        """Connect to an existing ledger schema (the writer creates it)."""
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, options=CONNECT_OPTIONS
        )
        return cls(conn, schema)

    async def close(self) -> None:
        await self._conn.close()

    async def _fetch(self, template: str, params: Any = None) -> list[Any]:
        async with self._lock:
            cur = await self._conn.execute(q(template, self._schema), params)
            return await cur.fetchall()

    async def balances(self, account_ids: Iterable[int]) -> dict[int, Balance]:
        """Current posted and pending sums of the accounts that exist. O(accounts asked)."""
        ids = [i for i in set(account_ids) if _in_account_id_range(i)]
        rows = await self._fetch(
            "SELECT id, debits_posted, credits_posted, debits_pending, credits_pending"
            " FROM {schema}.accounts WHERE id = ANY(%s::bigint[])",
            (ids,),
        )
        return {r[0]: _balance(r[1:]) for r in rows}

    async def balances_as_of(
        self, account_ids: Iterable[int], journal_seq: int
    ) -> dict[int, Balance]:
        """The sums as they were after every commit of journal sequence <= `journal_seq`.

        The current sums minus the effects of the later transfers, in one statement (one
        snapshot). O(transfers after `journal_seq`) through the BRIN index. Accounts created
        later show zeros.
        """
        ids = [i for i in set(account_ids) if _in_account_id_range(i)]
        rows = await self._fetch(
            _AS_OF.replace("{accounts}", "a.id = ANY(%(ids)s::bigint[])").replace(
                "{touching}",
                " AND (t.debit_account_id = ANY(%(ids)s::bigint[])"
                " OR t.credit_account_id = ANY(%(ids)s::bigint[]))",
            ),
            {"seq": journal_seq, "ids": ids},
        )
        return {r[0]: _balance(r[1:5]) for r in rows}

    async def nonzero_accounts(self, journal_seq: int) -> list[tuple[Account, Balance]]:
        """Every account with a posted or pending sum as of `journal_seq`, in id order."""
        rows = await self._fetch(
            _AS_OF.replace("{accounts}", "true").replace("{touching}", "") + " ORDER BY a.id",
            {"seq": journal_seq},
        )
        return [
            (Account(id=r[0], ledger=r[5], owner_id=r[6], purpose=r[7], flags=r[8]), b)
            for r in rows
            if (b := _balance(r[1:5])) != Balance()
        ]

    async def net_by_asset(self) -> dict[int, int]:
        """Per ledger (asset), the sum of every account's posted credits minus debits: zero in
        an honest ledger, since every transfer debits and credits the same ledger."""
        rows = await self._fetch(
            "SELECT ledger, sum(credits_posted - debits_posted) FROM {schema}.accounts"
            " GROUP BY ledger ORDER BY ledger"
        )
        return {r[0]: int(r[1]) for r in rows}

    async def journal_seq_booked(self) -> int:
        """The journal sequence of the newest commit (0 before the first)."""
        rows = await self._fetch("SELECT coalesce(max(journal_seq), 0) FROM {schema}.chain")
        return int(rows[0][0])

    async def lookup_transfers(self, ids: Iterable[int]) -> list[TransferRecord]:
        """The stored transfers with these ids, in the order asked; unknown ids are left out."""
        asked = list(ids)
        client, sequenced = split_ids(i for i in set(asked) if _in_transfer_id_range(i))
        rows = await self._fetch(
            f"SELECT {chain.TRANSFER_COLUMNS} FROM {{schema}}.transfers"
            f" WHERE {ids_in('id', '%(client)s', '%(sequenced)s')}",
            {"client": client, "sequenced": sequenced},
        )
        found = {r.id: r for r in map(_record_of_row, rows)}
        return [found[i] for i in asked if i in found]

    async def lookup_accounts(self, ids: Iterable[int]) -> list[Account]:
        """The accounts with these ids, in the order asked; unknown ids are left out."""
        asked = list(ids)
        rows = await self._fetch(
            "SELECT id, ledger, owner_id, purpose, flags FROM {schema}.accounts"
            " WHERE id = ANY(%s::bigint[])",
            ([i for i in set(asked) if _in_account_id_range(i)],),
        )
        found = {
            r[0]: Account(id=r[0], ledger=r[1], owner_id=r[2], purpose=r[3], flags=r[4])
            for r in rows
        }
        return [found[i] for i in asked if i in found]

    async def verify(self) -> chain.ChainReport:
        """Recompute the hash chain and check balances against transfers (`ledger.chain`)."""
        async with self._lock:
            return await chain.verify(self._conn, self._schema)


# Balances as of %(seq)s: the current sums minus the effects of later transfers. {accounts}
# picks the accounts; {touching} narrows the later transfers to theirs (or is empty).
_AS_OF = (
    "WITH e AS ("
    + effects_sql("{schema}", "t.journal_seq > %(seq)s{touching}")
    + "), s AS (SELECT account_id, sum(dp) AS dp, sum(cp) AS cp, sum(dpe) AS dpe,"
    " sum(cpe) AS cpe FROM e GROUP BY account_id)"
    " SELECT a.id, a.debits_posted - coalesce(s.dp, 0), a.credits_posted - coalesce(s.cp, 0),"
    " a.debits_pending - coalesce(s.dpe, 0), a.credits_pending - coalesce(s.cpe, 0),"
    " a.ledger, a.owner_id, a.purpose, a.flags"
    " FROM {schema}.accounts a LEFT JOIN s ON s.account_id = a.id WHERE {accounts}"
)


__all__ = ["DEFAULT_SCHEMA", "LedgerReader"]
