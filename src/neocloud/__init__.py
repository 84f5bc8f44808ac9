"""neocloud: the control plane of a GPU neocloud."""

__version__ = "0.1.0"
