"""The fake host (tests/fake_webui) is a contract: every name it offers must exist in the
real WebUI v1.10.1 with the same parameters, read from the real sources with ``ast``; the
next divergence fails here instead of hiding a bug."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

FAKE = Path(__file__).resolve().parents[1] / "fake_webui"


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)


def _methods(cls: ast.ClassDef) -> dict[str, list[str]]:
    return {
        n.name: [a.arg for a in n.args.args + n.args.kwonlyargs]
        for n in cls.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _fields(cls: ast.ClassDef) -> set[str]:
    """Dataclass fields (annotated names) of a class body."""
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def _real(realhost_dir: Path, rel: str) -> ast.Module:
    return ast.parse((realhost_dir / "a1111" / rel).read_text(encoding="utf-8"))


def test_processing_fields_and_processed(realhost_dir, fake_webui):
    fake = fake_webui.processing

    real = _real(realhost_dir, "modules/processing.py")
    real_fields = _fields(_class(real, "StableDiffusionProcessing")) | _fields(
        _class(real, "StableDiffusionProcessingTxt2Img")
    )
    fake_params = set(inspect.signature(fake.StableDiffusionProcessing.__init__).parameters) - {"self"}
    assert fake_params <= real_fields, f"not txt2img fields in v1.10.1: {sorted(fake_params - real_fields)}"
    # p.scripts / p.script_args are properties over init=False fields: not constructor arguments
    assert {"scripts_value", "script_args_value", "override_settings_restore_afterwards", "comments"} <= real_fields
    assert not {"scripts", "script_args"} & fake_params
    real_processed = _methods(_class(real, "Processed"))["__init__"]
    fake_processed = list(inspect.signature(fake.Processed.__init__).parameters)
    assert fake_processed == real_processed
    real_funcs = {n.name for n in real.body if isinstance(n, ast.FunctionDef)}
    assert {"process_images", "process_images_inner", "fix_seed", "create_infotext"} <= real_funcs


def test_script_api_and_runner(realhost_dir, fake_webui):
    fake = fake_webui.scripts

    real = _real(realhost_dir, "modules/scripts.py")
    real_script = _methods(_class(real, "Script"))
    for name, member in vars(fake.Script).items():
        if callable(member) and not name.startswith("__"):
            assert name in real_script, f"Script.{name} is not in v1.10.1"
            named = [
                n
                for n, prm in inspect.signature(member).parameters.items()
                if prm.kind not in (prm.VAR_POSITIONAL, prm.VAR_KEYWORD)
            ]
            assert named == real_script[name], f"Script.{name}{named} differs from v1.10.1 {real_script[name]}"
    runner = _methods(_class(real, "ScriptRunner"))
    assert {"before_process", "initialize_scripts"} <= set(runner)
    assigned = {t.id for n in real.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assigned |= {n.target.id for n in real.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    assert {"scripts_txt2img", "scripts_data"} <= assigned


def test_xyz_axis_option_and_draw_grid(realhost_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_xyz_contract", FAKE / "xyz_grid.py")
    real = _real(realhost_dir, "scripts/xyz_grid.py")
    real_axis = _methods(_class(real, "AxisOption"))["__init__"]
    fake_src = ast.parse((FAKE / "xyz_grid.py").read_text())
    fake_axis = _methods(_class(fake_src, "AxisOption"))["__init__"]
    assert fake_axis == real_axis
    real_draw = next(n for n in real.body if isinstance(n, ast.FunctionDef) and n.name == "draw_xyz_grid")
    fake_draw = next(n for n in fake_src.body if isinstance(n, ast.FunctionDef) and n.name == "draw_xyz_grid")
    assert [a.arg for a in fake_draw.args.args] == [a.arg for a in real_draw.args.args][: len(fake_draw.args.args)]
    assert spec is not None


def test_xyz_prompt_sr_as_upstream(realhost_dir):
    """The fake's Prompt S/R axis: the same option (the value itself as its label) and the
    same replacement in prompt and negative prompt as v1.10.1's."""
    real = _real(realhost_dir, "scripts/xyz_grid.py")
    fake = ast.parse((FAKE / "xyz_grid.py").read_text())

    def option(tree: ast.Module) -> str:
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "AxisOption"]
        return next(ast.dump(c) for c in calls if c.args and getattr(c.args[0], "value", None) == "Prompt S/R")

    def function(tree: ast.Module, name: str) -> str:
        return ast.dump(next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name))

    assert option(fake) == option(real)
    assert function(fake, "apply_prompt") == function(real, "apply_prompt")
    assert function(fake, "format_value") == function(real, "format_value")


def test_lora_extension_names_and_api(realhost_dir):
    real = _real(realhost_dir, "extensions-builtin/Lora/networks.py")
    assigned = {t.id for n in real.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    funcs = {n.name for n in real.body if isinstance(n, ast.FunctionDef)}
    assert {"available_networks", "loaded_networks"} <= assigned and "list_available_networks" in funcs
    api = _methods(_class(_real(realhost_dir, "modules/api/api.py"), "Api"))
    fake_api = _methods(_class(ast.parse((FAKE / "modules" / "api" / "api.py").read_text()), "Api"))
    assert api["init_default_script_args"] == fake_api["init_default_script_args"]
    shared_options = (realhost_dir / "a1111" / "modules" / "options.py").read_text()
    assert "def set(self, key, value, is_api=False, run_callbacks=True)" in shared_options
