"""Where case documents' bytes live, behind a small interface.

`PgDocumentStore` keeps them in a table of ours for now; the encrypted record store
(`compliance.records.RecordStore`) will replace it behind the same two calls. The case keeps
each document's SHA-256 and size itself, and checks them on every read, whatever the store.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Protocol

import psycopg


class DocumentStore(Protocol):
    """Keeps document bytes; knows nothing of cases."""

    async def put(self, content: bytes) -> str:
        """Store `content`; return the reference to read it back with."""
        ...

    async def get(self, ref: str) -> bytes | None:
        """The bytes stored under `ref`, or None if there are none."""
        ...


class PgDocumentStore:
    """Document bytes in ``cases.document_bytes``, addressed by their SHA-256 (a document added
    twice is stored once). The table is created by `compliance.cases.ensure_schema`.
    One connection, one call at a time."""

    def __init__(self, database_url: str, conn: psycopg.AsyncConnection[Any]) -> None:
        self._database_url = database_url
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, database_url: str) -> PgDocumentStore:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        return cls(database_url, conn)

    async def close(self) -> None:
        await self._conn.close()

    async def put(self, content: bytes) -> str:
        ref = "sha256:" + hashlib.sha256(content).hexdigest()
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO cases.document_bytes (ref, content) VALUES (%s, %s)"
                " ON CONFLICT (ref) DO NOTHING",
                (ref, content),
            )
        return ref

    async def get(self, ref: str) -> bytes | None:
        async with self._lock:
            cursor = await self._conn.execute(
                "SELECT content FROM cases.document_bytes WHERE ref = %s", (ref,)
            )
            row = await cursor.fetchone()
        return None if row is None else bytes(row[0])
