"""The sweep command where Ray is not (the main environment, the WebUI's pins): its input is
checked, then one line says how to get the sweep's own environment. The sweep itself is
tested in that environment (tests/sweep)."""

from __future__ import annotations

import json

import pytest

from lycoris_eval.cli import main as cli
from lycoris_eval.sweep import cli as sweep_cli


@pytest.fixture
def no_ray(monkeypatch):
    real = sweep_cli.importlib.util.find_spec
    monkeypatch.setattr(sweep_cli.importlib.util, "find_spec", lambda name: None if name == "ray" else real(name))


def test_sweep_without_ray_says_how_to_get_it(tmp_path, no_ray, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"adapters": ["a"], "prompts": ["a cat"], "seeds": [1]}))
    assert cli.main(["sweep", str(spec), "--webui", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "tools/setup.sh --sweep" in err and "[sweep]" in err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"adapters": ["a"], "prompts": ["a cat"], "weights": [9]}), "weights: 9 is outside"),
        (json.dumps({"adapters": ["a"], "prompts": ["a"], "base": {"batch_size": 2}}), "base.batch_size: a sweep"),
    ],
)
def test_bad_spec_is_named_before_anything_else(tmp_path, no_ray, capsys, body, message):
    spec = tmp_path / "spec.json"
    spec.write_text(body)
    assert cli.main(["sweep", str(spec), "--webui", "http://127.0.0.1:9"]) == 2
    assert message in capsys.readouterr().err


def test_missing_spec_and_bad_numbers(tmp_path, capsys):
    assert cli.main(["sweep", str(tmp_path / "none.json"), "--webui", "http://x"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["sweep", str(tmp_path), "--webui", "http://x", "--chunk-size", "0"]) == 2
    assert "--chunk-size 0" in capsys.readouterr().err
