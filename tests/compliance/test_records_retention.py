"""Retention dates and the purge decision (compliance.records: RetentionPolicy, due_for_purge).

Goal: a record is kept at least its configured number of years (never a day short, also from
29 February), the most specific rule wins, and the purge decision never picks a record before
its retention date or under legal hold, whatever the clock's time zone. Method: Hypothesis over
dates, policies and clocks against the pure functions (the database-backed purge has its own
test in test_records_store.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.records import (
    DEFAULT_RETENTION_YEARS,
    RetentionError,
    RetentionPolicy,
    RetentionState,
    due_for_purge,
    retention_years_default,
)

starts = st.dates(date(1950, 1, 1), date(2100, 12, 31))
years = st.integers(1, 30)


@given(starts, years)
def test_retain_until_is_never_short(start: date, n: int) -> None:
    policy = RetentionPolicy(years={}, default_years=n)
    until = policy.retain_until("kyc", "FR", start)
    assert until.year == start.year + n
    assert (until.month, until.day) >= (start.month, start.day) or (start.month, start.day) == (
        2,
        29,
    )
    assert until - start >= timedelta(days=365 * n)


def test_defaults_and_precedence() -> None:
    assert retention_years_default == 5
    assert DEFAULT_RETENTION_YEARS[("*", "EU")] == 5
    policy = RetentionPolicy(years={("sar", "*"): 8, ("*", "CH"): 10, ("sar", "CH"): 12})
    assert policy.years_for("kyc", "FR") == 5
    assert policy.years_for("sar", "FR") == 8
    assert policy.years_for("kyc", "CH") == 10
    assert policy.years_for("sar", "CH") == 12


records = st.lists(
    st.builds(
        RetentionState,
        record_id=st.integers(1, 10**9),
        retain_until=st.dates(date(2000, 1, 1), date(2060, 1, 1)),
        legal_hold=st.booleans(),
    ),
    max_size=30,
    unique_by=lambda s: s.record_id,
)
clocks = st.datetimes(datetime(1999, 1, 1), datetime(2061, 1, 1), timezones=st.timezones())


@given(records, clocks)
def test_due_for_purge_never_picks_a_kept_or_held_record(
    states: list[RetentionState], now: datetime
) -> None:
    due = due_for_purge(states, now)
    today = now.astimezone(UTC).date()
    picked = set(due)
    for state in states:
        if state.record_id in picked:
            # Kept through retain_until, in UTC: gone at the earliest the day after.
            assert state.retain_until < today and not state.legal_hold
        else:
            assert state.retain_until >= today or state.legal_hold
    assert due_for_purge(states, now) == due  # a pure function: same inputs, same answer


def test_a_naive_clock_is_refused() -> None:
    state = RetentionState(record_id=1, retain_until=date(2000, 1, 1), legal_hold=False)
    with pytest.raises(RetentionError, match="timezone-aware"):
        due_for_purge([state], datetime(2100, 1, 1))
    with pytest.raises(RetentionError):
        due_for_purge([state], date(2100, 1, 1))  # type: ignore[arg-type]
