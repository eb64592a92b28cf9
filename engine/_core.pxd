# The Cython matching core: a table of contents. Semantics: docs/matching.md.
cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t

# -- RECORDS (same fields and order as engine/_dtypes.py; a test compares the layouts) --

cdef struct Command:
    int64_t ts_ns
    int64_t account_id
    int64_t client_order_id
    int64_t order_id
    int64_t price_ticks
    int64_t quantity_lots
    int64_t expire_ts_ns
    int32_t instrument_id
    int32_t stp_group
    uint8_t kind
    uint8_t side
    uint8_t order_type
    uint8_t time_in_force
    uint8_t stp_mode
    uint8_t post_only
    uint8_t cancel_resting

cdef struct Event:
    int64_t seq
    int64_t ts_ns
    int64_t order_id
    int64_t account_id
    int64_t client_order_id
    int64_t price_ticks
    int64_t quantity_lots
    int64_t leaves_lots
    int64_t maker_order_id
    int64_t maker_account_id
    int64_t maker_client_order_id
    int64_t maker_leaves_lots
    int64_t trade_id
    int32_t command_index
    int32_t instrument_id
    uint16_t reason
    uint8_t kind
    uint8_t side
    uint8_t status

cdef struct SnapInstrument:
    int64_t price_increment_ticks
    int64_t quantity_increment_lots
    int64_t quantity_min_lots
    int64_t quantity_max_lots
    int64_t notional_min
    int64_t price_min_ticks
    int64_t price_max_ticks
    int32_t instrument_id
    uint8_t status

cdef struct SnapOrder:
    int64_t order_id
    int64_t account_id
    int64_t client_order_id
    int64_t price_ticks
    int64_t leaves_lots
    int64_t filled_lots
    int64_t expire_ts_ns
    int32_t instrument_id
    int32_t stp_group
    uint8_t side
    uint8_t order_type
    uint8_t time_in_force
    uint8_t stp_mode
    uint8_t post_only

# -- STATE --

# A resting order in the pool. Links are pool indexes, -1 for none.
cdef struct Order:
    int64_t order_id
    int64_t account_id
    int64_t client_order_id
    int64_t price_ticks
    int64_t leaves_lots
    int64_t filled_lots
    int64_t expire_ts_ns
    int64_t slot            # ladder slot of price_ticks, kept so no level operation divides
    int32_t instrument_id
    int32_t stp_group
    int32_t prev            # price level queue, toward the head
    int32_t next            # price level queue, toward the tail
    int32_t account_prev
    int32_t account_next
    int32_t heap_pos        # place in the GTD expiry heap, -1 when not GTD
    uint8_t side
    uint8_t order_type
    uint8_t time_in_force
    uint8_t stp_mode
    uint8_t post_only

cdef struct Level:
    int64_t quantity_lots
    int64_t touched_quantity_lots   # quantity when the current command first touched it
    int64_t touched_epoch
    int32_t head
    int32_t tail
    int32_t count

# 1,024 price levels and the bitmap of which of them hold orders.
cdef struct Chunk:
    Level levels[1024]
    uint64_t bits[16]

# One side of one book: a dense price ladder over the instrument's band, indexed by slot =
# (price - price_min) / increment. Chunks are allocated on first use; two summary bitmaps (a bit
# per chunk, a bit per word of those) find the next non-empty level in a few word operations.
cdef struct Ladder:
    Chunk** chunks
    uint64_t* chunk_bits
    uint64_t* word_bits
    int64_t slots
    int64_t best            # slot of the best level, -1 when the side is empty
    int32_t chunk_count
    int32_t chunk_word_count
    int32_t word_word_count
    int32_t instrument_id
    uint8_t side

cdef struct Instrument:
    int64_t price_increment_ticks
    int64_t quantity_increment_lots
    int64_t quantity_min_lots
    int64_t quantity_max_lots
    int64_t notional_min
    int64_t price_min_ticks
    int64_t price_max_ticks
    int64_t order_count
    Ladder bids
    Ladder asks
    uint8_t status          # 0: no such instrument
    int32_t instrument_id

# Open-addressing hash map from a pair of int64 keys to a pool index (linear probing, backward
# shift deletion). A stored value is index + 1 so that calloc'd memory is an empty map. It starts
# small and doubles at half load, so it stays as small as the live orders (and in cache).
cdef struct MapSlot:
    int64_t key_a
    int64_t key_b
    int32_t value_plus_one

cdef struct IdMap:
    MapSlot* slots
    uint64_t mask
    uint64_t count

cdef struct Touched:
    int32_t instrument_id
    uint8_t side
    int64_t slot


# final: no subclass can override a method, so C calls them directly and may inline them.
@cython.final
cdef class Engine:
    cdef Order* _orders
    cdef int32_t* _free
    cdef int32_t _free_count
    cdef int32_t _fresh_count
    cdef int32_t _orders_max
    cdef int64_t _orders_per_book_max
    cdef int64_t _accounts_max
    cdef int32_t _instruments_max
    cdef int64_t _price_levels_max
    cdef Instrument* _instruments
    cdef int32_t* _account_head
    cdef int32_t* _account_tail
    cdef IdMap _by_order_id
    cdef IdMap _by_client_id
    cdef int32_t* _heap
    cdef int32_t _heap_count
    cdef Event* _events
    cdef int64_t _event_count
    cdef int64_t _event_capacity
    cdef Touched* _touched
    cdef int64_t _touched_count
    cdef int64_t _touched_capacity
    cdef int64_t _epoch
    cdef int64_t _seq
    cdef int64_t _next_order_id
    cdef int64_t _next_trade_id
    cdef int64_t _now_ts_ns
    cdef int32_t _command_index
    cdef readonly object limits

    # -- COMMANDS --
    cdef int64_t _apply(self, const Command* c) except? -9
    cdef int64_t _place(self, const Command* c) except? -9
    cdef int64_t _cancel(self, const Command* c) except? -9
    cdef int64_t _amend(self, const Command* c) except? -9
    cdef int64_t _mass_cancel(self, const Command* c) except? -9
    cdef int64_t _set_status(self, const Command* c, uint8_t status) except? -9
    cdef int64_t _check_place(self, const Command* c, Instrument** out) noexcept
    cdef int32_t _find(self, const Command* c, bint by_client_id, int64_t* reason) noexcept
    cdef int64_t _expire(self) except? -9

    # -- MATCHING --
    cdef bint _match(self, Instrument* ins, Order* taker) except? -1
    cdef bint _fok_fillable(self, Instrument* ins, const Order* taker) noexcept
    cdef bint _crosses(self, Instrument* ins, uint8_t side, int64_t price_ticks) noexcept

    # -- BOOK --
    cdef Level* _level(self, Ladder* lad, int64_t slot) except NULL
    cdef int _touch(self, Ladder* lad, int64_t slot, Level* lv) except -1
    cdef int _push_tail(self, Instrument* ins, int32_t idx) except -1
    cdef int _unlink(self, Instrument* ins, int32_t idx) except -1
    cdef int _reduce(self, Instrument* ins, int32_t idx, int64_t quantity_lots) except -1
    cdef int32_t _rest(self, Instrument* ins, const Order* o) except -2
    cdef int _release(self, Instrument* ins, int32_t idx) except -1
    cdef int _cancel_resting(self, Instrument* ins, int32_t idx, uint16_t reason) except -1
    cdef int _flush_deltas(self) except -1

    # -- QUERIES --
    cdef Instrument* _instrument(self, int32_t instrument_id) except NULL
    cdef dict _order_dict(self, const Order* o)

    # -- EVENTS --
    cdef Event* _event(self, uint8_t kind) except NULL
    cdef int _order_event(self, uint8_t kind, const Order* o, uint16_t reason,
                          int64_t quantity_lots, uint8_t status) except -1
    cdef int _reject(self, const Command* c, int64_t reason) except -1
