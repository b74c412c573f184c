"""Drive the real hosts: AUTOMATIC1111 WebUI v1.10.1 (``../shared/realhost/setup.sh``),
Stable Diffusion WebUI Forge (``../shared/realhost/forge/setup.sh``) and reForge
(``../shared/realhost/reforge/setup.sh``), each in its own build folder and its own Python
environment (their pins cannot share one).

The extension is installed the way a user installs it: copied into ``extensions/`` and its
``install.py`` run through the host's own ``launch`` module. Each host runs in its own
process group on loopback and is stopped by that group (never by name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

EXT_NAME = "sd-webui-lycoris-eval"
ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LYCORIS_EVAL_SHARED", ROOT.parent / "shared"))
AUTH = ("tester", "s3cret")


@dataclass(frozen=True)
class Flavour:
    """One kind of real host: where its build lives and how it is started."""

    name: str  # the test id: "webui", "forge" or "reforge"
    env: str  # the variable naming its build folder
    default_dir: str  # where ``tools/setup.sh --tests`` builds it
    subdir: str  # the host's own tree inside the build folder
    start: Path

    def dest(self) -> Path | None:
        value = os.environ.get(self.env, "").strip()
        if value:
            return Path(value).resolve()
        default = ROOT / self.default_dir
        return default if (default / self.subdir / "launch.py").is_file() else None

    def built(self) -> bool:
        dest = self.dest()
        return dest is not None and (dest / self.subdir / "launch.py").is_file()

    @property
    def setup_hint(self) -> str:
        return (
            f"real {self.name} host not built: `bash tools/setup.sh --tests` builds it in {self.default_dir}/ "
            f"(or ${self.env}=DIR built by {self.start.parent}/setup.sh DIR)"
        )


FLAVOURS = {
    "webui": Flavour("webui", "LYCORIS_EVAL_REALHOST", "realhost", "a1111", SHARED / "realhost" / "start.sh"),
    "forge": Flavour(
        "forge", "LYCORIS_EVAL_FORGE", "realhost-forge", "src", SHARED / "realhost" / "forge" / "start.sh"
    ),
    "reforge": Flavour(
        "reforge", "LYCORIS_EVAL_REFORGE", "realhost-reforge", "src", SHARED / "realhost" / "reforge" / "start.sh"
    ),
}
ENV = FLAVOURS["webui"].env


@dataclass(frozen=True)
class Build:
    """A built host and the fixtures found in it (never hard-coded per host): the two
    smallest checkpoints, and one adapter of each kind the Lora extension loads."""

    flavour: Flavour
    dest: Path

    @property
    def root(self) -> Path:
        return self.dest / self.flavour.subdir

    @property
    def checkpoints(self) -> tuple[str, str]:
        files = sorted((self.root / "models" / "Stable-diffusion").glob("*.safetensors"))
        smallest = sorted(files, key=lambda f: (f.stat().st_size, f.name))[:2]
        a, b = sorted(f.stem for f in smallest)
        return a, b

    def adapter(self, kind: str) -> str:
        """The adapter file of a kind (``lora``, ``loha``, ``lokr``), named ``*_<kind>``."""
        names = sorted(f.stem for f in (self.root / "models" / "Lora").glob(f"*_{kind}.safetensors"))
        names = [n for n in names if not n.startswith(("broken", "mismatch"))]  # the bad-input fixtures
        if not names:
            raise RuntimeError(f"no *_{kind} adapter in {self.root / 'models' / 'Lora'}")
        return names[0]

    @property
    def adapters(self) -> tuple[str, str, str]:
        return self.adapter("lora"), self.adapter("loha"), self.adapter("lokr")


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
    ".venv",
    ".venv-sweep",
    "lycoris-eval-runs",
    ".git",
    "realhost",
    "realhost-forge",
    "realhost-reforge",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "test-artifacts",
    "*.egg-info",
    "out",
)


def realhost_dest() -> Path | None:
    """The WebUI v1.10.1 build: ``$LYCORIS_EVAL_REALHOST``, else ``realhost/``."""
    return FLAVOURS["webui"].dest()


def host_python(dest: Path) -> str:
    return (dest / "host-python").read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_extension(build: Build) -> str:
    """Copy the working tree into ``extensions/`` and run ``install.py`` as the launcher does."""
    a1111 = build.root
    dest = build.dest
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


def write_settings(build: Build, settings: dict[str, Any]) -> None:
    path = build.root / "config.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(settings)
    path.write_text(json.dumps(data, indent=2))


def write_weights(weights_dir: Path) -> None:
    """Random-valued weight files of the encoders the host settings ask for, saved with
    ``torch.save`` (current format, which the WebUI's replaced ``torch.load`` refuses).
    Written once into ``test-artifacts/weights`` and hard-linked into each host's folder
    (1.2 GB a copy: three hosts' copies had filled a CI machine's disk)."""
    import torch
    import torchvision

    from lycoris_eval.scoring.encoders import Dinov2Encoder, OpenClipEncoder

    shared = ROOT / "test-artifacts" / "weights"
    shared.mkdir(parents=True, exist_ok=True)
    weights_dir.mkdir(parents=True, exist_ok=True)
    for build, name in (
        (torchvision.models.vgg19, "vgg19-dcbb9e9d.pth"),  # the whole torchvision model, as published
        (lambda: Dinov2Encoder(arch="vits14").build(), "dinov2_vits14_pretrain.pth"),
        (lambda: OpenClipEncoder(model_name="ViT-B-32").build(), "open_clip_pytorch_model.bin"),
    ):
        if not (shared / name).is_file():
            torch.manual_seed(0)
            # written under another name and renamed: a run killed mid-write leaves no
            # truncated file that the next run would take as the weights
            part = shared / f"{name}.part"
            torch.save(build().state_dict(), part)
            part.replace(shared / name)
        if not (weights_dir / name).is_file():
            try:
                os.link(shared / name, weights_dir / name)
            except OSError:  # another file system: a copy
                shutil.copyfile(shared / name, weights_dir / name)


def write_mismatched_lora(path: Path) -> None:
    """A well-formed kohya LoRA whose 16 modules name layers no SD1.5 checkpoint has, with
    SD1 training metadata (a broken conversion): its family does not stop it before the
    images, so the after-the-fact check (every host loads it and changes nothing) is what
    catches it."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for i in range(16):
        name = f"lora_unet_no_such_block_{i}_proj"
        tensors[f"{name}.lora_down.weight"] = torch.full((4, 32), 0.01)
        tensors[f"{name}.lora_up.weight"] = torch.full((32, 4), 0.01)
        tensors[f"{name}.alpha"] = torch.tensor(4.0)
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora", "ss_base_model_version": "sd_v1"})


def write_sdxl_lora(path: Path) -> None:
    """A kohya SDXL LoRA (both text encoders and the SGM UNet names, 2048-wide context, no
    metadata): on the SD1.5 test checkpoints its cells are refused before any image."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for name, d_in, d_out in (
        ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
        ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280),
        ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640),
    ):
        tensors[f"{name}.lora_down.weight"] = torch.full((4, d_in), 0.01)
        tensors[f"{name}.lora_up.weight"] = torch.full((d_out, 4), 0.01)
    save_file(tensors, str(path))


class Host:
    """One running WebUI (API only, or page + API with ``ui=True``)."""

    def __init__(self, build: Build, ui: bool = False, auth: tuple[str, str] | None = AUTH, extra: tuple = ()) -> None:
        self.build = build
        self.dest = build.dest
        self.ui = ui
        self.auth = auth
        self.extra = tuple(extra)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = build.dest / f"host-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def root(self) -> Path:
        """The host's own tree (``a1111/`` or Forge's ``src/``): models, outputs, config.json."""
        return self.build.root

    @property
    def flavour(self) -> str:
        return self.build.flavour.name

    def start(self, timeout: float = 240) -> Host:
        args = ["bash", str(self.build.flavour.start), str(self.dest), "--port", str(self.port)]
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
                raise RuntimeError(f"the {self.flavour} host exited with {self.proc.returncode}:\n{self.log_tail()}")
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
        raise RuntimeError(f"the {self.flavour} host did not answer within {timeout:.0f} s:\n{self.log_tail()}")

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


def _xyz_script(client: httpx.Client) -> dict[str, Any]:
    for script in client.get("/sdapi/v1/script-info").json():
        if script["name"] == "x/y/z plot" and not script["is_img2img"]:
            return script
    raise AssertionError("no x/y/z plot script in this host")


def xyz_axis_index(client: httpx.Client, label: str) -> int:
    """The txt2img X/Y/Z plot's axis index of ``label``, read from the host (Forge's
    indices differ from the WebUI's)."""
    return _xyz_script(client)["args"][0]["choices"].index(label)


def xyz_args(client: httpx.Client, *axes: tuple[int, str, list]) -> list[Any]:
    """The X/Y/Z plot's ``script_args``: the three axes (type, values, dropdown values; a
    missing axis is "Nothing"), then every other argument at the host's own default as
    ``/sdapi/v1/script-info`` lists it (18 arguments in the WebUI and Forge, 21 in reForge,
    which adds its own options between the legend and the sub-images)."""
    script = _xyz_script(client)
    padded = list(axes) + [(0, "", [])] * (3 - len(axes))
    rest = [arg.get("value") for arg in script["args"][9:]]
    return [v for axis in padded for v in (axis[0], axis[1], list(axis[2]))] + rest


def without_hash(title: str) -> str:
    """A checkpoint title without the short hash the host appends once it has hashed the file
    (on first load; Forge loads lazily, so the same selection reads both ways)."""
    return re.sub(r"\s*\[[0-9a-f]{8,}\]$", "", title)


def current_checkpoint(client: httpx.Client) -> str:
    return client.get("/sdapi/v1/options").json()["sd_model_checkpoint"]


def plain_image_checkpoint(client: httpx.Client) -> str:
    """The checkpoint (model name) the host makes a plain image with, with no override: what
    the user has, on every host (reForge's option can be ``null`` while a model is loaded)."""
    body = {"prompt": "which model", "steps": 1, "width": 64, "height": 64, "seed": 1}
    response = client.post("/sdapi/v1/txt2img", json=body, timeout=300)
    assert response.status_code == 200, response.text[:2000]
    return json.loads(response.json()["info"])["sd_model_name"]
