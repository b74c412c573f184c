"""sd-webui-lycoris-eval: score LoRA/LyCORIS adapters with the LyCORIS paper's metrics.

The core (this package minus ``webui/``) never imports the WebUI's ``modules``.
Nothing heavy is imported or loaded here: models load lazily when first needed.
"""

__version__ = "0.1.0"
