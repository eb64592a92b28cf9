"""Parse the sanctions lists from files (no network) into one `ListVersion`.

Every loader refuses a file it cannot read completely, naming the file and line: a partial list
would silently screen customers against less than the regulator published.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from compliance.screening._limits import list_file_bytes_max
from compliance.screening._model import (
    Alias,
    CryptoAddress,
    EntryKind,
    ListEntry,
    ListVersion,
    make_list_version,
)

# OFAC's legacy CSV files end with the DOS end-of-file byte; its absence means the file was cut.
_OFAC_EOF = "\x1a"
_OFAC_EMPTY = "-0-"
_SDN_COLUMNS = 12
_ALT_COLUMNS = 5
_ADD_COLUMNS = 6
_SDN_KINDS: dict[str, EntryKind] = {
    "individual": "person",
    "": "entity",
    "vessel": "vessel",
    "aircraft": "aircraft",
}
_DIGITAL_CURRENCY = re.compile(r"Digital Currency Address - ([A-Z0-9]+) ([A-Za-z0-9:]+)")
# Loose on purpose: the per-chain rules live in address screening; this only refuses lines that
# cannot be an address at all (a cut line, a stray header, spaces).
_ADDRESS_LINE = re.compile(r"^[A-Za-z0-9]{20,120}$")
_CRYPTO_FILE = re.compile(r"^sanctioned_addresses_([A-Z0-9]+)\.txt$")


class ListFileError(ValueError):
    """A list file is malformed or truncated; nothing from it may be used.

    Attributes
    ----------
    path : Path
        The file.
    line : int
        The 1-based line of the problem, 0 when it concerns the whole file.
    reason : str
        What is wrong.
    """

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {reason}")


def default_data_dir(repo: Path | None = None) -> Path:
    """The shared compliance data folder, ``<repo>/../shared/data/compliance``.

    Parameters
    ----------
    repo : Path, optional
        The checkout; by default the one this module lives in.
    """
    root = repo if repo is not None else Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "data" / "compliance"


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ListFileError(path, 0, f"cannot read: {exc.strerror}") from exc
    if size > list_file_bytes_max:
        raise ListFileError(path, 0, f"{size} bytes is more than {list_file_bytes_max}")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ListFileError(path, line, "not UTF-8") from exc


def _ofac_rows(path: Path, columns: int) -> list[tuple[int, list[str]]]:
    """Rows of an OFAC legacy CSV with their line numbers, `-0-` as ``""``, stripped."""
    text = _read_text(path)
    if not text.endswith(_OFAC_EOF):
        lines = text.count("\n") + 1
        raise ListFileError(path, lines, "no end-of-file marker (0x1A): the file is truncated")
    body = text[: -len(_OFAC_EOF)]
    if body and not body.endswith("\n"):
        raise ListFileError(path, body.count("\n") + 1, "last row does not end with a newline")
    reader = csv.reader(io.StringIO(body, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for row in reader:
            if len(row) != columns:
                raise ListFileError(path, line, f"{len(row)} fields, expected {columns}")
            rows.append((line, ["" if f.strip() == _OFAC_EMPTY else f.strip() for f in row]))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ListFileError(path, line, f"bad CSV: {exc}") from exc
    if not rows:
        raise ListFileError(path, 0, "no rows")
    return rows


def _ent_num(path: Path, line: int, value: str) -> int:
    if not value.isdigit():
        raise ListFileError(path, line, f"entity number {value!r} is not an integer")
    return int(value)


def load_ofac_sdn(folder: Path) -> tuple[ListEntry, ...]:
    """Parse OFAC's legacy CSV files ``sdn.csv``, ``alt.csv`` and ``add.csv``.

    Parameters
    ----------
    folder : Path
        The folder holding the three files.

    Returns
    -------
    tuple of ListEntry
        One entry per ``sdn.csv`` row, in file order, with its aliases, addresses and the digital
        currency addresses of its remarks.

    Raises
    ------
    ListFileError
        A file is missing, truncated or malformed, or an alias or address names an entity
        number that ``sdn.csv`` does not hold.
    """
    sdn_path, alt_path, add_path = folder / "sdn.csv", folder / "alt.csv", folder / "add.csv"
    order: list[int] = []
    rows: dict[int, list[str]] = {}
    for line, row in _ofac_rows(sdn_path, _SDN_COLUMNS):
        num = _ent_num(sdn_path, line, row[0])
        if num in rows:
            raise ListFileError(sdn_path, line, f"entity number {num} appears twice")
        if not row[1]:
            raise ListFileError(sdn_path, line, "empty name")
        if row[2].lower() not in _SDN_KINDS:
            raise ListFileError(sdn_path, line, f"unknown SDN type {row[2]!r}")
        rows[num] = row
        order.append(num)
    aliases: dict[int, list[Alias]] = {}
    for line, row in _ofac_rows(alt_path, _ALT_COLUMNS):
        num = _ent_num(alt_path, line, row[0])
        if num not in rows:
            raise ListFileError(alt_path, line, f"alias of unknown entity number {num}")
        if row[3]:
            aliases.setdefault(num, []).append(Alias(name=row[3], quality=row[2].lower()))
    addresses: dict[int, list[str]] = {}
    for line, row in _ofac_rows(add_path, _ADD_COLUMNS):
        num = _ent_num(add_path, line, row[0])
        if num not in rows:
            raise ListFileError(add_path, line, f"address of unknown entity number {num}")
        text = ", ".join(part for part in row[2:5] if part)
        if text:
            addresses.setdefault(num, []).append(text)
    entries: list[ListEntry] = []
    for num in order:
        row = rows[num]
        entry_id = f"ofac_sdn:{num}"
        programs = tuple(p for p in re.split(r"\]\s*\[", row[3].strip("[] ")) if p)
        crypto = tuple(
            CryptoAddress(asset=asset, address=address, source="ofac_sdn", entry_id=entry_id)
            for asset, address in _DIGITAL_CURRENCY.findall(row[11])
        )
        entries.append(
            ListEntry(
                id=entry_id,
                source="ofac_sdn",
                kind=_SDN_KINDS[row[2].lower()],
                primary_name=row[1],
                aliases=tuple(aliases.get(num, ())),
                addresses=tuple(addresses.get(num, ())),
                programs=programs,
                crypto_addresses=crypto,
            )
        )
    return tuple(entries)


def _text(element: ET.Element, tag: str) -> str:
    child = element.find(tag)
    return " ".join((child.text or "").split()) if child is not None else ""


def load_un_consolidated(path: Path) -> tuple[ListEntry, ...]:
    """Parse the UN Security Council consolidated list (XML).

    Parameters
    ----------
    path : Path
        ``UN_consolidated.xml``.

    Returns
    -------
    tuple of ListEntry
        Individuals then entities, in file order; aliases keep the UN's quality grade, and a
        name in original script is an alias graded ``original_script``.

    Raises
    ------
    ListFileError
        The XML is malformed or truncated (with the parser's line), or a record lacks its
        reference number or name.
    """
    text = _read_text(path)
    try:
        # expat (>= 2.4.1, bundled with Python 3.11) refuses entity-expansion bombs and the
        # stdlib parser never fetches external entities, so a hostile list cannot hurt us here.
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, _column = exc.position
        raise ListFileError(path, line, f"malformed XML: {exc}") from exc
    if root.tag != "CONSOLIDATED_LIST":
        raise ListFileError(path, 1, f"root element is {root.tag}, not CONSOLIDATED_LIST")
    entries: list[ListEntry] = []
    seen: set[str] = set()
    for group, tag, kind in (
        ("INDIVIDUALS", "INDIVIDUAL", "person"),
        ("ENTITIES", "ENTITY", "entity"),
    ):
        section = root.find(group)
        if section is None:
            raise ListFileError(path, 0, f"no {group} section")
        for record in section.findall(tag):
            reference = _text(record, "REFERENCE_NUMBER") or _text(record, "DATAID")
            name = " ".join(
                part
                for part in (_text(record, t) for t in ("FIRST_NAME", "SECOND_NAME",
                                                        "THIRD_NAME", "FOURTH_NAME"))
                if part
            )
            if not reference or not name:
                dataid = _text(record, "DATAID") or "?"
                raise ListFileError(path, 0, f"{tag} DATAID {dataid} lacks a reference or name")
            entry_id = f"un_consolidated:{reference}"
            if entry_id in seen:
                raise ListFileError(path, 0, f"reference {reference} appears twice")
            seen.add(entry_id)
            aliases: list[Alias] = []
            for alias in record.findall(f"{tag}_ALIAS"):
                alias_name = _text(alias, "ALIAS_NAME")
                if alias_name:
                    aliases.append(Alias(name=alias_name, quality=_text(alias, "QUALITY").lower()))
            original = _text(record, "NAME_ORIGINAL_SCRIPT")
            if original:
                aliases.append(Alias(name=original, quality="original_script"))
            addresses = []
            for address in record.findall(f"{tag}_ADDRESS"):
                parts = (_text(address, t) for t in ("STREET", "CITY", "STATE_PROVINCE",
                                                     "ZIP_CODE", "COUNTRY"))
                line_text = ", ".join(p for p in parts if p)
                if line_text:
                    addresses.append(line_text)
            list_type = _text(record, "UN_LIST_TYPE")
            entries.append(
                ListEntry(
                    id=entry_id,
                    source="un_consolidated",
                    kind="person" if kind == "person" else "entity",
                    primary_name=name,
                    aliases=tuple(aliases),
                    addresses=tuple(addresses),
                    programs=(list_type,) if list_type else (),
                )
            )
    return tuple(entries)


def load_crypto_addresses(folder: Path) -> tuple[CryptoAddress, ...]:
    """Parse the per-asset files ``sanctioned_addresses_<ASSET>.txt``, one address a line.

    Parameters
    ----------
    folder : Path

    Returns
    -------
    tuple of CryptoAddress
        By asset in name order, then in file order.

    Raises
    ------
    ListFileError
        No such files, a line that cannot be an address, or a file whose last line does not end
        with a newline (cut mid-address).
    """
    files = sorted(p for p in folder.glob("sanctioned_addresses_*.txt") if p.is_file())
    if not files:
        raise ListFileError(folder, 0, "no sanctioned_addresses_<ASSET>.txt files")
    out: list[CryptoAddress] = []
    for path in files:
        match = _CRYPTO_FILE.match(path.name)
        if match is None:
            raise ListFileError(path, 0, "file name is not sanctioned_addresses_<ASSET>.txt")
        text = _read_text(path)
        if text and not text.endswith("\n"):
            raise ListFileError(path, text.count("\n") + 1, "last line has no newline: truncated")
        for number, line in enumerate(text.splitlines(), start=1):
            if not _ADDRESS_LINE.match(line):
                raise ListFileError(path, number, f"not an address: {line[:60]!r}")
            out.append(
                CryptoAddress(asset=match.group(1), address=line, source="ofac_crypto_addresses")
            )
    return tuple(out)


def load_lists(data_dir: Path | None = None) -> ListVersion:
    """Load every list into one content-hashed version.

    Parameters
    ----------
    data_dir : Path, optional
        The folder holding ``ofac_sdn_2021/``, ``un_consolidated_2026/`` and
        ``ofac_crypto_addresses_2024-09-27/``; by default `default_data_dir`.

    Returns
    -------
    ListVersion

    Raises
    ------
    ListFileError
        Any file is missing, malformed or truncated: no partial version is ever returned, so
        the caller keeps the version it had.
    """
    root = data_dir if data_dir is not None else default_data_dir()
    sdn = load_ofac_sdn(root / "ofac_sdn_2021")
    un = load_un_consolidated(root / "un_consolidated_2026" / "UN_consolidated.xml")
    files = load_crypto_addresses(root / "ofac_crypto_addresses_2024-09-27")
    entries = sdn + un
    in_entries = tuple(a for e in entries for a in e.crypto_addresses)
    return make_list_version(entries, in_entries + files)
