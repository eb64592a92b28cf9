"""Precision, recall and F1 of the name matcher on labelled name pairs.

The pairs file is nomenklatura's name benchmark (``case_group, schema, name1, name2, is_match,
quality, category, notes``); a pair is predicted a match when `compare_names` scores it at or
above the threshold.
"""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path

from compliance.screening._loaders import ListFileError, default_data_dir
from compliance.screening._matcher import compare_names

thresholds_default = (50, 55, 60, 65, 70, 75, 80, 85, 90, 95)
_COLUMNS = ("name1", "name2", "is_match")


def default_cases_path() -> Path:
    """``<repo>/../shared/data/compliance/name_pairs_nomenklatura/cases.csv``."""
    return default_data_dir() / "name_pairs_nomenklatura" / "cases.csv"


def load_cases(path: Path) -> list[tuple[str, str, bool]]:
    """The labelled pairs ``(name1, name2, is_match)``.

    Raises
    ------
    ListFileError
        A missing column, or an ``is_match`` that is neither ``true`` nor ``false``.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ListFileError(path, 1, f"missing columns {missing}")
        cases = []
        for row in reader:
            label = (row["is_match"] or "").strip().lower()
            if label not in ("true", "false"):
                raise ListFileError(path, reader.line_num, f"is_match {label!r}")
            cases.append((row["name1"], row["name2"], label == "true"))
    return cases


def _ratio(numerator: int, denominator: int) -> float:
    # Exact arithmetic, rounded once for display: the figures are reproducible to the digit.
    if not denominator:
        return 0.0
    return round(float(Fraction(numerator, denominator)), 4)


def evaluate(
    cases: list[tuple[str, str, bool]], thresholds: tuple[int, ...] = thresholds_default
) -> dict[str, object]:
    """Score every pair once, then count outcomes at each threshold.

    Parameters
    ----------
    cases : list of (str, str, bool)
    thresholds : tuple of int

    Returns
    -------
    dict
        ``{"pairs": n, "results": [{"threshold", "precision", "recall", "f1", "tp", "fp",
        "fn", "tn"}], "best": <the result with the highest F1, lowest threshold on a tie>}``.
    """
    scored = [(compare_names(a, b).score, label) for a, b, label in cases]
    results: list[dict[str, object]] = []
    best: dict[str, object] | None = None
    best_f1 = Fraction(-1)
    for threshold in thresholds:
        tp = sum(1 for s, label in scored if s >= threshold and label)
        fp = sum(1 for s, label in scored if s >= threshold and not label)
        fn = sum(1 for s, label in scored if s < threshold and label)
        tn = len(scored) - tp - fp - fn
        f1 = Fraction(2 * tp, 2 * tp + fp + fn) if tp else Fraction(0)
        result: dict[str, object] = {
            "threshold": threshold,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(f1.numerator, f1.denominator),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
        }
        results.append(result)
        if f1 > best_f1:
            best, best_f1 = result, f1
    return {"pairs": len(scored), "results": results, "best": best}
