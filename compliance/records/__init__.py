"""Compliance records (issue 5, deliverable 5): the audit chain and encrypted record storage.

`append_audit` appends to the one hash-chained, append-only ``audit_log`` of the whole system
(`gateway.auth.AuditLog` writes through it); `verify_chain` proves the chain intact or names the
first bad row. `RecordStore` keeps compliance records encrypted (AES-256-GCM, a rotating
`KeyRing` whose file is encrypted under a master key), checksummed and checked on every read,
retained per `RetentionPolicy` and purged when that ends (never under legal hold), with every
read in an access log. ``python -m compliance.records verify`` checks the chain from a shell.
"""

from compliance.records._chain import (
    AUDIT_LOG_DDL,
    GENESIS_HASH,
    AuditEntryError,
    AuditRow,
    ChainBreak,
    ChainBreakReason,
    ChainReport,
    append_audit,
    canonical_detail,
    check_chain,
    ensure_audit_schema,
    row_hash,
    verify_chain,
)
from compliance.records._keys import (
    KEY_RING_FILE,
    MASTER_KEY_ENV,
    MASTER_KEY_FILE,
    KeyRing,
    KeyRingError,
    create_master_key_file,
    load_key_ring,
    load_master_key,
    open_key_ring,
    save_key_ring,
)
from compliance.records._limits import (
    detail_bytes_max,
    name_chars_max,
    payload_bytes_max,
    purge_batch_max,
    purpose_chars_max,
    retention_years_max,
    rotate_batch_max,
    verify_batch_rows_max,
)
from compliance.records._retention import (
    DEFAULT_RETENTION_YEARS,
    RetentionError,
    RetentionPolicy,
    RetentionState,
    due_for_purge,
    retention_years_default,
)
from compliance.records._store import (
    AccessOutcome,
    RecordInputError,
    RecordIntegrityError,
    RecordNotFound,
    RecordStore,
    associated_data,
    ensure_schema,
)

__all__ = [
    "AUDIT_LOG_DDL",
    "DEFAULT_RETENTION_YEARS",
    "GENESIS_HASH",
    "KEY_RING_FILE",
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE",
    "AccessOutcome",
    "AuditEntryError",
    "AuditRow",
    "ChainBreak",
    "ChainBreakReason",
    "ChainReport",
    "KeyRing",
    "KeyRingError",
    "RecordInputError",
    "RecordIntegrityError",
    "RecordNotFound",
    "RecordStore",
    "RetentionError",
    "RetentionPolicy",
    "RetentionState",
    "append_audit",
    "associated_data",
    "canonical_detail",
    "check_chain",
    "create_master_key_file",
    "detail_bytes_max",
    "due_for_purge",
    "ensure_audit_schema",
    "ensure_schema",
    "load_key_ring",
    "load_master_key",
    "name_chars_max",
    "open_key_ring",
    "payload_bytes_max",
    "purge_batch_max",
    "purpose_chars_max",
    "retention_years_default",
    "retention_years_max",
    "rotate_batch_max",
    "row_hash",
    "save_key_ring",
    "verify_batch_rows_max",
    "verify_chain",
]
