"""WebUI entry point. The WebUI executes every top-level ``*.py`` in ``scripts/`` with the
extension's root on ``sys.path``; all logic lives in the ``lycoris_eval`` package, and
nothing heavy is imported or loaded here (scoring models load lazily, when used)."""

import lycoris_eval  # noqa: F401  (the grid Script and the tab register from the package)
