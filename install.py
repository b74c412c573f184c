"""WebUI installer hook: installs this extension's missing dependencies.

The WebUI runs this file at start-up (not with ``--skip-install``). Dependencies are
declared once, in ``pyproject.toml``; torch and torchvision are never touched (the host
owns them), and packages the host already has at a satisfying version are left alone.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
HOST_OWNED = {"torch", "torchvision"}


def declared_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # the WebUI runs on 3.10: read the one list we need
        match = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
        if not match:
            raise RuntimeError(f"no [project] dependencies list in {pyproject}") from None
        return re.findall(r'"([^"]+)"', match.group(1))
    return list(tomllib.loads(text)["project"]["dependencies"])


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].strip()


def satisfied(requirement: str, is_installed) -> bool:
    name = requirement_name(requirement)
    if not is_installed(name):
        return False
    try:
        from importlib.metadata import version

        from packaging.requirements import Requirement

        return Requirement(requirement).specifier.contains(version(name), prereleases=True)
    except Exception:  # noqa: BLE001 - cannot tell: trust the host's copy
        return True


def main() -> None:
    import launch  # the WebUI's module, only present inside the WebUI

    args = getattr(launch, "args", None)
    if "--skip-install" in sys.argv or getattr(args, "skip_install", False):
        return
    for requirement in declared_requirements():
        if requirement_name(requirement) in HOST_OWNED:
            continue
        if not satisfied(requirement, launch.is_installed):
            launch.run_pip(f'install "{requirement}"', f"sd-webui-lycoris-eval requirement: {requirement}")


if __name__ == "__main__" or "launch" in sys.modules:
    main()
