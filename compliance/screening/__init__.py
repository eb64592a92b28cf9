"""Sanctions and address screening (issue 5, deliverable 2).

Loaders parse the OFAC SDN legacy CSV, the UN consolidated XML and the per-asset sanctioned
crypto address files into one content-hashed `ListVersion`; `ScreeningIndex` indexes a version's
names and addresses; `screen_party` is a pure function of (party, list version) that returns
scored, explained name candidates and exact address hits; `rescreen` screens every party
against a new version and reports only the new hits; `ActiveLists` replaces the version in force
only with lists that loaded whole (a malformed or truncated file leaves the previous one
active). ``python -m compliance.screening`` evaluates the matcher on labelled pairs and screens a
name from the command line.
"""

from compliance.screening._active import ActiveLists, ListUpdate, shrinkage, source_counts
from compliance.screening._addresses import (
    AddressFormatError,
    AddressHit,
    AddressIndex,
    normalise_address,
)
from compliance.screening._evaluate import evaluate, load_cases
from compliance.screening._limits import (
    block_postings_max,
    candidates_max,
    list_file_bytes_max,
    list_shrink_fraction_max,
    name_chars_max,
    name_tokens_max,
    query_tokens_cached_max,
    scored_names_max,
    typo_block_chars_min,
)
from compliance.screening._loaders import (
    ListFileError,
    default_data_dir,
    load_crypto_addresses,
    load_lists,
    load_ofac_sdn,
    load_un_consolidated,
)
from compliance.screening._matcher import (
    Candidate,
    NameMatch,
    Party,
    ScreeningIndex,
    ScreeningResult,
    TokenMatch,
    compare_names,
    compare_tokens,
    default_threshold,
    screen_party,
)
from compliance.screening._model import (
    Alias,
    CryptoAddress,
    ListEntry,
    ListVersion,
    make_list_version,
)
from compliance.screening._normalise import name_tokens, normalise_name
from compliance.screening._rescreen import NewHits, rescreen

__all__ = [
    "ActiveLists",
    "AddressFormatError",
    "AddressHit",
    "AddressIndex",
    "Alias",
    "Candidate",
    "CryptoAddress",
    "ListEntry",
    "ListFileError",
    "ListUpdate",
    "ListVersion",
    "NameMatch",
    "NewHits",
    "Party",
    "ScreeningIndex",
    "ScreeningResult",
    "TokenMatch",
    "block_postings_max",
    "candidates_max",
    "compare_names",
    "compare_tokens",
    "default_data_dir",
    "default_threshold",
    "evaluate",
    "list_file_bytes_max",
    "list_shrink_fraction_max",
    "load_cases",
    "load_crypto_addresses",
    "load_lists",
    "load_ofac_sdn",
    "load_un_consolidated",
    "make_list_version",
    "name_chars_max",
    "name_tokens",
    "name_tokens_max",
    "normalise_address",
    "normalise_name",
    "query_tokens_cached_max",
    "rescreen",
    "scored_names_max",
    "screen_party",
    "shrinkage",
    "source_counts",
    "typo_block_chars_min",
]
