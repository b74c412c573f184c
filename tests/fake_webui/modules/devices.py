import gc

cpu = "cpu"
device = "cpu"
GC_CALLS = {"n": 0}


class NansException(Exception):
    pass


def torch_gc():
    GC_CALLS["n"] += 1
    gc.collect()
