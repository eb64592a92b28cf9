"""Sanctions list loaders (compliance.screening loaders and list versions).

Goal: the real OFAC SDN CSV files, the UN consolidated XML and the per-asset crypto address
files parse completely, with counts verified independently of the loader; a malformed or
truncated file is refused with an error naming the file and line, never a partial list; the
list version id is a stable content hash.
Method: the real files under ``../shared/data/compliance`` loaded once per module; the expected
counts come from ``wc -l``, ``grep -c`` and the csv module (see each comment); damaged variants
are written to a temporary folder (the shared data is never edited).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from compliance.screening import (
    ListFileError,
    ListVersion,
    default_data_dir,
    load_crypto_addresses,
    load_lists,
    load_ofac_sdn,
    load_un_consolidated,
    make_list_version,
)

DATA = default_data_dir()


@pytest.fixture(scope="module")
def version() -> ListVersion:
    return load_lists()


def _sdn(version: ListVersion) -> list:
    return [e for e in version.entries if e.source == "ofac_sdn"]


def _un(version: ListVersion) -> list:
    return [e for e in version.entries if e.source == "un_consolidated"]


def test_data_dir_is_found_relative_to_the_repo():
    expected = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "compliance"
    assert expected == DATA
    assert (DATA / "ofac_sdn_2021" / "sdn.csv").is_file()


def test_ofac_sdn_counts(version):
    sdn = _sdn(version)
    # `wc -l sdn.csv` = 8976 CRLF rows and no field spans lines (csv.reader also gives 8976).
    # The data README says 8,977: it counts the trailing 0x1A end-of-file byte as a row.
    assert len(sdn) == 8976
    assert len({e.id for e in sdn}) == 8976
    kinds = {k: sum(e.kind == k for e in sdn) for k in ("person", "entity", "vessel", "aircraft")}
    # `cut` of the SDN_Type column: 4620 individual, 3673 -0-, 406 vessel, 277 aircraft.
    assert kinds == {"person": 4620, "entity": 3673, "vessel": 406, "aircraft": 277}
    # `wc -l alt.csv` = 11910, every row with a name.
    assert sum(len(e.aliases) for e in sdn) == 11910
    # `grep -o "Digital Currency Address - " sdn.csv | wc -l` = 81.
    assert sum(len(e.crypto_addresses) for e in sdn) == 81


def test_ofac_sdn_fields(version):
    by_id = {e.id: e for e in version.entries}
    cuba = by_id["ofac_sdn:306"]
    assert cuba.primary_name == "BANCO NACIONAL DE CUBA"
    assert cuba.kind == "entity"
    assert cuba.programs == ("CUBA",)
    assert [a.name for a in cuba.aliases] == ["NATIONAL BANK OF CUBA"]
    assert cuba.addresses[0] == "Zweierstrasse 35, Zurich CH-8022, Switzerland"
    bin_ladin = by_id["ofac_sdn:6365"]
    assert bin_ladin.kind == "person"
    assert bin_ladin.programs == ("SDGT",)
    assert "BIN LADEN, Osama" in [a.name for a in bin_ladin.aliases]
    yan = by_id["ofac_sdn:25308"]
    assert yan.crypto_addresses[0].asset == "XBT"
    assert yan.crypto_addresses[0].address == "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h"
    assert yan.crypto_addresses[0].entry_id == "ofac_sdn:25308"


def test_un_counts_and_fields(version):
    un = _un(version)
    # `grep -c "<INDIVIDUAL>"` = 730 and `grep -c "<ENTITY>"` = 273, as the data README says.
    assert sum(e.kind == "person" for e in un) == 730
    assert sum(e.kind == "entity" for e in un) == 273
    # `grep -c "<ALIAS_NAME>"` = 2752 non-empty aliases (empty ones are <ALIAS_NAME/>) and
    # `grep -c "<NAME_ORIGINAL_SCRIPT>"` = 378.
    graded = [a for e in un for a in e.aliases if a.quality != "original_script"]
    original = [a for e in un for a in e.aliases if a.quality == "original_script"]
    assert len(graded) == 2752
    assert len(original) == 378
    assert {a.quality for a in graded} == {"good", "low", "a.k.a.", "f.k.a."}
    saddam = {e.id: e for e in un}["un_consolidated:IQi.001"]
    assert saddam.primary_name == "SADDAM HUSSEIN AL-TIKRITI"
    assert _alias_names(saddam, "original_script") == ["صدام حسين التكريتي"]


def _alias_names(entry, quality: str) -> list[str]:
    return [a.name for a in entry.aliases if a.quality == quality]


def test_crypto_address_files(version):
    files = [a for a in version.crypto_addresses if a.source == "ofac_crypto_addresses"]
    # `cat sanctioned_addresses_*.txt | wc -l` = 654 (every file ends with a newline).
    assert len(files) == 654
    by_asset = {}
    for a in files:
        by_asset[a.asset] = by_asset.get(a.asset, 0) + 1
    # `wc -l` per file.
    assert by_asset["XBT"] == 435
    assert by_asset["ETH"] == 152
    assert by_asset["USDT"] == 26
    assert len(by_asset) == 17
    assert len(version.crypto_addresses) == 654 + 81


def test_version_id_is_a_stable_content_hash(version):
    again = load_lists(DATA)
    assert again.version_id == version.version_id
    assert msgspec.json.encode(again) == msgspec.json.encode(version)
    # The id of these files as parsed today: a change to the files or to what the loaders
    # keep of them must show up as a new version id, and this line is where it shows.
    assert version.version_id == (
        "sha256:46f8f9873f9ad692c87b4117361df5fee31e1a6feba48a5fbc58ddca70e0340a"
    )
    changed = msgspec.structs.replace(version.entries[0], primary_name="SOMEONE ELSE")
    other = make_list_version((changed, *version.entries[1:]), version.crypto_addresses)
    assert other.version_id != version.version_id


# -- bad files ---------------------------------------------------------------------------------


def _copy_sdn(tmp_path: Path) -> Path:
    folder = tmp_path / "ofac_sdn_2021"
    shutil.copytree(DATA / "ofac_sdn_2021", folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_sdn_cut_mid_row_is_refused(tmp_path):
    folder = _copy_sdn(tmp_path)
    raw = (folder / "sdn.csv").read_bytes()
    (folder / "sdn.csv").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ListFileError) as caught:
        load_ofac_sdn(folder)
    assert caught.value.path == folder / "sdn.csv"
    assert caught.value.line > 1000
    assert "truncated" in str(caught.value)
    assert str(folder / "sdn.csv") in str(caught.value)


def test_sdn_cut_at_a_row_boundary_is_refused(tmp_path):
    folder = _copy_sdn(tmp_path)
    raw = (folder / "sdn.csv").read_bytes()
    cut = raw[: raw.index(b"\r\n", len(raw) // 2) + 2]
    (folder / "sdn.csv").write_bytes(cut)
    with pytest.raises(ListFileError, match="end-of-file marker"):
        load_ofac_sdn(folder)


def test_sdn_row_with_missing_fields_names_its_line(tmp_path):
    folder = _copy_sdn(tmp_path)
    lines = (folder / "sdn.csv").read_bytes().split(b"\r\n")
    lines[41] = b'99999999,"BROKEN ROW",-0- '
    (folder / "sdn.csv").write_bytes(b"\r\n".join(lines))
    with pytest.raises(ListFileError) as caught:
        load_ofac_sdn(folder)
    assert caught.value.line == 42
    assert "3 fields, expected 12" in caught.value.reason


def test_alias_of_unknown_entity_is_refused(tmp_path):
    folder = _copy_sdn(tmp_path)
    raw = (folder / "alt.csv").read_bytes()
    (folder / "alt.csv").write_bytes(b'123456789,1,"aka","GHOST",-0- \r\n' + raw)
    with pytest.raises(ListFileError) as caught:
        load_ofac_sdn(folder)
    assert caught.value.path.name == "alt.csv"
    assert caught.value.line == 1
    assert "unknown entity number 123456789" in caught.value.reason


def test_truncated_un_xml_is_refused_with_its_line(tmp_path):
    path = tmp_path / "UN_consolidated.xml"
    text = (DATA / "un_consolidated_2026" / "UN_consolidated.xml").read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 3], encoding="utf-8")
    with pytest.raises(ListFileError) as caught:
        load_un_consolidated(path)
    assert caught.value.line > 100
    assert "malformed XML" in caught.value.reason


def test_crypto_file_with_a_bad_line_or_cut_is_refused(tmp_path):
    folder = tmp_path / "crypto"
    shutil.copytree(DATA / "ofac_crypto_addresses_2024-09-27", folder)
    target = folder / "sanctioned_addresses_ETH.txt"
    target.chmod(0o644)
    lines = target.read_text().splitlines()
    target.write_text("\n".join([*lines[:5], "<html>not found</html>", *lines[5:]]) + "\n")
    with pytest.raises(ListFileError) as caught:
        load_crypto_addresses(folder)
    assert (caught.value.path.name, caught.value.line) == ("sanctioned_addresses_ETH.txt", 6)
    target.write_text("\n".join(lines)[:-7])
    with pytest.raises(ListFileError, match="truncated"):
        load_crypto_addresses(folder)


def test_one_bad_file_refuses_the_whole_version(tmp_path):
    for name in ("ofac_sdn_2021", "un_consolidated_2026", "ofac_crypto_addresses_2024-09-27"):
        (tmp_path / name).symlink_to(DATA / name)
    assert load_lists(tmp_path).entries  # the intact copy loads
    (tmp_path / "un_consolidated_2026").unlink()
    (tmp_path / "un_consolidated_2026").mkdir()
    (tmp_path / "un_consolidated_2026" / "UN_consolidated.xml").write_text("<CONSOLIDATED_LIST>")
    with pytest.raises(ListFileError, match=r"UN_consolidated\.xml"):
        load_lists(tmp_path)
