"""Which listed names a query name is scored against, and what each could score at best.

Blocking: a listed name is a candidate if it shares a token with the query, or a token one
deletion away (typos); a token shared by more than ``block_postings_max`` names only counts
together with a second query token, or with a query initial the listed name also has as an
initial (so "T.E.G. LIMITED" finds itself).

Evidence for the score bound (`compliance.screening._matcher._score_bounds`): for every candidate,
how much of each side's weight could be matched at all and with what similarity at most, from
the complete similarity neighbourhood of each query token (`TokenNeighbourhood`). The per-token
work (deletions, neighbourhood, postings) is cached per query token, so a name made of tokens
seen before costs a few NumPy operations over arrays of row numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from compliance.screening._limits import (
    block_postings_max,
    query_tokens_cached_max,
    typo_block_chars_min,
)
from compliance.screening._neighbours import TokenNeighbourhood
from compliance.screening._similarity import _initial_credit as _INITIAL_CREDIT
from compliance.screening._weights import token_weight

Rows = npt.NDArray[np.int32]
Floats = npt.NDArray[np.float64]
_NO_ROWS: Rows = np.zeros(0, dtype=np.int32)


def _deletions(token: str) -> Iterable[str]:
    return (token[:k] + token[k + 1 :] for k in range(len(token)))


def _compounds(tokens: tuple[str, ...]) -> set[str]:
    """Two or three adjacent tokens written as one (what `_merge_compounds` may join)."""
    return {
        "".join(tokens[i : i + width])
        for width in (2, 3)
        for i in range(len(tokens) - width + 1)
    }


class _QueryToken(NamedTuple):
    """What one query token contributes, whatever name it appears in (cached)."""

    # Rows blocking reaches through this token: the token or one deletion away; sorted, unique.
    block_rows: Rows
    # Rows holding a token similar to this one, and the best such similarity in each row.
    similar_rows: Rows
    similar_best: Floats
    # The similar listed tokens: ids and similarities.
    similar_ids: npt.NDArray[np.intp]
    similar_values: Floats
    # Those of two letters or more: their ids, and their postings end to end with each
    # entry's weight in its row, plain and times the similarity.
    listed_ids: frozenset[int]
    listed_rows: Rows
    listed_matchable: Floats
    listed_cover: Floats
    # Rows where two or three adjacent listed tokens spell this token.
    compound_rows: Rows
    # The similar listed tokens by spelling: (similarity, how), for `_align_known`.
    similar_map: dict[str, tuple[float, str]]


class Evidence(NamedTuple):
    """The candidates of one query name and the inputs of their score bound.

    Attributes
    ----------
    rows : array of int32
        Candidate rows, ascending.
    query_cover, query_matchable : array of float64
        Per row: the query weight that could be matched, times its best similarity / plain.
    listed_cover, listed_matchable : array of float64
        The same for the listed name's weight.
    listed_weight : array of float64
        The listed name's total weight.
    listed_length : array of int64
        The listed name's token count.
    initials : array of float64
        Per row: the query's one-letter tokens that could match in it (the row has a token
        starting with that letter); each matches one token and counts one letter at most.
    compound : array of bool
        Rows where tokens may be joined before alignment: no bound, always scored.
    """

    rows: Rows
    query_cover: Floats
    query_matchable: Floats
    listed_cover: Floats
    listed_matchable: Floats
    listed_weight: Floats
    listed_length: npt.NDArray[np.int64]
    initials: Floats
    compound: npt.NDArray[np.bool_]


class NameBlocks:
    """Postings, deletion keys and similarity neighbourhoods over every listed name's tokens.

    Parameters
    ----------
    names : list of tuple of str
        Each listed name's tokens; a name's position is its row.

    Notes
    -----
    Building is O(total name tokens * token length). `evidence` is O(postings of the query's
    similar tokens) NumPy work once every query token is cached, O(listed tokens) NumPy work per
    token seen for the first time.
    """

    def __init__(self, names: list[tuple[str, ...]]) -> None:
        self.rows_total = len(names)
        postings: dict[str, dict[int, int]] = {}
        compounds: dict[str, set[int]] = {}
        for row, tokens in enumerate(names):
            for token in tokens:
                counts = postings.setdefault(token, {})
                counts[row] = counts.get(row, 0) + 1
            for joined in _compounds(tokens):
                compounds.setdefault(joined, set()).add(row)
        tokens_all = sorted(postings)
        self.neighbourhood = TokenNeighbourhood(tokens_all)
        self._postings: list[Rows] = []
        # A token's weight in each row holding it, times its count there ("al ... al").
        self._posting_weights: list[Floats] = []
        for token in tokens_all:
            rows = sorted(postings[token])
            self._postings.append(np.array(rows, dtype=np.int32))
            weight = token_weight(token)
            self._posting_weights.append(
                np.array([postings[token][r] * weight for r in rows], dtype=np.float64)
            )
        self._compounds = {
            joined: np.array(sorted(rows), dtype=np.int32) for joined, rows in compounds.items()
        }
        self.listed_length = np.array([len(tokens) for tokens in names], dtype=np.int64)
        self.listed_weight = np.array(
            [sum(token_weight(t) for t in tokens) for tokens in names], dtype=np.float64
        )
        # Deletion neighbourhood for blocking: a key (a token, or it less one letter) -> listed
        # tokens. Two tokens one edit apart share a key (SymSpell), so typos block without a scan.
        deletions: dict[str, set[int]] = {}
        for token_id, token in enumerate(tokens_all):
            if len(token) >= typo_block_chars_min:
                for key in (token, *_deletions(token)):
                    deletions.setdefault(key, set()).add(token_id)
        self._deletions = {k: tuple(sorted(v)) for k, v in deletions.items()}
        # Per first letter, which rows have a token starting with it (what a query initial can
        # match: `token_similarity` pairs a one-letter token with any token of that letter).
        self._first_letter: dict[str, npt.NDArray[np.bool_]] = {}
        for row, tokens in enumerate(names):
            for token in tokens:
                mask = self._first_letter.get(token[0])
                if mask is None:
                    mask = self._first_letter[token[0]] = np.zeros(len(names), dtype=bool)
                mask[row] = True
        # Per letter, how many one-letter tokens each row has: what query tokens of that first
        # letter can match as initials (0.8 of one letter each, `token_similarity`).
        self._initials_of: dict[str, Floats] = {}
        for row, tokens in enumerate(names):
            for token in tokens:
                if len(token) == 1:
                    counts_of = self._initials_of.get(token)
                    if counts_of is None:
                        counts_of = self._initials_of[token] = np.zeros(len(names))
                    counts_of[row] += 1
        self._token_lengths = np.array([len(t) for t in tokens_all], dtype=np.int64)
        self._cache: dict[str, _QueryToken] = {}

    def cache_clear(self) -> None:
        """Forget every query token seen (for cold-cache measurements). O(1)."""
        self._cache = {}

    def _rows_of(self, token_ids: Iterable[int]) -> Rows:
        arrays = [self._postings[k] for k in token_ids]
        if not arrays:
            return _NO_ROWS
        return np.unique(np.concatenate(arrays)) if len(arrays) > 1 else arrays[0]

    def _query_token(self, token: str) -> _QueryToken:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        own = self.neighbourhood.token_id(token)
        near = {own} if own >= 0 else set()
        if len(token) >= typo_block_chars_min:
            for key in (token, *_deletions(token)):
                near.update(self._deletions.get(key, ()))
        similar = self.neighbourhood.similar(token)
        ids = np.array([k for k, _s, _h in similar], dtype=np.intp)
        values = np.array([s for _k, s, _h in similar], dtype=np.float64)
        if similar:
            # Best similarity first, so the first occurrence of a row carries its best.
            order = np.argsort(-values, kind="stable")
            rows = np.concatenate([self._postings[ids[k]] for k in order])
            best = np.concatenate(
                [np.full(len(self._postings[ids[k]]), values[k]) for k in order]
            )
            similar_rows, first = np.unique(rows, return_index=True)
            similar_best = best[first]
        else:
            similar_rows, similar_best = _NO_ROWS, np.zeros(0)
        # Listed initials are counted by letter in `evidence` (they are similar to every query
        # token of their letter, so would be counted once per such token here).
        longer = [k for k in range(len(similar)) if len(self.neighbourhood.tokens[ids[k]]) > 1]
        listed_rows = [self._postings[ids[k]] for k in longer]
        listed_matchable = [self._posting_weights[ids[k]] for k in longer]
        listed_values = [float(values[k]) for k in longer]
        entry = _QueryToken(
            block_rows=self._rows_of(sorted(near)),
            similar_rows=similar_rows.astype(np.int32),
            similar_best=similar_best,
            similar_ids=ids,
            similar_values=values,
            listed_ids=frozenset(int(ids[k]) for k in longer),
            listed_rows=np.concatenate(listed_rows) if longer else _NO_ROWS,
            listed_matchable=np.concatenate(listed_matchable) if longer else np.zeros(0),
            listed_cover=(
                np.concatenate([w * v for w, v in zip(listed_matchable, listed_values,
                                                      strict=True)])
                if longer else np.zeros(0)
            ),
            compound_rows=self._compounds.get(token, _NO_ROWS),
            similar_map={self.neighbourhood.tokens[k]: (v, h) for k, v, h in similar},
        )
        if len(self._cache) >= query_tokens_cached_max:
            self._cache = {}  # a bounded cache; dropping it only costs time
        self._cache[token] = entry
        return entry

    def similar_maps(
        self, tokens: tuple[str, ...]
    ) -> tuple[dict[str, tuple[float, str]] | None, ...]:
        """Per query token, its similar listed tokens by spelling (``None`` for an initial).

        O(query tokens) once the tokens are cached (`evidence` caches them).
        """
        return tuple(None if len(t) == 1 else self._query_token(t).similar_map for t in tokens)

    def evidence(self, tokens: tuple[str, ...]) -> Evidence:
        """The candidate rows of a query name and the inputs of their score bound.

        Parameters
        ----------
        tokens : tuple of str
            The query name's tokens; one-letter tokens block nothing and are left out of the
            evidence (the bound counts them as matching).

        Returns
        -------
        Evidence
        """
        multiplicity: dict[str, int] = {}
        for token in tokens:
            multiplicity[token] = multiplicity.get(token, 0) + 1
        candidate = np.zeros(self.rows_total, dtype=bool)
        frequent: list[Rows] = []
        query_rows: list[Rows] = []
        query_cover: list[Floats] = []
        query_matchable: list[Floats] = []
        entries: list[_QueryToken] = []
        compound = np.zeros(self.rows_total, dtype=bool)
        initial_letters: list[tuple[str, int]] = []
        for token, count in multiplicity.items():
            if len(token) == 1:
                initial_letters.append((token, count))
                continue  # initials block nothing on their own
            entry = self._query_token(token)
            if len(entry.block_rows) <= block_postings_max:
                candidate[entry.block_rows] = True
            else:
                # A common token (with its spelling variants) blocks a name only together
                # with another query token, or it would pull in a large share of the list.
                frequent.append(entry.block_rows)
            weight = token_weight(token) * count
            query_rows.append(entry.similar_rows)
            query_cover.append(entry.similar_best * weight)
            query_matchable.append(np.full(len(entry.similar_rows), float(weight)))
            entries.append(entry)
            compound[entry.compound_rows] = True
        if len(frequent) > 1:
            candidate |= np.bincount(np.concatenate(frequent), minlength=self.rows_total) >= 2
        # A query initial equal to a listed initial is the second token too, or a name of
        # initials and a legal form ("T.E.G. LIMITED") would never find itself.
        for letter, _count in initial_letters:
            counts_of = self._initials_of.get(letter)
            if counts_of is not None:
                for rows_hit in frequent:
                    candidate[rows_hit[counts_of[rows_hit] > 0]] = True
        if len(tokens) == 1 and frequent and not candidate.any():
            candidate[frequent[0]] = True
        for joined in _compounds(tokens):
            own = self.neighbourhood.token_id(joined)
            if own >= 0:
                compound[self._postings[own]] = True
        rows = np.flatnonzero(candidate).astype(np.int32)
        listed_rows = [e.listed_rows for e in entries]
        listed_cover = [e.listed_cover for e in entries]
        listed_matchable = [e.listed_matchable for e in entries]
        self._count_each_listed_token_once(entries, listed_rows, listed_cover, listed_matchable)
        listed_cover_sum = self._sum_rows(listed_rows, listed_cover)[rows]
        listed_matchable_sum = self._sum_rows(listed_rows, listed_matchable)[rows]
        for letter in {t[0] for t in multiplicity if len(t) > 1}:
            counts_of = self._initials_of.get(letter)
            if counts_of is not None:
                listed_cover_sum += counts_of[rows] * _INITIAL_CREDIT
                listed_matchable_sum += counts_of[rows]
        initials = np.zeros(len(rows))
        for letter, count in initial_letters:
            mask = self._first_letter.get(letter)
            if mask is not None:
                initials += mask[rows] * float(count)
        return Evidence(
            rows=rows,
            query_cover=self._sum_rows(query_rows, query_cover)[rows],
            query_matchable=self._sum_rows(query_rows, query_matchable)[rows],
            listed_cover=listed_cover_sum,
            listed_matchable=listed_matchable_sum,
            listed_weight=self.listed_weight[rows],
            listed_length=self.listed_length[rows],
            initials=initials,
            compound=compound[rows],
        )

    def _count_each_listed_token_once(
        self,
        entries: list[_QueryToken],
        rows: list[Rows],
        cover: list[Floats],
        matchable: list[Floats],
    ) -> None:
        """Correct the per-query-token sums where a listed token is similar to several.

        Each query token's cached postings count its similar listed tokens; a listed token
        similar to k query tokens ("a", an initial, to "abd" and "ali") would be counted k times,
        where the bound wants it once, with its best similarity: append negative entries for the
        difference. Usually a few tokens, so a few postings.
        """
        if len(entries) < 2:
            return
        if sum(len(e.listed_ids) for e in entries) == len(
            frozenset().union(*(e.listed_ids for e in entries))
        ):
            return  # no listed token is similar to two query tokens: nothing counted twice
        ids = np.concatenate([e.similar_ids for e in entries])
        values = np.concatenate([e.similar_values for e in entries])
        longer = self._token_lengths[ids] > 1
        ids, values = ids[longer], values[longer]
        unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
        if not len(counts) or counts.max() == 1:
            return
        sums = np.bincount(inverse, weights=values, minlength=len(unique))
        best = np.zeros(len(unique))
        np.maximum.at(best, inverse, values)
        for k in np.flatnonzero(counts > 1).tolist():
            token_id = int(unique[k])
            rows.append(self._postings[token_id])
            weights = self._posting_weights[token_id]
            cover.append(weights * -float(sums[k] - best[k]))
            matchable.append(weights * -float(counts[k] - 1))

    def _sum_rows(self, rows: list[Rows], weights: list[Floats]) -> Floats:
        if not rows:
            return np.zeros(self.rows_total)
        return np.bincount(
            np.concatenate(rows),
            weights=np.concatenate(weights).astype(np.float64, copy=False),
            minlength=self.rows_total,
        ).astype(np.float64, copy=False)
