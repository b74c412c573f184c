"""modules/api/api.py (v1.10.1), reduced: the ``Api`` object that owns ``/sdapi/v1/txt2img``
and the default script arguments its ``text2imgapi`` gives every API-made ``p``."""

from modules import scripts


class Api:
    def __init__(self, app):
        self.app = app
        self.default_script_arg_txt2img = []
        runner = scripts.scripts_txt2img
        if not self.default_script_arg_txt2img:
            self.default_script_arg_txt2img = self.init_default_script_args(runner)
        app.add_api_route("/sdapi/v1/txt2img", self.text2imgapi, methods=["POST"])

    def init_default_script_args(self, script_runner):
        last = max([1] + [s.args_to or 0 for s in script_runner.scripts])
        args = [None] * last
        args[0] = 0
        return args

    def text2imgapi(self):
        raise NotImplementedError("the fake host does not serve txt2img over HTTP")
