"""extensions-builtin/Lora/networks.py (v1.10.1), reduced: what's on disk, what's loaded."""

import re

available_networks = {}
available_network_aliases = {}
loaded_networks = []
BROKEN = set()  # names whose loading raises (the real one logs and skips the network)
MISMATCHED = set()  # names whose keys match no layer: loaded, but with no module (the real one logs at debug)


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
        if name not in MISMATCHED:
            net.modules["lora_unet_down_blocks_0_attentions_0_proj_in"] = object()
        values = [a for a in args.split(":") if a]
        net.te_multiplier = net.unet_multiplier = float(values[0]) if values else 1.0
        loaded_networks.append(net)
    return missing
