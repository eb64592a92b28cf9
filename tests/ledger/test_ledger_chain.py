"""The hash chain: an honest ledger verifies; a row changed behind its back is named.

Goal: `Ledger.verify` (and ``python -m ledger verify``) passes on a ledger only the ledger wrote,
and after any UPDATE, DELETE or INSERT on its tables names the first link that no longer holds
(or the account whose balances no longer sum its transfers); the command's exit codes say
intact (0), broken (1) or unusable input (2).
Method: four commits with transfers, a hold and its post, a refused id and an event id; then
one tampering per test through a plain connection, as an intruder with SQL access would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import sql

from engine._codes import TransferResult
from ledger import ChainReport, Ledger, Transfer, TransferFlags
from ledger.cli import EXIT_BROKEN, EXIT_INTACT, EXIT_UNUSABLE, main
from tests.ledger.ledger_fixtures import STANDARD_ACCOUNTS, USDT

H, A, B = (a.id for a in STANDARD_ACCOUNTS[:3])
PENDING = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING)


def t(id: int, debit: int, credit: int, amount: int, flags: int = 0) -> Transfer:
    return Transfer(id=id, debit_account_id=debit, credit_account_id=credit,
                    amount_minor=amount, ledger=USDT, code=1, flags=flags)  # fmt: skip


# Links 1-4. Positions: link 1 holds 1; link 2 holds 2-3 and refused id 4; link 3 holds 4-5;
# link 4 holds 6.
COMMITS = [
    ([t(1, H, A, 1_000)], "ev:1"),
    ([t(2, A, B, 100, PENDING), t(3, A, B, 10), t(4, A, B, 1_000_000)], None),
    ([Transfer(id=5, pending_id=2, amount_minor=60, flags=POST), t(6, A, B, 5)], "ev:3"),
    ([t(7, B, A, 1)], None),
]


def build(database_url: str, schema: str) -> None:
    async def run() -> None:
        ledger = await Ledger.open(database_url, schema=schema)
        try:
            assert await ledger.create_accounts(STANDARD_ACCOUNTS) == []
            for seq, (transfers, event_id) in enumerate(COMMITS, start=1):
                await ledger.commit(transfers, journal_seq=seq, event_id=event_id, ts_ns=seq)
            report = await ledger.verify()
            assert report.ok and (report.links_checked, report.transfers_checked) == (4, 6)
        finally:
            await ledger.close()

    asyncio.run(run())


def verify(database_url: str, schema: str) -> tuple[int, ChainReport]:
    """The command's exit code (its JSON is printed), and the report of a new Ledger."""

    async def run() -> ChainReport:
        ledger = await Ledger.open(database_url, schema=schema)
        try:
            return await ledger.verify()
        finally:
            await ledger.close()

    report = asyncio.run(run())
    code = main(["verify", "--database-url", database_url, "--schema", schema, "--json"])
    return code, report


def tamper(database_url: str, schema: str, statement: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)))


def u(value: int) -> str:
    return f"'{uuid.UUID(int=value)}'::uuid"


COPY_ROW = (
    "INSERT INTO {{s}}.transfers SELECT {position}, {id}, debit_account_id, credit_account_id,"
    " amount_minor, pending_id, ledger, code, flags, user_data_1, user_data_2, journal_seq, ts_ns"
    " FROM {{s}}.transfers WHERE position = {source}"
)

# name: (statement, problem, first bad link)
TAMPERINGS = {
    "update_amount": (
        f"UPDATE {{s}}.transfers SET amount_minor = amount_minor + 1 WHERE id = {u(3)}",
        "hash_mismatch",
        2,
    ),
    "update_account_of_first_row": (
        f"UPDATE {{s}}.transfers SET credit_account_id = {B} WHERE id = {u(1)}",
        "hash_mismatch",
        1,
    ),
    "delete_last_row_of_link": (
        f"DELETE FROM {{s}}.transfers WHERE id = {u(3)}",
        "transfers_missing",
        2,
    ),
    "delete_first_row_of_link": (
        f"DELETE FROM {{s}}.transfers WHERE id = {u(5)}",
        "transfers_missing",
        3,
    ),
    "insert_after_the_last_link": (
        COPY_ROW.format(position=7, id=u(99), source=6),
        "rows_beyond_chain",
        5,
    ),
    "insert_at_a_covered_position": (
        COPY_ROW.format(position=3, id=u(99), source=3),
        "transfer_not_in_chain",
        2,
    ),
    "insert_sorting_first_at_a_covered_position": (
        COPY_ROW.format(position=4, id=u(0), source=4),
        "transfer_not_in_chain",
        3,
    ),
    "update_failed_result": (
        f"UPDATE {{s}}.failed_transfers SET result = {int(TransferResult.exceeds_debits)}",
        "hash_mismatch",
        2,
    ),
    "delete_failed": ("DELETE FROM {s}.failed_transfers", "failed_ids_missing", 2),
    "insert_failed": (
        f"INSERT INTO {{s}}.failed_transfers VALUES ({u(98)}, 5030, 3, 9)",
        "failed_id_not_in_chain",
        3,
    ),
    "update_event_id": (
        "UPDATE {s}.chain SET event_id = 'ev:2' WHERE commit_no = 1",
        "hash_mismatch",
        1,
    ),
    "delete_link": ("DELETE FROM {s}.chain WHERE commit_no = 2", "link_missing", 2),
}


def test_an_honest_ledger_verifies_by_method_and_by_command(
    database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    build(database_url, schema)
    code, report = verify(database_url, schema)
    assert code == EXIT_INTACT
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] and printed["links_checked"] == 4
    assert printed["head_hash"] == report.head_hash
    # The module runs as a command, too.
    command = [sys.executable, "-m", "ledger", "verify", "--database-url", database_url,
               "--schema", schema]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_INTACT, done.stderr
    assert done.stdout.startswith("intact: 4 links, 6 transfers")


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_a_row_changed_behind_the_ledger_names_the_first_bad_link(
    name: str, database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    statement, problem, link = TAMPERINGS[name]
    build(database_url, schema)
    capsys.readouterr()
    tamper(database_url, schema, statement)
    code, report = verify(database_url, schema)
    assert (report.ok, report.problem, report.first_bad_link) == (False, problem, link)
    assert code == EXIT_BROKEN
    printed = json.loads(capsys.readouterr().out)
    assert (printed["problem"], printed["first_bad_link"]) == (problem, link)


def test_balances_changed_behind_the_ledger_name_the_account(
    database_url: str, schema: str
) -> None:
    build(database_url, schema)
    tamper(database_url, schema, f"UPDATE {{s}}.accounts SET credits_posted = 5 WHERE id = {A}")
    code, report = verify(database_url, schema)
    assert (report.problem, report.first_bad_account_id) == ("balances_mismatch", A)
    assert code == EXIT_BROKEN


def test_the_command_says_when_it_cannot_verify(
    database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No ledger in that schema: nothing to verify, not "intact".
    assert main(["verify", "--database-url", database_url, "--schema", schema]) == EXIT_UNUSABLE
    unreachable = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    assert main(["verify", "--database-url", unreachable, "--json"]) == EXIT_UNUSABLE
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ok"] is False
    assert main(["verify"]) == EXIT_UNUSABLE  # no --database-url: argparse's usage error
