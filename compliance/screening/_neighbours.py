"""Every listed token a query token is similar to, found without comparing it with all of them.

`token_similarity` is positive for five kinds of pair; each has its own complete lookup here, so
the neighbourhood is exactly the set of listed tokens with a positive similarity (the score bound
in `compliance.screening._matcher` relies on that: a token missed here would be a candidate
wrongly skipped):

1. ``exact``: the token itself.
2. ``initial``: a listed one-letter token equal to the query token's first letter (a one-letter
   *query* token is left to the caller: it is like every listed token with that first letter).
3. ``typo``: one edit apart, both at least three letters; two such tokens share a key of the
   deletion dictionary (the token, or it less one letter: SymSpell), transpositions included.
4. ``consonants``: the same consonant skeleton, looked up in a dictionary.
5. ``similar``: Jaro-Winkler at least 0.88; no dictionary finds those, so every listed token is
   tested against an upper bound of its Jaro-Winkler computed from letter counts and the common
   prefix, in NumPy, and the few that pass are compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from compliance.screening._similarity import _similar_min, _skeleton, token_similarity

# Letters and digits a normalised token is made of (see `compliance.screening._normalise`);
# anything else is counted in one extra column, which keeps the letter-count bound sound.
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_COLUMN = {char: k for k, char in enumerate(_ALPHABET)}
_OTHER = len(_ALPHABET)
# Jaro-Winkler's prefix bonus stops at four letters.
_PREFIX_CHARS = 4
# Float slack on the bound: it is compared with a threshold the exact value may sit on.
_EPSILON = 1e-9


def _deletions(token: str) -> Iterable[str]:
    return (token[:k] + token[k + 1 :] for k in range(len(token)))


def _letter_counts(token: str) -> list[int]:
    counts = [0] * (_OTHER + 1)
    for char in token:
        counts[_COLUMN.get(char, _OTHER)] += 1
    return counts


def _prefix_code(token: str, width: int) -> int:
    if len(token) < width:
        return -1
    return int.from_bytes(token[:width].encode(), "big")


class TokenNeighbourhood:
    """The listed tokens, indexed so that `similar` finds every one similar to a given token.

    Parameters
    ----------
    tokens : sequence of str
        The distinct listed tokens; a token's position is its id.

    Notes
    -----
    Building is O(total token letters). `similar` is O(listed tokens) NumPy work for the
    Jaro-Winkler bound plus one exact comparison per token that passes it; callers cache it.
    """

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self._ids = {token: k for k, token in enumerate(tokens)}
        # One-edit keys of tokens long enough to be a typo (`token_similarity` needs three).
        typo_keys: dict[str, list[int]] = {}
        skeletons: dict[str, list[int]] = {}
        for k, token in enumerate(tokens):
            if len(token) >= 3:
                for key in {token, *_deletions(token)}:
                    typo_keys.setdefault(key, []).append(k)
            if len(token) >= 4:
                skeletons.setdefault(_skeleton(token), []).append(k)
        self._typo_keys = typo_keys
        self._skeletons = skeletons
        # The Jaro-Winkler bound's inputs: letter counts (one contiguous row per letter, so a
        # query reads only the rows of its own letters), lengths, and the first one to four
        # letters as numbers (-1 for a token shorter than that, which equals no query prefix).
        counts = np.zeros((_OTHER + 1, len(tokens)), dtype=np.int8)
        for k, token in enumerate(tokens):
            for column, n in enumerate(_letter_counts(token)):
                if n:
                    counts[column, k] = n
        self._counts = counts
        self._lengths = np.array([len(t) for t in tokens], dtype=np.float64)
        self._prefixes = [
            np.array([_prefix_code(t, width) for t in tokens], dtype=np.int64)
            for width in range(1, _PREFIX_CHARS + 1)
        ]
        # `token_similarity` never calls tokens with a digit similar; nor those shorter than 3.
        self._jw_eligible = np.array(
            [len(t) >= 3 and not any(c.isdigit() for c in t) for t in tokens], dtype=bool
        )

    def token_id(self, token: str) -> int:
        """The id of a listed token, or -1. O(1)."""
        return self._ids.get(token, -1)

    def _jaro_winkler_may_reach(self, token: str) -> npt.NDArray[np.intp]:
        """Ids of listed tokens whose Jaro-Winkler with `token` may reach the 'similar' floor.

        Jaro counts m matching letters (each letter of one token used once), so m is at most the
        letter-count overlap o, and Jaro <= (o/len_a + o/len_b + 1) / 3; the Winkler bonus adds
        0.1 per common prefix letter (at most four) of what is left. Both only grow with o.
        """
        overlap = np.zeros(len(self.tokens), dtype=np.float64)
        for column, n in enumerate(_letter_counts(token)):
            if n:
                overlap += np.minimum(self._counts[column], n)
        jaro = (overlap / len(token) + overlap / self._lengths + 1.0) / 3.0
        # Common prefix length: each longer equal prefix implies the shorter ones.
        prefix = np.zeros(len(self.tokens), dtype=np.float64)
        for width, codes in enumerate(self._prefixes[: len(token)], start=1):
            prefix += codes == _prefix_code(token, width)
        bound = jaro + prefix * 0.1 * (1.0 - jaro)
        return np.flatnonzero(
            self._jw_eligible & (overlap > 0) & (bound >= _similar_min - _EPSILON)
        )

    def similar(self, token: str) -> list[tuple[int, float, str]]:
        """Every listed token with a positive `token_similarity` to `token`, with it.

        Parameters
        ----------
        token : str
            A normalised query token of two letters or more.

        Returns
        -------
        list of (int, float, str)
            ``(token id, similarity, how)`` as `token_similarity` gives them, ids ascending.
        """
        found: set[int] = set()
        own = self._ids.get(token)
        if own is not None:
            found.add(own)
        initial = self._ids.get(token[0])
        if initial is not None:
            found.add(initial)
        if len(token) >= 3:
            for key in {token, *_deletions(token)}:
                found.update(self._typo_keys.get(key, ()))
            if not any(c.isdigit() for c in token):
                found.update(int(k) for k in self._jaro_winkler_may_reach(token))
        if len(token) >= 4:
            found.update(self._skeletons.get(_skeleton(token), ()))
        out: list[tuple[int, float, str]] = []
        for k in sorted(found):
            similarity, how = token_similarity(token, self.tokens[k])
            if similarity > 0.0:
                out.append((k, similarity, how))
        return out
