"""modules/sd_samplers.py (v1.10.1), reduced: the sampler names and aliases the host knows."""

from collections import namedtuple

SamplerData = namedtuple("SamplerData", ["name", "constructor", "aliases", "options"])
all_samplers = [
    SamplerData("DPM++ 2M", None, ["k_dpmpp_2m"], {}),
    SamplerData("Euler a", None, ["k_euler_a", "k_euler_ancestral"], {}),
    SamplerData("Euler", None, ["k_euler"], {}),
    SamplerData("DDIM", None, ["ddim"], {}),
]
