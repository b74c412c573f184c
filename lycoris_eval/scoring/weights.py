"""Finding pretrained weights without surprises.

Resolution order for each encoder:

1. a weights folder given explicitly (``--weights-dir``; in the WebUI a setting, by
   default ``models/lycoris-eval``), where the encoder looks for its publisher's own
   file name, so a file downloaded by hand just works;
2. the libraries' normal caches (torch hub's ``checkpoints`` folder, the Hugging Face
   cache);
3. a download, unless offline (``allow_download=False``, ``LYCORIS_EVAL_OFFLINE=1``,
   ``HF_HUB_OFFLINE=1``).

If all fail: one :class:`MissingWeightsError` naming the encoder, the file and where to
put it. Loading never unpickles arbitrary objects: safetensors or
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lycoris_eval.errors import MissingWeightsError, WeightsMismatchError


@dataclass(frozen=True)
class WeightsSpec:
    encoder: str
    file_names: tuple[str, ...]  # publisher's names, preferred first
    url: str | None = None  # direct download (torch hub style)
    hf_repo: str | None = None  # Hugging Face repo holding one of file_names
    description: str = ""


def offline() -> bool:
    return os.environ.get("LYCORIS_EVAL_OFFLINE", "") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE", "") not in (
        "",
        "0",
    )


def default_weights_dir() -> Path:
    """Where the standalone CLI looks first (``LYCORIS_EVAL_WEIGHTS`` or ~/.cache/lycoris-eval/weights)."""
    env = os.environ.get("LYCORIS_EVAL_WEIGHTS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lycoris-eval" / "weights"


def torch_hub_checkpoints_dir() -> Path:
    import torch  # lazy: torch loads only when a model does

    return Path(torch.hub.get_dir()) / "checkpoints"


def _hf_cached(repo: str, filename: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache  # lazy: huggingface_hub only when weights are fetched
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id=repo, filename=filename)
    except Exception:  # noqa: BLE001 - a broken cache is "not cached"
        return None
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def _reachable(url: str, timeout: float = 5.0) -> None:
    """Fail fast when the host cannot be reached (libraries retry for a minute)."""

    host = urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as exc:
        raise OSError(f"cannot reach {host} ({exc})") from exc


def _download(spec: WeightsSpec) -> Path:
    _reachable(spec.url or "https://huggingface.co")
    if spec.hf_repo:
        from huggingface_hub import hf_hub_download  # lazy: huggingface_hub only when weights are fetched

        errors = []
        for name in spec.file_names:
            try:
                return Path(hf_hub_download(repo_id=spec.hf_repo, filename=name))
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{name}: {exc}")
        raise OSError("; ".join(errors))
    if spec.url:
        import torch  # lazy: torch loads only when a model does

        target = torch_hub_checkpoints_dir() / spec.file_names[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(target), progress=True)
        return target
    raise OSError("no download source")


def missing_message(spec: WeightsSpec, weights_dir: Path | None, reason: str) -> str:
    where = weights_dir if weights_dir else default_weights_dir()
    source = (
        f" from {spec.url}" if spec.url else (f" from the Hugging Face repo {spec.hf_repo}" if spec.hf_repo else "")
    )
    return (
        f"{spec.encoder}: pretrained weights not found ({reason}). "
        f"Download {' or '.join(spec.file_names)}{source} and put it in {where} "
        f"(or pass --weights-dir FOLDER / set the weights folder in the WebUI settings)."
    )  # MissingWeightsError adds the dry-run hint, in each front end's words


def resolve_weights(
    spec: WeightsSpec,
    weights_dir: Path | None,
    allow_download: bool = True,
    downloader: Callable[[WeightsSpec], Path] = _download,
) -> Path:
    """Path of the weights file for ``spec`` (see module docstring for the order)."""
    weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if weights_dir is not None:
        for name in spec.file_names:
            candidate = Path(weights_dir) / name
            if candidate.is_file():
                return candidate
    for name in spec.file_names:
        candidate = torch_hub_checkpoints_dir() / name
        if candidate.is_file():
            return candidate
        if spec.hf_repo:
            cached = _hf_cached(spec.hf_repo, name)
            if cached is not None:
                return cached
    if not allow_download or offline():
        raise MissingWeightsError(missing_message(spec, weights_dir, "offline, download disabled"))
    try:
        return downloader(spec)
    except Exception as exc:  # noqa: BLE001 - any download failure ends the same way
        raise MissingWeightsError(missing_message(spec, weights_dir, f"download failed: {exc}")) from exc


def file_identity(path: Path) -> str:
    """Content hash of a weights file, memoised per (path, size, mtime): for the process, and
    on disk (:func:`identity_memo_path`) so a re-evaluation whose features are all cached
    reads no weights at all (hashing the ViT-L files alone reads about 3 GB)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _IDENTITY_MEMO:
        stored = _read_identity_memo()
        text_key = f"{key[0]}|{key[1]}|{key[2]}"
        if text_key in stored:
            _IDENTITY_MEMO[key] = stored[text_key]
        else:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(chunk)
            _IDENTITY_MEMO[key] = f"{path.name}:sha256:{digest.hexdigest()[:16]}"
            stored[text_key] = _IDENTITY_MEMO[key]
            _write_identity_memo(stored)
    return _IDENTITY_MEMO[key]


def identity_memo_path() -> Path:
    """``$XDG_CACHE_HOME/lycoris-eval/weights-identity.json`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lycoris-eval" / "weights-identity.json"


def _read_identity_memo() -> dict[str, str]:
    try:
        data = json.loads(identity_memo_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}
    )


def _write_identity_memo(memo: dict[str, str]) -> None:
    """Best effort (a read-only home only costs a re-hash next time); atomic replace."""
    path = identity_memo_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


_IDENTITY_MEMO: dict[tuple[str, int, int], str] = {}


def load_state_dict(path: Path) -> dict[str, Any]:
    """Tensors only: safetensors, or ``torch.load(weights_only=True)``."""
    import torch  # lazy: torch loads only when a model does

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # lazy: safetensors only when a file is read

        state = load_file(str(path))
    else:
        # ``torch.serialization.load`` is torch's own loader: inside the WebUI ``torch.load``
        # is replaced by its safe-unpickle check (modules/safe.py), which refuses files written
        # by current torch and returns None instead of raising. ``weights_only=True`` is the
        # same guarantee (tensors only, no arbitrary objects) without that false refusal.
        try:
            state = torch.serialization.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise WeightsMismatchError(
                f"{path}: refused as a tensors-only checkpoint ({exc.__class__.__name__}: {exc})"
            ) from exc
        if state is None:
            raise WeightsMismatchError(f"{path}: the loader returned nothing (refused or empty file)")
    if isinstance(state, dict):
        for key in ("state_dict", "model", "teacher"):
            if key in state and isinstance(state[key], dict) and len(state) <= 4:
                state = state[key]
                break
    if not isinstance(state, dict):
        raise WeightsMismatchError(f"{path}: not a state dict (found {type(state).__name__})")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}


def load_into(model: Any, state: dict[str, Any], encoder: str, path: Path) -> None:
    """``load_state_dict(strict=True)`` with an error that says which file is wrong."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise WeightsMismatchError(
            f"{encoder}: {path} does not match the encoder's architecture: {detail[:400]}"
        ) from exc
