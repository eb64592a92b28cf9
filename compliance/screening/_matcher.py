"""Name screening: an index over every listed name and alias, and the scoring that explains itself.

Scoring one query name against one listed name (`compare_tokens`):

1. Both names are normalised and split into tokens, legal forms shortened
   (`compliance.screening._normalise`); adjacent tokens are joined where the other name writes
   them as one ("van der bilt" / "vanderbilt").
2. Every pair of tokens gets a similarity (`token_similarity`): exact, an initial, one typo,
   equal consonants (Muhammad / Mohammed), or Jaro-Winkler above a floor; order does not matter.
3. Pairs are taken greedily, best first, each token used once (ties broken by position, so the
   result is deterministic).
4. Each side's coverage is the matched share of its letters (particles and legal forms count
   one letter), weighted by similarity; the score leans on the better-covered side, so a listed
   patronymic the customer did not give costs little, while a token missing on both sides
   (one person's surname against another's) costs a lot.

The constants below were tuned on the labelled pairs (``python -m compliance.screening
evaluate``); change them only with that command's figures before and after.

Blocking (`ScreeningIndex`): a listed name is scored only if it shares a token with the query,
or a token one deletion away (typos), so one name is compared with a few hundred listed names
rather than all 25,000.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import msgspec

from compliance.screening._addresses import AddressHit, AddressIndex
from compliance.screening._limits import (
    block_postings_max,
    candidates_max,
    scored_names_max,
    typo_block_chars_min,
)
from compliance.screening._model import ListEntry, ListVersion
from compliance.screening._normalise import LEGAL_FORMS, name_tokens
from compliance.screening._similarity import HOW_INITIAL, token_similarity

# Weight of the better-covered side in the score (see `compare_tokens`).
_covered_weight = 0.7
# How much a token missing on both sides costs, per share of the letters missing.
_both_missing_penalty = 1.5
# The most one shared token can score between names of several tokens: below the default
# threshold alone, within reach of it with any other evidence.
_single_token_cap = 0.75
# "X bin Y" is X, son of Y: the same tokens around the particle the other way round are
# another person (AHMAD BIN HASAN is not HASAN BIN AHMAD), as are initials in another order
# (A.B.C. is not C.B.A.). Such a name scores at most this.
_order_swapped_cap = 0.5
_PATRONYMIC = frozenset({"bin", "ben", "ibn", "bint", "binti", "ould"})
# Connecting words that carry no identity.
_PARTICLES = frozenset({"and", "of", "the", "de", "del", "la", "le", "el", "al", "bin", "ben",
                        "ibn", "van", "der", "von", "da", "du", "y"})
# A UN alias graded "low" is often a bare nickname ("Abu Ali"): the same match counts for less.
_low_quality_penalty = 10
# The threshold `screen_party` reports from unless told otherwise (chosen on the labelled pairs).
default_threshold = 70


class TokenMatch(msgspec.Struct, frozen=True, kw_only=True):
    """One query token paired with one listed token.

    Attributes
    ----------
    query_token, listed_token : str
        Normalised tokens.
    how : str
        ``exact``, ``initial``, ``typo``, ``consonants`` or ``similar``.
    similarity : int
        0-100.
    """

    query_token: str
    listed_token: str
    how: str
    similarity: int


class NameMatch(msgspec.Struct, frozen=True, kw_only=True):
    """Why two names match: the score and each token pair.

    Attributes
    ----------
    score : int
        0-100.
    tokens : tuple of TokenMatch
        The pairs, in query token order.
    unmatched_query_tokens, unmatched_listed_tokens : tuple of str
    """

    score: int
    tokens: tuple[TokenMatch, ...]
    unmatched_query_tokens: tuple[str, ...]
    unmatched_listed_tokens: tuple[str, ...]


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """A list entry a party may be.

    Attributes
    ----------
    entry_id, source, kind, primary_name : str
        The entry.
    score : int
        0-100, the best over the entry's names.
    query_name : str
        The party's name that matched (a party may have several).
    matched_name : str
        The entry's name that matched, as listed.
    matched_name_type : str
        ``primary`` or the alias's quality (``aka``, ``good``, ``low``, ``original_script``...).
    match : NameMatch
        Token by token, why.
    """

    entry_id: str
    source: str
    kind: str
    primary_name: str
    score: int
    query_name: str
    matched_name: str
    matched_name_type: str
    match: NameMatch


class Party(msgspec.Struct, frozen=True, kw_only=True):
    """Who is screened.

    Attributes
    ----------
    names : tuple of str
        Legal name first, then other names the party is known by.
    crypto_addresses : tuple of (str, str)
        ``(asset, address)`` pairs the party uses.
    """

    names: tuple[str, ...]
    crypto_addresses: tuple[tuple[str, str], ...] = ()


class ScreeningResult(msgspec.Struct, frozen=True, kw_only=True):
    """A screening decision's evidence, reproducible from (party, list version).

    Attributes
    ----------
    list_version_id : str
    threshold : int
    candidates : tuple of Candidate
        Best first, at or above `threshold`, at most ``candidates_max``.
    address_hits : tuple of AddressHit
    """

    list_version_id: str
    threshold: int
    candidates: tuple[Candidate, ...]
    address_hits: tuple[AddressHit, ...]


def _to_int(value: float) -> int:
    return min(100, max(0, int(value * 100 + 0.5)))


def _merge_compounds(tokens: tuple[str, ...], other: frozenset[str]) -> tuple[str, ...]:
    """Join adjacent tokens whose concatenation is a token of the other name.

    "van der bilt" against "vanderbilt", "vladimir putin" against "vladimirputin".
    """
    if len(tokens) < 2 or other.issubset(tokens):
        return tokens
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for width in (3, 2):
            if i + width <= len(tokens):
                joined = "".join(tokens[i : i + width])
                if joined in other and joined not in tokens:
                    out.append(joined)
                    i += width
                    break
        else:
            out.append(tokens[i])
            i += 1
    return tuple(out)


def _weight(token: str) -> int:
    # Letters carry the evidence; a legal form or a particle says little about who it is.
    if token in LEGAL_FORMS or token in _PARTICLES:
        return 1
    return len(token)


def _align(
    query: tuple[str, ...], listed: tuple[str, ...]
) -> tuple[float, tuple[str, ...], tuple[str, ...], list[tuple[int, int, float, str]]]:
    """The score as a float, the (merged) tokens and the chosen pairs ``(i, j, sim, how)``."""
    query = _merge_compounds(query, frozenset(listed))
    listed = _merge_compounds(listed, frozenset(query))
    pairs: list[tuple[float, int, int, str]] = []
    for i, q in enumerate(query):
        for j, c in enumerate(listed):
            similarity, how = token_similarity(q, c)
            if similarity > 0.0:
                pairs.append((-similarity, i, j, how))
    pairs.sort()
    used_q: set[int] = set()
    used_c: set[int] = set()
    chosen: list[tuple[int, int, float, str]] = []
    for negative, i, j, how in pairs:
        if i in used_q or j in used_c:
            continue
        used_q.add(i)
        used_c.add(j)
        chosen.append((i, j, -negative, how))
    weights_q = [_weight(t) for t in query]
    weights_c = [_weight(t) for t in listed]
    weight_q = sum(weights_q)
    weight_c = sum(weights_c)
    # An initial stands for one letter of the full name it matches, on both sides: "V" may be
    # Viktor, but it says nothing of the other letters.
    coverage_q = sum(
        (1 if h == HOW_INITIAL else weights_q[i]) * s for i, _j, s, h in chosen
    ) / weight_q
    coverage_c = sum(
        (1 if h == HOW_INITIAL else weights_c[j]) * s for _i, j, s, h in chosen
    ) / weight_c
    # The better-covered name counts most: lists add patronymics and middle names a customer
    # leaves out. Taking max/min keeps the score symmetric.
    score = _covered_weight * max(coverage_q, coverage_c) + (1 - _covered_weight) * min(
        coverage_q, coverage_c
    )
    # A name token each side has and the other lacks (AL-MASRI against AL-SEBAI) is evidence
    # of two people, not one person with a shorter name.
    missing_q = sum(w for i, w in enumerate(weights_q) if i not in used_q) / weight_q
    missing_c = sum(w for j, w in enumerate(weights_c) if j not in used_c) / weight_c
    score -= _both_missing_penalty * min(missing_q, missing_c)
    # A single shared token between multi-token names is a surname or a given name, not a person.
    if len(chosen) == 1 and max(len(query), len(listed)) > 1:
        score = min(score, _single_token_cap)
    if _order_swapped(query, listed, {i: j for i, j, _s, _h in chosen}):
        score = min(score, _order_swapped_cap)
    return score, query, listed, chosen


def _order_swapped(query: tuple[str, ...], listed: tuple[str, ...], pair: dict[int, int]) -> bool:
    """Whether the names put a patronymic's two sides, or their initials, the other way round."""
    inner = [j for j in range(1, len(listed) - 1) if listed[j] in _PATRONYMIC]
    for i in range(1, len(query) - 1):
        if (
            query[i] in _PATRONYMIC
            and inner
            and i - 1 in pair
            and i + 1 in pair
            and not any(pair[i - 1] == j - 1 and pair[i + 1] == j + 1 for j in inner)
        ):
            return True
    initials_q = "".join(t for t in query if len(t) == 1)
    initials_c = "".join(t for t in listed if len(t) == 1)
    return (
        len(initials_q) >= 2
        and initials_q != initials_c
        and sorted(initials_q) == sorted(initials_c)
    )


def _explain(
    score: float,
    query: tuple[str, ...],
    listed: tuple[str, ...],
    chosen: list[tuple[int, int, float, str]],
) -> NameMatch:
    used_q = {i for i, _j, _s, _h in chosen}
    used_c = {j for _i, j, _s, _h in chosen}
    return NameMatch(
        score=_to_int(score),
        tokens=tuple(
            TokenMatch(query_token=query[i], listed_token=listed[j], how=h, similarity=_to_int(s))
            for i, j, s, h in sorted(chosen)
        ),
        unmatched_query_tokens=tuple(t for i, t in enumerate(query) if i not in used_q),
        unmatched_listed_tokens=tuple(t for j, t in enumerate(listed) if j not in used_c),
    )


def compare_tokens(query: tuple[str, ...], listed: tuple[str, ...]) -> NameMatch:
    """Score a query name against a listed name, both already tokenised.

    Parameters
    ----------
    query, listed : tuple of str
        Normalised tokens.

    Returns
    -------
    NameMatch

    Notes
    -----
    O(len(query) * len(listed)) token comparisons, each cached.
    """
    if not query or not listed:
        return NameMatch(
            score=0, tokens=(), unmatched_query_tokens=query, unmatched_listed_tokens=listed
        )
    return _explain(*_align(query, listed))


def compare_names(query: str, listed: str) -> NameMatch:
    """Score two names as written (normalised here).

    Parameters
    ----------
    query, listed : str

    Returns
    -------
    NameMatch
    """
    return compare_tokens(name_tokens(query), name_tokens(listed))


def _deletions(token: str) -> Iterable[str]:
    return (token[:k] + token[k + 1 :] for k in range(len(token)))


class ScreeningIndex:
    """Every name of a list version, indexed for blocking; built once per list version.

    Parameters
    ----------
    version : ListVersion

    Notes
    -----
    Building is O(total name tokens * token length). Screening one name is O(candidates *
    tokens^2), candidates being the listed names that share a blocking key with the query.
    The index is derived only from the version, so it never changes a decision.
    """

    def __init__(self, version: ListVersion) -> None:
        self.version = version
        self.addresses = AddressIndex(version)
        # One row per listed name: (entry index, name as listed, its type, its tokens).
        self._names: list[tuple[int, str, str, tuple[str, ...]]] = []
        postings: dict[str, list[int]] = {}
        for entry_index, entry in enumerate(version.entries):
            names = [(entry.primary_name, "primary")]
            names += [(a.name, a.quality or "alias") for a in entry.aliases]
            seen: set[tuple[str, ...]] = set()
            for name, name_type in names:
                tokens = name_tokens(name)
                if not tokens or tokens in seen:
                    continue
                seen.add(tokens)
                row = len(self._names)
                self._names.append((entry_index, name, name_type, tokens))
                for token in set(tokens):
                    postings.setdefault(token, []).append(row)
        self._postings = {t: tuple(rows) for t, rows in postings.items()}
        # Deletion neighbourhood: a key (a token, or it less one letter) -> listed tokens. Two
        # tokens one edit apart share a key (SymSpell), so typos block without a scan.
        deletions: dict[str, set[str]] = {}
        for token in self._postings:
            if len(token) >= typo_block_chars_min:
                deletions.setdefault(token, set()).add(token)
                for key in _deletions(token):
                    deletions.setdefault(key, set()).add(token)
        self._deletions = {k: tuple(sorted(v)) for k, v in deletions.items()}

    @property
    def names_indexed(self) -> int:
        """Listed names (primary names and distinct aliases) in the index."""
        return len(self._names)

    def _listed_tokens_near(self, token: str) -> set[str]:
        near = {token} if token in self._postings else set()
        if len(token) >= typo_block_chars_min:
            for key in (token, *_deletions(token)):
                near.update(self._deletions.get(key, ()))
        return near

    def _candidate_rows(self, tokens: tuple[str, ...]) -> list[int]:
        rare: set[int] = set()
        frequent: dict[int, int] = {}
        hit_weight = Counter[int]()
        for position, token in enumerate(dict.fromkeys(tokens)):
            if len(token) == 1:
                continue  # initials block nothing on their own
            postings = [self._postings[t] for t in sorted(self._listed_tokens_near(token))]
            weight = _weight(token)
            hit: set[int] = set()
            for rows in postings:
                hit.update(rows)
            for row in hit:
                hit_weight[row] += weight
            if len(hit) <= block_postings_max:
                rare.update(hit)
            else:
                # A common token (with its spelling variants) blocks a name only together
                # with another query token, or it would pull in a large share of the list.
                for row in hit:
                    frequent[row] = frequent.get(row, 0) | 1 << position
        rare.update(row for row, bits in frequent.items() if bits & (bits - 1))
        if not rare and len(tokens) == 1:
            rare.update(frequent)
        # The names sharing the most query letters first; the rest cannot beat them by much.
        ranked = sorted(rare, key=lambda row: (-hit_weight[row], row))
        return ranked[:scored_names_max]

    def screen_name(self, name: str, threshold: int = 0) -> tuple[Candidate, ...]:
        """Candidates for one name, best first.

        Parameters
        ----------
        name : str
        threshold : int
            Lowest score reported.

        Returns
        -------
        tuple of Candidate
            One per entry (its best-scoring name), score descending then entry id, at most
            ``candidates_max``.
        """
        tokens = name_tokens(name)
        if not tokens:
            return ()
        best: dict[int, tuple[int, int]] = {}
        for row in self._candidate_rows(tokens):
            entry_index, _listed, name_type, listed_tokens = self._names[row]
            score = _to_int(_align(tokens, listed_tokens)[0])
            if name_type == "low":
                score = max(0, score - _low_quality_penalty)
            if score < threshold:
                continue
            current = best.get(entry_index)
            # Higher score wins; on a tie the earlier name (primary before aliases) does.
            if current is None or (score, -row) > (current[0], -current[1]):
                best[entry_index] = (score, row)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], self.version.entries[kv[0]].id))
        out: list[Candidate] = []
        for entry_index, (score, row) in ranked[:candidates_max]:
            entry: ListEntry = self.version.entries[entry_index]
            _index, listed_name, name_type, listed_tokens = self._names[row]
            out.append(
                Candidate(
                    entry_id=entry.id,
                    source=entry.source,
                    kind=entry.kind,
                    primary_name=entry.primary_name,
                    score=score,
                    query_name=name,
                    matched_name=listed_name,
                    matched_name_type=name_type,
                    match=compare_tokens(tokens, listed_tokens),
                )
            )
        return tuple(out)


def screen_party(
    party: Party, index: ScreeningIndex, threshold: int = default_threshold
) -> ScreeningResult:
    """Screen a party's names and crypto addresses against one list version.

    A pure function of (party, list version, threshold): the index is derived from the version
    alone, so storing the version id with the result lets anyone reproduce it.

    Parameters
    ----------
    party : Party
    index : ScreeningIndex
    threshold : int
        Lowest name score reported, 0-100.

    Returns
    -------
    ScreeningResult
    """
    best: dict[str, Candidate] = {}
    for name in party.names:
        for candidate in index.screen_name(name, threshold):
            current = best.get(candidate.entry_id)
            if current is None or candidate.score > current.score:
                best[candidate.entry_id] = candidate
    candidates = sorted(best.values(), key=lambda c: (-c.score, c.entry_id))[:candidates_max]
    hits: list[AddressHit] = []
    for asset, address in party.crypto_addresses:
        hits.extend(index.addresses.screen(address, asset))
    return ScreeningResult(
        list_version_id=index.version.version_id,
        threshold=threshold,
        candidates=tuple(candidates),
        address_hits=tuple(hits),
    )
