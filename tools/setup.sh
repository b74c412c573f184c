#!/usr/bin/env bash
# Set up .venv for the standalone CLI and the tests, pinned like AUTOMATIC1111 WebUI v1.10.1
# (constraints/webui-1.10.1.txt). Safe to run again: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser test drives Debian's chromium (Playwright is told where it is; nothing is downloaded).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints/webui-1.10.1.txt)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" -e ".[test]"
# The original DINOv2 code, only as the independent reference in the equivalence test.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps dinov2==0.0.1.dev2
