"""A grid survives what users do to it: kill -9 of the WebUI, and Interrupt mid-sampling.
Nothing finished is lost or duplicated; the interrupted image is made again, not kept."""

from __future__ import annotations

import hashlib
import time
import uuid

from .host import Host, run_records, wait_job


def grid(build) -> dict:
    return {
        "checkpoints": list(build.checkpoints),
        "adapters": [build.adapter("lora")],
        "weights": [0.5, 1.0],
        "prompts": ["a lighthouse"],
        "seeds": [7, 8],
    }


TOTAL = 2 * 2 * (1 + 2)  # checkpoints × seeds × (baseline + weights)


def _digests(host: Host, run_id: str) -> dict[str, str]:
    images = host.root / "outputs" / "lycoris-eval" / run_id / "images"
    return {
        r["key"]: hashlib.sha256((images / r["image"]).read_bytes()).hexdigest()
        for r in run_records(host.root, run_id)
        if r["status"] == "done"
    }


def _done_on_disk(host: Host, run_id: str) -> int:
    """Finished lines in the run's cells.jsonl now (a line being written is not counted)."""
    path = host.root / "outputs" / "lycoris-eval" / run_id / "cells.jsonl"
    text = path.read_text() if path.is_file() else ""
    return sum('"status": "done"' in line for line in text.splitlines(keepends=True) if line.endswith("\n"))


def test_kill_9_mid_grid_then_resume_with_the_run_id_given_at_submission(build):
    base = {"steps": 30, "width": 64, "height": 64}
    spec = grid(build)
    first = Host(build, ui=False).start()
    try:
        with first.client() as client:
            answer = client.post("/lycoris-eval/v1/grid", json={**spec, "base": base}).json()
            run_id = answer["run_id"]  # known before any image exists
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                status = client.get(f"/lycoris-eval/v1/jobs/{answer['job_id']}").json()
                assert status["run_id"] == run_id
                # finished on disk, not only handed to the background writer (images_done):
                # a kill between the two would lose an in-flight image and the count below
                if status["images_done"] >= 4 and _done_on_disk(first, run_id) >= 4:
                    break
                time.sleep(0.1)
            first.kill9()
    finally:
        first.stop()
    records = run_records(first.root, run_id)
    done_before = _digests(first, run_id)
    assert 4 <= len(done_before) < TOTAL, f"killed mid-grid: {len(done_before)} done"
    second = Host(build, ui=False).start()
    try:
        with second.client() as client:
            answer = client.post("/lycoris-eval/v1/grid", json={**spec, "base": base, "run_id": run_id}).json()
            status = wait_job(client, answer["job_id"], timeout=400)
            assert status["state"] == "done", status
            assert status["result"]["generated"] == TOTAL - len(done_before)
    finally:
        second.stop()
    records = run_records(second.root, run_id)
    done_lines = [r["key"] for r in records if r["status"] == "done"]
    assert len(done_lines) == len(set(done_lines)) == TOTAL, "each image finished exactly once"
    after = _digests(second, run_id)
    assert all(after[key] == digest for key, digest in done_before.items()), "finished images kept as they were"


def _slow_grid_at_its_second_image(api, host, name: str, weights: list[float]) -> tuple[dict, str]:
    """A grid of 150-step images (one checkpoint, one seed: the baseline, then one image per
    weight), started and caught while its second image samples; the spec (with its base) to
    resume with, and the job id."""
    run_id = f"{name}-{uuid.uuid4().hex[:6]}"
    spec = {**grid(host.build), "weights": weights, "seeds": [5], "run_id": run_id}
    spec["checkpoints"] = spec["checkpoints"][:1]
    spec["base"] = {"steps": 150, "width": 64, "height": 64}
    answer = api.post("/lycoris-eval/v1/grid", json=spec).json()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if api.get(f"/lycoris-eval/v1/jobs/{answer['job_id']}").json()["images_done"] >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.8)  # the second image is sampling now
    return spec, answer["job_id"]


def test_interrupt_mid_sampling_then_resume_regenerates_the_image(api, host):
    spec, job_id = _slow_grid_at_its_second_image(api, host, "interrupt", [1.0])  # 2 images
    run_id = spec["run_id"]
    interrupted_at = time.time()
    assert api.post("/sdapi/v1/interrupt").status_code == 200
    status = wait_job(api, job_id, timeout=300)
    assert status["result"]["interrupted"] is True, status
    kept = [r for r in run_records(host.root, run_id) if r["status"] == "done"]
    assert len(kept) == status["result"]["generated"] < 2
    assert all(r["time"] < interrupted_at for r in kept), "the half-denoised image was not recorded"
    answer = api.post("/lycoris-eval/v1/grid", json=spec).json()
    status = wait_job(api, answer["job_id"], timeout=300)
    assert status["state"] == "done" and status["result"]["generated"] == 2 - len(kept), status
    done = [r["key"] for r in run_records(host.root, run_id) if r["status"] == "done"]
    assert len(done) == len(set(done)) == 2


def test_skip_mid_sampling_records_that_image_as_skipped_and_goes_on(api, host):
    """Skip (the page's button, ``/sdapi/v1/skip``) ends the image being sampled: it is not
    kept, its line says "skipped", the grid goes on, and a resume makes it."""
    spec, job_id = _slow_grid_at_its_second_image(api, host, "skip", [0.5, 1.0])  # 3 images
    run_id = spec["run_id"]
    assert api.post("/sdapi/v1/skip").status_code == 200
    status = wait_job(api, job_id, timeout=400)
    assert status["state"] == "done" and status["result"]["interrupted"] is False, status
    records = run_records(host.root, run_id)
    skipped = [r["key"] for r in records if r["status"] == "skipped"]
    done = [r["key"] for r in records if r["status"] == "done"]
    assert len(skipped) == 1 and skipped[0] not in done and len(done) == 2, records
    answer = api.post("/lycoris-eval/v1/grid", json=spec).json()  # the same grid: resume
    status = wait_job(api, answer["job_id"], timeout=300)
    assert status["result"]["generated"] == 1, status
