"""WebUI entry point. The WebUI executes every top-level ``*.py`` in ``scripts/`` with the
extension's root on ``sys.path`` and registers the ``Script`` subclasses it finds in the
module's namespace. All logic lives in the ``lycoris_eval`` package; nothing heavy is
imported or loaded here (scoring models load lazily, when used)."""

from lycoris_eval.webui import LycorisEvalGridScript, setup  # noqa: F401

setup()
