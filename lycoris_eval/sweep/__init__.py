"""Scale-out sweeps: one grid spec across N WebUIs through their HTTP API, coordinated by Ray.

``lycoris-eval sweep SPEC.json --webui URL [--webui URL ...]``. Ray lives in its own
environment (the ``sweep`` extra; it cannot share the WebUI's protobuf pin), so nothing in
this package imports ``ray`` at module level except :mod:`.driver` and :mod:`.scoring`,
which the CLI imports only when the ``sweep`` command runs.

The output is an ordinary run folder (``manifest.json``, ``images/``, ``cells.jsonl``):
:func:`lycoris_eval.scoring.pipeline.evaluate` scores it unchanged.
"""
