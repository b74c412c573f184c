"""Training runs over HTTP (issue #24): ``GET /adapters`` says each adapter's run,
``GET /training-runs`` lists the runs, and ``POST /grid`` takes ``training_run`` (a 422
naming the field, before any job, for an unknown run or epoch)."""

from __future__ import annotations

from tests.api import test_api
from tests.api.test_api import PREFIX, wait
from tests.grid.test_training_run_grid import add_runs

api = test_api.api  # the fixture: the fake WebUI with the API mounted

BODY = {"checkpoints": ["base-a"], "weights": [1.0], "prompts": ["[style] a tree"], "seeds": [1]}


def test_adapters_say_their_training_run_and_the_runs_are_listed(api):
    add_runs(api)
    adapters = {a["name"]: a for a in api.client.get(f"{PREFIX}/adapters").json()}
    assert adapters["mystyle-000004"]["training_run"] == {
        "name": "mystyle",
        "epoch": 4,
        "step": 100,
        "final": False,
        "source": "metadata",
    }
    assert adapters["mystyle"]["training_run"]["final"] is True
    assert adapters["ink_e2"]["training_run"] == {
        "name": "ink",
        "epoch": 2,
        "step": None,
        "final": False,
        "source": "file name",
    }
    assert adapters["style_lora"]["training_run"] is None
    runs = api.client.get(f"{PREFIX}/training-runs").json()
    assert [r["name"] for r in runs] == ["ink", "mystyle"]
    assert [m["adapter"] for m in runs[1]["members"]] == [
        "mystyle-000002",
        "mystyle-000004",
        "mystyle-000006",
        "mystyle",
    ]
    assert runs[1]["grouped_by"] == "session id"


def test_a_training_run_grid_over_http(api):
    add_runs(api)
    body = {**BODY, "run_id": "http-tr", "training_run": {"name": "mystyle", "epochs": [2, 8]}}
    response = api.client.post(f"{PREFIX}/grid", json=body)
    assert response.status_code == 202, response.text
    status = wait(api.client, response.json()["job_id"])
    assert status["state"] == "done" and status["result"]["generated"] == 3
    manifest = api.client.get(f"{PREFIX}/runs/http-tr").json()["manifest"]
    assert manifest["spec"]["adapters"] == ["mystyle-000002", "mystyle"]
    assert [m["epoch"] for m in manifest["training_runs"][0]["members"]] == [2, 8]


def test_a_bad_training_run_is_a_422_naming_the_field_before_any_job(api):
    add_runs(api)
    cases = [
        (
            {"name": "nope"},
            "training_run.name",
            "unknown training run 'nope' (known: ink (2 saves), mystyle (4 saves))",
        ),
        ({"name": "mystyle", "epochs": [3]}, "training_run.epochs", "mystyle has no epoch 3 (it has 2, 4, 6, 8)"),
        ({"name": "mystyle", "every": 0}, "training_run.every", "must be an integer 1..1000"),
    ]
    for request, field, message in cases:
        response = api.client.post(f"{PREFIX}/grid", json={**BODY, "training_run": request})
        assert response.status_code == 422, response.text
        assert field in response.text and message in response.text
    assert api.processing.CALLS == [] and api.client.get(f"{PREFIX}/runs").json() == []
