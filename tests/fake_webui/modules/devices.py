import gc

cpu = "cpu"
device = "cpu"


class NansException(Exception):
    pass


def torch_gc():
    gc.collect()
