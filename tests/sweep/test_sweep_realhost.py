"""The sweep against real WebUI v1.10.1 instances on loopback: every cell once, a WebUI
killed mid-sweep, the driver killed mid-sweep, and scores equal to a single-machine
evaluation of the same images."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from lycoris_eval.grid.spec import GridSpec
from tests.helpers import SMALL, make_set

from ..realhost.host import Build, Host, free_port
from .conftest import (
    cells,
    run_sweep,
    shard_lines,
    start_sweep,
    start_webui,
    summary,
    url_of,
    wait_lines,
    wait_quiet,
    write_spec,
)


def plan_keys(spec_path: Path) -> set[str]:
    spec = GridSpec.from_dict(json.loads(spec_path.read_text()))
    return {job.key for job in spec.plan()}


def assert_every_cell_once(run_dir: Path, spec_path: Path) -> list[dict]:
    lines = cells(run_dir)
    keys = [line["key"] for line in lines]
    assert len(keys) == len(set(keys)), "a cell has two lines in cells.jsonl"
    assert set(keys) == plan_keys(spec_path)
    assert {line["status"] for line in lines} == {"done"}
    images = sorted(p.name for p in (run_dir / "images").iterdir())
    assert images == sorted(line["image"] for line in lines)
    return lines


@pytest.fixture(scope="module")
def complete_run(build: Build, webuis: list[Host], tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("complete")
    spec = write_spec(folder, build, seeds=2, run_id="complete")
    proc = run_sweep(spec, folder / "runs", webuis)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return spec, folder / "runs" / "complete", proc


def test_sweep_makes_every_cell_once_and_resumes_to_nothing(complete_run, webuis):
    spec, run_dir, proc = complete_run
    lines = assert_every_cell_once(run_dir, spec)
    assert len(lines) == 2 * 2 * 2 * (1 + 2 * 2)  # checkpoints × prompts × seeds × (baseline + adapters × weights)
    report = summary(run_dir)
    workers = report["workers"].values()
    assert sum(w["images"] for w in workers) == len(lines) and all(w["images"] > 0 for w in workers)
    assert all(w["loads"] <= 2 for w in workers), "a WebUI loaded a checkpoint more than once"
    assert {line["worker"] for line in lines} == {f"http://127.0.0.1:{h.port}" for h in webuis}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [w["extension"] is not None for w in manifest["host"]["webuis"]] == [True, False]  # ours on the first
    assert {a["info"]["type"] for a in manifest["host"]["adapters"]} == {"LoRA", "LoHa"}
    infotext = lines[0]["infotext"]
    assert f"LyCORIS cell: {json.dumps(lines[0]['key'])}" in infotext or f"LyCORIS cell: {lines[0]['key']}" in infotext
    assert "images per WebUI" not in proc.stdout and "loads" in proc.stdout  # the summary table
    again = run_sweep(spec, run_dir.parent, webuis)
    assert again.returncode == 0, again.stderr
    assert f"{len(lines)} already done, 0 made now" in again.stdout
    assert cells(run_dir) == lines


def test_scores_equal_a_single_machine_evaluation(complete_run, tmp_path):
    import ray

    from lycoris_eval.config import EvalConfig
    from lycoris_eval.scoring.pipeline import evaluate
    from lycoris_eval.sweep.scoring import score_run

    _spec, run_dir, _proc = complete_run
    ref = make_set(tmp_path / "ref", 3, 500, size=(80, 64))
    doodle = make_set(tmp_path / "doodle", 3, 900, scale=0.3)
    base = dict(random_weights=True, allow_download=False, device="cpu", reference_dir=ref, distractor_dirs=(doodle,))
    single = evaluate(run_dir / "images", EvalConfig(use_cache=False, **base, **SMALL))
    ray.init(num_cpus=2, log_to_driver=False)
    try:
        swept = score_run(run_dir, EvalConfig(cache_dir=tmp_path / "cache", **base, **SMALL)).document
    finally:
        ray.shutdown()
    assert set(swept["run"]["encoded"].values()) == {0}, "the driver encoded images itself"
    for section in ("cells", "summaries", "trust", "adapters", "metrics"):
        assert swept[section] == single[section], section
    assert swept["run"]["n_images"] == single["run"]["n_images"] == 40


def test_a_webui_killed_mid_sweep_leaves_its_work_to_the_others(build, webuis, tmp_path):
    spec = write_spec(tmp_path, build, seeds=3, run_id="dead-webui")
    doomed = start_webui(build, tmp_path / "c")
    try:
        run_dir = tmp_path / "runs" / "dead-webui"
        proc = start_sweep(spec, tmp_path / "runs", [webuis[0], doomed], tmp_path / "sweep.log")
        doomed_shard = run_dir / "sweep" / f"cells-127.0.0.1_{doomed.port}.jsonl"
        wait_lines(run_dir, 1, proc)
        while not doomed_shard.is_file() or len(doomed_shard.read_text().splitlines()) < 3:
            assert proc.poll() is None, (tmp_path / "sweep.log").read_text()
            time.sleep(0.05)
        doomed.kill9()
        assert proc.wait(300) == 0, (tmp_path / "sweep.log").read_text()
    finally:
        doomed.stop()
    lines = assert_every_cell_once(run_dir, spec)
    assert len(lines) == 60
    assert shard_lines(run_dir) == 60, "a cell was made twice"
    report = summary(run_dir)
    gone = report["workers"][f"http://127.0.0.1:{doomed.port}"]
    assert gone["state"] == "gone" and "unreachable" in gone["error"]
    assert report["retries"] >= 1 and report["failed"] == {} and report["left"] == 0
    assert report["workers"][f"http://127.0.0.1:{webuis[0].port}"]["images"] == 60 - gone["images"]
    assert "its unfinished cells go to the other WebUIs" in (tmp_path / "sweep.log").read_text()


def test_a_killed_driver_is_resumed_by_the_same_command(build, webuis, tmp_path):
    spec = write_spec(tmp_path, build, seeds=3, run_id="killed-driver")
    run_dir = tmp_path / "runs" / "killed-driver"
    proc = start_sweep(spec, tmp_path / "runs", webuis, tmp_path / "sweep.log")
    wait_lines(run_dir, 8, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait(30)
    made = wait_quiet(run_dir)  # actors already in a request finish their image, then exit
    assert 8 <= made < 60
    again = run_sweep(spec, tmp_path / "runs", webuis)
    assert again.returncode == 0, again.stdout + again.stderr
    report = summary(run_dir)
    assert report["done_before"] == made and report["generated"] == 60 - made
    assert_every_cell_once(run_dir, spec)


def test_bad_webuis_are_refused_before_any_image(build, webuis, tmp_path):
    spec = write_spec(tmp_path, build, seeds=1, run_id="refused", checkpoints=["tiny-sd1-c"])
    proc = run_sweep(spec, tmp_path / "runs", webuis[:1], timeout=60)
    assert proc.returncode == 2
    assert "unknown checkpoint 'tiny-sd1-c'; did you mean" in proc.stderr and str(webuis[0].port) in proc.stderr
    assert not (tmp_path / "runs" / "refused").exists()
    spec = write_spec(tmp_path, build, seeds=1, run_id="refused")
    nobody = Host.__new__(Host)
    nobody.port = free_port()
    proc = run_sweep(spec, tmp_path / "runs", [webuis[0], nobody], timeout=60)
    assert proc.returncode == 2 and f"WebUI http://127.0.0.1:{nobody.port} is unreachable" in proc.stderr
    no_auth = url_of(webuis[0]).replace("tester:s3cret@", "")
    proc = run_sweep(spec, tmp_path / "runs", [], "--webui", no_auth, timeout=60)
    assert proc.returncode == 2 and "refused the credentials (HTTP 401)" in proc.stderr
    assert not (tmp_path / "runs" / "refused").exists()


@pytest.fixture(scope="module")
def reforge(tmp_path_factory: pytest.TempPathFactory):
    """One real reForge (API only, without our extension: the sweep needs only its API)."""
    from ..realhost.host import FLAVOURS

    flavour = FLAVOURS["reforge"]
    if not flavour.built():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the sweep on reForge too: {flavour.setup_hint}")
        pytest.skip(flavour.setup_hint)
    build = Build(flavour, flavour.dest())
    host = start_webui(build, tmp_path_factory.mktemp("reforge") / "data")
    try:
        yield build, host
    finally:
        host.stop()


def test_sweep_on_reforge_makes_every_cell_with_its_adapter(reforge, tmp_path):
    """reForge through its own API: every cell made once, each adapter image with the
    adapter applied (named in the infotext's Lora hashes, and not its baseline's pixels)."""
    from PIL import Image

    build, host = reforge
    adapter = build.adapter("lora")
    spec = write_spec(tmp_path, build, seeds=2, run_id="reforge", adapters=[adapter], weights=[1.0], prompts=["a cat"])
    proc = run_sweep(spec, tmp_path / "runs", [host])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / "reforge"
    lines = assert_every_cell_once(run_dir, spec)
    assert len(lines) == 2 * 2 * 2  # checkpoints × seeds × (baseline + adapter)

    def pixels(line: dict) -> bytes:
        with Image.open(run_dir / "images" / line["image"]) as im:
            return im.convert("RGB").tobytes()

    by_key = {line["key"]: line for line in lines}
    for line in lines:
        if line["adapter"]:
            assert f"{adapter}: " in line["infotext"].split("Lora hashes:", 1)[-1], line["infotext"]
            baseline = by_key[f"{line['checkpoint']}|-|0|p0|{line['seed']}"]
            assert pixels(line) != pixels(baseline), "the adapter image equals its baseline"
