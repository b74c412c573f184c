"""modules/sd_schedulers.py (v1.10.1), reduced."""

import dataclasses


@dataclasses.dataclass
class Scheduler:
    name: str
    label: str
    function: object = None
    default_rho: float = -1
    need_inner_model: bool = False
    aliases: list = None


schedulers = [
    Scheduler("automatic", "Automatic"),
    Scheduler("karras", "Karras", aliases=["Karras"]),
    Scheduler("exponential", "Exponential"),
]
