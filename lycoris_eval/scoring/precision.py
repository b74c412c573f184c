"""Which floating-point precision an encoder runs in: the ``precision`` setting.

``auto`` (default) is fp16 autocast on CUDA and fp32 elsewhere, as before the setting
existed, so default results and feature-cache keys on the CPU stay the same. ``fp32``
runs without autocast (on CUDA with TF32 switched off during our forward passes, so it
is IEEE fp32 even inside a WebUI that enables TF32). ``fp16`` is autocast fp16 and needs
CUDA. ``bf16`` is autocast bf16 on the CPU or CUDA (a GPU with bf16 support).

An encoder may refuse a mode for its own reason (the FID Inception always runs in
fp32, as clean-fid does; see ``Encoder.refused_precisions``): it then runs fp32 and the
reason is recorded in its ``describe()`` and, when the mode was asked for explicitly, in
the run's notes. Never silently.

The effective mode is part of every encoder fingerprint, so features computed in one
precision are never read back as another's. How far bf16 moves the metrics from fp32,
and the tolerance a test holds it to, is in ``docs/precision.md``.

No torch here: a config is checked before any model library is imported.
"""

from __future__ import annotations

from lycoris_eval.errors import InputError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# effective modes, as they appear in fingerprints and reports
FP32 = "fp32"
FP16 = "fp16-autocast"
BF16 = "bf16-autocast"


def check_precision(requested: str) -> str:
    """``requested`` if it is a known setting, else an :class:`InputError` naming it."""
    if requested not in PRECISIONS:
        raise InputError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    return requested


def device_type(device: str) -> str:
    """``cuda:1`` -> ``cuda``: what ``torch.autocast`` takes."""
    return device.split(":", 1)[0]


def resolve_precision(
    requested: str, device: str, encoder: str, refused: dict[str, str] | None = None
) -> tuple[str, str | None]:
    """(effective mode, note) for ``encoder`` on ``device`` under the ``requested`` setting.

    The note says why the effective mode is not the one the setting asks for (``None``
    when it is). A mode the device cannot run is an :class:`InputError`, whatever the
    encoder: the setting is wrong for the machine, not for one model.
    """
    check_precision(requested)
    kind = device_type(device)
    if requested == "fp16" and kind != "cuda":
        raise InputError(f"precision fp16 needs a CUDA device; got {device}")
    if requested == "bf16" and kind not in ("cpu", "cuda"):
        raise InputError(f"precision bf16 needs a CPU or CUDA device; got {device}")
    wanted = {"auto": FP16 if kind == "cuda" else FP32, "fp32": FP32, "fp16": FP16, "bf16": BF16}[requested]
    if wanted == FP32:
        return FP32, None
    reason = (refused or {}).get("fp16" if wanted == FP16 else "bf16")
    if reason:
        return FP32, f"{encoder}: runs in fp32, not {wanted} (precision {requested}): {reason}"
    return wanted, None
