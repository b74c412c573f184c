"""Known answers and cross-checks against independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lycoris_eval.errors import MetricError
from lycoris_eval.scoring.metrics.fidelity import cosine_to_set, fidelity, normalised_centroid
from lycoris_eval.scoring.metrics.frechet import frechet_distance, kid
from lycoris_eval.scoring.metrics.pixel import psnr_ssim
from lycoris_eval.scoring.metrics.ranks import rank_normalise
from lycoris_eval.scoring.metrics.style import (
    SetStats,
    allpair_msd,
    allpair_msd_from_stats,
    distance_to_set,
    pair_style_loss,
)
from lycoris_eval.scoring.metrics.text import clip_score, pair_cosine
from lycoris_eval.scoring.metrics.trust import trust_check
from lycoris_eval.scoring.metrics.vendi import vendi_score

RNG = np.random.default_rng(1234)


# ---- Vendi ---------------------------------------------------------------------------
def test_vendi_identical_vectors_is_one():
    x = np.tile(RNG.normal(size=(1, 16)), (7, 1))
    assert vendi_score(x) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_vendi_orthonormal_is_n(n):
    q, _ = np.linalg.qr(RNG.normal(size=(16, 16)))
    assert vendi_score(q[:n] * 3.0) == pytest.approx(n, rel=1e-9)


def test_vendi_dual_form_equals_primal():
    wide = RNG.normal(size=(5, 40))  # d > n: primal
    tall = RNG.normal(size=(40, 5))  # d < n: dual
    for x in (wide, tall):
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        w = np.linalg.eigvalsh(xn @ xn.T / len(x))
        w = w[w > 1e-15]
        assert vendi_score(x) == pytest.approx(np.exp(-(w * np.log(w)).sum()), rel=1e-9)


def test_vendi_matches_vendi_score_package():
    from vendi_score import vendi

    for shape in [(6, 32), (50, 8)]:
        x = RNG.normal(size=shape)
        assert vendi_score(x) == pytest.approx(vendi.score_X(x), rel=1e-7)
        assert vendi_score(x) == pytest.approx(vendi.score_dual(x), rel=1e-7)


def test_vendi_orders_q():
    x = RNG.normal(size=(12, 6))
    assert vendi_score(x, q=2) <= vendi_score(x, q=1) + 1e-12  # Rényi entropy decreases with q
    assert vendi_score(x, q="inf") <= vendi_score(x, q=2) + 1e-12
    with pytest.raises(MetricError, match="NaN or inf"):
        vendi_score(np.array([[np.nan, 1.0]]))


# ---- Fréchet / KID -------------------------------------------------------------------
def test_fd_of_shifted_gaussians_is_squared_shift():
    d, n = 4, 200_000
    m = np.array([1.0, -2.0, 0.5, 0.0])
    a = RNG.normal(size=(n, d))
    b = RNG.normal(size=(n, d)) + m
    assert frechet_distance(a, b) == pytest.approx(float(m @ m), abs=0.03)


def test_fd_matches_torchmetrics_and_scipy():
    from scipy import linalg
    from torchmetrics.image.fid import _compute_fid

    a = RNG.normal(size=(60, 8))
    b = RNG.normal(size=(50, 8)) * 1.5 + 0.3
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    tm = float(_compute_fid(torch.tensor(mu1), torch.tensor(s1), torch.tensor(mu2), torch.tensor(s2)))
    direct = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    ours = frechet_distance(a, b)
    assert ours == pytest.approx(tm, rel=1e-5)
    assert ours == pytest.approx(direct, rel=1e-6)


def test_kid_matches_torchmetrics_poly_mmd_on_full_sets():
    from torchmetrics.image.kid import poly_mmd

    a = RNG.normal(size=(30, 8))
    b = RNG.normal(size=(30, 8)) + 0.5
    expected = float(poly_mmd(torch.tensor(b), torch.tensor(a)))
    assert kid(a, b, num_subsets=1) == pytest.approx(expected, rel=1e-6)
    assert kid(a, b) == kid(a, b)  # seeded: repeatable


def test_fd_needs_two_images():
    with pytest.raises(MetricError, match="at least 2 images"):
        frechet_distance(np.ones((1, 3)), np.ones((5, 3)))


# ---- style -----------------------------------------------------------------------------
def test_allpair_identity_equals_brute_force():
    x1, x2 = RNG.normal(size=(7, 10)), RNG.normal(size=(5, 10)) + 1
    brute = np.mean([((a - b) ** 2).sum() for a in x1 for b in x2])
    assert allpair_msd(x1, x2) == pytest.approx(brute, rel=1e-10)
    # per-image distances average to the set value
    assert distance_to_set(x1, SetStats.of(x2)).mean() == pytest.approx(brute, rel=1e-10)


def test_streaming_stats_equal_whole_set():
    x = RNG.normal(size=(23, 9)) * 100 + 1e4  # large offset: naive sum-of-squares would lose precision
    stats = SetStats()
    for start in range(0, 23, 4):
        stats.add(x[start : start + 4])
    whole = SetStats.of(x)
    assert stats.n == 23
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12)
    assert stats.variance == pytest.approx(((x - x.mean(0)) ** 2).sum(1).mean(), rel=1e-9)
    assert allpair_msd_from_stats(stats, whole) == pytest.approx(2 * whole.variance, rel=1e-9)


def test_pair_style_loss_is_sum_of_squares():
    a, b = RNG.normal(size=(3, 6)), RNG.normal(size=(3, 6))
    np.testing.assert_allclose(pair_style_loss(a, b), ((a - b) ** 2).sum(1))
    with pytest.raises(MetricError, match="differ in shape"):
        pair_style_loss(a, b[:, :5])


# ---- fidelity / text -------------------------------------------------------------------
def test_fidelity_against_brute_force_cosines():
    a, b = RNG.normal(size=(6, 5)), RNG.normal(size=(4, 5))
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    sim, dist = fidelity(a, b)
    assert sim == pytest.approx(np.mean([x @ y for x in an for y in bn]))
    assert dist == pytest.approx(((an.mean(0) - bn.mean(0)) ** 2).sum())
    np.testing.assert_allclose(cosine_to_set(a, normalised_centroid(b)).mean(), sim)


def test_fidelity_of_set_with_itself():
    a = RNG.normal(size=(6, 5))
    sim, dist = fidelity(a, a)
    assert dist == pytest.approx(0.0, abs=1e-12)
    c = normalised_centroid(a)
    assert sim == pytest.approx(c @ c) and sim < 1.0


def test_text_cosine_and_clipscore():
    a, b = RNG.normal(size=(5, 8)), RNG.normal(size=(5, 8))
    expected = torch.nn.functional.cosine_similarity(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(pair_cosine(a, b), expected, rtol=1e-10)
    np.testing.assert_allclose(clip_score(np.array([0.3, -0.2])), [30.0, 0.0])


# ---- ranks ------------------------------------------------------------------------------
def test_rank_examples():
    assert rank_normalise([1.0, 2.0, 3.0], True) == [0.0, 0.5, 1.0]
    assert rank_normalise([1.0, 2.0, 3.0], False) == [1.0, 0.5, 0.0]
    assert rank_normalise([1.0, 1.0, 3.0], True) == [0.25, 0.25, 1.0]
    assert rank_normalise([5.0], True) == [None]
    assert rank_normalise([None, 2.0, float("nan"), 1.0], True) == [None, 1.0, None, 0.0]


def test_ranks_match_pandas_reference_formula():
    import pandas as pd

    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    s = pd.Series(values)
    expected = ((s.rank(ascending=False) - 1) / (len(s) - 1)).tolist()
    assert rank_normalise(values, False) == pytest.approx(expected)


# ---- trust ------------------------------------------------------------------------------
def test_trust_separable_and_not():
    from sklearn.metrics import roc_auc_score

    near = RNG.uniform(0, 1, 20)
    far = near + 5
    good = trust_check(near, far, higher_is_better=False, metric="style_loss_ref", distractor="doodle")
    assert (good.accuracy, good.auc, good.level) == (1.0, 1.0, "trustworthy")
    same = trust_check(near, near, higher_is_better=False, metric="style_loss_ref", distractor="doodle")
    assert same.accuracy == 0.5 and same.level == "untrustworthy"
    assert "cannot tell the target from 'doodle'" in same.verdict
    a, b = RNG.normal(size=15), RNG.normal(size=15) + 0.4
    res = trust_check(a, b, higher_is_better=True, metric="image_similarity", distractor="x")
    labels = np.r_[np.ones(15), np.zeros(15)]
    assert res.auc == pytest.approx(roc_auc_score(labels, np.r_[a, b]))


# ---- pixels -----------------------------------------------------------------------------
def test_psnr_ssim_against_formula():
    base = (RNG.uniform(0, 255, (40, 40, 3))).astype(np.uint8)
    noisy = np.clip(base.astype(int) + RNG.integers(-10, 11, base.shape), 0, 255).astype(np.uint8)
    psnr, ssim = psnr_ssim(noisy, base)
    mse = ((noisy.astype(float) - base) ** 2).mean()
    assert psnr == pytest.approx(10 * np.log10(255**2 / mse))
    assert 0 < ssim < 1
    assert psnr_ssim(base, base)[1] == pytest.approx(1.0)
    with pytest.raises(MetricError, match="differ in size"):
        psnr_ssim(base, base[:20])


# ---- invariances -------------------------------------------------------------------------
def test_invariances():
    a, b = RNG.normal(size=(9, 6)), RNG.normal(size=(7, 6)) + 0.3
    perm = RNG.permutation(9)
    # cosine-based: per-row positive scaling and order do not matter
    scale = RNG.uniform(0.1, 10, size=(9, 1))
    np.testing.assert_allclose(fidelity(a * scale, b), fidelity(a, b))
    np.testing.assert_allclose(fidelity(a[perm], b), fidelity(a, b))
    assert vendi_score(a * scale) == pytest.approx(vendi_score(a))
    assert vendi_score(a[perm]) == pytest.approx(vendi_score(a))
    # distances: a common translation (and orthogonal rotation) of both sets changes nothing
    q, _ = np.linalg.qr(RNG.normal(size=(6, 6)))
    shift = RNG.normal(size=6) * 5
    assert allpair_msd(a + shift, b + shift) == pytest.approx(allpair_msd(a, b))
    assert allpair_msd(a @ q, b @ q) == pytest.approx(allpair_msd(a, b))
    assert frechet_distance(a @ q + shift, b @ q + shift) == pytest.approx(frechet_distance(a, b), rel=1e-6)
    # ranks: any increasing transform keeps them
    values = list(RNG.normal(size=6))
    assert rank_normalise([np.exp(v) for v in values], True) == rank_normalise(values, True)
