# cython: language_level=3
"""Price-time matching core: one writer, integers only, no clock, no I/O.

Semantics are docs/matching.md, event for event; engine/reference.py is the plain-Python
book it is tested against. Business outcomes are reason codes plus events; a broken internal
invariant raises (the supervisor restarts the engine and replays the journal).
"""

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import numpy as np

from engine._dtypes import COMMAND_DTYPE, EVENT_DTYPE, INSTRUMENT_DTYPE, ORDER_DTYPE
from engine._limits import EngineLimits
from engine._snapshot import EngineState, SnapshotError, decode_state, encode_state
from engine._snapshot import state_hash as _state_hash

include "_codes.pxi"

cnp.import_array()

cdef extern from *:
    int clz64 "__builtin_clzll"(unsigned long long x) nogil
    int ctz64 "__builtin_ctzll"(unsigned long long x) nogil

cdef enum:
    CHUNK_SHIFT = 10
    CHUNK_MASK = 1023
    CHUNK_WORDS = 16
    EVENTS_INITIAL = 4096
    TOUCHED_INITIAL = 64

cdef uint64_t ALL_BITS = 0xFFFFFFFFFFFFFFFFULL
cdef Event _ZERO_EVENT
memset(&_ZERO_EVENT, 0, sizeof(Event))


cdef inline int _invariant(bint condition, str message) except -1:
    # Always on (not `assert`, which -O removes): a broken invariant must stop the engine.
    if not condition:
        raise AssertionError("engine invariant broken: " + message)
    return 0


def _record_sizes():
    """sizeof of each C record that mirrors a dtype in engine/_dtypes.py (checked by a test)."""
    return {"COMMAND_DTYPE": sizeof(Command), "EVENT_DTYPE": sizeof(Event),
            "INSTRUMENT_DTYPE": sizeof(SnapInstrument), "ORDER_DTYPE": sizeof(SnapOrder)}


# -- LADDER BITMAPS --

cdef inline int64_t _chunk_at_or_after(const Ladder* lad, int64_t c) noexcept nogil:
    """Lowest non-empty chunk >= c, or -1. O(chunks / 4096) words in the worst case."""
    cdef int64_t w1, w2
    cdef uint64_t m
    if c >= lad.chunk_count:
        return -1
    w1 = c >> 6
    m = lad.chunk_bits[w1] & (ALL_BITS << (c & 63))
    if m:
        return (w1 << 6) | ctz64(m)
    w1 += 1
    if w1 >= lad.chunk_word_count:
        return -1
    w2 = w1 >> 6
    m = lad.word_bits[w2] & (ALL_BITS << (w1 & 63))
    while True:
        if m:
            w1 = (w2 << 6) | ctz64(m)
            return (w1 << 6) | ctz64(lad.chunk_bits[w1])
        w2 += 1
        if w2 >= lad.word_word_count:
            return -1
        m = lad.word_bits[w2]


cdef inline int64_t _chunk_at_or_before(const Ladder* lad, int64_t c) noexcept nogil:
    """Highest non-empty chunk <= c, or -1."""
    cdef int64_t w1, w2
    cdef uint64_t m
    if c < 0:
        return -1
    w1 = c >> 6
    m = lad.chunk_bits[w1] & (ALL_BITS >> (63 - (c & 63)))
    if m:
        return (w1 << 6) | (63 - clz64(m))
    w1 -= 1
    if w1 < 0:
        return -1
    w2 = w1 >> 6
    m = lad.word_bits[w2] & (ALL_BITS >> (63 - (w1 & 63)))
    while True:
        if m:
            w1 = (w2 << 6) | (63 - clz64(m))
            return (w1 << 6) | (63 - clz64(lad.chunk_bits[w1]))
        w2 -= 1
        if w2 < 0:
            return -1
        m = lad.word_bits[w2]


cdef inline int64_t _slot_at_or_after(const Ladder* lad, int64_t slot) noexcept nogil:
    """Lowest slot >= slot holding orders, or -1."""
    cdef int64_t c, w
    cdef uint64_t m
    cdef Chunk* ch
    if slot < 0:
        slot = 0
    if slot >= lad.slots:
        return -1
    c = slot >> CHUNK_SHIFT
    ch = lad.chunks[c]
    if ch != NULL:
        w = (slot >> 6) & (CHUNK_WORDS - 1)
        m = ch.bits[w] & (ALL_BITS << (slot & 63))
        while True:
            if m:
                return (c << CHUNK_SHIFT) | (w << 6) | ctz64(m)
            w += 1
            if w >= CHUNK_WORDS:
                break
            m = ch.bits[w]
    c = _chunk_at_or_after(lad, c + 1)
    if c < 0:
        return -1
    ch = lad.chunks[c]
    for w in range(CHUNK_WORDS):
        if ch.bits[w]:
            return (c << CHUNK_SHIFT) | (w << 6) | ctz64(ch.bits[w])
    return -1


cdef inline int64_t _slot_at_or_before(const Ladder* lad, int64_t slot) noexcept nogil:
    """Highest slot <= slot holding orders, or -1."""
    cdef int64_t c, w
    cdef uint64_t m
    cdef Chunk* ch
    if slot < 0:
        return -1
    if slot >= lad.slots:
        slot = lad.slots - 1
    c = slot >> CHUNK_SHIFT
    ch = lad.chunks[c]
    if ch != NULL:
        w = (slot >> 6) & (CHUNK_WORDS - 1)
        m = ch.bits[w] & (ALL_BITS >> (63 - (slot & 63)))
        while True:
            if m:
                return (c << CHUNK_SHIFT) | (w << 6) | (63 - clz64(m))
            w -= 1
            if w < 0:
                break
            m = ch.bits[w]
    c = _chunk_at_or_before(lad, c - 1)
    if c < 0:
        return -1
    ch = lad.chunks[c]
    for w in range(CHUNK_WORDS - 1, -1, -1):
        if ch.bits[w]:
            return (c << CHUNK_SHIFT) | (w << 6) | (63 - clz64(ch.bits[w]))
    return -1


cdef inline int64_t _next_worse(const Ladder* lad, int64_t slot) noexcept nogil:
    """The next non-empty level behind slot, away from the best price, or -1."""
    if lad.side == SIDE_BUY:
        return _slot_at_or_before(lad, slot - 1)
    return _slot_at_or_after(lad, slot + 1)


cdef inline void _set_bit(Ladder* lad, int64_t slot) noexcept nogil:
    cdef int64_t c = slot >> CHUNK_SHIFT
    lad.chunks[c].bits[(slot >> 6) & (CHUNK_WORDS - 1)] |= (<uint64_t>1) << (slot & 63)
    lad.chunk_bits[c >> 6] |= (<uint64_t>1) << (c & 63)
    lad.word_bits[c >> 12] |= (<uint64_t>1) << ((c >> 6) & 63)
    if lad.best < 0:
        lad.best = slot
    elif lad.side == SIDE_BUY:
        if slot > lad.best:
            lad.best = slot
    elif slot < lad.best:
        lad.best = slot


cdef inline void _clear_bit(Ladder* lad, int64_t slot) noexcept nogil:
    cdef int64_t c = slot >> CHUNK_SHIFT
    cdef Chunk* ch = lad.chunks[c]
    cdef int w
    ch.bits[(slot >> 6) & (CHUNK_WORDS - 1)] &= ~((<uint64_t>1) << (slot & 63))
    for w in range(CHUNK_WORDS):
        if ch.bits[w]:
            break
    else:
        lad.chunk_bits[c >> 6] &= ~((<uint64_t>1) << (c & 63))
        if lad.chunk_bits[c >> 6] == 0:
            lad.word_bits[c >> 12] &= ~((<uint64_t>1) << ((c >> 6) & 63))
    if slot == lad.best:
        lad.best = _next_worse(lad, slot)


cdef int _ladder_init(Ladder* lad, int32_t instrument_id, uint8_t side, int64_t slots) except -1:
    lad.slots = slots
    lad.best = -1
    lad.chunk_count = <int32_t>((slots + CHUNK_MASK) >> CHUNK_SHIFT)
    lad.chunk_word_count = (lad.chunk_count + 63) >> 6
    lad.word_word_count = (lad.chunk_word_count + 63) >> 6
    lad.instrument_id = instrument_id
    lad.side = side
    lad.chunks = <Chunk**>calloc(lad.chunk_count, sizeof(Chunk*))
    lad.chunk_bits = <uint64_t*>calloc(lad.chunk_word_count, sizeof(uint64_t))
    lad.word_bits = <uint64_t*>calloc(lad.word_word_count, sizeof(uint64_t))
    if lad.chunks == NULL or lad.chunk_bits == NULL or lad.word_bits == NULL:
        raise MemoryError()
    return 0


cdef void _ladder_free(Ladder* lad) noexcept:
    cdef int32_t c
    if lad.chunks != NULL:
        for c in range(lad.chunk_count):
            free(lad.chunks[c])
    free(lad.chunks)
    free(lad.chunk_bits)
    free(lad.word_bits)
    memset(lad, 0, sizeof(Ladder))


# -- ID MAPS --

cdef inline uint64_t _hash(int64_t a, int64_t b) noexcept nogil:
    # splitmix64 finaliser over both keys: sequential order ids spread over the table.
    cdef uint64_t x = <uint64_t>a * 0x9E3779B97F4A7C15ULL ^ <uint64_t>b * 0xC2B2AE3D27D4EB4FULL
    x ^= x >> 31
    x *= 0xBF58476D1CE4E5B9ULL
    x ^= x >> 29
    return x


cdef enum:
    MAP_INITIAL_SLOTS = 1024


cdef int _map_init(IdMap* m) except -1:
    m.slots = <MapSlot*>calloc(MAP_INITIAL_SLOTS, sizeof(MapSlot))
    if m.slots == NULL:
        raise MemoryError()
    m.mask = MAP_INITIAL_SLOTS - 1
    m.count = 0
    return 0


cdef inline int32_t _map_get(const IdMap* m, int64_t a, int64_t b) noexcept nogil:
    """Pool index stored for (a, b), or -1. O(1) expected."""
    cdef uint64_t i = _hash(a, b) & m.mask
    while m.slots[i].value_plus_one:
        if m.slots[i].key_a == a and m.slots[i].key_b == b:
            return m.slots[i].value_plus_one - 1
        i = (i + 1) & m.mask
    return -1


cdef inline void _map_insert(IdMap* m, int64_t a, int64_t b, int32_t value_plus_one) noexcept nogil:
    cdef uint64_t i = _hash(a, b) & m.mask
    while m.slots[i].value_plus_one:
        i = (i + 1) & m.mask
    m.slots[i].key_a = a
    m.slots[i].key_b = b
    m.slots[i].value_plus_one = value_plus_one


cdef int _map_put(IdMap* m, int64_t a, int64_t b, int32_t value) except -1:
    """Insert a key known to be absent; doubles the table at half load. O(1) amortised."""
    cdef MapSlot* old = m.slots
    cdef uint64_t old_capacity = m.mask + 1
    cdef uint64_t i
    if (m.count + 1) * 2 > old_capacity:
        m.slots = <MapSlot*>calloc(old_capacity * 2, sizeof(MapSlot))
        if m.slots == NULL:
            m.slots = old
            raise MemoryError()
        m.mask = old_capacity * 2 - 1
        for i in range(old_capacity):
            if old[i].value_plus_one:
                _map_insert(m, old[i].key_a, old[i].key_b, old[i].value_plus_one)
        free(old)
    _map_insert(m, a, b, value + 1)
    m.count += 1
    return 0


cdef inline void _map_remove(IdMap* m, int64_t a, int64_t b) noexcept nogil:
    """Remove a present key; backward shift keeps every probe chain unbroken. O(1) expected."""
    cdef uint64_t i = _hash(a, b) & m.mask
    cdef uint64_t j, home
    while m.slots[i].value_plus_one:
        if m.slots[i].key_a == a and m.slots[i].key_b == b:
            break
        i = (i + 1) & m.mask
    else:
        return
    m.count -= 1
    j = i
    while True:
        j = (j + 1) & m.mask
        if not m.slots[j].value_plus_one:
            break
        home = _hash(m.slots[j].key_a, m.slots[j].key_b) & m.mask
        # Move j back to the hole at i unless its home lies cyclically in (i, j].
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            m.slots[i] = m.slots[j]
            i = j
    m.slots[i].value_plus_one = 0


# -- ORDER HELPERS --

cdef inline uint8_t _status(const Order* o) noexcept nogil:
    if o.filled_lots == 0:
        return ORDERSTATUS_NEW
    if o.leaves_lots == 0:
        return ORDERSTATUS_FILLED
    return ORDERSTATUS_PARTIALLY_FILLED


cdef inline bint _self_match(const Order* taker, const Order* maker) noexcept nogil:
    return taker.account_id == maker.account_id or (
        taker.stp_group != 0 and taker.stp_group == maker.stp_group)


cdef inline bint _heap_less(const Order* orders, int32_t x, int32_t y) noexcept nogil:
    if orders[x].expire_ts_ns != orders[y].expire_ts_ns:
        return orders[x].expire_ts_ns < orders[y].expire_ts_ns
    return orders[x].order_id < orders[y].order_id


cdef inline int64_t _clock_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline Ladder* _own_ladder(Instrument* ins, uint8_t side) noexcept nogil:
    return &ins.bids if side == SIDE_BUY else &ins.asks


cdef inline int64_t _slot_of(const Instrument* ins, int64_t price_ticks) noexcept nogil:
    return (price_ticks - ins.price_min_ticks) // ins.price_increment_ticks


cdef inline int64_t _price_of(const Instrument* ins, int64_t slot) noexcept nogil:
    return ins.price_min_ticks + slot * ins.price_increment_ticks


cdef class Engine:
    """The matching engine: many instruments, one writer.

    Parameters
    ----------
    limits : EngineLimits, optional
        Pool and table sizes; every one is allocated up front (untouched memory stays virtual).
    """

    def __cinit__(self, limits=None):
        if limits is None:
            limits = EngineLimits()
        self.limits = limits
        self._orders_max = limits.orders_max
        self._orders_per_book_max = limits.orders_per_book_max
        self._accounts_max = limits.accounts_max
        self._instruments_max = limits.instruments_max
        self._price_levels_max = limits.price_levels_max
        if min(self._orders_max, self._accounts_max, self._instruments_max,
               self._orders_per_book_max, self._price_levels_max) < 1:
            raise ValueError("every engine limit must be at least 1")
        self._orders = <Order*>calloc(self._orders_max, sizeof(Order))
        self._free = <int32_t*>malloc(self._orders_max * sizeof(int32_t))
        self._instruments = <Instrument*>calloc(self._instruments_max, sizeof(Instrument))
        self._account_head = <int32_t*>malloc(self._accounts_max * sizeof(int32_t))
        self._account_tail = <int32_t*>malloc(self._accounts_max * sizeof(int32_t))
        self._heap = <int32_t*>malloc(self._orders_max * sizeof(int32_t))
        self._events = <Event*>malloc(EVENTS_INITIAL * sizeof(Event))
        self._touched = <Touched*>malloc(TOUCHED_INITIAL * sizeof(Touched))
        if (self._orders == NULL or self._free == NULL or self._instruments == NULL
                or self._account_head == NULL or self._account_tail == NULL
                or self._heap == NULL or self._events == NULL or self._touched == NULL):
            raise MemoryError()
        memset(self._account_head, 0xFF, self._accounts_max * sizeof(int32_t))
        memset(self._account_tail, 0xFF, self._accounts_max * sizeof(int32_t))
        _map_init(&self._by_order_id)
        _map_init(&self._by_client_id)
        self._event_capacity = EVENTS_INITIAL
        self._touched_capacity = TOUCHED_INITIAL
        self._epoch = 1
        self._next_order_id = 1
        self._next_trade_id = 1

    def __dealloc__(self):
        cdef int32_t i
        if self._instruments != NULL:
            for i in range(self._instruments_max):
                _ladder_free(&self._instruments[i].bids)
                _ladder_free(&self._instruments[i].asks)
        free(self._orders)
        free(self._free)
        free(self._instruments)
        free(self._account_head)
        free(self._account_tail)
        free(self._heap)
        free(self._events)
        free(self._touched)
        free(self._by_order_id.slots)
        free(self._by_client_id.slots)

    # -- EVENTS --

    cdef Event* _event(self, uint8_t kind) except NULL:
        cdef Event* e
        if self._event_count == self._event_capacity:
            e = <Event*>realloc(self._events, 2 * self._event_capacity * sizeof(Event))
            if e == NULL:
                raise MemoryError()
            self._events = e
            self._event_capacity *= 2
        e = &self._events[self._event_count]
        self._event_count += 1
        e[0] = _ZERO_EVENT  # a struct copy: plain vector stores, cheaper here than memset
        self._seq += 1
        e.seq = self._seq
        e.ts_ns = self._now_ts_ns
        e.kind = kind
        e.command_index = self._command_index
        return e

    cdef int _order_event(self, uint8_t kind, const Order* o, uint16_t reason,
                          int64_t quantity_lots, uint8_t status) except -1:
        cdef Event* e = self._event(kind)
        e.order_id = o.order_id
        e.account_id = o.account_id
        e.client_order_id = o.client_order_id
        e.instrument_id = o.instrument_id
        e.side = o.side
        e.price_ticks = o.price_ticks
        e.quantity_lots = quantity_lots
        e.leaves_lots = o.leaves_lots
        e.reason = reason
        e.status = status
        return 0

    cdef int _reject(self, const Command* c, int64_t reason) except -1:
        cdef Event* e = self._event(EVENTKIND_REJECTED)
        e.order_id = c.order_id
        e.account_id = c.account_id
        e.client_order_id = c.client_order_id
        e.instrument_id = c.instrument_id
        e.side = c.side
        e.price_ticks = c.price_ticks
        e.quantity_lots = c.quantity_lots
        e.reason = <uint16_t>reason
        e.status = ORDERSTATUS_REJECTED
        return 0

    # -- BOOK --

    cdef Level* _level(self, Ladder* lad, int64_t slot) except NULL:
        cdef Chunk* ch = lad.chunks[slot >> CHUNK_SHIFT]
        if ch == NULL:
            ch = <Chunk*>calloc(1, sizeof(Chunk))
            if ch == NULL:
                raise MemoryError()
            lad.chunks[slot >> CHUNK_SHIFT] = ch
        return &ch.levels[slot & CHUNK_MASK]

    cdef int _touch(self, Ladder* lad, int64_t slot, Level* lv) except -1:
        """Remember a level's quantity the first time the current command changes it."""
        cdef Touched* t
        if lv.touched_epoch == self._epoch:
            return 0
        lv.touched_epoch = self._epoch
        lv.touched_quantity_lots = lv.quantity_lots
        if self._touched_count == self._touched_capacity:
            t = <Touched*>realloc(self._touched, 2 * self._touched_capacity * sizeof(Touched))
            if t == NULL:
                raise MemoryError()
            self._touched = t
            self._touched_capacity *= 2
        t = &self._touched[self._touched_count]
        self._touched_count += 1
        t.instrument_id = lad.instrument_id
        t.side = lad.side
        t.slot = slot
        return 0

    cdef int _flush_deltas(self) except -1:
        """Emit BOOK_DELTA for each touched level that changed, in order of first touch."""
        cdef int64_t i
        cdef Touched* t
        cdef Instrument* ins
        cdef Ladder* lad
        cdef Level* lv
        cdef Event* e
        for i in range(self._touched_count):
            t = &self._touched[i]
            ins = &self._instruments[t.instrument_id]
            lad = _own_ladder(ins, t.side)
            lv = &lad.chunks[t.slot >> CHUNK_SHIFT].levels[t.slot & CHUNK_MASK]
            if lv.quantity_lots != lv.touched_quantity_lots:
                e = self._event(EVENTKIND_BOOK_DELTA)
                e.instrument_id = t.instrument_id
                e.side = t.side
                e.price_ticks = _price_of(ins, t.slot)
                e.quantity_lots = lv.quantity_lots
                e.leaves_lots = lv.count
        self._touched_count = 0
        self._epoch += 1
        return 0

    cdef int _push_tail(self, Instrument* ins, int32_t idx) except -1:
        """Append a pooled order to the tail of its price level. O(1)."""
        cdef Order* o = &self._orders[idx]
        cdef Ladder* lad = _own_ladder(ins, o.side)
        cdef int64_t slot = o.slot
        cdef Level* lv = self._level(lad, slot)
        self._touch(lad, slot, lv)
        o.next = -1
        if lv.count == 0:
            o.prev = -1
            lv.head = idx
            lv.tail = idx
            lv.count = 1
            lv.quantity_lots = o.leaves_lots
            _set_bit(lad, slot)
        else:
            o.prev = lv.tail
            self._orders[lv.tail].next = idx
            lv.tail = idx
            lv.count += 1
            lv.quantity_lots += o.leaves_lots
        return 0

    cdef int _unlink(self, Instrument* ins, int32_t idx) except -1:
        """Take a pooled order out of its price level queue. O(1) plus the best-price search."""
        cdef Order* o = &self._orders[idx]
        cdef Ladder* lad = _own_ladder(ins, o.side)
        cdef int64_t slot = o.slot
        cdef Level* lv = &lad.chunks[slot >> CHUNK_SHIFT].levels[slot & CHUNK_MASK]
        self._touch(lad, slot, lv)
        if o.prev >= 0:
            self._orders[o.prev].next = o.next
        else:
            lv.head = o.next
        if o.next >= 0:
            self._orders[o.next].prev = o.prev
        else:
            lv.tail = o.prev
        lv.count -= 1
        lv.quantity_lots -= o.leaves_lots
        _invariant(lv.count >= 0 and lv.quantity_lots >= 0, "level totals went negative")
        if lv.count == 0:
            _invariant(lv.quantity_lots == 0, "an empty level kept quantity")
            _clear_bit(lad, slot)
        return 0

    cdef int _reduce(self, Instrument* ins, int32_t idx, int64_t quantity_lots) except -1:
        """Take quantity from a resting order in place; it keeps its time priority."""
        cdef Order* o = &self._orders[idx]
        cdef Ladder* lad = _own_ladder(ins, o.side)
        cdef int64_t slot = o.slot
        cdef Level* lv = &lad.chunks[slot >> CHUNK_SHIFT].levels[slot & CHUNK_MASK]
        self._touch(lad, slot, lv)
        o.leaves_lots -= quantity_lots
        lv.quantity_lots -= quantity_lots
        return 0

    cdef int32_t _rest(self, Instrument* ins, const Order* o) except -2:
        """Put a new order into the pool, its level, its account's list and the maps."""
        cdef int32_t idx
        cdef int32_t pos, parent
        cdef Order* p
        if self._free_count > 0:
            self._free_count -= 1
            idx = self._free[self._free_count]
        else:
            _invariant(self._fresh_count < self._orders_max, "order pool overrun")
            idx = self._fresh_count
            self._fresh_count += 1
        p = &self._orders[idx]
        memcpy(p, o, sizeof(Order))
        p.heap_pos = -1
        p.slot = _slot_of(ins, p.price_ticks)
        self._push_tail(ins, idx)
        # Account list: appended at acceptance, so it stays in ascending order id.
        p.account_next = -1
        p.account_prev = self._account_tail[p.account_id]
        if p.account_prev >= 0:
            self._orders[p.account_prev].account_next = idx
        else:
            self._account_head[p.account_id] = idx
        self._account_tail[p.account_id] = idx
        _map_put(&self._by_order_id, p.order_id, 0, idx)
        _map_put(&self._by_client_id, p.account_id, p.client_order_id, idx)
        ins.order_count += 1
        if p.time_in_force == TIMEINFORCE_GTD:
            pos = self._heap_count
            self._heap_count += 1
            while pos > 0:
                parent = (pos - 1) >> 1
                if not _heap_less(self._orders, idx, self._heap[parent]):
                    break
                self._heap[pos] = self._heap[parent]
                self._orders[self._heap[pos]].heap_pos = pos
                pos = parent
            self._heap[pos] = idx
            p.heap_pos = pos
        return idx

    cdef int _release(self, Instrument* ins, int32_t idx) except -1:
        """Forget an order already unlinked from its level: account list, maps, heap, pool."""
        cdef Order* o = &self._orders[idx]
        cdef int32_t pos, child, last
        if o.account_prev >= 0:
            self._orders[o.account_prev].account_next = o.account_next
        else:
            self._account_head[o.account_id] = o.account_next
        if o.account_next >= 0:
            self._orders[o.account_next].account_prev = o.account_prev
        else:
            self._account_tail[o.account_id] = o.account_prev
        _map_remove(&self._by_order_id, o.order_id, 0)
        _map_remove(&self._by_client_id, o.account_id, o.client_order_id)
        ins.order_count -= 1
        if o.heap_pos >= 0:
            # Move the last heap entry into the hole, then sift it up or down.
            self._heap_count -= 1
            pos = o.heap_pos
            last = self._heap[self._heap_count]
            if last != idx:
                while pos > 0 and _heap_less(self._orders, last, self._heap[(pos - 1) >> 1]):
                    self._heap[pos] = self._heap[(pos - 1) >> 1]
                    self._orders[self._heap[pos]].heap_pos = pos
                    pos = (pos - 1) >> 1
                while True:
                    child = 2 * pos + 1
                    if child >= self._heap_count:
                        break
                    if (child + 1 < self._heap_count
                            and _heap_less(self._orders, self._heap[child + 1], self._heap[child])):
                        child += 1
                    if not _heap_less(self._orders, self._heap[child], last):
                        break
                    self._heap[pos] = self._heap[child]
                    self._orders[self._heap[pos]].heap_pos = pos
                    pos = child
                self._heap[pos] = last
                self._orders[last].heap_pos = pos
            o.heap_pos = -1
        o.order_id = 0
        self._free[self._free_count] = idx
        self._free_count += 1
        return 0

    cdef int _cancel_resting(self, Instrument* ins, int32_t idx, uint16_t reason) except -1:
        cdef Order* o = &self._orders[idx]
        cdef int64_t leaves_lots = o.leaves_lots
        self._unlink(ins, idx)
        o.leaves_lots = 0
        self._order_event(EVENTKIND_CANCELLED, o, reason, leaves_lots, ORDERSTATUS_CANCELLED)
        self._release(ins, idx)
        return 0

    # -- MATCHING --

    cdef bint _crosses(self, Instrument* ins, uint8_t side, int64_t price_ticks) noexcept:
        cdef Ladder* opp
        if side == SIDE_BUY:
            opp = &ins.asks
            return opp.best >= 0 and price_ticks >= _price_of(ins, opp.best)
        opp = &ins.bids
        return opp.best >= 0 and price_ticks <= _price_of(ins, opp.best)

    cdef bint _fok_fillable(self, Instrument* ins, const Order* taker) noexcept:
        """Dry walk of the match with no effects: can the taker fill in full?"""
        cdef Ladder* opp = &ins.asks if taker.side == SIDE_BUY else &ins.bids
        cdef int64_t slot = opp.best
        cdef int64_t need = taker.leaves_lots
        cdef int64_t price
        cdef int32_t idx
        cdef Order* maker
        while slot >= 0:
            if taker.order_type == ORDERTYPE_LIMIT:
                price = _price_of(ins, slot)
                if (price > taker.price_ticks if taker.side == SIDE_BUY
                        else price < taker.price_ticks):
                    return False
            idx = opp.chunks[slot >> CHUNK_SHIFT].levels[slot & CHUNK_MASK].head
            while idx >= 0:
                maker = &self._orders[idx]
                if _self_match(taker, maker):
                    if taker.stp_mode != STPMODE_CANCEL_MAKER:
                        return False
                else:
                    need -= maker.leaves_lots
                    if need <= 0:
                        return True
                idx = maker.next
            slot = _next_worse(opp, slot)
        return False

    cdef bint _match(self, Instrument* ins, Order* taker) except? -1:
        """Match a taker against the opposite side. True when STP cancelled the taker."""
        cdef Ladder* opp = &ins.asks if taker.side == SIDE_BUY else &ins.bids
        cdef int64_t slot, price, q
        cdef int32_t idx, next_idx
        cdef Order* maker
        cdef Level* lv
        cdef Event* e
        cdef uint8_t mode = taker.stp_mode
        while taker.leaves_lots > 0 and opp.best >= 0:
            slot = opp.best
            price = _price_of(ins, slot)
            if taker.order_type == ORDERTYPE_LIMIT and (
                    price > taker.price_ticks if taker.side == SIDE_BUY
                    else price < taker.price_ticks):
                break
            lv = &opp.chunks[slot >> CHUNK_SHIFT].levels[slot & CHUNK_MASK]
            self._touch(opp, slot, lv)
            idx = lv.head
            while idx >= 0 and taker.leaves_lots > 0:
                maker = &self._orders[idx]
                next_idx = maker.next
                if _self_match(taker, maker):
                    if mode == STPMODE_DECREMENT_AND_CANCEL:
                        q = taker.leaves_lots if taker.leaves_lots < maker.leaves_lots \
                            else maker.leaves_lots
                        taker.leaves_lots -= q
                        if q == maker.leaves_lots:
                            self._cancel_resting(ins, idx, REASON_SELF_TRADE_PREVENTED)
                        else:
                            self._reduce(ins, idx, q)
                            self._order_event(EVENTKIND_REDUCED, maker,
                                              REASON_SELF_TRADE_PREVENTED, q, _status(maker))
                        if taker.leaves_lots == 0:
                            self._order_event(EVENTKIND_CANCELLED, taker,
                                              REASON_SELF_TRADE_PREVENTED, q,
                                              ORDERSTATUS_CANCELLED)
                            return True
                        self._order_event(EVENTKIND_REDUCED, taker,
                                          REASON_SELF_TRADE_PREVENTED, q, _status(taker))
                    else:
                        if mode != STPMODE_CANCEL_TAKER:
                            self._cancel_resting(ins, idx, REASON_SELF_TRADE_PREVENTED)
                        if mode != STPMODE_CANCEL_MAKER:
                            q = taker.leaves_lots
                            taker.leaves_lots = 0
                            self._order_event(EVENTKIND_CANCELLED, taker,
                                              REASON_SELF_TRADE_PREVENTED, q,
                                              ORDERSTATUS_CANCELLED)
                            return True
                    idx = next_idx
                    continue
                q = taker.leaves_lots if taker.leaves_lots < maker.leaves_lots \
                    else maker.leaves_lots
                taker.leaves_lots -= q
                taker.filled_lots += q
                maker.leaves_lots -= q
                maker.filled_lots += q
                lv.quantity_lots -= q
                e = self._event(EVENTKIND_FILLED)
                e.order_id = taker.order_id
                e.account_id = taker.account_id
                e.client_order_id = taker.client_order_id
                e.instrument_id = taker.instrument_id
                e.side = taker.side
                e.price_ticks = price
                e.quantity_lots = q
                e.leaves_lots = taker.leaves_lots
                e.maker_order_id = maker.order_id
                e.maker_account_id = maker.account_id
                e.maker_client_order_id = maker.client_order_id
                e.maker_leaves_lots = maker.leaves_lots
                e.trade_id = self._next_trade_id
                e.status = _status(taker)
                self._next_trade_id += 1
                if maker.leaves_lots == 0:
                    self._unlink(ins, idx)
                    self._release(ins, idx)
                idx = next_idx
        return False

    # -- COMMANDS --

    cdef int64_t _expire(self) except? -9:
        """Cancel every GTD order whose time has come, earliest (expiry, order id) first."""
        cdef int64_t expired = 0
        cdef int32_t idx
        while self._heap_count > 0:
            idx = self._heap[0]
            if self._orders[idx].expire_ts_ns > self._now_ts_ns:
                break
            self._cancel_resting(&self._instruments[self._orders[idx].instrument_id], idx,
                                 REASON_ORDER_EXPIRED)
            expired += 1
        if expired:
            self._flush_deltas()
        return expired

    cdef int64_t _apply(self, const Command* c) except? -9:
        """Apply one command: time, expiry, the command, its book deltas."""
        cdef int64_t result
        if c.ts_ns > self._now_ts_ns:
            self._now_ts_ns = c.ts_ns
        if self._heap_count > 0:
            result = self._expire()
            if c.kind == COMMANDKIND_ADVANCE_TIME:
                return result
        elif c.kind == COMMANDKIND_ADVANCE_TIME:
            return 0
        if c.kind == COMMANDKIND_AMEND:
            result = self._amend(c)
        elif c.kind == COMMANDKIND_PLACE:
            result = self._place(c)
        elif c.kind == COMMANDKIND_CANCEL:
            result = self._cancel(c)
        elif c.kind == COMMANDKIND_MASS_CANCEL:
            result = self._mass_cancel(c)
        elif c.kind == COMMANDKIND_HALT:
            result = self._set_status(c, INSTRUMENTSTATUS_HALTED)
        elif c.kind == COMMANDKIND_RESUME:
            result = self._set_status(c, INSTRUMENTSTATUS_OPEN)
        else:
            self._reject(c, REASON_COMMAND_KIND_MUST_BE_VALID)
            result = 0
        if self._touched_count:
            self._flush_deltas()
        return result

    cdef int64_t _check_place(self, const Command* c, Instrument** out) noexcept:
        cdef Instrument* ins
        cdef int64_t q = c.quantity_lots
        cdef int64_t p = c.price_ticks
        cdef bint is_limit = c.order_type == ORDERTYPE_LIMIT
        cdef bint may_rest
        if c.side != SIDE_BUY and c.side != SIDE_SELL:
            return REASON_SIDE_MUST_BE_VALID
        if not is_limit and c.order_type != ORDERTYPE_MARKET:
            return REASON_ORDER_TYPE_MUST_BE_VALID
        if c.time_in_force < TIMEINFORCE_GTC or c.time_in_force > TIMEINFORCE_GTD:
            return REASON_TIME_IN_FORCE_MUST_BE_VALID
        if c.stp_mode < STPMODE_CANCEL_TAKER or c.stp_mode > STPMODE_DECREMENT_AND_CANCEL:
            return REASON_STP_MODE_MUST_BE_VALID
        if c.account_id < 0 or c.account_id >= self._accounts_max:
            return REASON_ACCOUNT_ID_MUST_BE_IN_RANGE
        if c.instrument_id < 0 or c.instrument_id >= self._instruments_max:
            return REASON_INSTRUMENT_MUST_EXIST
        ins = &self._instruments[c.instrument_id]
        out[0] = ins
        if ins.status == 0:
            return REASON_INSTRUMENT_MUST_EXIST
        if ins.status != INSTRUMENTSTATUS_OPEN:
            return REASON_INSTRUMENT_MUST_BE_OPEN
        if q <= 0:
            return REASON_QUANTITY_MUST_BE_POSITIVE
        if ins.quantity_increment_lots != 1 and q % ins.quantity_increment_lots:
            return REASON_QUANTITY_MUST_BE_MULTIPLE_OF_INCREMENT
        if q < ins.quantity_min_lots:
            return REASON_QUANTITY_MUST_BE_AT_LEAST_MINIMUM
        if q > ins.quantity_max_lots:
            return REASON_QUANTITY_MUST_BE_AT_MOST_MAXIMUM
        if is_limit:
            if ins.price_increment_ticks != 1 and p % ins.price_increment_ticks:
                return REASON_PRICE_MUST_BE_MULTIPLE_OF_INCREMENT
            if p < ins.price_min_ticks or p > ins.price_max_ticks:
                return REASON_PRICE_MUST_BE_WITHIN_BAND
            # price * q >= notional_min without overflowing: price >= ceil(notional_min / q).
            if p < ins.notional_min // q + (ins.notional_min % q != 0):
                return REASON_NOTIONAL_MUST_BE_AT_LEAST_MINIMUM
        elif c.time_in_force != TIMEINFORCE_IOC and c.time_in_force != TIMEINFORCE_FOK:
            return REASON_MARKET_ORDER_MUST_BE_IOC_OR_FOK
        may_rest = is_limit and (c.time_in_force == TIMEINFORCE_GTC
                                 or c.time_in_force == TIMEINFORCE_GTD)
        if c.post_only and not may_rest:
            return REASON_POST_ONLY_ORDER_MUST_BE_GTC_OR_GTD_LIMIT
        if (c.expire_ts_ns != 0) != (c.time_in_force == TIMEINFORCE_GTD):
            return REASON_EXPIRE_TIME_MUST_BE_GIVEN_FOR_GTD_ONLY
        if c.time_in_force == TIMEINFORCE_GTD and c.expire_ts_ns <= self._now_ts_ns:
            return REASON_EXPIRE_TIME_MUST_BE_IN_FUTURE
        if _map_get(&self._by_client_id, c.account_id, c.client_order_id) >= 0:
            return REASON_CLIENT_ORDER_ID_MUST_BE_UNIQUE
        if may_rest:
            if ins.order_count >= self._orders_per_book_max:
                return REASON_BOOK_MUST_HAVE_CAPACITY
            if self._free_count == 0 and self._fresh_count >= self._orders_max:
                return REASON_ENGINE_MUST_HAVE_ORDER_CAPACITY
            if c.post_only and self._crosses(ins, c.side, p):
                return REASON_POST_ONLY_ORDER_MUST_NOT_CROSS
        return REASON_OK

    cdef int64_t _place(self, const Command* c) except? -9:
        cdef Instrument* ins = NULL
        cdef int64_t reason = self._check_place(c, &ins)
        cdef Order taker
        cdef bint cancelled
        cdef int64_t remainder_lots
        cdef Command rejected
        if reason != REASON_OK:
            # A place has no order id yet, and a market order no price: both report 0.
            rejected = c[0]
            rejected.order_id = 0
            if c.order_type == ORDERTYPE_MARKET:
                rejected.price_ticks = 0
            self._reject(&rejected, reason)
            return 0
        memset(&taker, 0, sizeof(Order))
        taker.order_id = self._next_order_id
        self._next_order_id += 1
        taker.account_id = c.account_id
        taker.client_order_id = c.client_order_id
        taker.price_ticks = c.price_ticks if c.order_type == ORDERTYPE_LIMIT else 0
        taker.leaves_lots = c.quantity_lots
        taker.expire_ts_ns = c.expire_ts_ns
        taker.instrument_id = c.instrument_id
        taker.stp_group = c.stp_group
        taker.side = c.side
        taker.order_type = c.order_type
        taker.time_in_force = c.time_in_force
        taker.stp_mode = c.stp_mode
        taker.post_only = 1 if c.post_only else 0
        self._order_event(EVENTKIND_ACCEPTED, &taker, REASON_OK, taker.leaves_lots,
                          ORDERSTATUS_NEW)
        if c.time_in_force == TIMEINFORCE_FOK and not self._fok_fillable(ins, &taker):
            taker.leaves_lots = 0
            self._order_event(EVENTKIND_CANCELLED, &taker, REASON_FILL_OR_KILL_NOT_FILLABLE,
                              c.quantity_lots, ORDERSTATUS_CANCELLED)
            return taker.order_id
        cancelled = self._match(ins, &taker)
        if cancelled or taker.leaves_lots == 0:
            return taker.order_id
        if c.time_in_force == TIMEINFORCE_GTC or c.time_in_force == TIMEINFORCE_GTD:
            if c.order_type == ORDERTYPE_LIMIT:
                self._rest(ins, &taker)
                return taker.order_id
        remainder_lots = taker.leaves_lots
        taker.leaves_lots = 0
        self._order_event(EVENTKIND_CANCELLED, &taker, REASON_UNFILLED_REMAINDER_CANCELLED,
                          remainder_lots, ORDERSTATUS_CANCELLED)
        return taker.order_id

    cdef int32_t _find(self, const Command* c, bint by_client_id, int64_t* reason) noexcept:
        """The resting order a cancel or amend names, or -1 with the reason.

        Order id 0 names the order by client order id when by_client_id (cancel), else none.
        """
        cdef int32_t idx
        if c.account_id < 0 or c.account_id >= self._accounts_max:
            reason[0] = REASON_ACCOUNT_ID_MUST_BE_IN_RANGE
            return -1
        if c.order_id != 0:
            idx = _map_get(&self._by_order_id, c.order_id, 0)
        elif by_client_id:
            idx = _map_get(&self._by_client_id, c.account_id, c.client_order_id)
        else:
            idx = -1
        if idx < 0:
            reason[0] = REASON_ORDER_MUST_EXIST
            return -1
        if self._orders[idx].account_id != c.account_id:
            reason[0] = REASON_ORDER_MUST_BELONG_TO_ACCOUNT
            return -1
        reason[0] = REASON_OK
        return idx

    cdef int64_t _cancel(self, const Command* c) except? -9:
        cdef int64_t reason
        cdef int32_t idx = self._find(c, True, &reason)
        if idx < 0:
            self._reject(c, reason)
            return reason
        self._cancel_resting(&self._instruments[self._orders[idx].instrument_id], idx,
                             REASON_CANCELLED_BY_USER)
        return REASON_OK

    cdef int64_t _amend(self, const Command* c) except? -9:
        cdef int64_t reason
        cdef int32_t idx = self._find(c, False, &reason)
        cdef Instrument* ins
        cdef Order* o
        cdef int64_t q = c.quantity_lots
        cdef int64_t p = c.price_ticks
        if idx < 0:
            self._reject(c, reason)
            return reason
        o = &self._orders[idx]
        ins = &self._instruments[o.instrument_id]
        if p == 0:
            p = o.price_ticks
        if ins.status != INSTRUMENTSTATUS_OPEN:
            reason = REASON_INSTRUMENT_MUST_BE_OPEN
        elif q <= 0:
            reason = REASON_QUANTITY_MUST_BE_POSITIVE
        elif ins.quantity_increment_lots != 1 and q % ins.quantity_increment_lots:
            reason = REASON_QUANTITY_MUST_BE_MULTIPLE_OF_INCREMENT
        elif q > ins.quantity_max_lots:
            reason = REASON_QUANTITY_MUST_BE_AT_MOST_MAXIMUM
        elif ins.price_increment_ticks != 1 and p % ins.price_increment_ticks:
            reason = REASON_PRICE_MUST_BE_MULTIPLE_OF_INCREMENT
        elif p < ins.price_min_ticks or p > ins.price_max_ticks:
            reason = REASON_PRICE_MUST_BE_WITHIN_BAND
        elif p == o.price_ticks and q == o.leaves_lots:
            reason = REASON_AMEND_MUST_CHANGE_ORDER
        elif p != o.price_ticks and o.post_only and self._crosses(ins, o.side, p):
            reason = REASON_POST_ONLY_ORDER_MUST_NOT_CROSS
        if reason != REASON_OK:
            self._reject(c, reason)
            return reason
        if p == o.price_ticks and q < o.leaves_lots:
            self._reduce(ins, idx, o.leaves_lots - q)
            self._order_event(EVENTKIND_AMENDED, o, REASON_OK, q, _status(o))
            return REASON_OK
        self._unlink(ins, idx)
        o.price_ticks = p
        o.slot = _slot_of(ins, p)
        o.leaves_lots = q
        self._order_event(EVENTKIND_AMENDED, o, REASON_OK, q, _status(o))
        if self._match(ins, o) or o.leaves_lots == 0:
            self._release(ins, idx)
        else:
            self._push_tail(ins, idx)
        return REASON_OK

    cdef int64_t _mass_cancel(self, const Command* c) except? -9:
        cdef int32_t idx, next_idx
        cdef int64_t count = 0
        if c.account_id < 0 or c.account_id >= self._accounts_max:
            self._reject(c, REASON_ACCOUNT_ID_MUST_BE_IN_RANGE)
            return -REASON_ACCOUNT_ID_MUST_BE_IN_RANGE
        if c.instrument_id != -1 and (
                c.instrument_id < 0 or c.instrument_id >= self._instruments_max
                or self._instruments[c.instrument_id].status == 0):
            self._reject(c, REASON_INSTRUMENT_MUST_EXIST)
            return -REASON_INSTRUMENT_MUST_EXIST
        idx = self._account_head[c.account_id]
        while idx >= 0:
            next_idx = self._orders[idx].account_next
            if c.instrument_id == -1 or self._orders[idx].instrument_id == c.instrument_id:
                self._cancel_resting(&self._instruments[self._orders[idx].instrument_id], idx,
                                     REASON_MASS_CANCELLED)
                count += 1
            idx = next_idx
        return count

    cdef int64_t _set_status(self, const Command* c, uint8_t status) except? -9:
        cdef Instrument* ins
        cdef Event* e
        cdef Ladder* lad
        cdef Level* lv
        cdef int s
        if (c.instrument_id < 0 or c.instrument_id >= self._instruments_max
                or self._instruments[c.instrument_id].status == 0):
            self._reject(c, REASON_INSTRUMENT_MUST_EXIST)
            return REASON_INSTRUMENT_MUST_EXIST
        ins = &self._instruments[c.instrument_id]
        ins.status = status
        e = self._event(EVENTKIND_INSTRUMENT_STATUS)
        e.instrument_id = c.instrument_id
        e.status = status
        if status == INSTRUMENTSTATUS_HALTED and c.cancel_resting:
            for s in range(2):
                lad = &ins.bids if s == 0 else &ins.asks
                while lad.best >= 0:
                    lv = &lad.chunks[lad.best >> CHUNK_SHIFT].levels[lad.best & CHUNK_MASK]
                    self._cancel_resting(ins, lv.head, REASON_INSTRUMENT_HALTED)
        return REASON_OK

    # -- PUBLIC COMMANDS --

    def add_instrument(self, int32_t instrument_id, *, int64_t price_increment_ticks,
                       int64_t quantity_increment_lots, int64_t quantity_min_lots,
                       int64_t quantity_max_lots, int64_t notional_min,
                       int64_t price_min_ticks, int64_t price_max_ticks):
        """Add an instrument (open for trading). Returns the reason, 0 on success."""
        cdef Instrument* ins
        cdef Command c
        cdef Event* e
        cdef int64_t reason = REASON_OK
        cdef int64_t levels
        if instrument_id < 0 or instrument_id >= self._instruments_max:
            reason = REASON_INSTRUMENT_ID_MUST_BE_IN_RANGE
        elif self._instruments[instrument_id].status != 0:
            reason = REASON_INSTRUMENT_MUST_NOT_EXIST
        elif (price_increment_ticks < 1 or quantity_increment_lots < 1
              or quantity_min_lots < 1 or quantity_min_lots > quantity_max_lots
              or notional_min < 0 or price_min_ticks < 1 or price_min_ticks > price_max_ticks
              or price_min_ticks % price_increment_ticks
              or price_max_ticks % price_increment_ticks):
            reason = REASON_INSTRUMENT_PARAMETERS_MUST_BE_VALID
        else:
            levels = (price_max_ticks - price_min_ticks) // price_increment_ticks + 1
            if levels > self._price_levels_max:
                reason = REASON_PRICE_LEVELS_MUST_NOT_EXCEED_MAXIMUM
        if reason != REASON_OK:
            memset(&c, 0, sizeof(Command))
            c.instrument_id = instrument_id
            self._command_index = 0
            self._reject(&c, reason)
            return reason
        ins = &self._instruments[instrument_id]
        ins.price_increment_ticks = price_increment_ticks
        ins.quantity_increment_lots = quantity_increment_lots
        ins.quantity_min_lots = quantity_min_lots
        ins.quantity_max_lots = quantity_max_lots
        ins.notional_min = notional_min
        ins.price_min_ticks = price_min_ticks
        ins.price_max_ticks = price_max_ticks
        ins.order_count = 0
        ins.instrument_id = instrument_id
        _ladder_init(&ins.bids, instrument_id, SIDE_BUY, levels)
        _ladder_init(&ins.asks, instrument_id, SIDE_SELL, levels)
        ins.status = INSTRUMENTSTATUS_OPEN
        self._command_index = 0
        e = self._event(EVENTKIND_INSTRUMENT_STATUS)
        e.instrument_id = instrument_id
        e.status = INSTRUMENTSTATUS_OPEN
        return REASON_OK

    def place(self, int64_t ts_ns, int32_t instrument_id, int64_t account_id,
              int64_t client_order_id, int side, int64_t price_ticks, int64_t quantity_lots,
              *, int order_type=ORDERTYPE_LIMIT, int time_in_force=TIMEINFORCE_GTC,
              int64_t expire_ts_ns=0, bint post_only=False, int32_t stp_group=0,
              int stp_mode=STPMODE_CANCEL_TAKER):
        """Place an order. Returns its order id, or 0 when rejected."""
        cdef Command c
        c.kind = COMMANDKIND_PLACE
        c.ts_ns = ts_ns
        c.instrument_id = instrument_id
        c.account_id = account_id
        c.client_order_id = client_order_id
        c.order_id = 0
        c.side = <uint8_t>side if 0 <= side <= 255 else 0
        c.price_ticks = price_ticks
        c.quantity_lots = quantity_lots
        c.order_type = <uint8_t>order_type if 0 <= order_type <= 255 else 0
        c.time_in_force = <uint8_t>time_in_force if 0 <= time_in_force <= 255 else 0
        c.expire_ts_ns = expire_ts_ns
        c.post_only = 1 if post_only else 0
        c.stp_group = stp_group
        c.stp_mode = <uint8_t>stp_mode if 0 <= stp_mode <= 255 else 0
        c.cancel_resting = 0
        self._command_index = 0
        return self._apply(&c)

    def cancel(self, int64_t ts_ns, int64_t account_id, int64_t order_id=0,
               int64_t client_order_id=0):
        """Cancel a resting order by order id, or by client order id when order_id is 0."""
        cdef Command c
        memset(&c, 0, sizeof(Command))
        c.kind = COMMANDKIND_CANCEL
        c.ts_ns = ts_ns
        c.account_id = account_id
        c.order_id = order_id
        c.client_order_id = client_order_id
        self._command_index = 0
        return self._apply(&c)

    def amend(self, int64_t ts_ns, int64_t account_id, int64_t order_id, int64_t price_ticks,
              int64_t quantity_lots):
        """Change price (0 keeps it) and/or open quantity. Returns the reason, 0 on success."""
        cdef Command c
        memset(&c, 0, sizeof(Command))
        c.kind = COMMANDKIND_AMEND
        c.ts_ns = ts_ns
        c.account_id = account_id
        c.order_id = order_id
        c.price_ticks = price_ticks
        c.quantity_lots = quantity_lots
        self._command_index = 0
        return self._apply(&c)

    def mass_cancel(self, int64_t ts_ns, int64_t account_id, int32_t instrument_id=-1):
        """Cancel an account's resting orders. Returns the count, or -reason when rejected."""
        cdef Command c
        memset(&c, 0, sizeof(Command))
        c.kind = COMMANDKIND_MASS_CANCEL
        c.ts_ns = ts_ns
        c.account_id = account_id
        c.instrument_id = instrument_id
        self._command_index = 0
        return self._apply(&c)

    def halt(self, int64_t ts_ns, int32_t instrument_id, bint cancel_resting=False):
        """Stop trading an instrument, optionally cancelling its book. Returns the reason."""
        cdef Command c
        memset(&c, 0, sizeof(Command))
        c.kind = COMMANDKIND_HALT
        c.ts_ns = ts_ns
        c.instrument_id = instrument_id
        c.cancel_resting = 1 if cancel_resting else 0
        self._command_index = 0
        return self._apply(&c)

    def resume(self, int64_t ts_ns, int32_t instrument_id):
        """Open a halted instrument again. Returns the reason."""
        cdef Command c
        memset(&c, 0, sizeof(Command))
        c.kind = COMMANDKIND_RESUME
        c.ts_ns = ts_ns
        c.instrument_id = instrument_id
        self._command_index = 0
        return self._apply(&c)

    def advance_time(self, int64_t ts_ns):
        """Move sequenced time forward and expire GTD orders. Returns how many expired."""
        cdef Command c
        memset(&c, 0, sizeof(Command))
        c.kind = COMMANDKIND_ADVANCE_TIME
        c.ts_ns = ts_ns
        self._command_index = 0
        return self._apply(&c)

    def process(self, cnp.ndarray commands not None, cnp.ndarray latency_ns=None):
        """Apply a batch of commands (COMMAND_DTYPE) and return their events (EVENT_DTYPE).

        Parameters
        ----------
        commands : numpy.ndarray
            One-dimensional, C-contiguous, dtype COMMAND_DTYPE.
        latency_ns : numpy.ndarray, optional
            int64, one per command: filled with each command's processing time, for benchmarks.
        """
        cdef const Command* cmds
        cdef int64_t* lat = NULL
        cdef Py_ssize_t n, i
        cdef int64_t start = self._event_count
        cdef int64_t t0
        cdef cnp.ndarray out
        if commands.dtype != COMMAND_DTYPE or commands.ndim != 1:
            raise TypeError("commands must be a one-dimensional array of COMMAND_DTYPE")
        if not commands.flags.c_contiguous:
            commands = np.ascontiguousarray(commands)
        n = commands.shape[0]
        cmds = <const Command*>cnp.PyArray_DATA(commands)
        if latency_ns is not None:
            if (latency_ns.dtype != np.int64 or latency_ns.ndim != 1
                    or latency_ns.shape[0] != n or not latency_ns.flags.c_contiguous):
                raise TypeError("latency_ns must be a contiguous int64 array, one per command")
            lat = <int64_t*>cnp.PyArray_DATA(latency_ns)
        for i in range(n):
            self._command_index = <int32_t>i
            if lat != NULL:
                t0 = _clock_ns()
                self._apply(&cmds[i])
                lat[i] = _clock_ns() - t0
            else:
                self._apply(&cmds[i])
        out = np.empty(self._event_count - start, dtype=EVENT_DTYPE)
        memcpy(cnp.PyArray_DATA(out), &self._events[start],
               (self._event_count - start) * sizeof(Event))
        self._event_count = start
        return out

    def drain_events(self):
        """Events of per-call commands since the last drain, as an EVENT_DTYPE array."""
        cdef cnp.ndarray out = np.empty(self._event_count, dtype=EVENT_DTYPE)
        memcpy(cnp.PyArray_DATA(out), self._events, self._event_count * sizeof(Event))
        self._event_count = 0
        return out

    # -- QUERIES --

    cdef Instrument* _instrument(self, int32_t instrument_id) except NULL:
        if (instrument_id < 0 or instrument_id >= self._instruments_max
                or self._instruments[instrument_id].status == 0):
            raise KeyError(f"no instrument {instrument_id}")
        return &self._instruments[instrument_id]

    def bbo(self, int32_t instrument_id):
        """(bid_price_ticks, bid_quantity_lots, ask_price_ticks, ask_quantity_lots). O(1)."""
        cdef Instrument* ins = self._instrument(instrument_id)
        cdef Ladder* lad
        cdef int s
        result = []
        for s in range(2):
            lad = &ins.bids if s == 0 else &ins.asks
            if lad.best < 0:
                result += [0, 0]
            else:
                result += [_price_of(ins, lad.best),
                           lad.chunks[lad.best >> CHUNK_SHIFT].levels[
                               lad.best & CHUNK_MASK].quantity_lots]
        return tuple(result)

    def depth(self, int32_t instrument_id, int levels):
        """(bids, asks): lists of (price_ticks, quantity_lots, order_count), best first."""
        cdef Instrument* ins = self._instrument(instrument_id)
        cdef Ladder* lad
        cdef Level* lv
        cdef int64_t slot
        cdef int s
        sides = []
        for s in range(2):
            lad = &ins.bids if s == 0 else &ins.asks
            rows = []
            slot = lad.best
            while slot >= 0 and len(rows) < levels:
                lv = &lad.chunks[slot >> CHUNK_SHIFT].levels[slot & CHUNK_MASK]
                rows.append((_price_of(ins, slot), lv.quantity_lots, lv.count))
                slot = _next_worse(lad, slot)
            sides.append(rows)
        return sides[0], sides[1]

    cdef dict _order_dict(self, const Order* o):
        return {
            "order_id": o.order_id, "account_id": o.account_id,
            "client_order_id": o.client_order_id, "price_ticks": o.price_ticks,
            "leaves_lots": o.leaves_lots, "filled_lots": o.filled_lots,
            "expire_ts_ns": o.expire_ts_ns, "instrument_id": o.instrument_id,
            "stp_group": o.stp_group, "side": o.side, "order_type": o.order_type,
            "time_in_force": o.time_in_force, "stp_mode": o.stp_mode,
            "post_only": o.post_only, "status": _status(o),
        }

    def order(self, int64_t order_id):
        """A resting order as a dict, or None for an unknown or finished order. O(1)."""
        cdef int32_t idx = _map_get(&self._by_order_id, order_id, 0) if order_id else -1
        if idx < 0:
            return None
        return self._order_dict(&self._orders[idx])

    def open_orders(self, int64_t account_id):
        """An account's resting orders in ascending order id. O(orders of the account)."""
        cdef int32_t idx
        if account_id < 0 or account_id >= self._accounts_max:
            return []
        result = []
        idx = self._account_head[account_id]
        while idx >= 0:
            result.append(self._order_dict(&self._orders[idx]))
            idx = self._orders[idx].account_next
        return result

    @property
    def now_ts_ns(self):
        return self._now_ts_ns

    @property
    def next_expiry_ts_ns(self):
        """When the earliest resting GTD order expires; 0 when none rests. O(1)."""
        if self._heap_count == 0:
            return 0
        return self._orders[self._heap[0]].expire_ts_ns

    # -- SNAPSHOTS --

    def _state(self):
        cdef int32_t i, n_instruments = 0
        cdef int64_t n_orders = 0, slot
        cdef Instrument* ins
        cdef Ladder* lad
        cdef int32_t idx
        cdef Order* o
        cdef SnapInstrument* si
        cdef SnapOrder* so
        cdef int s
        for i in range(self._instruments_max):
            if self._instruments[i].status:
                n_instruments += 1
                n_orders += self._instruments[i].order_count
        instruments = np.zeros(n_instruments, dtype=INSTRUMENT_DTYPE)
        orders = np.zeros(n_orders, dtype=ORDER_DTYPE)
        si = <SnapInstrument*>cnp.PyArray_DATA(instruments)
        so = <SnapOrder*>cnp.PyArray_DATA(orders)
        for i in range(self._instruments_max):
            ins = &self._instruments[i]
            if not ins.status:
                continue
            si.price_increment_ticks = ins.price_increment_ticks
            si.quantity_increment_lots = ins.quantity_increment_lots
            si.quantity_min_lots = ins.quantity_min_lots
            si.quantity_max_lots = ins.quantity_max_lots
            si.notional_min = ins.notional_min
            si.price_min_ticks = ins.price_min_ticks
            si.price_max_ticks = ins.price_max_ticks
            si.instrument_id = i
            si.status = ins.status
            si += 1
            for s in range(2):
                lad = &ins.bids if s == 0 else &ins.asks
                slot = lad.best
                while slot >= 0:
                    idx = lad.chunks[slot >> CHUNK_SHIFT].levels[slot & CHUNK_MASK].head
                    while idx >= 0:
                        o = &self._orders[idx]
                        so.order_id = o.order_id
                        so.account_id = o.account_id
                        so.client_order_id = o.client_order_id
                        so.price_ticks = o.price_ticks
                        so.leaves_lots = o.leaves_lots
                        so.filled_lots = o.filled_lots
                        so.expire_ts_ns = o.expire_ts_ns
                        so.instrument_id = o.instrument_id
                        so.stp_group = o.stp_group
                        so.side = o.side
                        so.order_type = o.order_type
                        so.time_in_force = o.time_in_force
                        so.stp_mode = o.stp_mode
                        so.post_only = o.post_only
                        so += 1
                        idx = o.next
                    slot = _next_worse(lad, slot)
        return EngineState(seq=self._seq, next_order_id=self._next_order_id,
                           next_trade_id=self._next_trade_id, now_ts_ns=self._now_ts_ns,
                           instruments=instruments, orders=orders)

    def snapshot(self):
        """The whole engine state as bytes (engine/_snapshot.py), pending events excluded."""
        return encode_state(self._state())

    def state_hash(self):
        """Hex BLAKE2b of the canonical state: equal states, equal hashes."""
        return _state_hash(self.snapshot())

    @classmethod
    def restore(cls, data, limits=None):
        """A new engine in the state a snapshot holds."""
        cdef Engine engine = cls(limits)
        cdef Order o
        cdef Instrument* ins
        cdef int64_t i
        cdef int32_t idx
        cdef Order* o_ptr
        state = decode_state(bytes(data))
        for row in state.instruments.tolist():
            (price_inc, qty_inc, qty_min, qty_max, notional_min, price_min, price_max,
             instrument_id, status) = row
            if engine.add_instrument(
                    instrument_id, price_increment_ticks=price_inc,
                    quantity_increment_lots=qty_inc, quantity_min_lots=qty_min,
                    quantity_max_lots=qty_max, notional_min=notional_min,
                    price_min_ticks=price_min, price_max_ticks=price_max) != REASON_OK:
                raise SnapshotError(f"snapshot instrument {instrument_id} does not fit")
            if status not in (INSTRUMENTSTATUS_OPEN, INSTRUMENTSTATUS_HALTED):
                raise SnapshotError(f"snapshot instrument {instrument_id} has bad status")
            engine._instruments[instrument_id].status = status
        engine._event_count = 0
        if len(state.orders) > engine._orders_max:
            raise SnapshotError("snapshot holds more orders than this engine's orders_max")
        # Queues are rebuilt in snapshot order; account lists are then relinked by order id.
        for row in state.orders.tolist():
            memset(&o, 0, sizeof(Order))
            o.order_id = row[0]
            o.account_id = row[1]
            o.client_order_id = row[2]
            o.price_ticks = row[3]
            o.leaves_lots = row[4]
            o.filled_lots = row[5]
            o.expire_ts_ns = row[6]
            o.instrument_id = row[7]
            o.stp_group = row[8]
            o.side = row[9]
            o.order_type = row[10]
            o.time_in_force = row[11]
            o.stp_mode = row[12]
            o.post_only = row[13]
            if (o.instrument_id < 0 or o.instrument_id >= engine._instruments_max
                    or engine._instruments[o.instrument_id].status == 0
                    or o.account_id < 0 or o.account_id >= engine._accounts_max
                    or o.leaves_lots <= 0 or o.side not in (SIDE_BUY, SIDE_SELL)):
                raise SnapshotError(f"snapshot order {o.order_id} is not valid here")
            if (_map_get(&engine._by_order_id, o.order_id, 0) >= 0 or _map_get(
                    &engine._by_client_id, o.account_id, o.client_order_id) >= 0):
                raise SnapshotError(f"snapshot order {o.order_id} appears twice")
            ins = &engine._instruments[o.instrument_id]
            if (o.price_ticks < ins.price_min_ticks or o.price_ticks > ins.price_max_ticks
                    or (o.price_ticks - ins.price_min_ticks) % ins.price_increment_ticks):
                raise SnapshotError(f"snapshot order {o.order_id} is off its ladder")
            if ins.order_count >= engine._orders_per_book_max:
                raise SnapshotError(f"snapshot book {o.instrument_id} exceeds orders_per_book_max")
            engine._rest(ins, &o)
        engine._touched_count = 0
        engine._epoch += 1
        memset(engine._account_head, 0xFF, engine._accounts_max * sizeof(int32_t))
        memset(engine._account_tail, 0xFF, engine._accounts_max * sizeof(int32_t))
        for i in np.argsort(state.orders["order_id"], kind="stable").tolist():
            idx = _map_get(&engine._by_order_id, state.orders[i]["order_id"], 0)
            o_ptr = &engine._orders[idx]
            o_ptr.account_next = -1
            o_ptr.account_prev = engine._account_tail[o_ptr.account_id]
            if o_ptr.account_prev >= 0:
                engine._orders[o_ptr.account_prev].account_next = idx
            else:
                engine._account_head[o_ptr.account_id] = idx
            engine._account_tail[o_ptr.account_id] = idx
        engine._seq = state.seq
        engine._next_order_id = state.next_order_id
        engine._next_trade_id = state.next_trade_id
        engine._now_ts_ns = state.now_ts_ns
        return engine

    # -- CHECKS --

    def check_invariants(self):
        """Walk every structure and raise AssertionError on any inconsistency. O(state)."""
        cdef int32_t i, idx, prev
        cdef int64_t slot, total, count, orders_seen = 0, book_orders, last_id
        cdef Instrument* ins
        cdef Ladder* lad
        cdef Level* lv
        cdef Order* o
        cdef int s
        for i in range(self._instruments_max):
            ins = &self._instruments[i]
            if not ins.status:
                continue
            book_orders = 0
            for s in range(2):
                lad = &ins.bids if s == 0 else &ins.asks
                expected_best = (_slot_at_or_before(lad, lad.slots - 1)
                                 if lad.side == SIDE_BUY else _slot_at_or_after(lad, 0))
                _invariant(lad.best == expected_best, "cached best level is stale")
                slot = lad.best
                while slot >= 0:
                    lv = &lad.chunks[slot >> CHUNK_SHIFT].levels[slot & CHUNK_MASK]
                    total = 0
                    count = 0
                    prev = -1
                    idx = lv.head
                    while idx >= 0:
                        o = &self._orders[idx]
                        _invariant(o.prev == prev, "queue back link broken")
                        _invariant(o.leaves_lots > 0, "a resting order has no quantity")
                        _invariant(o.side == lad.side and o.instrument_id == i,
                                   "order in the wrong book")
                        _invariant(_slot_of(ins, o.price_ticks) == slot and o.slot == slot,
                                   "order at wrong level")
                        _invariant(_map_get(&self._by_order_id, o.order_id, 0) == idx,
                                   "order id map out of step")
                        _invariant(_map_get(&self._by_client_id, o.account_id,
                                            o.client_order_id) == idx,
                                   "client order id map out of step")
                        total += o.leaves_lots
                        count += 1
                        prev = idx
                        idx = o.next
                    _invariant(lv.tail == prev, "queue tail broken")
                    _invariant(count > 0 and count == lv.count, "level count out of step")
                    _invariant(total == lv.quantity_lots, "level quantity out of step")
                    book_orders += count
                    slot = _next_worse(lad, slot)
            if ins.bids.best >= 0 and ins.asks.best >= 0:
                _invariant(ins.bids.best < ins.asks.best, "the book is crossed")
            _invariant(book_orders == ins.order_count, "book order count out of step")
            orders_seen += book_orders
        _invariant(orders_seen == self._fresh_count - self._free_count, "pool count out of step")
        for i in range(self._accounts_max):
            last_id = 0
            idx = self._account_head[i]
            while idx >= 0:
                _invariant(self._orders[idx].order_id > last_id, "account list out of order")
                _invariant(self._orders[idx].account_id == i, "order on the wrong account")
                last_id = self._orders[idx].order_id
                idx = self._orders[idx].account_next
        for i in range(self._heap_count):
            _invariant(self._orders[self._heap[i]].heap_pos == i, "heap position out of step")
            if i > 0:
                _invariant(not _heap_less(self._orders, self._heap[i], self._heap[(i - 1) >> 1]),
                           "expiry heap out of order")
        return True
