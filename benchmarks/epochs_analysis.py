"""The Epochs analysis of a training run (issue #24) at the size the issue names: 10 epochs ×
4 weights × 3 checkpoints × 4 prompts × 8 seeds (3,840 adapter images and 96 baselines),
synthetic per-image values plus 1,024-dimensional DINOv2-like vectors (so Vendi per prompt
is computed too). Times the ``training_runs`` section (curves with intervals, every pair of
epochs tested, Pareto, recommendation, side effects) and its words, best of ``--repeat``;
the target is under 2 s on the 2-core CI machine.

    .venv/bin/python benchmarks/epochs_analysis.py --out benchmarks/results-epochs.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lycoris_eval.compare.epoch_verdicts import training_runs_section  # noqa: E402
from lycoris_eval.report.epochs_answer import training_run_answers  # noqa: E402
from tests.helpers import synthetic_training_run  # noqa: E402

METRICS = ["image_similarity", "text_alignment", "style_loss_base", "vendi"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    run, data, _ = synthetic_training_run(
        epochs=10, weights=(0.25, 0.5, 0.75, 1.0), checkpoints=("ckA", "ckB", "ckC"), seeds=8, dino_dim=1024
    )
    images = sum(len(slot) for slot in data.by_condition.values())
    times, words = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        section = training_runs_section([run], data, METRICS, 1.0, ["le_ink"])
        middle = time.perf_counter()
        answer = training_run_answers({"training_runs": section})
        end = time.perf_counter()
        times.append(middle - start)
        words.append(end - middle)
    ck = section["runs"][0]["checkpoints"][0]
    result = {
        "benchmark": "epochs_analysis",
        "shape": "10 epochs x 4 weights x 3 checkpoints x 4 prompts x 8 seeds",
        "images": images,
        "analysis_s": {"best": min(times), "median": statistics.median(times)},
        "words_s": {"best": min(words), "median": statistics.median(words)},
        "target_s": 2.0,
        "curves_per_checkpoint": len(ck["curves"]),
        "sentences": len(answer[0]["sentences"]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
