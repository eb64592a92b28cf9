"""Limits of compliance.customers, in one place; each says why it is what it is."""

from __future__ import annotations

# Longest name part stored (given names, family name, legal name): long legal names run to a
# few hundred characters; anything far beyond is a paste error, not a name.
name_chars_max = 300
# Expected products per customer: there are only a handful of products; more is a bad request.
expected_products_max = 16
# Expected monthly volume: 10^15 USD minor units is 10 trillion USD, beyond any customer and
# still far inside a PostgreSQL bigint.
expected_monthly_volume_usd_minor_max = 10**15
# Reason or consent purpose text kept with a change: a sentence or two for the reviewer.
reason_chars_max = 1_000
# Webhook body accepted: a Sumsub review payload is well under 2 KiB; refuse big bodies before
# hashing them.
webhook_body_bytes_max = 64 * 1024
# How far a webhook's createdAtMs may be from our clock, either way: vendors retry for minutes,
# so a few minutes are not enough; receipts are remembered at least this long, so a replay
# inside the window is caught by its digest and one outside by its age.
webhook_age_max_ms = 60 * 60 * 1_000
# Every customer's state is published anew this often (`CustomerStore.publish_all`): well
# inside the gateways' customer_state_age_max_ns (a day), so a live compliance service keeps
# every known customer trading and a dead one fails them closed within a day.
customer_state_refresh_s = 3600.0
