"""Replays of real market data through the engine, and the `clearline replay` command.

Goal: show on real exchange data that the engine's price-time priority is the exchange's: every
LOBSTER execution of an order the file added hits exactly that order, every CME fill names the
order the engine has at the head of its queue (or one that self-match prevention exposed), and
the engine's book equals the file's book wherever the file can show it. Also: the replay tools
report honestly (what is explained, and why) and fail clearly on unusable input.

Method: run both replays on the files under ../shared/data/market (public data, never edited;
variants are derived in tmp_path), check the reported figures and the invariants they stand
for, drive the CLI through `engine.cli.main` with capsys, and replay small hand-written LOBSTER
files whose right answer is known line by line.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import zstandard

from engine.cli import EXIT_BAD_INPUT, EXIT_MISMATCH, EXIT_OK, main
from engine.reference import ReferenceEngine
from engine.replay import LobsterReport, ReplayInputError, replay_lobster, replay_mbo
from engine.replay.lobster import parse_time_ns, sweep_continuations
from engine.replay.lobster import read_lobster as read_lobster_files

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "market"
DAY = "2012-06-21_34200000_57600000"
AAPL = (
    DATA / f"AAPL_{DAY}_message_10.first999.csv",
    DATA / f"AAPL_{DAY}_orderbook_10.first999.csv",
)
AMZN = (DATA / f"AMZN_{DAY}_message_1.csv", DATA / f"AMZN_{DAY}_orderbook_1.csv")
GOOG = (DATA / f"GOOG_{DAY}_message_1.csv", DATA / f"GOOG_{DAY}_orderbook_1.csv")
ESM4 = DATA / "ESM4_glbx-mdp3_2024-05-08T00-00-00_2024-05-08T00-00-02.mbo.dbn.zst"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"market data not found at {DATA}")

# Fields that differ between two runs of one replay on different engines.
RUN_FIELDS = {"engine", "elapsed_ms"}


def figures(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key not in RUN_FIELDS}


def same_figures(first: dict[str, Any], second: dict[str, Any]) -> bool:
    return figures(first) == figures(second)


# -- LOBSTER: AAPL level 10 --


@pytest.fixture(scope="module")
def aapl() -> LobsterReport:
    return replay_lobster(*AAPL)


def test_aapl_every_execution_hits_the_named_order(aapl: LobsterReport) -> None:
    assert aapl.events == 999
    assert aapl.executions_checked > 0
    assert aapl.executions_matched == aapl.executions_checked
    # Executions of orders entered before the open hit the quantity seeded for them.
    assert aapl.executions_on_unseen_orders_hit_seeded == aapl.executions_on_unseen_orders
    assert aapl.executions_explained == aapl.executions_explained_by_sweep_order == 0


def test_aapl_every_book_row_matches_or_is_explained(aapl: LobsterReport) -> None:
    assert aapl.book_rows_checked == 999
    assert aapl.book_rows_matched + aapl.book_rows_explained == aapl.book_rows_checked
    assert aapl.book_rows_unexplained == aapl.mismatches_unexplained == 0
    # Explained only where a level had just come into view, and rarely.
    assert aapl.book_rows_explained < aapl.book_rows_checked // 20
    assert aapl.best_prices_matched == aapl.best_prices_checked == 999
    assert aapl.engine_book_crossed_rows == 0
    assert aapl.unexplained_events == 0
    assert aapl.ok


def test_aapl_reference_engine_gives_the_same_figures(aapl: LobsterReport) -> None:
    reference = replay_lobster(*AAPL, engine_factory=ReferenceEngine, engine_name="reference")
    assert same_figures(reference.to_dict(), aapl.to_dict())


# -- LOBSTER: AMZN and GOOG level 1, full day (each ~4 s on the core) --


def test_amzn_level_1_full_day() -> None:
    report = replay_lobster(*AMZN)
    assert report.events == report.book_rows_checked == 57_515
    # What a level-1 file can show: the best prices agree and the book never crosses.
    assert report.best_prices_matched == report.best_prices_checked
    assert report.engine_book_crossed_rows == 0
    assert report.book_rows_unexplained == 0
    # Executions of orders that stayed in view hit the named order; the rest (orders that
    # rested beyond the first level, where changes go unseen) are explained by that history.
    assert report.executions_matched * 100 >= report.executions_checked * 95
    assert report.executions_unexplained == 0
    assert report.ok


def test_goog_level_1_full_day_shows_two_priority_inversions_in_the_data() -> None:
    report = replay_lobster(*GOOG)
    assert report.events == report.book_rows_checked == 49_482
    assert report.best_prices_matched == report.best_prices_checked
    assert report.engine_book_crossed_rows == 0
    assert report.book_rows_unexplained == 0
    assert report.executions_matched * 100 >= report.executions_checked * 95
    # Lines 22969 and 47986: an order executes while an older one at the same price, in
    # view the whole time, rests ahead of it. No price-time book can do that: unexplained.
    assert report.executions_unexplained == 2
    assert [text.split(":")[0] for text in report.unexplained] == [
        "message line 22969",
        "message line 47986",
    ]
    assert not report.ok


@pytest.mark.slow
@pytest.mark.parametrize("files", [AMZN, GOOG], ids=["AMZN", "GOOG"])
def test_level_1_reference_engine_gives_the_same_figures(files: tuple[Path, Path]) -> None:
    core = replay_lobster(*files)
    reference = replay_lobster(*files, engine_factory=ReferenceEngine, engine_name="reference")
    assert same_figures(reference.to_dict(), core.to_dict())


# -- LOBSTER: small files with a known answer --

EMPTY_LEVEL = "9999999999,0,-9999999999,0"
BID, ASK = 1_000_000, 1_010_000  # $100.00 and $101.00


def book_row(asks: list[tuple[int, int]], bids: list[tuple[int, int]], levels: int = 2) -> str:
    fields = []
    for level in range(levels):
        ask = asks[level] if level < len(asks) else (9999999999, 0)
        bid = bids[level] if level < len(bids) else (-9999999999, 0)
        fields += [str(ask[0]), str(ask[1]), str(bid[0]), str(bid[1])]
    return ",".join(fields)


def write_lobster(tmp_path: Path, rows: list[tuple[str, str]]) -> tuple[Path, Path]:
    messages, books = tmp_path / "message.csv", tmp_path / "orderbook.csv"
    lines = [f"34200.{index + 1:09d},{message}" for index, (message, _) in enumerate(rows)]
    messages.write_text("\n".join(lines))
    books.write_text("\n".join(book for _, book in rows))
    return messages, books


def day_in_priority_order(second_execution: str) -> list[tuple[str, str]]:
    """Open: 150 lots bid (orders never seen), 200 lots offered. Orders 1 and 2 join the bid."""
    return [
        (f"3,99,50,{BID},1", book_row([(ASK, 200)], [(BID, 100)])),  # seeded 150, less 50
        (f"1,1,30,{BID},1", book_row([(ASK, 200)], [(BID, 130)])),
        (f"1,2,40,{BID},1", book_row([(ASK, 200)], [(BID, 170)])),
        (f"2,1,10,{BID},1", book_row([(ASK, 200)], [(BID, 160)])),  # keeps its place
        (f"4,98,100,{BID},1", book_row([(ASK, 200)], [(BID, 60)])),  # the seeded orders
        (second_execution, book_row([(ASK, 200)], [(BID, 40)])),
        (f"5,0,7,{BID + 5_000},1", book_row([(ASK, 200)], [(BID, 40)])),  # hidden: no change
        (f"1,3,10,{ASK - 5_000},-1", book_row([(ASK - 5_000, 10), (ASK, 200)], [(BID, 40)])),
    ]


@pytest.fixture(params=["core", "reference"])
def engine_factory(request: pytest.FixtureRequest) -> Any:
    return ReferenceEngine if request.param == "reference" else None  # None: the core


def test_small_day_replays_exactly(tmp_path: Path, engine_factory: Any) -> None:
    files = write_lobster(tmp_path, day_in_priority_order(f"4,1,20,{BID},1"))
    report = replay_lobster(*files, engine_factory=engine_factory)
    assert report.seeded_orders == 2
    assert (report.executions_checked, report.executions_matched) == (1, 1)
    assert report.executions_on_unseen_orders_hit_seeded == report.executions_on_unseen_orders == 1
    assert report.book_rows_matched == report.book_rows_checked == 8
    assert report.ok, report.summary()


def test_small_day_with_an_execution_out_of_priority_fails(
    tmp_path: Path, capsys, engine_factory: Any
) -> None:
    # Order 2 executes although order 1 rests ahead of it at the same price.
    files = write_lobster(tmp_path, day_in_priority_order(f"4,2,20,{BID},1"))
    report = replay_lobster(*files, engine_factory=engine_factory)
    assert (report.executions_checked, report.executions_matched) == (1, 0)
    assert "execution of 20 lots on order 2 filled [(1, 20)]" in report.unexplained[0]
    assert not report.ok
    assert main(["replay", "lobster", *map(str, files)]) == EXIT_MISMATCH
    assert "MISMATCH" in capsys.readouterr().out


def test_halts_and_cross_trades(tmp_path: Path, engine_factory: Any) -> None:
    rows = [
        (f"1,1,30,{BID},1", book_row([(ASK, 200)], [(BID, 30)])),
        ("7,0,0,-1,-1", book_row([(ASK, 200)], [(BID, 30)])),  # trading halted
        ("7,0,0,0,-1", book_row([(ASK, 200)], [(BID, 30)])),  # quoting resumes
        (f"1,2,40,{BID},1", book_row([(ASK, 200)], [(BID, 70)])),
        (f"6,0,500,{BID + 5_000},-1", book_row([(ASK, 200)], [(BID, 70)])),  # the cross
        ("7,0,0,1,-1", book_row([(ASK, 200)], [(BID, 70)])),  # trading resumes
        (f"4,1,30,{BID},1", book_row([(ASK, 200)], [(BID, 40)])),
    ]
    report = replay_lobster(*write_lobster(tmp_path, rows), engine_factory=engine_factory)
    assert report.events_by_type == {"1": 2, "7": 3, "6": 1, "4": 1}
    assert report.executions_matched == report.executions_checked == 1
    assert report.ok, report.summary()


def test_one_instant_executions_listed_out_of_priority_are_judged_together(
    tmp_path: Path,
) -> None:
    # One sweep hits orders 1 then 2, but the file lists 2 first (same timestamp).
    rows = [
        (f"1,1,30,{BID},1", book_row([(ASK, 200)], [(BID, 30)])),
        (f"1,2,40,{BID},1", book_row([(ASK, 200)], [(BID, 70)])),
        (f"4,2,40,{BID},1", book_row([(ASK, 200)], [(BID, 30)])),
        (f"4,1,30,{BID},1", book_row([(ASK, 200)], [])),
    ]
    messages, books = write_lobster(tmp_path, rows)
    lines = messages.read_text().splitlines()
    lines[3] = lines[2].split(",")[0] + "," + lines[3].split(",", 1)[1]
    messages.write_text("\n".join(lines))
    report = replay_lobster(messages, books)
    assert report.executions_checked == 2
    assert report.executions_explained_by_sweep_order == 2
    assert report.ok, report.summary()


def test_sweep_continuations_skip_hidden_executions(tmp_path: Path) -> None:
    rows = [
        (f"4,1,1,{BID},1", ""),
        (f"5,0,1,{BID},1", ""),
        (f"4,2,1,{BID},1", ""),
        (f"4,3,1,{BID},-1", ""),
    ]
    messages = tmp_path / "m.csv"
    messages.write_text("\n".join(f"34200.5,{message}" for message, _ in rows))
    (tmp_path / "b.csv").write_text("\n".join([EMPTY_LEVEL] * 4))
    parsed, _, _ = read_lobster_files(messages, tmp_path / "b.csv")
    assert sweep_continuations(parsed) == {1}


def test_time_parses_to_integer_nanoseconds() -> None:
    assert parse_time_ns("34200.004241176") == 34_200_004_241_176
    assert parse_time_ns("34200.00426064") == 34_200_004_260_640  # trailing zero dropped
    assert parse_time_ns("34200") == 34_200_000_000_000
    for bad in ("34200.1234567890", "x.5", "-1.5", "1.5e3"):
        with pytest.raises(ValueError):
            parse_time_ns(bad)


# -- MBO: CME ES futures --


@pytest.fixture(scope="module")
def esm4() -> Any:
    return replay_mbo(ESM4)


def test_mbo_fills_name_the_order_at_the_head_of_the_queue(esm4: Any) -> None:
    assert esm4.records == 13_796
    assert esm4.started_with_snapshot
    assert esm4.instruments[0]["symbol"] == "ESM4"
    assert esm4.instruments[0]["tick_units"] == 250_000_000  # 0.25 index points
    assert esm4.fills_checked > 0
    assert esm4.fills_checked == esm4.records_by_action["F"]
    assert esm4.fills_at_queue_head + esm4.fills_explained_by_self_match_prevention == (
        esm4.fills_checked
    )
    # The third fill hits order 6413245567872 while 6413245567573 rests ahead of it; the same
    # event then cancels 6413245567573: self-match prevention.
    assert esm4.fills_explained_by_self_match_prevention == 1
    assert esm4.fills_at_queue_head == 4


def test_mbo_engine_book_equals_the_file_book(esm4: Any) -> None:
    assert esm4.book_checks == esm4.events
    assert esm4.book_level_mismatches == 0
    assert esm4.engine_book_crossed_events == 0
    assert esm4.final_book_matches and esm4.final_book_levels > 1_000
    # The file starts with a snapshot of the whole book: no order is unknown.
    assert esm4.unknown_order_references == 0
    assert esm4.unexplained_events == 0
    assert esm4.ok


def test_mbo_reference_engine_gives_the_same_figures(esm4: Any) -> None:
    reference = replay_mbo(ESM4, engine_factory=ReferenceEngine, engine_name="reference")
    assert same_figures(reference.to_dict(), esm4.to_dict())


def dbn_bytes() -> bytes:
    with ESM4.open("rb") as handle:
        return zstandard.ZstdDecompressor().stream_reader(handle).read()


def dbn_records_start(raw: bytes) -> int:
    """Offset of the first record: "DBN", version byte, metadata length, metadata."""
    return 8 + struct.unpack_from("<I", raw, 4)[0]


def test_mbo_starting_mid_session_counts_unknown_orders_as_explained(tmp_path: Path) -> None:
    raw = dbn_bytes()
    start = dbn_records_start(raw)
    record_bytes = raw[start] * 4  # a record's first byte is its length in 32-bit words
    snapshot = 13_601  # the R record and the snapshot's adds
    variant = tmp_path / "mid_session.mbo.dbn"
    variant.write_bytes(raw[:start] + raw[start + snapshot * record_bytes :])
    report = replay_mbo(variant)
    assert not report.started_with_snapshot
    assert report.records == 13_796 - snapshot
    assert report.unknown_order_references > 0
    assert report.unknown_references_explained_by_mid_session_start == (
        report.unknown_order_references
    )
    # Every fill hits an order from before the file, or one first seen in a modify (so its
    # place in the queue is unknown): none can be judged.
    assert report.fills_checked == 0
    assert report.fills_on_unknown_orders + report.fills_with_unknown_queue_position == 5
    assert report.book_level_mismatches == 0 and report.final_book_matches
    assert report.ok, report.summary()


# -- CLI --


def test_cli_lobster_json_shape(capsys) -> None:
    assert main(["replay", "lobster", *map(str, AAPL), "--json"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    for key in (
        "events",
        "executions_checked",
        "executions_matched",
        "book_rows_checked",
        "book_rows_matched",
        "book_rows_explained",
        "book_rows_unexplained",
        "ok",
    ):
        assert isinstance(result[key], int), key
    assert result["executions_matched"] == result["executions_checked"] > 0
    assert result["engine"] == "core"


def test_cli_mbo_json_shape(capsys) -> None:
    assert main(["replay", "mbo", str(ESM4), "--json", "--engine", "reference"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    for key in (
        "records",
        "fills_checked",
        "fills_at_queue_head",
        "fills_explained_by_self_match_prevention",
        "share_at_queue_head_bp",
        "book_level_mismatches",
        "unknown_order_references",
    ):
        assert isinstance(result[key], int), key
    assert result["share_at_queue_head"] == "80.00%"
    assert result["final_book_matches"] is True
    assert result["engine"] == "reference"


def test_cli_text_summary(capsys) -> None:
    assert main(["replay", "mbo", str(ESM4)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "fills checked          5" in out and "result                 OK" in out


def copy_aapl(tmp_path: Path, edit_line: int, text: str | None) -> tuple[Path, Path]:
    """The AAPL pair with one message line replaced (None: the file cut after it)."""
    lines = AAPL[0].read_text().splitlines()
    if text is None:
        lines = lines[:edit_line]
    else:
        lines[edit_line - 1] = text
    messages = tmp_path / AAPL[0].name
    messages.write_text("\n".join(lines))
    books = tmp_path / AAPL[1].name
    books.write_text(AAPL[1].read_text())
    return messages, books


@pytest.mark.parametrize(
    ("line", "text", "expected"),
    [
        (5, "34200.025579546,1,16120480", "has 3"),  # truncated line
        (7, "34200.1,1,16120499,18,58x9200,-1", "price is not an integer"),
        (9, "34200.1,8,16120499,18,5859200,-1", "type must be 1..7"),
        (9, "34200.1,1,16120499,18,5859200,0", "direction must be 1 or -1"),
        (11, "34200,1a,1,1,1,1", "type is not an integer"),
    ],
)
def test_cli_malformed_csv_line_names_the_line(
    tmp_path: Path, capsys, line: int, text: str, expected: str
) -> None:
    messages, books = copy_aapl(tmp_path, line, text)
    assert main(["replay", "lobster", str(messages), str(books)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{messages}:{line}:" in err and expected in err


def test_cli_files_of_different_length(tmp_path: Path, capsys) -> None:
    messages, books = copy_aapl(tmp_path, 500, None)
    assert main(["replay", "lobster", str(messages), str(books)]) == EXIT_BAD_INPUT
    assert "has 500 rows but" in capsys.readouterr().err


def test_cli_missing_files(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["replay", "lobster", str(missing), str(AAPL[1])]) == EXIT_BAD_INPUT
    assert f"{missing}: no such file" in capsys.readouterr().err
    assert main(["replay", "mbo", str(tmp_path / "nope.dbn.zst")]) == EXIT_BAD_INPUT
    assert "no such file" in capsys.readouterr().err


def test_cli_truncated_and_foreign_dbn(tmp_path: Path, capsys) -> None:
    raw = dbn_bytes()
    truncated = tmp_path / "cut.mbo.dbn"
    truncated.write_bytes(raw[:-20])
    assert main(["replay", "mbo", str(truncated)]) == EXIT_BAD_INPUT
    assert "truncated: 36 bytes after record" in capsys.readouterr().err
    foreign = tmp_path / "not.dbn"
    foreign.write_bytes(b"time,price\n1,2\n")
    with pytest.raises(ReplayInputError, match="not a readable DBN stream"):
        replay_mbo(foreign)
