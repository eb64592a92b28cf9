"""Encrypted record storage (compliance.records.RecordStore) and its key ring.

Goal: a stored record reads back exactly, and only after the read is in the access log and the
audit chain; a ciphertext moved to another row, a changed checksum or an unknown key is a clear
error naming the record, audited, and never returns data; key rotation keeps every payload
readable and `rotate` moves them all to the current key; the key ring file is useless without
its master key and refuses a master key file others can read; bad input changes nothing; a
stateful run of puts, reads, holds, rotations and purges keeps the store equal to a model.
Method: a real PostgreSQL database per test, Hypothesis examples sharing one store and event
loop, rows inspected and damaged with plain SQL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from compliance.records import (
    KEY_RING_FILE,
    MASTER_KEY_ENV,
    AccessOutcome,
    KeyRing,
    KeyRingError,
    RecordInputError,
    RecordIntegrityError,
    RecordNotFound,
    RecordStore,
    RetentionError,
    RetentionPolicy,
    create_master_key_file,
    ensure_schema,
    load_key_ring,
    load_master_key,
    save_key_ring,
    verify_chain,
)

POLICY = RetentionPolicy(years={("*", "CH"): 10, ("sar", "FR"): 7, ("kyc", "*"): 6})


class Harness:
    """One store on one event loop, for tests that drive it from synchronous Hypothesis code."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.admin: psycopg.AsyncConnection[Any] = self.run(
            psycopg.AsyncConnection.connect(url, autocommit=True)
        )
        self.run(ensure_schema(self.admin))
        self.store = self.run(RecordStore.open(url, KeyRing.generate(), POLICY))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        async def go() -> list[tuple[Any, ...]]:
            cursor = await self.admin.execute(query, params)
            return await cursor.fetchall() if cursor.description else []

        result: list[tuple[Any, ...]] = self.run(go())
        return result

    def close(self) -> None:
        self.run(self.store.close())
        self.run(self.admin.close())
        self.loop.close()


@pytest.fixture
def harness(pg_database: str) -> Iterator[Harness]:
    h = Harness(pg_database)
    yield h
    h.close()


def audit_rows(h: Harness, action: str) -> list[tuple[Any, ...]]:
    return h.sql(
        "SELECT actor, target, detail, outcome FROM audit_log WHERE action = %s ORDER BY id",
        (action,),
    )


def test_put_get_round_trip_with_access_log_and_audit(harness: Harness) -> None:
    h = harness
    payload = b'{"passport": "X123"}'
    rid = h.run(h.store.put("kyc", "FR", "customer:42", payload, "kyc-service"))
    (row,) = h.sql(
        "SELECT record_type, jurisdiction, subject, key_id, retain_until, legal_hold,"
        " ciphertext, plaintext_sha256 FROM compliance_records WHERE id = %s",
        (rid,),
    )
    today = datetime.now(UTC).date()
    assert row[:4] == ("kyc", "FR", "customer:42", 1)
    assert row[4] in {today.replace(year=today.year + 6), date(today.year + 6, 3, 1)}
    assert row[5] is False
    assert payload not in bytes(row[6])  # encrypted at rest
    assert h.run(h.store.get(rid, "officer:ann", "case 17 review")) == payload
    assert h.sql("SELECT record_id, actor, purpose, outcome FROM compliance_record_access") == [
        (rid, "officer:ann", "case 17 review", "ok")
    ]
    stored, read = audit_rows(h, "record_stored"), audit_rows(h, "record_read")
    assert stored[0][:2] == ("kyc-service", f"record:{rid}")
    assert stored[0][2]["retain_until"] == row[4].isoformat()
    assert "customer:42" not in str(stored)  # the subject stays out of the audit log
    assert read == [
        (
            "officer:ann",
            f"record:{rid}",
            {"key_id": 1, "purpose": "case 17 review", "record_type": "kyc"},
            "ok",
        )
    ]
    with pytest.raises(RecordNotFound, match="record 999"):
        h.run(h.store.get(999, "officer:ann", "curious"))
    assert h.sql("SELECT outcome FROM compliance_record_access WHERE record_id = 999") == [
        ("record_must_exist",)
    ]
    # The access log is append-only, as the audit log.
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        h.sql("DELETE FROM compliance_record_access")
    assert h.run(verify_chain(h.admin)).intact


def test_swapped_ciphertexts_and_changed_checksums_are_caught_and_audited(
    harness: Harness,
) -> None:
    h = harness
    a = h.run(h.store.put("sar", "FR", "customer:1", b"first secret", "svc"))
    b = h.run(h.store.put("sar", "FR", "customer:1", b"second secret", "svc"))
    # Move b's whole encrypted payload (key id, nonce, ciphertext, checksum) onto row a.
    h.sql(
        "UPDATE compliance_records AS t SET key_id = s.key_id, nonce = s.nonce,"
        " ciphertext = s.ciphertext, plaintext_sha256 = s.plaintext_sha256"
        " FROM compliance_records AS s WHERE t.id = %s AND s.id = %s",
        (a, b),
    )
    with pytest.raises(RecordIntegrityError, match=f"record {a} ") as caught:
        h.run(h.store.get(a, "officer:ann", "review"))
    assert caught.value.outcome is AccessOutcome.ciphertext_must_authenticate
    assert h.run(h.store.get(b, "officer:ann", "review")) == b"second secret"

    # A checksum that does not match a payload that decrypts fine.
    h.sql("UPDATE compliance_records SET plaintext_sha256 = sha256('x') WHERE id = %s", (b,))
    with pytest.raises(RecordIntegrityError) as caught:
        h.run(h.store.get(b, "officer:ann", "review"))
    assert caught.value.outcome is AccessOutcome.checksum_must_match_plaintext

    # The subject is part of the associated data too.
    c = h.run(h.store.put("kyc", "DE", "customer:2", b"third", "svc"))
    h.sql("UPDATE compliance_records SET subject = 'customer:3' WHERE id = %s", (c,))
    with pytest.raises(RecordIntegrityError):
        h.run(h.store.get(c, "officer:ann", "review"))

    # A key the ring does not hold.
    d = h.run(h.store.put("kyc", "DE", "customer:2", b"fourth", "svc"))
    h.sql("UPDATE compliance_records SET key_id = 9 WHERE id = %s", (d,))
    with pytest.raises(RecordIntegrityError, match="key 9") as caught:
        h.run(h.store.get(d, "officer:ann", "review"))
    assert caught.value.outcome is AccessOutcome.key_must_be_in_key_ring

    outcomes = h.sql("SELECT record_id, outcome FROM compliance_record_access ORDER BY id")
    assert outcomes == [
        (a, "ciphertext_must_authenticate"),
        (b, "ok"),
        (b, "checksum_must_match_plaintext"),
        (c, "ciphertext_must_authenticate"),
        (d, "key_must_be_in_key_ring"),
    ]
    assert [r[3] for r in audit_rows(h, "record_read")] == [o for _, o in outcomes]


def test_bad_input_is_refused_and_changes_nothing(harness: Harness) -> None:
    h = harness
    rid = h.run(h.store.put("kyc", "FR", "customer:1", b"x", "svc"))
    before = h.sql("SELECT count(*) FROM audit_log")
    bad_puts: list[tuple[Any, ...]] = [
        ("KYC", "FR", "customer:1", b"x", "svc"),
        ("kyc", "France", "customer:1", b"x", "svc"),
        ("kyc", "fr", "customer:1", b"x", "svc"),
        ("kyc", "FR", "", b"x", "svc"),
        ("kyc", "FR", "customer:1", "not bytes", "svc"),
        ("kyc", "FR", "customer:1", b"x", ""),
        ("kyc", "FR", "customer:1", b"x", "s" * 201),
        ("kyc", "FR", "customer:1", bytes(16 * 1024 * 1024 + 1), "svc"),
    ]
    for args in bad_puts:
        with pytest.raises((RecordInputError, RetentionError)):
            h.run(h.store.put(*args))
    with pytest.raises(RecordInputError):
        h.run(h.store.put("kyc", "FR", "c", b"x", "svc", retention_start=datetime.now(UTC)))
    for record_id, actor, purpose in [
        (rid, "officer", ""),
        (rid, "officer", "   "),
        (rid, "", "why"),
        (0, "officer", "why"),
        (True, "officer", "why"),
        ("1", "officer", "why"),
        (rid, "officer", "p" * 1001),
    ]:
        with pytest.raises(RecordInputError):
            h.run(h.store.get(record_id, actor, purpose))
    with pytest.raises(RetentionError, match="timezone-aware"):
        h.run(h.store.purge(datetime(2100, 1, 1)))
    with pytest.raises(RecordInputError):
        h.run(h.store.set_legal_hold(rid, True, "officer", ""))
    with pytest.raises(RecordNotFound):
        h.run(h.store.set_legal_hold(rid + 1, True, "officer", "case 3"))
    with pytest.raises(RecordInputError, match="does not keep every key"):
        h.store.use_key_ring(KeyRing.generate().with_new_key().with_new_key())
    assert h.sql("SELECT count(*) FROM audit_log") == before
    assert h.sql("SELECT count(*) FROM compliance_records") == [(1,)]
    assert h.sql("SELECT count(*) FROM compliance_record_access") == [(0,)]


def test_legal_hold_blocks_purge_and_deletion(harness: Harness) -> None:
    h = harness
    start = date(2000, 1, 1)
    held = h.run(h.store.put("kyc", "FR", "c:1", b"held", "svc", retention_start=start))
    free = h.run(h.store.put("kyc", "FR", "c:1", b"free", "svc", retention_start=start))
    h.run(h.store.set_legal_hold(held, True, "officer:ann", "litigation 2026-4"))
    with pytest.raises(psycopg.errors.RaiseException):
        h.sql("DELETE FROM compliance_records WHERE id = %s", (held,))
    assert h.run(h.store.purge(datetime(2100, 1, 1, tzinfo=UTC))) == [free]
    assert h.run(h.store.get(held, "officer:ann", "litigation")) == b"held"
    h.run(h.store.set_legal_hold(held, False, "officer:ann", "litigation closed"))
    assert h.run(h.store.purge(datetime(2100, 1, 1, tzinfo=UTC))) == [held]
    assert [r[1] for r in audit_rows(h, "record_purged")] == [f"record:{free}", f"record:{held}"]
    assert [a for (a,) in h.sql("SELECT action FROM audit_log ORDER BY id")][-3:] == [
        "record_read",
        "legal_hold_released",
        "record_purged",
    ]


payload_steps = st.lists(
    st.tuples(st.binary(max_size=2048), st.booleans()),  # (payload, add a key after it)
    min_size=1,
    max_size=8,
)


def test_rotation_preserves_every_payload(harness: Harness) -> None:
    # A fresh database per example would cost seconds each: the store is shared, and each
    # example checks its own records.
    h = harness

    @settings(max_examples=15)
    @given(payload_steps)
    def check(steps: list[tuple[bytes, bool]]) -> None:
        ring = h.store.key_ring
        written: dict[int, bytes] = {}
        for payload, rotate_after in steps:
            written[h.run(h.store.put("kyc", "FR", "c:1", payload, "svc"))] = payload
            if rotate_after:
                ring = ring.with_new_key()
                h.store.use_key_ring(ring)
        for record_id, payload in written.items():  # old keys stay readable
            assert h.run(h.store.get(record_id, "auditor", "rotation check")) == payload
        h.run(h.store.rotate("key-admin"))
        keys = h.sql(
            "SELECT DISTINCT key_id FROM compliance_records WHERE id = ANY(%s)", (list(written),)
        )
        assert keys == [(ring.current_key_id,)]
        for record_id, payload in written.items():
            assert h.run(h.store.get(record_id, "auditor", "rotation check")) == payload
        assert h.run(h.store.rotate("key-admin")) == 0  # nothing left to move

    check()
    assert h.run(verify_chain(h.admin)).intact


def test_rotation_stops_at_a_damaged_record_and_audits_it(harness: Harness) -> None:
    h = harness
    good = h.run(h.store.put("kyc", "FR", "c:1", b"good", "svc"))
    bad = h.run(h.store.put("kyc", "FR", "c:1", b"bad", "svc"))
    h.sql("UPDATE compliance_records SET ciphertext = ciphertext || 'x' WHERE id = %s", (bad,))
    h.store.use_key_ring(h.store.key_ring.with_new_key())
    with pytest.raises(RecordIntegrityError, match=f"record {bad} "):
        h.run(h.store.rotate("key-admin"))
    # The batch rolled back: even the good record is still under key 1.
    assert h.sql("SELECT id, key_id FROM compliance_records ORDER BY id") == [(good, 1), (bad, 1)]
    (failed,) = audit_rows(h, "records_reencryption_failed")
    assert failed[1] == f"record:{bad}" and failed[3] == "ciphertext_must_authenticate"
    assert audit_rows(h, "records_reencrypted") == []


# -- retention and purge --

jurisdictions = st.sampled_from(["FR", "CH", "US", "JP", "EU", "US-NY"])
record_types = st.sampled_from(["kyc", "sar", "transaction"])


purge_records = st.lists(
    st.tuples(
        record_types,
        jurisdictions,
        st.dates(date(1990, 1, 1), date(2030, 12, 31)),
        st.booleans(),
    ),
    max_size=10,
)
clocks = st.datetimes(datetime(1995, 1, 1), datetime(2045, 12, 31), timezones=st.timezones())


def test_purge_never_deletes_before_retention_ends_or_under_hold(harness: Harness) -> None:
    h = harness

    @settings(max_examples=25)
    @given(purge_records, clocks)
    def check(records: list[tuple[str, str, date, bool]], now: datetime) -> None:
        h.sql("TRUNCATE compliance_records")  # test cleanup only: each example starts empty
        expected: dict[int, tuple[date, bool]] = {}
        for record_type, jurisdiction, start, hold in records:
            put = h.store.put(record_type, jurisdiction, "c:1", b"p", "svc", retention_start=start)
            rid = h.run(put)
            if hold:
                h.run(h.store.set_legal_hold(rid, True, "officer", "hold"))
            until = POLICY.retain_until(record_type, jurisdiction, start)
            assert until > start
            expected[rid] = (until, hold)
        purged = h.run(h.store.purge(now))
        today = now.astimezone(UTC).date()
        for rid in purged:
            until, hold = expected[rid]
            assert until < today and not hold, (rid, until, hold, now)
        due = {rid for rid, (until, hold) in expected.items() if until < today and not hold}
        assert set(purged) == due
        remaining = {r for (r,) in h.sql("SELECT id FROM compliance_records")}
        assert remaining == set(expected) - set(purged)
        audited = {r[1] for r in audit_rows(h, "record_purged")}
        assert {f"record:{rid}" for rid in purged} <= audited

    check()


# -- the key ring file --


def test_key_ring_file_round_trips_only_with_its_master_key(tmp_path: Path) -> None:
    path = create_master_key_file(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        create_master_key_file(tmp_path)
    master = load_master_key(tmp_path, environ={})
    ring = KeyRing.generate().with_new_key()
    save_key_ring(ring, tmp_path / KEY_RING_FILE, master)
    assert oct((tmp_path / KEY_RING_FILE).stat().st_mode & 0o777) == "0o600"
    loaded = load_key_ring(tmp_path / KEY_RING_FILE, master)
    assert loaded.key_ids == {1, 2} and loaded.current_key_id == 2
    nonce = bytes(12)
    assert loaded.aead(1).decrypt(nonce, ring.aead(1).encrypt(nonce, b"m", None), None) == b"m"
    # No key material in the repr, nor the master key in any error.
    assert repr(loaded) == "KeyRing(key_ids=[1, 2], current_key_id=2)"
    with pytest.raises(KeyRingError, match="does not decrypt") as caught:
        load_key_ring(tmp_path / KEY_RING_FILE, bytes(32))
    assert master.hex() not in str(caught.value)
    blob = bytearray((tmp_path / KEY_RING_FILE).read_bytes())
    blob[-1] ^= 1
    (tmp_path / "changed.bin").write_bytes(bytes(blob))
    with pytest.raises(KeyRingError, match="does not decrypt"):
        load_key_ring(tmp_path / "changed.bin", master)
    (tmp_path / "junk.bin").write_bytes(b"hello")
    with pytest.raises(KeyRingError, match="not a records key ring"):
        load_key_ring(tmp_path / "junk.bin", master)
    with pytest.raises(KeyRingError, match="no key ring"):
        load_key_ring(tmp_path / "missing.bin", master)


def test_master_key_sources_and_refusals(tmp_path: Path) -> None:
    key_hex = os.urandom(32).hex()
    assert load_master_key(None, environ={MASTER_KEY_ENV: key_hex}) == bytes.fromhex(key_hex)
    for bad in ("zz" * 32, "ab" * 16):
        with pytest.raises(KeyRingError) as caught:
            load_master_key(None, environ={MASTER_KEY_ENV: bad})
        assert bad not in str(caught.value)
    with pytest.raises(KeyRingError, match="no master key"):
        load_master_key(None, environ={})
    with pytest.raises(KeyRingError, match="no master key"):
        load_master_key(tmp_path, environ={})
    path = create_master_key_file(tmp_path)
    path.chmod(0o644)
    with pytest.raises(KeyRingError, match="must be 0600"):
        load_master_key(tmp_path, environ={})


def test_retention_policy_refuses_bad_tables() -> None:
    with pytest.raises(RetentionError):
        RetentionPolicy(years={("kyc", "FR"): 50})
    with pytest.raises(RetentionError):
        RetentionPolicy(years={("KYC", "FR"): 5})
    with pytest.raises(RetentionError):
        RetentionPolicy(default_years=0)
    policy = RetentionPolicy()
    assert policy.years_for("kyc", "FR") == 5  # the default
    assert policy.years_for("kyc", "CH") == 10
    assert policy.years_for("kyc", "EU") == 5
    assert POLICY.years_for("sar", "FR") == 7  # exact beats type-wide and jurisdiction-wide
    assert POLICY.years_for("kyc", "CH") == 10  # jurisdiction-wide beats type-wide
    assert POLICY.years_for("kyc", "FR") == 6
    # 29 February: kept to 1 March, never a day short.
    assert policy.retain_until("kyc", "FR", date(2024, 2, 29)) == date(2029, 3, 1)


# -- a stateful run against a model --


class StoreMachine(RuleBasedStateMachine):
    """Puts, reads, holds, key rotations, re-encryptions and purges in any order."""

    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.h = self.harness
        self.h.sql("TRUNCATE compliance_records")
        self.h.store.use_key_ring(self.h.store.key_ring)
        self.model: dict[int, tuple[bytes, date, bool]] = {}
        self.purged: set[int] = set()
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    @rule(
        payload=st.binary(max_size=256),
        record_type=record_types,
        jurisdiction=jurisdictions,
        days_ago=st.integers(0, 6000),
    )
    def put(self, payload: bytes, record_type: str, jurisdiction: str, days_ago: int) -> None:
        start = self.now.date() - timedelta(days=days_ago)
        rid = self.h.run(
            self.h.store.put(
                record_type, jurisdiction, "c:9", payload, "svc", retention_start=start
            )
        )
        self.model[rid] = (payload, POLICY.retain_until(record_type, jurisdiction, start), False)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model)))
        assert self.h.run(self.h.store.get(rid, "officer", "model check")) == self.model[rid][0]

    @precondition(lambda self: bool(self.purged))
    @rule(data=st.data())
    def get_purged(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.purged)))
        with pytest.raises(RecordNotFound):
            self.h.run(self.h.store.get(rid, "officer", "model check"))

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), hold=st.booleans())
    def set_hold(self, data: st.DataObject, hold: bool) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model)))
        self.h.run(self.h.store.set_legal_hold(rid, hold, "officer", "case"))
        payload, until, _ = self.model[rid]
        self.model[rid] = (payload, until, hold)

    @rule()
    def add_key(self) -> None:
        self.h.store.use_key_ring(self.h.store.key_ring.with_new_key())

    @rule()
    def rotate(self) -> None:
        self.h.run(self.h.store.rotate("key-admin"))
        keys = self.h.sql("SELECT DISTINCT key_id FROM compliance_records")
        assert keys in ([], [(self.h.store.key_ring.current_key_id,)])

    @rule(days=st.integers(0, 3000))
    def advance_and_purge(self, days: int) -> None:
        self.now += timedelta(days=days)
        purged = self.h.run(self.h.store.purge(self.now))
        today = self.now.date()
        due = {r for r, (_, until, hold) in self.model.items() if until < today and not hold}
        assert set(purged) == due
        for rid in purged:
            del self.model[rid]
        self.purged |= due

    @invariant()
    def store_matches_model(self) -> None:
        rows = self.h.sql("SELECT id, retain_until, legal_hold FROM compliance_records")
        assert {r[0]: (r[1], r[2]) for r in rows} == {
            rid: (until, hold) for rid, (_, until, hold) in self.model.items()
        }


def test_store_matches_a_model_under_any_sequence(harness: Harness) -> None:
    StoreMachine.harness = harness
    run_state_machine_as_test(StoreMachine, settings=settings(max_examples=10))
    assert harness.run(verify_chain(harness.admin)).intact
