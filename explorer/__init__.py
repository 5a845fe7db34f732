"""Explorer: reproducible, interactive figures about the insides of neural networks."""

from explorer.device import pin_cpu_dispatch

pin_cpu_dispatch()  # before anything imports torch: the CPU code paths it picks decide trained bytes

from explorer.errors import ExplorerError, ModelUnavailable, UnknownName  # noqa: E402

__all__ = ["ExplorerError", "ModelUnavailable", "UnknownName"]
