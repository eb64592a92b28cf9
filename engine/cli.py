"""The `clearline` command line.

    clearline replay lobster MESSAGE_CSV ORDERBOOK_CSV [--json] [--engine core|reference]
    clearline replay mbo FILE.dbn.zst [--json] [--engine core|reference]

Results go to stdout (a summary, or one JSON object with --json); a periodic status line goes
to stderr while a long file runs. Exit status: 0 when every check passed or was explained,
1 when a mismatch could not be explained, 2 for unusable input (missing or malformed file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from time import monotonic_ns
from typing import Any, TextIO

from engine.replay import ReplayInputError, replay_lobster, replay_mbo

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
# Time between two status lines on stderr: short runs print none.
PROGRESS_INTERVAL_NS = 1_000_000_000

ENGINES = ("core", "reference")


def engine_factory(name: str) -> Callable[[], Any]:
    """The class of the named engine implementation (imported on demand)."""
    if name == "reference":
        from engine.reference import ReferenceEngine

        return ReferenceEngine
    from engine._core import Engine

    return Engine


class Progress:
    """A status line on stderr at most once a second: rewritten in place on a terminal."""

    def __init__(self, label: str, unit: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.last_ns = monotonic_ns()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now_ns = monotonic_ns()
        finished = done >= total
        if not finished and now_ns - self.last_ns < PROGRESS_INTERVAL_NS:
            return
        if finished and not self.shown:
            return  # the run was short: no status line at all
        self.last_ns = now_ns
        self.shown = True
        percent = done * 100 // total if total else 100
        text = f"{self.label}: {done:,} / {total:,} {self.unit} ({percent}%)"
        terminal = self.stream.isatty()
        end = "\n" if finished or not terminal else ""
        self.stream.write(("\r" if terminal else "") + text + end)
        self.stream.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clearline", description="Clearline exchange tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser(
        "replay", help="replay real market data through the matching engine and check it"
    )
    formats = replay.add_subparsers(dest="format", required=True)
    lobster = formats.add_parser("lobster", help="a LOBSTER (Nasdaq) message/orderbook pair")
    lobster.add_argument("message_csv", help="LOBSTER message file")
    lobster.add_argument("orderbook_csv", help="LOBSTER orderbook file of the same day and depth")
    mbo = formats.add_parser("mbo", help="a Databento market-by-order DBN file (zstd or plain)")
    mbo.add_argument("file", help="DBN file, e.g. FILE.mbo.dbn.zst")
    for sub in (lobster, mbo):
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.add_argument(
            "--engine",
            choices=ENGINES,
            default="core",
            help="engine implementation (default: core)",
        )
    run = commands.add_parser(
        "run", help="run the whole exchange on this machine (servers, engine, gateway)"
    )
    run.add_argument("--data-dir", type=Path, default=Path(".clearline"), help="default .clearline")
    run.add_argument("--listen", default="127.0.0.1:50051", help="gRPC address (port 0: any)")
    run.add_argument("--metrics-port", type=int, default=0, help="HTTP /metrics (0: any)")
    run.add_argument(
        "--dashboard",
        default="127.0.0.1:8080",
        help="compliance dashboard HTTP address (port 0: any)",
    )
    demo = commands.add_parser(
        "demo", help="trade against a running exchange with market makers and takers"
    )
    demo.add_argument("--config", type=Path, help="client config (default: as clearctl finds it)")
    demo.add_argument("--duration-s", type=int, default=0, help="stop after this long (0: Ctrl-C)")
    demo.add_argument("--rate", type=int, default=200, help="taker orders per second")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    compliance = commands.add_parser("compliance", help="evaluate the name screening")
    evaluations = compliance.add_subparsers(dest="evaluation", required=True)
    names = evaluations.add_parser("eval-names", help="precision/recall/F1 on labelled pairs")
    names.add_argument("cases_csv", help="labelled name pairs (nomenklatura's cases.csv form)")
    screening = evaluations.add_parser(
        "eval-screening", help="recall on listed names, false-hit rate on others"
    )
    screening.add_argument("--positives", required=True, help="CSV with a full_name column")
    screening.add_argument("--negatives", required=True, help="CSV with a full_name column")
    screening.add_argument("--threshold", type=int, help="lowest score that is a hit")
    for sub in (names, screening):
        sub.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _compliance(args: argparse.Namespace) -> int:
    from compliance.screening.__main__ import main as screening_main

    flags = ["--json"] if args.json else []
    if args.evaluation == "eval-names":
        return screening_main(["evaluate", "--cases", args.cases_csv, *flags])
    threshold = [] if args.threshold is None else ["--threshold", str(args.threshold)]
    return screening_main(
        ["evaluate-screening", "--positives", args.positives, "--negatives", args.negatives,
         *threshold, *flags]
    )  # fmt: skip


def _replay(args: argparse.Namespace) -> Any:
    factory = engine_factory(args.engine)
    if args.format == "lobster":
        return replay_lobster(
            args.message_csv,
            args.orderbook_csv,
            engine_factory=factory,
            engine_name=args.engine,
            progress=Progress("replay lobster", "events"),
        )
    return replay_mbo(
        args.file,
        engine_factory=factory,
        engine_name=args.engine,
        progress=Progress("replay mbo", "records"),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        from gateway.exchange import RunOptions
        from gateway.exchange import main as run_main

        return run_main(
            RunOptions(
                args.data_dir, args.listen, args.metrics_port, dashboard_listen=args.dashboard
            )
        )
    if args.command == "demo":
        from gateway.demo import main as demo_main

        return demo_main(args.config, args.duration_s, args.rate, as_json=args.json)
    if args.command == "compliance":
        return _compliance(args)
    try:
        report = _replay(args)
    except ReplayInputError as error:
        print(f"clearline: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
        sys.stdout.flush()
    except BrokenPipeError:  # `clearline ... | head`: the reader left, the verdict stands
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the exit flush quiet
    return EXIT_OK if report.ok else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
