"""Script base class and scripts_data as in modules/scripts.py (v1.10.1), reduced."""

from collections import namedtuple

AlwaysVisible = object()
ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data = []


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    group = None
    infotext_fields = None
    paste_field_names = None
    api_info = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def run(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass


class ScriptRunner:
    """Only what p.scripts offers to process_images: always-on hooks."""

    def __init__(self, alwayson=()):
        self.alwayson_scripts = list(alwayson)
        self.scripts = list(alwayson)
        self.calls = []

    def initialize_scripts(self, is_img2img):
        pass

    def before_process(self, p):
        for script in self.alwayson_scripts:
            self.calls.append(("before_process", p.prompt))
            script.before_process(p)


# the runners the host builds at start-up (modules/scripts.py: load_scripts)
scripts_txt2img = ScriptRunner()
scripts_img2img = ScriptRunner()
