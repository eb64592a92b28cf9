"""The records command line (python -m compliance.records).

Goal: ``verify`` exits 0 on an intact chain and prints its head, 1 on a broken one naming the
first bad seq and why, 2 on input it cannot use (no URL, unreachable database, no audit log,
malformed anchor), and reads DATABASE_URL; the key commands create a key ring, rotate it (an
audited admin action), re-encrypt and purge. Method: `main` called in-process with capsys
against a real PostgreSQL database per test; tampering committed as the superuser with
triggers disabled.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from compliance.records import (
    KEY_RING_FILE,
    MASTER_KEY_ENV,
    RecordStore,
    append_audit,
    ensure_schema,
    load_key_ring,
    load_master_key,
)
from compliance.records.__main__ import main


def _append_rows(url: str, count: int) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await ensure_schema(conn)
            for n in range(count):
                async with conn.transaction():
                    await append_audit(conn, "system", "probe", None, {"n": n}, "ok")

    asyncio.run(run())


def test_verify_exit_codes_and_output(
    pg_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["verify"]) == 2
    assert "DATABASE_URL" in capsys.readouterr().err
    assert main(["verify", "--database-url", pg_database]) == 2  # no audit_log table yet
    assert "audit_log" in capsys.readouterr().err
    assert main(["verify", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    assert "error: database" in capsys.readouterr().err

    _append_rows(pg_database, 4)
    monkeypatch.setenv("DATABASE_URL", pg_database)
    assert main(["verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] and report["head_seq"] == 4 and report["first_break"] is None
    anchor = f"4:{report['head_hash']}"
    assert main(["verify", "--anchor", anchor]) == 0
    assert f"intact: 4 rows; head {anchor}" in capsys.readouterr().out
    for bad in ("4", "x:00", "4:abcd", f"-1:{report['head_hash']}"):
        assert main(["verify", f"--anchor={bad}"]) == 2
        assert "anchor" in capsys.readouterr().err

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE audit_log SET outcome = 'rejected' WHERE id = 3")
        conn.execute("DELETE FROM audit_log WHERE id = 4")
    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "broken at seq 3: hash_must_match_row_contents" in out
    assert main(["verify", "--json"]) == 1
    broken = json.loads(capsys.readouterr().out)
    assert broken["first_break"]["seq"] == 3 and broken["head_seq"] == 2
    # The same through the real entry point, as an operator runs it.
    command = [sys.executable, "-m", "compliance.records", "verify", "--database-url", pg_database]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 1 and "broken at seq 3" in finished.stdout


def test_key_commands_rotate_reencrypt_and_purge(
    pg_database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_database)
    records_dir = tmp_path / "records"
    assert main(["new-key", "--records-dir", str(records_dir)]) == 2  # nothing yet
    assert "no master key" in capsys.readouterr().err
    assert main(["init-keys", "--records-dir", str(records_dir)]) == 0
    assert main(["init-keys", "--records-dir", str(records_dir)]) == 2  # never overwrites
    assert "exists" in capsys.readouterr().err
    master = load_master_key(records_dir, environ={})
    ring = load_key_ring(records_dir / KEY_RING_FILE, master)

    async def store_two() -> list[int]:
        async with await psycopg.AsyncConnection.connect(pg_database, autocommit=True) as conn:
            await ensure_schema(conn)
        store = await RecordStore.open(pg_database, ring)
        try:
            old = await store.put("kyc", "FR", "c:1", b"old", "svc", retention_start=None)
            expired = await store.put(
                "kyc", "FR", "c:1", b"expired", "svc", retention_start=date(2001, 1, 1)
            )
            return [old, expired]
        finally:
            await store.close()

    old, expired = asyncio.run(store_two())
    assert main(["new-key", "--records-dir", str(records_dir)]) == 0
    assert "key 2 is current" in capsys.readouterr().out
    assert main(["reencrypt", "--records-dir", str(records_dir)]) == 0
    assert "re-encrypted 2 records under key 2" in capsys.readouterr().out
    assert main(["purge", "--records-dir", str(records_dir), "--now", "yesterday"]) == 2
    assert main(["purge", "--records-dir", str(records_dir), "--now", "2020-01-01"]) == 2
    assert "timezone-aware" in capsys.readouterr().err
    assert main(["purge", "--records-dir", str(records_dir), "--now", "2020-01-01T00:00Z"]) == 0
    assert "purged 1 records" in capsys.readouterr().out

    with psycopg.connect(pg_database) as conn:
        keys = conn.execute("SELECT id, key_id FROM compliance_records").fetchall()
        actions = conn.execute("SELECT action, target FROM audit_log ORDER BY id").fetchall()
    assert keys == [(old, 2)]
    assert ("records_key_added", "key:2") in actions
    assert ("record_purged", f"record:{expired}") in actions
    assert main(["verify"]) == 0

    # A master key from the environment that is not the ring's: a clear refusal.
    monkeypatch.setenv(MASTER_KEY_ENV, "00" * 32)
    assert main(["reencrypt", "--records-dir", str(records_dir)]) == 2
    err = capsys.readouterr().err
    assert "does not decrypt" in err and master.hex() not in err
