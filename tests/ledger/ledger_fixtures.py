"""What the ledger tests share: the standard accounts, and private schemas on real PostgreSQL.

The fixture lives in conftest.py; tests import these names from here (not from conftest, which
pytest imports under a name of its own).
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from ledger import Account, AccountFlags, Purpose, account_id_for

USDT, BTC = 1, 2
DEBITS_LIMITED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
CREDITS_LIMITED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)


def account(owner: int, asset: int, purpose: Purpose, flags: int = 0) -> Account:
    return Account(
        id=account_id_for(owner, asset, purpose),
        ledger=asset,
        owner_id=owner,
        purpose=purpose,
        flags=flags,
    )


# Per asset: the house omnibus (unprotected: the outside world's side), two customers whose
# debits may not exceed their credits, a suspense account whose credits may not exceed its
# debits, and an unprotected fees account.
def standard_accounts(asset: int) -> list[Account]:
    return [
        account(0, asset, Purpose.CUSTODY_OMNIBUS),
        account(10, asset, Purpose.AVAILABLE, DEBITS_LIMITED),
        account(11, asset, Purpose.AVAILABLE, DEBITS_LIMITED),
        account(0, asset, Purpose.SUSPENSE, CREDITS_LIMITED),
        account(0, asset, Purpose.FEES),
    ]


STANDARD_ACCOUNTS = standard_accounts(USDT) + standard_accounts(BTC)


def new_schema() -> str:
    return "ledger_" + uuid.uuid4().hex[:12]


def drop_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
