"""The screening command line (python -m compliance.screening).

Goal: ``evaluate --json`` prints the agreed shape (pairs, per-threshold precision, recall and
F1, and the best) and the matcher's F1 on the labelled pairs stays above a measured floor;
``screen`` prints explained candidates; a bad cases file is a clear error, not a traceback.
Method: `main` called in-process with pytest's capsys on the real nomenklatura pairs.
"""

from __future__ import annotations

import json

from compliance.screening.__main__ import main


def test_evaluate_json_shape_and_f1_floor(capsys):
    assert main(["evaluate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"pairs", "results", "best"}
    assert report["pairs"] == 826  # `wc -l cases.csv` = 827 with the header
    thresholds = [r["threshold"] for r in report["results"]]
    assert thresholds == sorted(thresholds) and len(thresholds) >= 5
    for row in report["results"]:
        assert {"threshold", "precision", "recall", "f1"} <= set(row)
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 826
        assert 0.0 <= row["precision"] <= 1.0 and 0.0 <= row["recall"] <= 1.0
    best = report["best"]
    assert best["f1"] == max(r["f1"] for r in report["results"])
    # Measured 0.8335 at threshold 60 (0.8333 at the default 70) when this was written; the
    # floor sits a little below so that a small tuning change passes and a regression does not.
    assert best["f1"] >= 0.82


def test_evaluate_text(capsys):
    assert main(["evaluate"]) == 0
    out = capsys.readouterr().out
    assert "826 pairs" in out
    assert "best: threshold" in out


def test_evaluate_refuses_a_file_without_the_columns(tmp_path, capsys):
    bad = tmp_path / "cases.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["evaluate", "--cases", str(bad)]) == 2
    assert "missing columns" in capsys.readouterr().err


def test_screen_prints_explained_candidates(capsys):
    assert main(["screen", "Ladin Usama bin", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["list_version_id"].startswith("sha256:")
    first = result["candidates"][0]
    assert first["entry_id"] == "ofac_sdn:6365"
    assert first["score"] == 100
    assert {t["how"] for t in first["match"]["tokens"]} == {"exact"}
    assert "indexed" in captured.err  # progress goes to stderr, never into the JSON
    assert main(["screen", "Saddam Husein"]) == 0
    out = capsys.readouterr().out
    assert "husein ~ hussein: typo" in out


def test_clearline_compliance_commands_as_the_issue_names_them(tmp_path, capsys):
    """`clearline compliance eval-names CSV --json` is `evaluate`; `eval-screening` screens
    listed names (here misspelt by one letter) and unlisted ones and reports recall and the
    false-hit rate; a CSV without a full_name column is a clear error (exit 2)."""
    from compliance.screening._evaluate import default_cases_path
    from engine.cli import main as clearline

    assert clearline(["compliance", "eval-names", str(default_cases_path()), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"pairs", "results", "best"}

    positives = tmp_path / "positives.csv"
    positives.write_text("full_name\nSaddam Husein\nUsama bin Ladin\nViktor Vekselberg\n")
    negatives = tmp_path / "negatives.csv"
    negatives.write_text("full_name\nAnnika Johansson\nPedro Alvarez Cabral\n")
    argv = ["compliance", "eval-screening", "--positives", str(positives)]
    assert clearline([*argv, "--negatives", str(negatives), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["positives"], report["negatives"]) == (3, 2)
    assert report["recall"] == 1.0 and report["false_hit_rate"] == 0.0
    assert report["threshold"] == 70

    bad = tmp_path / "bad.csv"
    bad.write_text("name\nX\n")
    assert clearline([*argv, "--negatives", str(bad)]) == 2
    assert "full_name" in capsys.readouterr().err
