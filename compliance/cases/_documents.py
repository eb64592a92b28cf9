"""Where case documents' bytes live, behind a small interface.

`RecordDocumentStore` keeps them as encrypted compliance records (`compliance.records`), which
is what a running exchange uses; `PgDocumentStore` keeps them in a plain table of ours (tests,
and a deployment without a records key ring). The case keeps each document's SHA-256 and size
itself, and checks them on every read, whatever the store.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Protocol

import psycopg

from compliance.records import RecordNotFound, RecordStore


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


class RecordDocumentStore:
    """Case documents as compliance records: encrypted at rest, checksummed on every read,
    retained per jurisdiction (`compliance.records.RecordStore`). The reference is the record
    id; the case service records who read which document, the record store's access log that
    the case service did.
    """

    record_type = "case_document"

    def __init__(self, records: RecordStore, jurisdiction: str) -> None:
        self._records = records
        self._jurisdiction = jurisdiction

    async def put(self, content: bytes) -> str:
        record_id = await self._records.put(
            self.record_type, self._jurisdiction, "case", content, "compliance.cases"
        )
        return str(record_id)

    async def get(self, ref: str) -> bytes | None:
        if not ref.isdigit():
            return None
        try:
            return await self._records.get(int(ref), "compliance.cases", "case document read")
        except RecordNotFound:
            return None
