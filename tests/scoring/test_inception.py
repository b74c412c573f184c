"""Optional classic metrics: Inception FID and Inception Score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from lycoris_eval.config import EvalConfig
from lycoris_eval.errors import MissingWeightsError
from lycoris_eval.scoring.encoders import EncoderOptions, InceptionEncoder
from lycoris_eval.scoring.encoders.inception import _load_torchscript
from lycoris_eval.scoring.metrics import DEFAULT_METRICS
from lycoris_eval.scoring.metrics.frechet import inception_score
from lycoris_eval.scoring.pipeline import evaluate
from tests.helpers import SMALL, pattern


def test_inception_score_known_answers():
    assert inception_score(np.full((5, 10), 0.1))[0] == pytest.approx(1.0)
    assert inception_score(np.eye(4))[0] == pytest.approx(4.0)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6), size=20)
    expected = np.exp(np.mean([entropy(row, p.mean(0)) for row in p]))
    assert inception_score(p)[0] == pytest.approx(expected)
    mean, std = inception_score(p, splits=4)
    assert std is not None and mean > 1


def test_inception_metrics_are_off_by_default():
    assert "fid_inception" not in DEFAULT_METRICS and "inception_score" not in DEFAULT_METRICS


def test_clean_fid_resize_and_random_standin():
    from cleanfid.resize import make_resizer

    enc = InceptionEncoder(EncoderOptions(device="cpu", random_weights=True))
    image = pattern(3, (64, 80))
    ours = enc.preprocess(image).numpy().transpose(1, 2, 0)
    expected = make_resizer("PIL", False, "bicubic", (299, 299))(np.asarray(image))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    out = enc.encode([enc.preprocess(image)])
    assert out.shape == (1, 2048 + 1000) and out[0, 2048:].sum() == pytest.approx(1.0, rel=1e-4)
    assert "stand-in" in enc.config()["arch"]


def test_missing_inception_weights_message(tmp_path):
    enc = InceptionEncoder(EncoderOptions(device="cpu", weights_dir=tmp_path, allow_download=False))
    with pytest.raises(MissingWeightsError, match="inception-2015-12-05.pt"):
        enc.fingerprint()


def test_torchscript_loading_path(tmp_path):
    class Fake(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2048)
            )
            self.output = torch.nn.Linear(2048, 1008)

        def forward(self, x):
            return self.output(self.layers(x))

    fake = Fake().eval()
    torch.jit.save(torch.jit.script(fake), str(tmp_path / "inception-2015-12-05.pt"))
    enc = InceptionEncoder(EncoderOptions(device="cpu", weights_dir=tmp_path, allow_download=False))
    x = enc.preprocess(pattern(1))
    got = enc.encode([x])[0]
    with torch.no_grad():
        feats = fake.layers((x[None] - 128) / 128)[0]
        probs = torch.softmax(feats @ fake.output.weight.T, 0)
    np.testing.assert_allclose(got[:2048], feats.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2048:], probs.numpy(), rtol=1e-4, atol=1e-7)
    assert _load_torchscript(tmp_path / "inception-2015-12-05.pt") is not None


def test_pipeline_with_inception_metrics(tmp_path, grid_dir, reference_dir):
    config = EvalConfig(
        metrics=("fid_inception", "inception_score"),
        reference_dir=reference_dir,
        random_weights=True,
        allow_download=False,
        device="cpu",
        cache_dir=tmp_path / "c",
        **SMALL,
    )
    doc = evaluate(grid_dir, config)
    for row in doc["summaries"]:
        fid = row["metrics"]["fid_inception"]
        # 2 images against 3 in 2048-d: either a value flagged unreliable or a clear refusal
        if fid["mean"] is None:
            assert "numerically undefined" in fid["note"]
        else:
            assert "unreliable" in fid["note"]
        assert row["metrics"]["inception_score"]["mean"] >= 1.0 - 1e-9
