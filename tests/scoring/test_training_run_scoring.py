"""A folder of saved epochs, scored end to end (issue #24): the saves are recognised by
their file names, the scores document holds the run, report.md and the terminal open with
which epoch at which weight, and the figures are drawn."""

from __future__ import annotations

import json

from lycoris_eval.cli.main import main
from tests.helpers import make_grid
from tests.scoring.test_evaluate import SMALL_ARGS

SAVES = ("inkrun-000001", "inkrun-000002", "inkrun-000003", "inkrun")


def _grid(tmp_path):
    make_grid(
        tmp_path / "grid",
        adapters=[(name, 1.0) for name in SAVES] + [("other_style", 1.0)],
        prompts=("le_ink, a cat sitting", "a castle on a hill"),
        seeds=(1, 2, 3),
    )
    return tmp_path / "grid"


def _evaluate(tmp_path, grid, reference_dir, *extra):
    out = tmp_path / "out"
    args = ["evaluate", str(grid), "--reference", str(reference_dir), "--trigger", "le_ink=ink wash"]
    args += ["--out", str(out), "--cache-dir", str(tmp_path / "c"), *SMALL_ARGS, *extra]
    code = main(args)
    assert code == 0
    return out


def test_saved_epochs_scored_answer_first(tmp_path, reference_dir, capsys):
    out = _evaluate(
        tmp_path,
        _grid(tmp_path),
        reference_dir,
        "--metrics",
        "image_similarity,text_alignment,style_loss_base,vendi",
    )
    doc = json.loads((out / "scores.json").read_text())
    [run] = doc["training_runs"]["runs"]
    assert run["name"] == "inkrun" and run["grouped_by"] == "file name"
    assert [m["adapter"] for m in run["in_grid"]] == list(SAVES) and run["in_grid"][-1]["final"]
    [ck] = run["checkpoints"]
    assert {c["metric"] for c in ck["curves"]} >= {"image_similarity", "text_alignment", "vendi"}
    assert all(len(c["points"]) == 4 for c in ck["curves"])
    assert len(ck["tradeoff"]) == 4 and any(p["pareto"] for p in ck["tradeoff"])
    assert ck["recommendation"]["pick"]["adapter"] in SAVES
    assert ck["leakage"]["status"] == "measured"  # "a castle on a hill" has no trigger word
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.index("### Training run inkrun") < report.index("## Epochs") < report.index("## Summary")
    assert "publish inkrun" in report and "RANDOM WEIGHTS" in report
    assert (out / "epochs-inkrun-curves.png").stat().st_size > 1000
    assert (out / "epochs-inkrun-tradeoff.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "Training run inkrun" in printed and printed.index("Training run inkrun") < printed.index("other_style")


def test_a_users_grouping_wins(tmp_path, reference_dir):
    out = _evaluate(
        tmp_path,
        _grid(tmp_path),
        reference_dir,
        "--metrics",
        "text_alignment",
        "--training-run",
        "picked=inkrun-000003,inkrun-000001,other_style",
    )
    runs = json.loads((out / "scores.json").read_text())["training_runs"]["runs"]
    assert {r["name"]: [m["adapter"] for m in r["in_grid"]] for r in runs} == {
        "picked": ["inkrun-000003", "inkrun-000001", "other_style"],
        "inkrun": ["inkrun-000002", "inkrun"],  # what the user did not claim stays grouped
    }
    assert {r["name"]: r["grouped_by"] for r in runs}["picked"] == "user"


def test_a_bad_grouping_is_refused_before_any_work(tmp_path, reference_dir, capsys):
    code = main(["evaluate", str(_grid(tmp_path)), "--training-run", "solo=inkrun", "--quiet", *SMALL_ARGS])
    err = capsys.readouterr().err
    assert code == 2 and "solo: a training run needs at least two adapters" in err and "Traceback" not in err
