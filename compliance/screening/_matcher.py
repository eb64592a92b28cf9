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

Screening one name (`ScreeningIndex.screen_name`):

1. Blocking (`compliance.screening._blocking`): a listed name is a candidate only if it shares a
   token with the query, or a token one deletion away (typos): a few hundred listed names rather
   than all 25,000.
2. Bounding (`_score_bounds`): from which tokens of each side have a similar token on the other
   side at all (`compliance.screening._neighbours` finds every one), an integer the candidate's
   score cannot exceed; candidates whose bound is below the threshold are never scored.
3. Scoring, best bound first: `_align` on each remaining candidate, until the bound falls below
   the lowest of the best ``candidates_max`` entries found. Since the bound is sound, the result
   is that of scoring every candidate, at the cost of a few dozen alignments at most.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import msgspec
import numpy as np
import numpy.typing as npt

from compliance.screening._addresses import AddressHit, AddressIndex
from compliance.screening._blocking import Evidence, NameBlocks
from compliance.screening._limits import candidates_max, scored_names_max
from compliance.screening._model import ListEntry, ListVersion
from compliance.screening._normalise import name_tokens
from compliance.screening._similarity import HOW_INITIAL, token_similarity
from compliance.screening._weights import token_weight as _weight

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


Aligned = tuple[float, tuple[str, ...], tuple[str, ...], list[tuple[int, int, float, str]]]
# The pairs with a positive similarity, as ``(-similarity, i, j, how)`` (sorted, best first).
Pairs = list[tuple[float, int, int, str]]


def _align(query: tuple[str, ...], listed: tuple[str, ...]) -> Aligned:
    """The score as a float, the (merged) tokens and the chosen pairs ``(i, j, sim, how)``."""
    query = _merge_compounds(query, frozenset(listed))
    listed = _merge_compounds(listed, frozenset(query))
    pairs: Pairs = []
    for i, q in enumerate(query):
        for j, c in enumerate(listed):
            similarity, how = token_similarity(q, c)
            if similarity > 0.0:
                pairs.append((-similarity, i, j, how))
    return _settle(query, listed, pairs)


def _align_known(
    query: tuple[str, ...],
    listed: tuple[str, ...],
    similar: tuple[dict[str, tuple[float, str]] | None, ...],
) -> Aligned:
    """`_align` for a pair the index knows joins no tokens, with each query token's similar
    listed tokens looked up (``None`` for an initial: compared as in `_align`).

    The same pairs in the same order as `_align`, so the same result, when every map holds
    exactly the listed tokens with a positive `token_similarity` (`TokenNeighbourhood.similar`).
    """
    pairs: Pairs = []
    for i, found in enumerate(similar):
        if found is None:
            q = query[i]
            for j, c in enumerate(listed):
                similarity, how = token_similarity(q, c)
                if similarity > 0.0:
                    pairs.append((-similarity, i, j, how))
        else:
            for j, c in enumerate(listed):
                hit = found.get(c)
                if hit is not None:
                    pairs.append((-hit[0], i, j, hit[1]))
    return _settle(query, listed, pairs)


@lru_cache(maxsize=1 << 16)
def _weights(tokens: tuple[str, ...]) -> tuple[tuple[int, ...], int]:
    weights = tuple(_weight(t) for t in tokens)
    return weights, sum(weights)


def _settle(query: tuple[str, ...], listed: tuple[str, ...], pairs: Pairs) -> Aligned:
    """Pair greedily, best first, each token once, then score the coverage (see module doc)."""
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
    weights_q, weight_q = _weights(query)
    weights_c, weight_c = _weights(listed)
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


def _score_bounds(evidence: Evidence, query: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """For each candidate row, an integer no `_align` score of it can exceed (low aliases included).

    The score is 0.7 * max(coverage) + 0.3 * min(coverage) - 1.5 * min(missing shares), capped;
    it grows with each coverage and shrinks with each missing share. A coverage is at most the
    weight of the tokens that have a similar token on the other side at all, times their best
    similarity (the greedy one-to-one pairing can only do worse; an initial counts one letter,
    which is less); a missing share is at least the weight of the tokens with no similar token
    on the other side; a name of one token against one of several is capped as `_align` caps
    it. A query initial counts as matching (one letter on each side) wherever the
    listed name has a token of its letter; rows where tokens may be joined
    (`Evidence.compound`) are not bounded.
    """
    weight_q = float(sum(_weight(t) for t in query))
    initials = evidence.initials
    coverage_q = np.minimum(1.0, (evidence.query_cover + initials) / weight_q)
    coverage_c = np.minimum(1.0, (evidence.listed_cover + initials) / evidence.listed_weight)
    bound = _covered_weight * np.maximum(coverage_q, coverage_c) + (
        1 - _covered_weight
    ) * np.minimum(coverage_q, coverage_c)
    missing_q = np.maximum(0.0, 1.0 - (evidence.query_matchable + initials) / weight_q)
    # An initial may match any listed token of its letter, so where one can, no listed token
    # is surely missing.
    missing_c = np.where(
        initials > 0, 0.0, np.maximum(0.0, 1.0 - evidence.listed_matchable / evidence.listed_weight)
    )
    bound -= _both_missing_penalty * np.minimum(missing_q, missing_c)
    # One token on either side pairs once at most: the single-token cap applies.
    single = (len(query) == 1) | (evidence.listed_length == 1)
    single &= np.maximum(len(query), evidence.listed_length) > 1
    bound = np.where(single, np.minimum(bound, _single_token_cap), bound)
    # As `_to_int`, with slack for float rounding in either computation.
    out = np.clip(np.floor(bound * 100 + 0.5 + 1e-6), 0, 100).astype(np.int64)
    out[evidence.compound] = 100
    return out


class ScreeningIndex:
    """Every name of a list version, indexed for blocking; built once per list version.

    Parameters
    ----------
    version : ListVersion

    Notes
    -----
    Building is O(total name tokens * token length). Screening one name blocks candidates (the
    listed names sharing a token or a one-deletion key with it, `NameBlocks`), bounds each
    candidate's score from which of its tokens can match at all (`_score_bounds`), and fully
    scores, best bound first, only those whose bound reaches the threshold and could still enter
    the best ``candidates_max``: O(candidates) NumPy work and O(scored * tokens^2) Python work.
    The bound is sound, so skipping changes no result; the index is derived only from the
    version, so it never changes a decision.
    """

    def __init__(self, version: ListVersion) -> None:
        self.version = version
        self.addresses = AddressIndex(version)
        # One row per listed name: (entry index, name as listed, its type, its tokens).
        self._names: list[tuple[int, str, str, tuple[str, ...]]] = []
        for entry_index, entry in enumerate(version.entries):
            names = [(entry.primary_name, "primary")]
            names += [(a.name, a.quality or "alias") for a in entry.aliases]
            seen: set[tuple[str, ...]] = set()
            for name, name_type in names:
                tokens = name_tokens(name)
                if not tokens or tokens in seen:
                    continue
                seen.add(tokens)
                self._names.append((entry_index, name, name_type, tokens))
        self._blocks = NameBlocks([row[3] for row in self._names])
        # Each row's entry's place in entry id order: results rank ties by entry id.
        by_id = sorted(range(len(version.entries)), key=lambda k: version.entries[k].id)
        entry_rank = [0] * len(version.entries)
        for rank, entry_index in enumerate(by_id):
            entry_rank[entry_index] = rank
        self._entry_rank = np.array([entry_rank[row[0]] for row in self._names], dtype=np.int64)
        self._low_penalty = np.array(
            [_low_quality_penalty if row[2] == "low" else 0 for row in self._names],
            dtype=np.int64,
        )

    @property
    def names_indexed(self) -> int:
        """Listed names (primary names and distinct aliases) in the index."""
        return len(self._names)

    def cache_clear(self) -> None:
        """Forget the per-query-token work (for cold-cache measurements); results are unchanged."""
        self._blocks.cache_clear()

    def _bounds(self, evidence: Evidence, tokens: tuple[str, ...]) -> npt.NDArray[np.int64]:
        """`_score_bounds` less the low-quality alias penalty, as `screen_name` applies it."""
        penalty = self._low_penalty[evidence.rows]
        return np.maximum(0, _score_bounds(evidence, tokens) - penalty)

    def _ranked_rows(
        self, tokens: tuple[str, ...], threshold: int
    ) -> list[tuple[int, int, int, bool]]:
        """Rows whose bound reaches `threshold`: ``(row, bound, entry rank, may join)``, by
        bound descending, then entry id, then row (the order results break ties in)."""
        evidence = self._blocks.evidence(tokens)
        if not len(evidence.rows):
            return []
        bounds = self._bounds(evidence, tokens)
        keep = bounds >= threshold
        rows, bounds, compound = evidence.rows[keep], bounds[keep], evidence.compound[keep]
        ranks = self._entry_rank[rows]
        order = np.lexsort((rows, ranks, -bounds))
        return list(
            zip(
                rows[order].tolist(), bounds[order].tolist(), ranks[order].tolist(),
                compound[order].tolist(), strict=True,
            )
        )

    def screen_name(self, name: str, threshold: int = 0) -> tuple[Candidate, ...]:
        """Candidates for one name, best first.

        Parameters
        ----------
        name : str
        threshold : int
            Lowest score reported, 0-100.

        Returns
        -------
        tuple of Candidate
            One per entry (its best-scoring name), score descending then entry id, at most
            ``candidates_max``.

        Raises
        ------
        ValueError
            A threshold outside 0-100.
        """
        if not 0 <= threshold <= 100:
            raise ValueError(f"threshold {threshold!r} is not a score from 0 to 100")
        tokens = name_tokens(name)
        if not tokens:
            return ()
        similar = self._blocks.similar_maps(tokens)
        best: dict[int, tuple[int, int, Aligned]] = {}
        # The last of the best `candidates_max` entries so far, as (score, entry rank), once
        # there are that many: rows come by bound, then entry rank, so from the first row that
        # could not beat it on (score, entry id) none can enter or change the best entries.
        last_score, last_rank = -1, -1
        scored = 0

        def scored_row(row: int, may_join: bool) -> tuple[int, Aligned]:
            _entry, _listed, name_type, listed_tokens = self._names[row]
            if may_join:
                aligned = _align(tokens, listed_tokens)
            else:
                aligned = _align_known(tokens, listed_tokens, similar)
            score = _to_int(aligned[0])
            if name_type == "low":
                score = max(0, score - _low_quality_penalty)
            return score, aligned

        rows = iter(self._ranked_rows(tokens, threshold))
        for row, bound, rank, may_join in rows:
            if scored >= scored_names_max:
                # No more entries: that is the time the cap bounds. But an entry found keeps
                # its best name's score: its names among the rows left that could beat the
                # one it has are still scored.
                rest = itertools.chain([(row, bound, rank, may_join)], rows)
                floor = min((kept[0] for kept in best.values()), default=101)
                for row, bound, _rank, may_join in rest:
                    if bound < floor:
                        break  # rows come by bound: none left can beat any entry's name
                    current = best.get(self._names[row][0])
                    if current is None or (current[0], -current[1]) >= (bound, -row):
                        continue
                    score, aligned = scored_row(row, may_join)
                    if (score, -row) > (current[0], -current[1]):
                        best[self._names[row][0]] = (score, row, aligned)
                break
            if bound < last_score or (bound == last_score and rank > last_rank):
                break
            entry_index = self._names[row][0]
            current = best.get(entry_index)
            if current is not None and (current[0], -current[1]) >= (bound, -row):
                continue  # this entry has a name this one cannot beat
            scored += 1
            score, aligned = scored_row(row, may_join)
            if score < threshold:
                continue
            # Higher score wins; on a tie the earlier name (primary before aliases) does.
            if current is None or (score, -row) > (current[0], -current[1]):
                best[entry_index] = (score, row, aligned)
                if len(best) >= candidates_max:
                    keys = sorted(
                        (-kept[0], int(self._entry_rank[kept[1]])) for kept in best.values()
                    )
                    last_score, last_rank = -keys[candidates_max - 1][0], keys[
                        candidates_max - 1
                    ][1]
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], self.version.entries[kv[0]].id))
        out: list[Candidate] = []
        for entry_index, (score, row, aligned) in ranked[:candidates_max]:
            entry: ListEntry = self.version.entries[entry_index]
            _index, listed_name, name_type, _tokens = self._names[row]
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
                    match=_explain(*aligned),
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

    Raises
    ------
    ValueError
        A threshold outside 0-100.
    """
    if not 0 <= threshold <= 100:
        raise ValueError(f"threshold {threshold!r} is not a score from 0 to 100")
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
