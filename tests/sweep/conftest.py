"""Sweep fixtures: real WebUI v1.10.1 instances on loopback, each with its own ``--data-dir``
(config, caches, extensions) sharing one build's models, and the sweep run as its command
line in a subprocess (so a test can kill it). Run in the sweep environment:
``.venv-sweep/bin/python -m pytest tests/sweep``.

Without a WebUI build these tests skip with one line; in CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..realhost.host import _IGNORE, AUTH, EXT_NAME, FLAVOURS, ROOT, Build, Host

SMALL_BASE = {"steps": 4, "width": 64, "height": 64}


@pytest.fixture(scope="session")
def build() -> Build:
    flavour = FLAVOURS["webui"]
    if not flavour.built():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the sweep tests: {flavour.setup_hint}")
        pytest.skip(flavour.setup_hint)
    return Build(flavour, flavour.dest())


def start_webui(build: Build, data_dir: Path, extension: bool = False) -> Host:
    """One WebUI (API only, ``--api-auth``) with its own data folder and the build's models;
    with ``extension``, ours is in its ``extensions/`` (copied as a user installs it; the
    build's environment already has its dependencies)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if extension and not (data_dir / "extensions" / EXT_NAME).exists():
        shutil.copytree(ROOT, data_dir / "extensions" / EXT_NAME, ignore=_IGNORE)
    extra = ("--data-dir", str(data_dir), "--models-dir", str(build.root / "models"))
    return Host(build, ui=False, auth=AUTH, extra=extra).start()


@pytest.fixture(scope="session")
def webuis(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Host]]:
    """Two WebUIs for the whole session: the first with our extension, the second without."""
    root = tmp_path_factory.mktemp("webuis")
    hosts: list[Host] = []
    try:
        hosts.append(start_webui(build, root / "a", extension=True))
        hosts.append(start_webui(build, root / "b"))
        yield hosts
    finally:
        for host in hosts:
            host.stop()


def url_of(host: Host) -> str:
    return f"http://{AUTH[0]}:{AUTH[1]}@127.0.0.1:{host.port}"


def write_spec(folder: Path, build: Build, seeds: int, run_id: str, **extra: Any) -> Path:
    lora, loha, _lokr = build.adapters
    spec = {
        "checkpoints": list(build.checkpoints),
        "adapters": [lora, loha],
        "weights": [0.5, 1.0],
        "prompts": ["[style] a castle on a hill", "a cat"],
        "seeds": {"count": seeds, "first": 100},
        "base": SMALL_BASE,
        "run_id": run_id,
        **extra,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.json"
    path.write_text(json.dumps(spec))
    return path


def sweep_command(spec: Path, out: Path, hosts: list[Host], *extra: str) -> list[str]:
    urls = [arg for host in hosts for arg in ("--webui", url_of(host))]
    return [
        sys.executable,
        "-m",
        "lycoris_eval",
        "sweep",
        str(spec),
        *urls,
        "--out",
        str(out),
        "--num-cpus",
        "2",
        "--quiet",
        "--chunk-size",
        "2",
        *extra,
    ]


def sweep_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DISABLE_USAGE_STATS": "1", "LYCORIS_EVAL_OFFLINE": "1"}


def run_sweep(
    spec: Path, out: Path, hosts: list[Host], *extra: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        sweep_command(spec, out, hosts, *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=sweep_env(),
        cwd=ROOT,
    )


def start_sweep(spec: Path, out: Path, hosts: list[Host], log: Path) -> subprocess.Popen:
    """The sweep in its own process group (its local Ray's processes included), to be killed."""
    with open(log, "wb") as handle:
        return subprocess.Popen(
            sweep_command(spec, out, hosts),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=sweep_env(),
            cwd=ROOT,
            start_new_session=True,
        )


def shard_lines(run_dir: Path) -> int:
    """Lines the workers have written so far (all shards)."""
    return sum(len(p.read_text().splitlines()) for p in (run_dir / "sweep").glob("cells-*.jsonl"))


def wait_lines(run_dir: Path, at_least: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / "sweep").is_dir() and (n := shard_lines(run_dir)) >= at_least:
            return n
        assert proc.poll() is None, f"the sweep ended (rc {proc.returncode}) before {at_least} images"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} images after {timeout} s")


def wait_quiet(run_dir: Path, seconds: float = 3.0, timeout: float = 60) -> int:
    """Until no worker writes for ``seconds`` (a killed driver's actors finish their image, then exit)."""
    deadline = time.monotonic() + timeout
    last, since = shard_lines(run_dir), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = shard_lines(run_dir)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return now
    raise AssertionError("workers kept writing")


def cells(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "cells.jsonl").read_text().splitlines()]


def summary(run_dir: Path) -> dict[str, Any]:
    """The newest sweep summary of the run."""
    latest = sorted((run_dir / "sweep").glob("summary-*.json"), key=lambda p: p.stat().st_mtime_ns)[-1]
    return json.loads(latest.read_text())
