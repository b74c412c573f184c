"""The built-in X/Y/Z plot with the extension's axes and batch count 2, then scoring the
last X/Y/Z grid: every image once, no batch grid, cells as the plot labelled them; and the
plot's own Prompt S/R axis swapping LoRA tags, whose images pair across weights."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image

from .host import wait_job, xyz_args, xyz_axis_index

XYZ_DIR = ("outputs", "lycoris-eval", "xyz-last")


def test_xyz_with_our_axes_and_batch_count_two_then_evaluate(api, host):
    checkpoint_axis, adapter_axis = xyz_axis_index(api, "Checkpoint name"), xyz_axis_index(api, "LyCORIS: adapter")
    weight_axis = xyz_axis_index(api, "LyCORIS: adapter weight")
    checkpoints = list(host.build.checkpoints)
    lora, loha = host.build.adapter("lora"), host.build.adapter("loha")
    args = xyz_args(
        api, (checkpoint_axis, "", checkpoints), (adapter_axis, "", [lora, loha]), (weight_axis, "0.5, 1", [])
    )
    folder = _plot(api, host, "a red barn", args)
    files = sorted(folder.glob("*.png"))
    assert len(files) == 2 * 2 * 2 * 2, [f.name for f in files]  # checkpoints × adapters × weights × batch count
    for path in files:
        with Image.open(path) as im:
            assert im.size == (64, 64), f"{path.name} is a batch grid"
    document = _evaluate(api, folder, ["style_loss_base", "vendi", "psnr_base"])
    cells = document["cells"]
    assert len(cells) == 8 and all(len(c["images"]) == 2 for c in cells)
    assert sorted(s for c in cells for s in c["image_seeds"]) == sorted([300, 301] * 8)
    assert {(c["adapter"], c["weight"]) for c in cells} == {(a, w) for a in (lora, loha) for w in (0.5, 1)}
    # checkpoint, adapter and weight axes are the cells' own fields, not a group: pairs form
    assert {c["group"] for c in cells} == {None}
    assert len({(c["checkpoint"], c["adapter"], c["weight"]) for c in cells}) == 8
    across = [e for e in document["comparisons"]["entries"] if e["kind"] == "checkpoint"]
    assert len(across) == 4 and all(e["n"] == 2 for e in across)  # Vendi per adapter × weight, 2 seeds
    assert all(c["checkpoint"] in checkpoints for c in cells)
    assert document["adapters"][loha]["type"] == "LoHa"
    assert document["adapters"][lora]["base_model_version"] == "sd_v1"


def _plot(api, host, prompt: str, args: list) -> Path:
    """An X/Y/Z plot through the host's own API (64×64, 4 steps, seeds 300 and 301); the
    folder our capture kept its cells in."""
    body = {"prompt": prompt, "steps": 4, "width": 64, "height": 64, "seed": 300, "n_iter": 2}
    body |= {"script_name": "x/y/z plot", "script_args": args}
    response = api.post("/sdapi/v1/txt2img", json=body, timeout=600)
    assert response.status_code == 200, response.text[:2000]
    return host.root.joinpath(*XYZ_DIR)


def _evaluate(api, folder, metrics: list[str]) -> dict:
    result = api.post("/lycoris-eval/v1/evaluate", json={"folder": str(folder), "metrics": metrics}, timeout=600)
    assert result.status_code in (200, 202), result.text[:2000]
    if result.status_code == 200:
        return result.json()
    return wait_job(api, result.json()["job_id"])["result"]


def test_xyz_prompt_sr_over_lora_tags_pairs_across_weights(api, host):
    """The usual way to test LoRA weights: ``<lora:x:0.5>`` in the prompt, Prompt S/R over
    its weights (0 is the baseline); a second Prompt S/R changes a word (two prompts)."""
    sr = xyz_axis_index(api, "Prompt S/R")
    lora = host.build.adapter("lora")
    tags = [f"<lora:{lora}:{w}>" for w in ("0.5", "1", "0")]
    args = xyz_args(api, (sr, ", ".join(tags), []), (sr, "barn, house", []))
    folder = _plot(api, host, f"a red barn, {tags[0]}", args)
    assert len(list(folder.glob("*.png"))) == 3 * 2 * 2  # weights × words × batch count
    document = _evaluate(api, folder, ["vendi", "psnr_base"])
    cells = document["cells"]
    assert {(c["adapter"], c["weight"]) for c in cells} == {(lora, 0.5), (lora, 1.0), (None, 0.0)}
    # the tags are each cell's adapter and weight, not a stratum; the word is both
    assert {(c["group"], c["prompt"]) for c in cells} == {("Y: barn", "a red barn"), ("Y: house", "a red house")}
    assert len(cells) == 6 and all(sorted(c["image_seeds"]) == [300, 301] for c in cells)
    comparisons = document["comparisons"]
    assert comparisons["duplicates_ignored"] == 0
    entries = comparisons["entries"]
    # 0.5 against 1; each weight against <lora:…:0> (psnr_base is measured against it: left out)
    assert Counter((e["kind"], e["metric"]) for e in entries) == {
        ("weight", "vendi"): 1,
        ("weight", "psnr_base"): 1,
        ("baseline", "vendi"): 2,
    }
    # n = seeds × prompts: barn pairs with barn, house with house, never with each other
    assert all(e["n"] == 2 * 2 and e["prompts"] == 2 for e in entries)
    weight = next(e for e in entries if e["kind"] == "weight" and e["metric"] == "psnr_base")
    assert {weight["a"]["weight"], weight["b"]["weight"]} == {0.5, 1.0} and weight["a"]["adapter"] == lora
