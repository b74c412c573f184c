"""opts, state, cmd_opts as in modules/shared.py + shared_state.py (v1.10.1), reduced."""

import types


class OptionInfo:
    def __init__(
        self,
        default=None,
        label="",
        component=None,
        component_args=None,
        onchange=None,
        section=None,
        refresh=None,
        **kwargs,
    ):
        self.default = default
        self.label = label
        self.section = section


class Options:
    def __init__(self):
        object.__setattr__(self, "data", {})
        object.__setattr__(self, "data_labels", {})

    def add_option(self, key, info):
        self.data_labels[key] = info
        self.data.setdefault(key, info.default)

    def get_default(self, key):
        info = self.data_labels.get(key)
        return None if info is None else info.default

    def set(self, key, value, is_api=False, run_callbacks=True):
        self.data[key] = value
        return True

    def __setattr__(self, key, value):
        self.data[key] = value

    def __getattr__(self, item):
        data = object.__getattribute__(self, "data")
        if item in data:
            return data[item]
        labels = object.__getattribute__(self, "data_labels")
        if item in labels:
            return labels[item].default
        raise AttributeError(item)


class State:
    def __init__(self):
        self.interrupted = False
        self.skipped = False
        self.stopping_generation = False
        self.job = ""
        self.job_no = 0
        self.job_count = 0
        self.processing_has_refined_job_count = False
        self.textinfo = None
        self.sampling_step = 0
        self.history = []

    def interrupt(self):
        self.interrupted = True

    def skip(self):
        self.skipped = True

    def nextjob(self):
        self.job_no += 1
        self.sampling_step = 0
        self.history.append(("nextjob", self.job_no, self.job))

    def begin(self, job="(unknown)"):
        self.interrupted = False
        self.skipped = False
        self.job_count = -1
        self.job_no = 0

    def end(self):
        self.job = ""
        self.job_count = 0


class TotalTQDM:
    def __init__(self):
        self.total = None

    def updateTotal(self, new_total):  # noqa: N802 - the WebUI's name
        self.total = new_total


opts = Options()
opts.data.update(
    {
        "sd_model_checkpoint": None,
        "outdir_samples": "",
        "outdir_txt2img_samples": "outputs/txt2img-images",
        "return_grid": True,
        "samples_save": True,
        "add_version_to_infotext": True,
    }
)
state = State()
cmd_opts = types.SimpleNamespace(lowvram=False, medvram=False, api=False, api_auth=None, nowebui=False)
total_tqdm = TotalTQDM()
sd_model = None
