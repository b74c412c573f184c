"""checkpoints_list / checkpoint_aliases / reload_model_weights as in v1.10.1, without models."""

import os

from modules import shared

checkpoints_list = {}
checkpoint_aliases = {}
LOADS = []  # titles loaded, in order (a real load costs seconds)


class CheckpointInfo:
    def __init__(self, filename, sha256):
        self.filename = filename
        name = os.path.basename(filename)
        self.name = name
        self.name_for_extra = os.path.splitext(name)[0]
        self.model_name = os.path.splitext(name.replace("/", "_").replace("\\", "_"))[0]
        self.hash = sha256[:8]
        self.sha256 = sha256
        self.shorthash = sha256[:10]
        self.title = f"{self.name} [{self.shorthash}]"
        self.short_title = f"{self.name_for_extra} [{self.shorthash}]"
        self.ids = [
            self.hash,
            self.model_name,
            self.title,
            name,
            self.name_for_extra,
            f"{name} [{self.hash}]",
            self.shorthash,
            self.sha256,
            f"{self.name} [{self.sha256}]",
        ]

    def register(self):
        checkpoints_list[self.title] = self
        for id_ in self.ids:
            checkpoint_aliases[id_] = self


class FakeModel:
    def __init__(self, info):
        self.sd_checkpoint_info = info
        self.sd_model_hash = info.shorthash


def add_checkpoint(filename, sha256):
    info = CheckpointInfo(filename, sha256)
    info.register()
    if shared.opts.sd_model_checkpoint is None:
        shared.opts.sd_model_checkpoint = info.title
    return info


def list_models():
    return None


def get_closet_checkpoint_match(search_string):
    if not search_string:
        return None
    info = checkpoint_aliases.get(search_string)
    if info is not None:
        return info
    found = sorted([i for i in checkpoints_list.values() if search_string in i.title], key=lambda x: len(x.title))
    return found[0] if found else None


def select_checkpoint():
    info = checkpoint_aliases.get(shared.opts.sd_model_checkpoint)
    if info is not None:
        return info
    return next(iter(checkpoints_list.values()), None)


def reload_model_weights(sd_model=None, info=None, forced_reload=False):
    info = info or select_checkpoint()
    current = getattr(shared.sd_model, "sd_checkpoint_info", None)
    if current is not None and current.title == info.title and not forced_reload:
        return shared.sd_model
    LOADS.append(info.title)
    shared.sd_model = FakeModel(info)
    return shared.sd_model


def checkpoint_tiles(use_short=False):
    return [x.short_title if use_short else x.title for x in checkpoints_list.values()]
