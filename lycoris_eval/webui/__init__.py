"""The only code that imports the WebUI's ``modules`` (and the Lora extension's
``networks``, the built-in X/Y/Z plot), lazily, inside the WebUI: one file per host
concern. Imported by ``scripts/lycoris_eval_entry.py``; the core never imports it.

* :mod:`.settings` — options, paths, the one ``EvalConfig`` builder;
* :mod:`.host` — the processing pipeline as a grid runner ``Host``, ``base`` checks;
* :mod:`.script` — the **LyCORIS Eval grid** Script;
* :mod:`.xyz` — the X/Y/Z plot's axes and cell capture;
* :mod:`.services` — what the HTTP API and the Evaluate tab get from the WebUI.

Modelled on AUTOMATIC1111 stable-diffusion-webui v1.10.1; checked against it by
``tests/realhost``.
"""

from __future__ import annotations

from modules import script_callbacks

from lycoris_eval.webui.script import ARG_NAMES, LycorisEvalGridScript
from lycoris_eval.webui.services import api_run_grid, on_app_started, on_ui_tabs, ui_services
from lycoris_eval.webui.settings import on_ui_settings
from lycoris_eval.webui.xyz import register_xyz_axes
from lycoris_eval.webui.xyz_capture import last_xyz


def setup() -> None:
    """Called once at import by the entry script: settings and axes now (API-only mode never
    runs ``on_ui_settings`` nor builds the X/Y/Z UI), and again before the UI and at app
    start in case the X/Y/Z plot loads after us."""
    on_ui_settings()  # registered now so /sdapi/v1/options can set them under --nowebui too
    script_callbacks.on_ui_settings(on_ui_settings)
    script_callbacks.on_app_started(on_app_started)
    script_callbacks.on_ui_tabs(on_ui_tabs)
    if not register_xyz_axes():
        script_callbacks.on_before_ui(register_xyz_axes)
        script_callbacks.on_app_started(lambda *_: register_xyz_axes())


__all__ = ["ARG_NAMES", "LycorisEvalGridScript", "api_run_grid", "last_xyz", "on_app_started", "setup", "ui_services"]
