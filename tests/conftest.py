"""Shared fixtures."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.helpers import make_grid, make_set

# tests/sweep run in the sweep environment (.venv-sweep, with Ray: `pytest tests/sweep`); the
# main environment has the WebUI's pins, where Ray cannot be installed, so it does not collect them.
collect_ignore = [] if importlib.util.find_spec("ray") else ["sweep"]

# The feature cache of every scoring in the suite, the real hosts' included (they inherit the
# environment), lives in the checkout, not in the user's ~/.cache (it grew to 2.7 GB there).
os.environ.setdefault("LYCORIS_EVAL_CACHE", str(Path(__file__).parent.parent / "test-artifacts" / "feature-cache"))


@pytest.fixture
def grid_dir(tmp_path: Path) -> Path:
    make_grid(tmp_path / "grid")
    return tmp_path / "grid"


@pytest.fixture
def reference_dir(tmp_path: Path) -> Path:
    return make_set(tmp_path / "ref", 3, 500, size=(80, 64))


@pytest.fixture
def distractor_dir(tmp_path: Path) -> Path:
    return make_set(tmp_path / "doodle", 3, 900, scale=0.3)


FAKE_WEBUI = Path(__file__).parent / "fake_webui"
_HOST_MODULES = ("modules", "networks", "xyz_grid.py")


def _drop_host_modules():
    import sys

    for name in list(sys.modules):
        if name in _HOST_MODULES or name.startswith(("modules.", "lycoris_eval.webui")):
            del sys.modules[name]


@pytest.fixture
def fake_webui(monkeypatch, tmp_path):
    """The fake WebUI (tests/fake_webui) installed into sys.modules, with 2 checkpoints and
    3 adapters (LoRA, LoHa, LoKr) on disk; yields a namespace of its modules."""
    import importlib
    import importlib.util
    import sys
    import types

    from tests.helpers import write_adapter

    _drop_host_modules()
    data = tmp_path / "webui"
    (data / "models" / "Lora").mkdir(parents=True)
    monkeypatch.setenv("FAKE_WEBUI_DATA", str(data))
    monkeypatch.syspath_prepend(str(FAKE_WEBUI))
    ns = types.SimpleNamespace(data=data)
    for name in ("shared", "sd_models", "processing", "scripts", "script_callbacks", "paths", "devices", "call_queue"):
        setattr(ns, name, importlib.import_module(f"modules.{name}"))
    ns.networks = importlib.import_module("networks")
    spec = importlib.util.spec_from_file_location("xyz_grid.py", FAKE_WEBUI / "xyz_grid.py")
    ns.xyz = importlib.util.module_from_spec(spec)
    sys.modules["xyz_grid.py"] = ns.xyz
    spec.loader.exec_module(ns.xyz)
    ns.scripts.scripts_data.append(
        ns.scripts.ScriptClassData(ns.xyz.Script, str(FAKE_WEBUI / "xyz_grid.py"), str(FAKE_WEBUI), ns.xyz)
    )
    ns.ckpt_a = ns.sd_models.add_checkpoint(str(data / "models" / "Stable-diffusion" / "base-a.safetensors"), "a" * 64)
    ns.ckpt_b = ns.sd_models.add_checkpoint(str(data / "models" / "Stable-diffusion" / "mix-b.safetensors"), "b" * 64)
    for name, kind in (("style_lora", "LoRA"), ("style_loha", "LoHa"), ("style_lokr", "LoKr")):
        path = write_adapter(
            data / "models" / "Lora" / f"{name}.safetensors",
            kind,
            {"ss_sd_model_name": "base-a.safetensors", "ss_base_model_version": "sd_v1"},
        )
        ns.networks.add(name, str(path))
    ns.processing.FAILURES.clear()
    ns.processing.CALLS.clear()
    ns.sd_models.LOADS.clear()
    ns.adapter = importlib.import_module("lycoris_eval.webui")
    yield ns
    _drop_host_modules()
