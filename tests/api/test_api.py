"""The HTTP API mounted through the fake WebUI's on_app_started, tested with TestClient."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import make_grid, make_set, pattern, small_scoring_settings

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "openapi-lycoris-eval.json"
PREFIX = "/lycoris-eval/v1"


@pytest.fixture
def api(fake_webui, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    ns = fake_webui
    ns.shared.cmd_opts.api = True
    small_scoring_settings(ns.shared.opts)
    ns.script_callbacks.clear_callbacks()
    ns.adapter.setup()
    app = FastAPI()
    from modules.api.api import Api  # the host creates its API before app_started callbacks

    Api(app)
    ns.script_callbacks.app_started_callback(None, app)
    ns.app = app
    ns.client = TestClient(app)
    ns.refs = make_set(ns.data / "outputs" / "refs", 3, 40)
    yield ns


def wait(client, job_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get(f"{PREFIX}/jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def grid_body(**kw):
    body = {
        "checkpoints": ["base-a"],
        "adapters": ["style_lora"],
        "weights": [1.0],
        "prompts": ["[style] a tree"],
        "seeds": [1, 2],
        "run_name": "api",
        "base": {"steps": 3, "negative_prompt": "lowres"},
    }
    body.update(kw)
    return body


def b64_png(seed=1, infotext=None):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    buf = io.BytesIO()
    pattern(seed).save(buf, "PNG", pnginfo=info)
    return base64.b64encode(buf.getvalue()).decode()


def test_info_routes(api):
    c = api.client
    assert c.get(f"{PREFIX}/version").json()["webui"] == "v1.10.1"
    adapters = {a["name"]: a for a in c.get(f"{PREFIX}/adapters").json()}
    assert adapters["style_loha"]["type"] == "LoHa" and adapters["style_lora"]["trained_on"] == "base-a.safetensors"
    encoders = {e["name"]: e for e in c.get(f"{PREFIX}/encoders").json()}
    assert set(encoders) >= {"vgg19-gram", "openclip", "dinov2"}
    assert encoders["dinov2"]["present"] is True and encoders["dinov2"]["loaded"] is False
    assert encoders["dinov2"]["kept"] is False and encoders["dinov2"]["memory_mib"] is None
    api.shared.opts.lycoris_eval_random_weights = False
    encoders = {e["name"]: e for e in c.get(f"{PREFIX}/encoders").json()}
    assert encoders["vgg19-gram"]["present"] is False and "vgg19-dcbb9e9d.pth" in encoders["vgg19-gram"]["message"]


def test_grid_job_then_evaluate_and_reports(api):
    c = api.client
    response = c.post(f"{PREFIX}/grid", json=grid_body(run_id="api1"))
    assert response.status_code == 202
    status = wait(c, response.json()["job_id"])
    assert status["state"] == "done" and status["run_id"] == "api1" and status["images_done"] == 4
    assert status["images_total"] == 4 and status["result"]["generated"] == 4
    assert api.processing.CALLS[0][1] == "a tree"  # base prompt prefix empty over the API
    runs = c.get(f"{PREFIX}/runs").json()
    assert runs[0]["run_id"] == "api1" and runs[0]["done_images"] == 4
    detail = c.get(f"{PREFIX}/runs/api1").json()
    assert detail["manifest"]["spec"]["base"]["steps"] == 3 and detail["scores"] is None
    assert c.get(f"{PREFIX}/runs/api1/scores.csv").status_code == 404
    scores = c.post(f"{PREFIX}/evaluate", json={"run_id": "api1", "metrics": ["style_loss_base", "vendi"]})
    assert scores.status_code == 200, scores.text
    doc = scores.json()
    assert doc["schema"] == "lycoris-eval/scores" and doc["run"]["random_weights"] is True
    assert [c_["adapter"] for c_ in doc["cells"]] == [None, "style_lora"]
    csv_text = c.get(f"{PREFIX}/runs/api1/scores.csv").text
    assert csv_text.startswith("checkpoint,adapter,weight") and "style_lora" in csv_text
    report = c.get(f"{PREFIX}/runs/api1/report").json()
    assert report["summary"][1]["adapter_type"] == "LoRA"
    assert report["heatmaps"]["style_loss_base"]["rows"] == ["style_lora"]
    # the home the verdicts found for the metadata's "base-a.safetensors": the column it outlines
    assert report["heatmaps"]["style_loss_base"]["trained_on"] == {"style_lora": "base-a"}
    # no training run in this grid: the epochs view says how to get one, in the API's words
    epochs = c.get(f"{PREFIX}/runs/api1/epochs").json()
    assert epochs["training_runs"]["runs"] == [] and epochs["answer"] == []
    assert "no training run" in epochs["note"] and "training_runs" in epochs["note"]


def test_epochs_route_with_a_users_grouping(api):
    c = api.client
    body = grid_body(run_id="ep", adapters=["style_lora", "style_loha"], seeds=[1, 2, 3])
    assert wait(c, c.post(f"{PREFIX}/grid", json=body).json()["job_id"])["state"] == "done"
    bad = c.post(f"{PREFIX}/evaluate", json={"run_id": "ep", "training_runs": {"solo": ["style_lora"]}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "training_runs"
    grouped = {"pair": ["style_lora", "style_loha"]}
    scores = c.post(
        f"{PREFIX}/evaluate", json={"run_id": "ep", "metrics": ["style_loss_base"], "training_runs": grouped}
    )
    assert scores.status_code == 200, scores.text
    assert scores.json()["run"]["training_runs_grouped"] == grouped
    view = c.get(f"{PREFIX}/runs/ep/epochs").json()
    [run] = view["training_runs"]["runs"]
    assert run["name"] == "pair" and run["grouped_by"] == "user" and view["note"] is None
    assert [m["adapter"] for m in run["in_grid"]] == ["style_lora", "style_loha"]
    assert view["answer"][0]["sentences"][1].startswith("Training run pair (2 saves")
    missing = c.get(f"{PREFIX}/runs/ep/epochs", params={"name": "nope"})
    assert missing.status_code == 404 and "pair" in missing.text


def test_compare_route_reads_the_comparisons(api):
    c = api.client
    body = grid_body(run_id="cmp", checkpoints=["base-a", "mix-b"], weights=[0.5, 1.0], seeds=[1, 2, 3])
    assert wait(c, c.post(f"{PREFIX}/grid", json=body).json()["job_id"])["state"] == "done"
    scores = c.post(
        f"{PREFIX}/evaluate",
        json={"run_id": "cmp", "metrics": ["text_alignment", "vendi"], "trained_on": ["style_lora=mix-b"]},
    )
    assert scores.status_code == 200, scores.text
    doc = scores.json()
    assert doc["schema_version"] == 3 and doc["verdicts"]["home"] == {"style_lora": "mix-b"}
    assert doc["verdicts"]["home_source"] == {"style_lora": "marked"}  # wins over the metadata's base-a
    ab = c.get(f"{PREFIX}/runs/cmp/compare", params={"a": "base-a", "b": "mix-b"}).json()
    ba = c.get(f"{PREFIX}/runs/cmp/compare", params={"a": "mix-b", "b": "base-a", "metric": "text_alignment"}).json()
    assert ab["kind"] == "checkpoint" and ab["method"]["resamples"] > 0
    # no adapter, style_lora @0.5 and @1: three contexts × two metrics
    assert len(ab["entries"]) == 6 and len(ba["entries"]) == 3
    forward = {(e["a"]["weight"], e["metric"]): e for e in ab["entries"]}
    for e in ba["entries"]:
        assert e["a"]["checkpoint"] == "mix-b" and e["diff"] == -forward[(e["a"]["weight"], "text_alignment")]["diff"]
    weights = c.get(f"{PREFIX}/runs/cmp/compare", params={"a": "1", "b": "0.5", "checkpoint": "base-a"}).json()
    assert weights["kind"] == "weight" and {e["a"]["checkpoint"] for e in weights["entries"]} == {"base-a"}
    bad = c.get(f"{PREFIX}/runs/cmp/compare", params={"a": "base-z", "b": "mix-b"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "a"]
    assert bad.json()["detail"][0]["msg"].startswith("a: 'base-z' is not in this run; choose one of: checkpoint:base-a")
    csv_text = (api.data / "outputs" / "lycoris-eval" / "cmp" / "comparisons.csv").read_text()
    assert csv_text.startswith("kind,a_checkpoint") and csv_text.count("\n") == 1 + len(doc["comparisons"]["entries"])


def test_grid_with_score_writes_scores(api):
    c = api.client
    job = c.post(f"{PREFIX}/grid", json=grid_body(run_id="api2", score=True, references=["outputs/refs"])).json()
    status = wait(c, job["job_id"])
    assert status["state"] == "done" and status["phase"] == "done" and status["images_done"] == 4
    # the scoring step kept its own counters (images_done stays the generated images)
    assert status["scoring"]["total"] > 0 and status["scoring"]["done"] == status["scoring"]["total"]
    scores = c.get(f"{PREFIX}/runs/api2").json()["scores"]
    assert scores["run"]["reference_dir"].endswith("refs") and "style_loss_ref" in scores["metrics"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (grid_body(weights="abc"), "weights", "'abc' is not a number"),
        (grid_body(prompts=[]), "prompts", "at least one prompt"),
        (grid_body(base={"stepz": 3}), "base.stepz", "not a txt2img field"),
        (grid_body(confirm_large="maybe"), "confirm_large", "true or false"),
        (grid_body(nonsense=1), "nonsense", "unknown field"),
    ],
)
def test_validation_is_422_naming_the_field(api, body, field, message):
    response = api.client.post(f"{PREFIX}/grid", json=body)
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", field] and message in detail["msg"]


def test_unknown_names_refused_before_a_job_with_close_matches(api):
    response = api.client.post(f"{PREFIX}/grid", json=grid_body(adapters=["style_lorra"]))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "adapters"]
    assert "did you mean style_lora" in response.json()["detail"][0]["msg"]
    response = api.client.post(f"{PREFIX}/grid", json=grid_body(checkpoints=["base-aa"]))
    assert response.status_code == 422 and "base-a" in response.text
    response = api.client.post(f"{PREFIX}/grid", json=grid_body(prompts=["a tree <lora:style_loha:1>"]))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "prompts"]
    assert not api.processing.CALLS


def test_unknown_run_and_job_are_404(api):
    c = api.client
    assert c.get(f"{PREFIX}/jobs/nope").status_code == 404
    assert c.post(f"{PREFIX}/jobs/nope/cancel").status_code == 404
    assert c.get(f"{PREFIX}/runs/nope").status_code == 404
    assert c.get(f"{PREFIX}/runs/..%2F..%2Fetc").status_code == 404
    assert c.post(f"{PREFIX}/evaluate", json={"run_id": "nope"}).status_code == 404


def test_paths_outside_the_roots_are_403(api, tmp_path):
    c = api.client
    outside = make_set(tmp_path / "outside", 2, 1)
    link = api.data / "outputs" / "sneaky"
    os.symlink(outside, link)
    cases = {
        "../../etc": "must not contain '..'",
        "outputs/../../outside": "must not contain '..'",
        str(outside): "outside the allowed roots",
        "outputs/sneaky": "outside the allowed roots",
        "/etc": "outside the allowed roots",
    }
    for path, message in cases.items():
        response = c.post(f"{PREFIX}/evaluate", json={"folder": path})
        assert response.status_code == 403, path
        assert message in response.json()["detail"]
    response = c.post(f"{PREFIX}/grid", json=grid_body(references=[str(outside)]))
    assert response.status_code == 403 and "references" in response.json()["detail"]
    encoded = c.post(f"{PREFIX}/evaluate", json={"folder": "outputs/%2e%2e"})
    assert encoded.status_code == 422 and "not a folder" in encoded.text  # a literal name, inside the root
    extra = tmp_path / "extra"
    make_set(extra, 2, 3)
    api.shared.opts.lycoris_eval_allowed_roots = str(extra)
    ok = c.post(f"{PREFIX}/evaluate", json={"folder": str(extra), "metrics": ["vendi"]})
    assert ok.status_code == 200, ok.text


def test_evaluate_takes_the_comparison_plan(api, tmp_path):
    c = api.client
    grid = tmp_path / "grid"
    make_grid(grid, checkpoints=("ckA", "ckB", "ckC"), adapters=(("styleA", 1.0),), seeds=(1, 2, 3))
    api.shared.opts.lycoris_eval_allowed_roots = str(tmp_path)
    body = {"folder": str(grid), "metrics": ["psnr_base"], "all_pairs_up_to": 2, "compare_to": "ckB"}
    doc = c.post(f"{PREFIX}/evaluate", json=body).json()
    assert doc["comparisons"]["coverage"]["anchors"] == {"(default)": "ckB"}
    pairs = {(e["a"]["checkpoint"], e["b"]["checkpoint"]) for e in doc["comparisons"]["entries"]}
    assert pairs == {("ckA", "ckB"), ("ckB", "ckC")}
    for bad in (1, "3", True):
        response = c.post(f"{PREFIX}/evaluate", json={**body, "all_pairs_up_to": bad})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "all_pairs_up_to"]
    response = c.post(f"{PREFIX}/evaluate", json={**body, "compare_to": ""})
    assert response.status_code == 422 and "compare_to: must be a checkpoint name" in response.text


def test_uploads_limits_and_bad_data(api):
    c = api.client
    assert c.post(f"{PREFIX}/evaluate", json={"images": ["!!notbase64!!"]}).status_code == 422
    text = base64.b64encode(b"hello, not an image").decode()
    response = c.post(f"{PREFIX}/evaluate", json={"images": [{"image": text}]})
    assert response.status_code == 422 and "images[0]: not an image" in response.text
    too_many = c.post(f"{PREFIX}/evaluate", json={"images": [b64_png()] * 65})
    assert too_many.status_code == 413
    huge = c.post(f"{PREFIX}/evaluate", json={"images": ["A" * (28 * 1024 * 1024)]})
    assert huge.status_code == 413
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8200, 8200)).save(buf, "PNG", optimize=True)  # ~100 kB, 67 M pixels
    flat = c.post(f"{PREFIX}/evaluate", json={"images": [base64.b64encode(buf.getvalue()).decode()]})
    assert flat.status_code == 413 and "images[0]: 67240000 pixels, over the limit" in flat.text
    buf = io.BytesIO()
    Image.new("1", (14000, 14000)).save(buf, "PNG", optimize=True)  # 196 M pixels: PIL's bomb error
    bomb = c.post(f"{PREFIX}/evaluate", json={"images": [base64.b64encode(buf.getvalue()).decode()]})
    assert bomb.status_code == 413 and "decompression bomb" in bomb.text
    both = c.post(f"{PREFIX}/evaluate", json={"images": [b64_png()], "folder": "outputs"})
    assert both.status_code == 422 and "exactly one of" in both.text
    good = c.post(
        f"{PREFIX}/evaluate",
        json={
            "images": [
                {"image": b64_png(1), "prompt": "a cat"},
                {"image": "data:image/png;base64," + b64_png(2), "infotext": "a dog\nSteps: 4, Seed: 2, Model: m"},
            ],
            "metrics": ["text_alignment", "vendi"],
        },
    )
    assert good.status_code == 200, good.text
    cells = good.json()["cells"]
    assert sum(c_["metrics"]["text_alignment"]["n"] for c_ in cells) == 2
    leftovers = [p for p in (api.data / "outputs" / "lycoris-eval").glob("upload-*")]
    assert leftovers == []  # temporary upload folders are removed


def test_auth_applies_to_every_route(api):
    c = api.client
    api.shared.cmd_opts.api_auth = "alice:s3cret,bob:pw"
    routes = [
        ("get", "/version"),
        ("get", "/encoders"),
        ("get", "/adapters"),
        ("get", "/training-runs"),
        ("get", "/runs"),
        ("get", "/runs/x"),
        ("get", "/runs/x/scores.csv"),
        ("get", "/runs/x/report"),
        ("get", "/runs/x/compare?a=base-a&b=mix-b"),
        ("get", "/runs/x/epochs"),
        ("get", "/jobs/x"),
        ("post", "/jobs/x/cancel"),
        ("post", "/grid"),
        ("post", "/evaluate"),
    ]
    for method, path in routes:
        response = getattr(c, method)(PREFIX + path, **({"json": {}} if method == "post" else {}))
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Basic"
    assert c.get(f"{PREFIX}/version", auth=("alice", "wrong")).status_code == 401
    assert c.get(f"{PREFIX}/version", auth=("mallory", "s3cret")).status_code == 401
    assert c.get(f"{PREFIX}/version", auth=("alice", "s3cret")).status_code == 200
    assert c.get(f"{PREFIX}/version", auth=("bob", "pw")).status_code == 200
    api.shared.cmd_opts.api_auth = None
    assert c.get(f"{PREFIX}/version").status_code == 200


def test_concurrent_grids_are_serialised_and_both_finish(api):
    c = api.client
    first = c.post(f"{PREFIX}/grid", json=grid_body(run_id="c1", prompts=["one"])).json()["job_id"]
    second = c.post(f"{PREFIX}/grid", json=grid_body(run_id="c2", prompts=["two"])).json()["job_id"]
    assert wait(c, first)["state"] == "done" and wait(c, second)["state"] == "done"
    order = ["one" in call[1] for call in api.processing.CALLS]
    assert order == sorted(order, reverse=True) or order == sorted(order)  # never interleaved
    assert len(order) == 8


def test_ui_generation_holds_the_queue_lock_and_the_grid_waits(api):
    from modules import call_queue

    c = api.client
    with call_queue.queue_lock:  # a UI generation in progress
        job = c.post(f"{PREFIX}/grid", json=grid_body(run_id="w1")).json()["job_id"]
        time.sleep(0.3)
        assert c.get(f"{PREFIX}/jobs/{job}").json()["state"] == "queued"
        assert api.processing.CALLS == []
    assert wait(c, job)["state"] == "done"


def test_cancel_stops_between_images_and_the_run_resumes(api):
    c = api.client
    started = threading.Event()
    release = threading.Event()

    def slow(p):
        started.set()
        release.wait(5)

    api.processing.DURING_SAMPLING.append(slow)
    job = c.post(f"{PREFIX}/grid", json=grid_body(run_id="x1", seeds=[1, 2, 3])).json()["job_id"]
    assert started.wait(10)
    cancelled = c.post(f"{PREFIX}/jobs/{job}/cancel").json()
    assert cancelled["state"] == "running"
    release.set()
    status = wait(c, job)
    assert status["state"] == "cancelled" and status["result"]["interrupted"] is True
    assert api.shared.state.interrupted is True  # the image in flight was interrupted in the host
    api.shared.state.interrupted = False
    api.processing.DURING_SAMPLING.clear()
    again = c.post(f"{PREFIX}/grid", json=grid_body(run_id="x1", seeds=[1, 2, 3])).json()["job_id"]
    assert wait(c, again)["state"] == "done"
    assert c.get(f"{PREFIX}/runs/x1").json()["done"] == 6


def test_client_disconnect_does_not_kill_the_job(api):
    from fastapi.testclient import TestClient

    with TestClient(api.app) as short_lived:
        job = short_lived.post(f"{PREFIX}/grid", json=grid_body(run_id="d1")).json()["job_id"]
    assert wait(api.client, job)["state"] == "done"


def test_routes_only_with_the_api_enabled(fake_webui):
    from fastapi import FastAPI

    ns = fake_webui
    ns.shared.cmd_opts.api = False
    ns.script_callbacks.clear_callbacks()
    ns.adapter.setup()
    app = FastAPI()
    from modules.api.api import Api  # the host creates its API before app_started callbacks

    Api(app)
    ns.script_callbacks.app_started_callback(None, app)
    assert not [r for r in app.routes if getattr(r, "path", "").startswith(PREFIX)]
    ns.shared.cmd_opts.nowebui = True
    ns.script_callbacks.app_started_callback(None, app)
    ns.script_callbacks.app_started_callback(None, app)  # twice: replaced, not duplicated
    paths = [r.path for r in app.routes if getattr(r, "path", "").startswith(PREFIX)]
    assert len(paths) == len(set(paths)) == 14


def test_grid_schema_lists_exactly_the_spec_fields():
    from lycoris_eval.grid.spec import GRID_JSON_SCHEMA, GridSpec

    assert set(GRID_JSON_SCHEMA["properties"]) == (
        set(GridSpec.__dataclass_fields__) - {"seeds_drawn", "training_runs"}
    ) | {"confirm_large"}


def test_openapi_schema_snapshot(api):
    schema = api.client.get("/openapi.json").json()
    ours = {path: spec for path, spec in schema["paths"].items() if path.startswith(PREFIX)}
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(ours, indent=1, sort_keys=True) + "\n")
    assert ours == json.loads(SNAPSHOT.read_text()), "API changed: review, then UPDATE_SNAPSHOTS=1"


def test_headless_sweep_example_against_a_live_server(api, monkeypatch, capsys):
    """examples/headless_sweep.py over real HTTP on 127.0.0.1 (uvicorn, the fake host behind it)."""
    import runpy
    import sys

    import uvicorn

    config = uvicorn.Config(api.app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    api.shared.cmd_opts.api_auth = "me:pw"
    try:
        monkeypatch.setattr(
            sys,
            "argv",
            [
                "headless_sweep.py",
                "--url",
                f"http://127.0.0.1:{port}",
                "--auth",
                "me:pw",
                "--checkpoint",
                "base-a",
                "--adapter",
                "style_loha",
                "--weights",
                "1",
                "--prompt",
                "[style] a hill",
                "--seeds",
                "2",
                "--first-seed",
                "5",
                "--reference",
                "outputs/refs",
                "--run-id",
                "hs1",
            ],
        )
        runpy.run_path(str(Path(__file__).parents[2] / "examples" / "headless_sweep.py"), run_name="__main__")
    finally:
        server.should_exit = True
        thread.join(10)
    out = capsys.readouterr().out
    assert "base-a | style_loha | LoHa | 1.0 |" in out and "run hs1:" in out


def test_a_jobs_phase_says_what_it_is_doing():
    from lycoris_eval.api.jobs import Job

    grid = Job("j1", "grid", state="running")
    grid.progress(3, 8, "ckA | style_lora @1 | p0 | seed 2")
    assert grid.as_dict()["phase"] == "generating" and grid.as_dict()["scoring"] is None
    grid.scoring_progress(40, 120, "encoding images 40/120 (dinov2)")
    shown = grid.as_dict()
    assert shown["phase"] == "scoring" and shown["images_done"] == 3  # generated images unchanged
    assert shown["scoring"] == {"done": 40, "total": 120, "current": "encoding images 40/120 (dinov2)"}
    assert shown["current"] == "scoring: encoding images 40/120 (dinov2)"
    evaluation = Job("j2", "evaluate", state="running")
    evaluation.progress(5, 10, "comparisons (paired bootstrap intervals)")
    assert evaluation.as_dict()["phase"] == "scoring" and evaluation.as_dict()["scoring"]["total"] == 10
    evaluation.state = "done"
    assert evaluation.as_dict()["phase"] == "done"
