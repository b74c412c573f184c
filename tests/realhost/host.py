"""Drive the real AUTOMATIC1111 WebUI v1.10.1 built by ``../shared/realhost/setup.sh``.

The extension is installed the way a user installs it: copied into ``extensions/`` and its
``install.py`` run through the host's own ``launch`` module. Each host runs in its own
process group on loopback and is stopped by that group (never by name).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

ENV = "LYCORIS_EVAL_REALHOST"
EXT_NAME = "sd-webui-lycoris-eval"
ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LYCORIS_EVAL_SHARED", ROOT.parent / "shared"))
START = SHARED / "realhost" / "start.sh"
AUTH = ("tester", "s3cret")
CHECKPOINTS = ("tiny-sd1-a", "tiny-sd1-b")
ADAPTERS = ("tiny_lora", "tiny_loha", "tiny_lokr")
# Scoring in the host uses real weight files (random values, saved by the torch in use) of
# small architectures, so the host-side loading path is the one users take.
HOST_SETTINGS = {
    "lycoris_eval_dinov2_arch": "vits14",
    "lycoris_eval_clip_model": "ViT-B-32",
    "lycoris_eval_default_metrics": "style_loss_base,style_loss_ref,image_similarity,centroid_distance,"
    "text_alignment,vendi,psnr_base,ssim_base",
    "lycoris_eval_batch_size": 8,
    "samples_save": False,
    "grid_save": False,
}
_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "realhost", "__pycache__", ".pytest_cache", ".ruff_cache", "test-artifacts", "*.egg-info", "out"
)


def realhost_dest() -> Path | None:
    """``$LYCORIS_EVAL_REALHOST``, else ``realhost/`` (where ``tools/setup.sh --tests`` builds it)."""
    value = os.environ.get(ENV, "").strip()
    if value:
        return Path(value).resolve()
    default = ROOT / "realhost"
    return default if (default / "a1111" / "launch.py").is_file() else None


def host_python(dest: Path) -> str:
    return (dest / "host-python").read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_extension(dest: Path) -> str:
    """Copy the working tree into ``extensions/`` and run ``install.py`` as the launcher does."""
    a1111 = dest / "a1111"
    target = a1111 / "extensions" / EXT_NAME
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT, target, ignore=_IGNORE)
    code = (
        "import sys, runpy; sys.argv=['launch.py']; import launch; "
        f"runpy.run_path('extensions/{EXT_NAME}/install.py', run_name='__main__')"
    )
    proc = subprocess.run(
        [host_python(dest), "-c", code], cwd=a1111, capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"install.py failed in the real host:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def write_settings(dest: Path, settings: dict[str, Any]) -> None:
    path = dest / "a1111" / "config.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(settings)
    path.write_text(json.dumps(data, indent=2))


def write_weights(weights_dir: Path) -> None:
    """Random-valued weight files of the encoders the host settings ask for, saved with
    ``torch.save`` (current format, which the WebUI's replaced ``torch.load`` refuses)."""
    import torch
    import torchvision

    from lycoris_eval.encoders import Dinov2Encoder, OpenClipEncoder

    weights_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for build, name in (
        (torchvision.models.vgg19, "vgg19-dcbb9e9d.pth"),  # the whole torchvision model, as published
        (lambda: Dinov2Encoder(arch="vits14").build(), "dinov2_vits14_pretrain.pth"),
        (lambda: OpenClipEncoder(model_name="ViT-B-32").build(), "open_clip_pytorch_model.bin"),
    ):
        if not (weights_dir / name).is_file():
            torch.save(build().state_dict(), weights_dir / name)


class Host:
    """One running WebUI (API only, or page + API with ``ui=True``)."""

    def __init__(self, dest: Path, ui: bool = False, auth: tuple[str, str] | None = AUTH, extra: tuple = ()) -> None:
        self.dest = dest
        self.ui = ui
        self.auth = auth
        self.extra = tuple(extra)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = dest / f"host-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def a1111(self) -> Path:
        return self.dest / "a1111"

    def start(self, timeout: float = 240) -> Host:
        args = ["bash", str(START), str(self.dest), "--port", str(self.port)]
        if self.ui:
            args.append("--ui")
        if self.auth:
            args += ["--api-auth", f"{self.auth[0]}:{self.auth[1]}"]
        args += list(self.extra)
        self._log_offset = len(self.log_text())
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the WebUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            # No request before start-up is over: with --ui the page is served before the
            # host adds its API middleware, and a request then makes that fail ("Cannot add
            # middleware after an application has started").
            if "Startup time:" not in self.log_text()[self._log_offset :]:
                time.sleep(0.5)
                continue
            try:
                if self.client(timeout=5).get("/sdapi/v1/sd-models").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the WebUI did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def client(self, timeout: float = 120, auth: bool = True) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.auth if auth and self.auth else None, timeout=timeout)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        except ProcessLookupError:
            pass


def wait_job(client: httpx.Client, job_id: str, timeout: float = 300, until: tuple = ("done", "failed", "cancelled")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/lycoris-eval/v1/jobs/{job_id}").json()
        if status["state"] in until:
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not finished within {timeout} s: {status}")


def run_records(a1111: Path, run_id: str) -> list[dict[str, Any]]:
    path = a1111 / "outputs" / "lycoris-eval" / run_id / "cells.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def current_checkpoint(client: httpx.Client) -> str:
    return client.get("/sdapi/v1/options").json()["sd_model_checkpoint"]
