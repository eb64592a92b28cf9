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

# Listed names fully scored per query name, those sharing the most query letters first: bounds
# the time of a long name made of common words ("islamic republic of iran ... company").
scored_names_max = 300

# Typo blocking reaches list tokens one deletion away; shorter tokens than this are too noisy
# ("li" -> "i") and are only blocked on exact equality.
typo_block_chars_min = 4

# Candidates returned by one screening: enough for an analyst, small enough to store per decision.
candidates_max = 20

# A new list version with fewer entries or addresses from one source than this share of the
# active version's is refused unless an officer accepts it: lists grow and shrink by a few
# delistings at a time, and a file cut short at a line or element boundary still parses.
list_shrink_fraction_max = 0.05
