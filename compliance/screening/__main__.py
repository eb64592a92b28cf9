"""Command line: ``python -m compliance.screening {evaluate,screen}``.

evaluate [--cases PATH] [--json]       precision, recall, F1 per threshold on labelled pairs
screen NAME [--data PATH] [--threshold N] [--json]
                                       the top candidates for one name, with explanations
evaluate-screening --positives CSV --negatives CSV [--threshold N] [--json]
                                       recall on listed names, false-hit rate on others
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import msgspec

from compliance.screening._evaluate import (
    default_cases_path,
    evaluate,
    load_cases,
    thresholds_default,
)
from compliance.screening._loaders import ListFileError, load_lists
from compliance.screening._matcher import Party, ScreeningIndex, default_threshold, screen_party


def _evaluate(args: argparse.Namespace) -> int:
    path = Path(args.cases) if args.cases else default_cases_path()
    report = evaluate(load_cases(path), thresholds_default)
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        return 0
    print(f"{report['pairs']} pairs from {path}")
    print(f"{'threshold':>9} {'precision':>9} {'recall':>7} {'f1':>7}")
    results = report["results"]
    assert isinstance(results, list)
    for row in results:
        print(
            f"{row['threshold']:>9} {row['precision']:>9.4f} {row['recall']:>7.4f} "
            f"{row['f1']:>7.4f}"
        )
    best = report["best"]
    assert isinstance(best, dict)
    print(f"best: threshold {best['threshold']}, F1 {best['f1']:.4f}")
    return 0


def _screen(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    print("loading lists...", file=sys.stderr)
    version = load_lists(Path(args.data) if args.data else None)
    index = ScreeningIndex(version)
    print(
        f"indexed {index.names_indexed} names of {len(version.entries)} entries "
        f"in {time.perf_counter() - started:.2f} s ({version.version_id})",
        file=sys.stderr,
    )
    result = screen_party(Party(names=(args.name,)), index, args.threshold)
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
        return 0
    print(f"list version {result.list_version_id}, threshold {result.threshold}")
    if not result.candidates:
        print("no candidates")
    for candidate in result.candidates:
        print(
            f"{candidate.score:>3}  {candidate.entry_id}  {candidate.primary_name}  "
            f"[{candidate.kind}]"
        )
        print(f"     via {candidate.matched_name_type} name {candidate.matched_name!r}")
        for pair in candidate.match.tokens:
            print(
                f"       {pair.query_token} ~ {pair.listed_token}: {pair.how} ({pair.similarity})"
            )
        if candidate.match.unmatched_query_tokens:
            print(f"       not on the list: {' '.join(candidate.match.unmatched_query_tokens)}")
        if candidate.match.unmatched_listed_tokens:
            print(f"       not given: {' '.join(candidate.match.unmatched_listed_tokens)}")
    return 0


def _full_names(path: Path) -> list[str]:
    """The ``full_name`` column of a CSV file; a file without one is unusable."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "full_name" not in reader.fieldnames:
            raise ListFileError(path, 1, "no full_name column")
        return [row["full_name"] for row in reader if row["full_name"]]


def _evaluate_screening(args: argparse.Namespace) -> int:
    """Recall on names that are listed (possibly misspelt) and the false-hit rate on names that
    are not, at one threshold, screening each against every list."""
    positives, negatives = _full_names(Path(args.positives)), _full_names(Path(args.negatives))
    print("loading lists...", file=sys.stderr)
    index = ScreeningIndex(load_lists(Path(args.data) if args.data else None))
    hits = [bool(index.screen_name(name, args.threshold)) for name in positives]
    false_hits = [bool(index.screen_name(name, args.threshold)) for name in negatives]
    report = {
        "threshold": args.threshold,
        "positives": len(positives),
        "negatives": len(negatives),
        "recall": round(sum(hits) / len(hits), 4) if hits else None,
        "false_hit_rate": round(sum(false_hits) / len(false_hits), 4) if false_hits else None,
        "missed": [name for name, hit in zip(positives, hits, strict=True) if not hit][:50],
        "false_hits": [n for n, hit in zip(negatives, false_hits, strict=True) if hit][:50],
    }
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        print(
            f"threshold {args.threshold}: recall {report['recall']} on {len(positives)} listed"
            f" names, false-hit rate {report['false_hit_rate']} on {len(negatives)} others"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a bad list or cases file)."""
    parser = argparse.ArgumentParser(prog="python -m compliance.screening")
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate_parser = commands.add_parser("evaluate", help="precision/recall/F1 on name pairs")
    evaluate_parser.add_argument("--cases", help="labelled pairs CSV (nomenklatura format)")
    evaluate_parser.add_argument("--json", action="store_true")
    evaluate_parser.set_defaults(run=_evaluate)
    screen_parser = commands.add_parser("screen", help="screen one name against the lists")
    screen_parser.add_argument("name")
    screen_parser.add_argument("--data", help="the compliance data folder")
    screen_parser.add_argument("--threshold", type=int, default=default_threshold)
    screen_parser.add_argument("--json", action="store_true")
    screen_parser.set_defaults(run=_screen)
    screening = commands.add_parser(
        "evaluate-screening", help="recall and false-hit rate on listed and unlisted names"
    )
    screening.add_argument("--positives", required=True, help="CSV of listed names: full_name")
    screening.add_argument("--negatives", required=True, help="CSV of other names: full_name")
    screening.add_argument("--data", help="the compliance data folder")
    screening.add_argument("--threshold", type=int, default=default_threshold)
    screening.add_argument("--json", action="store_true")
    screening.set_defaults(run=_evaluate_screening)
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except (ListFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
