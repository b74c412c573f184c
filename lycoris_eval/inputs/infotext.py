"""Parse the WebUI's infotext (the PNG ``parameters`` chunk) and its adapter tags.

The format is the one ``modules/infotext_utils.py`` (WebUI v1.10.1) writes and parses:
prompt lines, an optional ``Negative prompt:`` block, and a last line of
``Key: value`` pairs where values may be JSON-quoted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# Same shape as the WebUI's ``re_param_code``: key, then a quoted or unquoted value.
_RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_RE_NETWORK = re.compile(r"<(lora|lyco|locon|loha|lokr):([^>]+)>", re.IGNORECASE)
_RE_ANY_NETWORK = re.compile(r"<(\w+):([^>]*)>")

PROMPT_TYPE_KEY = "LyCORIS prompt type"
GROUP_KEY = "LyCORIS group"  # extra cell key, e.g. the X/Y/Z plot's axis labels
PROMPT_TYPES = ("train", "trigger", "alter", "style")


@dataclass
class AdapterTag:
    name: str
    weight: float | None


@dataclass
class GenerationInfo:
    prompt: str
    negative_prompt: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def seed(self) -> int | None:
        try:
            return int(self.params["Seed"])
        except (KeyError, ValueError):
            return None

    @property
    def checkpoint(self) -> str | None:
        return self.params.get("Model") or self.params.get("Model hash") or None

    @property
    def prompt_type(self) -> str | None:
        value = self.params.get(PROMPT_TYPE_KEY)
        return value if value in PROMPT_TYPES else None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    return value


def parse_infotext(text: str) -> GenerationInfo:
    """Split infotext into prompt, negative prompt and parameters (as the WebUI does)."""
    lines = text.strip().split("\n")
    last = lines[-1] if lines else ""
    if len(_RE_PARAM.findall(last)) < 3:
        params_line = ""
    else:
        params_line = last
        lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    params: dict[str, str] = {}
    for key, value in _RE_PARAM.findall(params_line):
        params[key.strip()] = _unquote(value.strip())
    return GenerationInfo("\n".join(prompt_lines), "\n".join(negative_lines), params)


def _parse_weight(args: list[str]) -> float | None:
    """``<lora:name:0.8>``, ``<lora:name:te=0.8:unet=0.6>`` or ``<lora:name>`` (weight 1)."""
    if not args:
        return 1.0
    for arg in args:
        value = arg.split("=", 1)[1] if "=" in arg else arg
        try:
            return float(value)
        except ValueError:
            continue
    return None


def adapter_tags(prompt: str) -> list[AdapterTag]:
    """All LoRA/LyCORIS tags in a prompt, in order."""
    tags = []
    for _kind, body in _RE_NETWORK.findall(prompt):
        parts = body.split(":")
        tags.append(AdapterTag(parts[0].strip(), _parse_weight(parts[1:])))
    return tags


def strip_network_tags(prompt: str) -> str:
    """Remove every ``<kind:...>`` extra-network tag and normalise whitespace."""
    return _tidy(_RE_ANY_NETWORK.sub(" ", prompt))


def strip_adapter_tags(text: str) -> str:
    """Remove only the LoRA/LyCORIS tags (``<lora|lyco|locon|loha|lokr:…>``), which the cells
    read as their adapter and weight; other extra networks (hypernetworks…) stay, since
    nothing else records them."""
    return _tidy(_RE_NETWORK.sub(" ", text))


def _tidy(text: str) -> str:
    """Whitespace normalised, empty comma items and edge commas left by removed tags dropped."""
    text = re.sub(r"\s*,\s*(,\s*)+", ", ", text)
    return " ".join(text.split()).strip(" ,")
