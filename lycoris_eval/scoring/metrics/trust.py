"""Can this metric be trusted here?

Given per-image distances (or similarities) of the adapter's images to the target
reference set and to a distractor set (another artist, a doodle), count how often the
metric puts an image closer to the target (accuracy) and the ROC AUC of telling the two
apart: the probability that a random image's target score beats a random image's
distractor score (Mann-Whitney U / (n·m), ties count half). The community's finding that
Gram style loss could not tell a LoRA's own artist from a doodle shows up here as an
accuracy and AUC near (or below) 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from lycoris_eval.errors import MetricError

GOOD = 0.8
WEAK = 0.6


@dataclass
class TrustResult:
    metric: str
    distractor: str
    n: int
    accuracy: float
    auc: float
    verdict: str
    level: str

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "distractor": self.distractor,
            "n": self.n,
            "accuracy": self.accuracy,
            "auc": self.auc,
            "level": self.level,
            "verdict": self.verdict,
        }


def trust_check(
    to_target: np.ndarray, to_distractor: np.ndarray, higher_is_better: bool, metric: str, distractor: str
) -> TrustResult:
    a = np.asarray(to_target, dtype=np.float64)
    b = np.asarray(to_distractor, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise MetricError("trust check needs the same non-empty set of images scored against both sets")
    if not higher_is_better:
        a, b = -a, -b
    accuracy = float(np.mean(a > b) + 0.5 * np.mean(a == b))
    auc = float(mannwhitneyu(a, b, alternative="two-sided").statistic / (a.size * b.size))
    score = min(accuracy, auc)
    if score >= GOOD:
        level = "trustworthy"
        verdict = (
            f"{metric} reliably tells the target from '{distractor}' ({accuracy:.0%} of images closer to the target)."
        )
    elif score >= WEAK:
        level = "weak"
        verdict = f"{metric} only weakly separates the target from '{distractor}'; read small differences with care."
    else:
        level = "untrustworthy"
        verdict = (
            f"{metric} cannot tell the target from '{distractor}' ({accuracy:.0%} of images closer to the target, "
            f"AUC {auc:.2f}); do not rely on it for this adapter."
        )
    return TrustResult(metric, distractor, int(a.size), accuracy, auc, verdict, level)
