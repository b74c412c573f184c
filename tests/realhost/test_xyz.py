"""The built-in X/Y/Z plot with the extension's axes and batch count 2, then scoring the
last X/Y/Z grid: every image once, no batch grid, cells as the plot labelled them."""

from __future__ import annotations

from PIL import Image

from .host import xyz_axis_index

XYZ_DIR = ("outputs", "lycoris-eval", "xyz-last")


def test_xyz_with_our_axes_and_batch_count_two_then_evaluate(api, host):
    checkpoint_axis, adapter_axis = xyz_axis_index(api, "Checkpoint name"), xyz_axis_index(api, "LyCORIS: adapter")
    weight_axis = xyz_axis_index(api, "LyCORIS: adapter weight")
    checkpoints = list(host.build.checkpoints)
    lora, loha = host.build.adapter("lora"), host.build.adapter("loha")
    args = [checkpoint_axis, "", checkpoints, adapter_axis, "", [lora, loha]]
    args += [weight_axis, "0.5, 1", [], True, False, False, False, False, False, False, 0, False]
    body = {
        "prompt": "a red barn",
        "steps": 4,
        "width": 64,
        "height": 64,
        "seed": 300,
        "n_iter": 2,
        "script_name": "x/y/z plot",
        "script_args": args,
    }
    response = api.post("/sdapi/v1/txt2img", json=body, timeout=600)
    assert response.status_code == 200, response.text[:2000]
    folder = host.root.joinpath(*XYZ_DIR)
    files = sorted(folder.glob("*.png"))
    assert len(files) == 2 * 2 * 2 * 2, [f.name for f in files]  # checkpoints × adapters × weights × batch count
    for path in files:
        with Image.open(path) as im:
            assert im.size == (64, 64), f"{path.name} is a batch grid"
    result = api.post(
        "/lycoris-eval/v1/evaluate",
        json={"folder": str(folder), "metrics": ["style_loss_base", "vendi", "psnr_base"]},
        timeout=600,
    )
    assert result.status_code in (200, 202), result.text[:2000]
    document = result.json() if result.status_code == 200 else None
    if document is None:
        from .host import wait_job

        document = wait_job(api, result.json()["job_id"])["result"]
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
