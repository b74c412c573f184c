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
        """v1.10.1 ``Options.set``: unchanged values return False; otherwise the option's
        onchange runs (for ``sd_model_checkpoint``: ``wrap_queued_call(reload_model_weights)``,
        which takes the non-reentrant queue lock)."""
        old = self.data.get(key, None)
        if old == value:
            return False
        self.data[key] = value
        info = self.data_labels.get(key)
        if run_callbacks and info is not None and info.onchange is not None:
            try:
                info.onchange()
            except Exception:
                self.data[key] = old
                raise
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


def _reload_under_queue_lock():
    """``wrap_queued_call(lambda: sd_models.reload_model_weights())``; a caller that already
    holds the lock deadlocks in the real host: here it raises after a short wait instead."""
    from modules import call_queue, sd_models

    if not call_queue.queue_lock.acquire(timeout=2):
        raise RuntimeError("deadlock: opts.set('sd_model_checkpoint') under the held queue_lock")
    try:
        sd_models.reload_model_weights()
    finally:
        call_queue.queue_lock.release()


opts = Options()
opts.add_option(
    "sd_model_checkpoint", OptionInfo(None, "Stable Diffusion checkpoint", onchange=_reload_under_queue_lock)
)
opts.add_option("sd_lora", OptionInfo("None", "Add network to prompt"))
opts.data.update(
    {
        "sd_model_checkpoint": None,
        "outdir_samples": "",
        "outdir_txt2img_samples": "outputs/txt2img-images",
        "return_grid": True,
        "grid_only_if_multiple": True,
        "samples_save": True,
        "add_version_to_infotext": True,
    }
)
state = State()
cmd_opts = types.SimpleNamespace(lowvram=False, medvram=False, api=False, api_auth=None, nowebui=False)
total_tqdm = TotalTQDM()
sd_model = None
