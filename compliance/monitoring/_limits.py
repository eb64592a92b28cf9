"""Every limit of the monitoring package, each with the reason for its value."""

from __future__ import annotations

# A rule configuration file larger than this is not one we wrote: refuse it rather than parse
# an unbounded file (the shipped one is a few kilobytes).
config_bytes_max = 1024 * 1024

# Rules in one configuration: each costs time on every event it applies to.
rules_max = 200

# A sliding window longer than this holds more history per customer than the process should
# keep in memory; longer look-backs belong to the case review, not the stream.
window_s_max = 31 * 24 * 3600

# Entries one customer's window may hold: bounds memory for an account that floods the stream
# (the oldest entries are dropped first and the alert evidence says the window was capped).
window_entries_max = 100_000

# Members of one relation group (wash trading): a group larger than this is a data error.
relation_group_accounts_max = 10_000

# Address labels one custody event may carry.
address_labels_max = 32

# Characters of an address, a VASP name or a label: longer strings are not addresses.
address_chars_max = 256
