"""Prompt cleaning for text alignment (CLIP).

CLIP should see what the image is meant to show, not the WebUI's syntax. Steps:

1. strip WebUI syntax: extra-network tags (``<lora:…>``, ``<lyco:…>``, ``<hypernet:…>``),
   ``BREAK``/``AND``, attention ``(word:1.2)``, ``(word)``, ``[word]``, prompt editing
   ``[from:to:when]`` (keeps ``to``, the text present at the end of sampling; ``[a:when]``
   keeps ``a``, ``[a::when]`` drops it), alternation ``[a|b]`` (keeps ``a``); escaped
   brackets ``\\(`` become literal brackets;
2. apply the trigger mapping: each trigger word (whole word) is replaced by its
   description, or removed when the description is empty;
3. the reference's cleanup (LyCORIS-evaluation ``encoding/encode_text_features.py``,
   ``process_line``): strip spaces/commas at the ends, a leading ``of ``, collapse
   whitespace, ``", , "`` to ``", "``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lycoris_eval.errors import InputError
from lycoris_eval.inputs.infotext import _RE_ANY_NETWORK

_ESCAPES = {"\\(": "\x01", "\\)": "\x02", "\\[": "\x03", "\\]": "\x04"}
_NUM = r"\s*-?\d*\.?\d+\s*"
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\[([^\[\]:|]*):([^\[\]:|]*):" + _NUM + r"\]"), r"\2"),
    (re.compile(r"\[([^\[\]:|]*):" + _NUM + r"\]"), r"\1"),
    (re.compile(r"\[([^\[\]|]*)\|[^\[\]]*\]"), r"\1"),
    (re.compile(r"\(([^()]*?):" + _NUM + r"\)"), r"\1"),
    (re.compile(r"\(([^()]*)\)"), r"\1"),
    (re.compile(r"\[([^\[\]]*)\]"), r"\1"),
]


def strip_webui_syntax(prompt: str) -> str:
    text = prompt.replace("\n", " ")
    for escaped, placeholder in _ESCAPES.items():
        text = text.replace(escaped, placeholder)
    text = _RE_ANY_NETWORK.sub(" ", text)
    text = re.sub(r"\bBREAK\b", ",", text)
    text = re.sub(r"(?::" + _NUM + r")?\bAND\b", ",", text)
    while True:
        new = text
        for pattern, repl in _RULES:
            new = pattern.sub(repl, new)
        if new == text:
            break
        text = new
    for escaped, placeholder in _ESCAPES.items():
        text = text.replace(placeholder, escaped[1])
    return text


def apply_trigger_mapping(text: str, mapping: Mapping[str, str]) -> str:
    for word, replacement in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        if not word:
            continue
        text = re.sub(r"(?<!\w)" + re.escape(word) + r"(?!\w)", replacement, text)
    return text


def reference_cleanup(line: str) -> str:
    """The reference's ``process_line`` after replacements (without the trailing newline)."""
    line = line.strip(" ,")
    if line.startswith("of "):
        line = line[3:]
    line = " ".join(line.split())
    return line.replace(", , ", ", ")


def clean_prompt(prompt: str, trigger_mapping: Mapping[str, str] | None = None) -> str:
    text = strip_webui_syntax(prompt)
    text = apply_trigger_mapping(text, trigger_mapping or {})
    text = re.sub(r"\s*,(\s*,)+", ",", text)  # empty items left by removed syntax
    text = re.sub(r"\s+,", ",", text)
    return reference_cleanup(text)


def parse_trigger_mapping(items: list[str]) -> dict[str, str]:
    """``WORD=TEXT`` items (CLI ``--trigger``); ``WORD=`` removes the word."""

    mapping: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--trigger {item!r}: expected WORD=TEXT (use WORD= to remove the word)")
        word, text = item.split("=", 1)
        if not word.strip():
            raise InputError(f"--trigger {item!r}: the trigger word is empty")
        mapping[word.strip()] = text.strip()
    return mapping
