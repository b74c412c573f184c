"""A re-evaluation whose features are all cached is quick from the command line (issue #12):
no encoder library is imported (torch, open_clip, torchvision) and no weights file is
read. Checked in a fresh process, as a user runs it, on the shipped example grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("torch", "torchvision", "open_clip", "timm")
PROBE = f"""
import json, runpy, sys
LIBRARIES = {LIBRARIES!r}
opened = []
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        opened.append(args[0] if isinstance(args[0], str) else args[0].decode(errors="replace"))
sys.addaudithook(hook)
sys.argv = ["python -m lycoris_eval"] + json.loads(sys.argv[1])
code = 0
try:
    runpy.run_module("lycoris_eval", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code or 0
weights = [p for p in opened if p.endswith((".pth", ".bin", ".safetensors", ".pt"))]
libraries = [m for m in LIBRARIES if m in sys.modules]
print("@@" + json.dumps({{"code": code, "weights": weights, "libraries": libraries}}))
"""


def _run(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("@@")]
    assert lines, out.stdout[-2000:] + out.stderr[-4000:]
    return json.loads(lines[-1][2:])


def test_fully_cached_rerun_imports_no_encoder_library_and_reads_no_weights(tmp_path):
    import torch

    from lycoris_eval.scoring.encoders import Dinov2Encoder

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(Dinov2Encoder(arch="vits14").build().state_dict(), weights / "dinov2_vits14_pretrain.pth")
    env = {k: v for k, v in os.environ.items() if k != "LYCORIS_EVAL_CACHE"}
    env = {**env, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "OMP_NUM_THREADS": "2"}
    common = ["evaluate", "examples/grid", "--quiet", "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    # real weights file (DINOv2): its content hash is the cache's key, remembered across processes
    real = [*common, "--out", str(tmp_path / "a"), "--metrics", "vendi", "--dinov2-arch", "vits14"]
    real += ["--weights-dir", str(weights), "--offline"]
    first = _run(real, env)
    assert first["code"] == 0 and any(p.endswith("dinov2_vits14_pretrain.pth") for p in first["weights"]), first
    second = _run(real, env)
    assert second == {"code": 0, "weights": [], "libraries": []}, second
    # CLIP text alignment (random weights: no file), cached prompts and images
    clip = [*common, "--out", str(tmp_path / "b"), "--metrics", "text_alignment,vendi", "--random-weights"]
    clip += ["--clip-model", "ViT-B-32", "--dinov2-arch", "vits14"]
    assert "open_clip" in _run(clip, env)["libraries"]
    again = _run(clip, env)
    assert again == {"code": 0, "weights": [], "libraries": []}, again
    scores = json.loads((tmp_path / "b" / "scores.json").read_text())
    assert scores["run"]["cache"]["misses"] == 0 and sum(scores["run"]["encoded"].values()) == 0
