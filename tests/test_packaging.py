"""Layout rules: install.py, the thin script, the core never importing the WebUI, ruff."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _fake_launch(monkeypatch, installed: dict[str, str], skip: bool = False):
    calls: list[str] = []
    launch = types.ModuleType("launch")
    launch.args = types.SimpleNamespace(skip_install=skip)
    launch.is_installed = lambda name: name in installed
    launch.run_pip = lambda command, desc=None, live=False: calls.append(command)
    monkeypatch.setitem(sys.modules, "launch", launch)
    return calls


def test_install_reads_pyproject_and_skips_host_owned(monkeypatch):
    calls = _fake_launch(monkeypatch, installed={"numpy": "1.26.2", "Pillow": "9.5.0"})
    monkeypatch.setattr(sys, "argv", ["launch.py"])
    runpy.run_path(str(ROOT / "install.py"), run_name="install")
    installed = " ".join(calls)
    assert "torch" not in installed.replace("open-clip-torch", "")
    assert 'install "diskcache>=5.6"' in calls and 'install "clean-fid>=0.1.35"' in calls
    assert not any("numpy" in c for c in calls)


def test_install_honours_skip_install(monkeypatch):
    calls = _fake_launch(monkeypatch, installed={}, skip=True)
    runpy.run_path(str(ROOT / "install.py"), run_name="install")
    assert calls == []
    calls = _fake_launch(monkeypatch, installed={})
    monkeypatch.setattr(sys, "argv", ["launch.py", "--skip-install"])
    runpy.run_path(str(ROOT / "install.py"), run_name="install")
    assert calls == []


def test_install_parses_without_tomllib(monkeypatch):
    sys.modules.pop("install_mod", None)
    module = runpy.run_path(str(ROOT / "install.py"), run_name="install_mod")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10
    parsed = module["declared_requirements"]()
    monkeypatch.undo()
    assert parsed == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_the_webui():
    """Only the webui/ sub-package touches the WebUI; only it and tab/ touch gradio; fastapi only api/."""
    allowed = {
        "modules": {"webui"},
        "launch": set(),
        "networks": {"webui"},
        "gradio": {"webui", "tab"},
        "fastapi": {"api"},
        "ray": {"sweep"},  # and only its driver and scoring modules: test_ray_only_in_the_sweep_driver
    }
    offenders = [
        f"{p.relative_to(ROOT)} imports {name}"
        for p in (ROOT / "lycoris_eval").rglob("*.py")
        for name in allowed
        if name in _imports(p) and p.relative_to(ROOT / "lycoris_eval").parts[0] not in allowed[name]
    ]
    assert offenders == []


def test_ray_only_in_the_sweep_driver():
    """Ray lives in its own environment (the `sweep` extra): only the sweep's driver and scoring
    import it, and the CLI imports those only when the sweep command runs."""
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lycoris_eval").rglob("*.py") if "ray" in _imports(p))
    assert users == ["lycoris_eval/sweep/driver.py", "lycoris_eval/sweep/scoring.py"]
    code = "import sys, lycoris_eval.cli.main as c; c.build_parser().parse_args(['sweep', 's.json', '--webui', 'http://x']); print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_room_per_job():
    """The house rule (issue #10): a module over 400 lines, a class over 250 or a function
    over 150 is a sign that a file does several jobs; split it instead of raising a limit."""
    too_big = []
    for p in (ROOT / "lycoris_eval").rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        name = p.relative_to(ROOT)
        if text.count("\n") > 400:
            too_big.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            limit = 250 if isinstance(node, ast.ClassDef) else 150
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                size = node.end_lineno - node.lineno + 1
                if size > limit:
                    too_big.append(f"{name}: {node.name} is {size} lines")
    assert too_big == []


def test_importing_the_package_loads_no_model_library():
    code = "import sys, lycoris_eval, lycoris_eval.scoring.pipeline, lycoris_eval.cli.main; print(sorted(m for m in ('torch','open_clip','cleanfid','skimage') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scripts_folder_is_one_thin_entry():
    files = sorted(p.name for p in (ROOT / "scripts").glob("*.py"))
    assert files == ["lycoris_eval_entry.py"]
    tree = ast.parse((ROOT / "scripts" / files[0]).read_text())
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


@pytest.mark.parametrize("tool", [["ruff", "check", "."], ["ruff", "format", "--check", "."]])
def test_ruff_clean(tool):
    result = subprocess.run([sys.executable, "-m", *tool], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_error_policy():
    """Every exception class lives in errors.py, and the API/CLI map them there, by class."""
    from lycoris_eval.errors import (
        BusyError,
        HostImageError,
        InputError,
        MissingWeightsError,
        NotFoundError,
        PathRefused,
        SpecError,
        Unauthorized,
        exit_code,
        http_status,
    )

    elsewhere = [
        f"{p.relative_to(ROOT)}:{node.name}"
        for p in (ROOT / "lycoris_eval").rglob("*.py")
        if p.name != "errors.py"
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and any(getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception")) for b in node.bases)
    ]
    assert elsewhere == []
    cases = {
        SpecError("base.steps", "bad"): 422,
        InputError("x"): 422,
        MissingWeightsError("x"): 422,
        PathRefused("x"): 403,
        NotFoundError("x"): 404,
        Unauthorized("x"): 401,
        BusyError("x"): 409,
        HostImageError("x"): 500,
        ValueError("a bug"): 500,
    }
    assert {type(e).__name__: http_status(e) for e in cases} == {type(e).__name__: s for e, s in cases.items()}
    assert exit_code(SpecError("f", "m")) == 2 and exit_code(KeyError("bug")) == 1
    assert str(SpecError("base.steps", "-1 is outside 1..150")) == "base.steps: -1 is outside 1..150"
