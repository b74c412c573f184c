"""Real-host fixtures, run against each real host: the WebUI v1.10.1, Forge and reForge (the
``build`` fixture is parametrized, so every test that uses a host runs once per host,
one host at a time). A host that is not built skips its tests with one line; in CI
(``CI`` set) they fail instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from .host import (
    FLAVOURS,
    HOST_SETTINGS,
    Build,
    Host,
    install_extension,
    write_mismatched_lora,
    write_sdxl_lora,
    write_settings,
    write_weights,
)

HOSTS = tuple(FLAVOURS)


def _flavour_of(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "build" in callspec.params:
        return callspec.params["build"]
    if "realhost_dir" in getattr(item, "fixturenames", ()):
        return "webui"
    return None


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.realhost)
        name = _flavour_of(item)
        if name is not None:
            item.add_marker(getattr(pytest.mark, name))
            if not FLAVOURS[name].built() and not os.environ.get("CI"):  # in CI the fixture fails instead
                item.add_marker(pytest.mark.skip(reason=FLAVOURS[name].setup_hint))


def _require(name: str) -> Path:
    flavour = FLAVOURS[name]
    if not flavour.built():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-host tests: {flavour.setup_hint}")
        pytest.skip(flavour.setup_hint)
    dest = flavour.dest()
    assert dest is not None
    return dest


@pytest.fixture(scope="session")
def realhost_dir() -> Path:
    """The WebUI v1.10.1 build folder (the sources the fake host is checked against)."""
    return _require("webui")


@pytest.fixture(scope="session", params=HOSTS)
def build(request) -> Build:
    """A real host, built and with the extension installed as a user installs it."""
    flavour = FLAVOURS[request.param]
    built = Build(flavour, _require(flavour.name))
    install_extension(built)
    write_settings(built, HOST_SETTINGS)
    # an adapter file the Lora extension lists but cannot load (a truncated download)
    (built.root / "models" / "Lora" / "broken_lora.safetensors").write_bytes(
        (10**9).to_bytes(8, "little") + b'{"truncated'
    )
    write_mismatched_lora(built.root / "models" / "Lora" / "mismatch_lora.safetensors")
    write_sdxl_lora(built.root / "models" / "Lora" / "crossfamily-sdxl.safetensors")
    write_weights(built.root / "models" / "lycoris-eval")
    return built


@pytest.fixture(scope="session")
def host(build: Build):
    """The host with page and API (``--ui``), ``--api-auth`` on; shared by its tests."""
    running = Host(build, ui=True).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def api(host: Host):
    with host.client() as client:
        yield client


@pytest.fixture(scope="module")
def references(host) -> str:
    """Three reference images inside the host's allowed roots (its outputs folder)."""
    folder = host.root / "outputs" / "lycoris-eval-refs" / "ink"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        Image.effect_noise((64, 64), 30 + 10 * i).convert("RGB").save(folder / f"ref-{i}.png")
    return str(folder)
