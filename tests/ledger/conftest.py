"""Shared fixtures of the ledger tests: a private schema per test.

Goal: every ledger test runs on real PostgreSQL without meeting another test. Method: the
session's server (``database_url`` in tests/conftest.py) and a fresh schema per test (cheaper
than a database per test), dropped afterwards. The standard accounts the scenarios and the
state machine share are in tests/ledger/ledger_fixtures.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ledger.ledger_fixtures import drop_schema, new_schema


@pytest.fixture
def schema(database_url: str) -> Iterator[str]:
    """A schema name unique to this test, dropped afterwards."""
    name = new_schema()
    yield name
    drop_schema(database_url, name)


@pytest.fixture
def two_schemas(database_url: str) -> Iterator[tuple[str, str]]:
    """Two schema names unique to this test, dropped afterwards."""
    names = (new_schema(), new_schema())
    yield names
    for name in names:
        drop_schema(database_url, name)
