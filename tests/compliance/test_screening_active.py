"""Replacing the active sanctions lists (compliance.screening ActiveLists).

Goal: a list update never leaves screening with less than it had. A malformed file, a file cut
short mid-record, a file cut short at a record boundary (which still parses) and a missing
folder are each refused with a reason, and the previous version stays active and keeps giving
the same answers; a small real change (one delisting) is activated; an officer may accept a
large shrink.
Method: the real lists under ``../shared/data/compliance`` copied to a temporary folder and
damaged there (the shared data is never edited).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compliance.screening import ActiveLists, Party, default_data_dir, load_lists, screen_party

DATA = default_data_dir()
SDN = Path("ofac_sdn_2021") / "sdn.csv"
UN = Path("un_consolidated_2026") / "UN_consolidated.xml"
XBT = Path("ofac_crypto_addresses_2024-09-27") / "sanctioned_addresses_XBT.txt"


@pytest.fixture(scope="module")
def original() -> ActiveLists:
    return ActiveLists(load_lists())


@pytest.fixture
def lists(original: ActiveLists) -> ActiveLists:
    # A fresh holder of the same version (sharing its index): each test may replace it.
    active = ActiveLists.__new__(ActiveLists)
    active.version, active.index = original.version, original.index
    return active


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "lists"
    shutil.copytree(DATA, copy, ignore=shutil.ignore_patterns("name_pairs_*", "ivms101_*"))
    return copy


def _answers(active: ActiveLists) -> tuple[str, ...]:
    result = screen_party(Party(names=("Kim Jong Un",)), active.index)
    return (result.list_version_id, *(c.entry_id for c in result.candidates))


def test_the_same_files_change_nothing(lists: ActiveLists, folder: Path) -> None:
    update = lists.update(folder)
    assert update.outcome == "unchanged"
    assert update.active_version_id == lists.version.version_id
    assert update.counts["ofac_sdn:entries"] == sum(
        1 for e in lists.version.entries if e.source == "ofac_sdn"
    )


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("xml_cut_mid_element", "UN_consolidated.xml"),
        ("csv_cut_mid_line", "sdn.csv"),
        ("addresses_cut_at_line_boundary", "ofac_crypto_addresses:addresses would drop"),
        ("folder_missing", "un_consolidated"),
    ],
)
def test_a_damaged_update_is_refused_and_the_previous_lists_stay_active(
    lists: ActiveLists, folder: Path, damage: str, expected: str
) -> None:
    before = lists.version.version_id
    answers = _answers(lists)
    if damage == "xml_cut_mid_element":
        data = (folder / UN).read_bytes()
        (folder / UN).write_bytes(data[: len(data) // 2])
    elif damage == "csv_cut_mid_line":
        data = (folder / SDN).read_bytes()
        cut = data.index(b"\n", len(data) // 2) + 7  # inside the next record
        (folder / SDN).write_bytes(data[:cut])
    elif damage == "addresses_cut_at_line_boundary":  # still parses: only the counts tell
        lines = (folder / XBT).read_bytes().splitlines(keepends=True)
        (folder / XBT).write_bytes(b"".join(lines[: len(lines) // 2]))
    else:
        shutil.rmtree(folder / "un_consolidated_2026")
    update = lists.update(folder)
    assert update.outcome == "refused"
    assert expected in update.reason
    assert update.active_version_id == before == lists.version.version_id
    assert _answers(lists) == answers


def test_an_officer_may_accept_a_large_shrink(lists: ActiveLists, folder: Path) -> None:
    lines = (folder / XBT).read_bytes().splitlines(keepends=True)
    (folder / XBT).write_bytes(b"".join(lines[: len(lines) // 2]))
    assert lists.update(folder).outcome == "refused"
    update = lists.update(folder, accept_shrink=True)
    assert update.outcome == "activated"
    assert lists.version.version_id == update.active_version_id
    assert update.counts["ofac_crypto_addresses:addresses"] == 654 - (len(lines) - len(lines) // 2)


def test_a_delisting_is_activated_and_screens_differently(lists: ActiveLists, folder: Path) -> None:
    before = lists.version.version_id
    lines = (folder / XBT).read_bytes().splitlines(keepends=True)
    delisted = lines[0].decode().strip()
    (folder / XBT).write_bytes(b"".join(lines[1:]))  # one address delisted
    party = Party(names=("Someone Unlisted",), crypto_addresses=(("XBT", delisted),))
    assert screen_party(party, lists.index).address_hits
    update = lists.update(folder)
    assert update.outcome == "activated"
    assert update.active_version_id == lists.version.version_id != before
    assert not screen_party(party, lists.index).address_hits
