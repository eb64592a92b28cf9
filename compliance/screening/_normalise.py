"""Name normalisation: one spelling per name, so that comparison sees only real differences.

Steps, in order: words run together split at a lower-to-upper case change
(``FridrichBuchenberg``), Unicode compatibility form (NFKC), transliteration of Cyrillic and
Greek to Latin (a simplified BGN/PCGN table), letters that do not decompose (``ß``, ``ø``,
``ł``...), removal of combining marks (diacritics, after NFKD), case folding, ``&`` to ``and``,
apostrophes dropped (``O'Brien`` is one token), every other non-alphanumeric character a token
break. Letters of scripts without a table here (Arabic, Armenian, Georgian, Japanese, Chinese...)
are transliterated by anyascii right after the tables, so ``バラク・オバマ`` meets ``Barack Obama``;
the same name in the same script still gives the same tokens. Digits inside a word of letters
are read as the letters they stand in for (``Ig0r Sech1n``); numbers alone stay numbers.
"""

# The tables below map look-alike letters of other scripts on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from anyascii import anyascii

from compliance.screening._limits import name_chars_max, name_tokens_max

_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    # Ukrainian and Belarusian letters.
    "є": "ye", "і": "i", "ї": "yi", "ґ": "g", "ў": "u",
    # Serbian and Macedonian letters.
    "ђ": "dj", "ј": "j", "љ": "lj", "њ": "nj", "ћ": "c", "џ": "dz", "ѓ": "gj", "ќ": "kj",
}
_GREEK = {
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i",
    "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s",
    "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps", "ω": "o",
}
# Latin letters that NFKD does not split into a base letter and a mark.
_LATIN_EXTRA = {
    "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
    "ı": "i", "ħ": "h", "ŧ": "t",
}
_APOSTROPHES = frozenset("'`´’‘ʼʻ")
# "FridrichBuchenberg": a capital after a lower-case letter starts a new word (then a compound
# in the other name is joined again by the matcher, so "McDonald" still meets "Mcdonald").
_CAMEL_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")
# Digits that stand in for letters in a word of letters ("Ig0r", "Sech1n", "5ergei").
_LEET = str.maketrans("0134579", "oieastg")
_TABLE = {ord(k): v for table in (_CYRILLIC, _GREEK, _LATIN_EXTRA) for k, v in table.items()}


@lru_cache(maxsize=1 << 16)
def normalise_name(name: str) -> str:
    """The canonical spelling of a name: lower-case ASCII where a table allows, single spaces.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        Tokens joined by one space; idempotent (``normalise_name(normalise_name(x)) ==
        normalise_name(x)``).
    """
    text = _CAMEL_BREAK.sub(" ", name[:name_chars_max])
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.translate(_TABLE)
    if not text.isascii():
        # Before NFKD: it would split marks off letters (バ to ハ and a dakuten) that anyascii
        # reads whole. Our own tables above have had their turn.
        text = anyascii(unicodedata.normalize("NFC", text)).casefold()
    text = unicodedata.normalize("NFKD", text)
    out: list[str] = []
    for raw in text:
        if unicodedata.combining(raw) or raw in _APOSTROPHES:
            continue
        # Second pass of the table: accented Greek letters only reach it once bare.
        char = raw.translate(_TABLE)
        if char == "&":
            out.append(" and ")
        elif char.isalnum() or (len(char) > 1 and char.isascii()):
            out.append(char)
        else:
            out.append(" ")
    return " ".join(_deleet(token) for token in "".join(out).split())


def _deleet(token: str) -> str:
    if token.isalpha() or sum(char.isalpha() for char in token) < 2:
        return token
    return token.translate(_LEET)


# Legal forms, spelled out or abbreviated, to one short form each: "Siemens AG" and "Siemens
# Aktiengesellschaft" are one company. Longest phrases first so they win over their parts.
_LEGAL_FORMS: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    sorted(
        (
            (tuple(phrase.split()), short)
            for short, phrases in {
                "llc": ("limited liability company", "l l c", "llc"),
                "ltd": ("limited", "ltd"),
                "plc": ("public limited company", "p l c", "plc"),
                "jsc": ("joint stock company", "open joint stock company",
                        "closed joint stock company", "jsc", "oao", "zao", "pao", "ao", "ojsc",
                        "cjsc", "pjsc", "public joint stock company"),
                "ag": ("aktiengesellschaft", "ag"),
                "gmbh": ("gesellschaft mit beschrankter haftung", "gmbh"),
                "inc": ("incorporated", "inc"),
                "corp": ("corporation", "corp"),
                "co": ("company", "co"),
                "sa": ("societe anonyme", "sociedad anonima", "s a", "sa"),
                "lp": ("limited partnership", "l p", "lp"),
                "ooo": ("obshchestvo s ogranichennoy otvetstvennostyu", "ooo"),
            }.items()
            for phrase in phrases
        ),
        key=lambda item: (-len(item[0]), item[0]),
    )
)
LEGAL_FORMS = frozenset(short for _phrase, short in _LEGAL_FORMS)


def _legal_forms(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase, short in _LEGAL_FORMS:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                out.append(short)
                i += len(phrase)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


@lru_cache(maxsize=1 << 16)
def name_tokens(name: str) -> tuple[str, ...]:
    """The tokens of `normalise_name`, legal forms shortened, at most ``name_tokens_max``.

    Parameters
    ----------
    name : str

    Returns
    -------
    tuple of str
    """
    return tuple(_legal_forms(normalise_name(name).split())[:name_tokens_max])
