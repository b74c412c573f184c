"""extensions-builtin/Lora/networks.py (v1.10.1), reduced: what's on disk, what's loaded.

``PATCH_LAYOUT`` says how the host records what a network changed, read by the extension's
``webui/patches.py`` probes:

* ``"webui"`` (v1.10.1): ``Network.modules`` holds the layers the file's keys matched.
* ``"ldm_patched"`` (reForge ``3b56b268``, ``extensions-builtin/Lora/networks.py``
  ``load_networks`` + ``ldm_patched/modules/sd.py`` ``load_lora_for_models``): ``modules``
  stays ``{}``; the model gets ``current_lora_hash`` (``str([[filename, unet_w, te_w], ...])``),
  ``forge_objects_original`` (unpatched patchers) and ``forge_objects_after_applying_lora``
  (clones whose ``.patches`` hold one entry per matched weight key).
* ``"unknown"``: a host with ``forge_objects`` whose patchers none of the probes knows.
"""

import re
import types

available_networks = {}
available_network_aliases = {}
loaded_networks = []
BROKEN = set()  # names whose loading raises (the real one logs and skips the network)
MISMATCHED = set()  # names (or (checkpoint model_name, name)) whose keys match no layer: loaded, changing nothing
PATCH_LAYOUT = "webui"


class NetworkOnDisk:
    def __init__(self, name, filename):
        self.name = name
        self.filename = filename
        self.metadata = {}
        self.is_safetensors = filename.lower().endswith(".safetensors")
        self.alias = name
        self.hash = None
        self.shorthash = None


class Network:
    def __init__(self, name, network_on_disk):
        self.name = name
        self.network_on_disk = network_on_disk
        self.te_multiplier = 1.0
        self.unet_multiplier = 1.0
        self.modules = {}  # key -> network module, as in v1.10.1's network.Network


def list_available_networks():
    return None


def add(name, filename):
    available_networks[name] = NetworkOnDisk(name, filename)
    available_network_aliases[name] = available_networks[name]


def activate(prompt):
    """Like extra_networks activation: load what is found, skip (and report) the rest."""
    loaded_networks.clear()
    missing = []
    for name, args in re.findall(r"<(?:lora|lyco):([^:>]+)((?::[^:>]+)*)>", prompt):
        on_disk = available_networks.get(name) or available_network_aliases.get(name)
        if on_disk is None or name in BROKEN:
            missing.append(name)
            continue
        net = Network(name, on_disk)
        net.matched = name not in MISMATCHED and (_checkpoint(), name) not in MISMATCHED
        if net.matched and PATCH_LAYOUT == "webui":
            net.modules["lora_unet_down_blocks_0_attentions_0_proj_in"] = object()
        values = [a for a in args.split(":") if a]
        net.te_multiplier = net.unet_multiplier = float(values[0]) if values else 1.0
        loaded_networks.append(net)
    if PATCH_LAYOUT != "webui":
        _patch_model(loaded_networks)
    return missing


def _checkpoint():
    from modules import shared

    return getattr(getattr(shared.sd_model, "sd_checkpoint_info", None), "model_name", None)


def _patcher(patches):
    if PATCH_LAYOUT == "ldm_patched":
        return types.SimpleNamespace(patches=patches)
    return types.SimpleNamespace(weights=patches)  # "unknown": no record any probe knows


def _objects(patches):
    return types.SimpleNamespace(unet=_patcher(dict(patches)), clip=types.SimpleNamespace(patcher=_patcher({})))


def _patch_model(nets):
    from modules import shared

    model = shared.sd_model
    model.forge_objects_original = _objects({})
    patches = {}
    for net in nets:
        if net.matched:
            key = "diffusion_model.input_blocks.1.1.proj_in.weight"
            patches.setdefault(key, []).append((net.unet_multiplier, "lora", 1.0, None, None))
    model.forge_objects_after_applying_lora = _objects(patches)
    model.forge_objects = _objects(patches)
    if PATCH_LAYOUT == "ldm_patched":
        model.current_lora_hash = str([[n.network_on_disk.filename, n.unet_multiplier, n.te_multiplier] for n in nets])
