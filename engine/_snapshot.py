"""The engine snapshot: one byte format for the Cython core and the reference book.

A snapshot holds only state that decides future behaviour, in a canonical order, so two engines
in the same state write the same bytes whatever their internal layout (pool slots, hash tables):
the counters, the instruments by id, and the resting orders by instrument, then bids best to
worst, then asks best to worst, each price level head to tail. Account order lists and the GTD
expiry queue are rebuilt from the orders (both are ordered by order id).

Layout (little endian): magic, version, the four counters, the two row counts, the instrument
rows, the order rows, then a BLAKE2b-256 checksum of everything before it. The state hash is
that checksum in hex.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from engine._dtypes import INSTRUMENT_DTYPE, ORDER_DTYPE

_MAGIC = b"CLSNAP\x00\x01"
_VERSION = 1
_HEADER = struct.Struct("<8sI4q2q")
_CHECKSUM_BYTES = 32


class SnapshotError(ValueError):
    """The bytes are not a whole, intact snapshot of a version this code reads."""


@dataclass(frozen=True, kw_only=True)
class EngineState:
    seq: int  # last event sequence written
    next_order_id: int
    next_trade_id: int
    now_ts_ns: int
    instruments: np.ndarray  # INSTRUMENT_DTYPE, ascending instrument_id
    orders: np.ndarray  # ORDER_DTYPE, canonical book order


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_CHECKSUM_BYTES).digest()


def encode_state(state: EngineState) -> bytes:
    instruments = np.ascontiguousarray(state.instruments, dtype=INSTRUMENT_DTYPE)
    orders = np.ascontiguousarray(state.orders, dtype=ORDER_DTYPE)
    header = _HEADER.pack(
        _MAGIC,
        _VERSION,
        state.seq,
        state.next_order_id,
        state.next_trade_id,
        state.now_ts_ns,
        len(instruments),
        len(orders),
    )
    payload = header + instruments.tobytes() + orders.tobytes()
    return payload + _checksum(payload)


def decode_state(data: bytes) -> EngineState:
    if len(data) < _HEADER.size + _CHECKSUM_BYTES:
        raise SnapshotError(f"snapshot truncated: {len(data)} bytes is shorter than a header")
    magic, version, seq, next_order_id, next_trade_id, now_ts_ns, n_instruments, n_orders = (
        _HEADER.unpack_from(data)
    )
    if magic != _MAGIC:
        raise SnapshotError("not a Clearline engine snapshot (bad magic)")
    if version != _VERSION:
        raise SnapshotError(f"snapshot version {version} is not readable (expected {_VERSION})")
    if n_instruments < 0 or n_orders < 0:
        raise SnapshotError("snapshot header holds negative row counts")
    size = (
        _HEADER.size + n_instruments * INSTRUMENT_DTYPE.itemsize + n_orders * ORDER_DTYPE.itemsize
    )
    if len(data) != size + _CHECKSUM_BYTES:
        expected = size + _CHECKSUM_BYTES
        raise SnapshotError(f"snapshot is {len(data)} bytes, its header says {expected}")
    if _checksum(data[:size]) != data[size:]:
        raise SnapshotError("snapshot checksum does not match its contents")
    offset = _HEADER.size
    instruments = np.frombuffer(data, INSTRUMENT_DTYPE, n_instruments, offset).copy()
    offset += n_instruments * INSTRUMENT_DTYPE.itemsize
    orders = np.frombuffer(data, ORDER_DTYPE, n_orders, offset).copy()
    # Counters must lie ahead of what they have handed out, or a restored engine would reuse ids.
    if n_orders and int(orders["order_id"].max()) >= next_order_id:
        raise SnapshotError("snapshot next_order_id is not above every resting order id")
    if next_order_id < 1 or next_trade_id < 1 or seq < 0:
        raise SnapshotError("snapshot counters are out of range")
    return EngineState(
        seq=seq,
        next_order_id=next_order_id,
        next_trade_id=next_trade_id,
        now_ts_ns=now_ts_ns,
        instruments=instruments,
        orders=orders,
    )


def state_hash(snapshot: bytes) -> str:
    """The hex checksum a snapshot ends with: equal states give equal hashes."""
    return snapshot[-_CHECKSUM_BYTES:].hex()


__all__ = ["EngineState", "SnapshotError", "decode_state", "encode_state", "state_hash"]
