"""The records key ring: AES-256 data keys, one current, all kept so that old records stay readable.

At rest the key ring is one file, ``keyring.bin``: the magic ``CLKR1``, a 12-byte nonce, then
AES-GCM under the master key of the JSON ``{"current_key_id": n, "keys": {"1": base64, ...}}``
with the magic as associated data. The master key (32 bytes, as 64 hex characters) comes from
the environment variable ``CLEARLINE_RECORDS_MASTER_KEY`` or, failing that, from the file
``master.key`` next to the key ring, which must be readable by its owner only (mode 0600). In
production the master key belongs in a KMS or HSM; this file is the single-machine fallback.

No key is ever logged, put in an exception message or shown by ``repr``.
"""

from __future__ import annotations

import binascii
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_ENV = "CLEARLINE_RECORDS_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
KEY_RING_FILE = "keyring.bin"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the AES-GCM standard nonce; random nonces are safe for < 2^32 per key
_MAGIC = b"CLKR1"


class KeyRingError(Exception):
    """The master key or the key ring file is missing, unreadable, unsafe or wrong."""


class _KeyRingFile(msgspec.Struct, frozen=True, kw_only=True):
    current_key_id: int
    keys: dict[int, bytes]


class KeyRing:
    """The data keys records are encrypted under; immutable (changes return a new ring).

    Build with `KeyRing.generate` or `load_key_ring`; rotate with `with_new_key`.
    """

    __slots__ = ("_current_key_id", "_keys")

    def __init__(self, keys: Mapping[int, bytes], current_key_id: int) -> None:
        if current_key_id not in keys:
            raise KeyRingError(f"the current key id {current_key_id} is not in the key ring")
        for key_id, key in keys.items():
            if not isinstance(key_id, int) or key_id < 1:
                raise KeyRingError(f"key id {key_id!r} is not a positive integer")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {key_id} is {len(key)} bytes, not {KEY_BYTES}")
        self._keys = dict(keys)
        self._current_key_id = current_key_id

    @classmethod
    def generate(cls) -> KeyRing:
        """A ring with one fresh random key, id 1."""
        return cls({1: secrets.token_bytes(KEY_BYTES)}, 1)

    def with_new_key(self) -> KeyRing:
        """A new ring with every key of this one plus a fresh key, which becomes current.

        New records are encrypted under the new key; `RecordStore.rotate` moves old ones.
        """
        new_id = max(self._keys) + 1
        return KeyRing({**self._keys, new_id: secrets.token_bytes(KEY_BYTES)}, new_id)

    @property
    def current_key_id(self) -> int:
        """The id of the key new records are encrypted under."""
        return self._current_key_id

    @property
    def key_ids(self) -> frozenset[int]:
        """Every key id in the ring."""
        return frozenset(self._keys)

    def aead(self, key_id: int) -> AESGCM:
        """The AES-GCM cipher of one key.

        Raises
        ------
        KeyError
            If the ring has no key of that id.
        """
        return AESGCM(self._keys[key_id])

    def keeps(self, other: KeyRing) -> bool:
        """True if this ring holds every key of ``other``, with the same key material.

        A ring that reuses an id for a different key would make the records under it unreadable.
        """
        return all(
            key_id in self._keys and hmac.compare_digest(self._keys[key_id], key)
            for key_id, key in other._keys.items()
        )

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={sorted(self._keys)}, current_key_id={self._current_key_id})"


def _decode_master_key(text: str, source: str) -> bytes:
    try:
        key = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise KeyRingError(f"the master key in {source} is not hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"the master key in {source} is {len(key)} bytes, not {KEY_BYTES}")
    return key


def load_master_key(records_dir: Path | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The master key: ``$CLEARLINE_RECORDS_MASTER_KEY``, else ``records_dir/master.key``.

    Raises
    ------
    KeyRingError
        Neither is set; the file is readable by others than its owner; the key is not 64 hex
        characters.
    """
    env = os.environ if environ is None else environ
    if env.get(MASTER_KEY_ENV):
        return _decode_master_key(env[MASTER_KEY_ENV], f"${MASTER_KEY_ENV}")
    if records_dir is None:
        raise KeyRingError(f"no master key: set ${MASTER_KEY_ENV} or give a records folder")
    path = records_dir / MASTER_KEY_FILE
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyRingError(f"no master key: set ${MASTER_KEY_ENV} or create {path}") from None
    # A key others can read is a key others have: refuse it, as ssh does.
    if stat.S_IMODE(mode) & 0o077:
        raise KeyRingError(f"{path} has mode {stat.S_IMODE(mode):o}; it must be 0600")
    return _decode_master_key(path.read_text(), str(path))


def create_master_key_file(records_dir: Path) -> Path:
    """Write a fresh master key to ``records_dir/master.key`` (mode 0600); never overwrites.

    Raises
    ------
    FileExistsError
        If the file exists.
    """
    records_dir.mkdir(parents=True, exist_ok=True)
    path = records_dir / MASTER_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
    return path


def save_key_ring(ring: KeyRing, path: Path, master_key: bytes) -> None:
    """Encrypt the ring under the master key and replace ``path`` atomically (mode 0600)."""
    plain = msgspec.json.encode(
        _KeyRingFile(current_key_id=ring.current_key_id, keys=dict(ring._keys))
    )
    nonce = secrets.token_bytes(NONCE_BYTES)
    blob = _MAGIC + nonce + AESGCM(master_key).encrypt(nonce, plain, _MAGIC)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    # Rename over the old file: a crash leaves the old ring or the new, never half of one.
    os.replace(temporary, path)


def load_key_ring(path: Path, master_key: bytes) -> KeyRing:
    """Read and decrypt a key ring file.

    Raises
    ------
    KeyRingError
        Missing file, not a key ring, wrong master key or a file changed since it was written.
    """
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise KeyRingError(f"no key ring at {path}: create one first") from None
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + NONCE_BYTES + 16:
        raise KeyRingError(f"{path} is not a records key ring")
    nonce = blob[len(_MAGIC) : len(_MAGIC) + NONCE_BYTES]
    try:
        plain = AESGCM(master_key).decrypt(nonce, blob[len(_MAGIC) + NONCE_BYTES :], _MAGIC)
    except InvalidTag:
        raise KeyRingError(
            f"{path} does not decrypt: wrong master key, or the file was changed"
        ) from None
    try:
        stored = msgspec.json.decode(plain, type=_KeyRingFile)
    except msgspec.DecodeError as exc:
        raise KeyRingError(f"{path} decrypts but is not a key ring: {exc}") from None
    return KeyRing(stored.keys, stored.current_key_id)


def open_key_ring(records_dir: Path, environ: Mapping[str, str] | None = None) -> KeyRing:
    """The key ring of ``records_dir``, created (with a master key file, unless the master key
    is in the environment) on first use: what a service that stores records calls at start.

    Raises
    ------
    KeyRingError
        The ring or the master key exists but cannot be read (never replaced silently: records
        under the old keys would become unreadable).
    """
    ring_path = records_dir / KEY_RING_FILE
    if not ring_path.exists():
        records_dir.mkdir(parents=True, exist_ok=True)
        env = os.environ if environ is None else environ
        if not env.get(MASTER_KEY_ENV) and not (records_dir / MASTER_KEY_FILE).exists():
            create_master_key_file(records_dir)
        save_key_ring(KeyRing.generate(), ring_path, load_master_key(records_dir, environ))
    return load_key_ring(ring_path, load_master_key(records_dir, environ))
