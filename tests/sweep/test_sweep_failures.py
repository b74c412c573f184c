"""Failure paths of the sweep against stand-in WebUIs: images the WebUI fails on, every
WebUI gone, a chunk given up after its attempts. Each is recorded where the issue says:
failed cells in ``cells.jsonl`` with the reason, the summary, the exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lycoris_eval.grid.spec import GridSpec

from ..realhost.host import ROOT
from .conftest import cells, summary, sweep_env
from .fake_webui_http import ADAPTERS, CHECKPOINTS, FakeWebUI

SPEC = {
    "checkpoints": list(CHECKPOINTS),
    "adapters": list(ADAPTERS),
    "weights": [1.0],
    "prompts": ["a castle", "a cat"],
    "seeds": [1, 2, 3],
    "run_id": "fake",
}
TOTAL = len(GridSpec.from_dict(SPEC).plan())  # 2 checkpoints × 2 prompts × 3 seeds × 2 = 24


@pytest.fixture
def fakes():
    made: list[FakeWebUI] = []

    def make(**kwargs) -> FakeWebUI:
        made.append(FakeWebUI(**kwargs))
        return made[-1]

    yield make
    for fake in made:
        fake.stop()


def sweep(tmp_path: Path, fakes: list[FakeWebUI], *extra: str) -> subprocess.CompletedProcess:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    urls = [a for f in fakes for a in ("--webui", f.url)]
    cmd = [sys.executable, "-m", "lycoris_eval", "sweep", str(spec), *urls, "--out", str(tmp_path / "runs")]
    cmd += ["--num-cpus", "2", "--quiet", "--chunk-size", "4", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=sweep_env(), cwd=ROOT)


def test_images_the_webui_fails_on_are_recorded_and_retried_by_the_next_run(tmp_path, fakes):
    flaky = fakes(fail_prompt="a cat")
    proc = sweep(tmp_path, [flaky])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "fake"
    lines = {line["key"]: line for line in cells(run)}
    failed = {k: v for k, v in lines.items() if v["status"] == "failed"}
    assert len(lines) == TOTAL and len(failed) == TOTAL // 2
    assert all(
        "HTTP 500" in v["error"] and "NansException" in v["error"] and v["prompt"] == "a cat" for v in failed.values()
    )
    assert f"{TOTAL // 2} failed" in proc.stdout
    flaky.fail_prompt = None  # the WebUI is fixed: the same command makes only the failed cells
    again = sweep(tmp_path, [flaky])
    assert again.returncode == 0 and summary(run)["generated"] == TOTAL // 2
    assert {line["status"] for line in cells(run)} == {"done"}


def test_every_webui_gone_stops_with_what_is_left_and_the_same_command_finishes(tmp_path, fakes):
    dying = fakes(die_after=5)
    proc = sweep(tmp_path, [dying], "--max-attempts", "3")
    assert proc.returncode == 2
    assert f"{TOTAL - 5} images not made: no WebUI left" in proc.stderr and "run the same command again" in proc.stderr
    assert "unreachable" in proc.stdout  # the summary names why the WebUI is gone
    run = tmp_path / "runs" / "fake"
    assert [line["status"] for line in cells(run)] == ["done"] * 5  # nothing recorded as failed
    fresh = fakes()
    again = sweep(tmp_path, [fresh])
    assert again.returncode == 0, again.stdout + again.stderr
    assert summary(run)["done_before"] == 5 and summary(run)["generated"] == TOTAL - 5
    assert len(cells(run)) == TOTAL


def test_a_chunk_that_keeps_coming_back_is_given_up_with_its_reasons(tmp_path, fakes):
    dying, steady = fakes(die_after=1), fakes()
    proc = sweep(tmp_path, [dying, steady], "--max-attempts", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = summary(tmp_path / "runs" / "fake")
    assert len(report["given_up"]) == 1 and report["given_up"][0]["cells"] == 3  # 4 in the chunk, 1 made
    assert "given up after 1 attempts" in report["given_up"][0]["why"] and "unreachable" in report["given_up"][0]["why"]
    lines = cells(tmp_path / "runs" / "fake")
    assert len(lines) == TOTAL
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(failed) == 3 and all(line["error"].startswith("given up after 1 attempts") for line in failed)
    assert "given up: 3 cells" in proc.stdout


def test_score_flag_scores_the_run_with_the_encoder_pool(tmp_path, fakes):
    fake = fakes()
    metrics = "style_loss_base,psnr_base,ssim_base,vendi,text_alignment"
    small = ["--random-weights", "--clip-model", "ViT-S-32", "--dinov2-arch", "vits14", "--metrics", metrics]
    proc = sweep(tmp_path, [fake], "--score", *small, "--cache-dir", str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "fake"
    document = json.loads((run / "scores.json").read_text())
    assert document["run"]["n_images"] == TOTAL and (run / "scores.csv").is_file()
    assert set(document["run"]["encoded"].values()) == {0}  # every image feature came from the pool
    assert f"wrote {run / 'scores.json'}" in proc.stdout


def test_a_dead_worker_actor_loses_nothing(tmp_path, fakes):
    """The actor process itself dies (not its WebUI): what it wrote is kept, the rest is made by the other."""
    slow = {"seeds": list(range(1, 9)), "run_id": "fake"}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, **slow}))
    first, second = fakes(delay=0.15), fakes(delay=0.15)
    cmd = [sys.executable, "-m", "lycoris_eval", "sweep", str(spec), "--webui", first.url, "--webui", second.url]
    cmd += ["--out", str(tmp_path / "runs"), "--num-cpus", "2", "--quiet", "--chunk-size", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sweep_env(), cwd=ROOT)
    shard = tmp_path / "runs" / "fake" / "sweep" / f"cells-{first.url.removeprefix('http://').replace(':', '_')}.jsonl"
    deadline = time.monotonic() + 120
    while not (shard.is_file() and len(shard.read_text().splitlines()) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(json.loads(shard.read_text().splitlines()[0])["pid"], signal.SIGKILL)  # the actor's own process
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, out + err
    run = tmp_path / "runs" / "fake"
    total = len(GridSpec.from_dict({**SPEC, **slow}).plan())
    lines = cells(run)
    assert len(lines) == total == len({line["key"] for line in lines}) and {line["status"] for line in lines} == {
        "done"
    }
    report = summary(run)
    gone = report["workers"][first.url]
    assert gone["state"] == "gone" and "worker for" in gone["error"] and report["left"] == 0
