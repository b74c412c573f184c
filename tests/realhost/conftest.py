"""Real-host fixtures. Without ``LYCORIS_EVAL_REALHOST`` (a folder built by
``../shared/realhost/setup.sh``) these tests are skipped with one line; in CI they must run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .host import ENV, HOST_SETTINGS, Host, install_extension, realhost_dest, write_settings, write_weights

SKIP_REASON = (
    "real WebUI not built: `bash tools/setup.sh --tests` builds it in realhost/ "
    f"(or bash ../shared/realhost/setup.sh DIR and {ENV}=DIR)"
)


def pytest_collection_modifyitems(config, items):
    dest = realhost_dest()
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realhost)
            missing = dest is None or not (dest / "a1111" / "launch.py").is_file()
            if missing and not os.environ.get("CI"):  # in CI the fixture fails instead
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def realhost_dir() -> Path:
    dest = realhost_dest()
    if dest is None or not (dest / "a1111" / "launch.py").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-host tests: {SKIP_REASON}")
        pytest.skip(SKIP_REASON)
    install_extension(dest)
    write_settings(dest, HOST_SETTINGS)
    # an adapter file the Lora extension lists but cannot load (a truncated download)
    (dest / "a1111" / "models" / "Lora" / "broken_lora.safetensors").write_bytes(
        (10**9).to_bytes(8, "little") + b'{"truncated'
    )
    write_weights(dest / "a1111" / "models" / "lycoris-eval")
    return dest


@pytest.fixture(scope="session")
def host(realhost_dir: Path):
    """The WebUI with page and API (``--ui``), ``--api-auth`` on; shared by the session."""
    running = Host(realhost_dir, ui=True).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def api(host: Host):
    with host.client() as client:
        yield client
