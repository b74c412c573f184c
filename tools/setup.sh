#!/usr/bin/env bash
# Set up .venv pinned like AUTOMATIC1111 WebUI v1.10.1 (constraints/webui-1.10.1.txt).
#   bash tools/setup.sh           the package and what it needs to run (CLI, standalone UI)
#   bash tools/setup.sh --tests   also the test tools, the original DINOv2 code used as a test
#                                 reference, the real WebUI v1.10.1 in realhost/ (from
#                                 ../shared/realhost, when present), real Forge in
#                                 realhost-forge/ (from ../shared/realhost/forge), real reForge in
#                                 realhost-reforge/ (from ../shared/realhost/reforge) and, as root on Debian,
#                                 chromium for the browser tests; and the sweep environment (--sweep)
#   bash tools/setup.sh --sweep   .venv-sweep: the sweep driver (`lycoris-eval sweep`, Ray) in its own
#                                 environment (constraints/sweep.txt): Ray cannot live in the WebUI's
#                                 (it needs protobuf >= 3.20.3, the WebUI pins 3.20.0)
# Safe to run again: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS=0 SWEEP=0
for arg in "$@"; do
    case "$arg" in
        --tests) TESTS=1 SWEEP=1 ;;
        --sweep) SWEEP=1 ;;
        *) echo "usage: bash tools/setup.sh [--tests] [--sweep]" >&2; exit 2 ;;
    esac
done
PYTHON="${PYTHON:-python3}"
if [ "$SWEEP" = 1 ]; then
    [ -x .venv-sweep/bin/python ] || "$PYTHON" -m venv .venv-sweep
    SWEEP_PIP=(.venv-sweep/bin/python -m pip install --quiet --disable-pip-version-check -c constraints/sweep.txt)
    "${SWEEP_PIP[@]}" torch==2.14.1 torchvision==0.29.1
    if [ "$TESTS" = 1 ]; then
        "${SWEEP_PIP[@]}" -e ".[sweep]" "pytest>=7"
    else
        "${SWEEP_PIP[@]}" -e ".[sweep]"
    fi
    # `--sweep` alone builds only the sweep environment
    [ "$TESTS" = 1 ] || exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints/webui-1.10.1.txt)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
if [ "$TESTS" = 1 ]; then
    "${PIP[@]}" -e ".[test]"
    # The original DINOv2 code, only as the independent reference in the equivalence test.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps dinov2==0.0.1.dev2
    # The real WebUI v1.10.1 for the real-host tests (tests/realhost), built offline from the
    # project's shared fixtures when they are there; elsewhere those tests skip with one line.
    # Not in a dot-folder: gradio 3.41 refuses every /file= path with a hidden part (HTTP 403),
    # so a WebUI under one serves none of its JavaScript.
    REALHOST_SETUP=../shared/realhost/setup.sh
    if [ -f "$REALHOST_SETUP" ]; then
        bash "$REALHOST_SETUP" "${LYCORIS_EVAL_REALHOST:-realhost}" >/dev/null
    fi
    # Real Forge (gradio 4.40, pydantic 2): its own folder and its own venv, never shared with
    # the WebUI's (their pins conflict); the same real-host tests run against both.
    FORGE_SETUP=../shared/realhost/forge/setup.sh
    if [ -f "$FORGE_SETUP" ]; then
        bash "$FORGE_SETUP" "${LYCORIS_EVAL_FORGE:-realhost-forge}" >/dev/null
    fi
    # Real reForge (gradio 3.41.2 over the ldm_patched backend; its own pins): its own folder and venv too.
    REFORGE_SETUP=../shared/realhost/reforge/setup.sh
    if [ -f "$REFORGE_SETUP" ]; then
        bash "$REFORGE_SETUP" "${LYCORIS_EVAL_REFORGE:-realhost-reforge}" >/dev/null
    fi
    # The browser test drives Debian's chromium (Playwright is told where it is; nothing is downloaded).
    if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
else
    "${PIP[@]}" -e ".[ui]"
fi
