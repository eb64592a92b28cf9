"""Every limit of the screening package, each with the reason for its value."""

from __future__ import annotations

# A list file larger than this is not a sanctions list we know (the SDN CSV is 2 MB, the UN XML
# 2 MB): refuse it rather than parse an unbounded file into memory.
list_file_bytes_max = 64 * 1024 * 1024

# Names longer than this are not names; truncating keeps one party's screening time bounded.
name_chars_max = 512

# Tokens per name beyond this add nothing to a decision and cost quadratic alignment time.
name_tokens_max = 16

# A blocking token shared by more names than this ("al", "company", "mohammed") would pull in a
# large share of the list; such tokens only block together with a second query token.
block_postings_max = 400

# Listed names fully scored per query name, those with the highest score bound first (names
# whose bound is below the threshold are never scored): bounds the time of a name whose bound is
# loose for many listed names. On the bench's 600 names at most 20 are scored (2 on average).
scored_names_max = 300

# Query tokens whose blocking rows and similarity neighbourhood are kept per index: a token's
# first sight costs a scan of every listed token (about 1 ms), later ones a dictionary look-up.
# About 5 kB each on the 2026 lists, so at most some 40 MB; the cache is emptied when full (it
# only saves time, never changes a result).
query_tokens_cached_max = 1 << 13

# Typo blocking reaches list tokens one deletion away; shorter tokens than this are too noisy
# ("li" -> "i") and are only blocked on exact equality.
typo_block_chars_min = 4

# Candidates returned by one screening: enough for an analyst, small enough to store per decision.
candidates_max = 20

# A new list version with fewer entries or addresses from one source than this share of the
# active version's is refused unless an officer accepts it: lists grow and shrink by a few
# delistings at a time, and a file cut short at a line or element boundary still parses.
list_shrink_fraction_max = 0.05
