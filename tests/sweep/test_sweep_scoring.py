"""The scoring pool's rows: image paths, sizes and hashes, never the bytes; an actor reads the
files when it sees them (same size, same hash), asks the driver's node for the bytes when it
does not; Ray Data is fed in bounded windows, and the scores stay the single-machine ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lycoris_eval.config import EvalConfig
from lycoris_eval.sweep.scoring import _chunk_rows, encode_features, load_row, windows
from tests.helpers import SMALL, make_set


class Fetch:
    """The driver's node as a test sees it: counts what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def __call__(self, paths: list[str]) -> list[bytes]:
        self.asked.append(paths)
        return [b"from the driver"] * len(paths)


def _files(folder: Path, n: int) -> tuple[list[str], list[int], list[str]]:
    make_set(folder, n, 7)
    paths = sorted(folder.iterdir())
    return (
        [str(p) for p in paths],
        [p.stat().st_size for p in paths],
        [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths],
    )


def test_an_actor_that_sees_the_files_reads_them_itself(tmp_path):
    paths, sizes, shas = _files(tmp_path / "images", 3)
    fetch = Fetch()
    datas, source = load_row(paths, sizes, shas, fetch)
    assert source == "path" and fetch.asked == []
    assert datas == [Path(p).read_bytes() for p in paths]


@pytest.mark.parametrize("elsewhere", ["missing", "other size", "other bytes"])
def test_an_actor_that_does_not_see_them_gets_the_bytes(tmp_path, elsewhere):
    paths, sizes, shas = _files(tmp_path / "images", 3)
    if elsewhere == "missing":  # another machine, no shared file system
        paths[1] = str(tmp_path / "not-mounted" / "img1.png")
    elif elsewhere == "other size":  # the same path on another machine holds another file
        sizes[1] += 1
    else:  # same path, same size, other content
        data = bytearray(Path(paths[1]).read_bytes())
        data[-5] ^= 0xFF
        Path(paths[1]).write_bytes(bytes(data))
    fetch = Fetch()
    datas, source = load_row(paths, sizes, shas, fetch)
    assert source == "bytes" and fetch.asked == [paths]
    assert datas == [b"from the driver"] * 3


def test_windows_hold_at_most_their_size_in_images():
    rows = [{"shas": ["h"] * n} for n in (3, 3, 2, 5, 9, 1)]
    sizes = [[len(r["shas"]) for r in w] for w in windows(rows, 6)]
    assert sizes == [[3, 3], [2], [5], [9], [1]]  # a row larger than a window goes alone
    assert [r for w in windows(rows, 6) for r in w] == rows


def test_the_pool_reads_the_files_in_windows_and_scores_as_evaluate(tmp_path):
    import ray

    from lycoris_eval.scoring.pipeline import evaluate

    images = make_set(tmp_path / "images", 6, 100)
    ref = make_set(tmp_path / "ref", 4, 500)
    base = dict(random_weights=True, allow_download=False, device="cpu", reference_dir=ref, chunk_images=2, **SMALL)
    base["metrics"] = ("style_loss_ref", "vendi")
    config = EvalConfig(cache_dir=tmp_path / "cache", **base)
    rows = list(_chunk_rows(images, config, list(config.metrics), ["vgg19-gram", "dinov2"]))
    assert all("data" not in row and len(row["paths"]) == len(row["sizes"]) for row in rows)
    assert sum(sum(row["sizes"]) for row in rows) == sum(
        p.stat().st_size for folder in (images, ref) for p in folder.iterdir()
    )
    single = evaluate(images, EvalConfig(use_cache=False, **base))
    ray.init(num_cpus=2, log_to_driver=False)
    try:
        report = encode_features(images, config, actors=1, window_images=4)
    finally:
        ray.shutdown()
    assert report.windows >= 3 and report.chunks == report.from_paths == len(rows) and report.from_bytes == 0
    swept = evaluate(images, config)
    assert set(swept["run"]["encoded"].values()) == {0}, "the driver encoded images itself"
    for section in ("cells", "summaries", "metrics"):
        assert swept[section] == single[section], section
