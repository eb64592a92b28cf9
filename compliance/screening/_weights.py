"""How much of a name's evidence one token carries: shared by the score and its bound."""

from __future__ import annotations

from compliance.screening._normalise import LEGAL_FORMS

# Connecting words that carry no identity.
PARTICLES = frozenset({"and", "of", "the", "de", "del", "la", "le", "el", "al", "bin", "ben",
                       "ibn", "van", "der", "von", "da", "du", "y"})


def token_weight(token: str) -> int:
    """Letters carry the evidence; a legal form or a particle says little about who it is.

    O(1).
    """
    if token in LEGAL_FORMS or token in PARTICLES:
        return 1
    return len(token)
