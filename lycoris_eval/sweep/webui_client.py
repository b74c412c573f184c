"""One WebUI seen over HTTP: what it has (checkpoints, adapters, samplers) and one image.

Images are made with ``POST /sdapi/v1/txt2img`` and ``override_settings`` (checkpoint,
``sd_lora`` off), one cell per request, in every WebUI: the extension's own ``POST
/lycoris-eval/v1/grid`` runs whole grids into the WebUI's own disk, while a sweep hands
out chunks and needs each image back. Where the extension is installed, its
``/lycoris-eval/v1/adapters`` gives the adapters' detected types and training bases.

Errors: :class:`WebUIUnreachable` when the WebUI cannot be reached (refused, reset,
timed out; the sweep gives its work to the others), :class:`HostImageError` /
:class:`CheckpointMismatchError` / :class:`AdapterLoadError` for one image (recorded on
its cell), :class:`InputError` for a WebUI that refuses the credentials.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from lycoris_eval.errors import AdapterLoadError, CheckpointMismatchError, HostImageError, InputError, WebUIUnreachable
from lycoris_eval.grid.base_values import HostVocabulary
from lycoris_eval.grid.host import AdapterRef, CheckpointRef
from lycoris_eval.grid.spec import GridJob
from lycoris_eval.inputs.adapter_types import detect
from lycoris_eval.inputs.families import checkpoint_family
from lycoris_eval.inputs.infotext import parse_infotext
from lycoris_eval.inputs.training_runs import training_metadata

EXT_PREFIX = "/lycoris-eval/v1"


def split_url(url: str, auth: str | None = None) -> tuple[str, tuple[str, str] | None]:
    """``http://user:pass@host:port`` -> (``http://host:port``, (user, pass)); ``auth`` (USER:PASS) otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--webui {url!r}: give a URL such as http://127.0.0.1:7860")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    if parts.username is not None:
        return clean, (parts.username, parts.password or "")
    if auth:
        user, _, password = auth.partition(":")
        return clean, (user, password)
    return clean, None


def quote(value: str) -> str:
    """An infotext value as the WebUI writes it (JSON-quoted when it holds ``,``, ``:`` or a newline)."""
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value


def add_fields(infotext: str, extra: dict[str, str]) -> str:
    """Append ``Key: value`` pairs to the infotext's last (parameters) line."""
    tail = ", ".join(f"{k}: {quote(v)}" for k, v in extra.items())
    return f"{infotext}, {tail}" if infotext else tail


@dataclass
class WebUIFacts:
    url: str
    checkpoints: list[CheckpointRef]
    adapters: list[AdapterRef]
    current: str  # the checkpoint title loaded now
    options: set[str] = field(default_factory=set)
    lora_hashes: bool = False  # the Lora extension writes "Lora hashes" into the infotext
    extension: str | None = None  # our extension's version when installed
    vocabulary: HostVocabulary = field(default_factory=HostVocabulary)

    def loaded(self) -> CheckpointRef | None:
        """The checkpoint loaded now: ``current`` carries the short hash once the WebUI has hashed the file."""
        bare = self.current.split(" [", 1)[0]
        for ref in self.checkpoints:
            if self.current in (ref.title, ref.name) or bare in (ref.title.split(" [", 1)[0], ref.name):
                return ref
        return None


class WebUIClient:
    def __init__(self, url: str, auth: str | None = None, timeout: float = 600.0) -> None:
        self.url, credentials = split_url(url, auth)
        self._http = httpx.Client(base_url=self.url, auth=credentials, timeout=httpx.Timeout(timeout, connect=10.0))

    def close(self) -> None:
        self._http.close()

    # -- requests --------------------------------------------------------------------
    def _request(self, method: str, path: str, retries: int = 1, **kwargs: Any) -> httpx.Response:
        for attempt in range(retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except (httpx.TransportError, OSError) as exc:
                if attempt < retries:
                    time.sleep(2.0)
                    continue
                raise WebUIUnreachable(f"WebUI {self.url} is unreachable ({type(exc).__name__}: {exc})") from None
            if response.status_code == 401:
                raise InputError(
                    f"WebUI {self.url} refused the credentials (HTTP 401): give them as "
                    "--webui http://USER:PASS@HOST:PORT or --webui-auth USER:PASS (its --api-auth)"
                )
            return response
        raise AssertionError("unreachable")

    def _json(self, path: str) -> Any:
        response = self._request("GET", path)
        if response.status_code == 404 and path.startswith("/sdapi"):
            raise InputError(f"WebUI {self.url} has no {path}: start it with --api")
        if response.status_code != 200:
            raise InputError(f"WebUI {self.url}{path} answered HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    def facts(self) -> WebUIFacts:
        """Everything the sweep checks before any image (one round of GETs)."""
        models = self._json("/sdapi/v1/sd-models")
        # the family from the file's header when this machine can read it (same disk or mount)
        checkpoints = [
            CheckpointRef(
                m["model_name"],
                m["title"],
                m.get("sha256") or m.get("hash"),
                checkpoint_family(m.get("filename")).family,
            )
            for m in models
        ]
        options = self._json("/sdapi/v1/options")
        loras = self._json("/sdapi/v1/loras")
        extension, infos = self._extension()
        adapters = []
        for item in loras:
            info = infos.get(item["name"])
            if info is None:
                try:  # the WebUI's file, when this machine can read it (header only, never unpickled)
                    info = detect(item["path"]).as_dict() if item.get("path") else {}
                except OSError:
                    info = {}
            if not info.get("training") and isinstance(item.get("metadata"), dict):
                # the WebUI's own listing carries each file's header metadata: its training run
                info = {**info, "training": training_metadata(item["metadata"])}
            adapters.append(AdapterRef(item["name"], item.get("path"), None, info))
        samplers = [s["name"] for s in self._json("/sdapi/v1/samplers")]
        samplers += [a for s in self._json("/sdapi/v1/samplers") for a in s.get("aliases", [])]
        schedulers = self._optional_names("/sdapi/v1/schedulers", ("name", "label"))
        return WebUIFacts(
            url=self.url,
            checkpoints=checkpoints,
            adapters=adapters,
            current=str(options.get("sd_model_checkpoint") or ""),
            options=set(options),
            lora_hashes=bool(options.get("lora_add_hashes_to_infotext", False)),
            extension=extension,
            vocabulary=HostVocabulary(samplers=samplers, schedulers=schedulers),
        )

    def _extension(self) -> tuple[str | None, dict[str, dict[str, Any]]]:
        response = self._request("GET", f"{EXT_PREFIX}/version")
        if response.status_code != 200:
            return None, {}
        version = str(response.json().get("version"))
        adapters = self._request("GET", f"{EXT_PREFIX}/adapters")
        if adapters.status_code != 200:
            return version, {}
        return version, {a["name"]: a.get("info") or {} for a in adapters.json()}

    def _optional_names(self, path: str, keys: tuple[str, ...]) -> list[str] | None:
        response = self._request("GET", path)
        if response.status_code != 200:
            return None
        return [str(item[k]) for item in response.json() for k in keys if item.get(k)]

    # -- one image -------------------------------------------------------------------
    def txt2img(
        self, job: GridJob, checkpoint: CheckpointRef, base: dict[str, Any], facts: WebUIFacts
    ) -> tuple[bytes, str]:
        """One cell's image (PNG bytes as the WebUI sent them) and its infotext; raises a
        per-image error (recorded on the cell) or :class:`WebUIUnreachable`."""
        overrides = {**dict(base.get("override_settings") or {}), "sd_model_checkpoint": checkpoint.title}
        if "sd_lora" in facts.options:
            overrides["sd_lora"] = "None"  # "Add network to prompt" would tag the baselines too
        payload = {k: v for k, v in base.items() if k not in ("prompt_prefix", "override_settings")}
        payload.update(
            prompt=job.prompt_text(str(base.get("prompt_prefix", "") or "")),
            seed=job.seed,
            batch_size=1,
            n_iter=1,
            override_settings=overrides,
            override_settings_restore_afterwards=False,  # keep the checkpoint loaded for the next cell
            send_images=True,
            save_images=False,
        )
        response = self._request("POST", "/sdapi/v1/txt2img", json=payload)
        if response.status_code != 200:
            raise HostImageError(f"HTTP {response.status_code}: {response.text[:300]}")
        data = response.json()
        info = json.loads(data.get("info") or "{}")
        if not data.get("images"):
            raise HostImageError("the WebUI answered without an image")
        made_with = info.get("sd_model_name")
        if made_with and made_with != checkpoint.name:
            raise CheckpointMismatchError(f"generated with {made_with!r} instead of {checkpoint.name!r}")
        infotext = (info.get("infotexts") or [""])[0]
        hashes = parse_infotext(infotext).params.get("Lora hashes", "") if infotext else ""
        if job.adapter and facts.lora_hashes and f"{job.adapter}:" not in hashes:
            raise AdapterLoadError(f"the WebUI did not apply adapter {job.adapter!r} (no Lora hash in its infotext)")
        return base64.b64decode(data["images"][0].split(",", 1)[-1]), infotext
