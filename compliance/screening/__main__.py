"""Command line: ``python -m compliance.screening {evaluate,screen}``.

    evaluate [--cases PATH] [--json]       precision, recall, F1 per threshold on labelled pairs
    screen NAME [--data PATH] [--threshold N] [--json]
                                           the top candidates for one name, with explanations
"""

from __future__ import annotations

import argparse
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
                f"       {pair.query_token} ~ {pair.listed_token}: {pair.how} "
                f"({pair.similarity})"
            )
        if candidate.match.unmatched_query_tokens:
            print(f"       not on the list: {' '.join(candidate.match.unmatched_query_tokens)}")
        if candidate.match.unmatched_listed_tokens:
            print(f"       not given: {' '.join(candidate.match.unmatched_listed_tokens)}")
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
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except ListFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
