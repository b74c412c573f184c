"""A sweep's spec file takes ``training_run`` too (issue #24): the preflight expands it by
the first WebUI's adapters (their training metadata from ``/sdapi/v1/loras``), before any
image, and the run records the training runs used."""

from __future__ import annotations

from typing import Any

import pytest

from lycoris_eval.errors import SpecError
from lycoris_eval.grid.spec import GridSpec
from lycoris_eval.sweep.preflight import check_webuis

from .fake_webui_http import FakeWebUI

SAVES = {"tree-000001": 1, "tree-000002": 2, "tree-000003": 3, "tree": 4}


class EpochsWebUI(FakeWebUI):
    """Lists four saves of one kohya training, their header metadata as the WebUI gives it
    (the extension's own route is absent: no file of theirs is readable here)."""

    def get(self, path: str) -> tuple[int, Any]:
        if path != "/sdapi/v1/loras":
            return super().get(path)
        meta = {"ss_output_name": "tree", "ss_session_id": "77", "ss_num_epochs": "4", "ss_num_batches_per_epoch": "10"}
        return 200, [
            {"name": name, "path": f"/nowhere/{name}.safetensors", "metadata": {**meta, "ss_epoch": str(epoch)}}
            for name, epoch in SAVES.items()
        ]


def test_the_preflight_expands_a_training_run_before_any_image():
    fake = EpochsWebUI()
    try:
        base = {"checkpoints": ["ck-a"], "weights": [1], "prompts": ["a"], "seeds": [1]}
        spec = GridSpec.from_dict({**base, "training_run": {"name": "tree", "every": 2}})
        prepared = check_webuis(spec, [fake.url], None, 10)
        assert prepared.spec.adapters == ["tree-000002", "tree"] and prepared.spec.training_run == []
        [run] = prepared.spec.training_runs
        assert [(m["adapter"], m["epoch"], m["step"], m["final"]) for m in run["members"]] == [
            ("tree-000002", 2, 20, False),
            ("tree", 4, 40, True),
        ]
        with pytest.raises(SpecError, match=r"tree has no epoch 5 \(it has 1, 2, 3, 4\)") as caught:
            check_webuis(
                GridSpec.from_dict({**base, "training_run": {"name": "tree", "epochs": [5]}}), [fake.url], None, 10
            )
        assert caught.value.field == "training_run.epochs" and fake.made == 0
    finally:
        fake.stop()
